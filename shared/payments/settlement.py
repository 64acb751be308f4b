"""Settling payments from what gateways say: webhooks and reconciliation (docs/webhooks.md).

Both paths end in `apply_event`, so a webhook and a reconciliation answer about the same payment
go through the same status rules and the same exactly-once transaction.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from payments import registry
from payments.errors import PaymentsError
from payments.gateways.base import Capability, EventKind, Gateway, GatewayError, GatewayEvent, reading_answers
from payments.ids import new_payment_id
from payments.models import (
    Dispute,
    DisputeStatus,
    HistoryEntry,
    Payment,
    PaymentMethod,
    PaymentStatus,
    RefundStatus,
    utcnow,
)
from payments.money import Money
from payments.status import (
    Cause,
    TransitionRefused,
    credit_arrived,
    decide,
    note_dispute,
    note_fee,
    refund_progress,
    refundable,
)
from payments.store import Dedupe, DisputeWritten, RefundWritten

if TYPE_CHECKING:
    from payments.store import Store

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    """What happened to one event: the word in logs, metrics and the webhook's 200 answer."""

    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    REFUND_FAILED = "refund_failed"  # a refund we counted failed at the gateway: its entry cancelled, money back
    REFUND_SUCCEEDED = "refund_succeeded"  # a counted refund the gateway reports made: its detail says so
    HELD = "held"  # the gateway holds a pending payment: it stays pending, with the reason
    DISPUTE = "dispute"  # a dispute opened, changed or decided: the payment shows it
    CHARGEBACK = "chargeback"  # a dispute's funds withdrawn: a negative chargeback entry
    CHARGEBACK_REVERSED = "chargeback_reversed"  # those funds reinstated: a positive chargeback_reversal entry
    DUPLICATE = "duplicate"  # seen before: nothing done again
    UNCHANGED = "unchanged"  # the payment already was what the event says
    IGNORED = "ignored"  # an event type we do not act on
    UNKNOWN_PAYMENT = "unknown_payment"  # about no payment of ours
    MISMATCH = "mismatch"  # names a payment its gateway object does not belong to, or the wrong amount
    REFUSED = "refused"  # breaks the status rules (a failure after a success, a refund of what never counted)
    DEFERRED = "deferred"  # not yet: a refund of a payment still pending; not recorded, so the gateway resends
    FEE_RECORDED = "fee_recorded"  # the gateway's fee, reported after the fact, now shows on the payment
    CARD_ACTIVE = "card_active"  # a saved card's SetupIntent succeeded: the card is usable (docs/saved-cards.md)
    CARD_FAILED = "card_failed"  # ... or failed: the card is marked failed


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    payment_id: str | None = None


class WebhookOut(BaseModel):
    received: bool
    outcome: Outcome = Field(description="What the event did; `mismatch` events changed nothing and are alarmed on")


def _by(event: GatewayEvent) -> str:
    return f"gateway:{event.provider}:{event.event_id}"


def _dedupe(event: GatewayEvent) -> Dedupe:
    # Gateway event ids can be long or contain '#'; hash keeps keys short and safe.
    return Dedupe(event.provider, hashlib.sha256(event.event_id.encode()).hexdigest()[:40])


def record_only(store: Store, event: GatewayEvent, payment_id: str | None = None) -> bool:
    """Record an event we act on no further; False if it was recorded before."""
    return store.record_event(_dedupe(event), payment_id, event_type=event.event_type)


def _recorded(store: Store, event: GatewayEvent, payment_id: str | None, outcome: Outcome) -> Result:
    """`outcome` once; a redelivery of the same event is a duplicate."""
    return Result(outcome if record_only(store, event, payment_id) else Outcome.DUPLICATE, payment_id)


def binds(payment: Payment, event: GatewayEvent) -> bool:
    """Whether `event` may act on `payment`: the payment is of the event's gateway, and the event is about a
    gateway object we created for that payment and stored ourselves. Ids from metadata, notes or order ids
    only help find a payment; this is the proof."""
    return (
        registry.provider_of(payment.method) == event.provider
        and event.gateway_ref is not None
        and event.gateway_ref in payment.known_gateway_refs
    )


