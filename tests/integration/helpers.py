"""Small helpers for handler tests: call a route with a caller, read stored state."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from payments.config import settings
from payments.models import Payment
from payments.store import PaymentStore
from tests.conftest import aws_client, claims_for, http_event, invoke, load_function
from tests.integration.webhook_events import Delivery


def post(
    function: str,
    path: str,
    body: Any,
    *,
    customer: str | None,
    groups: tuple[str, ...] = ("finance",),
    key: str | None = "auto",
    route: str | None = None,
    path_params: dict[str, str] | None = None,
    email: str = "payer@example.com",
) -> tuple[int, Any]:
    headers = {}
    if key == "auto":
        key = uuid.uuid4().hex
    if key is not None:
        headers["Idempotency-Key"] = key
    raw = body if isinstance(body, str) or body is None else json.dumps(body)
    event = http_event(
        "POST",
        path,
        route=route,
        claims=claims_for(customer, *groups, email=email),
        body=raw,
        headers=headers,
        path_params=path_params,
    )
    return invoke(load_function(function), event)


def with_gateway_object(payment: Payment, provider: str, ref: str, store: PaymentStore | None = None) -> Payment:
    """`payment` (stored, pending) as Make Payment leaves it once `provider` created object `ref` for it: claimed,
    then recorded through the store, as checkout does."""
    store = store or PaymentStore()
    claimed = store.claim_gateway_object(payment, provider=provider, hold_seconds=30, ref=lambda attempt: None)
    assert claimed is not None, "the payment already has a gateway object or a live claim"
    recorded = store.record_gateway_object(
        claimed, provider=provider, gateway_ref=ref, next_action=None, card_brand=None, card_last4=None
    )
    assert recorded is not None
    return store.require(payment.customer_id, payment.id, consistent=True)


def stored_items(customer: str) -> list[dict[str, Any]]:
    """Every item in the customer's partition (payments, balance, pointers), raw."""
    client = aws_client("dynamodb")
    answer = client.query(
        TableName=settings().payments_table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"CUST#{customer}"}},
        ConsistentRead=True,
    )
    return answer["Items"]


def stored_payments(customer: str) -> list[dict[str, Any]]:
    return [i for i in stored_items(customer) if i["SK"]["S"].startswith("PAY#")]


def balances(customer: str) -> dict[str, str]:
    status, body = invoke(
        load_function("list_payments"), http_event("GET", "/balance", claims=claims_for(customer, "finance"))
    )
    assert status == 200
    return {b["currency"]: b["amount"] for b in body["balances"]}


def issue_vouchers(amount: str, currency: str, count: int = 1, **extra: Any) -> list[str]:
    status, body = post(
        "admin",
        "/admin/vouchers",
        {"amount": amount, "currency": currency, "count": count, **extra},
        customer=None,
        groups=("operator",),
        key=None,
    )
    assert status == 201, body
    return [v["code"] for v in body["vouchers"]]


def deliver(provider: str, delivery: Delivery, *, base64_body: bool = False) -> tuple[int, dict[str, Any]]:
    """POST /webhooks/{provider} through the webhooks handler, as API Gateway passes a gateway's delivery."""
    body = base64.b64encode(delivery.body).decode() if base64_body else delivery.body.decode()
    event = http_event(
        "POST",
        f"/webhooks/{provider}",
        route="/webhooks/{provider}",
        body=body,
        headers=delivery.headers,
        path_params={"provider": provider},
    )
    event["isBase64Encoded"] = base64_body
    return invoke(load_function("webhooks"), event)


def settle_at_sim(sim: Any, provider: str, ref: str, outcome: str = "success") -> tuple[int, Any]:
    """Settle gateway object `ref` at the simulator and hand its signed webhook to the webhooks handler (the
    simulator's own delivery goes nowhere in handler tests). Paystack failures send none: (0, None)."""
    seen = len(sim.deliveries())
    result = sim.settle(provider, ref, outcome)
    if result["event"] is None:
        return 0, None
    # Its own delivery: webhooks the simulator sends a moment after an earlier call may have come in between.
    ours = [r for r in sim.deliveries()[seen:] if r["provider"] == provider]
    record = next((r for r in ours if r.get("event") == result["event"]), ours[0])
    return deliver(provider, Delivery(record["body"].encode(), dict(record["headers"])))


def get_payment(customer: str, payment_id: str) -> tuple[int, Any]:
    """GET /payments/{id} as the customer's finance user, through the list_payments handler."""
    event = http_event(
        "GET",
        f"/payments/{payment_id}",
        route="/payments/{id}",
        claims=claims_for(customer, "finance"),
        path_params={"id": payment_id},
    )
    return invoke(load_function("list_payments"), event)
