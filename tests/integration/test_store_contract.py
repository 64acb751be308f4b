"""One contract, two stores: each check runs against `PaymentStore` (DynamoDB, moto) and `MemoryStore`, so the
in-memory fake the unit tests use answers as the table does, conditions included."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from payments import outbox
from payments.ids import new_payment_id
from payments.models import Dispute, DisputeStatus, HistoryEntry, Payment, PaymentMethod, PaymentStatus, RefundStatus
from payments.money import Money
from payments.status import Cause, TransitionRefused, apply, note_dispute, refund_progress
from payments.store import Dedupe, DisputeWritten, PaymentStore, RefundWritten, Store, Written
from payments.store.export_records import ExportFilters, ExportRecord, ExportStatus
from payments.store.memory import MemoryStore

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "dynamodb":
        request.getfixturevalue("aws")
        yield PaymentStore()
    else:
        yield MemoryStore()


def payment(
    customer: str, status: PaymentStatus = PaymentStatus.PENDING, *, at: datetime = BASE, **extra: Any
) -> Payment:
    values: dict[str, Any] = {
        "id": new_payment_id(at),
        "customer_id": customer,
        "created_at": at,
        "completed_at": at if status is PaymentStatus.COMPLETED else None,
        "amount_minor": 1000,
        "currency": "USD",
        "status": status,
        "method": PaymentMethod.CREDIT_CARD,
        "description": "Card payment",
        "history": (HistoryEntry(at=at, status=status, by="customer:c", note="created"),),
    }
    return Payment.model_validate(values | extra)


def marker() -> Dedupe:
    return Dedupe("contract", uuid.uuid4().hex)


def test_add_moves_the_balance_of_completed_payments_once_per_marker(store: Store, customer: str) -> None:
    once = marker()
    assert store.add(payment(customer, PaymentStatus.COMPLETED), dedupe=once)
    assert not store.add(payment(customer, PaymentStatus.COMPLETED), dedupe=once)
    assert store.add(payment(customer, PaymentStatus.PENDING))
    assert store.add(payment(customer, PaymentStatus.COMPLETED, amount_minor=-300))

    assert store.balances(customer) == [Money(700, "USD")]
    assert store.event_payment_id(once) is not None
    assert store.event_payment_id(marker()) is None


def test_put_pending_puts_once_per_request_key_and_finds_the_first(store: Store, customer: str) -> None:
    first = payment(customer, reference="PAY-" + secrets.token_hex(6))
    put, created = store.put_pending(first, "req-1", reference=first.reference)
    again, created_again = store.put_pending(payment(customer), "req-1")

    assert (put, created) == (first, True)
    assert (again.id, created_again) == (first.id, False)
    assert store.find_by_request(customer, "req-1") == first
    assert store.find_by_request(customer, "req-2") is None
    with pytest.raises(Exception):  # noqa: B017 - a bank reference is unique: DynamoDB's error, or ConditionFailed
        store.put_pending(payment(customer), "req-3", reference=first.reference)


def test_transitions_write_the_change_and_its_delta_exactly_once(store: Store, customer: str) -> None:
    pending = payment(customer, gateway_attempts=1, gateway_claim_until=store.claim_until(30))
    store.put_pending(pending, "req")
    event = marker()

    done = store.transition(
        customer, pending.id, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS, "gateway:x:1", dedupe=event
    )
    dup = store.transition(
        customer, pending.id, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS, "gateway:x:1", dedupe=event
    )
    same = store.transition(customer, pending.id, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS, "gateway:x:2")

    assert (done.changed, dup.duplicate, same.changed, same.duplicate) == (True, True, False, False)
    stored = store.require(customer, pending.id, consistent=True)
    assert stored.to_api(with_history=True) == done.payment.to_api(with_history=True)  # what it answers is stored
    assert (stored.status, stored.gateway_claim_until, len(stored.history)) == (PaymentStatus.COMPLETED, None, 2)
    assert store.balances(customer) == [Money(1000, "USD")]
    still_pending = store.pending_before(PaymentMethod.CREDIT_CARD, BASE + timedelta(seconds=1), limit=1000)
    assert pending.id not in {p.id for p in still_pending}
    with pytest.raises(TransitionRefused):
        store.transition(customer, pending.id, PaymentStatus.CANCELLED, Cause.GATEWAY_FAILURE, "gateway:x:3")


def test_a_stale_read_loses_the_race_and_is_applied_again(store: Store, customer: str) -> None:
    pending = payment(customer)
    store.add(pending)
    store.transition(customer, pending.id, PaymentStatus.CANCELLED, Cause.OPERATOR, "operator:o", note="by phone")

    late = store.transition(
        customer, pending.id, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS, "gateway:x", current=pending
    )

    assert late.changed
    stored = store.require(customer, pending.id, consistent=True)
    assert [h.status for h in stored.history] == [
        PaymentStatus.PENDING,
        PaymentStatus.CANCELLED,
        PaymentStatus.COMPLETED,
    ]
    assert (stored.failure_reason, store.balances(customer)) == ("by phone", [Money(1000, "USD")])


def test_refunds_count_against_completed_payments_only_and_never_past_their_amount(store: Store, customer: str) -> None:
    paid, cancelled = payment(customer, PaymentStatus.COMPLETED), payment(customer, PaymentStatus.CANCELLED)
    store.add(paid)
    store.add(cancelled)

    def refund(original: Payment, minor: int, once: Dedupe) -> RefundWritten:
        made = payment(
            customer, PaymentStatus.COMPLETED, amount_minor=-minor, method=PaymentMethod.REFUND, refund_of=original.id
        )
        return store.record_refund(made, original, once)

    first = marker()
    assert refund(paid, 600, first) is RefundWritten.RECORDED
    assert refund(paid, 600, first) is RefundWritten.DUPLICATE
    assert refund(paid, 500, marker()) is RefundWritten.REFUSED
    assert refund(paid, 400, marker()) is RefundWritten.RECORDED
    assert refund(cancelled, 100, marker()) is RefundWritten.REFUSED
    original = store.require(customer, paid.id, consistent=True)
    assert (original.refunded_minor, len(original.refund_ids)) == (1000, 2)
    assert store.balances(customer) == [Money(0, "USD")]


def test_dispute_funds_move_once_per_direction_within_what_was_paid(store: Store, customer: str) -> None:
    paid, other = payment(customer, PaymentStatus.COMPLETED), payment(customer, PaymentStatus.COMPLETED)
    store.add(paid)
    store.add(other)

    def moved(original: Payment, minor: int, dispute: Dedupe, method: PaymentMethod) -> DisputeWritten:
        sign = -1 if method is PaymentMethod.CHARGEBACK else 1
        made = payment(
            customer, PaymentStatus.COMPLETED, amount_minor=sign * minor, method=method, refund_of=original.id
        )
        return store.record_dispute_funds(made, store.require(customer, original.id, consistent=True), dispute)

    first, second, early = marker(), marker(), marker()
    assert moved(paid, 700, first, PaymentMethod.CHARGEBACK) is DisputeWritten.RECORDED
    assert moved(paid, 700, first, PaymentMethod.CHARGEBACK) is DisputeWritten.DUPLICATE
    assert moved(paid, 400, second, PaymentMethod.CHARGEBACK) is DisputeWritten.REFUSED  # 700 + 400 > 1000
    assert store.dispute_funds(second) == (None, None)
    withdrawn, reinstated = store.dispute_funds(first)
    assert withdrawn is not None and reinstated is None
    assert store.balances(customer) == [Money(1300, "USD")]
    assert moved(paid, 700, first, PaymentMethod.CHARGEBACK_REVERSAL) is DisputeWritten.RECORDED
    assert moved(paid, 700, first, PaymentMethod.CHARGEBACK_REVERSAL) is DisputeWritten.DUPLICATE
    original = store.require(customer, paid.id, consistent=True)
    assert (original.refunded_minor, original.charged_back_minor, len(original.refund_ids)) == (0, 0, 2)
    assert store.balances(customer) == [Money(2000, "USD")]
    # Reinstated before any withdrawal: both directions are recorded and nothing moves.
    assert moved(other, 300, early, PaymentMethod.CHARGEBACK_REVERSAL) is DisputeWritten.OFFSET
    assert moved(other, 300, early, PaymentMethod.CHARGEBACK) is DisputeWritten.OFFSET
    assert moved(other, 300, early, PaymentMethod.CHARGEBACK) is DisputeWritten.DUPLICATE
    assert store.dispute_funds(early) == ("offset", "offset")
    assert store.require(customer, other.id, consistent=True).refunded_minor == 0
    assert store.balances(customer) == [Money(2000, "USD")]


def test_a_dispute_round_trips_and_changes_alone(store: Store, customer: str) -> None:
    paid = payment(customer, PaymentStatus.COMPLETED)
    store.add(paid)
    dispute = Dispute(id="dp_x", status=DisputeStatus.OPEN, amount_minor=900, reason="fraudulent", opened_at=BASE)

    opened = store.apply_change(customer, paid.id, lambda p: note_dispute(p, dispute, by="gateway:s:e", now=BASE))
    won = dispute.model_copy(update={"status": DisputeStatus.WON, "reason": None})
    decided = store.apply_change(customer, paid.id, lambda p: note_dispute(p, won, by="gateway:s:f", now=BASE))

    stored = store.require(customer, paid.id, consistent=True)
    assert opened.changed and decided.changed and stored == decided.payment
    assert stored.dispute == Dispute(
        id="dp_x", status=DisputeStatus.WON, amount_minor=900, reason="fraudulent", opened_at=BASE
    )
    assert [h.note for h in stored.history[1:]] == ["dispute open: fraudulent", "dispute won: fraudulent"]
    assert (stored.status, store.balances(customer)) == (PaymentStatus.COMPLETED, [Money(1000, "USD")])


def test_the_watch_list_holds_open_disputes_and_refunds_pending_at_their_gateway(store: Store, customer: str) -> None:
    disputed = payment(customer, PaymentStatus.COMPLETED)
    refunding = payment(
        customer, PaymentStatus.COMPLETED, amount_minor=-300, method=PaymentMethod.REFUND, refund_of=disputed.id,
        refund_status=RefundStatus.PENDING, gateway_ref="pi_w", reference="re_w",
    )  # fmt: skip
    by_hand = payment(
        customer, PaymentStatus.COMPLETED, amount_minor=-100, method=PaymentMethod.REFUND, refund_of=disputed.id,
        refund_status=RefundStatus.PENDING,
    )  # fmt: skip
    for p in (disputed, refunding, by_hand):
        store.add(p)
    dispute = Dispute(id="dp_w", status=DisputeStatus.OPEN, amount_minor=1000, opened_at=BASE)
    store.apply_change(customer, disputed.id, lambda p: note_dispute(p, dispute, by="gateway:s:e", now=BASE))

    def watched(kind: str) -> list[str]:  # page by page: other tests' items share the table
        found, after = [], None
        while page := store.watched(kind, limit=100, after=after):
            found += [p.id for p in page if p.customer_id == customer]
            after = page[-1].id
        return found

    assert (watched("dispute"), watched("refund")) == ([disputed.id], [refunding.id])  # not one paid out by hand
    won = dispute.model_copy(update={"status": DisputeStatus.WON})
    store.apply_change(customer, disputed.id, lambda p: note_dispute(p, won, by="gateway:s:f", now=BASE))
    store.apply_change(
        customer, refunding.id, lambda p: refund_progress(p, RefundStatus.SUCCEEDED, by="gateway:s:g", now=BASE)
    )
    assert (watched("dispute"), watched("refund")) == ([], [])


def test_the_claim_and_the_gateway_object(store: Store, customer: str) -> None:
    live = payment(customer, gateway_attempts=1, gateway_claim_until=store.claim_until(30))
    expired = payment(customer, gateway_attempts=1, gateway_claim_until=store.claim_until(-1))
    store.put_pending(live, "req-live")
    store.put_pending(expired, "req-expired")
    ref = "ref-" + uuid.uuid4().hex

    assert store.claim_gateway_object(live, provider="paystack", hold_seconds=30, ref=lambda n: None) is None
    taken = store.claim_gateway_object(expired, provider="paystack", hold_seconds=30, ref=lambda n: f"{ref}.{n}")
    assert taken is not None and (taken.gateway_attempts, taken.gateway_refs) == (2, {f"{ref}.2"})
    assert store.find_by_gateway_ref("paystack", f"{ref}.2") == store.require(customer, expired.id, consistent=True)

    def record(p: Payment, gateway_ref: str) -> Payment | None:
        return store.record_gateway_object(
            p, provider="paystack", gateway_ref=gateway_ref, next_action={"type": "redirect"}, card_brand=None,
            card_last4="4242", description="Paystack payment",
        )  # fmt: skip

    assert record(expired, f"{ref}.x") is None  # attempt 1 no longer holds the claim
    recorded = record(taken, f"{ref}.2")
    assert recorded == store.require(customer, expired.id, consistent=True)
    assert (recorded.gateway_ref, recorded.card_last4, recorded.gateway_claim_until) == (f"{ref}.2", "4242", None)
    assert record(live, f"{ref}.2") is None  # a pointer never moves to another payment
    store.release_gateway_claim(live, "timeout")
    assert store.require(customer, live.id, consistent=True).gateway_claim_until is None


def test_vouchers_and_the_attempt_window(store: Store, customer: str) -> None:
    code = uuid.uuid4().hex
    assert store.issue_voucher(code, Money(500, "EUR"), None, "operator:o")
    assert not store.issue_voucher(code, Money(900, "EUR"), None, "operator:o")
    assert store.voucher(code) == ("unused", Money(500, "EUR"), None)
    assert store.voucher(uuid.uuid4().hex) is None

    now = int(datetime.now(UTC).timestamp())
    counted = [store.count_voucher_attempt(customer, now=now, limit=2, window_seconds=60) for _ in range(3)]
    assert counted == [None, None, now + 60]
    later = store.count_voucher_attempt(customer, now=now + 61, limit=2, window_seconds=60)
    assert later is None  # a new window

    redeemed = payment(
        customer, PaymentStatus.COMPLETED, amount_minor=500, currency="EUR", method=PaymentMethod.VOUCHER
    )
    assert not store.redeem_voucher(code, redeemed.model_copy(update={"currency": "USD"}), now=now)
    assert store.redeem_voucher(code, redeemed, now=now)
    assert not store.redeem_voucher(code, payment(customer, PaymentStatus.COMPLETED, currency="EUR"), now=now)
    assert store.voucher(code) == ("redeemed", Money(500, "EUR"), None)
    assert store.balances(customer) == [Money(500, "EUR")]
    # The success gave its attempt back: two more fit in the window (the one at now + 61 and one more).
    again = [store.count_voucher_attempt(customer, now=now + 62, limit=2, window_seconds=60) for _ in range(3)]
    assert again == [None, None, now + 121]


def test_an_attempt_given_back_makes_room_for_one_more_and_never_goes_below_zero(store: Store, customer: str) -> None:
    now = int(datetime.now(UTC).timestamp())
    store.give_back_voucher_attempt(customer)  # nothing counted yet: nothing to give back
    counted = [store.count_voucher_attempt(customer, now=now, limit=2, window_seconds=60) for _ in range(3)]
    assert counted == [None, None, now + 60]
    store.give_back_voucher_attempt(customer)
    assert store.count_voucher_attempt(customer, now=now, limit=2, window_seconds=60) is None
    assert store.count_voucher_attempt(customer, now=now, limit=2, window_seconds=60) == now + 60
    for _ in range(4):  # more than were counted: the count stops at zero
        store.give_back_voucher_attempt(customer)
    again = [store.count_voucher_attempt(customer, now=now, limit=2, window_seconds=60) for _ in range(3)]
    assert again == [None, None, now + 60]


def test_event_markers_and_export_records(store: Store, customer: str) -> None:
    once = marker()
    assert store.record_event(once, "pay_x", event_type="a.b")
    assert not store.record_event(once, "pay_y", event_type="a.b")
    assert store.event_payment_id(once) == "pay_x"

    filters = ExportFilters(PaymentStatus.COMPLETED, BASE, None, "q", True)
    export_id = "exp-" + uuid.uuid4().hex[:8]
    record = ExportRecord(
        export_id, customer, ExportStatus.RUNNING, filters, f"exports/{customer}/x.csv", BASE, 1_900_000_000
    )
    store.put_export(record, "customer:c")
    assert store.get_export(customer, record.export_id) == record
    store.finish_export(customer, record.export_id, ExportStatus.DONE, rows=12)
    finished = store.get_export(customer, record.export_id)
    assert finished is not None and (finished.status, finished.row_count, finished.filters) == (
        ExportStatus.DONE,
        12,
        record.filters,
    )
    assert store.get_export(customer + "-other", record.export_id) is None
    assert store.get_export(customer, "x" * 65) is None


def test_listing_pages_summaries_and_counts(store: Store, customer: str) -> None:
    statuses = [PaymentStatus.COMPLETED, PaymentStatus.PENDING, PaymentStatus.CANCELLED] * 3
    made = [
        payment(customer, s, at=BASE + timedelta(minutes=i), description=f"item {i}") for i, s in enumerate(statuses)
    ]
    for p in made:
        store.add(p)
    newest_first = [p.id for p in reversed(made)]

    first, after = store.page(customer, limit=4)
    second, end = store.page(customer, limit=10, after=after)
    assert [p.id for p in first + second] == newest_first and end is None
    completed, _ = store.page(customer, limit=10, status=PaymentStatus.COMPLETED)
    assert [p.id for p in completed] == [p.id for p in reversed(made) if p.status is PaymentStatus.COMPLETED]
    window, _ = store.page(
        customer, limit=10, created_from=BASE + timedelta(minutes=2), created_to=BASE + timedelta(minutes=4)
    )
    assert [p.description for p in window] == ["item 4", "item 3", "item 2"]
    found, _ = store.page(customer, limit=10, search="item 7")
    assert [p.description for p in found] == ["item 7"]
    counts, totals = store.summary(customer)
    assert (counts[PaymentStatus.COMPLETED], counts[PaymentStatus.PENDING], totals) == (3, 3, [Money(3000, "USD")])
    assert store.count(customer, cap=5) == 5
    assert store.count(customer, cap=100, status=PaymentStatus.CANCELLED) == 3
    assert [p.id for p in store.stream(customer, page_size=2)] == newest_first


def test_each_status_change_writes_one_outbox_event_and_a_change_that_does_not_commit_none(
    store: Store, customer: str
) -> None:
    """docs/events.md: the outbox item is written in the transaction of the change, once, with a stable id."""
    pending = payment(customer)
    store.add(pending)
    assert store.outbox_event(outbox.event_id(pending)) is None  # a pending payment publishes nothing

    done = store.transition(customer, pending.id, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS, "gateway:x:1")
    event = store.outbox_event(outbox.event_id(done.payment))
    assert event == outbox.of_new(done.payment)  # as the pure rule makes it, from the payment after the change
    assert event is not None and event.detail_type == "payment.completed"
    assert event.detail()["payment"] == done.payment.to_api().model_dump(mode="json")
    # Asked again: nothing changes, nothing more is written (the same id would be refused anyway).
    same = store.transition(customer, pending.id, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS, "gateway:x:2")
    assert not same.changed
    assert store.outbox_event(outbox.event_id(done.payment)) == event

    # A refund entry and a chargeback entry, written completed, publish their own kinds; a duplicate writes none.
    refund = payment(
        customer, PaymentStatus.COMPLETED, amount_minor=-300, method=PaymentMethod.REFUND, refund_of=pending.id
    )
    once = marker()
    assert store.record_refund(refund, done.payment, once) is RefundWritten.RECORDED
    again = refund.model_copy(update={"id": new_payment_id(BASE)})
    assert store.record_refund(again, done.payment, once) is RefundWritten.DUPLICATE
    refunded = store.outbox_event(outbox.event_id(refund))
    assert refunded is not None and refunded.detail_type == "payment.refunded"
    assert store.outbox_event(outbox.event_id(again)) is None
    chargeback = payment(
        customer, PaymentStatus.COMPLETED, amount_minor=-200, method=PaymentMethod.CHARGEBACK, refund_of=pending.id
    )
    current = store.require(customer, pending.id, consistent=True)
    assert store.record_dispute_funds(chargeback, current, marker()) is DisputeWritten.RECORDED
    charged = store.outbox_event(outbox.event_id(chargeback))
    assert charged is not None and charged.detail_type == "payment.chargeback"

    # A race lost: the change computed from a stale read is not written, and neither is its event.
    other = payment(customer)
    store.add(other)
    late = apply(other, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS, by="gateway:x:3", now=BASE)
    store.transition(customer, other.id, PaymentStatus.CANCELLED, Cause.OPERATOR, "operator:o")
    assert store._write_change(late, None) is Written.LOST  # type: ignore[attr-defined]
    assert store.outbox_event(outbox.event_id(late.after)) is None
    stored = store.require(customer, other.id, consistent=True)
    cancelled = store.outbox_event(outbox.event_id(stored))
    assert cancelled is not None and cancelled.detail_type == "payment.cancelled"


# ---- saved cards (docs/saved-cards.md): what the account routes, the webhooks and the auto top-up rely on ----------


def _card(customer: str, card_id: str, state: str, at: str) -> Any:
    from payments.store.records import SavedCard

    return SavedCard(card_id, customer, f"pm_{card_id}", f"seti_{uuid.uuid4().hex}", state, "visa", "4242", 12, 2031,
                     False, at)  # fmt: skip


def test_the_stripe_customer_is_claimed_and_recorded_once(store: Store, customer: str) -> None:
    assert store.stripe_customer(customer) is None
    assert store.claim_stripe_customer(customer, "first@example.com") == (None, "first@example.com")
    assert store.claim_stripe_customer(customer, "second@example.com") == (None, "first@example.com")
    assert store.record_stripe_customer(customer, "cus_1") == "cus_1"
    assert store.record_stripe_customer(customer, "cus_2") == "cus_1"
    assert store.stripe_customer(customer) == "cus_1"
    assert store.claim_stripe_customer(customer, None) == ("cus_1", "first@example.com")


def test_saved_cards_default_settle_and_removal(store: Store, customer: str) -> None:
    store.claim_stripe_customer(customer, None)
    first = _card(customer, f"card_a{secrets.token_hex(4)}", "active", "2026-03-01T12:00:00.000Z")
    pending = _card(customer, f"card_b{secrets.token_hex(4)}", "pending", "2026-03-01T12:00:01.000Z")
    stored, created = store.put_saved_card(first, "stripe")
    assert created and stored.default and stored.state == "active"
    again, created = store.put_saved_card(first._replace(setup_intent=first.setup_intent), "stripe")
    assert not created and again.id == first.id
    assert store.put_saved_card(pending, "stripe")[1]
    assert [c.id for c in store.saved_cards(customer)] == [pending.id, first.id]  # newest first
    assert store.card_by_setup("stripe", pending.setup_intent) == store.saved_card(customer, pending.id)
    assert store.saved_card(f"{customer}-other", first.id) is None
    assert not store.set_default_card(customer, pending.id)  # not active yet
    assert store.settle_saved_card(customer, pending.id, "active", details={"last4": "3155"})
    assert not store.settle_saved_card(customer, pending.id, "failed")  # settled before
    settled = store.saved_card(customer, pending.id)
    assert settled is not None and (settled.state, settled.last4, settled.default) == ("active", "3155", False)
    assert store.set_default_card(customer, pending.id)
    assert not store.remove_saved_card(customer, pending.id, was_default=False, new_default=None)  # it is the default
    assert store.remove_saved_card(customer, pending.id, was_default=True, new_default=first.id)
    assert not store.remove_saved_card(customer, pending.id, was_default=False, new_default=None)  # removed before
    removed = store.saved_card(customer, pending.id)
    assert removed is not None and removed.state == "removed" and not store.card_detached(customer, pending.id)
    store.mark_card_detached(customer, pending.id)
    assert store.card_detached(customer, pending.id)
    assert [(c.id, c.default) for c in store.saved_cards(customer)] == [(first.id, True)]


@pytest.mark.parametrize(
    ("filters", "count"),
    [
        ({}, 7),
        ({"status": PaymentStatus.COMPLETED}, 3),
        ({"search": "plan"}, 4),
        ({"created_from": BASE + timedelta(minutes=2)}, 5),
    ],
    ids=["all", "completed", "searched", "from"],
)
def test_stream_rows_are_the_streamed_payments_as_export_rows(
    store: Store, customer: str, filters: dict[str, Any], count: int
) -> None:
    """The export's rows (DynamoDB: read from the items, no models) are `stream`'s payments, in its order, over
    several pages, with each filter an export can have."""
    from payments.store.export_rows import row_of_payment

    for i in range(7):
        status = PaymentStatus.COMPLETED if i % 2 else PaymentStatus.PENDING
        store.add(
            payment(
                customer,
                status,
                at=BASE + timedelta(minutes=i),
                description="Plan top-up" if i % 3 else "Voucher",
                reference=f"INV-{i}" if i % 2 else None,
                amount_minor=-150 * i if i % 4 == 0 else 1000 + i,
            )
        )
    rows = list(store.stream_rows(customer, page_size=2, **filters))
    expected = [row_of_payment(p) for p in store.stream(customer, page_size=3, **filters)]
    assert rows == expected
    assert len(rows) == count
    assert [r.id for r in rows] == sorted((r.id for r in rows), reverse=True)
