"""Low-balance alerts against the embedded AWS (docs/alerts.md): the table's real stream read by local/streams.py with
the template's filters, the real publisher judging each balance record. A balance oscillating around the threshold
from 8 threads makes exactly one `balance.low` per real crossing (counted from the balance images in stream order
with the hysteresis), each with its own event id; the whole stream delivered again adds none; every payment knows
the balance right after it. And the routes through their handler."""

from __future__ import annotations

import itertools
import json
import random
import threading
import uuid
from typing import Any

import pytest

from local.streams import StreamPoller, stream_filters
from local.template import load_template
from payments import alerts
from payments.alerts import AlertIn
from payments.models import PaymentMethod, PaymentStatus
from payments.outbox import BALANCE_LOW, OutboxEvent
from payments.store import PaymentStore
from payments.store.alert_items import balance_record_of
from payments.store.outbox_items import event_of_image
from tests.conftest import FakeContext, claims_for, http_event, invoke, load_function
from tests.integration.test_store_contract import payment

THRESHOLD, RESET, START = 1000, 1050, 1100  # 10.00 USD, 10.50 USD, 11.00 USD
THREADS, CHANGES = 8, 12


class Bus:
    """What the publisher puts on the bus, kept here: putting events on EventBridge is tests/integration/
    test_publish_events.py's (and would double this test's time)."""

    def __init__(self) -> None:
        self.events: list[OutboxEvent] = []

    def publish(self, events: list[OutboxEvent]) -> tuple[int, None]:
        self.events += events
        return len(events), None


@pytest.fixture
def bus() -> Bus:
    return Bus()


@pytest.fixture
def publisher(own_store: PaymentStore, bus: Bus, monkeypatch: pytest.MonkeyPatch) -> Any:
    module = load_function("publish_events")
    monkeypatch.setattr(module, "store", own_store)  # the records come from this test's own table
    monkeypatch.setattr(module, "publisher", bus)
    return module


def poller(store: PaymentStore, deliver: Any) -> StreamPoller:
    filters = stream_filters(load_template(), "PublishEventsFunction")
    return StreamPoller(store.table, deliver, filters=filters, log=lambda line: None)


def expected_crossings(records: list[Any], armed: bool) -> list[str]:
    """The sequence numbers of the balance records that cross the threshold downwards, armed, with the hysteresis."""
    fired = []
    for record in records:
        if armed and record.old_minor >= THRESHOLD > record.new_minor:
            fired.append(record.sequence)
            armed = False
        elif not armed and record.new_minor > RESET:
            armed = True
    return fired