def bound_payment(store: Store, event: GatewayEvent) -> tuple[Payment | None, Payment | None]:
    """(the payment the event is about, None), or (None, the payment it names but may not touch, if any).

    Our ids in the event (one GetItem) are tried first as a hint; then the pointer from the gateway's own
    reference (two GetItems). Either way `binds` decides.
    """
    named = None
    if event.customer_id and event.payment_id:
        named = store.get(event.customer_id, event.payment_id, consistent=True)
        if named is not None and binds(named, event):
            return named, None
    if event.gateway_ref:
        pointed = store.find_by_gateway_ref(event.provider, event.gateway_ref)
        if pointed is not None and binds(pointed, event):
            return pointed, None
        named = named or pointed
    return None, named


def apply_event(store: Store, adapter: Gateway, event: GatewayEvent) -> Result:
    """Act on a verified event exactly once. Never raises for business outcomes: gateways want a 2xx."""
    if event.kind is EventKind.IGNORED:
        return _recorded(store, event, None, Outcome.IGNORED)
    if event.kind is EventKind.SETUP_SUCCEEDED or event.kind is EventKind.SETUP_FAILED:  # a saved card's SetupIntent
        from payments import saved_cards

        return saved_cards.apply_setup_event(store, event)
    payment, named = bound_payment(store, event)
    if payment is None:
        if named is not None:
            logger.error(
                "event refused: it is not about the gateway object of the payment it names",
                extra={
                    "provider": event.provider,
                    "type": event.event_type,
                    "named_payment_id": named.id,
                    "named_method": named.method.value,
                    "event_gateway_ref": event.gateway_ref,
                    "stored_gateway_ref": named.gateway_ref,
                },
            )
            return _recorded(store, event, named.id, Outcome.MISMATCH)
        logger.warning("event about an unknown payment", extra={"provider": event.provider, "type": event.event_type})
        return _recorded(store, event, None, Outcome.UNKNOWN_PAYMENT)
    if event.kind is EventKind.CAPTURE:
        return _capture(store, adapter, event, payment)
    if event.kind is EventKind.REFUND:
        return _refund(store, event, payment)
    if event.kind is EventKind.REFUND_FAILED:
        return _refund_failed(store, event, payment)
    if event.kind is EventKind.HELD:
        return _hold(store, event, payment)
    if event.kind is EventKind.DISPUTE:
        return _dispute(store, event, payment)
    if event.kind is EventKind.FEE:
        return _fee(store, event, payment)
    if event.kind is EventKind.CHARGEBACK or event.kind is EventKind.CHARGEBACK_REVERSAL:
        return _dispute_funds(store, event, payment)
    if event.kind is EventKind.PARTIAL or (event.kind is EventKind.SUCCESS and payment.requested_minor is not None):
        return _credit_arrived(store, event, payment)
    if event.kind is EventKind.SUCCESS:
        charged = Money(payment.charged_minor, payment.currency)  # amount + surcharge: what the gateway was asked
        if event.money != charged:
            logger.error(
                "success event amount differs from the payment",
                extra={"payment_id": payment.id, "expected": str(charged), "got": str(event.money)},
            )
            return _recorded(store, event, payment.id, Outcome.MISMATCH)
        return _transition(store, event, payment, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS)
    return _transition(store, event, payment, PaymentStatus.CANCELLED, Cause.GATEWAY_FAILURE)


def _transition(store: Store, event: GatewayEvent, payment: Payment, target: PaymentStatus, cause: Cause) -> Result:
    try:
        outcome = store.transition(
            payment.customer_id,
            payment.id,
            target,
            cause,
            _by(event),
            note=event.reason,
            dedupe=_dedupe(event),
            current=payment,
            fee_minor=fee_minor(event, payment) if target is PaymentStatus.COMPLETED else None,
        )
    except TransitionRefused:
        # e.g. a failure after a success: the payment stays completed; remember the event.
        return _recorded(store, event, payment.id, Outcome.REFUSED)
    if outcome.duplicate:
        return Result(Outcome.DUPLICATE, payment.id)
    return Result(Outcome(target.value) if outcome.changed else Outcome.UNCHANGED, payment.id)


def fee_minor(event: GatewayEvent, payment: Payment) -> int | None:
    """The gateway's fee the event reports, in the payment's minor units; None if it reports none, or reports it in
    another currency (Stripe's balance transaction is in the account's settlement currency when Stripe converts):
    a fee is recorded as reported, never converted (docs/gateways.md#gateway-fees)."""
    fee = event.fee
    if fee is None:
        return None
    if fee.currency != payment.currency or fee.minor < 0:
        logger.info(
            "gateway fee not recorded: not in the payment's currency",
            extra={"payment_id": payment.id, "fee_currency": fee.currency, "currency": payment.currency},
        )
        return None
    return fee.minor


