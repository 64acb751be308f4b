"""Stripe's webhook events, as the Stripe adapter reads them (docs/gateways.md, Stripe).

An event is read twice over: `Event` for its id and type, then the model its type names (`PaymentIntentEvent`
for payment_intent.*, `ChargeRefundedEvent` for charge.refunded, `RefundEvent` for refund.created, refund.updated
and refund.failed, `DisputeEvent` for charge.dispute.*, `OtherEvent` for anything else), so each event
must carry what its kind is read for and nothing more. Amounts stay in Stripe's unit here (integers); the
adapter converts them. API answers are the SDK's own objects (`stripe.PaymentIntent`), not these, except a Dispute
(GET /v1/disputes/{id}), which `Dispute` reads as its webhooks carry it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StrictInt

from payments.gateways.payload import MaybeText, Payload, Text, object_or_empty, object_or_none, objects_only


class Metadata(Payload):
    """Our ids, as create() put them on the PaymentIntent; hints only (docs/webhooks.md)."""

    payment_id: MaybeText = None
    customer_id: MaybeText = None


OurMetadata = Annotated[Metadata, BeforeValidator(object_or_empty)]
"""An object's `metadata`: absent or not an object, it holds none of ours."""


class StripeObject(Payload):
    """Any event's `data.object`, as an ignored event reads it."""

    id: MaybeText = None
    metadata: OurMetadata = Metadata()


class PaymentError(Payload):
    """A PaymentIntent's `last_payment_error`."""

    code: str | None = None
    decline_code: str | None = None
    message: str | None = None


class PaymentIntent(StripeObject):
    """A payment_intent.* event's object. Amount and currency are required only where a success reads them."""

    id: Text
    amount_received: StrictInt | None = None  # in Stripe's unit of `currency`
    currency: str | None = None  # lower case, as Stripe writes it
    last_payment_error: Annotated[PaymentError | None, BeforeValidator(object_or_none)] = None
    cancellation_reason: str | None = None
    status: str | None = None  # requires_payment_method after a failed attempt (read to tell authentication_required)


class Refund(Payload):
    """A refund in a charge's `refunds` list."""

    id: MaybeText = None
    status: MaybeText = None  # pending, requires_action, succeeded, failed, canceled


class RefundList(Payload):
    data: Annotated[list[Refund], BeforeValidator(objects_only)] = Field(default_factory=list)  # newest first


class Charge(StripeObject):
    """charge.refunded's object. `amount_refunded` is the charge's running total; its `metadata` is usually empty,
    as Stripe does not copy the PaymentIntent's, so `payment_intent` names the payment's object."""

    id: Text
    amount_refunded: StrictInt
    currency: str
    payment_intent: MaybeText = None  # pi_..., unless expanded (never in a webhook)
    refunds: Annotated[RefundList | None, BeforeValidator(object_or_none)] = None  # absent on newer API versions

    @property
    def newest_refund(self) -> Refund | None:
        return self.refunds.data[0] if self.refunds is not None and self.refunds.data else None

    @property
    def newest_refund_id(self) -> str | None:
        newest = self.newest_refund
        return newest.id if newest is not None else None


class ChargeChanges(Payload):
    """charge.refunded's `previous_attributes`: the running total before this refund (0 when Stripe omits it)."""

    amount_refunded: StrictInt = 0


def _balance_transaction(value: object) -> dict[str, Any] | None:
    """A charge's `balance_transaction`: its id (as webhooks carry it), the object when expanded, or none yet."""
    if isinstance(value, str) and value:
        return {"id": value}
    return value if isinstance(value, dict) else None


def _fee_amount(value: object) -> int | None:
    return value if type(value) is int and value >= 0 else None


class ChargeBalanceTransaction(Payload):
    """The balance transaction of a charge (GET /v1/balance_transactions/{id}, or an expanded `balance_transaction`):
    `fee` is what Stripe kept, in Stripe's unit of the transaction's `currency`, which is the account's settlement
    currency: not the charge's when Stripe converted it. A fee we cannot read is none (never a refusal)."""

    id: MaybeText = None  # txn_...
    fee: Annotated[int | None, BeforeValidator(_fee_amount)] = None
    currency: MaybeText = None  # lower case


class FeeCharge(StripeObject):
    """charge.succeeded's and charge.updated's object, as read for the fee: the PaymentIntent it belongs to and its
    balance transaction (an id in webhooks; none until Stripe has made it)."""

    id: Text  # ch_...
    payment_intent: MaybeText = None
    balance_transaction: Annotated[ChargeBalanceTransaction | None, BeforeValidator(_balance_transaction)] = None


class Event(Payload):
    id: Text  # evt_...
    type: Text


class _AnyData(Payload):
    object: StripeObject


class OtherEvent(Event):
    data: _AnyData


class _ChargeData(Payload):
    object: FeeCharge
    previous_attributes: Annotated[dict[str, Any], BeforeValidator(object_or_empty)] = Field(default_factory=dict)


