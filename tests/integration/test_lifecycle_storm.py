"""A storm of gateway events against the real table (moto's DynamoDB): 40 paid payments across the gateways, each
with a random mix of partial refunds, failed refunds, disputes and reinstatements; every event delivered one to
five times, shuffled, from 8 threads, through `settlement.apply_event` (the webhooks handler's own path after the
signature). The final balance is what the events say, and no payment has more taken back than it paid.
(tests/unit/test_disputes.py has the same invariant as a property test over one payment's events.)"""

from __future__ import annotations

import itertools
import random
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from payments import settlement
from payments.gateways.base import Capability, EventKind, GatewayEvent
from payments.ids import new_payment_id
from payments.models import DisputeStatus, HistoryEntry, Payment, PaymentMethod, PaymentStatus
from payments.money import Money
from payments.settlement import Outcome
from payments.store import PaymentStore

GATEWAYS = {  # provider -> (method, currency)
    "stripe": (PaymentMethod.CREDIT_CARD, "USD"),
    "paypal": (PaymentMethod.PAYPAL, "EUR"),
    "razorpay": (PaymentMethod.RAZORPAY, "INR"),
    "paystack": (PaymentMethod.PAYSTACK, "NGN"),
}
PAYMENTS = 40
THREADS = 8


class Adapter:
    capabilities = frozenset({Capability.RECONCILE})

    def __init__(self, name: str) -> None:
        self.name = name


def plan(rng: random.Random, index: int, customer: str) -> tuple[Payment, list[GatewayEvent], int]:
    """A paid payment, the events its gateway sends about it, and what it should count in the end."""
    provider = sorted(GATEWAYS)[index % len(GATEWAYS)]
    method, currency = GATEWAYS[provider]
    paid = rng.randint(1000, 100000)
    now = datetime.now(UTC)
    payment = Payment(
        id=new_payment_id(now),
        customer_id=customer,
        created_at=now,
        completed_at=now,
        amount_minor=paid,
        currency=currency,
        status=PaymentStatus.COMPLETED,
        method=method,
        description=f"Top-up {index}",
        gateway_ref=f"{provider}-obj-{index}-{uuid.uuid4().hex[:6]}",
        history=(HistoryEntry(at=now, status=PaymentStatus.COMPLETED, by=f"gateway:{provider}:paid"),),
    )
    counter = itertools.count()

    def event(kind: EventKind, minor: int, **extra: Any) -> GatewayEvent:
        return GatewayEvent(
            provider=provider,
            event_id=f"{payment.id}-{next(counter)}",
            event_type=f"storm.{kind.value}",
            kind=kind,
            payment_id=payment.id,
            customer_id=customer,
            gateway_ref=payment.gateway_ref,
            money=Money(minor, currency),
            **extra,
        )

    events: list[GatewayEvent] = []
    budget, expected = paid, paid
    for r in range(rng.randint(0, 3)):  # within the budget, so what is expected is exact
        amount = rng.randint(1, max(1, budget // 3))
        budget -= amount
        events.append(event(EventKind.REFUND, amount, refund_id=f"rf-{index}-{r}"))
        if rng.random() < 0.3:
            events.append(event(EventKind.REFUND_FAILED, amount, refund_id=f"rf-{index}-{r}", reason="failed"))
        else:
            expected -= amount
    for d in range(rng.randint(0, 2)):
        amount = rng.randint(1, max(1, budget // 2))
        budget -= amount
        dispute = f"dp-{index}-{d}"
        events.append(event(EventKind.DISPUTE, amount, dispute_id=dispute, dispute_status=DisputeStatus.OPEN))
        withdrawn, reinstated = rng.random() < 0.8, rng.random() < 0.4
        if withdrawn:
            events.append(event(EventKind.CHARGEBACK, amount, dispute_id=dispute))
        if reinstated:
            events.append(event(EventKind.CHARGEBACK_REVERSAL, amount, dispute_id=dispute))
        if withdrawn and not reinstated:
            expected -= amount
    return payment, events, expected


def test_a_storm_of_shuffled_duplicated_lifecycle_events_leaves_exact_balances(own_store: PaymentStore) -> None:
    store = own_store
    rng = random.Random(20261202)
    customers = [f"storm-{uuid.uuid4().hex[:6]}-{i}" for i in range(4)]
    expected: dict[tuple[str, str], int] = defaultdict(int)
    payments: list[Payment] = []
    deliveries: list[GatewayEvent] = []
    for index in range(PAYMENTS):
        customer = customers[index % len(customers)]
        payment, events, counts = plan(rng, index, customer)
        assert store.add(payment)
        payments.append(payment)
        expected[(customer, payment.currency)] += counts
        deliveries += [e for e in events for _ in range(rng.randint(1, 5))]
    rng.shuffle(deliveries)
    adapters = {provider: Adapter(provider) for provider in GATEWAYS}
    outcomes: list[Outcome] = []

    def deliver(event: GatewayEvent) -> None:
        for _ in range(50):  # a 409 (deferred) is delivered again, as gateways do
            outcome = settlement.apply_event(store, adapters[event.provider], event).outcome  # type: ignore[arg-type]
            if outcome is not Outcome.DEFERRED:
                outcomes.append(outcome)
                return
        raise AssertionError(f"{event.event_type} of {event.payment_id} deferred for ever")

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(deliver, deliveries))

    assert len(outcomes) == len(deliveries) > 200
    assert Outcome.MISMATCH not in outcomes
    for customer in customers:
        balances = {m.currency: m.minor for m in store.balances(customer)}
        wanted = {currency: minor for (c, currency), minor in expected.items() if c == customer}
        assert balances == wanted, customer
    for payment in payments:
        stored = store.require(payment.customer_id, payment.id, consistent=True)
        taken = [store.require(payment.customer_id, entry, consistent=True) for entry in stored.refund_ids]
        counted = sum(-e.amount_minor for e in taken if e.status is PaymentStatus.COMPLETED and e.amount_minor < 0)
        given_back = sum(e.amount_minor for e in taken if e.method is PaymentMethod.CHARGEBACK_REVERSAL)
        assert 0 <= stored.refunded_minor == counted - given_back <= payment.amount_minor, payment.id
        references = [e.reference for e in taken if e.method is PaymentMethod.REFUND]
        assert len(references) == len(set(references))  # each gateway refund is one entry
