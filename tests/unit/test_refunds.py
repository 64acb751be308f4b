"""Operator refunds (docs/refunds.md) against the in-memory store and a gateway that keeps a ledger of the refunds
it made: reserve, ask, bind; every kind of payment that cannot be refunded; amounts; retries after each step's
failure; a webhook about the same refund before the route's call returns; reconciliation of reservations left
pending; concurrency. No AWS; tests/integration/test_operator_refunds.py runs the route through each gateway."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from payments import refunds, settlement
from payments.errors import Conflict, InvalidInput, NotFound, UpstreamError
from payments.gateways.base import (
    Capability,
    EventKind,
    GatewayEvent,
    GatewayInputRejected,
    GatewayRejected,
    GatewayUnavailable,
    RefundAnswer,
    RefundRequest,
)
from payments.ids import new_payment_id
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus, RefundStatus
from payments.money import Money
from payments.settlement import Outcome
from payments.store.memory import MemoryStore

CUSTOMER = "cust-r"
PAID = Money(10000, "EUR")  # 100.00 EUR
OPERATOR = "operator:op-1"
_keys = itertools.count(1)


@dataclass
class Ledger:
    """A gateway's refunds: what it made, keyed as our adapters key them (the refund entry's id)."""

    made: dict[str, RefundAnswer] = field(default_factory=dict)
    calls: int = 0
    lookups: int = 0
    status: RefundStatus = RefundStatus.PENDING
    fail_before: GatewayUnavailable | GatewayRejected | None = None  # raised before making it
    lose_answer: bool = False  # makes it, then the answer is lost (a timeout)
    refuse: str | None = None  # GatewayInputRejected with this message
    during: Callable[[RefundAnswer], None] | None = None  # runs after making it, before answering


class Gateway:
    name = "stripe"
    capabilities = frozenset({Capability.REFUND, Capability.RECONCILE})

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._lock = threading.Lock()

    def refund(self, request: RefundRequest) -> RefundAnswer:
        ledger = self.ledger
        with self._lock:
            ledger.calls += 1
            if ledger.fail_before is not None:
                raise ledger.fail_before
            if ledger.refuse:
                raise GatewayInputRejected(ledger.refuse, "amount")
            answer = ledger.made.get(request.key) or RefundAnswer(
                f"re_{len(ledger.made) + 1}", ledger.status, request.money
            )
            ledger.made[request.key] = answer
        if ledger.during:
            ledger.during(answer)
        if ledger.lose_answer:
            raise GatewayUnavailable("stripe timed out")
        return answer

    def find_refund(self, request: RefundRequest) -> RefundAnswer | None:
        self.ledger.lookups += 1
        return self.ledger.made.get(request.key)


class NoRefunds(Gateway):
    name = "nowpayments"
    capabilities = frozenset({Capability.RECONCILE})


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


def gateways(ledger: Ledger) -> Callable[[str], Any]:
    return lambda provider: NoRefunds(ledger) if provider == "nowpayments" else Gateway(ledger)


def paid(
    store: MemoryStore,
    *,
    method: PaymentMethod = PaymentMethod.CREDIT_CARD,
    status: PaymentStatus = PaymentStatus.COMPLETED,
    money: Money = PAID,
    ref: str | None = "pi_1",
    **extra: Any,
) -> Payment:
    now = datetime.now(UTC)
    payment = Payment(
        id=new_payment_id(now),
        customer_id=CUSTOMER,
        created_at=now,
        completed_at=now if status is PaymentStatus.COMPLETED else None,
        amount_minor=money.minor,
        currency=money.currency,
        status=status,
        method=method,
        description="Top-up",
        gateway_ref=ref,
        history=(HistoryEntry(at=now, status=status, by="customer:c"),),
        **extra,
    )
    assert store.add(payment)
    return payment


def refund(
    store: MemoryStore, ledger: Ledger, original: Payment, amount: str | None = None, key: str | None = None
) -> Payment:
    body = refunds.RefundBody(amount=amount, reason="customer asked")
    return refunds.refund(
        store, gateways(ledger), original.customer_id, original.id, body, key or f"k-{next(_keys)}", OPERATOR
    )


def balance(store: MemoryStore) -> int:
    return sum(m.minor for m in store.balances(CUSTOMER) if m.currency == "EUR")


def entries(store: MemoryStore, original: Payment) -> list[Payment]:
    return [p for p in store.tables.payments.values() if p.refund_of == original.id]


# ---- the happy paths ---------------------------------------------------------------------------------


def test_a_full_refund_by_default_completes_names_the_gateway_refund_and_debits_once(
    store: MemoryStore, ledger: Ledger
) -> None:
    original = paid(store)

    entry = refund(store, ledger, original)

    assert (entry.status, entry.amount_minor, entry.currency) == (PaymentStatus.COMPLETED, -10000, "EUR")
    assert (entry.refund_of, entry.reference, entry.refund_status) == (original.id, "re_1", RefundStatus.PENDING)
    assert entry.method is PaymentMethod.REFUND
    assert [h.status for h in entry.history] == [PaymentStatus.PENDING, PaymentStatus.COMPLETED]
    assert entry.history[0].note == "refund requested: customer asked"
    assert balance(store) == 10000 - 10000
    stored = store.require(CUSTOMER, original.id)
    assert (stored.refunded_minor, stored.refund_ids) == (10000, frozenset({entry.id}))
    assert ledger.calls == 1 and next(iter(ledger.made.values())).money == PAID
    assert store.require(CUSTOMER, entry.id) == entry


def test_several_partial_refunds_never_take_more_than_was_paid(store: MemoryStore, ledger: Ledger) -> None:
    original = paid(store)

    first, second = refund(store, ledger, original, "30.00"), refund(store, ledger, original, "69.99")
    with pytest.raises(InvalidInput) as too_much:
        refund(store, ledger, original, "0.02")
    last = refund(store, ledger, original, "0.01")
    with pytest.raises(InvalidInput) as nothing_left:
        refund(store, ledger, original)

    assert [e.amount_minor for e in (first, second, last)] == [-3000, -6999, -1]
    assert too_much.value.field == "amount"
    assert too_much.value.message == "amount 0.02 EUR exceeds what is refundable: 0.01 EUR of 100.00"
    assert nothing_left.value.message == f"payment {original.id} is refunded in full: nothing is left to refund"
    assert ledger.calls == 3  # the refused ones never reached the gateway
    assert balance(store) == 0
    assert store.require(CUSTOMER, original.id).refunded_minor == 10000
    assert len(entries(store, original)) == 3


def test_the_same_key_is_the_same_refund_and_one_gateway_call(store: MemoryStore, ledger: Ledger) -> None:
    original = paid(store)

    first = refund(store, ledger, original, "10.00", key="same")
    again = refund(store, ledger, original, "10.00", key="same")
    other_amount = refund(store, ledger, original, "20.00", key="same")  # after the edge's 24 h record: the refund

    assert first == again == other_amount
    assert ledger.calls == 1 and ledger.lookups == 0
    assert balance(store) == 9000
    assert len(entries(store, original)) == 1


def test_a_bank_transfer_refund_is_recorded_for_the_operator_to_pay_out(store: MemoryStore, ledger: Ledger) -> None:
    original = paid(store, method=PaymentMethod.BANK_TRANSFER, ref=None)

    entry = refund(store, ledger, original, "25.00")

    assert (entry.status, entry.amount_minor, entry.refund_status) == (
        PaymentStatus.COMPLETED,
        -2500,
        RefundStatus.PENDING,
    )
    assert entry.history[0].note == "refund to be paid out by hand: customer asked"
    assert entry.gateway_ref is None and entry.reference is None
    assert ledger.calls == 0
    assert balance(store) == 7500


# ---- what cannot be refunded, and bad amounts -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "status", "amount", "says"),
    [
        (PaymentMethod.CREDIT_CARD, PaymentStatus.PENDING, 10000, "is pending: only a completed payment"),
        (PaymentMethod.PAYPAL, PaymentStatus.CANCELLED, 10000, "is cancelled: only a completed payment"),
        (PaymentMethod.VOUCHER, PaymentStatus.COMPLETED, 10000, "issue the customer a new voucher instead"),
        (PaymentMethod.PURCHASE, PaymentStatus.COMPLETED, -10000, "a purchase is not a payment"),
        (PaymentMethod.NOWPAYMENTS, PaymentStatus.COMPLETED, 10000, "NOWPayments has no refund API: refund the payer"),
    ],
)
def test_what_cannot_be_refunded_is_a_409_that_says_what_to_do(
    store: MemoryStore, ledger: Ledger, method: PaymentMethod, status: PaymentStatus, amount: int, says: str
) -> None:
    original = paid(store, method=method, status=status, money=Money(amount, "EUR"))
    before = balance(store)

    with pytest.raises(Conflict) as refused:
        refund(store, ledger, original)

    assert says in refused.value.message
    assert entries(store, original) == [] and ledger.calls == 0 and balance(store) == before
    assert store.require(CUSTOMER, original.id).refunded_minor == 0


def test_a_refund_entry_cannot_be_refunded(store: MemoryStore, ledger: Ledger) -> None:
    entry = refund(store, ledger, paid(store), "10.00")
    with pytest.raises(Conflict, match="a refund cannot be refunded"):
        refund(store, ledger, entry)
    assert ledger.calls == 1


def test_another_customers_payment_is_not_found(store: MemoryStore, ledger: Ledger) -> None:
    original = paid(store)
    with pytest.raises(NotFound):
        refunds.refund(store, gateways(ledger), "someone-else", original.id, refunds.RefundBody(), "k", OPERATOR)
    assert entries(store, original) == [] and ledger.calls == 0


@pytest.mark.parametrize(
    ("amount", "says"),
    [
        ("0", "amount must be greater than zero"),
        ("-5.00", "amount must be greater than zero"),
        ("0.001", "amount has 3 decimal places but EUR allows 2"),
        ("abc", "amount"),
        ("1e3", "amount"),
        ("100.01", "exceeds what is refundable: 100.00 EUR of 100.00"),
    ],
)
def test_a_bad_amount_is_a_422_naming_it_and_nothing_is_stored(
    store: MemoryStore, ledger: Ledger, amount: str, says: str
) -> None:
    original = paid(store)
    with pytest.raises(InvalidInput) as bad:
        refund(store, ledger, original, amount)
    assert bad.value.field == "amount" and says in bad.value.message
    assert entries(store, original) == [] and ledger.calls == 0 and balance(store) == 10000


# ---- failures at each step -------------------------------------------------------------------------------


def test_a_gateway_that_cannot_be_reached_leaves_the_reservation_pending_and_the_retry_makes_it(
    store: MemoryStore, ledger: Ledger
) -> None:
    original = paid(store)
    ledger.fail_before = GatewayUnavailable("stripe is down")

    with pytest.raises(UpstreamError) as down:
        refund(store, ledger, original, "40.00", key="k-down")

    assert down.value.http_status == 503
    assert "retry with the same Idempotency-Key" in down.value.message
    [pending] = entries(store, original)
    assert pending.status is PaymentStatus.PENDING and balance(store) == 10000  # reserved, not debited
    assert store.require(CUSTOMER, original.id).refunded_minor == 4000
    with pytest.raises(InvalidInput):  # what is reserved is not refundable twice
        refund(store, ledger, original, "60.01")

    ledger.fail_before = None
    done = refund(store, ledger, original, "40.00", key="k-down")

    assert done.id == pending.id and done.status is PaymentStatus.COMPLETED
    assert ledger.lookups == 1 and len(ledger.made) == 1
    assert balance(store) == 6000


def test_an_answer_lost_after_the_gateway_made_the_refund_is_found_not_made_again(
    store: MemoryStore, ledger: Ledger
) -> None:
    original = paid(store)
    ledger.lose_answer = True
    with pytest.raises(UpstreamError):
        refund(store, ledger, original, "40.00", key="k-lost")
    ledger.lose_answer = False

    done = refund(store, ledger, original, "40.00", key="k-lost")

    assert done.status is PaymentStatus.COMPLETED and done.reference == "re_1"
    assert ledger.calls == 1 and ledger.lookups == 1 and len(ledger.made) == 1
    assert balance(store) == 6000


@pytest.mark.parametrize("how", ["refused", "failed"])
def test_a_refund_the_gateway_refuses_is_cancelled_and_its_reservation_released(
    store: MemoryStore, ledger: Ledger, how: str
) -> None:
    original = paid(store)
    if how == "refused":
        ledger.refuse = "Refund amount exceeds the unrefunded amount"
    else:
        ledger.status = RefundStatus.FAILED

    with pytest.raises(InvalidInput) as refused:
        refund(store, ledger, original, "40.00", key="k-no")
    with pytest.raises(InvalidInput) as again:
        refund(store, ledger, original, "40.00", key="k-no")

    [cancelled] = entries(store, original)
    assert cancelled.status is PaymentStatus.CANCELLED and cancelled.refund_status is RefundStatus.FAILED
    assert refused.value.message.startswith("the gateway refused the refund")
    assert again.value.message == refused.value.message
    assert store.require(CUSTOMER, original.id).refunded_minor == 0
    assert balance(store) == 10000 and ledger.calls == 1
    assert refund(store, ledger.__class__(), original).amount_minor == -10000  # all of it refundable again


# ---- a webhook about the same refund, before the route's call returns ------------------------------------


def refund_event(original: Payment, answer: RefundAnswer, kind: EventKind = EventKind.REFUND, **extra: Any) -> Any:
    return GatewayEvent(
        provider="stripe",
        event_id=f"evt_{answer.refund_id}_{kind.value}_{next(_keys)}",
        event_type=f"test.{kind.value}",
        kind=kind,
        payment_id=original.id,
        customer_id=CUSTOMER,
        gateway_ref=original.gateway_ref,
        money=answer.money,
        refund_id=answer.refund_id,
        **extra,
    )


def deliver(store: MemoryStore, ledger: Ledger, gateway_event: GatewayEvent) -> Outcome:
    return settlement.apply_event(store, Gateway(ledger), gateway_event).outcome  # type: ignore[arg-type]


def test_a_webhook_of_the_whole_refund_first_is_deferred_and_then_a_duplicate(
    store: MemoryStore, ledger: Ledger
) -> None:
    original = paid(store)
    seen: list[Outcome] = []
    ledger.during = lambda answer: seen.append(deliver(store, ledger, refund_event(original, answer)))

    entry = refund(store, ledger, original)

    assert seen == [Outcome.DEFERRED]  # it would pass the payment while the reservation holds it
    assert deliver(store, ledger, refund_event(original, ledger.made[entry.id])) is Outcome.DUPLICATE
    assert balance(store) == 0 and [e.id for e in entries(store, original)] == [entry.id]


def test_a_webhook_of_a_partial_refund_first_is_deferred_while_its_reservation_holds_then_a_duplicate(
    store: MemoryStore, ledger: Ledger
) -> None:
    """Counted now, it would hold the payment twice (the reservation and the webhook's entry) until the route binds."""
    original = paid(store)
    seen: list[Outcome] = []
    ledger.during = lambda answer: seen.append(deliver(store, ledger, refund_event(original, answer)))

    answered = refund(store, ledger, original, "10.00")

    assert seen == [Outcome.DEFERRED]
    assert [e.status for e in entries(store, original)] == [PaymentStatus.COMPLETED]
    assert deliver(store, ledger, refund_event(original, ledger.made[answered.id])) is Outcome.DUPLICATE
    assert balance(store) == 9000 and store.require(CUSTOMER, original.id).refunded_minor == 1000


def test_a_refund_reported_while_others_are_being_made_never_refuses_one_that_fits(
    store: MemoryStore, ledger: Ledger
) -> None:
    """Three operators refund 30.00 of 100.00 at once, and the gateway reports the first refund before its call
    returns: all three fit, and all three are made (the webhook's refund was counted twice while the first
    reservation held, and the third operator was told it exceeded what is refundable)."""
    original = paid(store)
    seen: list[Outcome] = []
    others: list[Payment] = []

    def meanwhile(answer: RefundAnswer) -> None:
        ledger.during = None
        seen.append(deliver(store, ledger, refund_event(original, answer)))
        others.extend(refund(store, ledger, original, "30.00") for _ in range(2))

    ledger.during = meanwhile
    first = refund(store, ledger, original, "30.00")

    assert seen == [Outcome.DEFERRED]
    made = [first, *others]
    assert len({e.id for e in made}) == 3 and all(e.status is PaymentStatus.COMPLETED for e in made)
    assert sorted(e.id for e in entries(store, original)) == sorted(e.id for e in made)
    assert balance(store) == 1000 and store.require(CUSTOMER, original.id).refunded_minor == 9000
    assert deliver(store, ledger, refund_event(original, ledger.made[first.id])) is Outcome.DUPLICATE
    with pytest.raises(InvalidInput, match=r"exceeds what is refundable: 10\.00 EUR"):
        refund(store, ledger, original, "30.00")


def test_a_refund_reported_failed_before_the_route_binds_it_is_cancelled(store: MemoryStore, ledger: Ledger) -> None:
    original = paid(store)
    ledger.during = lambda answer: [deliver(store, ledger, refund_event(original, answer, EventKind.REFUND_FAILED))]

    with pytest.raises(InvalidInput):
        refund(store, ledger, original, "10.00")

    [cancelled] = entries(store, original)
    assert cancelled.status is PaymentStatus.CANCELLED
    assert balance(store) == 10000 and store.require(CUSTOMER, original.id).refunded_minor == 0


def test_succeeded_then_failed_webhooks_update_the_route_refund_once_each(store: MemoryStore, ledger: Ledger) -> None:
    original = paid(store)
    entry = refund(store, ledger, original, "30.00")
    made = ledger.made[entry.id]

    succeeded = refund_event(original, made, refund_status=RefundStatus.SUCCEEDED)
    assert deliver(store, ledger, succeeded) is Outcome.REFUND_SUCCEEDED
    assert deliver(store, ledger, succeeded) is Outcome.DUPLICATE
    assert store.require(CUSTOMER, entry.id).refund_status is RefundStatus.SUCCEEDED
    assert balance(store) == 7000

    failed = refund_event(original, made, EventKind.REFUND_FAILED, reason="expired card")
    assert deliver(store, ledger, failed) is Outcome.REFUND_FAILED
    assert deliver(store, ledger, failed) is Outcome.DUPLICATE
    after = store.require(CUSTOMER, entry.id)
    assert (after.status, after.refund_status) == (PaymentStatus.CANCELLED, RefundStatus.FAILED)
    assert balance(store) == 10000 and store.require(CUSTOMER, original.id).refunded_minor == 0


# ---- reconciliation ----------------------------------------------------------------------------------------


def test_reconciliation_binds_a_refund_the_gateway_made_and_releases_one_it_never_made(
    store: MemoryStore, ledger: Ledger
) -> None:
    made_one, never_made, young = paid(store), paid(store), paid(store)
    ledger.lose_answer = True
    with pytest.raises(UpstreamError):
        refund(store, ledger, made_one, "10.00")
    ledger.lose_answer, ledger.fail_before = False, GatewayUnavailable("down")
    with pytest.raises(UpstreamError):
        refund(store, ledger, never_made, "20.00")
    ledger.fail_before = None
    now = datetime.now(UTC) + timedelta(seconds=1)
    adapters: dict[str, Any] = {"stripe": Gateway(ledger)}

    early = refunds.reconcile_refunds(
        store, adapters, now=now, ask_after=timedelta(0), give_up_after=timedelta(hours=1)
    )
    late = refunds.reconcile_refunds(
        store, adapters, now=now + timedelta(hours=2), ask_after=timedelta(0), give_up_after=timedelta(hours=1)
    )

    assert early == refunds.RefundsReport(checked=2, bound=1, released=0, still_pending=1, errors=0)
    assert late == refunds.RefundsReport(checked=1, bound=0, released=1, still_pending=0, errors=0)
    [bound] = entries(store, made_one)
    [released] = entries(store, never_made)
    assert (bound.status, bound.reference) == (PaymentStatus.COMPLETED, "re_1")
    assert released.status is PaymentStatus.CANCELLED
    assert store.require(CUSTOMER, never_made.id).refunded_minor == 0
    assert entries(store, young) == []
    assert balance(store) == 30000 - 1000
    assert ledger.calls == 2 and len(ledger.made) == 1  # reconciliation never makes a refund


# ---- concurrency -------------------------------------------------------------------------------------------


def test_twenty_concurrent_refunds_of_thirty_percent_three_succeed(store: MemoryStore, ledger: Ledger) -> None:
    original = paid(store)
    results: list[Payment | Exception] = []
    start = threading.Barrier(20)

    def one(i: int) -> None:
        start.wait()
        try:
            results.append(refund(store, ledger, original, "30.00", key=f"c-{i}"))
        except InvalidInput as exc:
            results.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    made = [r for r in results if isinstance(r, Payment)]
    refused = [r for r in results if isinstance(r, InvalidInput)]
    assert (len(made), len(refused)) == (3, 17)
    assert all(r.field == "amount" for r in refused)
    assert ledger.calls == 3 and sum(a.money.minor for a in ledger.made.values()) == 9000
    assert balance(store) == 1000 and store.require(CUSTOMER, original.id).refunded_minor == 9000
