"""Auto top-up against the embedded AWS (docs/auto-topup.md): the table's real stream read with the template's
filters, the real publisher judging each balance record, the events the publisher puts routed by the template's
EventBridge rules to the autotopup function's handler as SQS messages, and a counting fake Stripe charger keyed
by idempotency key (Stripe's own replay). 50 concurrent purchases across the threshold make exactly one
off-session charge; a purchase storm across 20 customers one per crossing each, none beyond max_per_day; a crash
after Stripe made the PaymentIntent and before it was recorded makes one PaymentIntent; each outcome end to end."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local.streams import StreamPoller, matches, stream_filters
from local.template import load_template
from payments import autotopup, outbox
from payments.gateways.base import CreateRequest, CreateResult, GatewayUnavailable
from payments.identity import Caller, Group
from payments.models import PaymentMethod, PaymentStatus
from payments.outbox import OutboxEvent
from payments.status import Cause
from payments.store import PaymentStore
from payments.store.records import SavedCard
from tests.conftest import FakeContext, claims_for, http_event, invoke, load_function
from tests.integration.test_store_contract import payment

MOMENT = "2026-12-02T10:00:00.000Z"


class FakeCards:
    """The saved cards' store methods (payments.autotopup.Cards): after the merge, the store's own."""

    def __init__(self) -> None:
        self.removed: set[str] = set()

    def saved_card(self, customer_id: str, card_id: str) -> SavedCard | None:
        state = "removed" if card_id in self.removed else "active"
        return SavedCard(card_id, customer_id, "pm_card_visa", "seti_1", state, "visa", "4242", 12, 2030, True, MOMENT)

    def stripe_customer(self, customer_id: str) -> str | None:
        return f"cus_{customer_id}"


class FakeStripe:
    """Stripe's PaymentIntents as far as an off-session charge goes: one per idempotency key (a repeat answers the
    first), counting every call. `answers` per customer: succeeded, authentication_required or declined. `crash`:
    the next call makes the PaymentIntent, then raises (as a timeout after Stripe acted)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.intents: dict[str, CreateResult] = {}
        self.calls = 0
        self.answers: dict[str, str] = {}
        self.crash = False
        self.down = False  # Stripe unreachable: nothing made

    def __call__(self, request: CreateRequest, stripe_customer: str) -> CreateResult:
        assert stripe_customer == f"cus_{request.customer_id}" and request.payment_method == "pm_card_visa"
        with self.lock:
            self.calls += 1
            if self.down:
                raise GatewayUnavailable("stripe is unreachable")
            if request.idempotency_key not in self.intents:
                ref = f"pi_{uuid.uuid4().hex[:24]}"
                kind = self.answers.get(request.customer_id, "succeeded")
                self.intents[request.idempotency_key] = {
                    "succeeded": CreateResult(ref, PaymentStatus.COMPLETED, card_brand="visa", card_last4="4242"),
                    "authentication_required": CreateResult(
                        ref,
                        PaymentStatus.PENDING,
                        next_action={"type": "stripe_sdk", "client_secret": f"{ref}_secret_x"},
                        failure_reason="authentication_required",
                        storable_next_action=False,
                    ),
                    "declined": CreateResult(
                        ref, PaymentStatus.CANCELLED, failure_reason="card_declined: generic_decline"
                    ),
                }[kind]
            if self.crash:
                self.crash = False
                raise TimeoutError("the answer was lost")
            return self.intents[request.idempotency_key]


class Bus:
    def __init__(self) -> None:
        self.events: list[OutboxEvent] = []

    def publish(self, events: list[OutboxEvent]) -> tuple[int, None]:
        self.events += events
        return len(events), None


