"""The payment domain: statuses, methods, the stored payment, and its API form (docs/api.md#the-payment-object)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from payments.declines import payer_message
from payments.money import Money
from payments.registry import PaymentMethod as PaymentMethod


class RefundStatus(StrEnum):
    """A refund entry's state at its gateway (docs/status-rules.md): it debits from `pending` on."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the money was not returned: the entry is cancelled and counts no more


class DisputeStatus(StrEnum):
    """A dispute of a paid payment (docs/status-rules.md#disputes-and-chargebacks): open until the gateway decides."""

    OPEN = "open"
    WON = "won"  # decided for us: any funds withdrawn are reinstated
    LOST = "lost"  # decided for the payer: the funds withdrawn stay withdrawn


class PaymentStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        """The word the portal and the CSV show: Pending, Completed, Cancelled."""
        return self.value.capitalize()


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_z(moment: datetime) -> str:
    """ISO 8601 UTC with millisecond precision and a `Z`: 2026-11-25T17:25:08.223Z.

    Always a 4-digit year (0999-01-01T00:00:00.000Z), which `datetime.fromisoformat` reads back:
    `strftime("%Y")` writes year 999 as "999" on Linux, a stored time nothing can read.
    """
    m = moment.astimezone(UTC)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}."
        f"{m.microsecond // 1000:03d}Z"
    )


