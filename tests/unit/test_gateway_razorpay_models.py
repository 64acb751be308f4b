"""Razorpay's events and answers read into `payments.gateways.razorpay_models`: entities under
`payload.<name>.entity`, `notes` that may be `[]`, amounts in integer subunits, and what is not Razorpay's shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses

from payments.gateways.base import CreateRequest, EventKind, GatewayRejected
from payments.gateways.razorpay import RazorpayGateway, RazorpaySettings
from payments.gateways.razorpay_models import Event, Notes
from payments.ids import new_payment_id
from payments.money import Money

BASE = "http://razorpay.test"
PAYMENT_ID = new_payment_id(datetime(2026, 11, 25, 17, 25, tzinfo=UTC))
OURS = {"payment_id": PAYMENT_ID, "customer_id": "acme"}


@pytest.fixture
def gateway() -> RazorpayGateway:
    settings = RazorpaySettings(api_base=BASE, key_id="rzp_key", key_secret="rzp_secret", webhook_secret="whsec")
    return RazorpayGateway(settings, session=requests.Session())


def body(event: str, **entities: Any) -> bytes:
    payload = {name: {"entity": entity} for name, entity in entities.items()}
    return json.dumps({"entity": "event", "event": event, "payload": payload}).encode()


def payment(**fields: Any) -> dict[str, Any]:
    return {"id": "pay_DESlfW9H8K9uqM", "amount": 5000, "currency": "INR", "order_id": "order_X", "notes": []} | fields


@pytest.mark.parametrize("notes", [[], None, "", {}, ["a", "b"]])
def test_notes_that_are_not_an_object_hold_none_of_our_ids(notes: Any) -> None:
    event = Event.model_validate(json.loads(body("payment.captured", payment=payment(notes=notes))))
    assert event.payload.payment is not None
    assert event.payload.payment.notes == Notes()


def test_a_refund_with_empty_notes_carries_only_the_order(gateway: RazorpayGateway) -> None:
    refund = {"id": "rfnd_1", "amount": 2000, "currency": "INR", "notes": []}
    parsed = gateway.parse_event({}, body("refund.processed", refund=refund, payment=payment()))
    assert (parsed.kind, parsed.refund_id, parsed.money) == (EventKind.REFUND, "rfnd_1", Money(2000, "INR"))
    assert (parsed.payment_id, parsed.customer_id, parsed.gateway_ref) == (None, None, "order_X")


def test_refund_ids_come_from_the_payment_notes_when_the_refunds_are_empty(gateway: RazorpayGateway) -> None:
    refund = {"id": "rfnd_1", "amount": 2000, "currency": "INR", "notes": []}
    parsed = gateway.parse_event({}, body("refund.processed", refund=refund, payment=payment(notes=OURS)))
    assert (parsed.payment_id, parsed.customer_id) == (PAYMENT_ID, "acme")


def test_order_notes_win_over_payment_notes(gateway: RazorpayGateway) -> None:
    other = new_payment_id(datetime(2026, 1, 1, tzinfo=UTC))
    order = {"id": "order_X", "amount_paid": 5000, "currency": "INR", "notes": OURS}
    notes = {"payment_id": other, "customer_id": "someone"}
    parsed = gateway.parse_event({}, body("order.paid", order=order, payment=payment(notes=notes)))
    assert (parsed.payment_id, parsed.customer_id) == (PAYMENT_ID, "acme")


@pytest.mark.parametrize("candidate", ["pay_DESlfW9H8K9uqM", 12345, "", None])
def test_only_our_payment_ids_are_taken(gateway: RazorpayGateway, candidate: Any) -> None:
    parsed = gateway.parse_event({}, body("payment.captured", payment=payment(notes={"payment_id": candidate})))
    assert parsed.payment_id is None


def test_order_paid_without_a_payment_entity_reads_the_orders_amount_paid(gateway: RazorpayGateway) -> None:
    order = {"id": "order_X", "amount": 9000, "amount_paid": 5000, "currency": "inr", "receipt": PAYMENT_ID}
    for payment_entity in ({}, None, "x"):
        parsed = gateway.parse_event({}, body("order.paid", order=order, payment=payment_entity))
        assert (parsed.money, parsed.payment_id, parsed.gateway_ref) == (Money(5000, "INR"), PAYMENT_ID, "order_X")


@pytest.mark.parametrize(
    "fields", [{"amount": "5000"}, {"amount": 50.0}, {"amount": True}, {"currency": "ZZZ"}, {"currency": None}]
)
def test_an_amount_that_is_not_integer_subunits_is_no_amount(gateway: RazorpayGateway, fields: dict[str, Any]) -> None:
    # Not refused: a success without its amount is a mismatch for settlement (docs/webhooks.md).
    parsed = gateway.parse_event({}, body("payment.captured", payment=payment(**fields)))
    assert (parsed.kind, parsed.money) == (EventKind.SUCCESS, None)


@pytest.mark.parametrize("payload", [None, [], "x", {"order": []}, {"order": {"entity": []}}])
def test_a_payload_without_entities_is_read_as_one(gateway: RazorpayGateway, payload: Any) -> None:
    raw = json.dumps({"event": "order.paid", "payload": payload}).encode()
    parsed = gateway.parse_event({}, raw)
    assert (parsed.kind, parsed.money, parsed.gateway_ref, parsed.payment_id) == (EventKind.SUCCESS, None, None, None)


def test_payment_failed_reason_falls_back_to_the_code_then_a_word(gateway: RazorpayGateway) -> None:
    with_code = gateway.parse_event({}, body("payment.failed", payment=payment(error_code="GATEWAY_ERROR")))
    assert with_code.reason == "GATEWAY_ERROR"
    bare = gateway.parse_event({}, body("payment.failed", payment=payment(error_description=7)))
    assert bare.reason == "payment failed"


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        (body("refund.processed", payment=payment()), "without a refund entity"),
        (body("refund.processed", refund={}), "without a refund entity"),
        (json.dumps({"event": 5, "payload": {}}).encode(), "event"),
        (json.dumps({"event": "", "payload": {}}).encode(), "event"),
        (b'"order.paid"', "not a JSON object"),
        (b"\xff\xfe{", "not JSON"),
    ],
)
def test_signed_but_malformed_events_are_value_errors(gateway: RazorpayGateway, raw: bytes, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as caught:
        gateway.parse_event({}, raw)
    assert "razorpay" in str(caught.value)


# ---- answers --------------------------------------------------------------------------------------------


def create_request(attempt: int = 1) -> CreateRequest:
    return CreateRequest(
        payment_id=PAYMENT_ID,
        customer_id="acme",
        money=Money(5000, "INR"),
        description="Top-up",
        idempotency_key="k",
        attempt=attempt,
    )


@pytest.mark.parametrize("answer", [{}, {"id": ""}, {"id": 7}])
@responses.activate
def test_a_created_order_without_an_id_is_rejected(gateway: RazorpayGateway, answer: dict[str, Any]) -> None:
    responses.post(f"{BASE}/v1/orders", json=answer)
    with pytest.raises(GatewayRejected, match="id") as caught:
        gateway.create(create_request())
    assert caught.value.http_status == 502


@responses.activate
def test_recover_takes_the_oldest_order_of_the_receipt(gateway: RazorpayGateway) -> None:
    mine = {"receipt": PAYMENT_ID, "amount": 5000, "currency": "INR"}
    items = [
        "not an order",
        mine | {"id": "order_new", "created_at": 20},
        mine | {"id": "order_old", "created_at": 10},
        mine | {"id": "", "created_at": 1},  # no id: not an order we can hand back
        {"id": "order_other", "receipt": "someone else", "created_at": 0},
    ]
    responses.get(f"{BASE}/v1/orders", json={"entity": "collection", "items": items})
    result = gateway.recover(create_request(attempt=2))
    assert result is not None
    assert result.gateway_ref == "order_old"


@pytest.mark.parametrize("items", [None, {}, "x", []])
@responses.activate
def test_recover_without_a_list_of_orders_finds_none(gateway: RazorpayGateway, items: Any) -> None:
    responses.get(f"{BASE}/v1/orders", json={"entity": "collection", "items": items})
    assert gateway.recover(create_request(attempt=2)) is None


@responses.activate
def test_recover_refuses_an_order_of_another_amount(gateway: RazorpayGateway) -> None:
    order = {"id": "order_A", "receipt": PAYMENT_ID, "amount": "5000", "currency": "INR"}  # unreadable amount
    responses.get(f"{BASE}/v1/orders", json={"items": [order]})
    with pytest.raises(GatewayRejected, match="another amount"):
        gateway.recover(create_request(attempt=2))


@responses.activate
def test_fetch_status_attempted_without_a_list_of_payments_is_open(gateway: RazorpayGateway) -> None:
    responses.get(f"{BASE}/v1/orders/order_X", json={"id": "order_X", "status": "attempted"})
    responses.get(f"{BASE}/v1/orders/order_X/payments", json={"items": {"count": 0}})
    assert gateway.fetch_status("order_X", PAYMENT_ID).kind is EventKind.IGNORED


@responses.activate
def test_fetch_status_failure_takes_the_latest_attempt_even_without_times(gateway: RazorpayGateway) -> None:
    responses.get(f"{BASE}/v1/orders/order_X", json={"id": "order_X", "status": "attempted"})
    items = [
        payment(status="failed", error_description="first", created_at="yesterday"),
        payment(status="failed", error_description="second", created_at=5),
    ]
    responses.get(f"{BASE}/v1/orders/order_X/payments", json={"items": items})
    assert gateway.fetch_status("order_X", PAYMENT_ID).reason == "second"


@pytest.mark.parametrize("error", [None, [], "bad", {"description": 5}, {"description": ""}])
@responses.activate
def test_a_refusal_without_a_readable_description_keeps_the_plain_message(gateway: RazorpayGateway, error: Any) -> None:
    responses.get(f"{BASE}/v1/orders/order_X", status=400, json={"error": error})
    with pytest.raises(GatewayRejected, match=r"400 \(GET /v1/orders/order_X\)$"):
        gateway.fetch_status("order_X", PAYMENT_ID)


def test_refund_failed_names_the_refund_and_the_order(gateway: RazorpayGateway) -> None:
    refund = {"id": "rfnd_2", "amount": 2000, "currency": "INR", "payment_id": "pay_1", "status": "failed"}
    parsed = gateway.parse_event({}, body("refund.failed", refund=refund, payment=payment(notes=OURS)))
    assert (parsed.kind, parsed.refund_id, parsed.money, parsed.reason) == (
        EventKind.REFUND_FAILED,
        "rfnd_2",
        Money(2000, "INR"),
        "failed",
    )
    assert parsed.gateway_ref == payment()["order_id"]


@pytest.mark.parametrize(("captured", "uncaptured"), [(False, True), (True, False), (None, False)])
def test_a_refund_of_a_payment_never_captured_says_so(
    gateway: RazorpayGateway, captured: Any, uncaptured: bool
) -> None:
    refund = {"id": "rfnd_3", "amount": 2000, "currency": "INR", "payment_id": "pay_1"}
    fields = {} if captured is None else {"captured": captured}
    parsed = gateway.parse_event({}, body("refund.processed", refund=refund, payment=payment(**fields)))
    assert (parsed.kind, parsed.uncaptured) == (EventKind.REFUND, uncaptured)
