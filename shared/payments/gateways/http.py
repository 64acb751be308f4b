"""HTTP plumbing shared by the requests-based adapters (PayPal, Razorpay, Paystack, NOWPayments).

Two calls:

* `new_session(retries)` - a `requests.Session` that retries a bounded number of times, and only
  requests a repeat cannot duplicate: GET/HEAD/OPTIONS, or any request that carries an idempotency
  header (`Idempotency-Key`, `PayPal-Request-Id`, `X-Idempotency-Key`). A POST without one is sent
  exactly once, because a repeat could create a second order or charge.
* `call_json(session, method, url, ...)` - sends, and returns the JSON object the gateway answered.
  Timeouts, connection errors, 429 and 5xx raise `GatewayUnavailable` (outcome unknown, 503); 4xx and a
  body that is not a JSON object raise `GatewayRejected` (502) - as `HttpRejected`, which also
  carries the status and parsed body for adapters that must read a gateway's error code.

Messages never contain request bodies or headers (credentials, card data), only the gateway's name,
the method, the URL path and the status.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from payments.gateways.base import (
    Capability,
    CreateRequest,
    CreateResult,
    CurrencyNotSupported,
    DisputeAnswer,
    GatewayRejected,
    GatewaySettings,
    GatewayUnavailable,
    NotSupported,
    RefundAnswer,
    RefundRequest,
    StatusAnswer,
)
from payments.money import Money

logger = logging.getLogger(__name__)

# (connect, read) seconds. Connect slightly above a TCP retransmit window (3 s), read well under
# the Lambda timeout so a retry still fits.
DEFAULT_TIMEOUT: tuple[float, float] = (3.05, 10.0)

# Header names (lower case) that make a request safe to repeat: the gateway answers a repeat with
# the first result instead of acting twice.
IDEMPOTENCY_HEADERS = frozenset({"idempotency-key", "paypal-request-id", "x-idempotency-key"})

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_RETRY_STATUSES = (429, 500, 502, 503, 504)
_NO_RETRY = Retry(0, read=False)  # requests' own default: one attempt, errors raised as they come


class HttpRejected(GatewayRejected):
    """A 4xx (or unreadable) answer. `status` and `body` let an adapter read the gateway's error code."""

    def __init__(self, message: str, status: int, body: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def is_safe_to_retry(method: str, headers: Any) -> bool:
    """True for read-only methods and for requests carrying an idempotency header."""
    if method.upper() in _SAFE_METHODS:
        return True
    return any(str(name).lower() in IDEMPOTENCY_HEADERS for name in headers)


class _RetryWhenSafeAdapter(HTTPAdapter):
    """An HTTPAdapter whose retry policy is chosen per request (see `is_safe_to_retry`).

    `HTTPAdapter.send` reads `self.max_retries`; it is a per-thread property here so one adapter
    can serve safe and unsafe requests without the choice leaking between threads.
    """

    def __init__(self, retry: Retry) -> None:
        self._safe_retry = retry
        self._current = threading.local()
        super().__init__()

    @property
    def max_retries(self) -> Retry:
        retry: Retry = getattr(self._current, "retry", _NO_RETRY)
        return retry

    @max_retries.setter
    def max_retries(self, value: Retry) -> None:
        """Ignored: HTTPAdapter.__init__ assigns a default; the policy is chosen in `send`."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        safe = is_safe_to_retry(request.method or "GET", request.headers)
        self._current.retry = self._safe_retry if safe else _NO_RETRY
        try:
            return super().send(request, *args, **kwargs)
        finally:
            self._current.retry = _NO_RETRY


def new_session(retries: int = 2, *, backoff: float = 0.3) -> requests.Session:
    """A session that retries safe requests up to `retries` times on connection errors, timeouts
    and 429/5xx, with short exponential backoff (capped at 2 s; Retry-After is not obeyed so a
    Lambda never sleeps long). The last 5xx response is returned, not raised, for `call_json` to map."""
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        redirect=0,
        backoff_factor=backoff,
        backoff_max=2.0,
        status_forcelist=_RETRY_STATUSES,
        allowed_methods=None,  # the adapter already decided the request is safe to repeat
        respect_retry_after_header=False,
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = _RetryWhenSafeAdapter(retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _where(method: str, url: str) -> str:
    return f"{method.upper()} {urlsplit(url).path}"  # no query string: it may carry ids or keys


def call_json(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: tuple[float, float] | float = DEFAULT_TIMEOUT,
    gateway: str = "gateway",
    **kwargs: Any,
) -> dict[str, Any]:
    """Send one request (`kwargs` go to `session.request`: json, data, params, headers, auth) and
    return the JSON object answered. An empty 2xx body is `{}`."""
    where = _where(method, url)
    try:
        response = session.request(method, url, timeout=timeout, **kwargs)
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
        what = "did not answer in time" if _timed_out(exc) else "could not be reached"
        logger.warning("gateway unavailable", extra={"gateway": gateway, "request": where, "problem": what})
        raise GatewayUnavailable(f"{gateway} {what} ({where})") from exc
    except requests.RequestException as exc:  # invalid URL and the like: our configuration
        raise GatewayRejected(f"request to {gateway} could not be sent ({where})") from exc

    status = response.status_code
    body = _json_object(response)
    if status >= 500 or status == 429:  # 429: throttled, nothing done; a later try may pass
        logger.warning("gateway error", extra={"gateway": gateway, "request": where, "status": status})
        raise GatewayUnavailable(f"{gateway} answered {status} ({where})")
    if not 200 <= status < 300:
        raise HttpRejected(f"{gateway} refused the request: {status} ({where})", status, body)
    if body is None:
        if not response.content.strip():
            return {}
        raise HttpRejected(f"{gateway} answered {status} with a body that is not a JSON object ({where})", status, None)
    return body


def _timed_out(exc: requests.RequestException) -> bool:
    """requests reports a timeout that exhausted the retries as a ConnectionError around urllib3's."""
    if isinstance(exc, requests.Timeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(reason, urllib3.exceptions.NewConnectionError):  # a refusal, though urllib3 files it under timeouts
        return False
    return isinstance(reason, TimeoutError | urllib3.exceptions.TimeoutError)


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        value = response.json()
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class HttpGateway:
    """What the requests-based adapters share: their settings, the HTTP session made on first use (or injected
    by tests), and the check against the gateway's list of currencies."""

    name: ClassVar[str]
    currencies: ClassVar[frozenset[str]]
    settings_class: ClassVar[type[GatewaySettings]]
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.RECONCILE})

    def __init__(self, settings: GatewaySettings, session: requests.Session | None = None) -> None:
        self._settings = settings
        self._session = session

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = new_session()
        return self._session

    def capture(self, gateway_ref: str, request_id: str) -> StatusAnswer:
        raise NotSupported(f"{self.name} has nothing to capture")

    def refund(self, request: RefundRequest) -> RefundAnswer:  # adapters with Capability.REFUND override both
        raise NotSupported(f"{self.name} has no refund API: refunds are made in its dashboard")

    def find_refund(self, request: RefundRequest) -> RefundAnswer | None:
        raise NotSupported(f"{self.name} has no refund API: refunds are made in its dashboard")

    def fetch_refund(self, gateway_ref: str, refund_id: str) -> RefundAnswer | None:
        raise NotSupported(f"{self.name} cannot be asked about a refund")

    def fetch_dispute(self, gateway_ref: str, dispute_id: str) -> DisputeAnswer | None:
        raise NotSupported(f"{self.name} has no disputes")

    # One gateway object per payment (gateways.base.Gateway): these gateways take no idempotency key, so by
    # default a later attempt opens a new object; an adapter overrides what its gateway does better.

    def reference_for_attempt(self, payment_id: str, attempt: int) -> str | None:
        return None

    def recover(self, request: CreateRequest) -> CreateResult | None:
        return None

    def resume(self, gateway_ref: str, stored_next_action: dict[str, Any] | None) -> CreateResult:
        return CreateResult(gateway_ref, next_action=stored_next_action)  # pending until its webhook says more

    def check_listed_currency(self, money: Money) -> None:
        """CurrencyNotSupported (422, before any call) unless the currency is listed and the amount positive."""
        if money.currency not in self.currencies:
            raise CurrencyNotSupported(
                f"{self.name} does not take {money.currency}; it takes {', '.join(sorted(self.currencies))}"
            )
        if money.minor <= 0:
            raise CurrencyNotSupported(f"{self.name} needs a positive amount", field="amount")