class ChargeEvent(Event):
    """charge.succeeded, charge.updated: read for the charge's fee only."""

    data: _ChargeData


class _PaymentIntentData(Payload):
    object: PaymentIntent


class PaymentIntentEvent(Event):
    data: _PaymentIntentData


class _ChargeRefundedData(Payload):
    object: Charge
    previous_attributes: Annotated[ChargeChanges, BeforeValidator(object_or_empty)] = ChargeChanges()


class ChargeRefundedEvent(Event):
    data: _ChargeRefundedData


class RefundObject(StripeObject):
    """refund.*'s object: a Refund, naming the PaymentIntent it returns money of (a refund's own metadata is
    ours only if we set it, as `StripeGateway.refund` does). `failure_reason` on a failed one:
    `expired_or_canceled_card`, `lost_or_stolen_card`, `unknown`."""

    id: Text  # re_...
    amount: StrictInt  # in Stripe's unit of `currency`
    currency: str
    payment_intent: MaybeText = None
    status: MaybeText = None  # pending, requires_action, succeeded, failed, canceled
    failure_reason: MaybeText = None


class _RefundData(Payload):
    object: RefundObject


class RefundEvent(Event):
    data: _RefundData


class BalanceTransaction(Payload):
    """One of a dispute's `balance_transactions`: the funds Stripe withdrew for it (negative `amount`, reporting
    category `dispute`) or reinstated (positive, `dispute_reversal`). In the balance's currency, which need not be
    the payment's, so only the direction is read; the dispute fee is in `fee`, never ours to count."""

    amount: StrictInt | None = None
    reporting_category: MaybeText = None

    @property
    def withdraws(self) -> bool:
        if self.reporting_category is not None:
            return self.reporting_category == "dispute"
        return self.amount is not None and self.amount < 0

    @property
    def reinstates(self) -> bool:
        if self.reporting_category is not None:
            return self.reporting_category == "dispute_reversal"
        return self.amount is not None and self.amount > 0


class Dispute(StripeObject):
    """charge.dispute.*'s object, and GET /v1/disputes/{id}'s answer. `amount` is what is disputed, in the payment's
    currency (it can be less than the charge); `payment_intent` names the payment's object (absent on disputes of
    charges made without one); its metadata is Stripe's, not a copy of the PaymentIntent's."""

    id: Text  # dp_... (du_... on some older disputes)
    amount: StrictInt  # in Stripe's unit of `currency`
    currency: str
    reason: MaybeText = None  # fraudulent, product_not_received, duplicate, general, ...
    status: MaybeText = None  # warning_needs_response, needs_response, under_review, won, lost, ...
    payment_intent: MaybeText = None  # pi_..., unless expanded (never in a webhook)
    charge: MaybeText = None  # ch_...
    balance_transactions: Annotated[list[BalanceTransaction], BeforeValidator(objects_only)] = Field(
        default_factory=list
    )

    @property
    def withdrawn(self) -> bool:
        return any(transaction.withdraws for transaction in self.balance_transactions)

    @property
    def reinstated(self) -> bool:
        return any(transaction.reinstates for transaction in self.balance_transactions)


class _DisputeData(Payload):
    object: Dispute


class DisputeEvent(Event):
    data: _DisputeData


# -- saved cards (docs/saved-cards.md): SetupIntents and their PaymentMethods ---------------------------------


class CardDetails(Payload):
    """A PaymentMethod's `card`: what may be stored of it (never the number: Stripe does not send it)."""

    brand: MaybeText = None
    last4: MaybeText = None
    exp_month: StrictInt | None = None
    exp_year: StrictInt | None = None


class SavedPaymentMethod(Payload):
    """A PaymentMethod (an API answer, or an expanded `payment_method`)."""

    id: Text  # pm_...
    customer: MaybeText = None  # cus_... once attached
    card: Annotated[CardDetails | None, BeforeValidator(object_or_none)] = None


def _method_reference(value: object) -> dict[str, Any] | None:
    """A SetupIntent's `payment_method`: its id (as webhooks carry it) or the expanded object."""
    if isinstance(value, str) and value:
        return {"id": value}
    return value if isinstance(value, dict) else None


class SetupIntent(StripeObject):
    """A SetupIntent (docs.stripe.com/api/setup_intents/object), as setup_intent.* events and the API carry it.
    `status`: requires_payment_method, requires_confirmation, requires_action, processing, canceled, succeeded."""

    id: Text  # seti_...
    status: MaybeText = None
    customer: MaybeText = None
    usage: MaybeText = None
    client_secret: MaybeText = Field(default=None, repr=False)
    payment_method: Annotated[SavedPaymentMethod | None, BeforeValidator(_method_reference)] = None
    last_setup_error: Annotated[PaymentError | None, BeforeValidator(object_or_none)] = None


class _SetupIntentData(Payload):
    object: SetupIntent


class SetupIntentEvent(Event):
    """setup_intent.succeeded, setup_intent.setup_failed."""

    data: _SetupIntentData