def _fee(store: Store, event: GatewayEvent, payment: Payment) -> Result:
    """The gateway reports its fee after the payment settled (Stripe's charge.updated): the payment shows it, once
    (`status.note_fee`); no status, amount or balance moves and nothing is published."""
    minor = fee_minor(event, payment)
    if minor is None:
        return _recorded(store, event, payment.id, Outcome.IGNORED)
    outcome = store.apply_change(
        payment.customer_id,
        payment.id,
        lambda current: note_fee(current, minor),
        dedupe=_dedupe(event),
        current=payment,
    )
    if outcome.duplicate:
        return Result(Outcome.DUPLICATE, payment.id)
    return Result(Outcome.FEE_RECORDED if outcome.changed else Outcome.UNCHANGED, payment.id)


def _refund(store: Store, event: GatewayEvent, original: Payment) -> Result:
    """A refund the gateway reports: a new negative payment, counted against a completed original only."""
    money = event.money
    if money is None or money.currency != original.currency or not 0 < money.minor <= original.charged_minor:
        logger.error("refund event amount is not refundable", extra={"payment_id": original.id})
        return _recorded(store, event, original.id, Outcome.MISMATCH)
    credited_left = abs(original.amount_minor) - original.refunded_minor
    if original.surcharge_minor and money.minor > credited_left:
        # A dashboard refund of the charged amount returns the surcharge too, which was never credited: the
        # balance gives back what is left of the amount (docs/account-settings.md#surcharges).
        if credited_left <= 0:
            return _recorded(store, event, original.id, Outcome.IGNORED)
        money = Money(credited_left, money.currency)
    if event.uncaptured:  # the gateway returns money it never took (an uncaptured payment): nothing counted
        logger.warning("refund of a payment the gateway never captured ignored", extra={"payment_id": original.id})
        return _recorded(store, event, original.id, Outcome.REFUSED)
    if not refundable(original.status):
        return _refund_of_uncounted(store, event, original)
    if original.refund_ids and _reserving(store, original):
        # An operator's refund is being made at the gateway: this may be that very refund, reported before its call
        # returned. Counted now, it would hold the payment twice (the reservation and this entry) until the route
        # binds it, and refuse other operators' refunds that fit. Not recorded: the gateway delivers it again, by
        # when the refund names its entry (a duplicate) or the reservation is gone (it counts).
        logger.warning("refund reported while another is being made: asking the gateway to resend")
        return Result(Outcome.DEFERRED, original.id)
    now = utcnow()
    refund = Payment(
        id=new_payment_id(now),
        customer_id=original.customer_id,
        created_at=now,
        completed_at=now,
        amount_minor=-money.minor,
        currency=money.currency,
        status=PaymentStatus.COMPLETED,
        method=PaymentMethod.REFUND,
        description=f"Refund of {original.description}"[:200],
        reference=event.refund_id,
        gateway_ref=event.gateway_ref,
        refund_of=original.id,
        refund_status=event.refund_status or RefundStatus.SUCCEEDED,
        history=(HistoryEntry(at=now, status=PaymentStatus.COMPLETED, by=_by(event), note="refund"),),
    )
    marker = _refund_key(event)
    written = store.record_refund(refund, original, marker)
    if written is RefundWritten.DUPLICATE:  # this refund is counted already (or reported failed first)
        return _refund_reported_again(store, event, original, marker)
    if written is RefundWritten.REFUSED:
        # The original is no longer completed (it cannot be, today), or its refunds would pass what it was for.
        current = store.require(original.customer_id, original.id, consistent=True)
        if not refundable(current.status):
            return _refund_of_uncounted(store, event, current)
        if _reserving(store, current):  # reserved since `original` was read: as above
            logger.warning("refund reported while another is being made: asking the gateway to resend")
            return Result(Outcome.DEFERRED, original.id)
        logger.error("refunds would exceed the payment", extra={"payment_id": original.id})
        return _recorded(store, event, original.id, Outcome.MISMATCH)
    return Result(Outcome.REFUNDED, refund.id)


