"""`status.apply`: the payment after a transition and its balance delta, computed without any I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.models import HistoryEntry, Payment, PaymentMethod, RefundStatus
from payments.models import PaymentStatus as S
from payments.money import Money
from payments.status import Cause, TransitionRefused, accept_refund, apply, balance_delta, refund_progress, refundable

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW = CREATED + timedelta(minutes=5)


def payment(status: S = S.PENDING, **extra: object) -> Payment:
    values: dict[str, object] = {
        "id": "pay_01JDQ4W6S8X7C3M2K9V5T0R1AB",
        "customer_id": "cust-1",
        "created_at": CREATED,
        "amount_minor": 1250,
        "currency": "USD",
        "status": status,
        "method": PaymentMethod.CREDIT_CARD,
        "gateway_attempts": 1,
        "gateway_claim_until": 1_900_000_000_000,
        "history": (HistoryEntry(at=CREATED, status=S.PENDING, by="customer:c", note="created"),),
    }
    return Payment.model_validate(values | extra)


def test_completing_sets_the_time_appends_history_ends_the_claim_and_credits_the_balance() -> None:
    before = payment()
    change = apply(before, S.COMPLETED, Cause.GATEWAY_SUCCESS, by="gateway:stripe:evt_1", now=NOW)

    assert change.changed and change.before is before
    after = change.after
    assert (after.status, after.completed_at, after.gateway_claim_until) == (S.COMPLETED, NOW, None)
    assert after.history == (*before.history, HistoryEntry(at=NOW, status=S.COMPLETED, by="gateway:stripe:evt_1"))
    assert change.balance_delta == Money(1250, "USD")
    assert before.status is S.PENDING  # the input is left as it was


def test_cancelling_keeps_the_reason_and_the_refused_field_and_moves_no_money() -> None:
    change = apply(
        payment(), S.CANCELLED, Cause.GATEWAY_FAILURE, by="gateway:stripe:create", now=NOW, note="x", failure_field="f"
    )

    after = change.after
    assert (after.status, after.failure_reason, after.failure_field) == (S.CANCELLED, "x", "f")
    assert after.completed_at is None
    assert after.history[-1] == HistoryEntry(at=NOW, status=S.CANCELLED, by="gateway:stripe:create", note="x")
    assert change.balance_delta is None


def test_a_note_on_completing_is_history_only() -> None:
    after = apply(payment(), S.COMPLETED, Cause.OPERATOR, by="operator:op", now=NOW, note="paid by phone").after
    assert after.failure_reason is None
    assert after.history[-1].note == "paid by phone"


def test_a_cancelled_payment_completed_by_the_gateway_counts_and_keeps_its_old_reason() -> None:
    cancelled = payment(S.CANCELLED, failure_reason="expired", gateway_claim_until=None)
    change = apply(cancelled, S.COMPLETED, Cause.GATEWAY_SUCCESS, by="gateway:paypal:e", now=NOW)

    assert (change.after.status, change.after.failure_reason) == (S.COMPLETED, "expired")
    assert change.balance_delta == Money(1250, "USD")


def test_the_status_it_already_has_changes_nothing() -> None:
    completed = payment(S.COMPLETED, completed_at=CREATED)
    change = apply(completed, S.COMPLETED, Cause.GATEWAY_SUCCESS, by="gateway:stripe:again", now=NOW)

    assert not change.changed
    assert change.after is completed
    assert change.balance_delta is None


@pytest.mark.parametrize(
    ("current", "target", "cause"),
    [
        (S.COMPLETED, S.CANCELLED, Cause.GATEWAY_FAILURE),
        (S.COMPLETED, S.PENDING, Cause.OPERATOR),
        (S.CANCELLED, S.COMPLETED, Cause.OPERATOR),
        (S.PENDING, S.COMPLETED, Cause.TIMEOUT),
    ],
)
def test_what_the_rules_refuse_raises(current: S, target: S, cause: Cause) -> None:
    with pytest.raises(TransitionRefused):
        apply(payment(current), target, cause, by="x", now=NOW)


def test_the_balance_delta_of_every_status_pair() -> None:
    money = Money(-300, "EUR")  # a purchase: completing it debits
    assert balance_delta(S.PENDING, S.COMPLETED, money) == money
    assert balance_delta(S.CANCELLED, S.COMPLETED, money) == money
    assert balance_delta(S.COMPLETED, S.CANCELLED, money) == Money(300, "EUR")
    assert balance_delta(S.PENDING, S.CANCELLED, money) is None
    assert balance_delta(S.COMPLETED, S.COMPLETED, money) is None
    assert [s for s in S if refundable(s)] == [S.COMPLETED]


@given(st.lists(st.tuples(st.sampled_from(list(S)), st.sampled_from(list(Cause))), max_size=20))
def test_whatever_arrives_the_deltas_add_up_to_what_the_final_status_counts(events: list[tuple[S, Cause]]) -> None:
    current = payment()
    total = 0
    for target, cause in events:
        try:
            change = apply(current, target, cause, by="gateway:test", now=NOW)
        except TransitionRefused:
            continue
        total += change.balance_delta.minor if change.balance_delta else 0
        assert len(change.after.history) == len(current.history) + (1 if change.changed else 0)
        current = change.after
    assert total == (current.amount_minor if current.status is S.COMPLETED else 0)


def test_a_failed_refund_cancels_the_refund_entry_credits_it_back_and_releases_it_from_its_original() -> None:
    refund = payment(
        S.COMPLETED, method=PaymentMethod.REFUND, amount_minor=-400, refund_of="pay_01JDQ4W6S8X7C3M2K9V5T0R1AC"
    )
    change = apply(refund, S.CANCELLED, Cause.REFUND_FAILED, by="gateway:stripe:evt_9", now=NOW, note="refund failed")

    assert (change.after.status, change.after.refund_status, change.after.failure_reason) == (
        S.CANCELLED,
        RefundStatus.FAILED,
        "refund failed",
    )
    assert change.balance_delta == Money(400, "USD")  # the money counts again
    assert change.released_minor == 400
    assert change.after.history[-1] == HistoryEntry(
        at=NOW, status=S.CANCELLED, by="gateway:stripe:evt_9", note="refund failed"
    )
    again = apply(change.after, S.CANCELLED, Cause.REFUND_FAILED, by="gateway:stripe:evt_10", now=NOW)
    assert not again.changed and again.balance_delta is None and again.released_minor == 0


@pytest.mark.parametrize("method", [m for m in PaymentMethod if m is not PaymentMethod.REFUND])
def test_only_a_refund_entry_can_fail_as_a_refund(method: PaymentMethod) -> None:
    with pytest.raises(TransitionRefused):
        apply(payment(S.COMPLETED, method=method), S.CANCELLED, Cause.REFUND_FAILED, by="gateway:stripe:e", now=NOW)
    with pytest.raises(TransitionRefused):  # nor one that names no original
        apply(payment(S.COMPLETED, method=PaymentMethod.REFUND), S.CANCELLED, Cause.REFUND_FAILED, by="x", now=NOW)


def test_a_hold_keeps_the_payment_pending_with_its_reason_and_settling_clears_it() -> None:
    from payments.status import hold

    held = hold(payment(), "PayPal holds the capture: PENDING_REVIEW", by="gateway:paypal:WH-1", now=NOW)
    after = held.after
    assert (after.status, after.pending_reason, held.balance_delta) == (
        S.PENDING,
        "PayPal holds the capture: PENDING_REVIEW",
        None,
    )
    assert after.history[-1] == HistoryEntry(
        at=NOW, status=S.PENDING, by="gateway:paypal:WH-1", note="PayPal holds the capture: PENDING_REVIEW"
    )
    assert not hold(after, "PayPal holds the capture: PENDING_REVIEW", by="x", now=NOW).changed  # the same hold
    assert hold(after, "another reason", by="x", now=NOW).after.pending_reason == "another reason"
    completed = apply(after, S.COMPLETED, Cause.GATEWAY_SUCCESS, by="gateway:paypal:WH-2", now=NOW).after
    assert (completed.status, completed.pending_reason) == (S.COMPLETED, None)
    for settled in (S.COMPLETED, S.CANCELLED):
        assert not hold(payment(settled), "late", by="x", now=NOW).changed  # a settled payment is not held


# ---- operator refunds: a pending entry reserves, the gateway's acceptance completes it -----------------------

ORIGINAL = "pay_01JDQ4W6S8X7C3M2K9V5T0R1AC"


def reserved(status: S = S.PENDING, **extra: object) -> Payment:
    return payment(status, method=PaymentMethod.REFUND, amount_minor=-400, refund_of=ORIGINAL, **extra)


@pytest.mark.parametrize("refund_status", [RefundStatus.PENDING, RefundStatus.SUCCEEDED])
def test_the_gateways_acceptance_completes_a_reserved_refund_and_debits_it(refund_status: RefundStatus) -> None:
    change = accept_refund(reserved(), "re_1", refund_status, by="gateway:stripe:re_1", now=NOW)

    after = change.after
    assert (after.status, after.reference, after.refund_status, after.completed_at) == (
        S.COMPLETED,
        "re_1",
        refund_status,
        NOW,
    )
    assert change.balance_delta == Money(-400, "USD") and change.released_minor == 0
    assert after.history[-1] == HistoryEntry(
        at=NOW, status=S.COMPLETED, by="gateway:stripe:re_1", note=f"refund {refund_status.value}"
    )
    assert not accept_refund(after, "re_1", refund_status, by="x", now=NOW).changed  # once


@pytest.mark.parametrize(
    ("entry", "refund_status"),
    [
        (reserved(S.CANCELLED), RefundStatus.PENDING),  # released: final
        (reserved(), RefundStatus.FAILED),  # a failure is a cancellation, not an acceptance
        (payment(), RefundStatus.PENDING),  # not a refund entry
    ],
)
def test_only_a_reserved_refund_can_be_accepted(entry: Payment, refund_status: RefundStatus) -> None:
    with pytest.raises(TransitionRefused):
        accept_refund(entry, "re_1", refund_status, by="x", now=NOW)


@pytest.mark.parametrize("cause", [Cause.GATEWAY_FAILURE, Cause.SUPERSEDED, Cause.TIMEOUT, Cause.OPERATOR])
def test_cancelling_a_reserved_refund_releases_it_and_moves_no_money(cause: Cause) -> None:
    change = apply(reserved(), S.CANCELLED, cause, by="system:refunds", now=NOW, note="why")

    assert change.after.status is S.CANCELLED and change.balance_delta is None
    assert change.released_minor == 400
    failed = cause is Cause.GATEWAY_FAILURE
    assert change.after.refund_status is (RefundStatus.FAILED if failed else None)


@pytest.mark.parametrize("cause", [Cause.OPERATOR, Cause.GATEWAY_SUCCESS])
def test_a_reserved_refund_completes_only_by_the_gateways_acceptance(cause: Cause) -> None:
    with pytest.raises(TransitionRefused):
        apply(reserved(), S.COMPLETED, cause, by="operator:op", now=NOW)
    with pytest.raises(TransitionRefused):  # nor does a cancelled one come back
        apply(reserved(S.CANCELLED), S.COMPLETED, Cause.GATEWAY_SUCCESS, by="gateway:stripe:e", now=NOW)


def test_superseded_applies_to_refund_entries_only() -> None:
    with pytest.raises(TransitionRefused):
        apply(payment(), S.CANCELLED, Cause.SUPERSEDED, by="x", now=NOW)


def test_refund_progress_marks_a_counted_pending_refund_succeeded_once() -> None:
    counted = reserved(S.COMPLETED, refund_status=RefundStatus.PENDING)
    change = refund_progress(counted, RefundStatus.SUCCEEDED, by="gateway:razorpay:e", now=NOW)

    assert change.after.refund_status is RefundStatus.SUCCEEDED and change.balance_delta is None
    assert change.after.history[-1].note == "refund succeeded"
    assert not refund_progress(change.after, RefundStatus.SUCCEEDED, by="x", now=NOW).changed
    assert not refund_progress(reserved(), RefundStatus.SUCCEEDED, by="x", now=NOW).changed  # not counted yet
    assert not refund_progress(counted, RefundStatus.PENDING, by="x", now=NOW).changed
