"""Outbound webhooks (docs/webhooks-outbound.md) against the embedded AWS: endpoints registered through their
routes (the secret encrypted with the template's KMS key), events put on the service's bus reaching the
delivery queue through the template's rule, the delivery function fed by local/queues.py as Lambda's event
source mapping would feed it, POSTing to receivers on 127.0.0.1. Time is compressed: no backoff wait (base 0),
and the 24-hour window crossed by a clock the receiver moves on."""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from local.queues import SqsPoller
from payments.events import EventPublisher
from payments.outbox import OutboxEvent
from payments.store import PaymentStore
from tests.conftest import ROOT, FakeContext, aws_client, claims_for, http_event, invoke, load_function
from tests.webhook_receiver import receiver

OPERATOR = claims_for(None, "operator", sub="op-1")


@pytest.fixture(scope="module")
def functions(aws: dict[str, str]) -> tuple[Any, Any]:
    """The two functions, loaded with the template's queue, dead-letter queue and KMS key and loopback receivers
    allowed (the `aws` fixture sets them, as `make dev` does)."""
    assert os.environ["WEBHOOK_KEY_ID"] == aws["WebhookSecretsKey"]
    return load_function("webhook_endpoints"), load_function("deliver_webhooks")


@pytest.fixture
def routes(functions: tuple[Any, Any]) -> Any:
    return functions[0]


