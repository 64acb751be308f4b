"""Disputes, chargebacks and their reversals (docs/status-rules.md#disputes-and-chargebacks), settled against the
in-memory store from neutral gateway events: the dispute the original shows, one entry per dispute and
direction, the cap shared with refunds, every ordering of withdrawn and reinstated, and a property test over
random event sequences of one payment (refunds, failed refunds, disputes; each delivered several times,
shuffled): the balance is what the events say and nothing takes back more than was paid."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments import settlement
from payments.gateways.base import Capability, EventKind, GatewayEvent
from payments.ids import new_payment_id
from payments.models import DisputeStatus, HistoryEntry, Payment, PaymentMethod, PaymentStatus
from payments.money import Money
from payments.settlement import Outcome
from payments.store.memory import MemoryStore

CUSTOMER = "cust-d"
PAID = 10000  # 100.00 USD
_ids = itertools.count(1)


class Adapter:
    name = "stripe"
    capabilities = frozenset({Capability.RECONCILE})


def payment(store: MemoryStore, status: PaymentStatus = PaymentStatus.COMPLETED, ref: str = "pi_1") -> Payment:
    now = datetime.now(UTC)
    paid = Payment(
        id=new_payment_id(now),
        customer_id=CUSTOMER,
        created_at=now,
        completed_at=now if status is PaymentStatus.COMPLETED else None,
        amount_minor=PAID,
        currency="USD",
        status=status,
        method=PaymentMethod.CREDIT_CARD,
        description="Top-up",
        gateway_ref=ref,
        history=(HistoryEntry(at=now, status=status, by="customer:c"),),
    )
    assert store.add(paid)
    return paid


def event(original: Payment, kind: EventKind, minor: int | None = None, **extra: Any) -> GatewayEvent:
    return GatewayEvent(
        provider="stripe",
        event_id=extra.pop("event_id", f"evt_{next(_ids)}"),
        event_type=f"test.{kind.value}",
        kind=kind,
        payment_id=original.id,
        customer_id=CUSTOMER,
        gateway_ref=original.gateway_ref,
        money=Money(minor, "USD") if minor is not None else None,
        **extra,
    )


def apply(store: MemoryStore, gateway_event: GatewayEvent) -> Outcome:
    return settlement.apply_event(store, Adapter(), gateway_event).outcome  # type: ignore[arg-type]


def balance(store: MemoryStore) -> int:
    return sum(m.minor for m in store.balances(CUSTOMER))


def entries(store: MemoryStore, original: Payment, method: PaymentMethod) -> list[Payment]:
    return sorted(
        (p for p in store.tables.payments.values() if p.refund_of == original.id and p.method is method),
        key=lambda p: p.id,
    )


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def test_a_dispute_lost_after_its_funds_were_withdrawn_takes_the_money_once(store: MemoryStore) -> None:
    paid = payment(store)
    opened = event(
        paid, EventKind.DISPUTE, PAID, dispute_id="dp_1", dispute_status=DisputeStatus.OPEN, reason="fraudulent"
    )
    withdrawn = event(paid, EventKind.CHARGEBACK, PAID, dispute_id="dp_1", reason="fraudulent")
    lost = event(paid, EventKind.DISPUTE, PAID, dispute_id="dp_1", dispute_status=DisputeStatus.LOST)

    assert apply(store, opened) is Outcome.DISPUTE
    shown = store.require(CUSTOMER, paid.id).dispute
    assert shown is not None and (shown.id, shown.status, shown.amount_minor, shown.reason) == (
        "dp_1",
        DisputeStatus.OPEN,
        PAID,
        "fraudulent",
    )
    assert balance(store) == PAID  # opening moves no money
    assert apply(store, withdrawn) is Outcome.CHARGEBACK
    assert apply(store, withdrawn) is Outcome.DUPLICATE
    assert (
        apply(store, event(paid, EventKind.CHARGEBACK, PAID, dispute_id="dp_1")) is Outcome.DUPLICATE
    )  # another event
    assert apply(store, lost) is Outcome.DISPUTE
    assert apply(store, opened) is Outcome.DUPLICATE

    [chargeback] = entries(store, paid, PaymentMethod.CHARGEBACK)
    assert (chargeback.amount_minor, chargeback.status, chargeback.reference) == (
        -PAID,
        PaymentStatus.COMPLETED,
        "dp_1",
    )
    assert chargeback.description == "Chargeback of Top-up"
    assert balance(store) == 0
    after = store.require(CUSTOMER, paid.id)
    assert after.dispute is not None and after.dispute.status is DisputeStatus.LOST
    assert (after.refunded_minor, after.charged_back_minor) == (PAID, PAID)
    assert "refunded_amount" not in after.to_api().model_dump(exclude_none=True)  # a chargeback is not a refund
    api = after.to_api().model_dump(exclude_none=True)
    assert api["dispute"] == {
        "status": "lost",
        "amount": "100.00",
        "reason": "fraudulent",
        "opened_at": api["dispute"]["opened_at"],
    }
    late_open = event(paid, EventKind.DISPUTE, PAID, dispute_id="dp_1", dispute_status=DisputeStatus.OPEN)
    assert apply(store, late_open) is Outcome.UNCHANGED  # decided stays decided


def test_funds_reinstated_give_back_what_was_withdrawn_and_the_dispute_shows_won(store: MemoryStore) -> None:
    paid = payment(store)

    assert apply(store, event(paid, EventKind.CHARGEBACK, 3000, dispute_id="dp_2")) is Outcome.CHARGEBACK
    reinstated = event(paid, EventKind.CHARGEBACK_REVERSAL, 3000, dispute_id="dp_2")
    assert apply(store, reinstated) is Outcome.CHARGEBACK_REVERSED
    assert apply(store, reinstated) is Outcome.DUPLICATE

    [reversal] = entries(store, paid, PaymentMethod.CHARGEBACK_REVERSAL)
    assert (reversal.amount_minor, reversal.refund_of) == (3000, paid.id)
    assert balance(store) == PAID
    after = store.require(CUSTOMER, paid.id)
    assert after.dispute is not None and after.dispute.status is DisputeStatus.WON
    assert (after.refunded_minor, after.charged_back_minor) == (0, 0)


def test_reinstated_before_withdrawn_cancel_out_in_either_order(store: MemoryStore) -> None:
    paid = payment(store)

    assert apply(store, event(paid, EventKind.CHARGEBACK_REVERSAL, 3000, dispute_id="dp_3")) is Outcome.UNCHANGED
    assert apply(store, event(paid, EventKind.CHARGEBACK, 3000, dispute_id="dp_3")) is Outcome.UNCHANGED
    assert apply(store, event(paid, EventKind.CHARGEBACK, 3000, dispute_id="dp_3")) is Outcome.DUPLICATE

    assert entries(store, paid, PaymentMethod.CHARGEBACK) == []
    assert entries(store, paid, PaymentMethod.CHARGEBACK_REVERSAL) == []
    assert balance(store) == PAID
    assert store.require(CUSTOMER, paid.id).refunded_minor == 0


def test_a_chargeback_takes_only_what_refunds_left_and_its_reversal_gives_that_back(store: MemoryStore) -> None:
    paid = payment(store)
    refund = event(paid, EventKind.REFUND, 8000, refund_id="re_1")
    assert apply(store, refund) is Outcome.REFUNDED

    assert apply(store, event(paid, EventKind.CHARGEBACK, PAID, dispute_id="dp_4")) is Outcome.CHARGEBACK
    [chargeback] = entries(store, paid, PaymentMethod.CHARGEBACK)
    assert chargeback.amount_minor == -2000  # never more than was paid, refunds and chargebacks together
    assert apply(store, event(paid, EventKind.REFUND, 100, refund_id="re_2")) is Outcome.MISMATCH  # nothing left
    assert balance(store) == 0 and store.require(CUSTOMER, paid.id).refunded_minor == PAID

    assert (
        apply(store, event(paid, EventKind.CHARGEBACK_REVERSAL, PAID, dispute_id="dp_4")) is Outcome.CHARGEBACK_REVERSED
    )
    [reversal] = entries(store, paid, PaymentMethod.CHARGEBACK_REVERSAL)
    assert reversal.amount_minor == 2000
    assert balance(store) == 2000


def test_the_balance_goes_negative_when_the_credit_was_spent(store: MemoryStore) -> None:
    paid = payment(store)
    spent = Payment(
        id=new_payment_id(datetime.now(UTC)),
        customer_id=CUSTOMER,
        created_at=datetime.now(UTC),
        amount_minor=-PAID,
        currency="USD",
        status=PaymentStatus.COMPLETED,
        method=PaymentMethod.PURCHASE,
        description="Calls",
    )
    assert store.add(spent)

    assert apply(store, event(paid, EventKind.CHARGEBACK, PAID, dispute_id="dp_5")) is Outcome.CHARGEBACK
    assert balance(store) == -PAID


@pytest.mark.parametrize(
    ("status", "outcome", "again"),
    [
        (PaymentStatus.PENDING, Outcome.DEFERRED, Outcome.DEFERRED),
        (PaymentStatus.CANCELLED, Outcome.REFUSED, Outcome.DUPLICATE),
    ],
)
def test_a_chargeback_of_a_payment_that_never_counted_never_debits(
    store: MemoryStore, status: PaymentStatus, outcome: Outcome, again: Outcome
) -> None:
    never = payment(store, status)
    chargeback = event(never, EventKind.CHARGEBACK, PAID, dispute_id="dp_6")

    assert apply(store, chargeback) is outcome
    assert apply(store, chargeback) is again
    assert entries(store, never, PaymentMethod.CHARGEBACK) == [] and balance(store) == 0


@pytest.mark.parametrize(
    "broken",
    [
        {"dispute_id": None, "minor": PAID},
        {"dispute_id": "dp_7", "minor": None},
        {"dispute_id": "dp_7", "minor": 0},
    ],
)
def test_a_dispute_funds_event_without_an_id_or_an_amount_changes_nothing(
    store: MemoryStore, broken: dict[str, Any]
) -> None:
    paid = payment(store)
    assert (
        apply(store, event(paid, EventKind.CHARGEBACK, broken["minor"], dispute_id=broken["dispute_id"]))
        is Outcome.MISMATCH
    )
    assert balance(store) == PAID and entries(store, paid, PaymentMethod.CHARGEBACK) == []


# ---- a property: any sequence of one payment's events, delivered several times, in any order ---------------


@st.composite
def histories(draw: st.DrawFn) -> dict[str, Any]:
    """A payment's life at its gateway: refunds (some failed) and disputes (some funds withdrawn, some of those
    reinstated), whose amounts together stay within what was paid, so the expected balance is exact."""
    budget = PAID
    refunds, disputes = [], []
    for i in range(draw(st.integers(0, 4))):
        amount = draw(st.integers(1, max(1, budget // 2)))
        if amount > budget:
            break
        budget -= amount
        refunds.append({"id": f"re_{i}", "amount": amount, "failed": draw(st.booleans())})
    for i in range(draw(st.integers(0, 3))):
        amount = draw(st.integers(1, max(1, budget // 2)))
        if amount > budget:
            break
        budget -= amount
        withdrawn = draw(st.booleans())
        disputes.append({"id": f"dp_{i}", "amount": amount, "withdrawn": withdrawn, "reinstated": draw(st.booleans())})
    return {
        "refunds": refunds,
        "disputes": disputes,
        "repeats": draw(st.lists(st.integers(1, 3), min_size=32, max_size=32)),
        "seed": draw(st.integers(0, 2**32)),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_any_order_of_any_events_gives_the_balance_the_events_say(history: dict[str, Any]) -> None:
    store = MemoryStore()
    paid = payment(store, PaymentStatus.PENDING)
    events = [event(paid, EventKind.SUCCESS, PAID, event_id="evt_paid")]
    for r in history["refunds"]:
        events.append(event(paid, EventKind.REFUND, r["amount"], refund_id=r["id"], event_id=f"evt_{r['id']}"))
        if r["failed"]:
            events.append(
                event(paid, EventKind.REFUND_FAILED, r["amount"], refund_id=r["id"], event_id=f"evt_{r['id']}_f")
            )
    for d in history["disputes"]:
        events.append(event(paid, EventKind.DISPUTE, d["amount"], dispute_id=d["id"], event_id=f"evt_{d['id']}_o"))
        if d["withdrawn"]:
            events.append(
                event(paid, EventKind.CHARGEBACK, d["amount"], dispute_id=d["id"], event_id=f"evt_{d['id']}_w")
            )
        if d["reinstated"]:
            reinstated = event(
                paid, EventKind.CHARGEBACK_REVERSAL, d["amount"], dispute_id=d["id"], event_id=f"evt_{d['id']}_r"
            )
            events.append(reinstated)
    deliveries = [e for i, e in enumerate(events) for _ in range(history["repeats"][i % 32])]
    random.Random(history["seed"]).shuffle(deliveries)

    while deliveries:  # a deferred event (about a payment not completed yet) is delivered again later, as gateways do
        later = [e for e in deliveries if apply(store, e) is Outcome.DEFERRED]
        assert len(later) < len(deliveries)
        deliveries = later

    refunded = sum(r["amount"] for r in history["refunds"] if not r["failed"])
    charged_back = sum(d["amount"] for d in history["disputes"] if d["withdrawn"] and not d["reinstated"])
    assert balance(store) == PAID - refunded - charged_back
    after = store.require(CUSTOMER, paid.id)
    assert after.refunded_minor == refunded + charged_back <= PAID
    assert after.charged_back_minor == charged_back
    counted = [
        p for p in store.tables.payments.values() if p.refund_of == paid.id and p.status is PaymentStatus.COMPLETED
    ]
    assert sum(p.amount_minor for p in counted) == -(refunded + charged_back)
    assert len({p.reference for p in counted if p.method is PaymentMethod.REFUND}) == len(
        [p for p in counted if p.method is PaymentMethod.REFUND]
    )  # each refund counted once
