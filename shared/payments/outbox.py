"""What the service publishes (docs/events.md): one outbound event per status change, decided here, written by the
store in the transaction of the change (the outbox), put on the EventBridge bus by `payments.events`.

Pure: no I/O. An event is a function of the payment after the change, so a transaction sent again, or the same
change computed again from the same read, makes the same event with the same `event_id`, and the store's
conditional put keeps it once.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, NamedTuple

from payments.models import Payment, PaymentMethod, PaymentStatus, iso_z
from payments.status import Change

SOURCE = "payments"  # the EventBridge `source` of every event

COMPLETED = "payment.completed"
CANCELLED = "payment.cancelled"
REFUNDED = "payment.refunded"
CHARGEBACK = "payment.chargeback"
BALANCE_LOW = "balance.low"  # a balance falling below its low-balance alert's threshold (payments.alerts)
# The auto top-up's outcomes (payments.autotopup, docs/auto-topup.md); their detail is flat, as balance.low's.
AUTOTOPUP_SUCCEEDED = "autotopup.succeeded"
AUTOTOPUP_REQUIRES_ACTION = "autotopup.requires_action"
AUTOTOPUP_FAILED = "autotopup.failed"
DETAIL_TYPES = (
    COMPLETED,
    CANCELLED,
    REFUNDED,
    CHARGEBACK,
    BALANCE_LOW,
    AUTOTOPUP_SUCCEEDED,
    AUTOTOPUP_REQUIRES_ACTION,
    AUTOTOPUP_FAILED,
)
# Internal: on the bus for the service's own functions, never sent to outbound webhooks. `autotopup.charge` asks
# the autotopup function to make the charge a crossing started; `autotopup.disabled` (a removed or expired card,
# an operator) sends the e-mail saying so.
AUTOTOPUP_CHARGE = "autotopup.charge"
AUTOTOPUP_DISABLED = "autotopup.disabled"
INTERNAL_TYPES = (AUTOTOPUP_CHARGE, AUTOTOPUP_DISABLED)
FLAT_TYPES = frozenset({BALANCE_LOW, AUTOTOPUP_SUCCEEDED, AUTOTOPUP_REQUIRES_ACTION, AUTOTOPUP_FAILED, *INTERNAL_TYPES})


class OutboxEvent(NamedTuple):
    """One event as the outbox item holds it and the bus carries it."""

    event_id: str  # stable: the same change always makes the same id (consumers dedupe on it)
    detail_type: str  # one of DETAIL_TYPES
    customer_id: str
    subject_id: str  # what it is about: the payment id (a balance.low event: its currency)
    occurred_at: str  # ISO 8601 UTC, when the change happened (its history entry)
    body: str  # the JSON of what it carries: the Payment's API form (a balance.low event: the rest of its detail)

    def detail(self) -> dict[str, Any]:
        """The event's `detail` on the bus (docs/events.md#the-event): its id, customer, time, and the Payment; a
        `balance.low` event's detail carries its balance, thresholds and payment id instead (docs/alerts.md)."""
        if self.detail_type in FLAT_TYPES:
            return {
                "event_id": self.event_id,
                "customer_id": self.customer_id,
                "occurred_at": self.occurred_at,
                **json.loads(self.body),
            }
        return {
            "event_id": self.event_id,
            "customer_id": self.customer_id,
            "occurred_at": self.occurred_at,
            "payment": json.loads(self.body),
        }


def detail_type(payment: Payment) -> str | None:
    """What a payment in its status publishes; None while pending (nothing to tell yet).

    A refund entry counted publishes `payment.refunded`, a chargeback entry `payment.chargeback`; anything else
    completed (a chargeback reversal too: money back in the balance) `payment.completed`; anything cancelled
    (a refund entry whose refund failed too) `payment.cancelled`."""
    if payment.status is PaymentStatus.CANCELLED:
        return CANCELLED
    if payment.status is not PaymentStatus.COMPLETED:
        return None
    if payment.method is PaymentMethod.REFUND:
        return REFUNDED
    if payment.method is PaymentMethod.CHARGEBACK:
        return CHARGEBACK
    return COMPLETED


def event_id(payment: Payment) -> str:
    """`evt_` and a hash of the payment id, its status and the length of its history: each status change adds one
    history entry, so two changes never share an id, and the same change always has the same one."""
    seed = f"{payment.id}:{payment.status.value}:{len(payment.history)}"
    return "evt_" + hashlib.sha256(seed.encode()).hexdigest()[:32]


def event_of(payment: Payment) -> OutboxEvent | None:
    """The event of `payment` having just reached its status, or None if that publishes nothing."""
    kind = detail_type(payment)
    if kind is None:
        return None
    moment = payment.history[-1].at if payment.history else (payment.completed_at or payment.created_at)
    body = json.dumps(payment.to_api().model_dump(mode="json"), separators=(",", ":"), sort_keys=True)
    return OutboxEvent(event_id(payment), kind, payment.customer_id, payment.id, iso_z(moment), body)


def of_new(payment: Payment) -> OutboxEvent | None:
    """The event of a payment written new: completed or cancelled from the start (a voucher, a purchase, a refund
    or chargeback entry); none for a pending one."""
    return event_of(payment)


def of_change(change: Change) -> OutboxEvent | None:
    """The event of a change: only one that changes the status publishes (a hold, a dispute note, a refund's
    progress at its gateway or a partial top-up do not)."""
    if not change.changed or change.before.status is change.after.status:
        return None
    return event_of(change.after)
