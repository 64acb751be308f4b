"""Reconciliation of what settled payments wait for (`settlement.reconcile_watched`), against the in-memory
store: a refund still pending at its gateway whose `refund.processed` or `refund.failed` was lost, and an open
dispute whose later events were lost, are found by asking the gateway and settled once, as the events would
have; nothing else is asked about."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from payments import settlement
from payments.gateways.base import Capability, DisputeAnswer, EventKind, GatewayEvent, RefundAnswer
from payments.ids import new_payment_id
from payments.models import DisputeStatus, HistoryEntry, Payment, PaymentMethod, PaymentStatus, RefundStatus
from payments.money import Money
from payments.settlement import Outcome, WatchReport
from payments.store.memory import MemoryStore

CUSTOMER = "cust-w"
PAID = Money(5000, "INR")


class Gateway:
    name = "razorpay"
    capabilities = frozenset({Capability.REFUND, Capability.RECONCILE})

    def __init__(self) -> None:
        self.refunds: dict[str, RefundAnswer] = {}
        self.disputes: dict[str, DisputeAnswer] = {}
        self.asked: list[str] = []

    def fetch_refund(self, gateway_ref: str, refund_id: str) -> RefundAnswer | None:
        self.asked.append(refund_id)
        return self.refunds.get(refund_id)

    def fetch_dispute(self, gateway_ref: str, dispute_id: str) -> DisputeAnswer | None:
        self.asked.append(dispute_id)
        return self.disputes.get(dispute_id)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def paid(store: MemoryStore) -> Payment:
    now = datetime.now(UTC)
    payment = Payment(
        id=new_payment_id(now),
        customer_id=CUSTOMER,
        created_at=now,
        completed_at=now,
        amount_minor=PAID.minor,
        currency=PAID.currency,
        status=PaymentStatus.COMPLETED,
        method=PaymentMethod.RAZORPAY,
        description="Top-up",
        gateway_ref="order_1",
        history=(HistoryEntry(at=now, status=PaymentStatus.COMPLETED, by="gateway:razorpay:e"),),
    )
    assert store.add(payment)
    return payment


def event(original: Payment, kind: EventKind, **extra: Any) -> GatewayEvent:
    return GatewayEvent(
        provider="razorpay",
        event_id=f"evt-{kind.value}-{extra.get('refund_id') or extra.get('dispute_id')}",
        event_type=f"test.{kind.value}",
        kind=kind,
        payment_id=original.id,
        customer_id=CUSTOMER,
        gateway_ref="order_1",
        **extra,
    )


def apply(store: MemoryStore, gateway: Gateway, gateway_event: GatewayEvent) -> Outcome:
    return settlement.apply_event(store, gateway, gateway_event).outcome  # type: ignore[arg-type]


def balance(store: MemoryStore) -> int:
    return sum(m.minor for m in store.balances(CUSTOMER))


def reconcile(store: MemoryStore, gateway: Gateway) -> WatchReport:
    return settlement.reconcile_watched(store, {"razorpay": gateway})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("answer", "status", "refund_status", "minor", "changed"),
    [
        (RefundStatus.SUCCEEDED, PaymentStatus.COMPLETED, RefundStatus.SUCCEEDED, 3000, 1),  # processed, lost
        (RefundStatus.FAILED, PaymentStatus.CANCELLED, RefundStatus.FAILED, 5000, 1),  # refund.failed, lost
        (RefundStatus.PENDING, PaymentStatus.COMPLETED, RefundStatus.PENDING, 3000, 0),  # still at the bank
    ],
)
def test_a_refund_whose_later_event_was_lost_is_settled_by_asking(
    store: MemoryStore,
    answer: RefundStatus,
    status: PaymentStatus,
    refund_status: RefundStatus,
    minor: int,
    changed: int,
) -> None:
    gateway = Gateway()
    original = paid(store)
    created = event(
        original, EventKind.REFUND, money=Money(2000, "INR"), refund_id="rfnd_1", refund_status=RefundStatus.PENDING
    )
    assert apply(store, gateway, created) is Outcome.REFUNDED
    gateway.refunds["rfnd_1"] = RefundAnswer(
        "rfnd_1", answer, Money(2000, "INR"), "bank rejected" if answer is RefundStatus.FAILED else None
    )

    first, again = reconcile(store, gateway), reconcile(store, gateway)

    assert first == WatchReport(refunds_checked=1, refunds_changed=changed)
    assert again.refunds_changed == 0 and again.refunds_checked == (1 if answer is RefundStatus.PENDING else 0)
    [entry] = [p for p in store.tables.payments.values() if p.refund_of == original.id]
    assert (entry.status, entry.refund_status) == (status, refund_status)
    assert balance(store) == minor
    assert store.require(CUSTOMER, original.id).refunded_minor == (0 if answer is RefundStatus.FAILED else 2000)


def test_a_dispute_lost_while_its_events_were_lost_takes_the_money_once(store: MemoryStore) -> None:
    gateway = Gateway()
    original = paid(store)
    opened = event(original, EventKind.DISPUTE, money=PAID, dispute_id="disp_1", dispute_status=DisputeStatus.OPEN)
    assert apply(store, gateway, opened) is Outcome.DISPUTE
    gateway.disputes["disp_1"] = DisputeAnswer(
        "disp_1", DisputeStatus.LOST, Money(4000, "INR"), "fraud", withdrawn=True
    )

    first, again = reconcile(store, gateway), reconcile(store, gateway)

    assert first == WatchReport(disputes_checked=1, disputes_changed=1)
    assert again == WatchReport()  # decided: no longer watched
    assert balance(store) == 1000
    shown = store.require(CUSTOMER, original.id)
    assert shown.dispute is not None and shown.dispute.status is DisputeStatus.LOST
    chargebacks = [p for p in store.tables.payments.values() if p.method is PaymentMethod.CHARGEBACK]
    assert [c.amount_minor for c in chargebacks] == [-4000]


def test_a_dispute_won_and_reinstated_while_its_events_were_lost_gives_the_money_back(store: MemoryStore) -> None:
    gateway = Gateway()
    original = paid(store)
    assert (
        apply(store, gateway, event(original, EventKind.CHARGEBACK, money=PAID, dispute_id="disp_2"))
        is Outcome.CHARGEBACK
    )
    assert balance(store) == 0
    gateway.disputes["disp_2"] = DisputeAnswer("disp_2", DisputeStatus.WON, PAID, withdrawn=True, reinstated=True)

    assert reconcile(store, gateway) == WatchReport(disputes_checked=1, disputes_changed=1)

    assert balance(store) == 5000
    shown = store.require(CUSTOMER, original.id)
    assert shown.dispute is not None and shown.dispute.status is DisputeStatus.WON
    assert (shown.refunded_minor, shown.charged_back_minor) == (0, 0)


def test_nothing_settled_is_asked_about(store: MemoryStore) -> None:
    gateway = Gateway()
    original = paid(store)
    done = event(
        original, EventKind.REFUND, money=Money(1000, "INR"), refund_id="rfnd_9", refund_status=RefundStatus.SUCCEEDED
    )
    assert apply(store, gateway, done) is Outcome.REFUNDED

    assert reconcile(store, gateway) == WatchReport()
    assert gateway.asked == []
