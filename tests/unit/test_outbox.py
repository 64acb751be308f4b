"""The outbox (docs/events.md) in `MemoryStore` and its rules (`payments.outbox`): each kind of change writes
exactly one event, of its detail-type, with an id the same change always gets; a change that does not commit (a
race lost, a duplicate) writes none, and neither does a change that keeps the status."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from payments import outbox
from payments.ids import new_payment_id
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus, RefundStatus
from payments.money import Money
from payments.status import Cause, accept_refund, apply, hold
from payments.store import Dedupe, DisputeWritten, RefundWritten, Written
from payments.store.memory import MemoryStore

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def payment(status: PaymentStatus = PaymentStatus.PENDING, **extra: Any) -> Payment:
    values: dict[str, Any] = {
        "id": new_payment_id(AT),
        "customer_id": "cust-1",
        "created_at": AT,
        "completed_at": AT if status is PaymentStatus.COMPLETED else None,
        "amount_minor": 1000,
        "currency": "USD",
        "status": status,
        "method": PaymentMethod.CREDIT_CARD,
        "description": "Card payment",
        "history": (HistoryEntry(at=AT, status=status, by="customer:c", note="created"),),
    }
    return Payment.model_validate(values | extra)


def kinds(store: MemoryStore) -> list[tuple[str, str]]:
    return [(e.subject_id, e.detail_type) for e in store.tables.outbox.values()]


def test_a_payment_written_settled_publishes_once_and_a_pending_one_nothing() -> None:
    store = MemoryStore()
    voucher = payment(PaymentStatus.COMPLETED, method=PaymentMethod.VOUCHER)
    purchase = payment(PaymentStatus.COMPLETED, method=PaymentMethod.PURCHASE, amount_minor=-250)
    pending = payment()
    for made in (voucher, purchase, pending):
        store.add(made)

    assert kinds(store) == [(voucher.id, "payment.completed"), (purchase.id, "payment.completed")]
    event = store.outbox_event(outbox.event_id(voucher))
    assert event is not None and event.customer_id == "cust-1" and event.occurred_at == "2026-03-01T12:00:00.000Z"
    assert event.detail() == {
        "event_id": outbox.event_id(voucher),
        "customer_id": "cust-1",
        "occurred_at": "2026-03-01T12:00:00.000Z",
        "payment": json.loads(json.dumps(voucher.to_api().model_dump(mode="json"))),
    }


def test_each_status_change_publishes_one_event_of_its_kind() -> None:
    store = MemoryStore()
    completed, cancelled = payment(), payment()
    store.add(completed)
    store.add(cancelled)

    done = store.transition("cust-1", completed.id, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS, "gateway:s:1")
    store.transition("cust-1", cancelled.id, PaymentStatus.CANCELLED, Cause.GATEWAY_FAILURE, "gateway:s:2")
    again = store.transition("cust-1", cancelled.id, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS, "gateway:s:3")

    assert kinds(store) == [
        (completed.id, "payment.completed"),
        (cancelled.id, "payment.cancelled"),
        (cancelled.id, "payment.completed"),  # cancelled -> completed: the money arrived after all
    ]
    assert outbox.event_id(done.payment) in store.tables.outbox
    assert outbox.event_id(again.payment) != outbox.event_id(done.payment)


def test_refunds_chargebacks_and_their_reversals_publish_their_kinds() -> None:
    store = MemoryStore()
    paid = payment(PaymentStatus.COMPLETED)
    store.add(paid)
    refund = payment(PaymentStatus.COMPLETED, method=PaymentMethod.REFUND, amount_minor=-300, refund_of=paid.id)
    chargeback = payment(PaymentStatus.COMPLETED, method=PaymentMethod.CHARGEBACK, amount_minor=-500, refund_of=paid.id)
    reversal = payment(
        PaymentStatus.COMPLETED, method=PaymentMethod.CHARGEBACK_REVERSAL, amount_minor=500, refund_of=paid.id
    )
    dispute = Dedupe("dispute", "dp_1")

    assert store.record_refund(refund, paid, Dedupe("refund", "re_1")) is RefundWritten.RECORDED
    assert store.record_dispute_funds(chargeback, store.require("cust-1", paid.id), dispute) is DisputeWritten.RECORDED
    assert store.record_dispute_funds(reversal, store.require("cust-1", paid.id), dispute) is DisputeWritten.RECORDED
    failed = store.transition("cust-1", refund.id, PaymentStatus.CANCELLED, Cause.REFUND_FAILED, "gateway:s:r")

    assert kinds(store)[1:] == [
        (refund.id, "payment.refunded"),
        (chargeback.id, "payment.chargeback"),
        (reversal.id, "payment.completed"),
        (refund.id, "payment.cancelled"),  # its refund failed: the money was not returned
    ]
    assert failed.changed and store.balances("cust-1") == [Money(1000, "USD")]


def test_an_operator_refund_publishes_when_its_gateway_accepts_it() -> None:
    store = MemoryStore()
    paid = payment(PaymentStatus.COMPLETED)
    store.add(paid)
    entry = payment(PaymentStatus.PENDING, method=PaymentMethod.REFUND, amount_minor=-300, refund_of=paid.id)
    assert store.record_refund(entry, paid, Dedupe("refund-request", "k1")) is RefundWritten.RECORDED
    assert kinds(store) == [(paid.id, "payment.completed")]  # reserved, pending: nothing yet

    store.apply_change(
        "cust-1", entry.id, lambda p: accept_refund(p, "re_9", RefundStatus.PENDING, by="gateway:s:a", now=AT)
    )

    assert kinds(store)[-1] == (entry.id, "payment.refunded")


def test_a_change_that_does_not_commit_or_keeps_the_status_publishes_nothing() -> None:
    store = MemoryStore()
    pending = payment()
    store.add(pending)
    once = Dedupe("stripe", "evt_1")
    late = apply(pending, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS, by="gateway:s:1", now=AT)

    store.transition("cust-1", pending.id, PaymentStatus.CANCELLED, Cause.OPERATOR, "operator:o", dedupe=once)
    assert store._write_change(late, None) is Written.LOST  # a race lost: the stored status moved on
    assert store._write_change(late, once) is Written.DUPLICATE  # an event seen before
    held = payment()
    store.add(held)
    store.hold("cust-1", held.id, "pending_review", "gateway:p:1")  # a hold keeps the status
    duplicate = payment(PaymentStatus.COMPLETED)
    assert store.add(duplicate, dedupe=once) is False  # its marker exists: nothing written

    assert kinds(store) == [(pending.id, "payment.cancelled")]
    assert outbox.of_change(hold(held, "other", by="x", now=AT)) is None


def test_the_same_change_always_gets_the_same_event_id() -> None:
    pending = payment()
    first = apply(pending, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS, by="gateway:s:1", now=AT)
    retried = apply(pending, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS, by="gateway:s:1", now=AT)

    assert outbox.of_change(first) == outbox.of_change(retried)
    assert outbox.event_id(first.after).startswith("evt_") and len(outbox.event_id(first.after)) == 36
    assert outbox.detail_type(pending) is None
