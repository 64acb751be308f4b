"""Settling payments from what gateways say: webhooks and reconciliation (docs/webhooks.md).

Both paths end in `apply_event`, so a webhook and a reconciliation answer about the same payment
go through the same status rules and the same exactly-once transaction.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from payments.gateways.base import EventKind, Gateway, GatewayError, GatewayEvent
from payments.ids import new_payment_id
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus, utcnow
from payments.status import Cause, TransitionRefused
from payments.store import Dedupe, PaymentStore

logger = logging.getLogger(__name__)

PROVIDER_METHODS = {
    "stripe": PaymentMethod.CREDIT_CARD,
    "paypal": PaymentMethod.PAYPAL,
    "razorpay": PaymentMethod.RAZORPAY,
    "paystack": PaymentMethod.PAYSTACK,
    "nowpayments": PaymentMethod.NOWPAYMENTS,
}


@dataclass(frozen=True, slots=True)
class Result:
    """What happened to one event. `outcome` is a short word for logs, metrics and the 200 answer."""

    outcome: str  # completed, cancelled, refunded, duplicate, unchanged, ignored, unknown_payment, mismatch, refused
    payment_id: str | None = None


class WebhookOut(BaseModel):
    received: bool
    outcome: str = Field(
        description="completed, cancelled, refunded, duplicate, unchanged, ignored, unknown_payment, ..."
    )


def _by(event: GatewayEvent) -> str:
    return f"gateway:{event.provider}:{event.event_id}"


def _dedupe(event: GatewayEvent) -> Dedupe:
    # Gateway event ids can be long or contain '#'; hash keeps keys short and safe.
    return Dedupe(event.provider, hashlib.sha256(event.event_id.encode()).hexdigest()[:40])


def record_only(store: PaymentStore, event: GatewayEvent, payment_id: str | None = None) -> bool:
    """Record an event we act on no further; False if it was recorded before."""
    put = _dedupe(event).put(store.table, payment_id)["Put"]
    put["Item"]["event_type"] = {"S": event.event_type[:100]}
    put["Item"]["outcome"] = {"S": "recorded"}
    try:
        store.client.put_item(**put)
    except store.client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def apply_event(store: PaymentStore, adapter: Gateway, event: GatewayEvent) -> Result:
    """Act on a verified event exactly once. Never raises for business outcomes: gateways want a 2xx."""
    if event.kind is EventKind.IGNORED:
        return Result("ignored" if record_only(store, event) else "duplicate")
    payment = _find_payment(store, event)
    if payment is None:
        logger.warning("event about an unknown payment", extra={"provider": event.provider, "type": event.event_type})
        return Result("unknown_payment" if record_only(store, event) else "duplicate")
    if event.gateway_ref and payment.gateway_ref and event.gateway_ref != payment.gateway_ref:
        # Ids in metadata can be set by a payer's browser (Razorpay notes): trust them only when the
        # gateway's own reference agrees with the one we stored when creating the payment.
        logger.error("event names a payment whose gateway reference differs", extra={"payment_id": payment.id})
        return Result("mismatch" if record_only(store, event, payment.id) else "duplicate", payment.id)
    if event.kind is EventKind.CAPTURE:
        return _capture(store, adapter, event, payment)
    if event.kind is EventKind.REFUND:
        return _refund(store, event, payment)
    if event.kind is EventKind.SUCCESS:
        if event.money != payment.money:
            logger.error(
                "success event amount differs from the payment",
                extra={"payment_id": payment.id, "expected": str(payment.money), "got": str(event.money)},
            )
            recorded = record_only(store, event, payment.id)
            return Result("mismatch" if recorded else "duplicate", payment.id)
        return _transition(store, event, payment, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS)
    return _transition(store, event, payment, PaymentStatus.CANCELLED, Cause.GATEWAY_FAILURE)


def _find_payment(store: PaymentStore, event: GatewayEvent) -> Payment | None:
    """By our ids from the event's metadata (one GetItem), else by the gateway's reference."""
    if event.customer_id and event.payment_id:
        return store.get(event.customer_id, event.payment_id, consistent=True)
    if event.gateway_ref:
        return store.find_by_gateway_ref(event.provider, event.gateway_ref)
    return None


def _transition(
    store: PaymentStore, event: GatewayEvent, payment: Payment, target: PaymentStatus, cause: Cause
) -> Result:
    try:
        outcome = store.transition(
            payment.customer_id,
            payment.id,
            target,
            cause,
            _by(event),
            note=event.reason,
            dedupe=_dedupe(event),
            gateway_ref=event.gateway_ref,
            current=payment,
        )
    except TransitionRefused:
        # e.g. a failure after a success: the payment stays completed; remember the event.
        return Result("refused" if record_only(store, event, payment.id) else "duplicate", payment.id)
    if outcome.duplicate:
        return Result("duplicate", payment.id)
    return Result(target.value if outcome.changed else "unchanged", payment.id)


def _refund(store: PaymentStore, event: GatewayEvent, original: Payment) -> Result:
    money = event.money
    if money is None or money.currency != original.currency or not 0 < money.minor <= abs(original.amount_minor):
        logger.error("refund event amount is not refundable", extra={"payment_id": original.id})
        return Result("mismatch" if record_only(store, event, original.id) else "duplicate", original.id)
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
        history=(HistoryEntry(at=now, status=PaymentStatus.COMPLETED, by=_by(event), note="refund"),),
    )
    # Dedupe on the refund itself, so the same refund reported by two event types counts once.
    key = Dedupe(
        event.provider, "refund:" + hashlib.sha256((event.refund_id or event.event_id).encode()).hexdigest()[:40]
    )
    try:
        if not store.add(refund, dedupe=key, extra=[store.refund_claim(original, money)]):
            return Result("duplicate", original.id)
    except store.client.exceptions.TransactionCanceledException:
        logger.error("refunds would exceed the payment", extra={"payment_id": original.id})
        return Result("mismatch" if record_only(store, event, original.id) else "duplicate", original.id)
    return Result("refunded", refund.id)


def _capture(store: PaymentStore, adapter: Gateway, event: GatewayEvent, payment: Payment) -> Result:
    """PayPal: the buyer approved, so capture; the capture's answer settles the payment."""
    capture = getattr(adapter, "capture", None)
    if capture is None or not event.gateway_ref:
        return Result("ignored" if record_only(store, event, payment.id) else "duplicate", payment.id)
    if payment.status is PaymentStatus.COMPLETED:
        return Result("unchanged" if record_only(store, event, payment.id) else "duplicate", payment.id)
    answer = capture(event.gateway_ref, f"capture-{payment.id}")  # idempotent at PayPal by request id
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
    )
    if answer.kind is EventKind.IGNORED:  # capture pending: a later PAYMENT.CAPTURE.* settles it
        return Result("ignored" if record_only(store, settled, payment.id) else "duplicate", payment.id)
    return apply_event(store, adapter, settled)


