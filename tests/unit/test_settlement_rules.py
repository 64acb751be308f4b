"""Settling payments from what gateways say (docs/webhooks.md, docs/status-rules.md), against the in-memory store:
which payment an event may act on (`binds`), exactly-once completion, refunds of completed, pending and
cancelled payments, captures and reconciliation's timeout. No AWS, no gateway."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from payments import settlement
from payments.gateways.base import Capability, EventKind, GatewayEvent, StatusAnswer
from payments.ids import new_payment_id
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus, RefundStatus
from payments.money import Money
from payments.settlement import Outcome, binds
from payments.store.memory import MemoryStore

CUSTOMER = "cust-1"
USD = Money(4200, "USD")
_ids = itertools.count(1)


def stored(
    store: MemoryStore,
    *,
    method: PaymentMethod = PaymentMethod.CREDIT_CARD,
    status: PaymentStatus = PaymentStatus.PENDING,
    ref: str | None = "pi_1",
    created: datetime | None = None,
    **extra: Any,
) -> Payment:
    moment = created or datetime.now(UTC)
    payment = Payment(
        id=new_payment_id(moment),
        customer_id=CUSTOMER,
        created_at=moment,
        completed_at=moment if status is PaymentStatus.COMPLETED else None,
        amount_minor=USD.minor,
        currency=USD.currency,
        status=status,
        method=method,
        gateway_ref=ref,
        history=(HistoryEntry(at=moment, status=status, by="customer:c"),),
        **extra,
    )
    assert store.add(payment)
    return payment


def event(
    payment: Payment | None,
    kind: EventKind,
    *,
    provider: str = "stripe",
    ref: str | None = "pi_1",
    money: Money | None = USD,
    event_id: str | None = None,
    **extra: Any,
) -> GatewayEvent:
    return GatewayEvent(
        provider=provider,
        event_id=event_id or f"evt_{next(_ids)}",
        event_type=f"test.{kind.value}",
        kind=kind,
        payment_id=payment.id if payment else None,
        customer_id=payment.customer_id if payment else None,
        gateway_ref=ref,
        money=money,
        **extra,
    )


class Adapter:
    """The gateway's side of capture and reconciliation, as a test sets it."""

    name = "paypal"
    capabilities = frozenset({Capability.CAPTURE, Capability.RECONCILE})

    def __init__(self, answer: StatusAnswer | None = None) -> None:
        self.answer = answer or StatusAnswer(EventKind.SUCCESS, USD)
        self.captures: list[str] = []

    def capture(self, gateway_ref: str, request_id: str) -> StatusAnswer:
        self.captures.append(gateway_ref)
        return self.answer

    def fetch_status(self, gateway_ref: str, payment_id: str) -> StatusAnswer:
        return self.answer


def apply(store: MemoryStore, gateway_event: GatewayEvent, adapter: Adapter | None = None) -> Outcome:
    return settlement.apply_event(store, adapter or Adapter(), gateway_event).outcome  # type: ignore[arg-type]


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


# ---- binds -------------------------------------------------------------------------------------------


def test_an_event_binds_only_a_payment_of_its_gateway_about_an_object_we_stored(store: MemoryStore) -> None:
    card = stored(store, ref="pi_1")
    paystack = stored(store, method=PaymentMethod.PAYSTACK, ref="pay-x.1", gateway_refs=frozenset({"pay-x.2"}))

    assert binds(card, event(card, EventKind.SUCCESS, ref="pi_1"))
    assert not binds(card, event(card, EventKind.SUCCESS, ref="pi_other"))  # not the object we made
    assert not binds(card, event(card, EventKind.SUCCESS, ref=None))
    assert not binds(card, event(card, EventKind.SUCCESS, provider="paypal", ref="pi_1"))  # another gateway's event
    # Every object a Paystack payment's attempts opened may settle it, not only the recorded one.
    assert binds(paystack, event(paystack, EventKind.SUCCESS, provider="paystack", ref="pay-x.2"))
    assert binds(paystack, event(paystack, EventKind.SUCCESS, provider="paystack", ref="pay-x.1"))


def test_an_event_naming_a_payment_it_is_not_about_changes_nothing(store: MemoryStore) -> None:
    card = stored(store, ref="pi_1")

    assert apply(store, event(card, EventKind.SUCCESS, ref="pi_forged")) is Outcome.MISMATCH
    assert store.require(CUSTOMER, card.id).status is PaymentStatus.PENDING
    assert store.balances(CUSTOMER) == []


def test_an_event_about_nothing_of_ours_is_recorded_once(store: MemoryStore) -> None:
    stray = event(None, EventKind.SUCCESS, ref="pi_unknown", event_id="evt_stray")
    assert apply(store, stray) is Outcome.UNKNOWN_PAYMENT
    assert apply(store, stray) is Outcome.DUPLICATE


