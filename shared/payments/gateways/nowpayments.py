"""NOWPayments adapter: crypto invoices priced in fiat, IPNs signed with HMAC-SHA512 (docs/gateways.md#nowpayments).

We create an invoice and redirect the payer to its page. NOWPayments echoes only `order_id` back
in its IPNs, so `order_id` carries both of our keys as `<customer_id>:<payment_id>`; `gateway_ref`
is the invoice id.

The IPN signature covers a re-serialisation of the body (keys sorted recursively, no spaces, raw
UTF-8, as JavaScript's JSON.stringify writes it), not the raw bytes. To reproduce it exactly we
parse numbers into `JsonNumber`, which keeps the token as sent (`0.09853637216235617`, `15`), and
write them back verbatim: floats would change digits, and amounts must never be floats anyway.
The fields are read from that same exact parse by `nowpayments_models`; the signature is never
checked over a model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests

from payments import jsonsafe
from payments.gateways.base import (
    CreateRequest,
    CreateResult,
    EventKind,
    GatewayEvent,
    GatewayRejected,
    GatewaySettings,
    SignatureInvalid,
    StatusAnswer,
)
from payments.gateways.http import HttpGateway, call_json
from payments.gateways.nowpayments_models import Invoice, Ipn, Payments
from payments.gateways.nowpayments_models import JsonNumber as JsonNumber  # also nowpayments.JsonNumber, as before
from payments.gateways.payload import read_answer, read_webhook
from payments.gateways.webhook_body import SHA512, check_hex_hmac, json_object
from payments.ids import is_payment_id
from payments.money import Money

# Fiat price currencies we offer. NOWPayments' older docs list usd, eur, nzd, brl, gbp; the others
# are in its current fiat list. The payer pays in crypto whatever the price currency.
SUPPORTED_CURRENCIES = frozenset({"USD", "EUR", "GBP", "CAD", "AUD", "NZD", "BRL", "CHF"})

_ORDER_ID_SEPARATOR = ":"  # never in our payment ids, so the last one splits customer from payment
_STATUS_KINDS = {
    "finished": EventKind.SUCCESS,
    "failed": EventKind.FAILURE,
    "expired": EventKind.FAILURE,
    "refunded": EventKind.REFUND,
}  # waiting, confirming, confirmed, sending, partially_paid: not paid yet -> IGNORED
_OPEN_STATUSES = frozenset({"waiting", "confirming", "confirmed", "sending", "partially_paid"})


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_exact(text: bytes | str) -> Any:
    """Parse JSON keeping every number as a `JsonNumber` (no float ever made)."""
    return jsonsafe.loads(text, parse_float=JsonNumber, parse_int=JsonNumber, parse_constant=_refuse_constant)


def dumps_canonical(value: Any) -> str:
    """JSON with keys sorted at every depth, no whitespace, non-ASCII written raw, and numbers
    written as their original token (`JsonNumber`) or plainly (`Decimal`, `int`)."""
    if isinstance(value, dict):
        items = (f"{json.dumps(key, ensure_ascii=False)}:{dumps_canonical(value[key])}" for key in sorted(value))
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps_canonical(item) for item in value) + "]"
    if isinstance(value, JsonNumber):
        return value.token
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("a JSON number must be finite")
        return format(value, "f")
    if isinstance(value, float):
        raise TypeError("floats are not written: use Decimal")
    return json.dumps(value, ensure_ascii=False)  # str, int, bool, None


def _reason(status: str, kind: EventKind, arrived: Money | None, price: Money | None) -> str | None:
    if kind is EventKind.FAILURE:
        return f"nowpayments payment {status}"
    if kind is EventKind.HELD and arrived is not None and price is not None:
        return (
            f"NOWPayments received part of the payment: {arrived.format()} of {price.format()} {price.currency}; "
            "it is credited when the rest arrives"
        )
    return None


def order_id_for(customer_id: str, payment_id: str) -> str:
    return f"{customer_id}{_ORDER_ID_SEPARATOR}{payment_id}"


def ids_from_order_id(order_id: str) -> tuple[str | None, str | None]:
    """(payment_id, customer_id) from an order id we made; (None, None) for anything else."""
    customer_id, separator, payment_id = order_id.rpartition(_ORDER_ID_SEPARATOR)
    if not separator or not customer_id or not is_payment_id(payment_id):
        return None, None
    return payment_id, customer_id


@dataclass(frozen=True, slots=True)
class NowPaymentsSettings(GatewaySettings):
    """nowpayments's credentials (registry: api_key, ipn_secret), besides the API base every adapter has."""

    api_key: str = ""
    ipn_secret: str = ""
    # What a partial payment does (docs/gateways.md#nowpayments): `credit` what arrived (the balance top-up case),
    # or `hold` the payment pending until it is paid in full.
    partially_paid: str = "credit"

    def __post_init__(self) -> None:
        if self.partially_paid not in ("credit", "hold"):
            raise ValueError(f"NOWPAYMENTS_PARTIALLY_PAID is credit or hold, not {self.partially_paid!r}")