def _reserving(store: Store, original: Payment) -> bool:
    """Whether an operator's refund of `original` is still pending: its reservation holds part of the payment."""
    for refund_id in original.refund_ids:
        entry = store.get(original.customer_id, refund_id, consistent=True)
        if entry is not None and entry.status is PaymentStatus.PENDING:
            return True
    return False


def _refund_reported_again(store: Store, event: GatewayEvent, original: Payment, marker: Dedupe) -> Result:
    """A refund already counted, reported again (another event type, a redelivery): a `succeeded` after a
    `pending` updates its detail, once; anything else changes nothing."""
    refund_id = store.event_payment_id(marker)
    if event.refund_status is not RefundStatus.SUCCEEDED or refund_id is None:
        return Result(Outcome.DUPLICATE, original.id)
    now = utcnow()
    outcome = store.apply_change(
        original.customer_id,
        refund_id,
        lambda entry: refund_progress(entry, RefundStatus.SUCCEEDED, by=_by(event), now=now),
        dedupe=_dedupe(event),
    )
    return Result(Outcome.REFUND_SUCCEEDED if outcome.changed else Outcome.DUPLICATE, refund_id)


def _credit_arrived(store: Store, event: GatewayEvent, payment: Payment) -> Result:
    """Part of a payment arrived (NOWPayments `partially_paid`, credited as the balance top-up it is), or the rest
    of one credited in part (`finished`): the payment counts what arrived, once per event, never more than was
    asked for (`status.credit_arrived`)."""
    arrived = event.money
    requested = event.requested if event.kind is EventKind.PARTIAL else event.money
    if arrived is None or requested is None:
        return _recorded(store, event, payment.id, Outcome.MISMATCH)
    now = utcnow()
    try:
        outcome = store.apply_change(
            payment.customer_id,
            payment.id,
            lambda current: credit_arrived(current, arrived, requested, by=_by(event), now=now),
            dedupe=_dedupe(event),
            current=payment,
        )
    except TransitionRefused:
        logger.error(
            "partial payment does not fit the payment",
            extra={"payment_id": payment.id, "requested": str(requested), "arrived": str(arrived)},
        )
        return _recorded(store, event, payment.id, Outcome.MISMATCH)
    if outcome.duplicate:
        return Result(Outcome.DUPLICATE, payment.id)
    return Result(Outcome.COMPLETED if outcome.changed else Outcome.UNCHANGED, payment.id)


def _hold(store: Store, event: GatewayEvent, payment: Payment) -> Result:
    """The gateway holds the payment (PayPal's capture pending a manual step, Stripe processing a bank debit): it
    stays pending and shows why; reconciliation keeps asking and never times it out. A settled one stays so."""
    reason = (event.reason or "the gateway holds the payment")[:200]
    outcome = store.hold(payment.customer_id, payment.id, reason, _by(event), dedupe=_dedupe(event))
    if outcome.duplicate:
        return Result(Outcome.DUPLICATE, payment.id)
    return Result(Outcome.HELD if outcome.changed else Outcome.UNCHANGED, payment.id)


def refund_marker(provider: str, refund_id: str) -> Dedupe:
    """The marker of one gateway refund (not of one event about it): the same refund reported by two event types,
    by the refund route and a webhook, or reported failed before it was reported made, counts once; it names the
    refund entry that counts it."""
    return Dedupe(provider, "refund:" + hashlib.sha256(refund_id.encode()).hexdigest()[:40])


def _refund_key(event: GatewayEvent) -> Dedupe:
    return refund_marker(event.provider, event.refund_id or event.event_id)


