"""PayPal's webhook events and API answers, as the PayPal adapter reads them (docs/gateways.md, PayPal).

A webhook's `resource` is an order (CHECKOUT.* events: it has `purchase_units`) or a payment: a capture
(PAYMENT.CAPTURE.*) or a refund (PAYMENT.CAPTURE.REFUNDED, and PAYMENT.CAPTURE.REVERSED's reversal), which carry the
fields we read under the same names. CUSTOMER.DISPUTE.* events are read again as `DisputeEvent` (a dispute).
The same models read the Orders and Payments APIs' answers. Amounts stay PayPal's `{"currency_code", "value"}`
until `PayPalAmount.money` reads them exactly.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Discriminator, Field, Tag

from payments.gateways.payload import MaybeText, Payload, Text, object_or_empty, object_or_none, objects_only
from payments.money import Money


class PayPalAmount(Payload):
    """`{"currency_code": "USD", "value": "23.99"}`: a decimal string with the digits PayPal uses for the currency."""

    currency_code: str
    value: str

    @property
    def money(self) -> Money:
        """Exactly the amount; MoneyError (a ValueError) for a currency we do not know or too many decimals."""
        return Money.parse(self.value, self.currency_code)


def _amount_or_none(value: object) -> dict[str, Any] | None:
    """An amount object whose fields are both strings, else None: a fee we cannot read is no fee, never a refusal."""
    if isinstance(value, dict) and isinstance(value.get("currency_code"), str) and isinstance(value.get("value"), str):
        return value
    return None


class SellerReceivableBreakdown(Payload):
    """A capture's `seller_receivable_breakdown`: the gross amount, PayPal's fee and what the seller receives, each in
    the capture's currency unless PayPal converted (`receivable_amount`, `exchange_rate` then)."""

    paypal_fee: Annotated[PayPalAmount | None, BeforeValidator(_amount_or_none)] = None

    @property
    def fee(self) -> Money | None:
        """PayPal's fee exactly (`"0.59"` USD is 59 cents), or None if it is absent or not a readable amount."""
        if self.paypal_fee is None:
            return None
        try:
            return self.paypal_fee.money
        except ValueError:
            return None


class Link(Payload):
    href: MaybeText = None
    rel: MaybeText = None


Links = Annotated[list[Link], BeforeValidator(objects_only)]


class StatusDetails(Payload):
    reason: MaybeText = None  # DECLINED_BY_RISK_FRAUD_FILTERS, ...


class RelatedIds(Payload):
    order_id: MaybeText = None


class SupplementaryData(Payload):
    related_ids: Annotated[RelatedIds, BeforeValidator(object_or_empty)] = RelatedIds()


class Payment(Payload):
    """A capture, or a refund: PAYMENT.CAPTURE.* resources, an order's `payments.captures[]` and `payments.refunds[]`,
    GET /v2/payments/captures/{id}, POST /v2/payments/captures/{id}/refund. Our ids are there only if PayPal copied
    them (a refund often has neither); a refund `PayPalGateway.refund` made has our refund entry's id as custom_id."""

    id: MaybeText = None
    status: MaybeText = None
    amount: Annotated[PayPalAmount | None, BeforeValidator(object_or_none)] = None
    custom_id: MaybeText = None  # ours: "<customer_id>:<payment_id>" or the payment id
    invoice_id: MaybeText = None  # ours: the payment id
    note_to_payer: MaybeText = None  # a refund's ("Payment reversed" on a reversal)
    status_details: Annotated[StatusDetails, BeforeValidator(object_or_empty)] = StatusDetails()
    supplementary_data: Annotated[SupplementaryData, BeforeValidator(object_or_empty)] = SupplementaryData()
    # A capture's: PayPal's fee (`paypal_fee`), where PayPal reports it (a completed capture).
    seller_receivable_breakdown: Annotated[SellerReceivableBreakdown, BeforeValidator(object_or_empty)] = (
        SellerReceivableBreakdown()
    )
    links: Links = Field(default_factory=list)

    @property
    def fee(self) -> Money | None:
        """PayPal's fee on a capture, where it says (`seller_receivable_breakdown.paypal_fee`)."""
        return self.seller_receivable_breakdown.fee

    @property
    def order_id(self) -> str | None:
        """The order a capture belongs to (`supplementary_data.related_ids.order_id`)."""
        return self.supplementary_data.related_ids.order_id

    @property
    def up_id(self) -> str | None:
        """The id the `up` link names: for a refund, the capture it refunds."""
        for link in self.links:
            if link.rel == "up" and link.href is not None:
                return link.href.rstrip("/").rsplit("/", 1)[-1] or None
        return None

    @property
    def up_capture_id(self) -> str | None:
        """The capture the `up` link names, if it does (a refund's, a reversal's; a capture's names its order)."""
        for link in self.links:
            if link.rel == "up" and link.href is not None:
                parent, _, capture_id = link.href.rstrip("/").rpartition("/")
                return capture_id or None if parent.endswith("/payments/captures") else None
        return None