class HistoryEntry(BaseModel):
    """One status change and who or what caused it."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    status: PaymentStatus
    by: str = Field(description="gateway:<name>:<event id>, operator:<sub>, customer:<sub> or system:<job>")
    note: str | None = None


class Dispute(BaseModel):
    """The dispute of a paid payment, as its gateway last reported it."""

    model_config = ConfigDict(frozen=True)

    id: str  # the gateway's dispute id (dp_..., PP-D-..., disp_..., a Paystack dispute id), or the capture reversed
    status: DisputeStatus
    amount_minor: int  # disputed, in the payment's currency (positive)
    reason: str | None = None
    opened_at: datetime


class Payment(BaseModel):
    """A payment as the service stores it. Amounts are integer minor units of `currency`."""

    model_config = ConfigDict(frozen=True)

    id: str
    customer_id: str
    created_at: datetime
    completed_at: datetime | None = None
    amount_minor: int
    currency: str
    status: PaymentStatus
    method: PaymentMethod
    description: str = ""
    reference: str | None = None
    # The gateway object we created for it (PaymentIntent, PayPal order, Razorpay order, Paystack reference,
    # NOWPayments invoice): written once, never replaced; only events about it may settle the payment.
    gateway_ref: str | None = None
    # Every gateway object reference we stored for it, `gateway_ref` included (a retry after a crash may
    # have opened another at a gateway that can neither dedupe nor look one up: money paid into it counts).
    gateway_refs: frozenset[str] = frozenset()
    # What the client does next (redirect, checkout options), kept so a retry hands out the same object.
    # Never holds a secret: Stripe's client_secret is read from Stripe again when needed.
    next_action: dict[str, Any] | None = None
    failure_reason: str | None = None
    failure_field: str | None = None  # the request field a gateway refused (a 422, not a decline)
    pending_reason: str | None = None  # a pending payment its gateway holds: why (PayPal's capture reason, ...)
    gateway_attempts: int = 0  # how many times a request claimed the creation of its gateway object
    gateway_claim_until: int | None = None  # epoch ms: the latest claim's holder may be running until then
    card_brand: str | None = None
    card_last4: str | None = None
    refund_of: str | None = None
    refund_status: RefundStatus | None = None  # on a refund entry: as its gateway reports it
    # On a paid payment: everything taken back from it (refunds and chargebacks), never more than it was for.
    refunded_minor: int = 0
    charged_back_minor: int = 0  # the part of `refunded_minor` chargebacks took
    refund_ids: frozenset[str] = frozenset()  # on a paid payment: its refunds and chargebacks
    dispute: Dispute | None = None  # on a paid payment its payer disputed
    requested_minor: int | None = None  # set when the amount credited differs from the amount asked for
    # Surcharge (docs/account-settings.md): the gateway is charged amount + surcharge; only `amount` is credited.
    surcharge_minor: int = 0
    gateway_fee_minor: int | None = None  # what the gateway kept, where it reports it (for reference only)
    payer_email: str | None = None  # the token's e-mail when the payment was made: where its receipt goes
    # The completed balance in `currency` right after this payment moved it (set from the balance item's stream).
    balance_after_minor: int | None = None
    auto_topup: bool = False  # an off-session charge of a saved card the auto top-up made (docs/auto-topup.md)
    history: tuple[HistoryEntry, ...] = ()

    @property
    def money(self) -> Money:
        return Money(self.amount_minor, self.currency)

    @property
    def charged_minor(self) -> int:
        """What the gateway is asked to charge: the amount credited plus the surcharge."""
        return self.amount_minor + self.surcharge_minor

    @property
    def known_gateway_refs(self) -> frozenset[str]:
        """The gateway objects of ours this payment may be settled by."""
        return self.gateway_refs | {self.gateway_ref} if self.gateway_ref else self.gateway_refs

    def to_api(self, *, with_history: bool = False) -> PaymentOut:
        extra: dict[str, Any] = {}
        if self.failure_reason:
            extra["failure_reason"] = self.failure_reason
            if self.status is PaymentStatus.CANCELLED:
                extra["failure_message"] = payer_message(self.failure_reason)
        if self.card_last4:
            extra["card"] = CardSummary(brand=self.card_brand or "unknown", last4=self.card_last4)
        if self.refund_of:
            extra["refund_of"] = extra["original_payment_id"] = self.refund_of
        if self.refund_status:
            extra["refund_status"] = self.refund_status
        if self.pending_reason and self.status is PaymentStatus.PENDING:
            extra["pending_reason"] = self.pending_reason
        if self.gateway_ref:
            extra["gateway_reference"] = self.gateway_ref
        if self.refunded_minor - self.charged_back_minor:
            extra["refunded_amount"] = Money(self.refunded_minor - self.charged_back_minor, self.currency).format()
        if self.requested_minor is not None:
            extra["requested_amount"] = Money(self.requested_minor, self.currency).format()
        if self.surcharge_minor:
            extra["surcharge"] = Money(self.surcharge_minor, self.currency).format()
            extra["charged_amount"] = Money(self.charged_minor, self.currency).format()
        if self.gateway_fee_minor is not None:
            extra["gateway_fee"] = Money(self.gateway_fee_minor, self.currency).format()
        if self.balance_after_minor is not None:
            extra["balance_after"] = Money(self.balance_after_minor, self.currency).format()
        if self.dispute:
            extra["dispute"] = DisputeOut(
                status=self.dispute.status,
                amount=Money(self.dispute.amount_minor, self.currency).format(),
                reason=self.dispute.reason,
                opened_at=iso_z(self.dispute.opened_at),
            )
        if self.auto_topup:
            extra["auto_topup"] = True
        if self.refund_ids:
            extra["refunds"] = sorted(self.refund_ids, reverse=True)  # ids sort by time: newest first
        if with_history:
            extra["history"] = [HistoryOut(at=iso_z(h.at), status=h.status, by=h.by, note=h.note) for h in self.history]
        return PaymentOut(
            id=self.id,
            created_at=iso_z(self.created_at),
            completed_at=iso_z(self.completed_at) if self.completed_at else None,
            amount=self.money.format(),
            currency=self.currency,
            status=self.status,
            method=self.method,
            description=self.description,
            reference=self.reference,
            **extra,
        )


# ---- API shapes (docs/api.md#the-payment-object) -------------------------------------------------------------------
# The payment's API form (PaymentOut and its parts) is built at import: most functions' first request makes one. The
# answers of particular routes (a page, balances, a payment started, the error shape) are `defer_build`: a function
# builds them at start only if one of its routes answers with them (`payments.api.entrypoint`), so the others never
# pay for them. The error shape is only documentation: error answers are built as dicts (`api.error_body`).


class CardSummary(BaseModel):
    brand: str
    last4: str


class DisputeOut(BaseModel):
    status: DisputeStatus
    amount: str = Field(description="Disputed, major units of the payment's currency")
    reason: str | None = Field(description="The gateway's reason code (fraudulent, product_not_received, ...)")
    opened_at: str = Field(description="ISO 8601 UTC")


class HistoryOut(BaseModel):
    at: str = Field(description="ISO 8601 UTC")
    status: PaymentStatus
    by: str
    note: str | None = None


def _absent(value: object) -> bool:
    return value is None


class PaymentOut(BaseModel):
    """A payment as the API answers it."""

    id: str = Field(examples=["pay_01JDQ4W6S8X7C3M2K9V5T0R1AB"])
    created_at: str = Field(description="ISO 8601 UTC with Z", examples=["2026-11-25T17:25:08.223Z"])
    completed_at: str | None = Field(description="When it completed; null unless completed")
    amount: str = Field(
        description="Major units with exactly the currency's minor digits; negative for purchases and refunds",
        examples=["12.50", "-3.00", "1000"],
    )
    currency: str = Field(examples=["USD"])
    status: PaymentStatus
    method: PaymentMethod
    description: str
    reference: str | None
    # Optional extras: present only when they have a value.
    failure_reason: str | None = Field(
        default=None, exclude_if=_absent, description="Why it failed, as the gateway or operator said it (a code)"
    )
    failure_message: str | None = Field(
        default=None, exclude_if=_absent, description="Cancelled payments: what the failure means, for the payer"
    )
    card: CardSummary | None = Field(default=None, exclude_if=_absent, description="Card payments only")
    gateway_reference: str | None = Field(
        default=None,
        exclude_if=_absent,
        description="The gateway's id of the object we created for it: PaymentIntent, PayPal order, Razorpay "
        "order, Paystack reference, NOWPayments invoice (for a refund: the refunded one's)",
    )
    original_payment_id: str | None = Field(
        default=None,
        exclude_if=_absent,
        description="Refunds, chargebacks and their reversals: the payment they take money from or give back to",
    )
    refund_of: str | None = Field(default=None, exclude_if=_absent, description="The same as original_payment_id")
    pending_reason: str | None = Field(
        default=None,
        exclude_if=_absent,
        description="Pending payments the gateway holds: why, in a short sentence (PayPal's capture reason, a "
        "bank debit Stripe is still processing)",
    )
    refund_status: RefundStatus | None = Field(
        default=None,
        exclude_if=_absent,
        description="Refunds: pending, succeeded or failed at the gateway (a failed refund is cancelled: it no "
        "longer counts)",
    )
    refunded_amount: str | None = Field(
        default=None, exclude_if=_absent, description="Paid payments: the sum of their refunds that count (positive)"
    )
    refunds: list[str] | None = Field(
        default=None, exclude_if=_absent, description="Paid payments: the ids of their refunds and chargebacks"
    )
    dispute: DisputeOut | None = Field(
        default=None, exclude_if=_absent, description="Paid payments their payer disputed: the dispute as it stands"
    )
    requested_amount: str | None = Field(
        default=None,
        exclude_if=_absent,
        description="When the amount credited differs from the amount asked for: what was asked for (a partial "
        "crypto payment credits what arrived)",
    )
    surcharge: str | None = Field(
        default=None,
        exclude_if=_absent,
        description="Charged on top of the amount for the method (not credited); present when not zero",
    )
    charged_amount: str | None = Field(
        default=None, exclude_if=_absent, description="What the gateway charged: amount + surcharge"
    )
    gateway_fee: str | None = Field(
        default=None,
        exclude_if=_absent,
        description="The fee the gateway reported keeping (for reference; it does not change the balance)",
    )
    balance_after: str | None = Field(
        default=None, exclude_if=_absent, description="The completed balance in the currency right after this payment"
    )
    auto_topup: bool | None = Field(
        default=None, exclude_if=_absent, description="true: an off-session charge the auto top-up made"
    )
    history: list[HistoryOut] | None = Field(
        default=None, exclude_if=_absent, description="GET /payments/{id} and the operator's complete/cancel answers"
    )


class PaymentPage(BaseModel):
    model_config = ConfigDict(defer_build=True)

    items: list[PaymentOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page")


class BalanceOut(BaseModel):
    model_config = ConfigDict(defer_build=True)

    currency: str
    amount: str
    credit_limit: str | None = Field(
        default=None, exclude_if=_absent, description="Account currency, with a credit limit: how far below zero"
    )
    available: str | None = Field(
        default=None, exclude_if=_absent, description="Account currency, with a credit limit: amount + credit limit"
    )


class PaymentsSummary(BaseModel):
    """What a listing with the same filters holds (GET /payments/summary)."""

    model_config = ConfigDict(defer_build=True)

    count: int = Field(description="Payments that match, whatever their status")
    statuses: dict[str, int] = Field(description="How many of them are pending, completed, cancelled")
    completed: list[BalanceOut] = Field(description="The sum of the completed ones, per currency")


class BalancesOut(BaseModel):
    model_config = ConfigDict(defer_build=True)

    balances: list[BalanceOut]


class ErrorItem(BaseModel):
    """One problem with the request."""

    model_config = ConfigDict(defer_build=True)

    field: str | None = Field(
        description="The input it concerns: a body member as a dotted path (amount, card.exp_month), a query "
        "parameter (limit, cursor, from) or a header (Idempotency-Key); null for the request as a whole",
        examples=["amount"],
    )
    message: str = Field(description="A sentence naming the field and what is wrong with it")


class ErrorOut(BaseModel):
    """Every error answer (docs/errors.md): `message` always, `errors` always, `field` when about a field."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    message: str = Field(description="A sentence saying what was wrong: every problem's message, joined")
    errors: list[ErrorItem] = Field(
        description="Every problem with the request's input (400, 415, 422), in order; empty for answers "
        "that are not about the input (401, 403, 404, 409, 429, 5xx)"
    )
    field: str | None = Field(
        default=None,
        description="errors[0].field, present only when the error concerns a field (kept for compatibility)",
    )


class MakePaymentOut(BaseModel):
    model_config = ConfigDict(defer_build=True)

    payment: PaymentOut
    next_action: dict[str, Any] | None = Field(
        description="What the client does next: redirect, bank_transfer_instructions, razorpay_checkout, stripe_sdk"
    )


class DeclinedOut(MakePaymentOut):
    """402: the error shape (`message`, `errors` empty) with the cancelled payment."""

    message: str
    errors: list[ErrorItem] = Field(default_factory=list, description="Always empty: the input was fine")