class World:
    """The table, its stream through the publisher, the bus's events routed to the autotopup function's queue."""

    def __init__(self, store: PaymentStore, publisher: Any, function: Any, bus: Bus, stripe: FakeStripe) -> None:
        self.store, self.publisher, self.function, self.bus, self.stripe = store, publisher, function, bus, stripe
        template = load_template()
        self.poller = StreamPoller(
            store.table,
            lambda event: publisher.lambda_handler(event, FakeContext()),
            filters=stream_filters(template, "PublishEventsFunction"),
            log=lambda line: None,
        )
        resources = template["Resources"]
        self.rules = [
            resources[name]["Properties"]["EventPattern"] for name in ("AutoTopupChargeRule", "AutoTopupOutcomeRule")
        ]
        self.delivered = 0  # bus events already routed
        self.answers: list[Any] = []

    def queue_messages(self) -> list[dict[str, Any]]:
        """The bus's new events that the template's rules put on the autotopup queue, as SQS records."""
        fresh, self.delivered = self.bus.events[self.delivered :], len(self.bus.events)
        messages = []
        for event in fresh:
            envelope = {"source": outbox.SOURCE, "detail-type": event.detail_type, "detail": event.detail()}
            if any(matches(rule, envelope) for rule in self.rules):
                messages.append(envelope)
        return messages

    def run(self, *, rounds: int = 6, duplicate: bool = False) -> None:
        """Stream -> publisher -> bus -> queue -> function, until nothing moves. `duplicate`: each message twice."""
        for _ in range(rounds):
            self.poller.drain()
            messages = self.queue_messages()
            if not messages:
                return
            if duplicate:
                messages = messages + messages
            for start in range(0, len(messages), 5):  # the mapping's BatchSize
                self.answers.append(self.function.lambda_handler(sqs_event(messages[start : start + 5]), FakeContext()))


def sqs_event(envelopes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": uuid.uuid4().hex,
                "receiptHandle": "r",
                "body": json.dumps(envelope),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:autotopup",
                "awsRegion": "us-east-1",
            }
            for envelope in envelopes
        ]
    }


@pytest.fixture
def world(own_store: PaymentStore, monkeypatch: pytest.MonkeyPatch) -> World:
    bus, stripe, cards = Bus(), FakeStripe(), FakeCards()
    publisher = load_function("publish_events")
    monkeypatch.setattr(publisher, "store", own_store)
    monkeypatch.setattr(publisher, "publisher", bus)
    function = load_function("autotopup")
    monkeypatch.setattr(function, "store", own_store)
    monkeypatch.setattr(function, "charger", stripe)
    monkeypatch.setattr(function, "cards", lambda: cards)
    made = World(own_store, publisher, function, bus, stripe)
    made.cards = cards  # type: ignore[attr-defined]
    return made


def caller(customer: str) -> Caller:
    return Caller(sub=f"sub-{customer}", email=f"{customer}@example.com", customer_id=customer,
                  groups=frozenset({Group.ADMIN}))  # fmt: skip


def set_up(world: World, customer: str, *, start: int, threshold: str, amount: str, max_per_day: int = 3) -> None:
    world.store.add(payment(customer, PaymentStatus.COMPLETED, amount_minor=start, method=PaymentMethod.VOUCHER))
    body = autotopup.AutoTopupIn(
        enabled=True, payment_method_id="card_1", threshold=threshold, amount=amount, max_per_day=max_per_day
    )
    saved = autotopup.save(world.store, FakeCards(), customer, body, caller(customer))
    assert saved["state"] == "active"


def auto_payments(store: PaymentStore, customer: str) -> list[Any]:
    return [p for p in store.stream(customer) if p.auto_topup]


def purchase(store: PaymentStore, customer: str, minor: int) -> None:
    """A purchase of `minor` (negative: money back, as a voucher)."""
    method = PaymentMethod.PURCHASE if minor > 0 else PaymentMethod.VOUCHER
    store.add(payment(customer, PaymentStatus.COMPLETED, amount_minor=-minor, method=method))


def balance(store: PaymentStore, customer: str) -> int:
    return next((m.minor for m in store.balances(customer) if m.currency == "USD"), 0)


