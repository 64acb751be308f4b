"""Razorpay adapter: Orders API + Checkout, webhooks signed with HMAC-SHA256 (docs/gateways.md#razorpay).

We create an order; the client opens Razorpay Checkout with its id. Our payment id travels as the
order `receipt` and, with the customer id, in the order `notes`; `gateway_ref` is the order id.

Operators refund the order's captured payment through Razorpay's refund API: our refund entry id is the refund's
`receipt`, its `notes.refund_entry` and its `X-Refund-Idempotency` key, and `find_refund` finds it by them.

A dispute of the order's payment arrives as payment.dispute.* (the dispute and the payment, whose `order_id` is our
gateway_ref): opened or moved on, it shows on the payment; lost, its funds are taken back (a chargeback); won, they
are given back where they were taken (a reversal before any withdrawal takes nothing). `fetch_dispute` and
`fetch_refund` read one dispute or refund by its id, and answer it only when it is of the order's payments.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from payments.gateways.base import (
    Capability,
    CreateRequest,
    CreateResult,
    CurrencyNotSupported,
    DisputeAnswer,
    EventKind,
    GatewayEvent,
    GatewayInputRejected,
    GatewayRejected,
    GatewaySettings,
    RefundAnswer,
    RefundRequest,
    StatusAnswer,
)
from payments.gateways.http import HttpGateway, HttpRejected, call_json
from payments.gateways.payload import read_answer, read_webhook
from payments.gateways.razorpay_models import (
    CreatedOrder,
    Dispute,
    Entity,
    ErrorAnswer,
    Event,
    Order,
    Orders,
    Payment,
    Payments,
    Refund,
    Refunds,
)
from payments.gateways.webhook_body import SHA256, check_hex_hmac, json_object
from payments.ids import is_payment_id
from payments.models import DisputeStatus, RefundStatus
from payments.money import Money

# Razorpay takes INR, and these only once international payments are enabled on the account. A
# documented subset of its international list; extend it after checking the account's enablement.
SUPPORTED_CURRENCIES = frozenset(
    {
        "INR",
        "USD", "EUR", "GBP", "SGD", "AED", "AUD", "CAD", "CHF", "HKD", "JPY", "MYR", "NZD", "SAR", "QAR",
        "SEK", "DKK", "NOK", "ZAR", "THB", "KWD", "BHD", "OMR",
    }
)  # fmt: skip

_SUCCESS_EVENTS = frozenset({"payment.captured", "order.paid"})
# Razorpay's refund statuses. A refund it accepted debits from then on: `pending` until the bank has it.
_REFUND_STATUSES = {
    "pending": RefundStatus.PENDING,
    "processed": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
}
_REFUND_EVENTS = frozenset({"refund.created", "refund.processed", "refund.failed"})
# Razorpay's dispute events. Opened or moved on (the payer's bank reviews it, Razorpay waits for our evidence): the
# payment shows an open dispute, no money moves. Lost: Razorpay deducts the disputed amount (a chargeback). Won: the
# funds stay ours, or come back if Razorpay deducted them at the onset (a reversal; before any withdrawal it offsets
# and takes nothing). Closed: as its entity's status says (_DISPUTE_STATUSES).
_DISPUTE_OPENED = frozenset(
    {"payment.dispute.created", "payment.dispute.under_review", "payment.dispute.action_required"}
)
_DISPUTE_LOST, _DISPUTE_WON, _DISPUTE_CLOSED = "payment.dispute.lost", "payment.dispute.won", "payment.dispute.closed"
# A dispute's status, as its entity says it (GET /v1/disputes/{id}, payment.dispute.closed). `closed` is a fraud
# dispute Razorpay closed once the merchant explained the payment or refunded it: the dispute took nothing (a refund
# is reported as one, with its refund.* events), so it reads as decided for us. Any other status: still open.
_DISPUTE_STATUSES = {
    "open": DisputeStatus.OPEN,
    "under_review": DisputeStatus.OPEN,
    "won": DisputeStatus.WON,
    "lost": DisputeStatus.LOST,
    "closed": DisputeStatus.WON,
}
# What Razorpay takes as an X-Refund-Idempotency key; a key of another form is not sent (find_refund still finds).
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{10,}")
_LOST, _WON = DisputeStatus.LOST, DisputeStatus.WON
_NOTE_LIMIT = 256  # characters of one `notes` value
_PAGE = 100  # refunds one GET /v1/payments/{id}/refunds answers at most


@dataclass(frozen=True, slots=True)
class RazorpaySettings(GatewaySettings):
    """razorpay's credentials (registry: key_id, key_secret, webhook_secret), besides the API base every adapter has."""

    key_id: str = ""
    key_secret: str = ""
    webhook_secret: str = ""


