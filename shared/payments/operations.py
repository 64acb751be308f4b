"""Operator use cases (docs/api.md#operator-routes): settle pending payments by hand, record purchases."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from payments.config import settings
from payments.errors import Conflict
from payments.ids import new_payment_id
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus, utcnow
from payments.money import Money, parse_positive
from payments.status import Cause, TransitionRefused
from payments.store import Dedupe

if TYPE_CHECKING:
    from payments.store import Store


class SettleBody(BaseModel):
    note: str | None = Field(default=None, max_length=200, description="Why, for the payment's history")


class ChargeBody(BaseModel):
    amount: str | Decimal = Field(description="Positive, major units; recorded as a negative payment")
    currency: str = Field(max_length=3)
    description: str = Field(min_length=1, max_length=200)


class VoucherBody(BaseModel):
    amount: str | Decimal
    currency: str = Field(max_length=3)
    count: int = Field(default=1, ge=1, le=100)
    expires_at: str | None = Field(default=None, description="ISO 8601 UTC; optional")


class VoucherOut(BaseModel):
    code: str
    amount: str
    currency: str
    expires_at: str | None


class VouchersOut(BaseModel):
    vouchers: list[VoucherOut]


def settle(
    store: Store, customer_id: str, payment_id: str, target: PaymentStatus, actor: str, note: str | None
) -> Payment:
    """Complete or cancel a pending payment by hand. NotFound (404) or Conflict (409)."""
    try:
        outcome = store.transition(customer_id, payment_id, target, Cause.OPERATOR, actor, note=note)
    except TransitionRefused as exc:
        raise Conflict(f"payment {payment_id} is {exc.current.value}; it cannot become {target.value}") from exc
    if not outcome.changed:
        raise Conflict(f"payment {payment_id} is already {target.value}")
    return outcome.payment


def positive_money(amount: object, currency: object) -> Money:
    """A positive amount, at most the configured maximum. MoneyError (422) lists every amount/currency problem."""
    return parse_positive(amount, currency, limit=settings().max_amount)


def charge(store: Store, customer_id: str, body: ChargeBody, key: str, actor: str) -> Payment:
    """Record a purchase as a completed negative payment, once per (customer, Idempotency-Key)."""
    money = positive_money(body.amount, body.currency)
    now = utcnow()
    payment = Payment(
        id=new_payment_id(now),
        customer_id=customer_id,
        created_at=now,
        completed_at=now,
        amount_minor=-money.minor,
        currency=money.currency,
        status=PaymentStatus.COMPLETED,
        method=PaymentMethod.PURCHASE,
        description=body.description.strip(),
        history=(HistoryEntry(at=now, status=PaymentStatus.COMPLETED, by=actor, note="purchase recorded"),),
    )
    marker = Dedupe("charge", hashlib.sha256(f"{customer_id}\x1f{key}".encode()).hexdigest())
    if store.add(payment, dedupe=marker):
        return payment
    # Recorded before (a retry that outlived the idempotency record): answer with the first one.
    earlier = store.event_payment_id(marker)
    if earlier is None:  # the marker is written in the same transaction as its payment
        raise LookupError(f"the charge marker {marker.key} names no payment")
    return store.require(customer_id, earlier, consistent=True)