def test_50_concurrent_operator_charges_across_the_threshold_make_exactly_one_off_session_charge(
    world: World, customer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_up(world, customer, start=10000, threshold="50.00", amount="25.00")
    admin = load_function("admin")
    monkeypatch.setattr(admin, "store", world.store)

    def charge(i: int) -> int:
        event = http_event(
            "POST",
            f"/admin/customers/{customer}/charges",
            route="/admin/customers/<customer_id>/charges",
            path_params={"customer_id": customer},
            claims=claims_for(None, "operator"),
            headers={"Idempotency-Key": f"storm-{customer}-{i}"},
            body=json.dumps({"amount": "1.50", "currency": "USD", "description": f"purchase {i}"}),
        )
        return invoke(admin, event)[0]

    with ThreadPoolExecutor(max_workers=10) as pool:
        assert set(pool.map(charge, range(50))) == {201}
    world.run(duplicate=True)  # every message delivered twice: at least once

    [made] = auto_payments(world.store, customer)
    assert made.status is PaymentStatus.COMPLETED and made.amount_minor == 2500 and made.card_last4 == "4242"
    assert world.stripe.calls == 1 and len(world.stripe.intents) == 1  # the duplicate found it settled
    held = world.store.auto_topup(customer)
    assert held is not None and (held.state, held.failures, held.in_flight, held.day_count) == ("active", 0, None, 1)
    assert balance(world.store, customer) == 10000 - 7500 + 2500
    succeeded = {e.event_id for e in world.bus.events if e.detail_type == outbox.AUTOTOPUP_SUCCEEDED}
    assert len(succeeded) == 1
    assert all(a == {"batchItemFailures": []} for a in world.answers)


def test_a_purchase_storm_across_20_customers_makes_one_charge_per_crossing_and_none_beyond_max_per_day(
    world: World,
) -> None:
    customers = [f"cust-{uuid.uuid4().hex[:10]}" for _ in range(20)]
    for customer in customers:  # 12.00, top up 10.00 below 10.00, at most 1 a day
        set_up(world, customer, start=1200, threshold="10.00", amount="10.00", max_per_day=1)

    def storm(customer: str) -> None:
        for _ in range(3):  # 3 x 4.00, concurrently across customers: below 10.00 at the first
            purchase(world.store, customer, 400)

    for _ in range(2):  # each wave takes 12.00 to 0.00: one crossing each
        with ThreadPoolExecutor(max_workers=10) as pool:
            list(pool.map(storm, customers))
        world.run()
        for customer in customers:  # back to 12.00 (after the top-up, if one was made)
            purchase(world.store, customer, balance(world.store, customer) - 1200)

    for customer in customers:
        [made] = auto_payments(world.store, customer)  # the second wave's crossing: beyond max_per_day
        assert made.status is PaymentStatus.COMPLETED
        held = world.store.auto_topup(customer)
        assert held is not None and (held.day_count, held.in_flight, held.state) == (1, None, "active")
    assert len(world.stripe.intents) == 20


def test_a_crash_after_stripe_made_the_payment_intent_and_the_retry_make_one(world: World, customer: str) -> None:
    set_up(world, customer, start=1500, threshold="10.00", amount="20.00")
    purchase(world.store, customer, 1000)
    world.poller.drain()
    [charge] = world.queue_messages()
    world.stripe.crash = True
    first = world.function.lambda_handler(sqs_event([charge]), FakeContext())
    assert len(first["batchItemFailures"]) == 1  # delivered again by SQS
    [pending] = auto_payments(world.store, customer)
    assert pending.status is PaymentStatus.PENDING and pending.gateway_ref is None
    again = world.function.lambda_handler(sqs_event([charge]), FakeContext())
    assert again == {"batchItemFailures": []}
    world.run()
    [made] = auto_payments(world.store, customer)
    assert made.status is PaymentStatus.COMPLETED and made.gateway_ref == world.stripe.intents[made.id].gateway_ref
    assert (world.stripe.calls, len(world.stripe.intents)) == (2, 1)


def test_authentication_then_completed_on_the_page_and_declines_until_disabled(world: World, customer: str) -> None:
    set_up(world, customer, start=1500, threshold="10.00", amount="20.00", max_per_day=10)
    world.stripe.answers[customer] = "authentication_required"
    purchase(world.store, customer, 1000)
    world.run()
    [waiting] = auto_payments(world.store, customer)
    held = world.store.auto_topup(customer)
    assert waiting.status is PaymentStatus.PENDING and held is not None and held.state == "requires_action"
    kinds = [e.detail_type for e in world.bus.events]
    assert kinds.count(outbox.AUTOTOPUP_REQUIRES_ACTION) == 1
    purchase(world.store, customer, -1000)  # back above it, and across again: nothing while it waits
    purchase(world.store, customer, 1000)
    world.run()
    assert len(auto_payments(world.store, customer)) == 1
    # The customer confirms on the page: Stripe's webhook completes it.
    world.store.transition(customer, waiting.id, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS, "gateway:stripe")
    world.run()
    held = world.store.auto_topup(customer)
    assert held is not None and (held.state, held.failures, held.in_flight) == ("active", 0, None)

    world.stripe.answers[customer] = "declined"
    for _ in range(3):  # balance 25.00: each 16.00 purchase crosses; the declined top-up changes nothing
        purchase(world.store, customer, 1600)
        world.run()
        purchase(world.store, customer, -1600)  # money back above it
        world.run()
    held = world.store.auto_topup(customer)
    assert held is not None and (held.state, held.failures, held.reason) == ("disabled", 3, "declined")
    failed = [e.detail() for e in world.bus.events if e.detail_type == outbox.AUTOTOPUP_FAILED]
    assert [d["disabled"] for d in failed] == [False, False, True]
    cancelled = [p for p in auto_payments(world.store, customer) if p.status is PaymentStatus.CANCELLED]
    assert len(cancelled) == 3 and all(p.failure_reason == "card_declined: generic_decline" for p in cancelled)
    purchase(world.store, customer, 1600)
    world.run()
    assert len(auto_payments(world.store, customer)) == 4  # none while disabled


# ---- the routes -------------------------------------------------------------------------------------------------


def test_the_routes(aws: dict[str, str], customer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    account = load_function("account")
    monkeypatch.setattr(account, "_cards", lambda: FakeCards())
    store = PaymentStore()
    body = {"enabled": True, "payment_method_id": "card_1", "threshold": "10.00", "amount": "25.00"}

    def call(method: str, group: str, payload: Any = None) -> tuple[int, Any]:
        claims = claims_for(customer, group)
        return invoke(
            account, http_event(method, "/auto-topup", claims=claims, body=json.dumps(payload) if payload else None)
        )

    status, empty = call("GET", "support")
    assert status == 200 and (empty["enabled"], empty["state"]) == (False, "disabled")
    assert call("PUT", "support", body)[0] == 403
    status, bad = call("PUT", "finance", {**body, "amount": "-1"})
    assert status == 422 and bad["field"] == "amount"
    status, saved = call("PUT", "finance", body)
    assert status == 200 and saved["state"] == "active" and saved["mandate_id"].startswith("mdt_")
    mandate = store.mandate(customer, saved["mandate_id"])
    assert mandate is not None and (mandate.sub, mandate.email) == ("user-1", "user@example.com")
    assert call("GET", "support") == (200, saved)

    admin = load_function("admin")
    path = f"/admin/customers/{customer}/auto-topup"
    operator = claims_for(None, "operator", sub="op-1")
    status, seen = invoke(admin, http_event("GET", path, route="/admin/customers/<customer_id>/auto-topup",
                                            path_params={"customer_id": customer}, claims=operator))  # fmt: skip
    assert status == 200 and seen["mandate"]["accepted_by"] == "user-1"
    status, off = invoke(admin, http_event("POST", f"{path}/disable",
                                           route="/admin/customers/<customer_id>/auto-topup/disable",
                                           path_params={"customer_id": customer}, claims=operator))  # fmt: skip
    assert status == 200 and (off["state"], off["reason"]) == ("disabled", "operator")
    held = store.auto_topup(customer)
    assert held is not None and held.changed_by == "operator:op-1"


# ---- when the bank asks: POST /auto-topup/authenticate -------------------------------------------------------------


class FakeConfirmer:
    """Stripe's on-session confirmation of the held PaymentIntent: `answer` is what it says next."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []
        self.answer: CreateResult | Exception = CreateResult("", PaymentStatus.PENDING)

    def __call__(self, intent: str, payment_method: str, return_url: str, key: str) -> CreateResult:
        self.calls.append((intent, payment_method, return_url, key))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_the_customer_confirms_a_held_top_up_on_session_over_http(
    world: World, customer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from payments.config import site_settings

    account, confirmer = load_function("account"), FakeConfirmer()
    monkeypatch.setattr(account, "store", world.store)
    monkeypatch.setattr(account, "_cards", lambda: world.cards)  # type: ignore[attr-defined]
    monkeypatch.setattr(account, "_confirmer", lambda: confirmer)

    def confirm(group: str = "finance") -> tuple[int, Any]:
        return invoke(account, http_event("POST", "/auto-topup/authenticate", claims=claims_for(customer, group)))

    set_up(world, customer, start=1500, threshold="10.00", amount="20.00", max_per_day=10)
    status, nothing = confirm()
    assert (status, nothing["message"]) == (409, "no automatic top-up is waiting for you to confirm it")
    assert confirmer.calls == []
    world.stripe.answers[customer] = "authentication_required"
    purchase(world.store, customer, 1000)
    world.run()
    [waiting] = auto_payments(world.store, customer)
    assert confirm("support")[0] == 403

    # Stripe is down: a 503 (as every gateway outage) that leaves the top-up waiting.
    confirmer.answer = GatewayUnavailable("stripe is down")
    status, down = confirm()
    assert status == 503 and "the top-up still waits" in down["message"]
    assert world.store.require(customer, waiting.id).status is PaymentStatus.PENDING

    # The bank asks for 3-D Secure: the page gets the client secret (read from Stripe, never stored).
    secret = f"{waiting.gateway_ref}_secret_on"
    confirmer.answer = CreateResult(waiting.gateway_ref or "", PaymentStatus.PENDING, storable_next_action=False,
                                    next_action={"type": "stripe_sdk", "client_secret": secret})  # fmt: skip
    status, asked = confirm()
    assert status == 200 and asked["next_action"] == {"type": "stripe_sdk", "client_secret": secret}
    assert (asked["payment"]["id"], asked["payment"]["status"]) == (waiting.id, "pending")
    assert confirmer.calls[-1] == (waiting.gateway_ref, "pm_card_visa", site_settings().portal_return_url,
                                   f"{waiting.id}:confirm")  # fmt: skip
    stored = world.store.require(customer, waiting.id)
    assert secret not in json.dumps(stored.to_api().model_dump(mode="json")) and stored.next_action is None
    # Stripe's webhook completes it (3-D Secure passed): the auto top-up is active again, nothing in flight.
    world.store.transition(customer, waiting.id, PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS, "gateway:stripe")
    world.run()
    held = world.store.auto_topup(customer)
    assert held is not None and (held.state, held.failures, held.in_flight) == ("active", 0, None)
    assert confirm()[0] == 409  # nothing waits any more
    assert balance(world.store, customer) == 1500 - 1000 + 2000

    # Next time the bank declines on-session: cancelled with the reason, counted as a failure.
    purchase(world.store, customer, 1600)
    world.run()
    second = next(p for p in auto_payments(world.store, customer) if p.status is PaymentStatus.PENDING)
    confirmer.answer = CreateResult(second.gateway_ref or "", PaymentStatus.CANCELLED,
                                    failure_reason="card_declined: insufficient_funds")  # fmt: skip
    status, declined = confirm()
    assert status == 200 and declined["next_action"] is None
    assert (declined["payment"]["status"], declined["payment"]["failure_reason"]) == (
        "cancelled", "card_declined: insufficient_funds"
    )  # fmt: skip
    world.run()
    held = world.store.auto_topup(customer)
    assert held is not None and (held.state, held.failures, held.in_flight) == ("active", 1, None)


# ---- a charge whose message never got through: reconciliation charges it again ----------------------------------


def test_a_charge_stuck_in_flight_after_its_queue_gave_up_is_charged_again_once_by_reconciliation(
    world: World, customer: str
) -> None:
    from datetime import timedelta

    from payments.models import utcnow

    set_up(world, customer, start=1500, threshold="10.00", amount="20.00", max_per_day=10)
    world.stripe.down = True  # every delivery of the charge fails: the message ends in the dead-letter queue
    purchase(world.store, customer, 1000)
    world.run()
    assert any(answer["batchItemFailures"] for answer in world.answers)
    [stuck] = auto_payments(world.store, customer)
    assert (stuck.status, stuck.gateway_ref) == (PaymentStatus.PENDING, None)
    held = world.store.auto_topup(customer)
    assert held is not None and held.in_flight == stuck.id

    # Too soon: reconciliation leaves it to the queue's own retries.
    half = timedelta(minutes=30)
    assert autotopup.redrive(world.store, world.cards, now=utcnow(), ask_after=half, charger=world.stripe) == (  # type: ignore[attr-defined]
        autotopup.RedriveReport()
    )
    # Stripe is still down at the next run: counted as an error, still pending, asked again later.
    later = utcnow() + timedelta(minutes=31)
    report = autotopup.redrive(world.store, world.cards, now=later, ask_after=half, charger=world.stripe)  # type: ignore[attr-defined]
    assert report == autotopup.RedriveReport(errors=1)
    world.stripe.down = False
    report = autotopup.redrive(world.store, world.cards, now=later, ask_after=half, charger=world.stripe)  # type: ignore[attr-defined]
    assert report == autotopup.RedriveReport(redriven=1)
    world.run()
    assert world.store.require(customer, stuck.id).status is PaymentStatus.COMPLETED
    held = world.store.auto_topup(customer)
    assert held is not None and (held.state, held.in_flight, held.failures) == ("active", None, 0)
    assert len(world.stripe.intents) == 1 and balance(world.store, customer) == 1500 - 1000 + 2000
    again = autotopup.redrive(world.store, world.cards, now=later, ask_after=half, charger=world.stripe)  # type: ignore[attr-defined]
    assert again == autotopup.RedriveReport()


def test_a_charge_never_recorded_past_stripes_key_window_is_left_pending_never_timed_out(
    world: World, customer: str
) -> None:
    from datetime import timedelta

    from payments import settlement
    from payments.models import utcnow

    set_up(world, customer, start=1500, threshold="10.00", amount="20.00", max_per_day=10)
    world.stripe.down = True
    purchase(world.store, customer, 1000)
    world.run()
    [stuck] = auto_payments(world.store, customer)
    calls = world.stripe.calls
    world.stripe.down = False

    days = utcnow() + timedelta(days=4)
    report = autotopup.redrive(
        world.store, world.cards, now=days, ask_after=timedelta(minutes=30), charger=world.stripe
    )  # type: ignore[attr-defined]
    assert report == autotopup.RedriveReport(left=1) and world.stripe.calls == calls  # a new charge could be a second
    # Nor does reconciliation time it out (the card may have been charged): an operator settles it.
    settlement.reconcile(world.store, {"stripe": object()}, now=days, ask_after=timedelta(minutes=30),  # type: ignore[dict-item]
                         give_up_after=timedelta(hours=72))  # fmt: skip
    assert world.store.require(customer, stuck.id).status is PaymentStatus.PENDING
    held = world.store.auto_topup(customer)
    assert held is not None and held.in_flight == stuck.id
