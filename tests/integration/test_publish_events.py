"""The outbox's publisher (functions/publish_events, docs/events.md) against the embedded AWS: the table's real
stream read by local/streams.py as Lambda's event source mapping would, the events put on the EventBridge bus and
seen through a rule targeting an SQS queue. Partial PutEvents failures and a crash mid-batch: every event is
published at least once, with its one `event_id`, none skipped."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import boto3
import pytest

from local.streams import BusCapture, StreamPoller, stream_filters
from local.template import load_template
from payments import outbox
from payments.models import PaymentStatus
from payments.outbox import OutboxEvent
from payments.status import Cause
from payments.store import PaymentStore
from payments.store.outbox_items import outbox_item
from tests.conftest import FakeContext, load_function
from tests.integration.test_store_contract import payment


@pytest.fixture
def publisher() -> Any:
    return load_function("publish_events")


@pytest.fixture
def capture(aws: dict[str, str]) -> BusCapture:
    return BusCapture(aws["EventBus"], f"capture-{uuid.uuid4().hex[:8]}")


def poller(store: PaymentStore, deliver: Any) -> StreamPoller:
    filters = stream_filters(load_template(), "PublishEventsFunction")
    return StreamPoller(store.table, deliver, filters=filters, log=lambda line: None)


def write_changes(store: PaymentStore, customer: str, completed: int = 3) -> list[str]:
    """Payments written completed, one completed later, one cancelled; and the event ids they must publish."""
    ids = []
    for _ in range(completed):
        made = payment(customer, PaymentStatus.COMPLETED)
        store.add(made)
        ids.append(outbox.event_id(made))
    for target, cause in ((PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS), (PaymentStatus.CANCELLED, Cause.OPERATOR)):
        pending = payment(customer)
        store.add(pending)  # pending: no event
        done = store.transition(customer, pending.id, target, cause, "operator:o")
        ids.append(outbox.event_id(done.payment))
    return ids


def outbox_places(records: list[dict[str, Any]]) -> list[int]:
    """Where the outbox items are in a delivered batch: the balance item's records come too (docs/alerts.md)."""
    return [
        i for i, r in enumerate(records) if (r["dynamodb"].get("NewImage") or {}).get("type") == {"S": "outbox-event"}
    ]


def published(capture: BusCapture) -> list[dict[str, Any]]:
    return [event["detail"] for event in capture.outbox()["events"]]


class Faulty:
    """The real EventBridge client, with PutEvents failing as told on chosen calls."""

    def __init__(self, real: Any, fail: dict[int, str]) -> None:
        self.real, self.fail, self.calls = real, fail, 0

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        how = self.fail.get(self.calls)
        if how == "refuse-third":  # the third entry refused, the others accepted (as PutEvents may answer)
            accepted = self.real.put_events(Entries=Entries[:2] + Entries[3:])["Entries"]
            refused = {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}
            return {"FailedEntryCount": 1, "Entries": [*accepted[:2], refused, *accepted[2:]]}
        answer = self.real.put_events(Entries=Entries)
        if how == "crash-after":  # the process dies after its events reached the bus, before it answers
            raise RuntimeError("killed mid-batch")
        return dict(answer)


def test_a_batch_of_stream_records_puts_each_outbox_event_on_the_bus_once(
    own_store: PaymentStore, customer: str, publisher: Any, capture: BusCapture
) -> None:
    expected = write_changes(own_store, customer)
    answers: list[Any] = []
    records: list[dict[str, Any]] = []

    def deliver(event: dict[str, Any]) -> Any:
        records.extend(event["Records"])
        answers.append(publisher.lambda_handler(event, FakeContext()))
        return answers[-1]

    delivered = poller(own_store, deliver).drain()

    details = published(capture)
    assert answers == [{"batchItemFailures": []}]
    # The filter kept the outbox items and the balance item's changes: 4 (three written completed, one completed),
    # and moto's own record of the item's creation, its keys alone, before the first (DynamoDB writes no such record).
    balance = [r for r in records if r["dynamodb"]["Keys"]["SK"] == {"S": "BALANCE"}]
    assert len(outbox_places(records)) == len(expected) and len(balance) == delivered - len(expected)
    assert sum(1 for r in balance if "last_payment" in r["dynamodb"]["NewImage"]) == 4
    assert [d["event_id"] for d in details] == expected  # in stream order
    kinds = Counter(e["detail-type"] for e in capture.outbox()["events"])
    assert kinds == {"payment.completed": 4, "payment.cancelled": 1}
    first = own_store.require(customer, details[0]["payment"]["id"], consistent=True)
    assert details[0] == {
        "event_id": expected[0],
        "customer_id": customer,
        "occurred_at": details[0]["occurred_at"],
        "payment": first.to_api().model_dump(mode="json"),
    }


