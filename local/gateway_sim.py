"""Local gateway simulator: Stripe, PayPal, Razorpay, Paystack and NOWPayments behind one local port.

`make dev` and the tests set each adapter's API base to `http://127.0.0.1:<port>/<provider>`. The adapters
cannot tell they are not talking to the real gateway: answers have each gateway's real shapes, status codes
and auth checks (GATEWAYS.md), and every credential is `local.defaults.gateway_credential(NAME)`, so the
simulator checks and signs with exactly what the API uses.

Gateway endpoints (below `/<provider>`):
    stripe       POST /v1/payment_methods, GET /v1/payment_methods/{id}, POST /v1/payment_intents,
                 GET /v1/payment_intents/{id}                              (form bodies, `Idempotency-Key`)
    paypal       POST /v1/oauth2/token, POST /v2/checkout/orders, GET /v2/checkout/orders/{id},
                 POST /v2/checkout/orders/{id}/capture, GET /v2/payments/captures/{id},
                 POST /v1/notifications/verify-webhook-signature
                                                                           (`PayPal-Request-Id` replays)
    razorpay     POST /v1/orders, GET /v1/orders (?receipt=), GET /v1/orders/{id}, GET /v1/orders/{id}/payments
    paystack     POST /transaction/initialize, GET /transaction/verify/{reference}
    nowpayments  POST /v1/invoice, GET /v1/payment/{payment_id}, GET /v1/payment/ (?invoiceId=)
Stripe cards act as Stripe's documented test cards (4242424242424242 / pm_card_visa succeeds,
4000002500003155 / pm_card_authenticationRequired needs 3-D Secure, 4000000000000002 / pm_card_chargeDeclined
is declined with 402, ...). A PaymentMethod keeps brand and last 4 digits only, never the number.

Payer pages (the redirect links the gateways hand out): /paypal/checkoutnow?token=, /paystack/checkout/{code},
/nowpayments/payment/?iid=, /stripe/3ds/{pi}. "Pay" / "Cancel" settle the payment, then link back to the portal.

Control endpoints:
    POST /_sim/settle {"provider", "ref", "outcome": "success"|"failure"|"refund", "amount"?}
        `ref` is the gateway's id (pi_..., PayPal order id, order_..., Paystack reference, NOWPayments invoice
        id); `amount` (major units, string) overrides the amount paid or refunded. Builds the gateway's real
        webhook for that object with our references echoed, signs it as the gateway does, POSTs it to
        `{api_base}/webhooks/{provider}` and answers {"delivered", "status", "response", "event"}.
        PayPal success sends CHECKOUT.ORDER.APPROVED; when the API then captures, PAYMENT.CAPTURE.COMPLETED
        follows shortly after the capture answer, as with PayPal. Paystack has no failure webhook: a failure
        only marks the transaction failed, which `verify` then reports.
    GET /_sim/objects   everything held (and every webhook delivery); POST /_sim/reset forgets it all
                        (PayPal access tokens survive, as adapters cache them).

In-process: `sim = GatewaySimulator(api_base); port = sim.start(); ...; sim.stop()` (also a context manager;
`serve(port, api_base)` returns one already started);
`sim.settle(...)` and `sim.objects()` are the control endpoints as methods.
Standalone: `python -m local.gateway_sim --port 12111 --api http://127.0.0.1:3000`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import copy
import hashlib
import hmac
import json
import os
import re
import secrets
import string
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from local import sim_pages
from local.defaults import API_BASE_VARS, DEFAULT_PORTS, gateway_credential

PROVIDERS = ("stripe", "paypal", "razorpay", "paystack", "nowpayments")
OUTCOMES = ("success", "failure", "refund")
WEBHOOK_TIMEOUT_SECONDS = 30
# PayPal sends PAYMENT.CAPTURE.COMPLETED after answering the capture; a short pause keeps the common order
# (capture answer first) without promising it, as PayPal does not either.
PAYPAL_CAPTURE_WEBHOOK_DELAY_SECONDS = 0.3

_ALNUM = string.ascii_letters + string.digits
_UPPER_ALNUM = string.ascii_uppercase + string.digits
_LOWER_ALNUM = string.ascii_lowercase + string.digits
_HEX = "0123456789abcdef"

# ISO 4217 minor digits where they are not 2 (the gateway's own view of amounts; no import from the layer).
_ZERO_DIGIT = frozenset([
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
    "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
])  # fmt: skip
_THREE_DIGIT = frozenset(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"])


# ----------------------------------------------------------------------------------------------------------
# Small helpers


def _token(length: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _number_id(length: int) -> int:
    low: int = 10 ** (length - 1)
    return low + secrets.randbelow(9 * low)


def _iso_ms() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _iso_seconds() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _digits(currency: str) -> int:
    code = currency.upper()
    return 0 if code in _ZERO_DIGIT else 3 if code in _THREE_DIGIT else 2


def _major(minor: int, currency: str, digits: int | None = None) -> str:
    places = _digits(currency) if digits is None else digits
    return f"{Decimal(minor).scaleb(-places):.{places}f}"


def _to_minor(major: str | Decimal, currency: str, digits: int | None = None) -> int:
    places = _digits(currency) if digits is None else digits
    scaled = Decimal(major).scaleb(places)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{major} has more decimals than {currency.upper()} allows")
    return int(scaled)


def _js_number(value: Decimal) -> int | float:
    """A JSON number as a JavaScript gateway prints it: 100 (not 100.0), 12.5. A float only at the wire."""
    return int(value) if value == value.to_integral_value() else float(value)


def _wire(value: Any) -> Any:
    """A copy safe to serialise: Decimals become JSON numbers (NOWPayments sends numbers, not strings)."""
    if isinstance(value, Decimal):
        return _js_number(value)
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wire(item) for item in value]
    return value


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _bearer(header: str | None) -> str | None:
    if not header or not header.lower().startswith("bearer "):
        return None
    return header[7:].strip()


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


_BRACKET = re.compile(r"\[([^\[\]]*)\]")


def parse_nested_form(body: bytes) -> dict[str, Any]:
    """A form body with Stripe's nested keys (`metadata[payment_id]=x`, `card[number]=...`, `types[0]=card`)
    as nested dicts and lists. ValueError if the keys contradict each other."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False):
        head, bracket, rest = key.partition("[")
        parts = [head, *_BRACKET.findall(bracket + rest)] if bracket else [head]
        node: Any = root
        for index, part in enumerate(parts):
            if not isinstance(node, dict):
                raise ValueError(f"Invalid form key {key}")
            name = part or str(len(node))  # `key[]=` appends
            if index == len(parts) - 1:
                node[name] = value
            else:
                node = node.setdefault(name, {})
    nested: dict[str, Any] = _dict_lists(root)  # the root's keys are names, never all digits
    return nested