def _refund_failed(store: Store, event: GatewayEvent, original: Payment) -> Result:
    """A refund the gateway reports failed: the money was not returned. Its entry is cancelled through the status
    rules, so it counts again exactly once and its original may be refunded by it again. Reported before the
    refund itself: the refund's marker is recorded naming no entry, so the refund, reported later, never debits."""
    if not event.refund_id:
        logger.error("refund failure without a refund id", extra={"payment_id": original.id})
        return _recorded(store, event, original.id, Outcome.MISMATCH)
    key = _refund_key(event)
    refund_id = store.event_payment_id(key)
    if refund_id is None:
        if store.record_event(key, None, event_type=event.event_type):
            logger.warning("refund failed before it was reported made", extra={"payment_id": original.id})
            return _recorded(store, event, original.id, Outcome.REFUND_FAILED)
        refund_id = store.event_payment_id(key)  # the refund was recorded meanwhile, or its failure was
        if refund_id is None:
            return Result(Outcome.DUPLICATE, original.id)
    refund = store.get(original.customer_id, refund_id, consistent=True)
    if refund is None or refund.refund_of != original.id:
        logger.error("refund failure names another payment's refund", extra={"payment_id": original.id})
        return _recorded(store, event, original.id, Outcome.MISMATCH)
    note = f"refund failed: {event.reason}" if event.reason else "refund failed"
    outcome = store.transition(
        refund.customer_id,
        refund.id,
        PaymentStatus.CANCELLED,
        Cause.REFUND_FAILED,
        _by(event),
        note=note[:200],
        dedupe=_dedupe(event),
        current=refund,
    )
    if outcome.duplicate:
        return Result(Outcome.DUPLICATE, refund.id)
    return Result(Outcome.REFUND_FAILED if outcome.changed else Outcome.UNCHANGED, refund.id)


def _refund_of_uncounted(store: Store, event: GatewayEvent, original: Payment) -> Result:
    """A refund of a payment whose money never counted never debits the balance. A pending one may yet be
    completed (events come in any order): the event is not recorded and the webhook answers non-2xx, so the
    gateway delivers it again later. A cancelled one is recorded and changes nothing."""
    if original.status is PaymentStatus.PENDING:
        logger.warning(
            "refund of a payment that is still pending: asking the gateway to resend", extra={"payment_id": original.id}
        )
        return Result(Outcome.DEFERRED, original.id)
    logger.warning("refund of a cancelled payment ignored", extra={"payment_id": original.id})
    return _recorded(store, event, original.id, Outcome.REFUSED)


def _disputed(event: GatewayEvent, payment: Payment, status: DisputeStatus | None = None) -> Dispute:
    """The dispute an event reports, in the payment's terms (its amount: the event's, else the payment's). Funds
    moved under a funds id (PayPal: the capture's) are those of the dispute the payment shows, if it shows one: it
    keeps its id and reason, whichever of the events about it came first."""
    current = payment.dispute
    if event.funds_id and current is not None:
        return current.model_copy(update={"status": status or event.dispute_status or current.status})
    money = event.money
    amount = money.minor if money is not None and money.currency == payment.currency else abs(payment.amount_minor)
    opened = payment.dispute.opened_at if payment.dispute and payment.dispute.id == event.dispute_id else utcnow()
    return Dispute(
        id=event.dispute_id or event.event_id,
        status=status or event.dispute_status or DisputeStatus.OPEN,
        amount_minor=amount,
        reason=event.reason[:100] if event.reason else None,
        opened_at=opened,
    )


def _dispute(store: Store, event: GatewayEvent, payment: Payment) -> Result:
    """A dispute opened, changed or decided (docs/status-rules.md#disputes-and-chargebacks): the payment shows it,
    once per event; no money moves here."""
    if not event.dispute_id:
        logger.error("dispute event without a dispute id", extra={"payment_id": payment.id})
        return _recorded(store, event, payment.id, Outcome.MISMATCH)
    now = utcnow()
    outcome = store.apply_change(
        payment.customer_id,
        payment.id,
        lambda current: note_dispute(current, _disputed(event, current), by=_by(event), now=now),
        dedupe=_dedupe(event),
    )
    if outcome.duplicate:
        return Result(Outcome.DUPLICATE, payment.id)
    return Result(Outcome.DISPUTE if outcome.changed else Outcome.UNCHANGED, payment.id)


def dispute_marker(provider: str, dispute_id: str) -> Dedupe:
    """The marker of one dispute's funds: which entry withdrew them and which reinstated them (once each)."""
    return Dedupe(provider, "dispute:" + hashlib.sha256(dispute_id.encode()).hexdigest()[:40])