def test_a_refused_entry_is_reported_with_everything_after_it_and_delivered_again(
    own_store: PaymentStore, customer: str, publisher: Any, capture: BusCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = write_changes(own_store, customer)
    faulty = Faulty(boto3.client("events"), {1: "refuse-third"})
    monkeypatch.setattr(publisher.publisher, "_client", faulty)
    batches: list[tuple[list[str], Any]] = []
    thirds: list[int] = []

    def deliver(event: dict[str, Any]) -> Any:
        answer = publisher.lambda_handler(event, FakeContext())
        batches.append(([r["dynamodb"]["SequenceNumber"] for r in event["Records"]], answer))
        thirds.append(outbox_places(event["Records"])[2])
        return answer

    poller(own_store, deliver).drain()

    (first_batch, first_answer), (second_batch, second_answer) = batches
    failed = [f["itemIdentifier"] for f in first_answer["batchItemFailures"]]
    third = thirds[0]  # the third outbox item: the refused entry
    assert failed == first_batch[third:]  # the refused record and nothing after it reported done
    assert second_batch == first_batch[third:] and second_answer == {"batchItemFailures": []}
    ids = [d["event_id"] for d in published(capture)]
    assert set(ids) == set(expected) and len(ids) == len(expected) + 2  # entries 4 and 5 went out twice


def test_a_publisher_killed_mid_batch_is_retried_by_the_stream_and_skips_nothing(
    own_store: PaymentStore, customer: str, publisher: Any, capture: BusCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = write_changes(own_store, customer, completed=20)  # 22 events: three PutEvents per delivery
    faulty = Faulty(boto3.client("events"), {2: "crash-after"})  # dies after 20 events reached the bus
    monkeypatch.setattr(publisher.publisher, "_client", faulty)
    crashes: list[str] = []

    def deliver(event: dict[str, Any]) -> Any:
        try:
            return publisher.lambda_handler(event, FakeContext())
        except RuntimeError as exc:
            crashes.append(str(exc))
            raise

    stream = poller(own_store, deliver)
    stream.drain()

    ids = [d["event_id"] for d in published(capture)]
    assert crashes == ["killed mid-batch"] and stream.failures == 1
    assert set(ids) == set(expected)  # every event published, none skipped
    assert Counter(ids) == Counter({**dict.fromkeys(expected, 1), **dict.fromkeys(expected[:20], 2)})
    assert faulty.calls == 5  # the killed delivery died in its second, then three for the whole batch again


def test_an_unreadable_outbox_item_stops_the_batch_there_and_other_items_are_ignored(
    publisher: Any, capture: BusCapture
) -> None:
    def record(sequence: str, image: dict[str, Any]) -> dict[str, Any]:
        return {
            "eventID": sequence,
            "eventName": "INSERT",
            "eventSource": "aws:dynamodb",
            "dynamodb": {
                "Keys": {},
                "NewImage": image,
                "SequenceNumber": sequence,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            },
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
        }

    first, last = (
        OutboxEvent(f"evt_{uuid.uuid4().hex}", "payment.completed", "c", "pay_1", "2026-03-01T12:00:00.000Z", "{}")
        for _ in range(2)
    )
    batch = [
        record("100", {"type": {"S": "payment"}}),  # not an outbox item: nothing to publish
        record("101", outbox_item(first, 1_900_000_000)),
        record("102", {"type": {"S": "outbox-event"}, "event_id": {"S": "evt_broken"}}),
        record("103", outbox_item(last, 1_900_000_000)),
    ]

    answer = publisher.lambda_handler({"Records": batch}, FakeContext())

    assert answer == {"batchItemFailures": [{"itemIdentifier": "102"}, {"itemIdentifier": "103"}]}
    assert [d["event_id"] for d in published(capture)] == [first.event_id]