class RazorpayGateway(HttpGateway):
    """`Gateway` for Razorpay. Settings and the HTTP session are created on first use if not given."""

    name = "razorpay"
    # CAPTURE: a payment can stay authorized (a late authorization, the account's capture setting); Razorpay
    # refunds it by itself after days unless we capture it.
    # REFUND: operators refund through POST /v1/payments/{id}/refund.
    capabilities = frozenset({Capability.CAPTURE, Capability.RECONCILE, Capability.REFUND})
    object_name = "Razorpay order {ref}"
    signature_headers = ("x-razorpay-signature", "x-razorpay-event-id")
    currencies = SUPPORTED_CURRENCIES
    settings_class = RazorpaySettings
    _settings: RazorpaySettings

    # ---- creating a payment -------------------------------------------------------------------

    def check_currency(self, money: Money) -> None:
        self.check_listed_currency(money)
        one_unit = 10**money.digits
        if money.minor < one_unit:  # Razorpay's minimum is INR 1.00 (100 paise); we ask 1 unit of any
            raise CurrencyNotSupported(f"razorpay needs at least 1 {money.currency}", field="amount")
        if money.digits == 3 and money.minor % 10:
            raise CurrencyNotSupported(
                f"razorpay needs {money.currency} amounts whose last decimal is 0", field="amount"
            )

    def create(self, request: CreateRequest) -> CreateResult:
        self.check_currency(request.money)
        body = {
            "amount": request.money.minor,
            "currency": request.money.currency,
            "receipt": request.payment_id,  # at most 40 chars; ours are 30. `recover` finds the order by it.
            "notes": {"payment_id": request.payment_id, "customer_id": request.customer_id},
        }
        # Razorpay takes no idempotency key, so a repeated POST could open a second order: the session never
        # repeats it (http.new_session), a timeout surfaces as GatewayUnavailable, and the next attempt looks
        # the order up by its receipt before making another.
        answer = self._call("POST", "/v1/orders", auth=self._auth(), json=body)
        return self._checkout(read_answer(CreatedOrder, answer, self.name, "the order it created").id, request.money)

    def recover(self, request: CreateRequest) -> CreateResult | None:
        """The order an earlier attempt opened for this payment: Razorpay lists orders by `receipt`."""
        answer = self._call(
            "GET", "/v1/orders", auth=self._auth(), params={"receipt": request.payment_id, "count": 100}
        )
        orders = read_answer(Orders, answer, self.name, "the orders of a receipt").items
        ours = [order for order in orders if order.receipt == request.payment_id and order.id]
        if not ours:
            return None
        first = min(ours, key=lambda order: order.created_at)
        if first.money != request.money:
            raise GatewayRejected(f"razorpay holds an order for payment {request.payment_id} with another amount")
        return self._checkout(str(first.id), request.money)

    def _checkout(self, order_id: str, money: Money) -> CreateResult:
        return CreateResult(
            gateway_ref=order_id,
            next_action={
                "type": "razorpay_checkout",
                "order_id": order_id,
                "key_id": self._auth()[0],
                "amount": money.format(),  # the API's decimal string
                "amount_minor": money.minor,  # what Razorpay Checkout's `amount` option takes
                "currency": money.currency,
            },
        )

    # ---- webhooks -------------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        check_hex_hmac(
            secret=self._settings.webhook_secret,
            received=headers.get("x-razorpay-signature", ""),
            message=raw_body,
            digest=SHA256,
            header="X-Razorpay-Signature",
            what="razorpay webhook secret",
        )

    def parse_event(self, headers: Mapping[str, str], raw_body: bytes) -> GatewayEvent:
        event = read_webhook(Event, json_object(raw_body, "razorpay webhook body"), "razorpay event")
        order, payment, refund = event.payload.order, event.payload.payment, event.payload.refund
        dispute = event.payload.dispute
        # The body carries no event id; Razorpay sends it in a header. Without one, the body's hash
        # still dedupes a redelivery (Razorpay resends the same body).
        event_id = headers.get("x-razorpay-event-id") or "sha256:" + hashlib.sha256(raw_body).hexdigest()
        # Order notes and receipt are ours (set with our key); payment notes come from Checkout.
        payment_id, customer_id = _our_ids(order, payment, refund)
        gateway_ref = (order.id if order is not None else None) or (payment.order_id if payment is not None else None)

        def make(
            kind: EventKind,
            money: Money | None = None,
            reason: str | None = None,
            refund_id: str | None = None,
            uncaptured: bool = False,
            refund_status: RefundStatus | None = None,
            dispute_status: DisputeStatus | None = None,
            fee: Money | None = None,
        ) -> GatewayEvent:
            return GatewayEvent(
                provider=self.name,
                event_id=event_id,
                event_type=event.event,
                kind=kind,
                payment_id=payment_id,
                customer_id=customer_id,
                gateway_ref=gateway_ref,
                money=money,
                reason=reason,
                refund_id=refund_id,
                uncaptured=uncaptured,
                refund_status=refund_status,
                dispute_id=dispute.id if dispute is not None else None,
                dispute_status=dispute_status,
                fee=fee,
            )

        if event.event in _SUCCESS_EVENTS:
            if payment is not None:
                return make(EventKind.SUCCESS, payment.money, fee=payment.fee_money)
            return make(EventKind.SUCCESS, order.paid if order is not None else None)
        if event.event == "payment.authorized":  # held, not taken: we capture it (the capture's answer settles)
            return make(EventKind.CAPTURE, payment.money if payment is not None else None)
        if event.event == "payment.failed":
            reason = (payment.error_description or payment.error_code) if payment is not None else None
            money = payment.money if payment is not None else None
            return make(EventKind.FAILURE, money, reason=reason or "payment failed")
        if event.event in _REFUND_EVENTS:
            if refund is None:
                raise ValueError(f"razorpay {event.event} without a refund entity")
            if event.event == "refund.failed":
                return make(EventKind.REFUND_FAILED, refund.money, reason="failed", refund_id=refund.id)
            # Razorpay refunds a payment it authorized but never captured by itself: no money of ours moved.
            uncaptured = payment is not None and payment.captured is False
            # refund.created: Razorpay accepted the refund, so it debits now; it may already say `processed`.
            processed = event.event == "refund.processed" or refund.status == "processed"
            status = RefundStatus.SUCCEEDED if processed else RefundStatus.PENDING
            return make(
                EventKind.REFUND, refund.money, refund_id=refund.id, uncaptured=uncaptured, refund_status=status
            )
        if event.event in _DISPUTE_OPENED or event.event in (_DISPUTE_LOST, _DISPUTE_WON, _DISPUTE_CLOSED):
            if dispute is None:
                raise ValueError(f"razorpay {event.event} without a dispute entity")
            reason = dispute.reason_code
            if event.event == _DISPUTE_LOST:  # what Razorpay deducted, where it says; else what was disputed
                return make(EventKind.CHARGEBACK, dispute.deducted or dispute.money, reason, dispute_status=_LOST)
            if event.event == _DISPUTE_WON:
                return make(EventKind.CHARGEBACK_REVERSAL, dispute.money, reason, dispute_status=_WON)
            if event.event == _DISPUTE_CLOSED:  # decided: lost if the entity says so, else it took nothing
                decided = _LOST if dispute.status == "lost" else _WON
                return make(EventKind.DISPUTE, dispute.money, reason, dispute_status=decided)
            return make(EventKind.DISPUTE, dispute.money, reason, dispute_status=DisputeStatus.OPEN)
        return make(EventKind.IGNORED)

    # ---- reconciliation -------------------------------------------------------------------------

    def fetch_status(self, gateway_ref: str, payment_id: str) -> StatusAnswer:
        auth = self._auth()
        order = read_answer(Order, self._call("GET", f"/v1/orders/{gateway_ref}", auth=auth), self.name, "the order")
        if order.status == "paid":
            return StatusAnswer(EventKind.SUCCESS, money=order.paid)
        if order.status != "attempted":
            return StatusAnswer(EventKind.IGNORED)  # created: the payer has not tried yet
        answer = self._call("GET", f"/v1/orders/{gateway_ref}/payments", auth=auth)
        payments = read_answer(Payments, answer, self.name, "the order's payments").items
        for payment in payments:
            if payment.status == "captured":
                return StatusAnswer(EventKind.SUCCESS, money=payment.money, fee=payment.fee_money)
        if any(p.status == "authorized" for p in payments):
            return StatusAnswer(EventKind.CAPTURE)  # its payment.authorized was lost: the caller captures it
        if payments and all(p.status == "failed" for p in payments):
            last = max(payments, key=lambda p: p.created_at)
            return StatusAnswer(EventKind.FAILURE, reason=last.error_description or "payment failed")
        return StatusAnswer(EventKind.IGNORED)  # authorized, or still being attempted

    # ---- capturing an authorized payment ----------------------------------------------------------

    def capture(self, gateway_ref: str, request_id: str) -> StatusAnswer:
        """Capture the order's authorized payment for the order's amount. Razorpay takes no idempotency key, but a
        payment is captured once: a repeat finds it captured and answers as the order stands."""
        auth = self._auth()
        order = read_answer(Order, self._call("GET", f"/v1/orders/{gateway_ref}", auth=auth), self.name, "the order")
        answer = self._call("GET", f"/v1/orders/{gateway_ref}/payments", auth=auth)
        payments = read_answer(Payments, answer, self.name, "the order's payments").items
        captured = [p for p in payments if p.status == "captured"]
        if captured:
            return StatusAnswer(EventKind.SUCCESS, money=captured[0].money, fee=captured[0].fee_money)
        authorized = [p for p in payments if p.status == "authorized"]
        if not authorized:
            return StatusAnswer(EventKind.IGNORED, reason="no authorized payment to capture")
        held = authorized[0]
        if order.money is None or held.money != order.money:  # capture what was asked, never another amount
            return StatusAnswer(EventKind.IGNORED, reason="the authorized payment is not for the order's amount")
        body = {"amount": order.amount, "currency": order.currency}
        try:
            taken = self._call("POST", f"/v1/payments/{held.id}/capture", json=body, auth=auth)
        except GatewayRejected as exc:
            if "already been captured" in exc.message:  # a concurrent or repeated capture won
                return self.fetch_status(gateway_ref, request_id)
            raise
        payment = read_answer(Payment, taken, self.name, "the capture")
        if payment.status != "captured":
            return StatusAnswer(EventKind.IGNORED, reason=f"payment {payment.status}")
        return StatusAnswer(EventKind.SUCCESS, money=payment.money, fee=payment.fee_money)

    # ---- refunds --------------------------------------------------------------------------------

    def refund(self, request: RefundRequest) -> RefundAnswer:
        """Refund `request.money` of the order's captured payment. Razorpay makes one refund per call: its
        `X-Refund-Idempotency` key (our refund entry id) answers a repeat with the first refund, and the caller
        asks `find_refund` (the receipt and notes carry the same id) before it tries again anyway."""
        auth = self._auth()
        payments = self._refundable_payments(request.gateway_ref)
        if not payments:
            raise GatewayRejected(f"razorpay order {request.gateway_ref} has no captured payment to refund")
        held = payments[0]
        if held.currency is not None and held.currency.upper() != request.money.currency:
            raise GatewayInputRejected(
                f"razorpay took this payment in {held.currency.upper()}, not {request.money.currency}", field="currency"
            )
        notes = {
            "refund_entry": request.key,
            "payment_id": request.payment_id,
            "customer_id": request.customer_id,
        }
        if request.reason:
            notes["reason"] = request.reason[:_NOTE_LIMIT]
        body = {"amount": request.money.minor, "receipt": request.key, "notes": notes}
        # Not an idempotency header the session knows (http.IDEMPOTENCY_HEADERS): the POST is still sent once.
        headers = {"X-Refund-Idempotency": request.key} if _IDEMPOTENCY_KEY.fullmatch(request.key) else {}
        try:
            answer = self._call("POST", f"/v1/payments/{held.id}/refund", auth=auth, json=body, headers=headers)
        except HttpRejected as exc:
            if _refund_refused(exc):  # more than is left, or nothing left: nothing was refunded
                raise GatewayInputRejected(exc.message, field="amount") from exc
            raise
        return _refund_answer(read_answer(Refund, answer, self.name, "the refund it made"), request.money.currency)

    def find_refund(self, request: RefundRequest) -> RefundAnswer | None:
        """The refund whose receipt (or notes.refund_entry) is `request.key`, among the refunds of the order's
        captured payments; None if there is none."""
        auth = self._auth()
        for held in self._refundable_payments(request.gateway_ref):
            skip = 0
            while True:
                params = {"count": _PAGE, "skip": skip}
                answer = self._call("GET", f"/v1/payments/{held.id}/refunds", auth=auth, params=params)
                refunds = read_answer(Refunds, answer, self.name, "the payment's refunds").items
                for made in refunds:
                    if request.key in (made.receipt, made.notes.refund_entry):
                        return _refund_answer(made, request.money.currency)
                if len(refunds) < _PAGE:
                    break
                skip += _PAGE
        return None

    def fetch_refund(self, gateway_ref: str, refund_id: str) -> RefundAnswer | None:
        """Refund `refund_id` (GET /v1/refunds/{id}) as Razorpay has it now, if it refunds one of the order's
        payments; None if Razorpay knows no such refund, or it refunds another payment."""
        try:
            answer = self._call("GET", f"/v1/refunds/{refund_id}", auth=self._auth())
        except HttpRejected as exc:
            if _not_found(exc):
                return None
            raise
        made = read_answer(Refund, answer, self.name, "the refund")
        if made.id != refund_id:
            raise GatewayRejected(f"razorpay answered another refund than {refund_id}")
        held = next((p for p in self._order_payments(gateway_ref) if p.id and p.id == made.payment_id), None)
        if held is None:
            return None
        if held.currency is None:
            raise GatewayRejected(f"razorpay shows payment {held.id} without its currency")
        return _refund_answer(made, held.currency.upper())

    def _order_payments(self, gateway_ref: str) -> list[Payment]:
        """Every payment of the order (none if Razorpay knows no such order)."""
        try:
            answer = self._call("GET", f"/v1/orders/{gateway_ref}/payments", auth=self._auth())
        except HttpRejected as exc:
            if _not_found(exc):
                return []
            raise
        return read_answer(Payments, answer, self.name, "the order's payments").items

    def _refundable_payments(self, gateway_ref: str) -> list[Payment]:
        """The order's captured payments (refunded ones too), oldest first: the refunds are made against them."""
        answer = self._call("GET", f"/v1/orders/{gateway_ref}/payments", auth=self._auth())
        payments = read_answer(Payments, answer, self.name, "the order's payments").items
        captured = [p for p in payments if p.id and (p.captured is True or p.status == "captured")]
        return sorted(captured, key=lambda p: p.created_at)

    # ---- disputes --------------------------------------------------------------------------------

    def fetch_dispute(self, gateway_ref: str, dispute_id: str) -> DisputeAnswer | None:
        """Dispute `dispute_id` (GET /v1/disputes/{id}) as Razorpay has it now, if it disputes one of the order's
        payments; None if Razorpay knows no such dispute, or it disputes another payment. Lost: its funds were
        withdrawn (what Razorpay deducted, where it says). Won: nothing moved, unless Razorpay says it deducted the
        amount (at the onset), which the win gave back."""
        try:
            answer = self._call("GET", f"/v1/disputes/{dispute_id}", auth=self._auth())
        except HttpRejected as exc:
            if _not_found(exc):
                return None
            raise
        dispute = read_answer(Dispute, answer, self.name, "the dispute")
        if dispute.id != dispute_id:
            raise GatewayRejected(f"razorpay answered another dispute than {dispute_id}")
        if not any(p.id and p.id == dispute.payment_id for p in self._order_payments(gateway_ref)):
            return None
        disputed = dispute.money
        if disputed is None:
            raise GatewayRejected(f"razorpay answered dispute {dispute_id} without an amount we can read")
        status = _DISPUTE_STATUSES.get(dispute.status or "", DisputeStatus.OPEN)
        deducted = dispute.deducted
        lost, won_back = dispute.status == "lost", dispute.status == "won" and deducted is not None
        return DisputeAnswer(
            dispute_id=dispute_id,
            status=status,
            money=(deducted or disputed) if lost else disputed,
            reason=dispute.reason_code,
            withdrawn=lost or won_back,
            reinstated=won_back,
        )

    # ---- plumbing -------------------------------------------------------------------------------

    def _auth(self) -> tuple[str, str]:
        settings = self._settings
        return (
            _required(settings.key_id, "RAZORPAY_KEY_ID"),
            _required(settings.key_secret, "RAZORPAY_KEY_SECRET"),
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = self._settings.api_base.rstrip("/") + path
        try:
            return call_json(self.session, method, url, gateway=self.name, **kwargs)
        except HttpRejected as exc:
            detail = ErrorAnswer.model_validate(exc.body or {}).error.description
            if detail:  # Razorpay's own words help whoever reads the 502
                raise HttpRejected(f"{exc.message}: {detail[:200]}", exc.status, exc.body) from exc
            raise


def _required(value: str, variable: str) -> str:
    if not value:
        raise GatewayRejected(f"razorpay is not configured ({variable} is empty)")
    return value


def _refund_refused(exc: HttpRejected) -> bool:
    """Razorpay's 400 for a refund it will not make: above what is left of the payment, or nothing left."""
    error = ErrorAnswer.model_validate(exc.body or {}).error
    if exc.status != 400 or error.code not in (None, "BAD_REQUEST_ERROR"):
        return False
    description = (error.description or "").lower()
    return error.field == "amount" or "refund" in description or "amount" in description


def _not_found(exc: HttpRejected) -> bool:
    """Razorpay's answer about an id it does not know: 400 "The id provided does not exist" (404: no such path)."""
    if exc.status == 404:
        return True
    description = (ErrorAnswer.model_validate(exc.body or {}).error.description or "").lower()
    return exc.status == 400 and "does not exist" in description


def _refund_answer(refund: Refund, currency: str) -> RefundAnswer:
    """A refund Razorpay made of a payment in `currency`, in neutral terms. Razorpay's refund listings may leave
    `currency` empty: a refund is always in its payment's currency."""
    if refund.id is None or refund.amount is None or refund.status is None:
        raise GatewayRejected("razorpay answered a refund without its id, amount or status")
    money = refund.money if refund.currency else Money(refund.amount, currency)
    if money is None or money.currency != currency:
        raise GatewayRejected(f"razorpay answered refund {refund.id} in a currency we cannot read")
    status = _REFUND_STATUSES.get(refund.status, RefundStatus.PENDING)  # accepted, not refused: it debits
    return RefundAnswer(
        refund_id=refund.id,
        status=status,
        money=money,
        reason="failed" if status is RefundStatus.FAILED else None,
    )


def _our_ids(*entities: Entity | None) -> tuple[str | None, str | None]:
    """Our payment and customer ids from the first entity that carries them (order first). Only an order's
    receipt is our payment id: a refund's is our refund entry's."""
    payment_id = customer_id = None
    for entity in entities:
        if entity is None:
            continue
        candidate = entity.notes.payment_id or (entity.receipt if isinstance(entity, Order) else None)
        if payment_id is None and candidate and is_payment_id(candidate):
            payment_id = candidate
        customer_id = customer_id or entity.notes.customer_id
    return payment_id, customer_id