@pytest.fixture
def deliver(functions: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The delivery function, its retries undelayed and its request timeout short; the dead-letter queue emptied
    first (what other tests left on the delivery queue is delivered harmlessly: no endpoint of theirs is left)."""
    module = functions[1]
    fast = module.deliverer.settings.model_copy(update={"retry_base_seconds": 0, "timeout_seconds": 0.4})
    monkeypatch.setattr(module.deliverer, "settings", fast)
    sqs = aws_client("sqs")
    while messages := sqs.receive_message(QueueUrl=fast.dlq_url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            sqs.delete_message(QueueUrl=fast.dlq_url, ReceiptHandle=message["ReceiptHandle"])
    return module


def call(routes: Any, method: str, path: str, body: Any = None, *, claims: dict | None = None) -> tuple[int, Any]:
    route = re.sub(r"/whe_[0-9a-f]+", "/{id}", path)
    params = {"id": path.split("/")[3]} if route != path else None
    event = http_event(
        method,
        path,
        route=route,
        claims=claims or OPERATOR,
        body=json.dumps(body) if body is not None else None,
        path_params=params,
    )
    return invoke(routes, event)


def register(routes: Any, url: str, customer: str, events: list[str] | None = None) -> dict[str, Any]:
    status, created = call(
        routes, "POST", "/admin/webhook-endpoints", {"url": url, "events": events or ["*"], "customer_id": customer}
    )
    assert status == 201, created
    return created


def publish(customer: str, kind: str = "payment.completed") -> OutboxEvent:
    """An event on the service's bus, as the outbox's publisher puts it."""
    payment_id = f"pay_{uuid.uuid4().hex[:20]}"
    body = json.dumps({"id": payment_id, "status": "completed", "amount": "10.00", "currency": "EUR"})
    event = OutboxEvent(f"evt_{uuid.uuid4().hex}", kind, customer, payment_id, "2026-03-01T12:00:00.000Z", body)
    assert EventPublisher(os.environ["EVENT_BUS_NAME"], aws_client("events")).publish([event]) == (1, None)
    return event


def drain(deliver: Any) -> SqsPoller:
    poller = SqsPoller(
        deliver.deliverer.settings.queue_url,
        lambda event: deliver.lambda_handler(event, FakeContext()),
        wait_seconds=0,
        client=aws_client("sqs"),
        log=lambda line: None,
    )
    poller.drain()
    return poller


def deliveries(routes: Any, endpoint_id: str) -> list[dict[str, Any]]:
    status, body = call(routes, "GET", f"/admin/webhook-endpoints/{endpoint_id}/deliveries")
    assert status == 200, body
    return list(body["deliveries"])


def readme_verifier() -> Any:
    """README's receiver snippet, run as written."""
    text = (ROOT / "README.md").read_text()
    snippet = text.split("<!-- webhook-verify", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, Any] = {}
    exec(compile(snippet, "README.md", "exec"), scope)  # noqa: S102 - our own README's code
    return scope["verify_webhook"]


@pytest.fixture
def cleanup(routes: Any) -> Iterator[list[str]]:
    """Endpoint ids to delete after the test: other tests' events then never find them."""
    ids: list[str] = []
    yield ids
    for endpoint_id in ids:
        call(routes, "DELETE", f"/admin/webhook-endpoints/{endpoint_id}")


def test_registering_shows_the_secret_once_and_stores_only_its_ciphertext(
    routes: Any, own_store: PaymentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes, "store", own_store)  # a table of its own: every item of it is read below
    created = register(routes, "http://127.0.0.1:9/hooks", "cust-a", ["payment.completed", "payment.refunded"])

    assert set(created) == {"id", "url", "events", "customer_id", "created_at", "secret"}
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["events"] == ["payment.completed", "payment.refunded"]
    status, listed = call(routes, "GET", "/admin/webhook-endpoints")
    assert status == 200
    [shown] = listed["endpoints"]
    assert shown == {k: v for k, v in created.items() if k != "secret"}
    items = aws_client("dynamodb").scan(TableName=own_store.table)["Items"]
    assert len(items) == 1 and "secret_ciphertext" in items[0]
    assert created["secret"] not in json.dumps(items)
    assert call(routes, "GET", "/admin/webhook-endpoints", claims=claims_for("c", "admin"))[0] == 403
    assert call(routes, "DELETE", f"/admin/webhook-endpoints/{created['id']}")[0] == 204
    assert call(routes, "DELETE", f"/admin/webhook-endpoints/{created['id']}")[0] == 404
    assert call(routes, "GET", f"/admin/webhook-endpoints/{created['id']}/deliveries")[0] == 404
    assert aws_client("dynamodb").scan(TableName=own_store.table)["Items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://127.0.0.1/x", "events": ["nope.happened"]}, "events"),
        ({"url": "http://10.0.0.1/x", "events": ["*"]}, "url"),
        ({"url": "http://user:pw@127.0.0.1/x", "events": ["*"]}, "url"),
        ({"url": "ftp://127.0.0.1/x", "events": ["*"]}, "url"),
        ({"url": "http://127.0.0.1/x", "events": []}, "events"),
        ({"events": ["*"]}, "url"),
        ({"url": "http://127.0.0.1/x", "events": ["*"], "customer_id": ""}, "customer_id"),
        ({"url": "http://127.0.0.1/x", "events": ["*"], "colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_stores_nothing(
    routes: Any, own_store: PaymentStore, monkeypatch: pytest.MonkeyPatch, body: dict, field: str
) -> None:
    monkeypatch.setattr(routes, "store", own_store)
    status, answer = call(routes, "POST", "/admin/webhook-endpoints", body)

    assert status == 422, answer
    assert answer["field"] == field and field in answer["message"]
    assert aws_client("dynamodb").scan(TableName=own_store.table)["Items"] == []


def test_an_event_is_delivered_once_signed_after_failures_and_a_timeout(
    routes: Any, deliver: Any, customer: str, cleanup: list[str]
) -> None:
    with receiver([500, 500, 500, ("sleep", 1.0, 200)]) as hooks:
        created = register(routes, hooks.url, customer)
        cleanup.append(created["id"])
        event = publish(customer)
        drain(deliver)

        [record] = deliveries(routes, created["id"])
        assert len(hooks.received) == 5
        duplicate = publish_again(event)
        drain(deliver)
        assert len(hooks.received) == 5  # the event again: no second POST
    assert record["event_id"] == event.event_id and record["state"] == "delivered"
    outcomes = [(a["attempt"], a["status"], a["error"]) for a in record["attempts"]]
    assert outcomes == [(1, 500, None), (2, 500, None), (3, 500, None), (4, None, "timeout"), (5, 200, None)]
    assert all(a["duration_ms"] >= 0 for a in record["attempts"]) and record["attempts"][3]["duration_ms"] >= 350
    assert deliveries(routes, created["id"]) == [record] and duplicate
    last = hooks.received[-1]
    body = json.loads(last.body)
    assert body == {
        "id": event.event_id,
        "type": "payment.completed",
        "created": event.occurred_at,
        "data": body["data"],
    }
    assert body["data"]["event_id"] == event.event_id and body["data"]["customer_id"] == customer
    assert last.headers["content-type"] == "application/json"
    assert last.headers["payments-event-id"] == event.event_id
    assert {r.body for r in hooks.received} == {last.body}  # the same bytes each attempt
    verify = readme_verifier()
    assert verify(created["secret"], last.headers["payments-signature"], last.body)
    assert not verify(created["secret"], last.headers["payments-signature"], last.body + b" ")
    assert not verify("whsec_other", last.headers["payments-signature"], last.body)
    t = int(time.time()) - 301
    from payments.webhook_delivery import signature

    assert not verify(created["secret"], signature(created["secret"], t, last.body), last.body)  # too old


def publish_again(event: OutboxEvent) -> bool:
    """The same event put on the bus once more, as a publisher retrying its batch would."""
    assert EventPublisher(os.environ["EVENT_BUS_NAME"], aws_client("events")).publish([event]) == (1, None)
    return True


def test_a_duplicate_task_after_success_makes_no_second_post(
    routes: Any, deliver: Any, customer: str, cleanup: list[str]
) -> None:
    sent: list[dict[str, Any]] = []
    real_send_all = deliver.deliverer.queue.send_all

    def keep(bodies: list[dict[str, Any]]) -> None:
        sent.extend(bodies)
        real_send_all(bodies)

    deliver.deliverer.queue.send_all = keep
    try:
        with receiver() as hooks:
            created = register(routes, hooks.url, customer, ["payment.refunded"])
            cleanup.append(created["id"])
            publish(customer, "payment.completed")  # not asked for
            publish(customer, "payment.refunded")
            drain(deliver)
            assert len(hooks.received) == 1
            deliver.deliverer.queue.send(sent[-1])  # the first attempt's task, twice
            deliver.deliverer.queue.send(sent[-1])
            drain(deliver)
            assert len(hooks.received) == 1
    finally:
        del deliver.deliverer.queue.send_all
    [record] = deliveries(routes, created["id"])
    assert record["type"] == "payment.refunded" and [a["status"] for a in record["attempts"]] == [200]


def test_an_endpoint_that_never_succeeds_goes_to_the_dead_letter_queue_after_24_hours(
    routes: Any, deliver: Any, customer: str, cleanup: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [time.time()]
    monkeypatch.setattr(deliver.deliverer, "clock", lambda: clock[0])

    def three_hours_later(_: Any) -> None:
        clock[0] += 3 * 3600

    with receiver(then=503, on_request=three_hours_later) as hooks:
        created = register(routes, hooks.url, customer)
        cleanup.append(created["id"])
        event = publish(customer, "payment.cancelled")
        drain(deliver)
        posts = len(hooks.received)

    [record] = deliveries(routes, created["id"])
    assert record["state"] == "failed" and posts == 8  # at 0, 3, ..., 21 hours; the window closed at 24
    assert [a["status"] for a in record["attempts"]] == [503] * 8
    dead = aws_client("sqs").receive_message(QueueUrl=deliver.deliverer.settings.dlq_url, MaxNumberOfMessages=10)
    letters = [json.loads(m["Body"]) for m in dead.get("Messages", [])]
    [letter] = [m for m in letters if m["webhook_delivery"]["endpoint_id"] == created["id"]]
    assert letter["webhook_delivery"]["event_id"] == event.event_id and letter["webhook_delivery"]["attempt"] == 8
    assert letter["last_outcome"] == "HTTP 503"


def test_an_endpoint_of_one_customer_never_receives_anothers_events(
    routes: Any, deliver: Any, cleanup: list[str]
) -> None:
    a, b = f"cust-a-{uuid.uuid4().hex[:6]}", f"cust-b-{uuid.uuid4().hex[:6]}"
    with receiver() as hooks_a, receiver() as hooks_b:
        cleanup.append(register(routes, hooks_a.url, a)["id"])
        cleanup.append(register(routes, hooks_b.url, b)["id"])
        sent_a, sent_b = publish(a), publish(b, "payment.refunded")
        drain(deliver)
    assert [json.loads(r.body)["id"] for r in hooks_a.received] == [sent_a.event_id]
    assert [json.loads(r.body)["id"] for r in hooks_b.received] == [sent_b.event_id]


def test_deleting_an_endpoint_stops_its_deliveries(routes: Any, deliver: Any, customer: str) -> None:
    with receiver(then=500) as hooks:
        created = register(routes, hooks.url, customer)
        publish(customer)
        poller = SqsPoller(
            deliver.deliverer.settings.queue_url,
            lambda event: deliver.lambda_handler(event, FakeContext()),
            wait_seconds=0,
            client=aws_client("sqs"),
            log=lambda line: None,
        )
        while not hooks.received:  # the fan-out, then the first attempt
            assert poller.poll(wait_seconds=0) > 0
        assert call(routes, "DELETE", f"/admin/webhook-endpoints/{created['id']}")[0] == 204
        poller.drain()
        publish(customer)
        poller.drain()
        assert len(hooks.received) == 1
    [record] = PaymentStore().webhook_deliveries(created["id"], limit=10)
    assert record.state.value == "cancelled" and [a.status for a in record.log] == [500]


def test_the_queue_poller_deletes_what_the_handler_did_not_report_failed(aws: dict[str, str]) -> None:
    sqs = aws_client("sqs")
    url = sqs.create_queue(QueueName=f"poller-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "0"})[
        "QueueUrl"
    ]
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}), MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "test"}})  # fmt: skip
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        seen.extend(event["Records"])
        odd = [r for r in event["Records"] if json.loads(r["body"])["n"] == 1]
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in odd]}

    poller = SqsPoller(url, handler, wait_seconds=0, client=sqs, log=lambda line: None)
    poller.poll()
    first = list(seen)
    poller.poll()  # the failed one came back at once (visibility 0)

    assert sorted(json.loads(r["body"])["n"] for r in first) == [0, 1, 2]
    record = first[0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"].endswith(url.rsplit("/", 1)[1])
    assert set(record) >= {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody"}
    assert record["messageAttributes"]["kind"]["stringValue"] == "test"
    assert [json.loads(r["body"])["n"] for r in seen[3:]] == [1]
    assert seen[3]["attributes"]["ApproximateReceiveCount"] == "2"
    assert poller.delivered == 2 and poller.failures == 2  # reported failed on both deliveries
