"""Razorpay adapter: the order it creates, webhook signatures and event mapping, reconciliation.

HTTP is faked with `responses` at http://razorpay.test; signatures are computed here, independently.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses

from payments.gateways.base import (
    CreateRequest,
    CurrencyNotSupported,
    EventKind,
    Gateway,
    GatewayRejected,
    GatewayUnavailable,
    SignatureInvalid,
)
from payments.gateways.razorpay import RazorpayGateway, RazorpaySettings
from payments.ids import new_payment_id
from payments.money import Money

BASE = "http://razorpay.test"
WEBHOOK_SECRET = "whsec-razorpay-test"
PAYMENT_ID = new_payment_id(datetime(2026, 11, 25, 17, 25, tzinfo=UTC))
SETTINGS = RazorpaySettings(
    api_base=BASE,
    key_id="rzp_test_key",
    key_secret="rzp_test_secret",
    webhook_secret=WEBHOOK_SECRET,
)


@pytest.fixture
def gateway() -> RazorpayGateway:
    return RazorpayGateway(SETTINGS, session=requests.Session())


def create_request(money: Money) -> CreateRequest:
    return CreateRequest(
        payment_id=PAYMENT_ID,
        customer_id="acme",
        money=money,
        description="Top-up",
        idempotency_key="idem-1",
    )


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"x-razorpay-signature": digest, "x-razorpay-event-id": "evt_R1"}


def test_is_a_gateway() -> None:
    adapter: Gateway = RazorpayGateway(SETTINGS)
    assert adapter.name == "razorpay"


# ---- create ---------------------------------------------------------------------------------------


@responses.activate
def test_create_sends_an_order_in_paise_with_our_ids(gateway: RazorpayGateway) -> None:
    responses.post(
        f"{BASE}/v1/orders",
        json={"id": "order_RB58MiP5SPFYyM", "entity": "order", "amount": 5000, "status": "created"},
    )
    result = gateway.create(create_request(Money(5000, "INR")))

    sent = responses.calls[0].request
    assert sent.url == f"{BASE}/v1/orders"
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"rzp_test_key:rzp_test_secret").decode()
    assert json.loads(sent.body) == {
        "amount": 5000,
        "currency": "INR",
        "receipt": PAYMENT_ID,
        "notes": {"payment_id": PAYMENT_ID, "customer_id": "acme"},
    }
    assert "Idempotency-Key" not in sent.headers  # Razorpay takes none
    assert result.gateway_ref == "order_RB58MiP5SPFYyM"
    assert result.next_action == {
        "type": "razorpay_checkout",
        "order_id": "order_RB58MiP5SPFYyM",
        "key_id": "rzp_test_key",
        "amount": "50.00",
        "amount_minor": 5000,
        "currency": "INR",
    }


@responses.activate
def test_create_three_decimal_currency_sends_fils(gateway: RazorpayGateway) -> None:
    responses.post(f"{BASE}/v1/orders", json={"id": "order_K"})
    result = gateway.create(create_request(Money(12340, "KWD")))
    assert json.loads(responses.calls[0].request.body)["amount"] == 12340
    assert result.next_action is not None
    assert result.next_action["amount"] == "12.340"


@pytest.mark.parametrize(
    ("money", "field"),
    [
        (Money(5000, "NGN"), "currency"),  # not in Razorpay's list
        (Money(99, "INR"), "amount"),  # below INR 1.00
        (Money(12345, "KWD"), "amount"),  # three decimals must end in 0
    ],
)
@responses.activate
def test_check_currency_refuses_before_any_call(gateway: RazorpayGateway, money: Money, field: str) -> None:
    with pytest.raises(CurrencyNotSupported) as refused:
        gateway.create(create_request(money))
    assert refused.value.field == field
    assert refused.value.http_status == 422
    assert len(responses.calls) == 0


def test_check_currency_accepts_inr_minimum_and_zero_decimal_yen(gateway: RazorpayGateway) -> None:
    gateway.check_currency(Money(100, "INR"))
    gateway.check_currency(Money(500, "JPY"))
    gateway.check_currency(Money(1000, "BHD"))


@responses.activate
def test_create_timeout_is_unavailable_and_sent_once(gateway: RazorpayGateway) -> None:
    responses.post(f"{BASE}/v1/orders", body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(GatewayUnavailable):
        gateway.create(create_request(Money(5000, "INR")))
    assert len(responses.calls) == 1


@responses.activate
def test_create_5xx_is_unavailable(gateway: RazorpayGateway) -> None:
    responses.post(f"{BASE}/v1/orders", status=502, json={"error": {"code": "SERVER_ERROR"}})
    with pytest.raises(GatewayUnavailable):
        gateway.create(create_request(Money(5000, "INR")))


@responses.activate
def test_create_4xx_is_rejected_with_razorpays_description(gateway: RazorpayGateway) -> None:
    responses.post(
        f"{BASE}/v1/orders",
        status=400,
        json={"error": {"code": "BAD_REQUEST_ERROR", "description": "Currency is not supported"}},
    )
    with pytest.raises(GatewayRejected, match="Currency is not supported") as rejected:
        gateway.create(create_request(Money(5000, "USD")))
    assert rejected.value.http_status == 502


def test_create_without_credentials_is_rejected_before_any_call() -> None:
    adapter = RazorpayGateway(RazorpaySettings(api_base=BASE), session=requests.Session())
    with responses.RequestsMock() as mock, pytest.raises(GatewayRejected, match="RAZORPAY_KEY_ID"):
        adapter.create(create_request(Money(5000, "INR")))
    assert len(mock.calls) == 0


# ---- webhooks -------------------------------------------------------------------------------------


def payment_entity(**overrides: Any) -> dict[str, Any]:
    entity = {
        "id": "pay_DESlfW9H8K9uqM",
        "entity": "payment",
        "amount": 5000,
        "currency": "INR",
        "status": "captured",
        "order_id": "order_DESlLckIVRkHWj",
        "method": "netbanking",
        "captured": True,
        "notes": [],  # Razorpay writes empty notes as []
        "error_code": None,
        "error_description": None,
        "created_at": 1567674599,
    }
    entity.update(overrides)
    return entity


def event_body(event: str, **entities: dict[str, Any]) -> bytes:
    body = {
        "entity": "event",
        "account_id": "acc_BFQ7uQEaa7j2z7",
        "event": event,
        "contains": list(entities),
        "payload": {name: {"entity": entity} for name, entity in entities.items()},
        "created_at": 1567674606,
    }
    return json.dumps(body).encode()


def test_verify_accepts_the_right_signature(gateway: RazorpayGateway) -> None:
    body = event_body("payment.captured", payment=payment_entity())
    gateway.verify_webhook(sign(body), body)


@pytest.mark.parametrize(
    ("headers_for", "status"),
    [
        (lambda body: sign(body + b" "), 401),  # tampered body
        (lambda body: sign(body, "another-secret"), 401),  # wrong secret
        (lambda body: {"x-razorpay-event-id": "evt_R1"}, 400),  # missing header
        (lambda body: {"x-razorpay-signature": "zz-not-hex-é"}, 401),  # garbage, even non-ASCII
    ],
)
def test_verify_refuses(gateway: RazorpayGateway, headers_for: Any, status: int) -> None:
    body = event_body("payment.captured", payment=payment_entity())
    with pytest.raises(SignatureInvalid) as refused:
        gateway.verify_webhook(headers_for(body), body)
    assert refused.value.http_status == status


def test_verify_refuses_everything_when_no_secret_is_configured() -> None:
    adapter = RazorpayGateway(RazorpaySettings())
    body = b"{}"
    with pytest.raises(SignatureInvalid):
        adapter.verify_webhook({"x-razorpay-signature": hmac.new(b"", body, hashlib.sha256).hexdigest()}, body)


def test_order_paid_is_success_with_our_ids_from_the_order(gateway: RazorpayGateway) -> None:
    order = {
        "id": "order_DESlLckIVRkHWj",
        "entity": "order",
        "amount": 5000,
        "amount_paid": 5000,
        "amount_due": 0,
        "currency": "INR",
        "receipt": PAYMENT_ID,
        "status": "paid",
        "attempts": 1,
        "notes": {"payment_id": PAYMENT_ID, "customer_id": "acme"},
    }
    body = event_body("order.paid", payment=payment_entity(), order=order)
    event = gateway.parse_event(sign(body), body)
    assert event.provider == "razorpay"
    assert event.event_id == "evt_R1"
    assert event.event_type == "order.paid"
    assert event.kind is EventKind.SUCCESS
    assert (event.payment_id, event.customer_id) == (PAYMENT_ID, "acme")
    assert event.gateway_ref == "order_DESlLckIVRkHWj"
    assert event.money == Money(5000, "INR")


def test_order_paid_with_empty_notes_list_falls_back_to_the_receipt(gateway: RazorpayGateway) -> None:
    order = {"id": "order_X", "amount_paid": 5000, "currency": "INR", "receipt": PAYMENT_ID, "notes": []}
    body = event_body("order.paid", payment=payment_entity(order_id="order_X"), order=order)
    event = gateway.parse_event(sign(body), body)
    assert event.kind is EventKind.SUCCESS
    assert event.payment_id == PAYMENT_ID
    assert event.customer_id is None
    assert event.gateway_ref == "order_X"


def test_payment_captured_with_empty_notes_carries_the_order_id_only(gateway: RazorpayGateway) -> None:
    body = event_body("payment.captured", payment=payment_entity())
    event = gateway.parse_event(sign(body), body)
    assert event.kind is EventKind.SUCCESS
    assert event.payment_id is None  # Razorpay's own pay_DESlfW9H8K9uqM is never taken for ours
    assert event.gateway_ref == "order_DESlLckIVRkHWj"
    assert event.money == Money(5000, "INR")


def test_payment_captured_reads_our_ids_from_payment_notes(gateway: RazorpayGateway) -> None:
    notes = {"payment_id": PAYMENT_ID, "customer_id": "acme"}
    body = event_body("payment.captured", payment=payment_entity(notes=notes))
    event = gateway.parse_event(sign(body), body)
    assert (event.payment_id, event.customer_id) == (PAYMENT_ID, "acme")


def test_payment_failed_is_failure_with_the_reason(gateway: RazorpayGateway) -> None:
    failed = payment_entity(
        status="failed",
        captured=False,
        error_code="BAD_REQUEST_ERROR",
        error_description="Payment failed",
        error_reason="payment_failed",
    )
    body = event_body("payment.failed", payment=failed)
    event = gateway.parse_event(sign(body), body)
    assert event.kind is EventKind.FAILURE
    assert event.reason == "Payment failed"
    assert event.gateway_ref == "order_DESlLckIVRkHWj"


def test_refund_processed_is_refund_with_refund_money_and_id(gateway: RazorpayGateway) -> None:
    refund = {
        "id": "rfnd_FS8TWyPrCsa0OB",
        "entity": "refund",
        "amount": 2000,
        "currency": "INR",
        "payment_id": "pay_DESlfW9H8K9uqM",
        "notes": {"payment_id": PAYMENT_ID, "customer_id": "acme"},
        "status": "processed",
    }
    body = event_body("refund.processed", refund=refund, payment=payment_entity(status="refunded"))
    event = gateway.parse_event(sign(body), body)
    assert event.kind is EventKind.REFUND
    assert event.money == Money(2000, "INR")
    assert event.refund_id == "rfnd_FS8TWyPrCsa0OB"
    assert (event.payment_id, event.customer_id) == (PAYMENT_ID, "acme")
    assert event.gateway_ref == "order_DESlLckIVRkHWj"


def test_other_events_are_ignored(gateway: RazorpayGateway) -> None:
    body = event_body("payment.downtime.started", payment=payment_entity(status="authorized"))
    assert gateway.parse_event(sign(body), body).kind is EventKind.IGNORED


def test_an_authorized_payment_is_one_to_capture(gateway: RazorpayGateway) -> None:
    body = event_body("payment.authorized", payment=payment_entity(status="authorized", captured=False))
    parsed = gateway.parse_event(sign(body), body)
    assert (parsed.kind, parsed.gateway_ref, parsed.money) == (
        EventKind.CAPTURE,
        "order_DESlLckIVRkHWj",
        Money(5000, "INR"),
    )


def test_event_id_falls_back_to_the_body_hash(gateway: RazorpayGateway) -> None:
    body = event_body("payment.captured", payment=payment_entity())
    event = gateway.parse_event({}, body)
    assert event.event_id == "sha256:" + hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"payload": {}}'])
def test_parse_refuses_what_is_not_a_razorpay_event(gateway: RazorpayGateway, body: bytes) -> None:
    with pytest.raises(ValueError, match="razorpay"):
        gateway.parse_event({}, body)


# ---- reconciliation -------------------------------------------------------------------------------


@responses.activate
def test_fetch_status_paid_order_is_success(gateway: RazorpayGateway) -> None:
    responses.get(
        f"{BASE}/v1/orders/order_X", json={"id": "order_X", "status": "paid", "amount_paid": 5000, "currency": "INR"}
    )
    answer = gateway.fetch_status("order_X", PAYMENT_ID)
    assert answer.kind is EventKind.SUCCESS
    assert answer.money == Money(5000, "INR")
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_fetch_status_attempted_with_only_failed_payments_is_failure(gateway: RazorpayGateway) -> None:
    responses.get(f"{BASE}/v1/orders/order_X", json={"id": "order_X", "status": "attempted", "currency": "INR"})
    responses.get(
        f"{BASE}/v1/orders/order_X/payments",
        json={
            "entity": "collection",
            "count": 2,
            "items": [
                payment_entity(status="failed", error_description="Card declined", created_at=1),
                payment_entity(status="failed", error_description="Bank timeout", created_at=2),
            ],
        },
    )
    answer = gateway.fetch_status("order_X", PAYMENT_ID)
    assert answer.kind is EventKind.FAILURE
    assert answer.reason == "Bank timeout"  # the latest attempt


@responses.activate
def test_fetch_status_attempted_with_a_captured_payment_is_success(gateway: RazorpayGateway) -> None:
    responses.get(f"{BASE}/v1/orders/order_X", json={"id": "order_X", "status": "attempted"})
    responses.get(
        f"{BASE}/v1/orders/order_X/payments",
        json={"items": [payment_entity(status="failed"), payment_entity(status="captured", amount=5000)]},
    )
    answer = gateway.fetch_status("order_X", PAYMENT_ID)
    assert answer.kind is EventKind.SUCCESS
    assert answer.money == Money(5000, "INR")


@responses.activate
def test_fetch_status_created_is_still_open_and_authorized_is_to_capture(gateway: RazorpayGateway) -> None:
    responses.get(f"{BASE}/v1/orders/order_A", json={"id": "order_A", "status": "created"})
    responses.get(f"{BASE}/v1/orders/order_B", json={"id": "order_B", "status": "attempted"})
    responses.get(f"{BASE}/v1/orders/order_B/payments", json={"items": [payment_entity(status="authorized")]})
    assert gateway.fetch_status("order_A", PAYMENT_ID).kind is EventKind.IGNORED
    assert gateway.fetch_status("order_B", PAYMENT_ID).kind is EventKind.CAPTURE  # authorized: to capture


@responses.activate
def test_fetch_status_connection_error_is_unavailable(gateway: RazorpayGateway) -> None:
    responses.get(f"{BASE}/v1/orders/order_X", body=requests.exceptions.ConnectionError("refused"))
    with pytest.raises(GatewayUnavailable):
        gateway.fetch_status("order_X", PAYMENT_ID)


ORDER = {"id": "order_C", "status": "attempted", "amount": 5000, "currency": "INR", "amount_paid": 0}


@responses.activate
def test_capture_takes_the_authorized_payment_for_the_orders_amount(gateway: RazorpayGateway) -> None:
    held = payment_entity(id="pay_Held", status="authorized", captured=False, order_id="order_C")
    responses.get(f"{BASE}/v1/orders/order_C", json=ORDER)
    responses.get(f"{BASE}/v1/orders/order_C/payments", json={"items": [payment_entity(status="failed"), held]})
    taken = responses.post(
        f"{BASE}/v1/payments/pay_Held/capture",
        json={**held, "status": "captured", "captured": True},
        match=[responses.matchers.json_params_matcher({"amount": 5000, "currency": "INR"})],
    )

    answer = gateway.capture("order_C", "capture-1")

    assert (answer.kind, answer.money) == (EventKind.SUCCESS, Money(5000, "INR"))
    assert taken.call_count == 1


@responses.activate
def test_capture_of_a_captured_order_calls_no_capture(gateway: RazorpayGateway) -> None:
    responses.get(f"{BASE}/v1/orders/order_C", json=ORDER)
    responses.get(f"{BASE}/v1/orders/order_C/payments", json={"items": [payment_entity(order_id="order_C")]})
    assert gateway.capture("order_C", "capture-1").kind is EventKind.SUCCESS
    assert [c.request.method for c in responses.calls] == ["GET", "GET"]


@responses.activate
def test_capture_never_takes_another_amount_than_the_order(gateway: RazorpayGateway) -> None:
    held = payment_entity(id="pay_Held", status="authorized", captured=False, amount=4999, order_id="order_C")
    responses.get(f"{BASE}/v1/orders/order_C", json=ORDER)
    responses.get(f"{BASE}/v1/orders/order_C/payments", json={"items": [held]})
    answer = gateway.capture("order_C", "capture-1")
    assert (answer.kind, answer.reason) == (EventKind.IGNORED, "the authorized payment is not for the order's amount")
    assert [c.request.method for c in responses.calls] == ["GET", "GET"]


@responses.activate
def test_a_capture_someone_else_made_first_reads_the_order_again(gateway: RazorpayGateway) -> None:
    held = payment_entity(id="pay_Held", status="authorized", captured=False, order_id="order_C")
    responses.get(f"{BASE}/v1/orders/order_C", json=ORDER)
    responses.get(f"{BASE}/v1/orders/order_C/payments", json={"items": [held]})
    error = {"error": {"code": "BAD_REQUEST_ERROR", "description": "This payment has already been captured"}}
    responses.post(f"{BASE}/v1/payments/pay_Held/capture", json=error, status=400)
    responses.get(f"{BASE}/v1/orders/order_C", json={**ORDER, "status": "paid", "amount_paid": 5000})

    answer = gateway.capture("order_C", "capture-1")

    assert (answer.kind, answer.money) == (EventKind.SUCCESS, Money(5000, "INR"))