class UnitPayments(Payload):
    captures: Annotated[list[Payment], BeforeValidator(objects_only)] = Field(default_factory=list)
    refunds: Annotated[list[Payment], BeforeValidator(objects_only)] = Field(default_factory=list)  # of the captures


class PurchaseUnit(Payload):
    reference_id: MaybeText = None  # ours: the payment id
    custom_id: MaybeText = None
    amount: Annotated[PayPalAmount | None, BeforeValidator(object_or_none)] = None
    payments: Annotated[UnitPayments, BeforeValidator(object_or_empty)] = UnitPayments()


class Order(Payload):
    """An order: CHECKOUT.* resources, and the Orders API's answers (create, get, capture)."""

    id: MaybeText = None
    order_id: MaybeText = None  # CHECKOUT.PAYMENT-APPROVAL.REVERSED names its order so
    status: MaybeText = None
    purchase_units: Annotated[list[PurchaseUnit], BeforeValidator(objects_only)] = Field(default_factory=list)
    links: Links = Field(default_factory=list)

    @property
    def unit(self) -> PurchaseUnit:
        """The one purchase unit we create (an empty one if PayPal sent none)."""
        return self.purchase_units[0] if self.purchase_units else PurchaseUnit()

    @property
    def first_capture(self) -> Payment | None:
        captures = self.unit.payments.captures
        return captures[0] if captures else None

    def link(self, *rels: str) -> str | None:
        """The href of the first of `rels` the order has a link for."""
        hrefs = {link.rel: link.href for link in self.links}
        return next((href for rel in rels if (href := hrefs.get(rel)) is not None), None)


def _resource_kind(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None  # not an object: no model fits
    return "order" if value.get("purchase_units") is not None else "payment"


Resource = Annotated[Annotated[Order, Tag("order")] | Annotated[Payment, Tag("payment")], Discriminator(_resource_kind)]


class Event(Payload):
    id: Text  # WH-...
    event_type: Text
    resource: Resource


class DisputedTransaction(Payload):
    """One of a dispute's `disputed_transactions`: `seller_transaction_id` is our capture's id."""

    seller_transaction_id: MaybeText = None


class DisputeOutcome(Payload):
    """A resolved dispute's `dispute_outcome`: RESOLVED_BUYER_FAVOUR, RESOLVED_SELLER_FAVOUR, CANCELED_BY_BUYER, ..."""

    outcome_code: MaybeText = None
    amount_refunded: Annotated[PayPalAmount | None, BeforeValidator(object_or_none)] = None


class Dispute(Payload):
    """A dispute: CUSTOMER.DISPUTE.* resources and GET /v1/customer/disputes/{id} (Disputes API v1). It names our
    capture, never our ids or the order: the capture does (`PayPalGateway.capture_references`)."""

    dispute_id: Text  # PP-D-1234 (PP-000-042-663-135 on older ones)
    status: MaybeText = None  # OPEN, WAITING_FOR_(BUYER|SELLER)_RESPONSE, UNDER_REVIEW, RESOLVED, OTHER
    reason: MaybeText = None  # MERCHANDISE_OR_SERVICE_NOT_RECEIVED, UNAUTHORISED, ...
    dispute_amount: Annotated[PayPalAmount | None, BeforeValidator(object_or_none)] = None
    dispute_outcome: Annotated[DisputeOutcome, BeforeValidator(object_or_empty)] = DisputeOutcome()
    dispute_life_cycle_stage: MaybeText = None  # INQUIRY, CHARGEBACK, PRE_ARBITRATION, ARBITRATION
    disputed_transactions: Annotated[list[DisputedTransaction], BeforeValidator(objects_only)] = Field(
        default_factory=list
    )

    @property
    def capture_id(self) -> str | None:
        """The (first) capture disputed."""
        return next((t.seller_transaction_id for t in self.disputed_transactions if t.seller_transaction_id), None)


class DisputeEvent(Payload):
    """A CUSTOMER.DISPUTE.* event, read again once its type says its resource is a dispute."""

    id: Text
    event_type: Text
    resource: Dispute


def _seconds(value: object) -> int:
    return value if type(value) is int else 0  # no lifetime: the token is used once


class AccessToken(Payload):
    """POST /v1/oauth2/token's answer."""

    access_token: Text
    expires_in: Annotated[int, BeforeValidator(_seconds)] = 0


class Verification(Payload):
    """POST /v1/notifications/verify-webhook-signature's answer."""

    verification_status: MaybeText = None  # SUCCESS or FAILURE


class ErrorDetail(Payload):
    issue: MaybeText = None  # ORDER_ALREADY_CAPTURED, INSTRUMENT_DECLINED, ...


class ErrorAnswer(Payload):
    """A 4xx answer's body."""

    details: Annotated[list[ErrorDetail], BeforeValidator(objects_only)] = Field(default_factory=list)

    @property
    def issue(self) -> str | None:
        return self.details[0].issue if self.details else None