def _dict_lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _dict_lists(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def _luhn_ok(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _card_brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"34", "37"}:
        return "amex"
    if "51" <= number[:2] <= "55" or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number.startswith(("6011", "65")) or "644" <= number[:3] <= "649":
        return "discover"
    if "3528" <= number[:4] <= "3589":
        return "jcb"
    if number.startswith(("36", "38", "39")) or "300" <= number[:3] <= "305":
        return "diners"
    if number.startswith("62"):
        return "unionpay"
    return "unknown"


# ----------------------------------------------------------------------------------------------------------
# Requests and answers


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json_body(self, refuse: Callable[[str], _Refusal]) -> dict[str, Any]:
        """The JSON object sent (floats kept exact as Decimal); `refuse(message)` builds the gateway's error."""
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError) as exc:
            raise refuse(f"Malformed JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise refuse("The request body must be a JSON object")
        return value


@dataclass
class _Answer:
    status: int
    body: Any  # dict or list -> JSON; str -> HTML
    headers: dict[str, str] = field(default_factory=dict)


class _Refusal(Exception):
    """An error answer in the gateway's own shape, raised from inside a handler."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.answer = _Answer(status, body, headers or {})


class SettleError(Exception):
    """`/_sim/settle` cannot do what was asked: unknown object (404), bad input (400), impossible now (409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class _Webhook:
    provider: str
    event: dict[str, Any]
    body: bytes
    headers: dict[str, str]


_EVENT_TYPE_FIELD = {
    "stripe": "type",
    "paypal": "event_type",
    "razorpay": "event",
    "paystack": "event",
    "nowpayments": "payment_status",
}


# ----------------------------------------------------------------------------------------------------------
# Gateway facts the simulator acts out

_STRIPE_EVENT_API_VERSION = "2024-06-20"
# Stripe turned automatic payment methods on by default (so confirming needs a return_url) in this version.
_STRIPE_AUTOMATIC_METHODS_SINCE = "2023-08-16"
_STRIPE_MAX_AMOUNT = 99_999_999
_STRIPE_MINIMUM_CHARGE = {
    "usd": 50, "eur": 50, "gbp": 30, "aud": 50, "brl": 50, "cad": 50, "chf": 50, "dkk": 250, "hkd": 400,
    "inr": 50, "jpy": 50, "mxn": 1000, "nok": 300, "nzd": 50, "pln": 200, "sek": 300, "sgd": 50,
}  # fmt: skip
_STRIPE_TEST_CARDS = {
    **dict.fromkeys(
        [
            "4242424242424242", "4000056655665556", "5555555555554444", "2223003122003222", "5200828282828210",
            "378282246310005", "371449635398431", "6011111111111117", "3056930009020004", "36227206271667",
            "3566002020360505", "6200000000000005",
        ],
        "succeed",
    ),
    **dict.fromkeys(["4000002500003155", "4000002760003184", "4000000000003220", "4000000000003063"], "authenticate"),
    "4000000000000002": "generic_decline",
    "4000000000009995": "insufficient_funds",
    "4000000000009987": "lost_card",
    "4000000000009979": "stolen_card",
    "4100000000000019": "fraudulent",
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
    "4000000000000119": "processing_error",
}  # fmt: skip
_STRIPE_TEST_PAYMENT_METHODS = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_amex": "378282246310005",
    "pm_card_discover": "6011111111111117",
    "pm_card_authenticationRequired": "4000002500003155",
    "pm_card_threeDSecure2Required": "4000000000003220",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_chargeDeclinedFraudulent": "4100000000000019",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
}
# decline_code -> (error code, message), as Stripe words them.
_STRIPE_DECLINES = {
    "generic_decline": ("card_declined", "Your card was declined."),
    "insufficient_funds": ("card_declined", "Your card has insufficient funds."),
    "lost_card": ("card_declined", "Your card was declined."),
    "stolen_card": ("card_declined", "Your card was declined."),
    "fraudulent": ("card_declined", "Your card was declined."),
    "expired_card": ("expired_card", "Your card has expired."),
    "incorrect_cvc": ("incorrect_cvc", "Your card's security code is incorrect."),
    "processing_error": (
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
}
_STRIPE_RETURN_URL_MESSAGE = (
    "A `return_url` must be specified because this Payment Intent is configured to automatically accept the "
    "payment methods enabled in the Dashboard, some of which may require a full page redirect to succeed. If you "
    "do not want to accept redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` and "
    "`automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment Intents."
)

_PAYPAL_CURRENCY_DIGITS = {
    **dict.fromkeys([
        "AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "ILS", "MYR", "MXN",
        "NZD", "NOK", "PHP", "PLN", "GBP", "SGD", "SEK", "CHF", "THB", "USD",
    ], 2),
    **dict.fromkeys(["HUF", "JPY", "TWD"], 0),
}  # fmt: skip
_PAYPAL_ERROR_MESSAGES = {
    "INVALID_REQUEST": "Request is not well-formed, syntactically incorrect, or violates schema.",
    "UNPROCESSABLE_ENTITY": (
        "The requested action could not be performed, semantically incorrect, or failed business validation."
    ),
    "RESOURCE_NOT_FOUND": "The specified resource does not exist.",
}
_PAYPAL_AMOUNT = re.compile(r"^\d{1,10}(\.\d+)?$")

_PAYSTACK_CURRENCIES = frozenset({"NGN", "GHS", "ZAR", "KES", "USD", "XOF", "EGP"})
_PAYSTACK_REFERENCE = re.compile(r"^[A-Za-z0-9.=-]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# The coin every simulated NOWPayments payer "pays" with, at a fixed rate per unit of the price currency.
_NOWPAYMENTS_COIN = "trx"
_NOWPAYMENTS_RATE = Decimal("8.123456")


# ----------------------------------------------------------------------------------------------------------
# The simulator


class GatewaySimulator:
    """Five payment gateways on one local HTTP port. Thread-safe; everything is kept in memory."""

    def __init__(self, api_base: str, *, verbose: bool = False) -> None:
        self.api_base = api_base.rstrip("/")  # where webhooks go: {api_base}/webhooks/{provider}
        self.verbose = verbose
        self._lock = threading.RLock()
        self._delivered = threading.Condition()
        self._server: _SimServer | None = None
        self._thread: threading.Thread | None = None
        self._host = "127.0.0.1"
        self._port = 0
        # Private material of this run: PayPal "RSA" signatures are HMACs under it; card fingerprints salt.
        self._secret = secrets.token_bytes(32)
        self._paypal_tokens: set[str] = set()
        self._routes = self._build_routes()
        self._clear()

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port (0 = any free port) in a background thread; returns the bound port.
        OSError if the port is taken."""
        if self._server is not None:
            raise RuntimeError("gateway simulator already started")
        server = _SimServer((host, port), _HttpHandler)
        server.simulator = self
        self._server, self._host, self._port = server, host, server.server_address[1]
        # A short poll keeps stop() quick (tests start and stop one per test).
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="gateway-sim", daemon=True
        )
        self._thread.start()
        return self._port

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    shutdown = stop  # the name local/dev.py uses for every server it stops

    def __enter__(self) -> GatewaySimulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("gateway simulator not started")
        host = "127.0.0.1" if self._host in ("", "0.0.0.0") else self._host
        return f"http://{host}:{self._port}"

    def provider_base(self, provider: str) -> str:
        """The API base an adapter for `provider` should use."""
        return f"{self.base_url}/{provider}"

    def api_base_env(self) -> dict[str, str]:
        """STRIPE_API_BASE=... and friends, pointing every adapter here (API.md §1)."""
        return {var: self.provider_base(provider) for provider, var in API_BASE_VARS.items()}

    # -- state ----------------------------------------------------------------------------------------------

    def _clear(self) -> None:
        with self._lock:
            self._objects: dict[str, dict[str, dict[str, Any]]] = {
                "stripe": {"payment_methods": {}, "payment_intents": {}},
                "paypal": {"orders": {}},
                "razorpay": {"orders": {}, "payments": {}, "refunds": {}},
                "paystack": {"transactions": {}},
                "nowpayments": {"invoices": {}, "payments": {}},
            }
            # What the simulator knows about an object that the gateway would not show, by (provider, id).
            self._extra: dict[tuple[str, str], dict[str, Any]] = {}
            self._stripe_idempotency: dict[str, tuple[str, _Answer]] = {}
            self._paypal_requests: dict[tuple[str, str], _Answer] = {}
            self._paypal_transmissions: dict[str, dict[str, Any]] = {}
            self._paystack_access_codes: dict[str, str] = {}
        with self._delivered:
            self._deliveries: list[dict[str, Any]] = []
            self._unrouted: list[str] = []

    def reset(self) -> None:
        """Forget every object, idempotency key, transmission and delivery (PayPal tokens stay valid)."""
        self._clear()

    def objects(self) -> dict[str, Any]:
        """Everything held, per provider, plus the webhook deliveries (what GET /_sim/objects answers)."""
        with self._lock:
            listing: dict[str, Any] = _wire(  # _wire copies every container
                {
                    provider: {kind: list(items.values()) for kind, items in kinds.items()}
                    for provider, kinds in self._objects.items()
                }
            )
        with self._delivered:
            listing["deliveries"] = copy.deepcopy(self._deliveries)
        return listing

    def deliveries(self) -> list[dict[str, Any]]:
        with self._delivered:
            return copy.deepcopy(self._deliveries)

    def wait_for_delivery(self, event_type: str, timeout: float = 10.0) -> dict[str, Any]:
        """The first delivery of `event_type` (PayPal's capture webhook is sent in the background)."""

        def find() -> dict[str, Any] | None:
            return next((d for d in self._deliveries if d["event_type"] == event_type), None)

        with self._delivered:
            if not self._delivered.wait_for(lambda: find() is not None, timeout):
                raise TimeoutError(f"no {event_type} webhook was delivered within {timeout} s")
            return copy.deepcopy(find() or {})

    def _store(self, provider: str, kind: str, key: str, obj: dict[str, Any], **extra: Any) -> dict[str, Any]:
        self._objects[provider][kind][key] = obj
        self._extra[(provider, key)] = extra
        return obj

    def _find(self, provider: str, kind: str, key: str) -> dict[str, Any] | None:
        return self._objects[provider][kind].get(key)

    # -- HTTP dispatch --------------------------------------------------------------------------------------

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Callable[[_Request], _Answer], bool]]:
        """(method, path pattern, handler, runs under the state lock)."""
        table: list[tuple[str, str, Callable[[_Request], _Answer], bool]] = [
            ("POST", "/stripe/v1/payment_methods", self._stripe_create_payment_method, True),
            ("GET", "/stripe/v1/payment_methods/(?P<id>[^/]+)", self._stripe_get_payment_method, True),
            ("POST", "/stripe/v1/payment_intents", self._stripe_create_payment_intent, True),
            ("GET", "/stripe/v1/payment_intents/(?P<id>[^/]+)", self._stripe_get_payment_intent, True),
            ("GET", "/stripe/3ds/(?P<id>[^/]+)", self._stripe_page, True),
            ("POST", "/paypal/v1/oauth2/token", self._paypal_token, True),
            ("POST", "/paypal/v2/checkout/orders", self._paypal_create_order, True),
            ("GET", "/paypal/v2/checkout/orders/(?P<id>[^/]+)", self._paypal_get_order, True),
            ("POST", "/paypal/v2/checkout/orders/(?P<id>[^/]+)/capture", self._paypal_capture, True),
            ("GET", "/paypal/v2/payments/captures/(?P<id>[^/]+)", self._paypal_get_capture, True),
            ("POST", "/paypal/v1/notifications/verify-webhook-signature", self._paypal_verify_signature, True),
            ("GET", "/paypal/checkoutnow", self._paypal_page, True),
            ("POST", "/razorpay/v1/orders", self._razorpay_create_order, True),
            ("GET", "/razorpay/v1/orders", self._razorpay_list_orders, True),
            ("GET", "/razorpay/v1/orders/(?P<id>[^/]+)", self._razorpay_get_order, True),
            ("GET", "/razorpay/v1/orders/(?P<id>[^/]+)/payments", self._razorpay_order_payments, True),
            ("POST", "/paystack/transaction/initialize", self._paystack_initialize, True),
            ("GET", "/paystack/transaction/verify/(?P<id>[^/]+)", self._paystack_verify, True),
            ("GET", "/paystack/checkout/(?P<id>[^/]+)", self._paystack_page, True),
            ("POST", "/nowpayments/v1/invoice", self._nowpayments_create_invoice, True),
            ("GET", "/nowpayments/v1/payment/(?P<id>[^/]+)", self._nowpayments_get_payment, True),
            ("GET", "/nowpayments/v1/payment", self._nowpayments_list_payments, True),
            ("GET", "/nowpayments/payment", self._nowpayments_page, True),
            ("POST", "/_sim/settle", self._sim_settle, False),
            ("POST", "/_sim/pay", self._sim_pay, False),
            ("GET", "/_sim/objects", lambda _request: _Answer(200, self.objects()), False),
            ("POST", "/_sim/reset", self._sim_reset, False),
        ]
        return [(method, re.compile(pattern), handler, locked) for method, pattern, handler, locked in table]

    def _handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request -> (status, headers, payload). Locked handlers also serialise under the lock,
        so an answer never shows an object half-way through another request's change."""
        split = urlsplit(target)
        path = split.path.rstrip("/") or "/"
        for route_method, pattern, handler, locked in self._routes:
            match = pattern.fullmatch(path)
            if match is None or route_method != method:
                continue
            request = _Request(method, path, dict(parse_qsl(split.query)), headers, body, match.groupdict())
            try:
                if locked:
                    with self._lock:
                        return _render(_answer_or_refusal(handler, request))
                return _render(_answer_or_refusal(handler, request))
            except Exception as exc:  # a simulator bug: say so loudly instead of dropping the connection
                traceback.print_exc()
                return _render(_Answer(500, {"message": f"gateway simulator error: {exc!r}"}))
        with self._delivered:
            self._unrouted.append(f"{method} {path}")
        return _render(_not_found(method, path))

    def unrouted(self) -> list[str]:
        """Every request no route of the simulator answered ("GET /nowpayments/v1/..."): an adapter calling
        something the simulator does not serve (and so, probably, the gateway neither)."""
        with self._delivered:
            return list(self._unrouted)

    # -- Stripe ---------------------------------------------------------------------------------------------

    @staticmethod
    def _stripe_error(status: int, message: str, **fields: Any) -> _Refusal:
        error = {"message": message, "type": fields.pop("type", "invalid_request_error"), **fields}
        if "code" in error:
            error.setdefault("doc_url", f"https://stripe.com/docs/error-codes/{error['code'].replace('_', '-')}")
        return _Refusal(status, {"error": error}, {"Request-Id": f"req_{_token(14)}"})

    def _stripe_auth(self, request: _Request) -> None:
        header = request.headers.get("authorization")
        key = _bearer(header)
        if key is None:
            basic = _basic_auth(header)
            key = basic[0] if basic else None
        if not key:
            raise self._stripe_error(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
                "https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
            )
        if not _same(key, gateway_credential("STRIPE_SECRET_KEY")):
            masked = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else "****"
            refusal = self._stripe_error(401, f"Invalid API Key provided: {masked}")
            refusal.answer.headers["WWW-Authenticate"] = 'Basic realm="Stripe"'
            raise refusal

    def _stripe_form(self, request: _Request) -> dict[str, Any]:
        try:
            return parse_nested_form(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._stripe_error(400, f"Invalid request body: {exc}") from exc

    def _stripe_idempotent(self, request: _Request, create: Callable[[dict[str, Any]], _Answer]) -> _Answer:
        """Stripe keeps the first answer per Idempotency-Key (once the endpoint ran, 402s included) and
        replays it with `Idempotent-Replayed: true`; the same key with other parameters is an error."""
        form = self._stripe_form(request)
        key = request.headers.get("idempotency-key")
        if not key:
            return create(form)
        # Keyed hash of the parameters: card numbers sent to /v1/payment_methods must not be kept.
        parameters = repr((request.path, sorted(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))))
        fingerprint = hmac.new(self._secret, parameters.encode(), hashlib.sha256).hexdigest()
        saved = self._stripe_idempotency.get(key)
        if saved is not None:
            if saved[0] != fingerprint:
                raise self._stripe_error(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters they were first used "
                    f"with. Try using a key other than '{key}' if you meant to execute a different request.",
                    type="idempotency_error",
                )
            first = saved[1]
            return _Answer(first.status, copy.deepcopy(first.body), {**first.headers, "Idempotent-Replayed": "true"})
        try:
            answer = create(form)
        except _Refusal as refusal:
            if refusal.answer.status != 402:  # validation failed before the endpoint ran: nothing is kept
                raise
            answer = refusal.answer
        answer.headers.update({"Idempotency-Key": key, "Request-Id": f"req_{_token(14)}"})
        self._stripe_idempotency[key] = (
            fingerprint,
            _Answer(answer.status, copy.deepcopy(answer.body), answer.headers),
        )
        return answer

    def _stripe_create_payment_method(self, request: _Request) -> _Answer:
        self._stripe_auth(request)
        return self._stripe_idempotent(request, lambda form: _Answer(200, self._stripe_new_payment_method(form)))

    def _stripe_get_payment_method(self, request: _Request) -> _Answer:
        self._stripe_auth(request)
        payment_method = self._find("stripe", "payment_methods", request.params["id"])
        if payment_method is None:
            raise self._stripe_missing("payment_method", request.params["id"], "id")
        return _Answer(200, copy.deepcopy(payment_method))

    def _stripe_missing(self, kind: str, object_id: str, param: str) -> _Refusal:
        return self._stripe_error(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)

    def _stripe_new_payment_method(self, form: dict[str, Any]) -> dict[str, Any]:
        if form.get("type") != "card":
            if "type" not in form:
                raise self._stripe_error(400, "Missing required param: type.", code="parameter_missing", param="type")
            raise self._stripe_error(
                400, f"Invalid type: {form['type']}", code="parameter_invalid_string", param="type"
            )
        card = form.get("card")
        if not isinstance(card, dict):
            raise self._stripe_error(400, "Missing required param: card.", code="parameter_missing", param="card")
        return self._stripe_card_payment_method(card)

    def _stripe_card_payment_method(self, card: dict[str, Any]) -> dict[str, Any]:
        """Validate raw card fields like Stripe (402 card errors) and keep only what Stripe shows back."""
        for name in ("number", "exp_month", "exp_year"):
            if not card.get(name):
                raise self._stripe_error(
                    400, f"Missing required param: card[{name}].", code="parameter_missing", param=f"card[{name}]"
                )

        def card_error(code: str, message: str, param: str, decline_code: str | None = None) -> _Refusal:
            extra = {"decline_code": decline_code} if decline_code else {}
            return self._stripe_error(402, message, type="card_error", code=code, param=param, **extra)

        number = str(card["number"]).replace(" ", "")
        if not number.isdigit() or not 12 <= len(number) <= 19 or not _luhn_ok(number):
            raise card_error("incorrect_number", "Your card number is incorrect.", "number")
        month, year = str(card["exp_month"]), str(card["exp_year"])
        if not month.isdigit() or not 1 <= int(month) <= 12:
            raise card_error("invalid_expiry_month", "Your card's expiration month is invalid.", "exp_month")
        full_year = int(year) + 2000 if year.isdigit() and len(year) <= 2 else int(year) if year.isdigit() else 0
        today = datetime.now(UTC)
        if full_year < today.year or full_year > today.year + 50:
            raise card_error("invalid_expiry_year", "Your card's expiration year is invalid.", "exp_year")
        if (full_year, int(month)) < (today.year, today.month):
            raise card_error("invalid_expiry_month", "Your card's expiration month is invalid.", "exp_month")
        cvc = str(card.get("cvc") or "")
        if cvc and not (cvc.isdigit() and len(cvc) in (3, 4)):
            raise card_error("invalid_cvc", "Your card's security code is invalid.", "cvc")
        behaviour = _STRIPE_TEST_CARDS.get(number)
        if behaviour is None:  # Stripe's test mode refuses real card numbers
            raise card_error(
                "card_declined",
                "Your card was declined. Your request was in test mode, but used a non test (live) card. "
                "For a list of valid test cards, visit: https://stripe.com/docs/testing.",
                "number",
                decline_code="test_mode_live_card",
            )
        brand = _card_brand(number)
        payment_method_id = f"pm_1{_token(23)}"
        payment_method = {
            "id": payment_method_id,
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": {
                "address": dict.fromkeys(["city", "country", "line1", "line2", "postal_code", "state"]),
                "email": None,
                "name": None,
                "phone": None,
            },
            "card": {
                "brand": brand,
                "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "unchecked"},
                "country": "US",
                "display_brand": brand,
                "exp_month": int(month),
                "exp_year": full_year,
                "fingerprint": hmac.new(self._secret, number.encode(), hashlib.sha256).hexdigest()[:16],
                "funding": "credit",
                "generated_from": None,
                "last4": number[-4:],
                "networks": {"available": [brand], "preferred": None},
                "three_d_secure_usage": {"supported": True},
                "wallet": None,
            },
            "created": int(time.time()),
            "customer": None,
            "livemode": False,
            "metadata": {},
            "type": "card",
        }
        return self._store("stripe", "payment_methods", payment_method_id, payment_method, behaviour=behaviour)

    def _stripe_payment_method_for_intent(self, form: dict[str, Any]) -> dict[str, Any] | None:
        reference = form.get("payment_method")
        if isinstance(reference, str) and reference:
            if reference in _STRIPE_TEST_PAYMENT_METHODS:  # Stripe turns test tokens into fresh PaymentMethods
                card = {
                    "number": _STRIPE_TEST_PAYMENT_METHODS[reference],
                    "exp_month": "12",
                    "exp_year": str(datetime.now(UTC).year + 3),
                }
                return self._stripe_card_payment_method(card)
            found = self._find("stripe", "payment_methods", reference)
            if found is None:
                raise self._stripe_error(
                    400, f"No such PaymentMethod: '{reference}'", code="resource_missing", param="payment_method"
                )
            return found
        data = form.get("payment_method_data")
        if isinstance(data, dict):
            return self._stripe_new_payment_method(data)
        return None

    def _stripe_create_payment_intent(self, request: _Request) -> _Answer:
        self._stripe_auth(request)
        version = request.headers.get("stripe-version", "")
        return self._stripe_idempotent(request, lambda form: self._stripe_new_payment_intent(form, version))

    def _stripe_new_payment_intent(self, form: dict[str, Any], stripe_version: str) -> _Answer:
        amount = self._stripe_amount(form)
        currency = str(form["currency"]).lower()
        if currency in _STRIPE_MINIMUM_CHARGE and amount < _STRIPE_MINIMUM_CHARGE[currency]:
            minimum = _major(_STRIPE_MINIMUM_CHARGE[currency], currency)
            raise self._stripe_error(
                400, f"Amount must be at least {minimum} {currency}", code="amount_too_small", param="amount"
            )
        metadata = self._stripe_metadata(form.get("metadata"))
        confirm = form.get("confirm") == "true"
        automatic = form.get("automatic_payment_methods")
        if isinstance(automatic, dict):
            automatic_on = automatic.get("enabled") == "true"
        else:  # unset: on by default in API versions since 2023-08-16 unless types are listed
            automatic_on = "payment_method_types" not in form and (
                not stripe_version or stripe_version >= _STRIPE_AUTOMATIC_METHODS_SINCE
            )
        allow_redirects = automatic.get("allow_redirects", "always") if isinstance(automatic, dict) else "always"
        if confirm and automatic_on and allow_redirects != "never" and not form.get("return_url"):
            raise self._stripe_error(400, _STRIPE_RETURN_URL_MESSAGE, param="return_url")
        payment_method = self._stripe_payment_method_for_intent(form)
        if confirm and payment_method is None:
            raise self._stripe_error(
                400,
                "You cannot confirm this PaymentIntent because it's missing a payment method. To confirm the "
                "PaymentIntent, pass a payment method or confirm it client-side.",
                code="payment_intent_unexpected_state",
            )
        types = form.get("payment_method_types")
        intent_id = f"pi_3{_token(23)}"
        intent: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "automatic_payment_methods": (
                {"allow_redirects": allow_redirects, "enabled": True} if automatic_on else None
            ),
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": form.get("capture_method", "automatic_async"),
            "client_secret": f"{intent_id}_secret_{_token(25)}",
            "confirmation_method": form.get("confirmation_method", "automatic"),
            "created": int(time.time()),
            "currency": currency,
            "customer": form.get("customer"),
            "description": form.get("description"),
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": metadata,
            "next_action": None,
            "payment_method": payment_method["id"] if payment_method else None,
            "payment_method_types": types if isinstance(types, list) else ["card"],
            "processing": None,
            "receipt_email": form.get("receipt_email"),
            "setup_future_usage": form.get("setup_future_usage"),
            "shipping": None,
            "statement_descriptor": form.get("statement_descriptor"),
            "status": "requires_confirmation" if payment_method else "requires_payment_method",
        }
        self._store("stripe", "payment_intents", intent_id, intent, refunded=0, return_url=form.get("return_url"))
        if not confirm or payment_method is None:
            return _Answer(200, self._stripe_expanded(intent, form.get("expand")))
        behaviour = self._extra[("stripe", payment_method["id"])]["behaviour"]
        if behaviour == "succeed":
            intent.update(status="succeeded", amount_received=amount, latest_charge=f"ch_3{_token(23)}")
        elif behaviour == "authenticate":
            intent.update(
                status="requires_action",
                next_action={
                    "type": "use_stripe_sdk",
                    "use_stripe_sdk": {
                        "type": "three_d_secure_redirect",
                        "stripe_js": f"{self.base_url}/stripe/3ds/{intent_id}",
                        "source": f"src_1{_token(23)}",
                    },
                },
            )
        else:
            error = self._stripe_decline(intent, behaviour, payment_method)
            body = {"error": {**error, "payment_intent": copy.deepcopy(intent)}}
            return _Answer(402, body, {"Request-Id": f"req_{_token(14)}"})
        return _Answer(200, self._stripe_expanded(intent, form.get("expand")))

    def _stripe_expanded(self, intent: dict[str, Any], expand: Any) -> dict[str, Any]:
        """A copy of `intent` with `expand[]=payment_method` honoured: the PaymentMethod object in place of its id,
        as Stripe answers (that is where a saved or tokenised card's brand and last 4 come from)."""
        answer = copy.deepcopy(intent)
        wanted = expand if isinstance(expand, list) else [expand] if isinstance(expand, str) else []
        if "payment_method" in wanted and answer.get("payment_method"):
            method = self._find("stripe", "payment_methods", answer["payment_method"])
            if method is not None:
                answer["payment_method"] = copy.deepcopy(method)
        return answer

    def _stripe_decline(
        self, intent: dict[str, Any], decline_code: str, payment_method: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Mark `intent` declined as Stripe does (back to requires_payment_method); returns the card error."""
        code, message = _STRIPE_DECLINES[decline_code]
        charge_id = f"ch_3{_token(23)}"
        error = {
            "charge": charge_id,
            "code": code,
            "decline_code": decline_code,
            "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
            "message": message,
            "payment_method": copy.deepcopy(payment_method),
            "request_log_url": f"https://dashboard.stripe.com/test/logs/req_{_token(14)}",
            "type": "card_error",
        }
        intent.update(
            status="requires_payment_method", latest_charge=charge_id, last_payment_error=error, next_action=None
        )
        return error

    def _stripe_amount(self, form: dict[str, Any]) -> int:
        for name in ("amount", "currency"):
            if not form.get(name):
                raise self._stripe_error(400, f"Missing required param: {name}.", code="parameter_missing", param=name)
        text = str(form["amount"])
        if not re.fullmatch(r"-?\d+", text):
            raise self._stripe_error(400, f"Invalid integer: {text}", code="parameter_invalid_integer", param="amount")
        amount = int(text)
        if amount < 1:
            raise self._stripe_error(
                400,
                "This value must be greater than or equal to 1.",
                code="parameter_invalid_integer",
                param="amount",
            )
        currency = str(form["currency"])
        if not re.fullmatch(r"[A-Za-z]{3}", currency):
            raise self._stripe_error(400, f"Invalid currency: {currency.lower()}.", param="currency")
        if amount > _STRIPE_MAX_AMOUNT:
            maximum = _major(_STRIPE_MAX_AMOUNT, currency)
            raise self._stripe_error(
                400,
                f"Amount must be no more than {maximum} {currency.lower()}",
                code="amount_too_large",
                param="amount",
            )
        return amount

    def _stripe_metadata(self, metadata: Any) -> dict[str, str]:
        if metadata in (None, ""):
            return {}
        if not isinstance(metadata, dict):
            raise self._stripe_error(400, "Invalid object", code="parameter_invalid_object", param="metadata")
        if len(metadata) > 50:
            raise self._stripe_error(400, "You can have up to 50 metadata keys.", param="metadata")
        for key, value in metadata.items():
            if len(key) > 40:
                raise self._stripe_error(
                    400, "Metadata keys can have a maximum length of 40 characters.", param=f"metadata[{key}]"
                )
            if not isinstance(value, str) or len(value) > 500:
                raise self._stripe_error(
                    400, "Metadata values can have up to 500 characters.", param=f"metadata[{key}]"
                )
        return dict(metadata)

    def _stripe_get_payment_intent(self, request: _Request) -> _Answer:
        self._stripe_auth(request)
        intent = self._find("stripe", "payment_intents", request.params["id"])
        if intent is None:
            raise self._stripe_missing("payment_intent", request.params["id"], "intent")
        expand = [value for name, value in request.query.items() if name.startswith("expand")]  # expand[0]=...
        return _Answer(200, self._stripe_expanded(intent, expand))

    def _stripe_page(self, request: _Request) -> _Answer:
        intent = self._find("stripe", "payment_intents", request.params["id"])
        if intent is None:
            return _Answer(404, sim_pages.missing_page(gateway="Stripe 3-D Secure", what="No such PaymentIntent."))
        page = sim_pages.checkout_page(
            gateway="Stripe 3-D Secure",
            provider="stripe",
            ref=intent["id"],
            amount=_major(intent["amount"], intent["currency"]),
            currency=intent["currency"],
            description=intent["description"],
            payable=intent["status"] == "requires_action",
        )
        return _Answer(200, page)

    def _stripe_event(self, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"evt_3{_token(23)}",
            "object": "event",
            "api_version": _STRIPE_EVENT_API_VERSION,
            "created": int(time.time()),
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }

    def _settle_stripe(self, ref: str, outcome: str, amount: str | None) -> _Webhook:
        intent = self._find("stripe", "payment_intents", ref)
        if intent is None:
            raise SettleError(404, f"no Stripe PaymentIntent {ref}")
        extra = self._extra[("stripe", ref)]
        currency = intent["currency"]
        if outcome == "success":
            if intent["status"] == "succeeded":
                raise SettleError(409, f"{ref} already succeeded")
            received = _settle_minor(amount, currency) if amount else intent["amount"]
            intent.update(
                status="succeeded",
                amount_received=received,
                latest_charge=f"ch_3{_token(23)}",
                last_payment_error=None,
                next_action=None,
            )
            event = self._stripe_event("payment_intent.succeeded", intent)
        elif outcome == "failure":
            if intent["status"] == "succeeded":
                raise SettleError(409, f"{ref} already succeeded; settle a refund instead")
            method_id = intent["payment_method"]
            method = self._find("stripe", "payment_methods", method_id) if method_id else None
            self._stripe_decline(intent, "generic_decline", method)
            event = self._stripe_event("payment_intent.payment_failed", intent)
        else:
            if intent["status"] != "succeeded":
                raise SettleError(409, f"{ref} has not succeeded, so there is nothing to refund")
            remaining = intent["amount_received"] - extra["refunded"]
            refund = _settle_minor(amount, currency) if amount else remaining
            if not 0 < refund <= remaining:
                raise SettleError(409, f"{ref} has {_major(remaining, currency)} {currency} left to refund")
            extra["refunded"] += refund
            event = self._stripe_event(
                "charge.refunded", self._stripe_refunded_charge(intent, refund, extra["refunded"])
            )
        body = json.dumps(event, indent=2).encode()  # Stripe sends pretty-printed JSON
        timestamp = int(time.time())
        secret = gateway_credential("STRIPE_WEBHOOK_SECRET")
        signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": f"t={timestamp},v1={signature}",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        return _Webhook("stripe", event, body, headers)

    @staticmethod
    def _stripe_refunded_charge(intent: dict[str, Any], refund: int, refunded_total: int) -> dict[str, Any]:
        charge_id = intent["latest_charge"]
        return {
            "id": charge_id,
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount_received"],
            "amount_refunded": refunded_total,
            "captured": True,
            "created": intent["created"],
            "currency": intent["currency"],
            "description": intent["description"],
            "livemode": False,
            "metadata": copy.deepcopy(intent["metadata"]),  # a PaymentIntent's charge carries its metadata
            "paid": True,
            "payment_intent": intent["id"],
            "payment_method": intent["payment_method"],
            "refunded": refunded_total >= intent["amount_received"],
            "refunds": {
                "object": "list",
                "data": [
                    {
                        "id": f"re_3{_token(23)}",
                        "object": "refund",
                        "amount": refund,
                        "charge": charge_id,
                        "created": int(time.time()),
                        "currency": intent["currency"],
                        "metadata": {},
                        "payment_intent": intent["id"],
                        "reason": None,
                        "status": "succeeded",
                    }
                ],
                "has_more": False,
                "total_count": 1,
                "url": f"/v1/charges/{charge_id}/refunds",
            },
            "status": "succeeded",
        }

    # -- PayPal ---------------------------------------------------------------------------------------------

    @staticmethod
    def _paypal_error(status: int, name: str, issue: str, description: str, **detail: Any) -> _Refusal:
        body: dict[str, Any] = {
            "name": name,
            "details": [{**detail, "issue": issue, "description": description}],
            "message": _PAYPAL_ERROR_MESSAGES.get(name, description),
            "debug_id": _token(13, _HEX),
            "links": [
                {
                    "href": f"https://developer.paypal.com/docs/api/orders/v2/#error-{issue}",
                    "rel": "information_link",
                    "method": "GET",
                }
            ],
        }
        return _Refusal(status, body, {"Paypal-Debug-Id": str(body["debug_id"])})

    def _paypal_token(self, request: _Request) -> _Answer:
        credentials = _basic_auth(request.headers.get("authorization"))
        if credentials is None or not (
            _same(credentials[0], gateway_credential("PAYPAL_CLIENT_ID"))
            and _same(credentials[1], gateway_credential("PAYPAL_CLIENT_SECRET"))
        ):
            raise _Refusal(401, {"error": "invalid_client", "error_description": "Client Authentication failed"})
        grant = dict(parse_qsl(request.body.decode("utf-8", "replace"))).get("grant_type")
        if grant != "client_credentials":
            description = "Grant Type is NULL" if not grant else f"Grant Type is not supported: {grant}"
            raise _Refusal(400, {"error": "unsupported_grant_type", "error_description": description})
        token = "A21AA" + _token(92, _ALNUM + "-_")
        self._paypal_tokens.add(token)
        return _Answer(
            200,
            {
                "scope": "https://uri.paypal.com/services/payments/payment https://uri.paypal.com/services/payments/refund",
                "access_token": token,
                "token_type": "Bearer",
                "app_id": "APP-80W284485P519543T",
                "expires_in": 32400,
                "nonce": f"{_iso_seconds()}{_token(43)}",
            },
        )

    def _paypal_bearer(self, request: _Request) -> None:
        token = _bearer(request.headers.get("authorization"))
        if token is None or token not in self._paypal_tokens:
            raise _Refusal(
                401,
                {
                    "name": "AUTHENTICATION_FAILURE",
                    "message": "Authentication failed due to invalid authentication credentials or a missing "
                    "Authorization header.",
                    "links": [
                        {"href": "https://developer.paypal.com/docs/api/overview/#error", "rel": "information_link"}
                    ],
                },
            )
        if "application/json" not in request.headers.get("content-type", "") and request.method == "POST":
            raise _Refusal(
                415,
                {
                    "name": "UNSUPPORTED_MEDIA_TYPE",
                    "message": "The request payload is not supported.",
                    "details": [
                        {"issue": "UNSUPPORTED_MEDIA_TYPE", "description": "Content-Type must be application/json."}
                    ],
                    "debug_id": _token(13, _HEX),
                },
            )

    def _paypal_json(self, request: _Request) -> dict[str, Any]:
        def refuse(message: str) -> _Refusal:
            return self._paypal_error(400, "INVALID_REQUEST", "MALFORMED_REQUEST_JSON", message, location="body")

        return request.json_body(refuse)

    def _paypal_idempotent(self, request: _Request, run: Callable[[], _Answer]) -> _Answer:
        """PayPal-Request-Id: the same id on the same endpoint answers the first successful result again."""
        key = request.headers.get("paypal-request-id")
        if not key:
            return run()
        saved = self._paypal_requests.get((request.path, key))
        if saved is not None:
            return _Answer(saved.status, copy.deepcopy(saved.body), dict(saved.headers))
        answer = run()
        self._paypal_requests[(request.path, key)] = _Answer(answer.status, copy.deepcopy(answer.body), answer.headers)
        return answer

    def _paypal_create_order(self, request: _Request) -> _Answer:
        self._paypal_bearer(request)
        body = self._paypal_json(request)
        return self._paypal_idempotent(request, lambda: self._paypal_new_order(body, request.headers.get("prefer", "")))

    def _paypal_new_order(self, body: dict[str, Any], prefer: str) -> _Answer:
        intent = body.get("intent")
        if intent not in ("CAPTURE", "AUTHORIZE"):
            issue = "MISSING_REQUIRED_PARAMETER" if intent is None else "INVALID_PARAMETER_VALUE"
            raise self._paypal_error(
                400, "INVALID_REQUEST", issue, "intent must be CAPTURE or AUTHORIZE.", field="/intent", location="body"
            )
        units = body.get("purchase_units")
        if not isinstance(units, list) or not units:
            raise self._paypal_error(
                400,
                "INVALID_REQUEST",
                "MISSING_REQUIRED_PARAMETER",
                "A required field / parameter is missing.",
                field="/purchase_units",
                location="body",
            )
        purchase_units = [self._paypal_purchase_unit(unit, index) for index, unit in enumerate(units)]
        context = body.get("application_context") or {}
        source = body.get("payment_source")
        if isinstance(source, dict) and isinstance(source.get("paypal"), dict):
            context = {**context, **(source["paypal"].get("experience_context") or {})}
        order_id = _token(17, _UPPER_ALNUM)
        order_url = f"{self.base_url}/paypal/v2/checkout/orders/{order_id}"
        approve = {
            "href": f"{self.base_url}/paypal/checkoutnow?token={order_id}",
            "rel": "payer-action" if source else "approve",
            "method": "GET",
        }
        links = [{"href": order_url, "rel": "self", "method": "GET"}, approve]
        if not source:
            links += [
                {"href": order_url, "rel": "update", "method": "PATCH"},
                {"href": f"{order_url}/capture", "rel": "capture", "method": "POST"},
            ]
        order: dict[str, Any] = {
            "id": order_id,
            "intent": intent,
            "status": "PAYER_ACTION_REQUIRED" if source else "CREATED",
            "purchase_units": purchase_units,
            "create_time": _iso_seconds(),
            "links": links,
        }
        if source:
            order["payment_source"] = {"paypal": {}}
        self._store(
            "paypal",
            "orders",
            order_id,
            order,
            return_url=context.get("return_url"),
            cancel_url=context.get("cancel_url"),
            capture_value=None,
            refunded=0,
        )
        if "return=representation" in prefer:
            return _Answer(201, copy.deepcopy(order))
        minimal = {key: order[key] for key in ("id", "status", "payment_source", "links") if key in order}
        return _Answer(201, copy.deepcopy(minimal))

    def _paypal_purchase_unit(self, unit: Any, index: int) -> dict[str, Any]:
        where = f"/purchase_units/{index}"

        def invalid(status: int, name: str, issue: str, description: str, path: str, value: Any = None) -> _Refusal:
            detail = {"field": f"{where}{path}", "location": "body"}
            if value is not None:
                detail["value"] = str(value)
            return self._paypal_error(status, name, issue, description, **detail)

        missing = "A required field / parameter is missing."
        amount = unit.get("amount") if isinstance(unit, dict) else None
        if not isinstance(amount, dict):
            raise invalid(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", missing, "/amount")
        code, value = amount.get("currency_code"), amount.get("value")
        if not code:
            raise invalid(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", missing, "/amount/currency_code")
        if value is None:
            raise invalid(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", missing, "/amount/value")
        if code not in _PAYPAL_CURRENCY_DIGITS:
            raise invalid(
                422,
                "UNPROCESSABLE_ENTITY",
                "CURRENCY_NOT_SUPPORTED",
                "Currency code is not currently supported. Please refer "
                "https://developer.paypal.com/api/rest/reference/currency-codes/ for list of supported currency codes.",
                "/amount/currency_code",
                code,
            )
        if not isinstance(value, str) or not _PAYPAL_AMOUNT.match(value):
            raise invalid(
                400,
                "INVALID_REQUEST",
                "INVALID_PARAMETER_SYNTAX",
                "The value of a field does not conform to the expected format.",
                "/amount/value",
                value,
            )
        decimals = len(value.partition(".")[2])
        if decimals > _PAYPAL_CURRENCY_DIGITS[code]:
            raise invalid(
                422,
                "UNPROCESSABLE_ENTITY",
                "DECIMAL_PRECISION",
                "If the currency supports decimals, only two decimal place precision is supported.",
                "/amount/value",
                value,
            )
        if Decimal(value) <= 0:
            raise invalid(
                422,
                "UNPROCESSABLE_ENTITY",
                "CANNOT_BE_ZERO_OR_NEGATIVE",
                "Must be greater than zero.",
                "/amount/value",
                value,
            )
        for name in ("custom_id", "invoice_id"):
            if name in unit and (not isinstance(unit[name], str) or not 1 <= len(unit[name]) <= 127):
                raise invalid(
                    400,
                    "INVALID_REQUEST",
                    "INVALID_STRING_LENGTH",
                    "The value of a field is either too short or too long.",
                    f"/{name}",
                )
        kept = {key: unit[key] for key in ("description", "custom_id", "invoice_id", "soft_descriptor") if key in unit}
        return {
            "reference_id": unit.get("reference_id", "default"),
            "amount": {"currency_code": code, "value": value},
            "payee": {"email_address": "merchant@example.com", "merchant_id": "SIMMERCHANT01"},
            **kept,
        }

    def _paypal_order_or_404(self, order_id: str) -> dict[str, Any]:
        order = self._find("paypal", "orders", order_id)
        if order is None:
            raise self._paypal_error(
                404,
                "RESOURCE_NOT_FOUND",
                "INVALID_RESOURCE_ID",
                "Specified resource ID does not exist. Please check the resource ID and try again.",
                field="order_id",
                value=order_id,
                location="path",
            )
        return order

    def _paypal_get_order(self, request: _Request) -> _Answer:
        self._paypal_bearer(request)
        return _Answer(200, copy.deepcopy(self._paypal_order_or_404(request.params["id"])))

    def _paypal_capture(self, request: _Request) -> _Answer:
        self._paypal_bearer(request)
        self._paypal_json(request)  # an empty body or {} is what PayPal expects
        return self._paypal_idempotent(request, lambda: self._paypal_capture_order(request.params["id"]))

    def _paypal_get_capture(self, request: _Request) -> _Answer:
        """GET /v2/payments/captures/{id}: a capture with the order id in supplementary_data."""
        self._paypal_bearer(request)
        for order in self._objects["paypal"]["orders"].values():
            for capture in order["purchase_units"][0].get("payments", {}).get("captures", []):
                if capture["id"] == request.params["id"]:
                    return _Answer(200, self._paypal_capture_resource(order, capture))
        raise self._paypal_error(
            404,
            "RESOURCE_NOT_FOUND",
            "INVALID_RESOURCE_ID",
            "Specified resource ID does not exist.",
            field="capture_id",
            value=request.params["id"],
            location="path",
        )

    def _paypal_capture_order(self, order_id: str) -> _Answer:
        order = self._paypal_order_or_404(order_id)
        if order["status"] == "COMPLETED":
            raise self._paypal_error(
                422,
                "UNPROCESSABLE_ENTITY",
                "ORDER_ALREADY_CAPTURED",
                "Order already captured.If 'intent=CAPTURE' only one capture per order is allowed.",
            )
        if order["status"] != "APPROVED":
            raise self._paypal_error(
                422,
                "UNPROCESSABLE_ENTITY",
                "ORDER_NOT_APPROVED",
                "Payer has not yet approved the Order for payment. Please redirect the payer to the 'rel':'approve' "
                "url returned as part of the HATEOAS links within the Create Order call or provide a valid "
                "payment_source in the request.",
            )
        unit = order["purchase_units"][0]
        invoice_id = unit.get("invoice_id")
        if invoice_id and any(
            other is not order
            and other["status"] == "COMPLETED"
            and other["purchase_units"][0].get("invoice_id") == invoice_id
            for other in self._objects["paypal"]["orders"].values()
        ):
            raise self._paypal_error(
                422,
                "UNPROCESSABLE_ENTITY",
                "DUPLICATE_INVOICE_ID",
                "Duplicate Invoice ID detected. To avoid a potential duplicate transaction your account setting "
                "requires that Invoice Id be unique for each transaction.",
            )
        extra = self._extra[("paypal", order_id)]
        capture = self._paypal_capture_object(order, "COMPLETED", extra["capture_value"] or unit["amount"]["value"])
        unit["payments"] = {"captures": [capture]}
        order.update(status="COMPLETED", update_time=_iso_seconds())
        order["links"] = [link for link in order["links"] if link["rel"] == "self"]
        webhook = self._paypal_webhook(
            "PAYMENT.CAPTURE.COMPLETED",
            "capture",
            self._paypal_capture_resource(order, capture),
            f"Payment completed for {capture['amount']['value']} {capture['amount']['currency_code']}",
        )
        timer = threading.Timer(PAYPAL_CAPTURE_WEBHOOK_DELAY_SECONDS, self._deliver, args=(webhook,))
        timer.daemon = True
        timer.start()
        return _Answer(201, copy.deepcopy(order))

    def _paypal_capture_object(self, order: dict[str, Any], status: str, value: str) -> dict[str, Any]:
        unit = order["purchase_units"][0]
        code = unit["amount"]["currency_code"]
        digits = _PAYPAL_CURRENCY_DIGITS[code]
        gross = _to_minor(value, code, digits)
        fee = gross * 349 // 10_000  # about PayPal's 3.49 %
        capture_id = _token(17, _UPPER_ALNUM)
        capture_url = f"{self.base_url}/paypal/v2/payments/captures/{capture_id}"
        capture = {
            "id": capture_id,
            "status": status,
            "amount": {"currency_code": code, "value": value},
            "final_capture": True,
            "seller_protection": {
                "status": "ELIGIBLE",
                "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"],
            },
            "seller_receivable_breakdown": {
                "gross_amount": {"currency_code": code, "value": value},
                "paypal_fee": {"currency_code": code, "value": _major(fee, code, digits)},
                "net_amount": {"currency_code": code, "value": _major(gross - fee, code, digits)},
            },
            **{key: unit[key] for key in ("custom_id", "invoice_id") if key in unit},
            "links": [
                {"href": capture_url, "rel": "self", "method": "GET"},
                {"href": f"{capture_url}/refund", "rel": "refund", "method": "POST"},
                {"href": f"{self.base_url}/paypal/v2/checkout/orders/{order['id']}", "rel": "up", "method": "GET"},
            ],
            "create_time": _iso_seconds(),
            "update_time": _iso_seconds(),
        }
        return capture

    @staticmethod
    def _paypal_capture_resource(order: dict[str, Any], capture: dict[str, Any]) -> dict[str, Any]:
        """A capture as webhooks carry it: plus the payee and the order id in supplementary_data."""
        return {
            **copy.deepcopy(capture),
            "payee": copy.deepcopy(order["purchase_units"][0]["payee"]),
            "supplementary_data": {"related_ids": {"order_id": order["id"]}},
        }

    def _paypal_verify_signature(self, request: _Request) -> _Answer:
        self._paypal_bearer(request)
        body = self._paypal_json(request)
        fields = ("auth_algo", "cert_url", "transmission_id", "transmission_sig", "transmission_time", "webhook_id")
        missing = [name for name in (*fields, "webhook_event") if body.get(name) in (None, "")]
        if missing or not isinstance(body["webhook_event"], dict):
            details = [
                {"field": name, "location": "body", "issue": "MISSING_REQUIRED_PARAMETER"} for name in missing
            ] or [{"field": "webhook_event", "location": "body", "issue": "INVALID_PARAMETER_SYNTAX"}]
            raise _Refusal(
                400,
                {
                    "name": "VALIDATION_ERROR",
                    "message": "Invalid request - see details",
                    "details": details,
                    "debug_id": _token(13, _HEX),
                },
            )
        given = {name: str(body[name]) for name in fields}
        sent = self._paypal_transmissions.get(given["transmission_id"])
        webhook_id = gateway_credential("PAYPAL_WEBHOOK_ID")
        verified = (
            sent is not None
            and all(given[name] == sent[name] for name in ("transmission_time", "cert_url", "auth_algo"))
            and _same(given["webhook_id"], webhook_id)
            and _same(given["transmission_sig"], self._paypal_signature(given, sent["body"]))
            and body["webhook_event"] == sent["event"]
        )
        return _Answer(200, {"verification_status": "SUCCESS" if verified else "FAILURE"})

    def _paypal_signature(self, transmission: dict[str, str], body: bytes) -> str:
        """Stands in for PayPal's RSA signature over the same message (GATEWAYS.md §2.3)."""
        crc = binascii.crc32(body) & 0xFFFFFFFF
        fields = (transmission["transmission_id"], transmission["transmission_time"], transmission["webhook_id"])
        message = f"{fields[0]}|{fields[1]}|{fields[2]}|{crc}".encode()
        return base64.b64encode(hmac.new(self._secret, message, hashlib.sha256).digest()).decode()

    def _paypal_webhook(self, event_type: str, resource_type: str, resource: dict[str, Any], summary: str) -> _Webhook:
        event_id = f"WH-{_token(17, _UPPER_ALNUM)}-{_token(17, _UPPER_ALNUM)}"
        event_url = f"{self.base_url}/paypal/v1/notifications/webhooks-events/{event_id}"
        event = {
            "id": event_id,
            "event_version": "1.0",
            "create_time": _iso_ms(),
            "resource_type": resource_type,
            "resource_version": "2.0",
            "event_type": event_type,
            "summary": summary,
            "resource": resource,
            "links": [
                {"href": event_url, "rel": "self", "method": "GET"},
                {"href": f"{event_url}/resend", "rel": "resend", "method": "POST"},
            ],
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        cert_url = f"{self.base_url}/paypal/v1/notifications/certs/CERT-360caa42-fca2a594-{self._secret.hex()[:8]}"
        transmission = {
            "transmission_id": str(uuid.uuid1()),
            "transmission_time": _iso_seconds(),
            "webhook_id": gateway_credential("PAYPAL_WEBHOOK_ID"),
        }
        signature = self._paypal_signature(transmission, body)
        # Remembered for verify-webhook-signature, which answers SUCCESS only for what was sent here.
        self._paypal_transmissions[transmission["transmission_id"]] = {
            "transmission_time": transmission["transmission_time"],
            "cert_url": cert_url,
            "auth_algo": "SHA256withRSA",
            "body": body,
            "event": json.loads(body),
        }
        headers = {
            "Content-Type": "application/json",
            "PAYPAL-TRANSMISSION-ID": transmission["transmission_id"],
            "PAYPAL-TRANSMISSION-TIME": transmission["transmission_time"],
            "PAYPAL-TRANSMISSION-SIG": signature,
            "PAYPAL-CERT-URL": cert_url,
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
            "User-Agent": "PayPal/AUHD-214.0-58192442",
        }
        return _Webhook("paypal", event, body, headers)

    def signed_paypal_event(self, event_type: str, resource_type: str, resource: dict[str, Any]) -> tuple[bytes, dict]:
        """A PayPal webhook with this resource, signed so that verify-webhook-signature answers SUCCESS for it:
        what PayPal would send about objects it holds (tests build events about any object with it)."""
        with self._lock:
            webhook = self._paypal_webhook(event_type, resource_type, copy.deepcopy(resource), event_type)
        return webhook.body, dict(webhook.headers)

    def _paypal_page(self, request: _Request) -> _Answer:
        order = self._find("paypal", "orders", request.query.get("token", ""))
        if order is None:
            return _Answer(404, sim_pages.missing_page(gateway="PayPal", what="No such order."))
        unit = order["purchase_units"][0]
        page = sim_pages.checkout_page(
            gateway="PayPal",
            provider="paypal",
            ref=order["id"],
            amount=unit["amount"]["value"],
            currency=unit["amount"]["currency_code"],
            description=unit.get("description"),
            payable=order["status"] in ("CREATED", "PAYER_ACTION_REQUIRED"),
        )
        return _Answer(200, page)

    def _settle_paypal(self, ref: str, outcome: str, amount: str | None) -> _Webhook:
        order = self._find("paypal", "orders", ref)
        if order is None:
            raise SettleError(404, f"no PayPal order {ref}")
        extra = self._extra[("paypal", ref)]
        unit = order["purchase_units"][0]
        code = unit["amount"]["currency_code"]
        digits = _PAYPAL_CURRENCY_DIGITS[code]
        captures = unit.get("payments", {}).get("captures", [])
        captured = bool(captures) and captures[0]["status"] in ("COMPLETED", "PARTIALLY_REFUNDED")
        if outcome == "success":
            if order["status"] not in ("CREATED", "PAYER_ACTION_REQUIRED"):
                raise SettleError(409, f"PayPal order {ref} is {order['status']}, not awaiting the payer")
            if amount:
                extra["capture_value"] = _major(_settle_minor(amount, code, digits), code, digits)
            order_url = f"{self.base_url}/paypal/v2/checkout/orders/{ref}"
            order.update(
                status="APPROVED",
                payer={
                    "name": {"given_name": "Sim", "surname": "Buyer"},
                    "email_address": "sim-buyer@example.com",
                    "payer_id": _token(13, _UPPER_ALNUM),
                    "address": {"country_code": "US"},
                },
                links=[
                    {"href": order_url, "rel": "self", "method": "GET"},
                    {"href": order_url, "rel": "update", "method": "PATCH"},
                    {"href": f"{order_url}/capture", "rel": "capture", "method": "POST"},
                ],
                update_time=_iso_seconds(),
            )
            return self._paypal_webhook(
                "CHECKOUT.ORDER.APPROVED", "checkout-order", copy.deepcopy(order), "An order has been approved by buyer"
            )
        if outcome == "failure":
            if captured:
                raise SettleError(409, f"PayPal order {ref} is already captured; settle a refund instead")
            capture = self._paypal_capture_object(order, "DECLINED", unit["amount"]["value"])
            unit["payments"] = {"captures": [capture]}
            order.update(status="COMPLETED", update_time=_iso_seconds())
            return self._paypal_webhook(
                "PAYMENT.CAPTURE.DENIED",
                "capture",
                self._paypal_capture_resource(order, capture),
                f"A payment capture for {unit['amount']['value']} {code} was denied",
            )
        if not captured:
            raise SettleError(409, f"PayPal order {ref} has no completed capture to refund")
        capture = captures[0]
        gross = _to_minor(capture["amount"]["value"], code, digits)
        remaining = gross - extra["refunded"]
        refund = _settle_minor(amount, code, digits) if amount else remaining
        if not 0 < refund <= remaining:
            raise SettleError(409, f"PayPal order {ref} has {_major(remaining, code, digits)} {code} left to refund")
        extra["refunded"] += refund
        capture["status"] = "REFUNDED" if extra["refunded"] == gross else "PARTIALLY_REFUNDED"
        value = _major(refund, code, digits)
        refund_id = _token(17, _UPPER_ALNUM)
        resource = {
            "id": refund_id,
            "amount": {"currency_code": code, "value": value},
            "seller_payable_breakdown": {
                "gross_amount": {"currency_code": code, "value": value},
                "paypal_fee": {"currency_code": code, "value": _major(0, code, digits)},
                "net_amount": {"currency_code": code, "value": value},
                "total_refunded_amount": {"currency_code": code, "value": _major(extra["refunded"], code, digits)},
            },
            **{key: capture[key] for key in ("custom_id", "invoice_id") if key in capture},
            "status": "COMPLETED",
            "create_time": _iso_seconds(),
            "update_time": _iso_seconds(),
            "links": [
                {"href": f"{self.base_url}/paypal/v2/payments/refunds/{refund_id}", "rel": "self", "method": "GET"},
                {"href": capture["links"][0]["href"], "rel": "up", "method": "GET"},
            ],
        }
        unit["payments"].setdefault("refunds", []).append(copy.deepcopy(resource))
        return self._paypal_webhook(
            "PAYMENT.CAPTURE.REFUNDED", "refund", resource, f"A {value} {code} capture payment was refunded"
        )

    # -- Razorpay -------------------------------------------------------------------------------------------

    @staticmethod
    def _razorpay_error(status: int, description: str, field_name: str | None = None) -> _Refusal:
        error: dict[str, Any] = {
            "code": "BAD_REQUEST_ERROR",
            "description": description,
            "source": "business" if field_name else "NA",
            "step": "payment_initiation" if field_name else "NA",
            "reason": "input_validation_failed" if field_name else "NA",
            "metadata": {},
        }
        if field_name:
            error["field"] = field_name
        return _Refusal(status, {"error": error})

    def _razorpay_auth(self, request: _Request) -> None:
        credentials = _basic_auth(request.headers.get("authorization"))
        if credentials is None:
            raise self._razorpay_error(401, "Please provide your api key for authentication purposes.")
        if not (
            _same(credentials[0], gateway_credential("RAZORPAY_KEY_ID"))
            and _same(credentials[1], gateway_credential("RAZORPAY_KEY_SECRET"))
        ):
            raise self._razorpay_error(401, "Authentication failed")

    def _razorpay_create_order(self, request: _Request) -> _Answer:
        self._razorpay_auth(request)
        if "application/json" in request.headers.get("content-type", ""):
            body = request.json_body(lambda message: self._razorpay_error(400, message))
        else:
            try:
                body = parse_nested_form(request.body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise self._razorpay_error(400, f"Invalid request body: {exc}") from exc
        amount = body.get("amount")
        if amount is None or amount == "":
            raise self._razorpay_error(400, "The amount field is required.", "amount")
        if isinstance(amount, str) and amount.isdigit():
            amount = int(amount)
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise self._razorpay_error(400, "The amount must be an integer.", "amount")
        currency = body.get("currency")
        if not currency:
            raise self._razorpay_error(400, "The currency field is required.", "currency")
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
            raise self._razorpay_error(400, "Currency is not supported", "currency")
        if amount < 100:
            raise self._razorpay_error(400, "Order amount less than minimum amount allowed", "amount")
        if _digits(currency) == 3 and amount % 10:
            raise self._razorpay_error(400, "The amount must end with 0 for currencies with 3 decimal places", "amount")
        receipt = body.get("receipt")
        if receipt is not None and (not isinstance(receipt, str) or len(receipt) > 40):
            raise self._razorpay_error(400, "The receipt may not be greater than 40 characters.", "receipt")
        notes = body.get("notes") or {}
        if not isinstance(notes, dict) or len(notes) > 15:
            raise self._razorpay_error(400, "The notes may not have more than 15 items.", "notes")
        if any(len(str(value)) > 256 for value in notes.values()):
            raise self._razorpay_error(400, "The notes values may not be greater than 256 characters.", "notes")
        order_id = f"order_{_token(14)}"
        order = {
            "id": order_id,
            "entity": "order",
            "amount": amount,
            "amount_paid": 0,
            "amount_due": amount,
            "currency": currency,
            "receipt": receipt,
            "offer_id": None,
            "status": "created",
            "attempts": 0,
            "notes": notes or [],  # Razorpay serialises empty notes as []
            "created_at": int(time.time()),
        }
        return _Answer(200, copy.deepcopy(self._store("razorpay", "orders", order_id, order)))

    def _razorpay_list_orders(self, request: _Request) -> _Answer:
        """GET /v1/orders: newest first, filtered by `receipt` when given; `count` (default 10, at most 100)."""
        self._razorpay_auth(request)
        count = request.query.get("count", "10")
        if not count.isascii() or not count.isdigit() or not 1 <= int(count) <= 100:
            raise self._razorpay_error(400, "The count must be between 1 and 100.", "count")
        orders = [
            order
            for order in self._objects["razorpay"]["orders"].values()
            if "receipt" not in request.query or order["receipt"] == request.query["receipt"]
        ]
        orders.sort(key=lambda order: order["created_at"], reverse=True)
        items = copy.deepcopy(orders[: int(count)])
        return _Answer(200, {"entity": "collection", "count": len(items), "items": items})

    def _razorpay_order_or_error(self, request: _Request) -> dict[str, Any]:
        self._razorpay_auth(request)
        order = self._find("razorpay", "orders", request.params["id"])
        if order is None:
            raise self._razorpay_error(400, "The id provided does not exist", "id")
        return order

    def _razorpay_get_order(self, request: _Request) -> _Answer:
        return _Answer(200, copy.deepcopy(self._razorpay_order_or_error(request)))

    def _razorpay_payments_of(self, order_id: str) -> list[dict[str, Any]]:
        payments = [p for p in self._objects["razorpay"]["payments"].values() if p["order_id"] == order_id]
        return sorted(payments, key=lambda p: p["created_at"], reverse=True)

    def _razorpay_order_payments(self, request: _Request) -> _Answer:
        order = self._razorpay_order_or_error(request)
        payments = self._razorpay_payments_of(order["id"])
        return _Answer(200, {"entity": "collection", "count": len(payments), "items": copy.deepcopy(payments)})

    def _razorpay_payment(self, order: dict[str, Any], amount: int, captured: bool) -> dict[str, Any]:
        fee = amount * 2 // 100 if captured else None
        payment_id = f"pay_{_token(14)}"
        payment = {
            "id": payment_id,
            "entity": "payment",
            "amount": amount,
            "currency": order["currency"],
            "status": "captured" if captured else "failed",
            "order_id": order["id"],
            "invoice_id": None,
            "international": order["currency"] != "INR",
            "method": "card",
            "amount_refunded": 0,
            "refund_status": None,
            "captured": captured,
            "description": None,
            "card_id": f"card_{_token(14)}",
            "bank": None,
            "wallet": None,
            "vpa": None,
            "email": "void@razorpay.com",
            "contact": "+919000090000",
            # Checkout-supplied notes: the portal passes the order's notes on to Checkout.
            "notes": copy.deepcopy(order["notes"]),
            "fee": fee,
            "tax": fee * 18 // 118 if fee is not None else None,
            "error_code": None if captured else "BAD_REQUEST_ERROR",
            "error_description": None if captured else "Payment failed",
            "error_source": None if captured else "customer",
            "error_step": None if captured else "payment_authorization",
            "error_reason": None if captured else "payment_failed",
            "acquirer_data": {"auth_code": f"{_number_id(6)}"} if captured else {},
            "created_at": int(time.time()),
        }
        self._objects["razorpay"]["payments"][payment_id] = payment
        order["attempts"] += 1
        return payment

    def _settle_razorpay(self, ref: str, outcome: str, amount: str | None) -> _Webhook:
        order = self._find("razorpay", "orders", ref)
        if order is None:
            raise SettleError(404, f"no Razorpay order {ref}")
        currency = order["currency"]
        if outcome == "success":
            if order["status"] == "paid":
                raise SettleError(409, f"Razorpay order {ref} is already paid")
            paid = _settle_minor(amount, currency) if amount else order["amount_due"]
            payment = self._razorpay_payment(order, paid, captured=True)
            order["amount_paid"] += paid
            order["amount_due"] = max(order["amount"] - order["amount_paid"], 0)
            order["status"] = "paid" if order["amount_due"] == 0 else "attempted"
            event_name, payload = "payment.captured", {"payment": {"entity": copy.deepcopy(payment)}}
        elif outcome == "failure":
            payment = self._razorpay_payment(order, order["amount_due"] or order["amount"], captured=False)
            if order["status"] == "created":
                order["status"] = "attempted"
            event_name, payload = "payment.failed", {"payment": {"entity": copy.deepcopy(payment)}}
        else:
            refundable = [
                p for p in self._razorpay_payments_of(ref) if p["captured"] and p["amount_refunded"] < p["amount"]
            ]
            if not refundable:
                raise SettleError(409, f"Razorpay order {ref} has no captured payment to refund")
            payment = refundable[0]
            remaining = payment["amount"] - payment["amount_refunded"]
            refund_amount = _settle_minor(amount, currency) if amount else remaining
            if not 0 < refund_amount <= remaining:
                raise SettleError(409, f"{payment['id']} has {_major(remaining, currency)} {currency} left to refund")
            payment["amount_refunded"] += refund_amount
            full = payment["amount_refunded"] == payment["amount"]
            payment.update(refund_status="full" if full else "partial", status="refunded" if full else "captured")
            refund_id = f"rfnd_{_token(14)}"
            refund = {
                "id": refund_id,
                "entity": "refund",
                "amount": refund_amount,
                "currency": currency,
                "payment_id": payment["id"],
                "notes": [],
                "receipt": None,
                "acquirer_data": {"arn": None},
                "created_at": int(time.time()),
                "batch_id": None,
                "status": "processed",
                "speed_processed": "normal",
                "speed_requested": "normal",
            }
            self._objects["razorpay"]["refunds"][refund_id] = refund
            event_name = "refund.processed"
            payload = {"refund": {"entity": copy.deepcopy(refund)}, "payment": {"entity": copy.deepcopy(payment)}}
        event = {
            "entity": "event",
            "account_id": "acc_SimLocal0000001",
            "event": event_name,
            "contains": list(payload),
            "payload": payload,
            "created_at": int(time.time()),
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        secret = gateway_credential("RAZORPAY_WEBHOOK_SECRET")
        headers = {
            "Content-Type": "application/json",
            "X-Razorpay-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            "X-Razorpay-Event-Id": _token(14),
            "User-Agent": "Razorpay-Webhook/v1",
        }
        return _Webhook("razorpay", event, body, headers)

    # -- Paystack -------------------------------------------------------------------------------------------

    @staticmethod
    def _paystack_error(status: int, message: str) -> _Refusal:
        return _Refusal(status, {"status": False, "message": message})

    def _paystack_auth(self, request: _Request) -> None:
        header = request.headers.get("authorization")
        if not header:
            raise self._paystack_error(401, "No Authorization Header was found")
        if not _same(_bearer(header), gateway_credential("PAYSTACK_SECRET_KEY")):
            raise self._paystack_error(401, "Invalid key")

    def _paystack_initialize(self, request: _Request) -> _Answer:
        self._paystack_auth(request)
        body = request.json_body(lambda message: self._paystack_error(400, message))
        email = body.get("email")
        if not isinstance(email, str) or not _EMAIL.match(email):
            raise self._paystack_error(400, "Invalid Email Address Passed")
        amount = body.get("amount")
        if isinstance(amount, str) and amount.isdigit():
            amount = int(amount)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise self._paystack_error(400, "Invalid Amount Sent")
        currency = body.get("currency") or "NGN"
        if currency not in _PAYSTACK_CURRENCIES:
            raise self._paystack_error(400, "Currency not supported by merchant")
        reference = body.get("reference") or _token(10, _LOWER_ALNUM)
        if not isinstance(reference, str) or not _PAYSTACK_REFERENCE.match(reference):
            raise self._paystack_error(400, "Invalid transaction reference: only -, ., = and alphanumerics allowed")
        if reference in self._objects["paystack"]["transactions"]:
            raise self._paystack_error(400, "Duplicate Transaction Reference")
        metadata = body.get("metadata")
        if isinstance(metadata, str):  # Paystack takes metadata as an object or as stringified JSON
            with contextlib.suppress(ValueError):
                metadata = json.loads(metadata)
        access_code = _token(15, _LOWER_ALNUM)
        created = _iso_ms()
        transaction = {
            "id": _number_id(10),
            "domain": "test",
            "status": "abandoned",  # Paystack's word for "initialized, not paid (yet)"
            "reference": reference,
            "receipt_number": None,
            "amount": amount,
            "message": None,
            "gateway_response": "The transaction was not completed",
            "paid_at": None,
            "created_at": created,
            "channel": "card",
            "currency": currency,
            "ip_address": None,
            "metadata": metadata if metadata is not None else "",
            "log": None,
            "fees": None,
            "fees_split": None,
            "authorization": {},
            "customer": {
                "id": _number_id(9),
                "first_name": None,
                "last_name": None,
                "email": email,
                "customer_code": f"CUS_{_token(15, _LOWER_ALNUM)}",
                "phone": None,
                "metadata": None,
                "risk_action": "default",
                "international_format_phone": None,
            },
            "plan": None,
            "split": {},
            "order_id": None,
            "paidAt": None,
            "createdAt": created,
            "requested_amount": amount,
            "pos_transaction_data": None,
            "source": None,
            "fees_breakdown": None,
            "transaction_date": created,
            "plan_object": {},
            "subaccount": {},
        }
        self._store(
            "paystack",
            "transactions",
            reference,
            transaction,
            callback_url=body.get("callback_url"),
            access_code=access_code,
            refunded=0,
        )
        self._paystack_access_codes[access_code] = reference
        data = {
            "authorization_url": f"{self.base_url}/paystack/checkout/{access_code}",
            "access_code": access_code,
            "reference": reference,
        }
        return _Answer(200, {"status": True, "message": "Authorization URL created", "data": data})

    def _paystack_verify(self, request: _Request) -> _Answer:
        self._paystack_auth(request)
        transaction = self._find("paystack", "transactions", request.params["id"])
        if transaction is None:
            raise self._paystack_error(400, "Transaction reference not found")
        return _Answer(200, {"status": True, "message": "Verification successful", "data": copy.deepcopy(transaction)})

    def _paystack_page(self, request: _Request) -> _Answer:
        reference = self._paystack_access_codes.get(request.params["id"], "")
        transaction = self._find("paystack", "transactions", reference)
        if transaction is None:
            return _Answer(404, sim_pages.missing_page(gateway="Paystack", what="No such transaction."))
        page = sim_pages.checkout_page(
            gateway="Paystack",
            provider="paystack",
            ref=reference,
            amount=_major(transaction["amount"], transaction["currency"]),
            currency=transaction["currency"],
            description=None,
            payable=transaction["status"] in ("abandoned", "ongoing"),
        )
        return _Answer(200, page)

    def _settle_paystack(self, ref: str, outcome: str, amount: str | None) -> _Webhook | None:
        transaction = self._find("paystack", "transactions", ref)
        if transaction is None:
            raise SettleError(404, f"no Paystack transaction {ref}")
        currency = transaction["currency"]
        if outcome == "success":
            if transaction["status"] not in ("abandoned", "ongoing", "failed"):
                raise SettleError(409, f"Paystack transaction {ref} is {transaction['status']}")
            paid = _settle_minor(amount, currency) if amount else transaction["requested_amount"]
            now = _iso_ms()
            transaction.update(
                status="success",
                amount=paid,
                gateway_response="Successful",
                message=None,
                paid_at=now,
                paidAt=now,
                ip_address="127.0.0.1",
                fees=paid * 15 // 1000,
                authorization={
                    "authorization_code": f"AUTH_{_token(10, _LOWER_ALNUM)}",
                    "bin": "408408",
                    "last4": "4081",
                    "exp_month": "12",
                    "exp_year": "2030",
                    "channel": "card",
                    "card_type": "visa ",
                    "bank": "TEST BANK",
                    "country_code": "NG",
                    "brand": "visa",
                    "reusable": True,
                    "signature": f"SIG_{_token(20)}",
                    "account_name": None,
                },
            )
            data = {key: value for key, value in transaction.items() if key not in ("transaction_date", "plan_object")}
            event = {"event": "charge.success", "data": copy.deepcopy(data)}
        elif outcome == "failure":
            if transaction["status"] == "success":
                raise SettleError(409, f"Paystack transaction {ref} already succeeded; settle a refund instead")
            transaction.update(status="failed", gateway_response="Declined", message="Declined")
            return None  # Paystack sends no webhook for a failed charge: `verify` reports it
        else:
            if transaction["status"] != "success":
                raise SettleError(409, f"Paystack transaction {ref} has not succeeded, so there is nothing to refund")
            extra = self._extra[("paystack", ref)]
            remaining = transaction["amount"] - extra["refunded"]
            refund = _settle_minor(amount, currency) if amount else remaining
            if not 0 < refund <= remaining:
                raise SettleError(409, f"Paystack transaction {ref} has {_major(remaining, currency)} {currency} left")
            extra["refunded"] += refund
            if extra["refunded"] == transaction["amount"]:
                transaction["status"] = "reversed"
            customer = transaction["customer"]
            event = {
                "event": "refund.processed",
                "data": {
                    "status": "processed",
                    "transaction_reference": ref,
                    "refund_reference": None,
                    "amount": refund,
                    "currency": currency,
                    "processor": "mpgs_zen",
                    "customer": {key: customer[key] for key in ("first_name", "last_name", "email")},
                    "integration": 463433,
                    "domain": "test",
                    "id": _number_id(7),
                },
            }
        body = json.dumps(event, separators=(",", ":")).encode()
        secret = gateway_credential("PAYSTACK_SECRET_KEY")
        headers = {
            "Content-Type": "application/json",
            "x-paystack-signature": hmac.new(secret.encode(), body, hashlib.sha512).hexdigest(),
        }
        return _Webhook("paystack", event, body, headers)

    # -- NOWPayments ----------------------------------------------------------------------------------------

    @staticmethod
    def _nowpayments_error(status: int, code: str, message: str) -> _Refusal:
        return _Refusal(status, {"status": False, "statusCode": status, "code": code, "message": message})

    def _nowpayments_auth(self, request: _Request) -> None:
        if not _same(request.headers.get("x-api-key"), gateway_credential("NOWPAYMENTS_API_KEY")):
            raise self._nowpayments_error(403, "INVALID_API_KEY", "Invalid api key")

    def _nowpayments_create_invoice(self, request: _Request) -> _Answer:
        self._nowpayments_auth(request)
        body = request.json_body(lambda message: self._nowpayments_error(400, "INVALID_REQUEST_PARAMS", message))

        def invalid(message: str) -> _Refusal:
            return self._nowpayments_error(400, "INVALID_REQUEST_PARAMS", message)

        raw_price = body.get("price_amount")
        if raw_price is None:
            raise invalid('"price_amount" is required')
        try:
            if isinstance(raw_price, bool):
                raise InvalidOperation
            price = Decimal(str(raw_price))
        except InvalidOperation:
            raise invalid('"price_amount" must be a number') from None
        if not price.is_finite() or price <= 0:
            raise invalid('"price_amount" must be a positive number')
        currency = body.get("price_currency")
        if not currency:
            raise invalid('"price_currency" is required')
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z0-9]{3,10}", currency):
            raise invalid('"price_currency" must be a valid currency')
        for name in ("order_id", "order_description", "ipn_callback_url", "success_url", "cancel_url"):
            if body.get(name) is not None and not isinstance(body[name], str):
                raise invalid(f'"{name}" must be a string')
        invoice_id = str(_number_id(10))
        now = _iso_ms()
        invoice = {
            "id": invoice_id,
            "token_id": _token(9),
            "order_id": body.get("order_id"),
            "order_description": body.get("order_description"),
            "price_amount": format(price.normalize(), "f"),  # numbers come back as strings here
            "price_currency": currency.lower(),
            "pay_currency": None,
            "ipn_callback_url": body.get("ipn_callback_url"),
            "invoice_url": f"{self.base_url}/nowpayments/payment/?iid={invoice_id}",
            "success_url": body.get("success_url"),
            "cancel_url": body.get("cancel_url"),
            "partially_paid_url": body.get("partially_paid_url"),
            "payout_currency": None,
            "created_at": now,
            "updated_at": now,
            "is_fixed_rate": bool(body.get("is_fixed_rate", False)),
            "is_fee_paid_by_user": bool(body.get("is_fee_paid_by_user", False)),
        }
        self._store("nowpayments", "invoices", invoice_id, invoice, price=price, payment_id=None)
        return _Answer(201, copy.deepcopy(invoice))

    def _nowpayments_get_payment(self, request: _Request) -> _Answer:
        self._nowpayments_auth(request)
        payment = self._find("nowpayments", "payments", request.params["id"])
        if payment is None:
            raise self._nowpayments_error(404, "PAYMENT_NOT_FOUND", f"Payment {request.params['id']} not found")
        return _Answer(200, _wire(copy.deepcopy(payment)))

    def _nowpayments_list_payments(self, request: _Request) -> _Answer:
        """GET /v1/payment/: the account's payments, `invoiceId` filtering to one invoice's, paged by
        `limit` (1-500) and `page`, sorted by `sortBy` (created_at) in `orderBy` (asc, desc) order."""
        self._nowpayments_auth(request)
        query = request.query
        limit, page = query.get("limit", "10"), query.get("page", "0")
        if not (limit.isascii() and limit.isdigit() and 1 <= int(limit) <= 500):
            raise self._nowpayments_error(400, "INVALID_REQUEST_PARAMS", '"limit" must be between 1 and 500')
        if not (page.isascii() and page.isdigit()):
            raise self._nowpayments_error(400, "INVALID_REQUEST_PARAMS", '"page" must be a number')
        payments = [
            payment
            for payment in self._objects["nowpayments"]["payments"].values()
            if "invoiceId" not in query or str(payment["invoice_id"]) == query["invoiceId"]
        ]
        payments.sort(key=lambda payment: payment["created_at"], reverse=query.get("orderBy") == "desc")
        size, start = int(limit), int(page) * int(limit)
        data = [_wire(copy.deepcopy(payment)) for payment in payments[start : start + size]]
        pages = -(-len(payments) // size)
        return _Answer(
            200, {"data": data, "limit": size, "page": int(page), "pagesCount": pages, "total": len(payments)}
        )

    def _nowpayments_page(self, request: _Request) -> _Answer:
        invoice = self._find("nowpayments", "invoices", request.query.get("iid", ""))
        if invoice is None:
            return _Answer(404, sim_pages.missing_page(gateway="NOWPayments", what="No such invoice."))
        payment_id = self._extra[("nowpayments", invoice["id"])]["payment_id"]
        payment = self._find("nowpayments", "payments", payment_id) if payment_id else None
        page = sim_pages.checkout_page(
            gateway="NOWPayments",
            provider="nowpayments",
            ref=invoice["id"],
            amount=invoice["price_amount"],
            currency=invoice["price_currency"],
            description=invoice["order_description"],
            payable=payment is None or payment["payment_status"] in ("waiting", "partially_paid", "failed"),
        )
        return _Answer(200, page)

    def _settle_nowpayments(self, ref: str, outcome: str, amount: str | None) -> _Webhook:
        invoice = self._find("nowpayments", "invoices", ref)
        if invoice is None:
            raise SettleError(404, f"no NOWPayments invoice {ref}")
        extra = self._extra[("nowpayments", ref)]
        price: Decimal = extra["price"]
        payment = self._find("nowpayments", "payments", extra["payment_id"]) if extra["payment_id"] else None
        if payment is None:  # the payer picked a coin: NOWPayments creates the payment under the invoice
            payment = self._nowpayments_payment(invoice, price)
            extra["payment_id"] = str(payment["payment_id"])
        status = payment["payment_status"]
        if outcome == "success":
            if status in ("finished", "refunded"):
                raise SettleError(409, f"NOWPayments invoice {ref} is {status}")
            paid_fiat = _settle_decimal(amount) if amount else price
            paid = (paid_fiat * _NOWPAYMENTS_RATE).quantize(Decimal("0.000001"))
            payment.update(
                payment_status="finished" if paid_fiat >= price else "partially_paid",
                actually_paid=paid,
                actually_paid_at_fiat=paid_fiat,
                outcome_amount=(paid * Decimal("0.995")).quantize(Decimal("0.0001")),
                payin_hash=secrets.token_hex(32),
            )
        elif outcome == "failure":
            if status in ("finished", "refunded"):
                raise SettleError(409, f"NOWPayments invoice {ref} is {status}; settle a refund instead")
            payment["payment_status"] = "failed"
        else:
            if status not in ("finished", "partially_paid"):
                raise SettleError(409, f"NOWPayments invoice {ref} is {status}, so there is nothing to refund")
            payment["payment_status"] = "refunded"
        payment["updated_at"] = _iso_ms()
        ipn = _wire(
            {
                "payment_id": payment["payment_id"],
                "parent_payment_id": None,
                "invoice_id": payment["invoice_id"],
                "payment_status": payment["payment_status"],
                "pay_address": payment["pay_address"],
                "payin_extra_id": None,
                "price_amount": payment["price_amount"],
                "price_currency": payment["price_currency"],
                "pay_amount": payment["pay_amount"],
                "actually_paid": payment["actually_paid"],
                "actually_paid_at_fiat": payment["actually_paid_at_fiat"],
                "pay_currency": payment["pay_currency"],
                "order_id": payment["order_id"],
                "order_description": payment["order_description"],
                "purchase_id": payment["purchase_id"],
                "outcome_amount": payment["outcome_amount"],
                "outcome_currency": payment["outcome_currency"],
                "payment_extra_ids": None,
                "fee": {
                    "currency": _NOWPAYMENTS_COIN,
                    "depositFee": Decimal("0.09853637216235617"),
                    "withdrawalFee": 0,
                    "serviceFee": 0,
                },
                "updated_at": int(time.time() * 1000),
            }
        )
        # The signature covers the recursively key-sorted re-serialisation, not the bytes sent (GATEWAYS.md §5.1);
        # the body keeps NOWPayments' own key order so a verifier that skips the sorting fails here too.
        canonical = json.dumps(ipn, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        secret = gateway_credential("NOWPAYMENTS_IPN_SECRET")
        headers = {
            "Content-Type": "application/json",
            "x-nowpayments-sig": hmac.new(secret.encode(), canonical.encode(), hashlib.sha512).hexdigest(),
        }
        body = json.dumps(ipn, separators=(",", ":"), ensure_ascii=False).encode()
        return _Webhook("nowpayments", ipn, body, headers)

    def _nowpayments_payment(self, invoice: dict[str, Any], price: Decimal) -> dict[str, Any]:
        payment_id = _number_id(10)
        pay_amount = (price * _NOWPAYMENTS_RATE).quantize(Decimal("0.000001"))
        now = _iso_ms()
        payment = {
            "payment_id": payment_id,
            "invoice_id": int(invoice["id"]),
            "payment_status": "waiting",
            "pay_address": f"T{_token(33)}",
            "payin_extra_id": None,
            "price_amount": price,
            "price_currency": invoice["price_currency"],
            "pay_amount": pay_amount,
            "actually_paid": Decimal(0),
            "actually_paid_at_fiat": Decimal(0),
            "pay_currency": _NOWPAYMENTS_COIN,
            "order_id": invoice["order_id"],
            "order_description": invoice["order_description"],
            "purchase_id": str(_number_id(10)),
            "outcome_amount": Decimal(0),
            "outcome_currency": _NOWPAYMENTS_COIN,
            "payout_hash": None,
            "payin_hash": None,
            "created_at": now,
            "updated_at": now,
            "burning_percent": None,
            "type": "crypto2crypto",
            "payment_extra_ids": None,
            "parent_payment_id": None,
        }
        self._objects["nowpayments"]["payments"][str(payment_id)] = payment
        return payment

    # -- settling and delivering ----------------------------------------------------------------------------

    def settle(self, provider: str, ref: str, outcome: str, amount: str | None = None) -> dict[str, Any]:
        """Settle one gateway object and deliver the gateway's webhook for it to the API (see the module doc).

        Answers {"delivered", "status", "response", "event"}; Paystack failures send nothing ("event": None).
        Raises SettleError for an unknown provider/object (404), bad input (400) or an impossible outcome (409).
        """
        settlers: dict[str, Callable[[str, str, str | None], _Webhook | None]] = {
            "stripe": self._settle_stripe,
            "paypal": self._settle_paypal,
            "razorpay": self._settle_razorpay,
            "paystack": self._settle_paystack,
            "nowpayments": self._settle_nowpayments,
        }
        if provider not in settlers:
            raise SettleError(404, f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}")
        if outcome not in OUTCOMES:
            raise SettleError(400, f"outcome must be one of {', '.join(OUTCOMES)}")
        if amount is not None and not isinstance(amount, str):
            raise SettleError(400, 'amount must be a decimal string in major units, such as "12.50"')
        with self._lock:  # build under the lock; deliver outside it, as the API may call back (PayPal capture)
            webhook = settlers[provider](ref, outcome, amount)
        if webhook is None:
            return {
                "delivered": False,
                "status": None,
                "response": None,
                "event": None,
                "note": "Paystack sends no webhook for a failed charge; transaction/verify now reports it failed",
            }
        return self._deliver(webhook)

    def _deliver(self, webhook: _Webhook) -> dict[str, Any]:
        url = f"{self.api_base}/webhooks/{webhook.provider}"
        result: dict[str, Any]
        try:
            response = requests.post(url, data=webhook.body, headers=webhook.headers, timeout=WEBHOOK_TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            result = {"delivered": False, "status": None, "response": None, "error": f"{type(exc).__name__}: {exc}"}
        else:
            try:
                answer: Any = response.json()
            except ValueError:
                answer = response.text
            result = {
                "delivered": 200 <= response.status_code < 300,
                "status": response.status_code,
                "response": answer,
            }
        result["event"] = webhook.event
        record = {
            "provider": webhook.provider,
            "event_type": webhook.event.get(_EVENT_TYPE_FIELD[webhook.provider]),
            "url": url,
            "headers": dict(webhook.headers),
            "body": webhook.body.decode("utf-8"),
            **result,
        }
        with self._delivered:
            self._deliveries.append(record)
            self._delivered.notify_all()
        if self.verbose:
            print(f"webhook {webhook.provider} {record['event_type']} -> {url}: {result['status']}", file=sys.stderr)
        return result

    # -- control endpoints ----------------------------------------------------------------------------------

    def _sim_settle(self, request: _Request) -> _Answer:
        body = request.json_body(lambda message: _Refusal(400, {"message": message}))
        for name in ("provider", "ref", "outcome"):
            if not isinstance(body.get(name), str) or not body[name]:
                return _Answer(400, {"message": f"{name} is required (a string)"})
        amount = body.get("amount")
        try:
            result = self.settle(
                body["provider"], body["ref"], body["outcome"], None if amount is None else str(amount)
            )
        except SettleError as exc:
            return _Answer(exc.status, {"message": exc.message})
        return _Answer(200 if result["delivered"] or result["event"] is None else 502, result)

    def _sim_pay(self, request: _Request) -> _Answer:
        form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
        provider, ref, outcome = form.get("provider", ""), form.get("ref", ""), form.get("outcome", "")
        gateway = {"paypal": "PayPal", "paystack": "Paystack", "nowpayments": "NOWPayments"}.get(provider, "Stripe")
        try:
            result = self.settle(provider, ref, outcome)
        except SettleError as exc:
            return _Answer(
                exc.status,
                sim_pages.result_page(gateway=gateway, title="Not settled", detail=exc.message, back_url=None),
            )
        if result["event"] is None:
            detail = "The payment failed. Paystack sends no webhook for this; the API learns it by verifying."
        else:
            event_type = result["event"].get(_EVENT_TYPE_FIELD[provider])
            answered = f"answered {result['status']}" if result["status"] is not None else "could not be reached"
            detail = f"The simulator sent {event_type} to the API, which {answered}."
        title = "Payment approved" if outcome == "success" else "Payment cancelled"
        with self._lock:
            back_url = self._return_url(provider, ref, outcome)
        return _Answer(200, sim_pages.result_page(gateway=gateway, title=title, detail=detail, back_url=back_url))

    def _return_url(self, provider: str, ref: str, outcome: str) -> str | None:
        """Where the gateway would send the payer back to the portal after Pay / Cancel."""
        extra = self._extra.get((provider, ref), {})
        if provider == "paypal":
            if outcome == "success" and extra.get("return_url"):
                payer = self._objects["paypal"]["orders"][ref].get("payer", {})
                return _with_query(extra["return_url"], {"token": ref, "PayerID": payer.get("payer_id", "")})
            return _with_query(extra["cancel_url"], {"token": ref}) if extra.get("cancel_url") else None
        if provider == "paystack":
            callback = extra.get("callback_url")
            return _with_query(callback, {"trxref": ref, "reference": ref}) if callback else None
        if provider == "nowpayments":
            invoice = self._objects["nowpayments"]["invoices"].get(ref, {})
            url = invoice.get("success_url" if outcome == "success" else "cancel_url")
            return str(url) if url else None
        if provider == "stripe":
            return_url = extra.get("return_url")
            return _with_query(return_url, {"payment_intent": ref}) if return_url else None
        return None

    def _sim_reset(self, _request: _Request) -> _Answer:
        self.reset()
        return _Answer(200, {"reset": True})


def _settle_decimal(amount: str) -> Decimal:
    try:
        value = Decimal(amount.strip())
    except InvalidOperation:
        raise SettleError(400, f"amount {amount!r} is not a decimal number") from None
    if not value.is_finite() or value <= 0:
        raise SettleError(400, "amount must be positive")
    return value


def _settle_minor(amount: str | None, currency: str, digits: int | None = None) -> int:
    try:
        return _to_minor(_settle_decimal(amount or ""), currency, digits)
    except ValueError as exc:
        raise SettleError(400, str(exc)) from None


def _answer_or_refusal(handler: Callable[[_Request], _Answer], request: _Request) -> _Answer:
    try:
        return handler(request)
    except _Refusal as refusal:
        return refusal.answer


def _render(answer: _Answer) -> tuple[int, dict[str, str], bytes]:
    if isinstance(answer.body, str):
        payload, content_type = answer.body.encode(), "text/html; charset=utf-8"
    else:
        payload, content_type = json.dumps(answer.body).encode(), "application/json"
    return answer.status, {"Content-Type": content_type, **answer.headers}, payload


def _not_found(method: str, path: str) -> _Answer:
    provider, _, rest = path.lstrip("/").partition("/")
    if provider == "stripe":
        message = (
            f"Unrecognized request URL ({method}: /{rest}). Please see https://stripe.com/docs or we can help at "
            "https://support.stripe.com/."
        )
        return _Answer(404, {"error": {"message": message, "type": "invalid_request_error"}})
    return _Answer(404, {"message": f"gateway simulator has no {method} {path}"})


# ----------------------------------------------------------------------------------------------------------
# HTTP plumbing


class _SimServer(ThreadingHTTPServer):
    daemon_threads = True
    simulator: GatewaySimulator


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as adapters' sessions expect
    server: _SimServer

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        status, answer_headers, payload = self.server.simulator._handle(method, self.path, headers, body)
        self.send_response(status)
        for name, value in answer_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.simulator.verbose:
            sys.stderr.write(f"gateway-sim: {format % args}\n")


def serve(port: int, api_url: str, host: str = "127.0.0.1") -> GatewaySimulator:
    """A started simulator on host:port delivering webhooks to `api_url` (what `make dev` calls)."""
    simulator = GatewaySimulator(api_url)
    simulator.start(host, port)
    return simulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.gateway_sim", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("GATEWAY_SIM_PORT") or DEFAULT_PORTS["GATEWAY_SIM_PORT"])
    )
    api_port = os.environ.get("API_PORT") or DEFAULT_PORTS["API_PORT"]
    parser.add_argument("--api", default=f"http://127.0.0.1:{api_port}", help="API base URL that receives webhooks")
    parser.add_argument("--verbose", action="store_true", help="log every request and webhook")
    args = parser.parse_args(argv)
    simulator = GatewaySimulator(args.api, verbose=args.verbose)
    try:
        simulator.start(args.host, args.port)
    except OSError as exc:
        print(f"gateway simulator: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"gateway simulator on {simulator.base_url}, webhooks to {simulator.api_base}/webhooks/<provider>")
    for name, value in simulator.api_base_env().items():
        print(f"  {name}={value}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
