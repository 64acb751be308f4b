"""Each function's own settings, beside every function's (`payments.config.Settings`, which they extend): imported
only by the functions that read them, through `payments.config` (`from payments.config import ExportSettings`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from payments.config import Settings


class ReconcileSettings(Settings):
    """The scheduled reconciliation's own: when to ask a gateway about a pending payment, when to give up."""

    ask_after_minutes: int = Field(30, alias="RECONCILE_ASK_AFTER_MINUTES", ge=0)
    give_up_after_hours: int = Field(72, alias="RECONCILE_GIVE_UP_AFTER_HOURS", ge=1)


class PublishSettings(Settings):
    """The outbox publisher's own (docs/events.md): the service's EventBridge bus."""

    event_bus_name: str = Field("payments", alias="EVENT_BUS_NAME", min_length=1)


class NotifySettings(Settings):
    """The e-mail sender's own (docs/receipts.md): the address e-mails come from, a verified SES identity (or in
    its domain). The sender's name is the customer's provider (account settings)."""

    email_from: str = Field("receipts@example.com", alias="EMAIL_FROM", pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _unset_if_empty(value: Any) -> Any:
    return None if value == "" else value


class WebhookSettings(Settings):
    """Outbound webhooks' own (docs/webhooks-outbound.md): the KMS key of the endpoints' secrets, the delivery queue
    and its dead-letter queue, and the delivery rules. The retry timings are settings so tests compress time."""

    key_id: Annotated[str | None, BeforeValidator(_unset_if_empty)] = Field(None, alias="WEBHOOK_KEY_ID")
    queue_url: Annotated[str | None, BeforeValidator(_unset_if_empty)] = Field(None, alias="WEBHOOK_QUEUE_URL")
    dlq_url: Annotated[str | None, BeforeValidator(_unset_if_empty)] = Field(None, alias="WEBHOOK_DLQ_URL")
    # http:// and loopback addresses allowed: set by the local stack (and tests) only, never by template.yaml.
    allow_loopback: bool = Field(False, alias="WEBHOOK_ALLOW_LOOPBACK")
    timeout_seconds: float = Field(10, alias="WEBHOOK_TIMEOUT_SECONDS", gt=0, le=60)
    retry_base_seconds: float = Field(30, alias="WEBHOOK_RETRY_BASE_SECONDS", ge=0)
    retry_cap_seconds: float = Field(3600, alias="WEBHOOK_RETRY_CAP_SECONDS", ge=0)
    retry_window_seconds: float = Field(24 * 3600, alias="WEBHOOK_RETRY_WINDOW_SECONDS", gt=0)
    max_response_bytes: int = Field(64 * 1024, alias="WEBHOOK_MAX_RESPONSE_BYTES", ge=0)


class ExportSettings(Settings):
    """The CSV export's own (docs/exports.md): read at each export's start, so a test or the local stack can
    change them at run time; the function checks them at cold start too."""

    async_row_threshold: int = Field(20000, alias="EXPORT_ASYNC_ROW_THRESHOLD", ge=0)
    page_size: int = Field(500, alias="EXPORT_PAGE_SIZE", ge=1, le=1000)  # payments per Query while streaming
    requested_async_mode: Annotated[Literal["lambda", "thread"] | None, BeforeValidator(_unset_if_empty)] = Field(
        None, alias="EXPORT_ASYNC_MODE"
    )
    function_name: Annotated[str | None, BeforeValidator(_unset_if_empty)] = Field(
        None, alias="AWS_LAMBDA_FUNCTION_NAME"
    )

    @property
    def async_mode(self) -> Literal["lambda", "thread"]:
        """How the background half runs: invoke this very function (in Lambda), or a thread (the local stack)."""
        return self.requested_async_mode or ("lambda" if self.function_name else "thread")
