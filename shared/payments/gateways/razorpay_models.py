"""Razorpay's webhook events and API answers, as the Razorpay adapter reads them (docs/gateways.md#razorpay).

An event names itself (`event`) and carries entities under `payload.<name>.entity`: `order`, `payment`, `refund`,
`dispute`, each there or not. Razorpay writes empty `notes` as `[]`. Amounts are integer subunits with an ISO code; an
amount that is not one reads as no amount (`money` is None), so the event is a mismatch rather than refused.
Order `receipt` and `notes` are ours (set with our key); payment notes come from Checkout, hints only.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from payments.gateways.payload import MaybeText, Payload, Text, object_or_empty, objects_only
from payments.money import Money


def _subunits(value: object) -> int | None:
    return value if type(value) is int else None


Subunits = Annotated[int | None, BeforeValidator(_subunits)]
"""Integer subunits (paise, cents, fils); anything else is no amount."""


def _seconds(value: object) -> int:
    return value if type(value) is int else 0


def money_of(amount: int | None, currency: str | None) -> Money | None:
    """Razorpay's amount in subunits with its upper-case code, or None if either is missing or unknown."""
    if amount is None or currency is None:
        return None
    try:
        return Money(amount, currency.upper())
    except ValueError:
        return None


class Notes(Payload):
    payment_id: MaybeText = None
    customer_id: MaybeText = None
    refund_entry: MaybeText = None  # refunds we made: our refund entry's id (also their `receipt`)


EntityNotes = Annotated[Notes, BeforeValidator(object_or_empty)]
"""An entity's `notes`: `[]` when empty, as Razorpay writes it."""


class Entity(Payload):
    id: MaybeText = None
    amount: Subunits = None
    currency: MaybeText = None
    notes: EntityNotes = Notes()
    receipt: MaybeText = None  # ours: an order's is our payment id, a refund's our refund entry id
    created_at: Annotated[int, BeforeValidator(_seconds)] = 0  # Unix seconds

    @property
    def money(self) -> Money | None:
        return money_of(self.amount, self.currency)


class Order(Entity):
    """An order: `payload.order.entity`, and GET /v1/orders answers."""

    amount_paid: Subunits = None
    status: MaybeText = None  # created, attempted, paid

    @property
    def paid(self) -> Money | None:
        return money_of(self.amount_paid, self.currency)


class Payment(Entity):
    """A payment attempt: `payload.payment.entity`, and GET /v1/orders/{id}/payments items."""

    order_id: MaybeText = None
    status: MaybeText = None  # created, authorized, captured, failed, refunded
    captured: bool | None = None  # False on the automatic refund of a payment never captured
    error_code: MaybeText = None
    error_description: MaybeText = None
    # Set once captured, in subunits of `currency`: `fee` is all Razorpay kept, GST included; `tax` is that GST part.
    fee: Subunits = None
    tax: Subunits = None

    @property
    def fee_money(self) -> Money | None:
        """What Razorpay kept (`fee`, its GST `tax` included), or None where it says none."""
        return money_of(self.fee, self.currency)


class Refund(Entity):
    """A refund: `payload.refund.entity`, POST /v1/payments/{id}/refund's answer, GET .../refunds items and
    GET /v1/refunds/{id}'s answer."""

    payment_id: MaybeText = None  # Razorpay's pay_..., not ours
    status: MaybeText = None  # pending, processed, failed


class Dispute(Entity):
    """A dispute of a payment: `payload.dispute.entity` (payment.dispute.* events) and GET /v1/disputes/{id}'s
    answer. `amount` is what is disputed; `amount_deducted` what Razorpay took from the balance (0 unless lost)."""

    payment_id: MaybeText = None  # Razorpay's pay_..., not ours
    amount_deducted: Subunits = None
    reason_code: MaybeText = None  # chargeback, fraud, pre_arbitration, a network's code, ...
    status: MaybeText = None  # open, under_review, won, lost, closed
    phase: MaybeText = None  # fraud, retrieval, chargeback, pre_arbitration, arbitration

    @property
    def deducted(self) -> Money | None:
        """What Razorpay deducted for the dispute, where it says a positive amount."""
        if self.amount_deducted is None or self.amount_deducted <= 0:
            return None
        return money_of(self.amount_deducted, self.currency)


def _entity(value: object) -> dict[str, Any] | None:
    """`{"entity": {...}}` -> the entity; absent when missing, empty or not an object."""
    entity = value.get("entity") if isinstance(value, dict) else None
    return entity if isinstance(entity, dict) and entity else None


class EventPayload(Payload):
    order: Annotated[Order | None, BeforeValidator(_entity)] = None
    payment: Annotated[Payment | None, BeforeValidator(_entity)] = None
    refund: Annotated[Refund | None, BeforeValidator(_entity)] = None
    dispute: Annotated[Dispute | None, BeforeValidator(_entity)] = None


class Event(Payload):
    event: Text  # order.paid, payment.captured, payment.failed, refund.processed, payment.dispute.lost, ...
    payload: Annotated[EventPayload, BeforeValidator(object_or_empty)] = EventPayload()


class CreatedOrder(Payload):
    """POST /v1/orders' answer."""

    id: Text


class Orders(Payload):
    """GET /v1/orders' answer (a collection); anything in `items` that is not an object is skipped."""

    items: Annotated[list[Order], BeforeValidator(objects_only)] = Field(default_factory=list)


class Payments(Payload):
    """GET /v1/orders/{id}/payments' answer."""

    items: Annotated[list[Payment], BeforeValidator(objects_only)] = Field(default_factory=list)


class Refunds(Payload):
    """GET /v1/payments/{id}/refunds' answer (newest first, `count` at most 100, `skip` pages on)."""

    items: Annotated[list[Refund], BeforeValidator(objects_only)] = Field(default_factory=list)


class ErrorDetail(Payload):
    code: MaybeText = None  # BAD_REQUEST_ERROR, GATEWAY_ERROR, SERVER_ERROR
    description: MaybeText = None
    field: MaybeText = None  # the request field it refuses, where it names one


class ErrorAnswer(Payload):
    """A 4xx answer's body: `{"error": {"code", "description", ...}}`."""

    error: Annotated[ErrorDetail, BeforeValidator(object_or_empty)] = ErrorDetail()
