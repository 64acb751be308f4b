"""Configuration, parsed once: table and bucket names, limits, the site, and each gateway's settings.

Gateway credentials come from one Secrets Manager secret in AWS (`GATEWAY_SECRET_ARN`, a JSON object whose keys
the registry names: `stripe_secret_key`, ...), read through Powertools parameters with caching (`secret`, which the
cursor key uses too); locally they come from the environment (`STRIPE_SECRET_KEY`, ...). Environment variables win
over the secret so the local stack and tests can override single values. Each gateway's settings class lives in its
adapter module. Under SnapStart the cached secrets are dropped before the snapshot (docs/snapstart.md), so each
restored environment reads them afresh.
"""

from __future__ import annotations

import os
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError

from payments import snapstart

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from payments.registry import GatewayEntry

SECRET_CACHE_SECONDS = 300


# Variables of template.yaml's Globals that libraries read themselves, not this service.
LIBRARY_VARIABLES = frozenset({"POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL", "PYDANTIC_DISABLE_PLUGINS"})


class Settings(BaseModel):
    """Every function's environment (template.yaml's Globals), read and checked once, at cold start: a value of
    the wrong type stops the function before its first request, naming the variable (a test checks that every
    variable the template sets is one of these, so a misspelt name cannot fall back to a default unseen)."""

    # defer_build: a model's validator is built at its first use, so a function pays only for the settings it reads.
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, defer_build=True)

    payments_table: str = Field("payments", alias="PAYMENTS_TABLE_NAME", min_length=1)
    idempotency_table: str = Field("payments-idempotency", alias="IDEMPOTENCY_TABLE_NAME", min_length=1)
    exports_bucket: str = Field("payments-exports", alias="EXPORTS_BUCKET_NAME", min_length=1)
    gateway_secret_arn: str | None = Field(None, alias="GATEWAY_SECRET_ARN")
    cursor_secret_arn: str | None = Field(None, alias="CURSOR_SECRET_ARN")
    cursor_secret: SecretStr | None = Field(None, alias="CURSOR_SECRET")  # the local stack's and the tests' key
    # Per payment, in major units of any currency: the "configured maximum" of docs/api.md.
    max_amount: Decimal = Field(Decimal("1000000"), alias="MAX_PAYMENT_AMOUNT", gt=0)
    export_url_seconds: int = Field(900, alias="EXPORT_URL_EXPIRY_SECONDS", ge=1, le=7 * 24 * 3600)
    export_retention_days: int = Field(7, alias="EXPORT_RETENTION_DAYS", ge=1)
    service_name: str = Field("payments", alias="POWERTOOLS_SERVICE_NAME")
    public_base_url: str = Field("http://127.0.0.1:3000", alias="PUBLIC_BASE_URL")
    portal_return_url: str = Field("http://127.0.0.1:3000/", alias="PORTAL_RETURN_URL")
    # A gateway option (registry `options`), checked here at cold start; its adapter's settings read it.
    nowpayments_partially_paid: Literal["credit", "hold"] = Field("credit", alias="NOWPAYMENTS_PARTIALLY_PAID")
    # The account settings' deployment-wide defaults (docs/account-settings.md), checked by `payments.account`.
    account_currency: str = Field("", alias="ACCOUNT_CURRENCY")
    allowed_currencies: str = Field("", alias="ALLOWED_CURRENCIES")  # comma-separated; empty: any
    min_payment: str = Field("", alias="MIN_PAYMENT")
    max_payment: str = Field("", alias="MAX_PAYMENT")
    max_balance: str = Field("", alias="MAX_BALANCE")
    disabled_methods: str = Field("", alias="DISABLED_METHODS")  # comma-separated
    method_surcharges: str = Field("", alias="METHOD_SURCHARGES")  # JSON
    email_receipts: bool = Field(False, alias="EMAIL_RECEIPTS")
    credit_limit: str = Field("", alias="CREDIT_LIMIT")
    provider_name: str = Field("", alias="PROVIDER_NAME")
    provider_address: str = Field("", alias="PROVIDER_ADDRESS")  # "\\n" separates lines


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


class SettingsError(RuntimeError):
    """The environment is not what the function needs: raised at cold start, naming each variable."""


T = TypeVar("T", bound=Settings)


def load(model: type[T]) -> T:
    """`model` from the environment, or SettingsError naming every variable that is wrong."""
    try:
        return model.model_validate(dict(os.environ))
    except ValidationError as exc:
        wrong = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"the function's environment is not usable: {wrong}") from None


@cache
def settings() -> Settings:
    return load(Settings)


class SiteSettings(NamedTuple):  # a NamedTuple: a dataclass costs every function ~1 ms of cold start
    """Where payers come back to and IPNs go (the deployed API's URL), and the bank details of transfers."""

    public_base_url: str = "http://127.0.0.1:3000"
    portal_return_url: str = "http://127.0.0.1:3000/"
    bank_account_name: str = "Telecom Payments Ltd"
    bank_iban: str = "GB33BUKB20201555555555"
    bank_bic: str = "BUKBGB22"
    bank_name: str = "Example Bank"


@cache
def _secrets() -> SecretsProvider:
    """Powertools' Secrets Manager reader and its cache; the connections of its client are closed before a snapshot.
    Imported at first use: only the functions that read a secret pay for it."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    provider = SecretsProvider()
    snapstart.closes_connections(provider.client)
    return provider


def secret(arn: str, *, max_age: int, transform: Literal["json"] | None = None) -> Any:
    """The secret `arn`'s value (parsed as JSON with transform="json"), read again once `max_age` seconds old."""
    return _secrets().get(arn, max_age=max_age, transform=transform)


@snapstart.before_snapshot
def _forget_secrets() -> None:
    """No secret in the snapshot: a restored environment, however long after, reads each one again."""
    if _secrets.cache_info().currsize:
        _secrets().clear_cache()  # type: ignore[no-untyped-call]  # Powertools leaves it untyped


def _secret_values() -> dict[str, Any]:
    arn = settings().gateway_secret_arn
    if not arn:
        return {}
    value = secret(arn, transform="json", max_age=SECRET_CACHE_SECONDS)
    return dict(value) if isinstance(value, dict) else {}


def site_settings() -> SiteSettings:
    """The site's settings: the environment (one variable per field, upper case), else the defaults."""
    values = {name: os.environ[name.upper()] for name in SiteSettings._fields if os.environ.get(name.upper())}
    return SiteSettings(**values)  # read on every call: tests and the local stack change them at run time


def gateway_values(entry: GatewayEntry) -> dict[str, str]:
    """A gateway's settings as its adapter's settings class takes them: its API base and its credentials from
    the secret (cached by Powertools), each overridden by its environment variable (STRIPE_SECRET_KEY, ...)."""
    secret = _secret_values()
    site = site_settings()
    values = {
        "api_base": os.environ.get(entry.api_base_variable) or entry.default_api_base,
        "public_base_url": site.public_base_url,
        "portal_return_url": site.portal_return_url,
    }
    for credential in entry.credentials:
        stored = str(secret.get(entry.secret_key(credential)) or "")
        values[credential] = os.environ.get(entry.variable(credential)) or stored
    for option in entry.options:
        if os.environ.get(entry.variable(option)):
            values[option] = os.environ[entry.variable(option)]
    return values
