"""The one owner of payment status rules (docs/status-rules.md).

    pending   -> completed | cancelled
    cancelled -> completed   only on a verified gateway success: the money really arrived
    completed -> (final)     refunds are new negative payments, never a status change
    completed -> cancelled   a refund entry only, when its gateway reports the refund failed: the money was
                             not returned, so it counts again (once), and its original is refundable by it again

A refund entry an operator asks for starts pending: it reserves its amount against its original (`refunded_minor`)
before the gateway is called, and debits nothing. The gateway's acceptance completes it (`accept_refund`: it debits
from then on); the gateway's refusal, or the gateway's webhook reporting the same refund first (`superseded`: that
entry counts instead), cancels it. Any refund entry that is cancelled releases its reservation, once, and a
cancelled refund entry is final.

`decide` says whether a change is allowed; `apply` says what it does: the payment after it and what it moves
in the balance. Pure functions, no I/O. The store writes a `Change` with a condition on the status it was
computed from, so concurrent writers cannot both win.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from payments.models import Dispute, DisputeStatus, HistoryEntry, Payment, PaymentMethod, PaymentStatus, RefundStatus
from payments.money import Money


class Cause(StrEnum):
    """Why a status change is requested."""

    GATEWAY_SUCCESS = "gateway_success"  # a verified gateway event or API answer: money arrived
    GATEWAY_FAILURE = "gateway_failure"  # a verified gateway event or API answer: it failed/expired
    OPERATOR = "operator"  # billing staff completing or cancelling by hand
    TIMEOUT = "timeout"  # reconciliation gave up waiting
    REFUND_FAILED = "refund_failed"  # a verified gateway event: a refund we counted was not made
    SUPERSEDED = "superseded"  # a pending refund entry whose refund the gateway reported first: that entry counts


class TransitionRefused(Exception):
    """The requested change breaks the status rules."""

    def __init__(self, current: PaymentStatus, target: PaymentStatus, cause: Cause) -> None:
        super().__init__(f"a {current.value} payment cannot become {target.value} ({cause.value})")
        self.current = current
        self.target = target
        self.cause = cause


class Decision(NamedTuple):  # NamedTuples here: a dataclass costs the read functions ~3 ms of cold start
    """`apply` is False when the payment is already in the target status (a harmless repeat)."""

    current: PaymentStatus
    target: PaymentStatus
    apply: bool


def decide(current: PaymentStatus, target: PaymentStatus, cause: Cause) -> Decision:
    """Allow, ignore (already there) or refuse a status change. Raises TransitionRefused."""
    if current == target:
        return Decision(current, target, apply=False)
    if current is PaymentStatus.PENDING:
        if target is PaymentStatus.COMPLETED and cause in (Cause.GATEWAY_SUCCESS, Cause.OPERATOR):
            return Decision(current, target, apply=True)
        if target is PaymentStatus.CANCELLED and cause in (
            Cause.GATEWAY_FAILURE,
            Cause.OPERATOR,
            Cause.TIMEOUT,
            Cause.SUPERSEDED,
        ):
            return Decision(current, target, apply=True)
    if current is PaymentStatus.CANCELLED and target is PaymentStatus.COMPLETED and cause is Cause.GATEWAY_SUCCESS:
        return Decision(current, target, apply=True)
    if current is PaymentStatus.COMPLETED and target is PaymentStatus.CANCELLED and cause is Cause.REFUND_FAILED:
        return Decision(current, target, apply=True)  # `apply` holds it to refund entries
    raise TransitionRefused(current, target, cause)


def counts_in_balance(status: PaymentStatus) -> bool:
    """Only completed payments count towards the balance (docs/api.md#the-payment-object)."""
    return status is PaymentStatus.COMPLETED


def refundable(status: PaymentStatus) -> bool:
    """A refund counts only against a payment whose money counted (docs/status-rules.md)."""
    return counts_in_balance(status)


class Change(NamedTuple):
    """What one transition does: the payment before and after it, and what it moves in the balance."""

    before: Payment
    after: Payment
    balance_delta: Money | None = None  # None: the balance does not move
    released_minor: int = 0  # a failed refund: what it no longer takes from its original (`refund_of`)

    @property
    def changed(self) -> bool:
        """False for a request of the status the payment already has: nothing to write."""
        return self.after is not self.before


def apply(
    payment: Payment,
    target: PaymentStatus,
    cause: Cause,
    *,
    by: str,
    now: datetime,
    note: str | None = None,
    failure_field: str | None = None,
    fee_minor: int | None = None,
) -> Change:
    """Move `payment` to `target` for `cause`, as `by` (who or what: `gateway:<provider>:<event id>`,
    `operator:<sub>`, `system:reconcile`) at `now`. Raises TransitionRefused; a payment already in `target`
    comes back unchanged.

    The change appends a history entry; completing sets `completed_at`; cancelling keeps `note` as the
    failure reason and `failure_field` (a field the gateway refused); completing keeps `fee_minor`, the fee the
    gateway reported with the success in the payment's currency, as `gateway_fee_minor` unless one is set; a
    settled payment's gateway object is no longer being created, so any claim on creating it ends. The balance
    moves by the amount when the payment starts or stops counting in it.
    """
    entry = is_refund_entry(payment)
    if cause in (Cause.REFUND_FAILED, Cause.SUPERSEDED) and not entry:
        raise TransitionRefused(payment.status, target, cause)  # only a refund entry's refund can fail
    if entry and payment.status is PaymentStatus.CANCELLED and target is not PaymentStatus.CANCELLED:
        raise TransitionRefused(payment.status, target, cause)  # its reservation is released: final
    if entry and payment.status is PaymentStatus.PENDING and target is PaymentStatus.COMPLETED:
        raise TransitionRefused(payment.status, target, cause)  # only the gateway's acceptance: accept_refund
    if not decide(payment.status, target, cause).apply:
        return Change(payment, payment)
    update: dict[str, Any] = {
        "status": target,
        "history": (*payment.history, HistoryEntry(at=now, status=target, by=by, note=note)),
        "gateway_claim_until": None,
        "pending_reason": None,  # settled: its gateway holds it no more
    }
    if target is PaymentStatus.COMPLETED:
        update["completed_at"] = now
        if fee_minor is not None and fee_minor >= 0 and payment.gateway_fee_minor is None and not entry:
            update["gateway_fee_minor"] = fee_minor
    if target is PaymentStatus.CANCELLED and note:
        update["failure_reason"] = note
    if target is PaymentStatus.CANCELLED and failure_field:
        update["failure_field"] = failure_field
    delta = balance_delta(payment.status, target, payment.money)
    if entry and target is PaymentStatus.CANCELLED:  # no longer takes anything from its original
        if cause in (Cause.REFUND_FAILED, Cause.GATEWAY_FAILURE):
            update["refund_status"] = RefundStatus.FAILED
        return Change(payment, payment.model_copy(update=update), delta, released_minor=abs(payment.amount_minor))
    return Change(payment, payment.model_copy(update=update), delta)


def is_refund_entry(payment: Payment) -> bool:
    """A refund: a negative payment that takes money from its original (`refund_of`)."""
    return payment.method is PaymentMethod.REFUND and bool(payment.refund_of)


def accept_refund(
    entry: Payment, refund_id: str, refund_status: RefundStatus, *, by: str, now: datetime, note: str | None = None
) -> Change:
    """The gateway accepted (`pending`) or made (`succeeded`) the refund a pending refund entry reserved: the entry
    is completed, names the gateway's refund, and debits the balance from now on. Completed already: unchanged.
    Raises TransitionRefused for anything but a pending or completed refund entry, or a failed `refund_status`."""
    if not is_refund_entry(entry) or refund_status is RefundStatus.FAILED:
        raise TransitionRefused(entry.status, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS)
    if entry.status is PaymentStatus.COMPLETED:
        return Change(entry, entry)
    if entry.status is not PaymentStatus.PENDING:
        raise TransitionRefused(entry.status, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS)
    history = HistoryEntry(at=now, status=PaymentStatus.COMPLETED, by=by, note=note or f"refund {refund_status.value}")
    after = entry.model_copy(
        update={
            "status": PaymentStatus.COMPLETED,
            "completed_at": now,
            "reference": refund_id,
            "refund_status": refund_status,
            "history": (*entry.history, history),
            "gateway_claim_until": None,
        }
    )
    return Change(entry, after, balance_delta(entry.status, PaymentStatus.COMPLETED, entry.money))


def refund_progress(entry: Payment, refund_status: RefundStatus, *, by: str, now: datetime) -> Change:
    """The gateway reports a counted refund made (`succeeded` after `pending`): the detail says so; the money
    already moved. Anything else comes back unchanged (a failure is `apply` with REFUND_FAILED)."""
    if (
        not is_refund_entry(entry)
        or entry.status is not PaymentStatus.COMPLETED
        or entry.refund_status is not RefundStatus.PENDING
        or refund_status is not RefundStatus.SUCCEEDED
    ):
        return Change(entry, entry)
    history = HistoryEntry(at=now, status=PaymentStatus.COMPLETED, by=by, note="refund succeeded")
    update = {"refund_status": refund_status, "history": (*entry.history, history)}
    return Change(entry, entry.model_copy(update=update))


def hold(payment: Payment, reason: str, *, by: str, now: datetime) -> Change:
    """The gateway holds pending `payment` (PayPal's capture pending a manual step, a bank debit Stripe is still
    processing): it stays pending, with `pending_reason` and a history entry saying so. A settled payment, or one
    already held for that reason, comes back unchanged: a hold never changes a status or the balance."""
    if payment.status is not PaymentStatus.PENDING or payment.pending_reason == reason:
        return Change(payment, payment)
    entry = HistoryEntry(at=now, status=PaymentStatus.PENDING, by=by, note=reason)
    return Change(payment, payment.model_copy(update={"pending_reason": reason, "history": (*payment.history, entry)}))


def note_fee(payment: Payment, fee_minor: int) -> Change:
    """The gateway reports the fee it kept on `payment` after the fact (Stripe's charge.updated, once the charge's
    balance transaction exists), in the payment's currency: the payment shows it as `gateway_fee_minor`, for
    reference. Only the first fee counts: one already recorded, a refund entry or a negative fee come back
    unchanged. No status, amount or balance changes, so nothing is published (`outbox.of_change`)."""
    if payment.gateway_fee_minor is not None or fee_minor < 0 or is_refund_entry(payment) or payment.amount_minor <= 0:
        return Change(payment, payment)
    return Change(payment, payment.model_copy(update={"gateway_fee_minor": fee_minor}))


def balance_delta(current: PaymentStatus, target: PaymentStatus, money: Money) -> Money | None:
    """What moving a payment of `money` from `current` to `target` adds to the balance: None if nothing."""
    if counts_in_balance(target) == counts_in_balance(current):
        return None
    return money if counts_in_balance(target) else -money


def credit_arrived(payment: Payment, arrived: Money, requested: Money, *, by: str, now: datetime) -> Change:
    """Part (or the rest) of a payment arrived at a gateway that credits what arrives (NOWPayments, the balance
    top-up case): the payment counts what arrived so far, never more than was asked for, with `requested_minor`
    saying what was asked for while they differ. Pending: it completes with that amount; completed: it grows by
    the difference, and only grows. The balance moves by what it adds."""
    asked = payment.requested_minor if payment.requested_minor is not None else payment.amount_minor
    charged = asked + payment.surcharge_minor  # the gateway's price: what was asked for plus the surcharge
    if requested != Money(charged, payment.currency) or arrived.currency != payment.currency or arrived.minor <= 0:
        raise TransitionRefused(payment.status, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS)
    # What arrived pays the amount and its surcharge in proportion; credited rounds down (never more than paid).
    credited = min(arrived.minor * asked // charged, asked)
    counted = payment.amount_minor if payment.status is PaymentStatus.COMPLETED else 0
    if credited <= counted:
        return Change(payment, payment)
    decide(payment.status, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS)  # raises for a refund entry's state
    note = f"{Money(credited, payment.currency).format()} of {Money(asked, payment.currency).format()} arrived"
    update: dict[str, Any] = {
        "amount_minor": credited,
        "requested_minor": asked if credited < asked else None,
        "status": PaymentStatus.COMPLETED,
        "history": (*payment.history, HistoryEntry(at=now, status=PaymentStatus.COMPLETED, by=by, note=note)),
        "gateway_claim_until": None,
        "pending_reason": None,
    }
    if payment.status is not PaymentStatus.COMPLETED:
        update["completed_at"] = now
    return Change(payment, payment.model_copy(update=update), Money(credited - counted, payment.currency))


def note_dispute(payment: Payment, dispute: Dispute, *, by: str, now: datetime) -> Change:
    """The gateway reports a dispute of `payment` opened, changed or decided: the payment shows it, with a history
    entry; no money moves (withdrawn and reinstated funds are entries of their own). A decided dispute is not
    reopened by a late `open` event; a repeat changes nothing."""
    current = payment.dispute
    if current is not None and current.id == dispute.id:
        if current.status is not DisputeStatus.OPEN and dispute.status is DisputeStatus.OPEN:
            return Change(payment, payment)
        dispute = current.model_copy(
            update={
                "status": dispute.status,
                "amount_minor": dispute.amount_minor,
                "reason": dispute.reason or current.reason,
            }
        )
        if dispute == current:
            return Change(payment, payment)
    note = f"dispute {dispute.status.value}" + (f": {dispute.reason}" if dispute.reason else "")
    entry = HistoryEntry(at=now, status=payment.status, by=by, note=note[:200])
    return Change(payment, payment.model_copy(update={"dispute": dispute, "history": (*payment.history, entry)}))