# ---- reconciliation --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    checked: int = 0
    completed: int = 0
    cancelled: int = 0
    timed_out: int = 0
    still_pending: int = 0
    errors: int = 0

    def add(self, **counts: int) -> ReconcileReport:
        values: dict[str, Any] = {k: getattr(self, k) + counts.get(k, 0) for k in self.__dataclass_fields__}
        return ReconcileReport(**values)


def reconcile(
    store: PaymentStore,
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
        for payment in store.pending_before(PROVIDER_METHODS[provider], now - ask_after, limit=limit):
            report = report.add(checked=1)
            try:
                answer = adapter.fetch_status(payment.gateway_ref or "", payment.id) if payment.gateway_ref else None
            except GatewayError as exc:
                logger.warning(
                    "reconciliation could not ask the gateway", extra={"payment_id": payment.id, "error": exc.message}
                )
                report = report.add(errors=1)
                continue
            if answer is not None and answer.kind in (EventKind.SUCCESS, EventKind.FAILURE, EventKind.CAPTURE):
                event = GatewayEvent(
                    provider=provider,
                    event_id=f"reconcile:{payment.id}:{answer.kind.value}",
                    event_type="reconciliation",
                    kind=answer.kind,
                    payment_id=payment.id,
                    customer_id=payment.customer_id,
                    gateway_ref=payment.gateway_ref,
                    money=answer.money,
                    reason=answer.reason,
                )
                result = apply_event(store, adapter, event)
                report = report.add(
                    completed=int(result.outcome == "completed"), cancelled=int(result.outcome == "cancelled")
                )
            elif payment.created_at <= now - give_up_after:
                try:
                    store.transition(
                        payment.customer_id,
                        payment.id,
                        PaymentStatus.CANCELLED,
                        Cause.TIMEOUT,
                        "system:reconcile",
                        note="no answer from the gateway before the final timeout",
                    )
                    report = report.add(timed_out=1)
                except TransitionRefused:
                    pass
            else:
                report = report.add(still_pending=1)
    return report