def test_the_gateway_reference_alone_finds_the_payment(store: MemoryStore) -> None:
    card = stored(store, ref=None)
    recorded = store.record_gateway_object(
        card, provider="stripe", gateway_ref="pi_9", next_action=None, card_brand=None, card_last4=None
    )
    assert recorded is not None

    assert apply(store, event(None, EventKind.SUCCESS, ref="pi_9")) is Outcome.COMPLETED
    assert store.require(CUSTOMER, card.id).status is PaymentStatus.COMPLETED


# ---- completion, exactly once --------------------------------------------------------------------------


def test_a_success_completes_and_credits_once_however_often_it_arrives(store: MemoryStore) -> None:
    card = stored(store)
    success = event(card, EventKind.SUCCESS, event_id="evt_ok")

    assert apply(store, success) is Outcome.COMPLETED
    assert apply(store, success) is Outcome.DUPLICATE
    assert apply(store, event(card, EventKind.SUCCESS)) is Outcome.UNCHANGED  # another event saying the same
    assert store.balances(CUSTOMER) == [USD]
    after = store.require(CUSTOMER, card.id)
    assert after.completed_at is not None
    assert [h.status for h in after.history] == [PaymentStatus.PENDING, PaymentStatus.COMPLETED]
    assert after.history[-1].by == "gateway:stripe:evt_ok"


def test_a_success_for_another_amount_is_a_mismatch(store: MemoryStore) -> None:
    card = stored(store)
    assert apply(store, event(card, EventKind.SUCCESS, money=Money(4199, "USD"))) is Outcome.MISMATCH
    assert store.require(CUSTOMER, card.id).status is PaymentStatus.PENDING


def test_a_failure_after_a_success_is_refused_and_the_payment_stays_completed(store: MemoryStore) -> None:
    card = stored(store)
    assert apply(store, event(card, EventKind.SUCCESS)) is Outcome.COMPLETED
    failure = event(card, EventKind.FAILURE, reason="expired", event_id="evt_late_failure")

    assert apply(store, failure) is Outcome.REFUSED
    assert apply(store, failure) is Outcome.DUPLICATE
    assert store.require(CUSTOMER, card.id).status is PaymentStatus.COMPLETED
    assert store.balances(CUSTOMER) == [USD]


def test_a_cancelled_payment_the_money_arrived_for_completes(store: MemoryStore) -> None:
    card = stored(store)
    assert apply(store, event(card, EventKind.FAILURE, reason="expired_card")) is Outcome.CANCELLED
    cancelled = store.require(CUSTOMER, card.id)
    assert (cancelled.failure_reason, store.balances(CUSTOMER)) == ("expired_card", [])

    assert apply(store, event(card, EventKind.SUCCESS)) is Outcome.COMPLETED
    assert store.balances(CUSTOMER) == [USD]


# ---- refunds --------------------------------------------------------------------------------------------


def refund(payment: Payment, minor: int, refund_id: str, **extra: Any) -> GatewayEvent:
    return event(payment, EventKind.REFUND, money=Money(minor, "USD"), refund_id=refund_id, **extra)


def test_a_refund_of_a_completed_payment_debits_once_and_links_both_ways(store: MemoryStore) -> None:
    paid = stored(store, status=PaymentStatus.COMPLETED)

    assert apply(store, refund(paid, 1000, "re_1")) is Outcome.REFUNDED
    assert apply(store, refund(paid, 1000, "re_1")) is Outcome.DUPLICATE  # the same refund, another event
    assert store.balances(CUSTOMER) == [Money(3200, "USD")]
    original = store.require(CUSTOMER, paid.id)
    [refund_id] = original.refund_ids
    made = store.require(CUSTOMER, refund_id)
    assert (made.amount_minor, made.method, made.refund_of, original.refunded_minor) == (
        -1000,
        PaymentMethod.REFUND,
        paid.id,
        1000,
    )


def test_refunds_never_pass_what_the_payment_was_for(store: MemoryStore) -> None:
    paid = stored(store, status=PaymentStatus.COMPLETED)
    assert apply(store, refund(paid, 3000, "re_1")) is Outcome.REFUNDED
    assert apply(store, refund(paid, 1300, "re_2")) is Outcome.MISMATCH  # 4300 > 4200
    assert apply(store, refund(paid, 4201, "re_3")) is Outcome.MISMATCH
    assert apply(store, refund(paid, 1200, "re_4")) is Outcome.REFUNDED
    assert store.balances(CUSTOMER) == [Money(0, "USD")]