class NowPaymentsGateway(HttpGateway):
    """`Gateway` for NOWPayments. Settings and the HTTP session are created on first use if not given."""

    name = "nowpayments"
    object_name = "Crypto payment, NOWPayments invoice {ref}"
    signature_headers = ("x-nowpayments-sig",)
    currencies = SUPPORTED_CURRENCIES
    settings_class = NowPaymentsSettings
    _settings: NowPaymentsSettings

    # ---- creating a payment -------------------------------------------------------------------

    def check_currency(self, money: Money) -> None:
        self.check_listed_currency(money)

    def create(self, request: CreateRequest) -> CreateResult:
        self.check_currency(request.money)
        settings = self._settings
        body = {
            "price_amount": request.money.to_decimal(),  # written as a JSON number, never via float
            "price_currency": request.money.currency.lower(),
            "order_id": order_id_for(request.customer_id, request.payment_id),
            "order_description": request.description or f"Payment {request.payment_id}",
            "ipn_callback_url": settings.public_base_url.rstrip("/") + "/webhooks/nowpayments",
            "success_url": request.return_url or settings.portal_return_url,
            "cancel_url": request.cancel_url or settings.portal_return_url,
            "is_fixed_rate": True,
        }
        # NOWPayments takes no idempotency key: sent once (the session does not repeat a bare POST).
        answer = self._call("POST", "/v1/invoice", data=dumps_canonical(body).encode())
        invoice = read_answer(Invoice, answer, self.name, "the invoice it created")
        return CreateResult(gateway_ref=invoice.id, next_action={"type": "redirect", "url": invoice.invoice_url})

    # ---- webhooks (IPN) -------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        if not headers.get("x-nowpayments-sig", "").strip() or not self._settings.ipn_secret:
            signed = b""  # nothing to check yet: check_hex_hmac names what is missing
        else:
            try:  # NOWPayments signs the key-sorted JSON, not the bytes it sent
                body = loads_exact(raw_body)
                signed = dumps_canonical(body).encode("utf-8")
            except (ValueError, UnicodeError) as exc:  # includes lone surrogates that UTF-8 cannot hold
                raise SignatureInvalid("nowpayments IPN body is not valid JSON") from exc
            if not isinstance(body, dict):
                raise SignatureInvalid("nowpayments IPN body is not a JSON object")
        check_hex_hmac(
            secret=self._settings.ipn_secret,
            received=headers.get("x-nowpayments-sig", ""),
            message=signed,
            digest=SHA512,
            header="x-nowpayments-sig",
            what="nowpayments IPN secret",
        )

    def parse_event(self, headers: Mapping[str, str], raw_body: bytes) -> GatewayEvent:
        ipn = read_webhook(Ipn, json_object(raw_body, "nowpayments IPN body", loads=loads_exact), "nowpayments IPN")
        payment_id, customer_id = ids_from_order_id(ipn.order_id) if ipn.order_id else (None, None)
        status = ipn.payment_status
        kind = _STATUS_KINDS.get(status, EventKind.IGNORED)
        arrived = ipn.arrived() if status == "partially_paid" else None
        if arrived is not None and ipn.parent_payment_id is None:
            kind = EventKind.PARTIAL if self._settings.partially_paid == "credit" else EventKind.HELD
        # No event id: a status change of one NOWPayments payment is the event; `actually_paid` tells
        # a re-deposit in the same status apart.
        return GatewayEvent(
            provider=self.name,
            event_id=f"{ipn.payment_id}:{status}:{ipn.actually_paid or '0'}",
            event_type=status,
            kind=kind,
            payment_id=payment_id,
            customer_id=customer_id,
            gateway_ref=ipn.invoice_id,
            money=arrived if kind is EventKind.PARTIAL else ipn.price if kind is not EventKind.IGNORED else None,
            requested=ipn.price if kind is EventKind.PARTIAL else None,
            reason=_reason(status, kind, arrived, ipn.price),
            refund_id=ipn.payment_id if kind is EventKind.REFUND else None,  # NOWPayments has no refund id
        )

    # ---- refunds ---------------------------------------------------------------------------------------
    # No refund API: refunds are made in NOWPayments' dashboard, and its `refunded` IPN records them
    # (HttpGateway's refund and find_refund answer NotSupported; the route answers 409 before asking).

    # ---- reconciliation -------------------------------------------------------------------------

    def fetch_status(self, gateway_ref: str, payment_id: str) -> StatusAnswer:
        """Reads the payments made against our invoice from the list-of-payments call.

        `invoiceId` narrows the list at NOWPayments; we match on invoice and order id again here so
        an account whose API ignores the filter never settles another invoice's payment.
        """
        answer = self._call_exact(
            "/v1/payment/",
            params={"invoiceId": gateway_ref, "limit": 100, "page": 0, "sortBy": "created_at", "orderBy": "desc"},
        )
        ours = [
            payment
            for payment in read_answer(Payments, answer, self.name, "the invoice's payments").data
            if payment.invoice_id == gateway_ref or ids_from_order_id(payment.order_id or "")[0] == payment_id
        ]
        statuses = [payment.payment_status for payment in ours]
        for payment in ours:
            if payment.payment_status == "finished":
                return StatusAnswer(EventKind.SUCCESS, money=payment.price)
        if any(status in _OPEN_STATUSES for status in statuses):
            return StatusAnswer(EventKind.IGNORED)
        if statuses and all(status in ("failed", "expired") for status in statuses):
            return StatusAnswer(EventKind.FAILURE, reason=f"nowpayments payment {statuses[0]}")
        return StatusAnswer(EventKind.IGNORED)  # no payment yet (payer never chose a coin), or refunded

    # ---- plumbing -------------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        settings = self._settings
        if not settings.api_key:
            raise GatewayRejected("nowpayments is not configured (NOWPAYMENTS_API_KEY is empty)")
        headers = {"x-api-key": settings.api_key, "Content-Type": "application/json"}
        url = settings.api_base.rstrip("/") + path
        return call_json(self.session, method, url, gateway=self.name, headers=headers, **kwargs)

    def _call_exact(self, path: str, **kwargs: Any) -> Any:
        """A GET whose answer is parsed with `loads_exact`, so amounts never pass through float."""
        texts: list[str] = []

        def keep_text(response: requests.Response, *args: Any, **kw: Any) -> None:
            texts.append(response.text)

        self._call("GET", path, hooks={"response": keep_text}, **kwargs)  # maps errors; its floats unused
        return loads_exact(texts[-1])