def _dispute_funds(store: Store, event: GatewayEvent, original: Payment) -> Result:
    """Funds a gateway withdrew for a dispute (or a reversal of the payment), or reinstated: a `chargeback` entry
    (negative) or a `chargeback_reversal` entry (positive) linked to the original, once per dispute and direction.
    A chargeback takes at most what refunds and earlier chargebacks left of the payment; a reversal gives back
    what its chargeback took. Reinstated before withdrawn: the two cancel out, whichever order they come in."""
    money = event.money
    if not event.dispute_id or money is None or money.currency != original.currency or not money.is_positive:
        logger.error("dispute funds event without a dispute id or a usable amount", extra={"payment_id": original.id})
        return _recorded(store, event, original.id, Outcome.MISMATCH)
    if not refundable(original.status):
        return _refund_of_uncounted(store, event, original)
    withdrawn = event.kind is EventKind.CHARGEBACK
    marker = dispute_marker(event.provider, event.funds_id or event.dispute_id)
    for _attempt in range(3):  # a refund may take part of the payment between the read and the write
        current = store.require(original.customer_id, original.id, consistent=True)
        took, gave = store.dispute_funds(marker)
        if took if withdrawn else gave:  # these funds moved this way before
            return Result(Outcome.DUPLICATE, original.id)
        if withdrawn:
            left = abs(current.amount_minor) - current.refunded_minor
            amount = money.minor if gave else min(money.minor, left)
            if amount <= 0:
                logger.warning("chargeback of a payment taken back in full already", extra={"payment_id": original.id})
                return _recorded(store, event, original.id, Outcome.REFUSED)
        else:
            chargeback = store.get(original.customer_id, took, consistent=True) if took else None
            amount = abs(chargeback.amount_minor) if chargeback is not None else money.minor
        entry = _dispute_entry(event, current, amount, withdrawn=withdrawn)
        written = store.record_dispute_funds(entry, current, marker)
        if written is DisputeWritten.DUPLICATE:
            return Result(Outcome.DUPLICATE, original.id)
        if written is DisputeWritten.REFUSED:
            continue
        _show_dispute(store, event, original, None if withdrawn else DisputeStatus.WON)
        if written is DisputeWritten.OFFSET:
            return Result(Outcome.UNCHANGED, original.id)
        return Result(Outcome.CHARGEBACK if withdrawn else Outcome.CHARGEBACK_REVERSED, entry.id)
    logger.error("dispute funds do not fit the payment", extra={"payment_id": original.id, "type": event.event_type})
    return _recorded(store, event, original.id, Outcome.MISMATCH)


def _show_dispute(store: Store, event: GatewayEvent, original: Payment, status: DisputeStatus | None) -> None:
    now = utcnow()
    store.apply_change(
        original.customer_id,
        original.id,
        lambda payment: note_dispute(payment, _disputed(event, payment, status), by=_by(event), now=now),
    )


def _dispute_entry(event: GatewayEvent, original: Payment, amount: int, *, withdrawn: bool) -> Payment:
    now = utcnow()
    label = "Chargeback" if withdrawn else "Chargeback reversal"
    note = f"{label.lower()}: {event.reason}" if event.reason else label.lower()
    return Payment(
        id=new_payment_id(now),
        customer_id=original.customer_id,
        created_at=now,
        completed_at=now,
        amount_minor=-amount if withdrawn else amount,
        currency=original.currency,
        status=PaymentStatus.COMPLETED,
        method=PaymentMethod.CHARGEBACK if withdrawn else PaymentMethod.CHARGEBACK_REVERSAL,
        description=f"{label} of {original.description}"[:200],
        reference=event.dispute_id,
        gateway_ref=event.gateway_ref,
        refund_of=original.id,
        history=(HistoryEntry(at=now, status=PaymentStatus.COMPLETED, by=_by(event), note=note[:200]),),
    )


def _capture(store: Store, adapter: Gateway, event: GatewayEvent, payment: Payment) -> Result:
    """PayPal: the buyer approved, so capture; the capture's answer settles the payment."""
    if Capability.CAPTURE not in adapter.capabilities or not event.gateway_ref:
        return _recorded(store, event, payment.id, Outcome.IGNORED)
    if not decide(payment.status, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS).apply:  # completed already
        return _recorded(store, event, payment.id, Outcome.UNCHANGED)
    with reading_answers(event.provider, "capture the payment"):
        answer = adapter.capture(event.gateway_ref, f"capture-{payment.id}")  # idempotent at PayPal by request id
    settled = GatewayEvent(
        provider=event.provider,
        event_id=event.event_id,
        event_type=event.event_type,
        kind=answer.kind,
        payment_id=payment.id,
        customer_id=payment.customer_id,
        gateway_ref=event.gateway_ref,
        money=answer.money,
        reason=answer.reason,
        fee=answer.fee,
    )
    if answer.kind is EventKind.IGNORED:  # capture pending: a later PAYMENT.CAPTURE.* settles it
        return _recorded(store, settled, payment.id, Outcome.IGNORED)
    return apply_event(store, adapter, settled)