def test_a_refund_of_a_pending_payment_is_deferred_and_not_recorded(store: MemoryStore) -> None:
    pending = stored(store)
    early = refund(pending, 1000, "re_early", event_id="evt_refund_early")

    assert apply(store, early) is Outcome.DEFERRED
    assert apply(store, early) is Outcome.DEFERRED  # not recorded: the gateway's redelivery is looked at again
    assert apply(store, event(pending, EventKind.SUCCESS)) is Outcome.COMPLETED
    assert apply(store, early) is Outcome.REFUNDED
    assert store.balances(CUSTOMER) == [Money(3200, "USD")]


def test_a_refund_of_a_cancelled_payment_is_recorded_and_never_debits(store: MemoryStore) -> None:
    cancelled = stored(store, status=PaymentStatus.CANCELLED)
    late = refund(cancelled, 1000, "re_void", event_id="evt_refund_void")

    assert apply(store, late) is Outcome.REFUSED
    assert apply(store, late) is Outcome.DUPLICATE
    assert store.balances(CUSTOMER) == []
    assert store.require(CUSTOMER, cancelled.id).refund_ids == frozenset()


def failed(payment: Payment, minor: int, refund_id: str, **extra: Any) -> GatewayEvent:
    return event(payment, EventKind.REFUND_FAILED, money=Money(minor, "USD"), refund_id=refund_id, **extra)


def test_a_failed_refund_counts_again_once_and_its_original_may_be_refunded_by_it_again(store: MemoryStore) -> None:
    paid = stored(store, status=PaymentStatus.COMPLETED)
    assert apply(store, refund(paid, 1000, "re_1")) is Outcome.REFUNDED
    [refund_id] = store.require(CUSTOMER, paid.id).refund_ids
    failure = failed(paid, 1000, "re_1", reason="expired_or_canceled_card")

    assert apply(store, failure) is Outcome.REFUND_FAILED
    assert apply(store, failure) is Outcome.DUPLICATE  # the same delivery again
    assert apply(store, failed(paid, 1000, "re_1")) is Outcome.UNCHANGED  # another event about the same failure
    assert store.balances(CUSTOMER) == [Money(4200, "USD")]
    entry = store.require(CUSTOMER, refund_id)
    assert (entry.status, entry.refund_status, entry.failure_reason) == (
        PaymentStatus.CANCELLED,
        RefundStatus.FAILED,
        "refund failed: expired_or_canceled_card",
    )
    assert [h.status for h in entry.history] == [PaymentStatus.COMPLETED, PaymentStatus.CANCELLED]
    original = store.require(CUSTOMER, paid.id)
    assert (original.status, original.refunded_minor, original.refund_ids) == (
        PaymentStatus.COMPLETED,
        0,
        frozenset({refund_id}),
    )
    assert apply(store, refund(paid, 4200, "re_2")) is Outcome.REFUNDED  # the whole amount is refundable again
    assert store.balances(CUSTOMER) == [Money(0, "USD")]


def test_a_refund_reported_failed_before_it_was_reported_made_never_debits(store: MemoryStore) -> None:
    paid = stored(store, status=PaymentStatus.COMPLETED)

    assert apply(store, failed(paid, 1000, "re_1")) is Outcome.REFUND_FAILED
    assert apply(store, refund(paid, 1000, "re_1")) is Outcome.DUPLICATE
    assert apply(store, failed(paid, 1000, "re_1")) is Outcome.DUPLICATE
    assert store.balances(CUSTOMER) == [Money(4200, "USD")]
    assert store.require(CUSTOMER, paid.id).refund_ids == frozenset()


def test_a_refund_failure_about_another_payments_refund_changes_nothing(store: MemoryStore) -> None:
    paid = stored(store, status=PaymentStatus.COMPLETED)
    other = stored(store, status=PaymentStatus.COMPLETED, ref="pi_2")
    assert apply(store, refund(other, 1000, "re_other", ref="pi_2")) is Outcome.REFUNDED

    assert apply(store, failed(paid, 1000, "re_other")) is Outcome.MISMATCH  # bound to paid, names other's refund
    assert apply(store, failed(paid, 1000, None)) is Outcome.MISMATCH  # names no refund at all
    assert store.balances(CUSTOMER) == [Money(7400, "USD")]
    [refund_id] = store.require(CUSTOMER, other.id).refund_ids
    assert store.require(CUSTOMER, refund_id).status is PaymentStatus.COMPLETED


@pytest.mark.parametrize("status", [PaymentStatus.PENDING, PaymentStatus.CANCELLED, PaymentStatus.COMPLETED])
def test_a_refund_of_money_the_gateway_never_captured_never_debits(store: MemoryStore, status: PaymentStatus) -> None:
    payment = stored(store, status=status)
    automatic = refund(payment, 4200, "rfnd_auto", uncaptured=True)

    assert apply(store, automatic) is Outcome.REFUSED  # recorded (200, not deferred): it will never count
    assert apply(store, automatic) is Outcome.DUPLICATE
    assert store.balances(CUSTOMER) == ([USD] if status is PaymentStatus.COMPLETED else [])
    assert store.require(CUSTOMER, payment.id).refund_ids == frozenset()


