"""Through `make dev`'s local stack over HTTP (docs/webhooks-outbound.md#locally): an operator registers an
endpoint on 127.0.0.1, records a charge, and the charge's event reaches the receiver signed, through the local
bus, the delivery queue and the real delivery function."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from payments.webhook_delivery import verify
from tests.webhook_receiver import receiver


def test_an_operator_charge_is_posted_signed_to_a_registered_endpoint(stack: Any) -> None:
    customer = f"hooks-{uuid.uuid4().hex[:8]}"
    operator = stack.token(None, ["operator"])
    json_headers = {"Content-Type": "application/json"}
    with receiver() as hooks:
        answer = stack.call(
            "POST",
            "/admin/webhook-endpoints",
            token=operator,
            headers=json_headers,
            body=json.dumps({"url": hooks.url, "events": ["payment.completed"], "customer_id": customer}),
        )
        assert answer.status == 201, answer.body
        endpoint = answer.json()
        charge = stack.call(
            "POST",
            f"/admin/customers/{customer}/charges",
            token=operator,
            headers={**json_headers, "Idempotency-Key": uuid.uuid4().hex},
            body=json.dumps({"amount": "2.50", "currency": "EUR", "description": "SIM card"}),
        )
        assert charge.status == 201, charge.body
        deadline = time.monotonic() + 30
        while not hooks.received and time.monotonic() < deadline:
            time.sleep(0.1)
        [delivery] = hooks.received
        deletion = stack.call("DELETE", f"/admin/webhook-endpoints/{endpoint['id']}", token=operator)

    body = json.loads(delivery.body)
    assert body["type"] == "payment.completed" and body["data"]["payment"]["id"] == charge.json()["id"]
    assert delivery.headers["payments-event-id"] == body["id"] == body["data"]["event_id"]
    assert verify(endpoint["secret"], delivery.headers["payments-signature"], delivery.body, now=time.time())
    assert deletion.status == 204
