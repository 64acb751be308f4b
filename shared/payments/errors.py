"""Domain errors. The layer raises these; `payments.api` maps each to one HTTP status, once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class PaymentsError(Exception):
    """Base: `http_status` and a human sentence naming what was wrong."""

    http_status = 400
    headers: dict[str, str] = {}  # noqa: RUF012 - read-only default; instances that add headers get their own

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class BadRequest(PaymentsError):
    http_status = 400


class Unauthenticated(PaymentsError):
    http_status = 401


class Forbidden(PaymentsError):
    http_status = 403


class NotFound(PaymentsError):
    http_status = 404


class Conflict(PaymentsError):
    http_status = 409


class RetryLater(PaymentsError):
    """Another request is doing this right now (409), or the database stayed busy through our retries (503).
    Nothing was lost: the same request again, after `Retry-After` seconds, finishes the job."""

    def __init__(self, message: str, *, http_status: int = 409, retry_after: int = 1, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.http_status = http_status
        self.headers = {"Retry-After": str(retry_after)}


class InvalidInput(PaymentsError):
    """A field that fails validation (422); `field` names it."""

    http_status = 422

    def __init__(self, field: str, message: str, **extra: Any) -> None:
        super().__init__(message, field=field, **extra)
        self.field = field

    @classmethod
    def of(cls, problems: Sequence[tuple[str, str]]) -> InvalidInput:
        """Several fields wrong at once: every (field, message) in `errors`, the first as `field`."""
        errors = [{"field": field, "message": message} for field, message in problems]
        return cls(problems[0][0], "; ".join(message for _, message in problems), errors=errors)


class TooManyRequests(PaymentsError):
    http_status = 429


class UpstreamError(PaymentsError):
    """A gateway failed or is unreachable (502/503); the client may retry with the same Idempotency-Key."""

    http_status = 502

    def __init__(self, message: str, http_status: int = 502, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.http_status = http_status


class GatewayError(Exception):
    """Base of the errors gateway adapters raise (payments.gateways.base); `http_status` is what our API
    answers if one escapes. Checkout turns a failed create into UpstreamError, whose message names the
    pending payment and says to retry."""

    http_status = 502

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