# ---- held payments ---------------------------------------------------------------------------------------


def test_a_held_payment_stays_pending_with_its_reason_until_the_gateway_settles_it(store: MemoryStore) -> None:
    payment = stored(store, method=PaymentMethod.PAYPAL, ref="ORDER-1")
    held = event(payment, EventKind.HELD, provider="paypal", ref="ORDER-1", money=None, reason="PayPal holds it")

    assert apply(store, held) is Outcome.HELD
    assert apply(store, held) is Outcome.DUPLICATE
    now = store.require(CUSTOMER, payment.id)
    assert (now.status, now.pending_reason, now.history[-1].note) == (
        PaymentStatus.PENDING,
        "PayPal holds it",
        "PayPal holds it",
    )
    assert store.balances(CUSTOMER) == []
    assert apply(store, event(payment, EventKind.SUCCESS, provider="paypal", ref="ORDER-1")) is Outcome.COMPLETED
    done = store.require(CUSTOMER, payment.id)
    assert (done.status, done.pending_reason) == (PaymentStatus.COMPLETED, None)
    late = event(payment, EventKind.HELD, provider="paypal", ref="ORDER-1", money=None, reason="late")
    assert apply(store, late) is Outcome.UNCHANGED  # a completed payment is held no more
    assert store.balances(CUSTOMER) == [USD]


def test_reconciliation_never_times_out_a_payment_its_gateway_holds(store: MemoryStore) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=30)
    payment = stored(store, method=PaymentMethod.PAYPAL, ref="ORDER-1", created=long_ago)
    adapter = Adapter(StatusAnswer(EventKind.HELD, reason="PayPal holds the capture: ECHECK"))

    def reconcile() -> settlement.ReconcileReport:
        return settlement.reconcile(
            store,
            {"paypal": adapter},  # type: ignore[dict-item]
            now=datetime.now(UTC),
            ask_after=timedelta(minutes=30),
            give_up_after=timedelta(hours=72),
        )

    first, second = reconcile(), reconcile()
    assert (first.held, first.timed_out, first.errors) == (1, 0, 0)
    assert (second.held, second.timed_out, second.errors) == (1, 0, 0)
    after = store.require(CUSTOMER, payment.id)
    assert (after.status, after.pending_reason) == (PaymentStatus.PENDING, "PayPal holds the capture: ECHECK")
    assert [h.note for h in after.history].count("PayPal holds the capture: ECHECK") == 1


# ---- capture and reconciliation -------------------------------------------------------------------------


def test_an_approval_is_captured_and_the_capture_settles_the_payment(store: MemoryStore) -> None:
    order = stored(store, method=PaymentMethod.PAYPAL, ref="ORDER-1")
    adapter = Adapter(StatusAnswer(EventKind.SUCCESS, USD))

    assert apply(store, event(order, EventKind.CAPTURE, provider="paypal", ref="ORDER-1"), adapter) is Outcome.COMPLETED
    assert adapter.captures == ["ORDER-1"]
    # An approval of a payment completed already asks the gateway for nothing.
    again = event(order, EventKind.CAPTURE, provider="paypal", ref="ORDER-1")
    assert apply(store, again, adapter) is Outcome.UNCHANGED
    assert adapter.captures == ["ORDER-1"]


def test_reconciliation_settles_what_the_gateway_answers_and_times_out_the_silent(store: MemoryStore) -> None:
    now = datetime.now(UTC)
    answered = stored(store, ref="pi_answered", created=now - timedelta(hours=2))
    silent = stored(store, ref=None, created=now - timedelta(days=3))
    recent = stored(store, ref="pi_recent", created=now - timedelta(minutes=1))

    report = settlement.reconcile(
        store,
        {"stripe": Adapter(StatusAnswer(EventKind.SUCCESS, USD))},  # type: ignore[dict-item]
        now=now,
        ask_after=timedelta(minutes=30),
        give_up_after=timedelta(days=2),
    )

    assert (report.checked, report.completed, report.timed_out) == (2, 1, 1)
    assert store.require(CUSTOMER, answered.id).status is PaymentStatus.COMPLETED
    assert store.require(CUSTOMER, silent.id).history[-1].by == "system:reconcile"
    assert store.require(CUSTOMER, silent.id).status is PaymentStatus.CANCELLED
    assert store.require(CUSTOMER, recent.id).status is PaymentStatus.PENDING
