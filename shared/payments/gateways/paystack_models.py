"""Paystack's webhook events and API answers, as the Paystack adapter reads them (docs/gateways.md#paystack).

An event is `{"event": "charge.success", "data": {...}}`: `data` is a transaction (charge.success), a dispute
(charge.dispute.*) or a refund (refund.*). Paystack's quirks, read here once: ids come as numbers or strings;
`metadata` may be an object, "", 0, null or the object as JSON text; refund amounts may be digit strings. An amount
that is not integer subunits reads as no amount (`money` is None), so the event is a mismatch rather than refused.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from payments import jsonsafe
from payments.gateways.payload import MaybeText, Payload, Text, object_or_empty, objects_only
from payments.money import Money


def _id_text(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


PaystackId = Annotated[str | None, BeforeValidator(_id_text)]
"""An id Paystack sends as a number or a string, as text."""


def _subunits(value: object) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return value if type(value) is int else None


Subunits = Annotated[int | None, BeforeValidator(_subunits)]
"""Integer subunits (kobo, pesewas, cents), or a string of ASCII digits; anything else is no amount."""


def _page_number(value: object) -> int:
    """A page number or count, as a number or digit string; anything else is 1 (one page)."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    return value if type(value) is int and value > 0 else 1


def _metadata_object(value: object) -> dict[str, Any]:
    """`metadata` as an object: Paystack may send it as JSON text, or as "", 0 or null when there is none."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            value = jsonsafe.loads(value)
        except ValueError:
            return {}
    return object_or_empty(value)


class Metadata(Payload):
    """Our ids, as create() sent them; hints only (a payer's inline checkout can set them)."""

    payment_id: MaybeText = None
    customer_id: MaybeText = None


def money_of(amount: int | None, currency: str | None) -> Money | None:
    if amount is None or currency is None:
        return None
    try:
        return Money(amount, currency.upper())
    except ValueError:
        return None


class Transaction(Payload):
    """A transaction: charge.* events' `data`, and GET /transaction/verify's `data`."""

    id: PaystackId = None
    reference: MaybeText = None  # ours: pay-01J...
    status: MaybeText = None  # success, failed, abandoned, reversed, ongoing, ...
    amount: Subunits = None
    currency: MaybeText = None
    gateway_response: MaybeText = None
    metadata: Annotated[Metadata, BeforeValidator(_metadata_object)] = Metadata()
    fees: Subunits = None  # what Paystack kept, in subunits of `currency` (a successful transaction's)

    @property
    def money(self) -> Money | None:
        return money_of(self.amount, self.currency)

    @property
    def fee(self) -> Money | None:
        """Paystack's fee (`fees`), or None where it says none."""
        return money_of(self.fees, self.currency)


class TransactionReference(Payload):
    id: PaystackId = None
    reference: MaybeText = None


def _transaction_object(value: object) -> dict[str, Any]:
    """A refund's `transaction`: an object (POST /refund, webhooks) or the transaction's id (GET /refund)."""
    if isinstance(value, int | str) and not isinstance(value, bool):
        return {"id": value}
    return object_or_empty(value)


class EventData(Transaction):
    """An event's `data`: a transaction, or a refund, which names its transaction by `transaction_reference`
    (or `transaction.reference`) and carries its own `refund_reference`."""

    refund_reference: MaybeText = None
    transaction_reference: MaybeText = None
    # A refund that pays out a dispute the merchant accepted names it: that money is the dispute's chargeback.
    dispute: Annotated[str | None, BeforeValidator(lambda v: None if v in (None, "", 0) else str(v))] = None
    transaction: Annotated[TransactionReference, BeforeValidator(_transaction_object)] = TransactionReference()


class Event(Payload):
    event: Text  # charge.success, refund.processed, ...
    data: Annotated[EventData, BeforeValidator(object_or_empty)] = EventData()


class Dispute(Payload):
    """A dispute: charge.dispute.* events' `data`, and GET /dispute/{id}'s `data`. It names the disputed transaction
    by `transaction` (its reference in it) or `transaction_reference`. `refund_amount` (subunits) is what the payer
    is to get back; Paystack may leave it and `currency` empty until the dispute is resolved."""

    id: PaystackId = None
    refund_amount: Subunits = None
    currency: MaybeText = None
    status: MaybeText = None  # awaiting-merchant-feedback, awaiting-bank-feedback, pending, resolved, archived
    resolution: MaybeText = None  # once resolved: merchant-accepted (the payer is refunded) or declined
    category: MaybeText = None  # chargeback, fraud
    transaction: Annotated[Transaction, BeforeValidator(_transaction_object)] = Transaction()  # or only its id
    transaction_reference: MaybeText = None

    @property
    def reference(self) -> str | None:
        """The disputed transaction's reference, where the dispute names it."""
        return self.transaction.reference or self.transaction_reference

    @property
    def money(self) -> Money | None:
        """What is disputed: `refund_amount` where Paystack says a positive one, else the whole transaction. Without
        a currency of its own it is in the transaction's."""
        if self.refund_amount is not None and self.refund_amount > 0:
            return money_of(self.refund_amount, self.currency or self.transaction.currency)
        return self.transaction.money


class DisputeEvent(Payload):
    """charge.dispute.create, charge.dispute.remind, charge.dispute.resolve."""

    event: Text
    data: Annotated[Dispute, BeforeValidator(object_or_empty)] = Dispute()


class DisputeFetched(Payload):
    """GET /dispute/{id}'s answer: `{"status": true, "message": "Dispute retrieved", "data": {...}}`."""

    data: Annotated[Dispute, BeforeValidator(object_or_empty)] = Dispute()


class Authorization(Payload):
    authorization_url: Text
    reference: MaybeText = None


class Initialized(Payload):
    """POST /transaction/initialize's answer."""

    data: Annotated[Authorization, BeforeValidator(object_or_empty)] = Field(
        default_factory=dict, validate_default=True
    )


class Verified(Payload):
    """GET /transaction/verify/{reference}'s answer."""

    data: Annotated[Transaction, BeforeValidator(object_or_empty)] = Transaction()


class Refund(Payload):
    """A refund: POST /refund's `data` (its `transaction` an object) and GET /refund's items (`transaction` the
    transaction's id, with `transaction_reference`). Our refund entry id travels in `merchant_note`."""

    id: PaystackId = None
    status: MaybeText = None  # pending, processing, needs-attention, processed, failed
    amount: Subunits = None
    currency: MaybeText = None
    merchant_note: MaybeText = None
    transaction: Annotated[TransactionReference, BeforeValidator(_transaction_object)] = TransactionReference()
    transaction_reference: MaybeText = None

    @property
    def reference(self) -> str | None:
        """The refunded transaction's reference, where the refund names it."""
        return self.transaction_reference or self.transaction.reference

    def money_or(self, currency: str) -> Money | None:
        """The refunded amount, in its own currency or, where it names none, in `currency`."""
        return money_of(self.amount, self.currency or currency)


class RefundFetched(Payload):
    """GET /refund/{id}'s answer: the refund as GET /refund lists it (`transaction`: the transaction's id)."""

    data: Annotated[Refund, BeforeValidator(object_or_empty)] = Refund()


class RefundCreated(Payload):
    """POST /refund's answer: `{"status": true, "message": "Refund has been queued for processing", "data"}`."""

    data: Annotated[Refund, BeforeValidator(object_or_empty)] = Refund()


class PageMeta(Payload):
    page: Annotated[int, BeforeValidator(_page_number)] = 1
    pageCount: Annotated[int, BeforeValidator(_page_number)] = 1  # Paystack's name for it


class Refunds(Payload):
    """GET /refund's answer: `data`, a list of refunds (anything in it that is not an object is skipped), and
    `meta` with the page and the number of pages."""

    data: Annotated[list[Refund], BeforeValidator(objects_only)] = Field(default_factory=list)
    meta: Annotated[PageMeta, BeforeValidator(object_or_empty)] = PageMeta()


def _text_or_empty(value: object) -> str:
    return value if isinstance(value, str) else ""


class ErrorAnswer(Payload):
    """A 4xx answer's body: `{"status": false, "message": "..."}`."""

    message: Annotated[str, BeforeValidator(_text_or_empty)] = ""