def test_a_balance_oscillating_around_the_threshold_from_8_threads_alerts_once_per_real_crossing(
    own_store: PaymentStore, customer: str, publisher: Any, bus: Bus
) -> None:
    own_store.add(payment(customer, PaymentStatus.COMPLETED, amount_minor=START))
    saved = alerts.save(own_store, customer, AlertIn(threshold="10.00", reset_threshold="10.50", emails=[]))
    assert saved["state"] == "armed"
    amounts: dict[str, int] = {}
    problems: list[BaseException] = []

    def changes(seed: int) -> None:
        rng = random.Random(seed)
        first = -1 if seed % 2 else 1  # half the threads go down and up again, half up and down
        step = 0
        try:
            for i in range(CHANGES):  # pairs of 2.50 to 3.50 and back: the balance walks across both thresholds
                step = rng.randint(250, 350) if i % 2 == 0 else step
                minor = first * step if i % 2 == 0 else -first * step
                made = payment(
                    customer,
                    PaymentStatus.COMPLETED,
                    amount_minor=minor,
                    method=PaymentMethod.PURCHASE if minor < 0 else PaymentMethod.VOUCHER,
                    description="oscillating",
                )
                own_store.add(made)
                amounts[made.id] = minor
        except BaseException as exc:  # pragma: no cover - reported below
            problems.append(exc)

    threads = [threading.Thread(target=changes, args=(seed,)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []

    balance_records: list[Any] = []
    low_inserts: list[str] = []
    answers: list[Any] = []

    def deliver(event: dict[str, Any]) -> Any:
        for raw in event["Records"]:
            if (record := balance_record_of(raw)) is not None:
                balance_records.append(record)
            elif (
                raw["eventName"] == "INSERT"
                and (found := event_of_image(raw["dynamodb"]["NewImage"]))
                and found.detail_type == BALANCE_LOW
            ):
                low_inserts.append(found.event_id)
        answers.append(publisher.lambda_handler(event, FakeContext()))
        return answers[-1]

    poller(own_store, deliver).drain()

    mine = [r for r in balance_records if r.customer_id == customer]
    assert len(mine) == 1 + THREADS * CHANGES and all(a == {"batchItemFailures": []} for a in answers)
    assert [r.version for r in mine] == list(range(1, len(mine) + 1))  # one record per change, in order
    assert all(a.new_minor == b.old_minor for a, b in itertools.pairwise(mine))  # each image follows the last
    # The crossings the images make, from the state the save judged (armed at 11.00, after the first record).
    expected = expected_crossings(mine[1:], armed=True)
    print(f"{len(mine)} balance records, {len(expected)} crossings")
    assert len(expected) >= 5  # the oscillation really crossed, many times
    ids = [alerts.event_id(customer, "USD", sequence) for sequence in expected]
    assert low_inserts == ids and len(set(ids)) == len(ids)  # one balance.low per crossing, in order, distinct
    on_bus = [e.detail() for e in bus.events if e.detail_type == BALANCE_LOW]
    assert [d["event_id"] for d in on_bus] == ids  # and each was published, in stream order
    first = next(d for d in on_bus if d["event_id"] == ids[0])
    crossed = next(r for r in mine if r.sequence == expected[0])
    assert first["balance"] == {"currency": "USD", "amount": f"{crossed.new_minor / 100:.2f}"}
    assert (first["threshold"], first["reset_threshold"], first["payment_id"]) == ("10.00", "10.50", crossed.payment_id)

    # The whole stream again (as after a crash of every batch): nothing more is written.
    again: list[str] = []

    def deliver_again(event: dict[str, Any]) -> Any:
        for raw in event["Records"]:
            image = raw["dynamodb"].get("NewImage") or {}
            found = event_of_image(image) if raw["eventName"] == "INSERT" else None
            if found is not None and found.detail_type == BALANCE_LOW and found.customer_id == customer:
                again.append(found.event_id)
        return publisher.lambda_handler(event, FakeContext())

    poller(own_store, deliver_again).drain()
    assert again == ids  # the same outbox items read again, no new one

    # Every payment that moved the balance holds the balance right after it: a sequential replay in stream order.
    running = 0
    for record in mine:
        running += amounts.get(record.payment_id, START)
        assert record.new_minor == running
    for record in random.Random(7).sample(mine, 20):
        stored = own_store.require(customer, record.payment_id, consistent=True)
        assert stored.balance_after_minor == record.new_minor
        assert stored.to_api().balance_after == f"{record.new_minor / 100:.2f}"


# ---- the routes -------------------------------------------------------------------------------------------------


@pytest.fixture
def account(aws: dict[str, str]) -> Any:
    return load_function("account")


def put(module: Any, customer: str, body: Any, group: str = "finance") -> tuple[int, Any]:
    event = http_event("PUT", "/alerts/low-balance", claims=claims_for(customer, group), body=json.dumps(body))
    return invoke(module, event)


def get(module: Any, customer: str, group: str = "support") -> tuple[int, Any]:
    return invoke(module, http_event("GET", "/alerts/low-balance", claims=claims_for(customer, group)))


def test_the_alert_routes_each_customer_their_own(account: Any, customer: str) -> None:
    store = PaymentStore()
    store.add(payment(customer, PaymentStatus.COMPLETED, amount_minor=500))
    other = f"other-{uuid.uuid4().hex[:8]}"
    empty = {"currency": "USD", "threshold": None, "reset_threshold": None, "emails": []}
    assert get(account, customer) == (200, empty)

    status, saved = put(account, customer, {"threshold": "10.00", "reset_threshold": "20.00", "emails": ["a@b.io"]})
    assert status == 200 and saved == {
        "currency": "USD",
        "threshold": "10.00",
        "reset_threshold": "20.00",
        "emails": ["a@b.io"],
        "state": "below",  # 5.00 when saved: not alerted until it rises above 20.00 and falls again
    }
    assert get(account, customer, "admin") == (200, saved)
    assert get(account, other) == (200, empty)  # another customer sees only their own (none)
    status, refused = put(account, customer, {"threshold": "1.00"}, "support")
    assert status == 403 and "admin, finance" in refused["message"]
    status, bad = put(account, customer, {"threshold": "1.00", "emails": ["nope"]})
    assert status == 422 and bad["field"] == "emails.0"
    assert get(account, customer)[1] == saved  # nothing stored by the refused ones
    assert put(account, customer, {"threshold": "4.99"})[1]["state"] == "armed"
    assert put(account, customer, {"threshold": None}) == (200, empty)
    assert get(account, customer) == (200, empty) and store.low_balance_alert(customer) is None