# ---- reconciliation --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    checked: int = 0
    completed: int = 0
    cancelled: int = 0
    timed_out: int = 0
    still_pending: int = 0
    held: int = 0  # the gateway holds them (a reason is shown): asked again next run, never timed out
    mismatched: int = 0  # the gateway's answer does not fit the payment: logged, nothing changed
    errors: int = 0  # the gateway (or DynamoDB) could not be asked or read: tried again next run

    def add(self, **counts: int) -> ReconcileReport:
        values: dict[str, Any] = {k: getattr(self, k) + counts.get(k, 0) for k in self.__dataclass_fields__}
        return ReconcileReport(**values)


_REPORTED = {
    Outcome.COMPLETED: "completed",
    Outcome.CANCELLED: "cancelled",
    Outcome.MISMATCH: "mismatched",
    Outcome.HELD: "held",
}
_ASKED_ABOUT = (EventKind.SUCCESS, EventKind.FAILURE, EventKind.CAPTURE, EventKind.HELD)


def reconcile(
    store: Store,
    adapters: Mapping[str, Gateway],
    *,
    now: datetime,
    ask_after: timedelta,
    give_up_after: timedelta,
    limit: int = 200,
) -> ReconcileReport:
    """Ask each gateway about payments pending longer than `ask_after`; cancel those past `give_up_after`."""
    report = ReconcileReport()
    for provider, adapter in adapters.items():
        method = registry.GATEWAY_BY_PROVIDER[provider].method
        for payment in store.pending_before(method, now - ask_after, limit=limit):
            if payment.auto_topup and not payment.gateway_ref:
                continue  # its charge never got through: autotopup.redrive's, never timed out (the card may be charged)
            try:
                counted = _reconcile_one(store, provider, adapter, payment, now - give_up_after)
            except (GatewayError, PaymentsError) as exc:
                logger.warning(
                    "reconciliation could not settle a payment", extra={"payment_id": payment.id, "error": exc.message}
                )
                counted = "errors"
            report = report.add(checked=1, **{counted: 1})
    return report


def _reconcile_one(store: Store, provider: str, adapter: Gateway, payment: Payment, give_up: datetime) -> str:
    """Which report line one pending payment goes to."""
    answer = None
    if payment.gateway_ref:
        with reading_answers(provider, "read the payment"):
            answer = adapter.fetch_status(payment.gateway_ref, payment.id)
    if answer is not None and answer.kind is EventKind.HELD and payment.pending_reason == answer.reason:
        return "held"  # held as it was: nothing to write, and never timed out
    if answer is not None and answer.kind in _ASKED_ABOUT:
        said = hashlib.sha256((answer.reason or "").encode()).hexdigest()[:12] if answer.kind is EventKind.HELD else ""
        event = GatewayEvent(
            provider=provider,
            event_id=f"reconcile:{payment.id}:{answer.kind.value}{':' + said if said else ''}",
            event_type="reconciliation",
            kind=answer.kind,
            payment_id=payment.id,
            customer_id=payment.customer_id,
            gateway_ref=payment.gateway_ref,
            money=answer.money,
            reason=answer.reason,
            fee=answer.fee,
        )
        return _REPORTED.get(apply_event(store, adapter, event).outcome, "still_pending")
    if payment.created_at > give_up:
        return "still_pending"
    try:
        store.transition(
            payment.customer_id,
            payment.id,
            PaymentStatus.CANCELLED,
            Cause.TIMEOUT,
            "system:reconcile",
            note="no answer from the gateway before the final timeout",
        )
    except TransitionRefused:
        return "still_pending"  # settled meanwhile by a webhook
    return "timed_out"


# ---- reconciliation of what settled payments still wait for ---------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchReport:
    """What asking the gateways about open disputes and refunds still pending at them changed."""

    refunds_checked: int = 0
    refunds_changed: int = 0  # reported made (the detail says so) or failed (cancelled: the money counts again)
    disputes_checked: int = 0
    disputes_changed: int = 0  # decided, or their funds withdrawn or reinstated: entries written
    errors: int = 0  # could not be asked or read: asked again next run


