"""Through `make dev`'s local stack over HTTP (docs/events.md): a card payment that completes writes its outbox
event, the stream poller feeds the real publisher, and `GET /_local/outbox` shows what reached the local bus."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any


def outbox_events(stack: Any, payment_id: str, *, wait: float = 20) -> list[dict[str, Any]]:
    """The events about `payment_id` on the local bus, once there is one (the poller reads the stream every 0.2 s)."""
    deadline = time.monotonic() + wait
    while True:
        answer = stack.call("GET", "/_local/outbox")
        # No e-mail about it (receipts are off by default); other tests' e-mails on this stack are theirs.
        assert answer.status == 200 and [e for e in answer.json()["emails"] if payment_id in json.dumps(e)] == []
        # balance.low events (docs/alerts.md) carry no payment
        found = [e for e in answer.json()["events"] if e["detail"].get("payment", {}).get("id") == payment_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_completed_card_payment_publishes_payment_completed_once(stack: Any) -> None:
    customer = f"events-{uuid.uuid4().hex[:8]}"
    body = {"method": "credit_card", "amount": "10.00", "currency": "USD", "payment_method": "pm_card_visa"}
    answer = stack.call(
        "POST",
        "/payments",
        token=stack.token(customer),
        headers={"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
        body=json.dumps(body),
    )
    assert answer.status == 201, answer.body
    paid = answer.json()["payment"]
    assert paid["status"] == "completed"

    [event] = outbox_events(stack, paid["id"])

    assert event["detail-type"] == "payment.completed"
    detail = event["detail"]
    assert detail["event_id"].startswith("evt_") and detail["customer_id"] == customer
    assert {k: detail["payment"][k] for k in ("id", "status", "amount", "currency")} == {
        k: paid[k] for k in ("id", "status", "amount", "currency")
    }
    time.sleep(1)  # nothing more comes of it: one change, one event
    assert len(outbox_events(stack, paid["id"], wait=0)) == 1
