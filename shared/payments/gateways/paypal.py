"""PayPal adapter: Orders v2 with intent CAPTURE, webhooks verified by PayPal's postback API (docs/gateways.md#paypal).

Flow: `create` makes an order and hands the payer its approve link; PayPal sends
CHECKOUT.ORDER.APPROVED (kind CAPTURE) and we call `capture`; PAYMENT.CAPTURE.COMPLETED then settles
it. Our ids travel in the purchase unit: `reference_id` and `invoice_id` = payment_id, `custom_id` =
"customer_id:payment_id" (payment_id alone if that would pass PayPal's 127 characters).
Every order call carries `PayPal-Request-Id`, which makes retries safe; the OAuth token is cached
per adapter instance until shortly before it expires.

Operator refunds refund the order's capture (`refund`: POST /v2/payments/captures/{id}/refund, PayPal-Request-Id =
our refund entry's id, which is also the refund's `custom_id`); `find_refund` finds one again among the order's
`payments.refunds`. PayPal reports them as PAYMENT.CAPTURE.REFUNDED.

Disputes name our capture (`disputed_transactions[].seller_transaction_id`), which names the order:
CUSTOMER.DISPUTE.CREATED and .UPDATED read as DISPUTE (open); .RESOLVED for the buyer as CHARGEBACK (lost), for us as
CHARGEBACK_REVERSAL (won), any other outcome as DISPUTE (`RESOLVED_OUTCOMES`). PAYMENT.CAPTURE.REVERSED (PayPal took the
capture back: a reversal, refund-shaped, under its own id) is a CHARGEBACK too. Funds move under the capture's id
(`funds_id`), so a lost dispute and the reversal of its capture take the money once. Reconciliation asks
`fetch_dispute` (GET /v1/customer/disputes/{id}) and `fetch_refund` (GET /v2/payments/refunds/{id}).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

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
    SignatureInvalid,
    StatusAnswer,
)
from payments.gateways.http import HttpRejected, call_json, new_session
from payments.gateways.payload import read_answer, read_webhook
from payments.gateways.paypal_models import (
    AccessToken,
    Dispute,
    DisputeEvent,
    ErrorAnswer,
    Event,
    Order,
    Payment,
    Verification,
)
from payments.gateways.webhook_body import json_object
from payments.models import DisputeStatus, RefundStatus
from payments.money import Money

# developer.paypal.com/reference/currency-codes: the currencies the REST API takes.
SUPPORTED_CURRENCIES = frozenset(
    {"AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "HUF", "ILS", "JPY", "MYR", "MXN", "TWD", "NZD", "NOK",
     "PHP", "PLN", "GBP", "SGD", "SEK", "CHF", "THB", "USD"}
)  # fmt: skip
WHOLE_UNITS_ONLY = frozenset({"HUF", "JPY", "TWD"})  # PayPal takes no decimals for these
CUSTOM_ID_MAX = 127
NOTE_TO_PAYER_MAX = 255  # a refund's note_to_payer
REQUEST_ID_MAX = 108  # PayPal-Request-Id length limit
TOKEN_MARGIN_SECONDS = 60  # refresh the OAuth token this long before PayPal says it expires
SIGNATURE_HEADERS = (
    "paypal-auth-algo",
    "paypal-cert-url",
    "paypal-transmission-id",
    "paypal-transmission-sig",
    "paypal-transmission-time",
)
_ORDER_ID = re.compile(r"[A-Z0-9-]{1,64}")  # PayPal ids are upper-case alphanumerics; ours go in URL paths

# PayPal event type -> what it means for our payment. Anything else is IGNORED.
EVENT_KINDS: dict[str, EventKind] = {
    "CHECKOUT.ORDER.APPROVED": EventKind.CAPTURE,  # the payer approved: we must capture
    "PAYMENT.CAPTURE.COMPLETED": EventKind.SUCCESS,
    "PAYMENT.CAPTURE.DENIED": EventKind.FAILURE,
    "PAYMENT.CAPTURE.DECLINED": EventKind.FAILURE,
    "CHECKOUT.ORDER.VOIDED": EventKind.FAILURE,
    "CHECKOUT.PAYMENT-APPROVAL.REVERSED": EventKind.FAILURE,  # approval undone before the capture settled
    "PAYMENT.CAPTURE.REFUNDED": EventKind.REFUND,
    "PAYMENT.CAPTURE.PENDING": EventKind.HELD,  # not there yet (status_details.reason); COMPLETED or DENIED follows
    "PAYMENT.CAPTURE.REVERSED": EventKind.CHARGEBACK,  # PayPal took the capture back (a chargeback or a reversal)
    # Disputes (developer.paypal.com/docs/disputes/webhooks): RESOLVED moves money as its outcome says.
    "CUSTOMER.DISPUTE.CREATED": EventKind.DISPUTE,
    "CUSTOMER.DISPUTE.UPDATED": EventKind.DISPUTE,
    "CUSTOMER.DISPUTE.RESOLVED": EventKind.DISPUTE,
}
# A resolved dispute's outcome_code -> the dispute's state. The buyer's favour takes the disputed funds back (a
# chargeback) and ours gives them back (a chargeback reversal, which cancels out where none was taken); the others move
# no money here: a claim the merchant ACCEPTED is refunded, which PayPal reports as its own event, and PayPal itself
# pays out RESOLVED_WITH_PAYOUT.
BUYER_FAVOUR, SELLER_FAVOUR = "RESOLVED_BUYER_FAVOUR", "RESOLVED_SELLER_FAVOUR"
RESOLVED_OUTCOMES: dict[str, DisputeStatus] = {
    BUYER_FAVOUR: DisputeStatus.LOST,
    SELLER_FAVOUR: DisputeStatus.WON,
    "ACCEPTED": DisputeStatus.LOST,
    "RESOLVED_WITH_PAYOUT": DisputeStatus.WON,
    "CANCELED_BY_BUYER": DisputeStatus.WON,
    "DENIED": DisputeStatus.WON,
}  # any other (NONE): won, nothing taken
# A refund's status (Payments v2 refund object) -> our refund entry's.
REFUND_STATUSES: dict[str, RefundStatus] = {
    "COMPLETED": RefundStatus.SUCCEEDED,
    "PENDING": RefundStatus.PENDING,  # status_details.reason says why (ECHECK)
    "FAILED": RefundStatus.FAILED,
    "CANCELLED": RefundStatus.FAILED,
}
REFUNDABLE_CAPTURES = frozenset({"COMPLETED", "PARTIALLY_REFUNDED"})


def custom_id_for(customer_id: str, payment_id: str) -> str:
    combined = f"{customer_id}:{payment_id}"
    return combined if len(combined) <= CUSTOM_ID_MAX else payment_id


def parse_custom_id(value: str | None) -> tuple[str | None, str | None]:
    """(customer_id, payment_id) from our custom_id; payment ids never contain ':'."""
    if not value:
        return None, None
    customer, sep, payment = value.rpartition(":")
    return (customer or None, payment) if sep else (None, value)


def _request_id(key: str) -> str:
    return key if len(key) <= REQUEST_ID_MAX else hashlib.sha256(key.encode()).hexdigest()


def _refund_custom_id(key: str) -> str:
    """The custom_id a refund for our refund entry `key` carries (a digest past PayPal's 127 characters)."""
    return key if len(key) <= CUSTOM_ID_MAX else hashlib.sha256(key.encode()).hexdigest()


def _amount_value(money: Money) -> str:
    if money.currency in WHOLE_UNITS_ONLY:
        return str(money.minor // 10**money.digits)
    return money.format()


@dataclass(frozen=True, slots=True)
class PayPalSettings(GatewaySettings):
    """paypal's credentials (registry: client_id, client_secret, webhook_id), besides the API base every adapter has."""

    client_id: str = ""
    client_secret: str = ""
    webhook_id: str = ""


class PayPalGateway:
    """PayPal Checkout (Orders v2). `session` is for tests; by default a retrying one is built lazily."""

    name = "paypal"
    object_name = "PayPal order {ref}"
    signature_headers = (
        "paypal-transmission-sig",
        "paypal-transmission-id",
        "paypal-transmission-time",
        "paypal-cert-url",
        "paypal-auth-algo",
    )
    settings_class = PayPalSettings
    capabilities = frozenset({Capability.CAPTURE, Capability.RECONCILE, Capability.REFUND})

    def __init__(self, settings: PayPalSettings, session: requests.Session | None = None) -> None:
        self._settings = settings
        self._session = session
        self._token: str | None = None
        self._token_expires_at = 0.0  # time.monotonic() seconds

    # -- creating --------------------------------------------------------------------------------

    def check_currency(self, money: Money) -> None:
        if money.currency not in SUPPORTED_CURRENCIES:
            raise CurrencyNotSupported(f"PayPal payments cannot be made in {money.currency}")
        if money.minor <= 0:
            raise CurrencyNotSupported("amount must be positive", field="amount")
        if money.currency in WHOLE_UNITS_ONLY and money.minor % 10**money.digits:
            raise CurrencyNotSupported(f"PayPal takes {money.currency} in whole units only", field="amount")

    def create(self, request: CreateRequest) -> CreateResult:
        self.check_currency(request.money)
        return_url = request.return_url or self._settings.portal_return_url
        context: dict[str, Any] = {
            "return_url": return_url,
            "cancel_url": request.cancel_url or return_url,
            "user_action": "PAY_NOW",  # we capture as soon as the payer approves
            "shipping_preference": "NO_SHIPPING",
        }
        source: dict[str, Any] = {"experience_context": context}
        if request.email:
            source["email_address"] = request.email
        body = {
            "intent": "CAPTURE",
            "purchase_units": [
                {
                    "reference_id": request.payment_id,
                    "invoice_id": request.payment_id,
                    "custom_id": custom_id_for(request.customer_id, request.payment_id),
                    "description": request.description[:127],
                    "amount": {"currency_code": request.money.currency, "value": _amount_value(request.money)},
                }
            ],
            "payment_source": {"paypal": source},
        }
        answer = self._api("POST", "/v2/checkout/orders", json=body, request_id=request.idempotency_key)
        order = read_answer(Order, answer, self.name, "the order it created")
        url = order.link("payer-action", "approve")
        if order.id is None or url is None:
            raise GatewayRejected("PayPal created an order without an id or approve link")
        return CreateResult(gateway_ref=order.id, next_action={"type": "redirect", "url": url})

    # -- one order per payment: a later attempt repeats `create` with the same PayPal-Request-Id, which PayPal
    # answers with the first order (gateways.base.Gateway) --

    def reference_for_attempt(self, payment_id: str, attempt: int) -> str | None:
        return None

    def recover(self, request: CreateRequest) -> CreateResult | None:
        return None

    def resume(self, gateway_ref: str, stored_next_action: dict[str, Any] | None) -> CreateResult:
        return CreateResult(gateway_ref, next_action=stored_next_action)  # pending until its webhook says more

    def capture(self, order_id: str, request_id: str) -> StatusAnswer:
        """Capture an approved order. Same `request_id` again -> PayPal answers the first capture."""
        _check_order_id(order_id)
        try:
            order = self._api("POST", f"/v2/checkout/orders/{order_id}/capture", json={}, request_id=request_id)
        except HttpRejected as exc:
            issue = ErrorAnswer.model_validate(exc.body or {}).issue
            if issue == "ORDER_ALREADY_CAPTURED":  # e.g. a redelivered APPROVED after the request id expired
                return self._order_answer(self._order(order_id))
            if issue == "ORDER_NOT_APPROVED":
                return StatusAnswer(EventKind.IGNORED, reason=issue)
            if issue in {"INSTRUMENT_DECLINED", "TRANSACTION_REFUSED", "PAYER_CANNOT_PAY"}:
                return StatusAnswer(EventKind.FAILURE, reason=issue)
            raise
        return self._order_answer(read_answer(Order, order, self.name, "the capture"))

    # -- refunds ---------------------------------------------------------------------------------

    def refund(self, request: RefundRequest) -> RefundAnswer:
        """Refund `request.money` of the order's capture, which the order names (`gateway_ref` is the order id).
        Same key again -> PayPal answers the first refund (PayPal-Request-Id, kept 6 h: `find_refund` after that)."""
        _check_order_id(request.gateway_ref)
        self.check_currency(request.money)  # positive, and whole units where PayPal takes no decimals
        capture_id = _refundable_capture(self._order(request.gateway_ref))
        body: dict[str, Any] = {
            "amount": {"value": _amount_value(request.money), "currency_code": request.money.currency},
            "custom_id": _refund_custom_id(request.key),
        }
        if request.reason:
            body["note_to_payer"] = request.reason[:NOTE_TO_PAYER_MAX]
        path = f"/v2/payments/captures/{capture_id}/refund"
        try:
            answer = self._api("POST", path, json=body, request_id=request.key)
        except HttpRejected as exc:
            if exc.status == 422:  # UNPROCESSABLE_ENTITY: PayPal refuses this refund; nothing was refunded
                issue = ErrorAnswer.model_validate(exc.body or {}).issue or "UNPROCESSABLE_ENTITY"
                raise GatewayInputRejected(f"PayPal refused the refund: {issue[:80]}", field="amount") from None
            raise
        return _refund_answer(read_answer(Payment, answer, self.name, "the refund"))

    def find_refund(self, request: RefundRequest) -> RefundAnswer | None:
        """The refund of the order whose custom_id is our refund entry's id, as the order lists its refunds. An order
        shown without its capture says nothing of its refunds: GatewayRejected, never "none made"."""
        _check_order_id(request.gateway_ref)
        wanted = _refund_custom_id(request.key)
        order = self._order(request.gateway_ref)
        if not any(unit.payments.captures for unit in order.purchase_units):
            raise GatewayRejected("PayPal answered the order without its capture, so its refunds are unknown")
        for unit in order.purchase_units:
            for refund in unit.payments.refunds:
                if refund.custom_id == wanted:
                    return _refund_answer(refund)
        return None

    def fetch_refund(self, gateway_ref: str, refund_id: str) -> RefundAnswer | None:
        """GET /v2/payments/refunds/{id}: the refund as PayPal has it now, if it refunds the order's capture."""
        _check_order_id(gateway_ref)
        _check_order_id(refund_id)
        answer = self._found("GET", f"/v2/payments/refunds/{refund_id}")
        if answer is None:
            return None
        refund = read_answer(Payment, answer, self.name, "the refund")
        order = self._order(gateway_ref)
        captures = {capture.id for unit in order.purchase_units for capture in unit.payments.captures}
        if not captures:
            raise GatewayRejected("PayPal answered the order without its capture, so its refunds are unknown")
        capture_id = refund.up_capture_id
        if capture_id is None or capture_id not in captures:
            return None  # another payment's refund
        return _refund_answer(refund)

    def fetch_dispute(self, gateway_ref: str, dispute_id: str) -> DisputeAnswer | None:
        """GET /v1/customer/disputes/{id}: the dispute as PayPal has it now, if the capture it names is this order's.
        Funds count as withdrawn once it is resolved in the buyer's favour; PayPal gives them back by no other word."""
        _check_order_id(gateway_ref)
        _check_order_id(dispute_id)
        answer = self._found("GET", f"/v1/customer/disputes/{dispute_id}")
        if answer is None:
            return None
        dispute = read_answer(Dispute, answer, self.name, "the dispute")
        capture_id = dispute.capture_id
        if capture_id is None or self.capture_references(capture_id, missing_ok=True)[2] != gateway_ref:
            return None
        if dispute.dispute_amount is None:
            raise GatewayRejected("PayPal answered a dispute without its amount")
        status = DisputeStatus.OPEN
        if dispute.status == "RESOLVED":
            status = RESOLVED_OUTCOMES.get(dispute.dispute_outcome.outcome_code or "", DisputeStatus.WON)
        return DisputeAnswer(
            dispute_id=dispute.dispute_id,
            status=status,
            money=dispute.dispute_amount.money,
            reason=dispute.reason,
            withdrawn=dispute.status == "RESOLVED" and dispute.dispute_outcome.outcome_code == BUYER_FAVOUR,
            funds_id=capture_id,
        )

    # -- webhooks --------------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        """Ask PayPal whether it signed this delivery. A network failure raises GatewayUnavailable
        (answered 503, so PayPal delivers again) rather than SignatureInvalid."""
        missing = [name for name in SIGNATURE_HEADERS if not headers.get(name)]
        if missing:
            raise SignatureInvalid(f"missing PayPal signature header(s): {', '.join(missing)}")
        if not self._settings.webhook_id:
            raise SignatureInvalid("paypal webhooks are not configured")
        try:
            json_object(raw_body)
        except ValueError:  # not JSON (nor UTF-8), or not an object
            raise SignatureInvalid("PayPal webhook body is not a JSON object") from None
        fields = {
            "auth_algo": headers["paypal-auth-algo"],
            "cert_url": headers["paypal-cert-url"],
            "transmission_id": headers["paypal-transmission-id"],
            "transmission_sig": headers["paypal-transmission-sig"],
            "transmission_time": headers["paypal-transmission-time"],
            "webhook_id": self._settings.webhook_id,
        }
        # The event goes in byte for byte: PayPal checks a CRC of the body it sent, and a
        # re-serialised copy (key order, escapes, number forms) would not match.
        payload = json.dumps(fields)[:-1].encode() + b',"webhook_event":' + raw_body + b"}"
        try:
            answer = self._api(
                "POST",
                "/v1/notifications/verify-webhook-signature",
                data=payload,
                headers={"Content-Type": "application/json"},
            )
        except HttpRejected as exc:
            if exc.status in (400, 422):  # PayPal refused the signature fields themselves
                raise SignatureInvalid("PayPal refused to verify this webhook signature") from None
            raise
        if read_answer(Verification, answer, self.name, "the verification").verification_status != "SUCCESS":
            raise SignatureInvalid("PayPal says this webhook signature is not valid")

    def parse_event(self, headers: Mapping[str, str], raw_body: bytes) -> GatewayEvent:
        body = json_object(raw_body, "paypal webhook body")
        event = read_webhook(Event, body, "paypal event")
        kind = EVENT_KINDS.get(event.event_type, EventKind.IGNORED)
        if kind is EventKind.DISPUTE:  # CUSTOMER.DISPUTE.*: the resource is a dispute
            return self._dispute_event(read_webhook(DisputeEvent, body, f"paypal {event.event_type} event"))
        resource = event.resource

        def make(
            payment_id: str | None,
            customer_id: str | None,
            gateway_ref: str | None,
            money: Money | None = None,
            reason: str | None = None,
            refund_id: str | None = None,
            refund_status: RefundStatus | None = None,
            as_kind: EventKind | None = None,
            fee: Money | None = None,
        ) -> GatewayEvent:
            return GatewayEvent(
                provider=self.name,
                event_id=event.id,
                event_type=event.event_type,
                kind=as_kind or kind,
                payment_id=payment_id,
                customer_id=customer_id,
                gateway_ref=gateway_ref,
                money=money,
                reason=reason,
                refund_id=refund_id,
                refund_status=refund_status,
                fee=fee,
            )

        if isinstance(resource, Order):  # CHECKOUT.* events
            unit = resource.unit
            customer_id, payment_id = parse_custom_id(unit.custom_id)
            money = unit.amount.money if unit.amount is not None else None  # read (so checked) for every kind
            return make(
                payment_id or unit.reference_id,
                customer_id,
                resource.order_id or resource.id,
                money=money if kind is EventKind.CAPTURE else None,
                reason=event.event_type if kind is EventKind.FAILURE else None,
            )

        # A capture (PAYMENT.CAPTURE.*) or a refund (PAYMENT.CAPTURE.REFUNDED) resource.
        if kind is EventKind.CHARGEBACK:
            return self._reversal_event(event, resource)
        customer_id, payment_id = parse_custom_id(resource.custom_id)
        payment_id = payment_id or resource.invoice_id
        if kind is EventKind.REFUND:
            # Its "up" link names the capture, which PayPal resolves to our ids and the order id (the gateway_ref we
            # stored). Those come first: a refund's own custom_id is the payment's only where PayPal copied it, and
            # one `refund` made carries our refund entry's id there instead.
            if resource.id is None:
                raise ValueError("paypal refund without its id")
            refunded = _amount(resource)  # read before PayPal is asked about the capture
            status = REFUND_STATUSES.get(resource.status or "")
            failed = status is RefundStatus.FAILED  # not returned after all: never a debit
            capture_id = resource.up_id
            order_id = None
            if capture_id:
                found_customer, found_payment, order_id = self.capture_references(capture_id)
                customer_id, payment_id = found_customer or customer_id, found_payment or payment_id
            return make(
                payment_id,
                customer_id,
                order_id or capture_id,
                money=refunded,
                reason=(resource.status_details.reason or resource.status) if failed else None,
                refund_id=resource.id,
                refund_status=status,
                as_kind=EventKind.REFUND_FAILED if failed else None,
            )
        reason = resource.status_details.reason or resource.status or event.event_type
        if kind is EventKind.HELD:
            reason = held_because(resource.status_details.reason)
        return make(
            payment_id,
            customer_id,
            resource.order_id,
            money=_amount(resource) if kind is EventKind.SUCCESS else None,
            reason=reason if kind in (EventKind.FAILURE, EventKind.HELD) else None,
            fee=resource.fee if kind is EventKind.SUCCESS else None,
        )

    def _dispute_event(self, event: DisputeEvent) -> GatewayEvent:
        """CUSTOMER.DISPUTE.*: about the order of the capture it names (a capture PayPal does not have, or none named:
        about no payment of ours). RESOLVED in the buyer's favour takes the disputed amount back and in ours gives it
        back, under the capture's id (`funds_id`), as PAYMENT.CAPTURE.REVERSED takes it."""
        dispute = event.resource
        outcome = dispute.dispute_outcome
        # Read (so checked) before PayPal is asked about the capture.
        amount = dispute.dispute_amount or outcome.amount_refunded
        money = amount.money if amount is not None else None
        kind, status = EventKind.DISPUTE, DisputeStatus.OPEN
        if event.event_type == "CUSTOMER.DISPUTE.RESOLVED":
            status = RESOLVED_OUTCOMES.get(outcome.outcome_code or "", DisputeStatus.WON)
            if outcome.outcome_code == BUYER_FAVOUR:
                kind = EventKind.CHARGEBACK
            elif outcome.outcome_code == SELLER_FAVOUR:
                kind = EventKind.CHARGEBACK_REVERSAL
        capture_id = dispute.capture_id
        customer_id = payment_id = order_id = None
        if capture_id:
            customer_id, payment_id, order_id = self.capture_references(capture_id, missing_ok=True)
        return GatewayEvent(
            provider=self.name,
            event_id=event.id,
            event_type=event.event_type,
            kind=kind,
            payment_id=payment_id,
            customer_id=customer_id,
            gateway_ref=order_id or capture_id,
            money=money,
            reason=dispute.reason,
            dispute_id=dispute.dispute_id,
            dispute_status=status,
            funds_id=capture_id if kind is not EventKind.DISPUTE else None,
        )

    def _reversal_event(self, event: Event, resource: Payment) -> GatewayEvent:
        """PAYMENT.CAPTURE.REVERSED: PayPal took (part of) the capture back. The resource is the reversal, a refund
        under its own id whose "up" link names the capture (or, in older payloads, the capture itself, REVERSED). A
        chargeback under the capture's id, so the dispute lost for the same capture takes the money only once."""
        if resource.id is None:
            raise ValueError("paypal reversal without its id")
        money = _amount(resource)  # read before PayPal is asked about the capture
        customer_id, payment_id = parse_custom_id(resource.custom_id)
        payment_id = payment_id or resource.invoice_id
        capture_id, order_id = resource.up_capture_id, resource.order_id
        if capture_id is not None:
            found_customer, found_payment, order_id = self.capture_references(capture_id, missing_ok=True)
            customer_id, payment_id = found_customer or customer_id, found_payment or payment_id
        elif order_id is not None:  # the capture itself
            capture_id = resource.id
        return GatewayEvent(
            provider=self.name,
            event_id=event.id,
            event_type=event.event_type,
            kind=EventKind.CHARGEBACK,
            payment_id=payment_id,
            customer_id=customer_id,
            gateway_ref=order_id or capture_id,
            money=money,
            reason=resource.status_details.reason or resource.note_to_payer,
            dispute_id=resource.id,
            dispute_status=DisputeStatus.LOST,  # taken back: nothing more to decide
            funds_id=capture_id or resource.id,
        )

    def capture_references(
        self, capture_id: str, *, missing_ok: bool = False
    ) -> tuple[str | None, str | None, str | None]:
        """(customer_id, payment_id, order_id) of a capture: for refund and dispute events that carry no ids of ours.
        `missing_ok`: a capture PayPal does not have (or an id that cannot be one) has none, rather than a 502."""
        if missing_ok and not _ORDER_ID.fullmatch(capture_id):
            return None, None, None
        _check_order_id(capture_id)
        path = f"/v2/payments/captures/{capture_id}"
        answer = self._found("GET", path) if missing_ok else self._api("GET", path)
        if answer is None:
            return None, None, None
        capture = read_answer(Payment, answer, self.name, "a capture")
        customer_id, payment_id = parse_custom_id(capture.custom_id)
        return customer_id, payment_id or capture.invoice_id, capture.order_id

    def _found(self, method: str, path: str) -> dict[str, Any] | None:
        """`_api`, with None for PayPal's 404 (RESOURCE_NOT_FOUND: it has no such object)."""
        try:
            return self._api(method, path)
        except HttpRejected as exc:
            if exc.status == 404:
                return None
            raise

    # -- reconciliation --------------------------------------------------------------------------

    def fetch_status(self, gateway_ref: str, payment_id: str) -> StatusAnswer:
        """SUCCESS/FAILURE as the order's capture says; CAPTURE for an order approved but never
        captured (its webhook was lost: the caller should `capture` it); IGNORED while open."""
        _check_order_id(gateway_ref)
        order = self._order(gateway_ref)
        owner = order.unit.reference_id or parse_custom_id(order.unit.custom_id)[1]
        if owner and owner != payment_id:
            return StatusAnswer(EventKind.IGNORED, reason=f"order {gateway_ref} belongs to another payment")
        return self._order_answer(order)

    def _order(self, order_id: str) -> Order:
        return read_answer(Order, self._api("GET", f"/v2/checkout/orders/{order_id}"), self.name, "the order")

    @staticmethod
    def _order_answer(order: Order) -> StatusAnswer:
        if order.status == "VOIDED":
            return StatusAnswer(EventKind.FAILURE, reason="order voided")
        capture = order.first_capture
        if capture is not None:
            if capture.status in {"COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"}:  # paid; refunds come as events
                return StatusAnswer(EventKind.SUCCESS, money=_amount(capture), fee=capture.fee)
            if capture.status in {"DECLINED", "FAILED"}:
                return StatusAnswer(EventKind.FAILURE, reason=capture.status_details.reason or capture.status)
            if capture.status == "PENDING":
                return StatusAnswer(EventKind.HELD, reason=held_because(capture.status_details.reason))
            return StatusAnswer(EventKind.IGNORED, reason=f"capture {capture.status}")
        if order.status == "APPROVED":
            return StatusAnswer(EventKind.CAPTURE)
        return StatusAnswer(EventKind.IGNORED)

    # -- HTTP --------------------------------------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = new_session()
        return self._session

    def _api(
        self,
        method: str,
        path: str,
        *,
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One authenticated call; a 401 (token revoked early) gets one new token and one more try."""
        sent = dict(headers or {})
        if request_id is not None:
            sent["PayPal-Request-Id"] = _request_id(request_id)
            sent["Prefer"] = "return=representation"
        url = self._settings.api_base.rstrip("/") + path
        for attempt in (1, 2):
            sent["Authorization"] = f"Bearer {self._access_token()}"
            try:
                return call_json(self.session, method, url, gateway=self.name, headers=sent, **kwargs)
            except HttpRejected as exc:
                if exc.status != 401 or attempt == 2:
                    raise
                self._token = None
        raise AssertionError("unreachable")  # pragma: no cover

    def _access_token(self) -> str:
        if self._token is not None and time.monotonic() < self._token_expires_at:
            return self._token
        client_id, secret = self._settings.client_id, self._settings.client_secret
        if not client_id or not secret:
            raise GatewayRejected("PayPal credentials are not configured")
        answer = call_json(
            self.session,
            "POST",
            self._settings.api_base.rstrip("/") + "/v1/oauth2/token",
            gateway=self.name,
            auth=(client_id, secret),
            data={"grant_type": "client_credentials"},
            headers={"Accept": "application/json"},
        )
        token = read_answer(AccessToken, answer, self.name, "the token request")
        self._token = token.access_token
        self._token_expires_at = time.monotonic() + max(token.expires_in - TOKEN_MARGIN_SECONDS, 0)
        return token.access_token


def _check_order_id(value: str) -> None:
    """An order, capture, refund or dispute id (the characters PayPal's ids have), before it goes in a URL path."""
    if not _ORDER_ID.fullmatch(value):
        raise GatewayRejected("not a PayPal order or capture id")


def _refundable_capture(order: Order) -> str:
    """The id of the order's capture a refund returns money of: COMPLETED, or PARTIALLY_REFUNDED already.
    A fully refunded one is the operator's to know (422, nothing refunded); none at all is our state's mistake."""
    captures = [capture for unit in order.purchase_units for capture in unit.payments.captures]
    for capture in captures:
        if capture.status in REFUNDABLE_CAPTURES and capture.id is not None:
            _check_order_id(capture.id)
            return capture.id
    if any(capture.status == "REFUNDED" for capture in captures):
        raise GatewayInputRejected("PayPal says this payment is already fully refunded", field="amount")
    raise GatewayRejected("the PayPal order has no completed capture to refund")


def _refund_answer(refund: Payment) -> RefundAnswer:
    """What a refund says. GatewayRejected (502) for one without an id, a status we know or an amount: the refund may
    have been made, so the caller asks `find_refund` again rather than guess."""
    status = REFUND_STATUSES.get(refund.status or "")
    if refund.id is None or status is None or refund.amount is None:
        raise GatewayRejected("PayPal answered a refund without its id, a status we know or its amount")
    reason = (refund.status_details.reason or refund.status) if status is RefundStatus.FAILED else None
    return RefundAnswer(refund_id=refund.id, status=status, money=refund.amount.money, reason=reason)


# PAYMENT.CAPTURE.PENDING's status_details.reason, said for an operator (docs/gateways.md#paypal).
PENDING_REASONS = {
    "RECEIVING_PREFERENCE_MANDATES_MANUAL_ACTION": "the currency must be accepted in PayPal's dashboard",
    "PENDING_REVIEW": "PayPal is reviewing it",
    "ECHECK": "an eCheck that has not cleared yet",
    "UNILATERAL": "the receiving PayPal account is not confirmed",
    "VERIFICATION_REQUIRED": "the receiving PayPal account must be verified",
    "INTERNATIONAL_WITHDRAWAL": "an international withdrawal that needs a manual step",
    "TRANSACTION_APPROVED_AWAITING_FUNDING": "approved, waiting for the payer's funding",
    "BUYER_COMPLAINT": "the buyer raised a complaint",
    "CHARGEBACK": "a chargeback is open on it",
    "REFUNDED": "it was refunded",
    "OTHER": "PayPal gives no reason",
}


def held_because(code: str | None) -> str:
    """`PayPal holds the capture: RECEIVING_PREFERENCE_MANDATES_MANUAL_ACTION (the currency must be accepted in
    PayPal's dashboard)`: the code for support, the sentence for an operator."""
    if not code:
        return "PayPal holds the capture"
    said = PENDING_REASONS.get(code)
    return f"PayPal holds the capture: {code[:60]}" + (f" ({said})" if said else "")


def _amount(payment: Payment) -> Money:
    """A capture's or refund's amount, which it must have. ValueError (MoneyError) if it has none or a bad one."""
    if payment.amount is None:
        raise ValueError("paypal capture or refund without an amount")
    return payment.amount.money