_CHANGES = frozenset(
    {
        Outcome.REFUND_SUCCEEDED,
        Outcome.REFUND_FAILED,
        Outcome.DISPUTE,
        Outcome.CHARGEBACK,
        Outcome.CHARGEBACK_REVERSED,
    }
)


def _all_watched(store: Store, kind: str, page: int, most: int) -> Iterator[Payment]:
    after: str | None = None
    for _ in range(-(-most // page)):
        payments = store.watched(kind, limit=page, after=after)
        yield from payments
        if len(payments) < page:
            return
        after = payments[-1].id


def reconcile_watched(
    store: Store, adapters: Mapping[str, Gateway], *, page: int = 100, most: int = 2000
) -> WatchReport:
    """Ask each gateway about the refunds it has not reported made and the disputes it has not decided (the
    store's watch list), so a lost `refund.failed`, `refund.processed` or dispute event is found: each answer
    becomes the event it stands for, settled by `apply_event` like a webhook, exactly once."""
    counts = dict.fromkeys(WatchReport.__dataclass_fields__, 0)
    for kind in ("refund", "dispute"):
        for payment in _all_watched(store, kind, page, most):  # `most` per run: the rest next run
            counts[f"{kind}s_checked"] += 1
            try:
                changed = (
                    _watch_refund(store, adapters, payment)
                    if kind == "refund"
                    else _watch_dispute(store, adapters, payment)
                )
            except (GatewayError, PaymentsError) as exc:
                logger.warning("reconciliation could not ask", extra={"payment_id": payment.id, "error": exc.message})
                counts["errors"] += 1
                continue
            counts[f"{kind}s_changed"] += changed
    return WatchReport(**counts)


def _asked(payment: Payment, adapters: Mapping[str, Gateway]) -> tuple[str, Gateway] | None:
    provider = registry.provider_of(payment.method)
    adapter = adapters.get(provider or "")
    return (provider, adapter) if provider and adapter is not None else None


def _watch_refund(store: Store, adapters: Mapping[str, Gateway], entry: Payment) -> bool:
    original = store.require(entry.customer_id, entry.refund_of or "", consistent=True)
    asked = _asked(original, adapters)
    if asked is None or not entry.reference or Capability.REFUND not in asked[1].capabilities:
        return False
    provider, adapter = asked
    with reading_answers(provider, "read the refund"):
        answer = adapter.fetch_refund(original.gateway_ref or "", entry.reference)
    if answer is None or answer.status is RefundStatus.PENDING:
        return False
    failed = answer.status is RefundStatus.FAILED
    event = GatewayEvent(
        provider=provider,
        event_id=f"reconcile:refund:{entry.id}:{answer.status.value}",
        event_type="reconciliation",
        kind=EventKind.REFUND_FAILED if failed else EventKind.REFUND,
        payment_id=original.id,
        customer_id=original.customer_id,
        gateway_ref=original.gateway_ref,
        money=answer.money,
        reason=answer.reason if failed else None,
        refund_id=entry.reference,
        refund_status=answer.status,
    )
    return apply_event(store, adapter, event).outcome in _CHANGES


def _watch_dispute(store: Store, adapters: Mapping[str, Gateway], payment: Payment) -> bool:
    asked = _asked(payment, adapters)
    if asked is None or payment.dispute is None:
        return False
    provider, adapter = asked
    with reading_answers(provider, "read the dispute"):
        answer = adapter.fetch_dispute(payment.gateway_ref or "", payment.dispute.id)
    if answer is None:
        return False

    def said(kind: EventKind, step: str) -> bool:
        event = GatewayEvent(
            provider=provider,
            event_id=f"reconcile:dispute:{answer.dispute_id}:{step}",
            event_type="reconciliation",
            kind=kind,
            payment_id=payment.id,
            customer_id=payment.customer_id,
            gateway_ref=payment.gateway_ref,
            money=answer.money,
            reason=answer.reason,
            dispute_id=answer.dispute_id,
            dispute_status=answer.status,
            funds_id=answer.funds_id,
        )
        return apply_event(store, adapter, event).outcome in _CHANGES

    changed = [said(EventKind.CHARGEBACK, "withdrawn")] if answer.withdrawn else []
    changed += [said(EventKind.CHARGEBACK_REVERSAL, "reinstated")] if answer.reinstated else []
    changed.append(said(EventKind.DISPUTE, answer.status.value))
    return any(changed)
