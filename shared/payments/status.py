"""The one owner of payment status rules (docs/status-rules.md).

    pending   -> completed | cancelled
    cancelled -> completed   only on a verified gateway success: the money really arrived
    completed -> (final)     refunds are new negative payments, never a status change

Every status change in the service asks `decide` first, and the store writes the change with a
condition on the status `decide` saw, so concurrent writers cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from payments.models import PaymentStatus


class Cause(StrEnum):
    """Why a status change is requested."""

    GATEWAY_SUCCESS = "gateway_success"  # a verified gateway event or API answer: money arrived
    GATEWAY_FAILURE = "gateway_failure"  # a verified gateway event or API answer: it failed/expired
    OPERATOR = "operator"  # billing staff completing or cancelling by hand
    TIMEOUT = "timeout"  # reconciliation gave up waiting


class TransitionRefused(Exception):
    """The requested change breaks the status rules."""

    def __init__(self, current: PaymentStatus, target: PaymentStatus, cause: Cause) -> None:
        super().__init__(f"a {current.value} payment cannot become {target.value} ({cause.value})")
        self.current = current
        self.target = target
        self.cause = cause


@dataclass(frozen=True, slots=True)
class Decision:
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
        if target is PaymentStatus.CANCELLED and cause in (Cause.GATEWAY_FAILURE, Cause.OPERATOR, Cause.TIMEOUT):
            return Decision(current, target, apply=True)
    if current is PaymentStatus.CANCELLED and target is PaymentStatus.COMPLETED and cause is Cause.GATEWAY_SUCCESS:
        return Decision(current, target, apply=True)
    raise TransitionRefused(current, target, cause)


def counts_in_balance(status: PaymentStatus) -> bool:
    """Only completed payments count towards the balance (API.md §3)."""
    return status is PaymentStatus.COMPLETED
