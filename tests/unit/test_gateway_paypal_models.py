"""PayPal's events and answers read into `payments.gateways.paypal_models`: orders with purchase units, captures
with `supplementary_data.related_ids`, refunds with links, and what is not PayPal's shape (ValueError for a signed
body, GatewayRejected for an answer)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from payments.gateways.base import CreateRequest, EventKind, GatewayRejected, reading_answers
from payments.gateways.http import HttpRejected
from payments.gateways.paypal import PayPalGateway, PayPalSettings
from payments.gateways.paypal_models import Event, Order, Payment
from payments.money import Money

API = "http://paypal.test"
PAYMENT_ID = "pay_01JD0000000000000000000000"
ORDER_ID = "5O190127TN364715T"
CAPTURE_ID = "0JF852973C016714D"


@pytest.fixture
def gateway() -> PayPalGateway:
    settings = PayPalSettings(api_base=API, client_id="id", client_secret="secret", webhook_id="WH-ID")
    return PayPalGateway(settings)


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def token(api: responses.RequestsMock, **answer: Any) -> None:
    api.post(f"{API}/v1/oauth2/token", json=answer or {"access_token": "T", "expires_in": 32400})


def paypal_event(event_type: str, resource: Any) -> bytes:
    return json.dumps({"id": "WH-1", "event_type": event_type, "resource": resource}).encode()


def refund(**fields: Any) -> dict[str, Any]:
    return {
        "id": "1Y107995YT783435V",
        "amount": {"currency_code": "USD", "value": "0.99"},
        "status": "COMPLETED",
        "links": [
            {"href": "https://api.paypal.com/v2/payments/refunds/1Y107995YT783435V", "rel": "self", "method": "GET"},
            {"href": f"https://api.paypal.com/v2/payments/captures/{CAPTURE_ID}", "rel": "up", "method": "GET"},
        ],
    } | fields


# -- refunds and their `up` link ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("links", "capture_id"),
    [
        (refund()["links"], CAPTURE_ID),
        (list(reversed(refund()["links"])), CAPTURE_ID),
        ([{"href": f"https://api.paypal.com/v2/payments/captures/{CAPTURE_ID}/", "rel": "up"}], CAPTURE_ID),
        ([{"rel": "up"}, {"href": f"https://x/captures/{CAPTURE_ID}", "rel": "up"}], CAPTURE_ID),  # no href: next
        ([{"href": "https://x/refunds/R", "rel": "self"}], None),
        (["not a link", {"href": f"https://x/captures/{CAPTURE_ID}", "rel": "up"}], CAPTURE_ID),
        ({"rel": "up"}, None),  # not a list
        (None, None),
    ],
)
def test_a_refund_names_its_capture_by_the_up_link(links: Any, capture_id: str | None) -> None:
    assert Payment.model_validate(refund(links=links)).up_id == capture_id


def test_refund_event_resolves_the_up_links_capture(gateway: PayPalGateway, api: responses.RequestsMock) -> None:
    token(api)
    api.get(
        f"{API}/v2/payments/captures/{CAPTURE_ID}",
        json={
            "id": CAPTURE_ID,
            "invoice_id": PAYMENT_ID,
            "supplementary_data": {"related_ids": {"order_id": ORDER_ID}},
        },
    )
    parsed = gateway.parse_event({}, paypal_event("PAYMENT.CAPTURE.REFUNDED", refund()))

    assert (parsed.kind, parsed.refund_id, parsed.money) == (EventKind.REFUND, "1Y107995YT783435V", Money(99, "USD"))
    assert (parsed.payment_id, parsed.customer_id, parsed.gateway_ref) == (PAYMENT_ID, None, ORDER_ID)


def test_refund_event_without_an_up_link_asks_paypal_nothing(
    gateway: PayPalGateway, api: responses.RequestsMock
) -> None:
    body = paypal_event("PAYMENT.CAPTURE.REFUNDED", refund(links=[], custom_id=f"acme:{PAYMENT_ID}"))
    parsed = gateway.parse_event({}, body)
    assert (parsed.payment_id, parsed.customer_id, parsed.gateway_ref) == (PAYMENT_ID, "acme", None)
    assert len(api.calls) == 0


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"id": None}, "refund without its id"),
        ({"amount": None}, "without an amount"),
        ({"amount": {"currency_code": "USD", "value": "0.999"}}, "decimal places"),
        ({"amount": {"currency_code": "USD", "value": 0.99}}, "resource.payment.amount.value"),
    ],
)
def test_a_refund_without_its_id_or_a_readable_amount_is_a_value_error(
    gateway: PayPalGateway, api: responses.RequestsMock, fields: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        gateway.parse_event({}, paypal_event("PAYMENT.CAPTURE.REFUNDED", refund(**fields)))
    assert len(api.calls) == 0  # PayPal is not asked about the capture of a refund we cannot read


# -- orders and captures ----------------------------------------------------------------------------------


def test_a_resource_with_purchase_units_is_an_order() -> None:
    order = Event.model_validate({"id": "WH-1", "event_type": "X", "resource": {"id": ORDER_ID, "purchase_units": []}})
    assert isinstance(order.resource, Order)
    assert order.resource.unit.reference_id is None  # no unit: an empty one
    capture = Event.model_validate({"id": "WH-1", "event_type": "X", "resource": {"id": CAPTURE_ID}})
    assert isinstance(capture.resource, Payment)


def test_approval_reversed_names_its_order_by_order_id(gateway: PayPalGateway) -> None:
    resource = {"order_id": ORDER_ID, "purchase_units": [{"reference_id": PAYMENT_ID}]}
    parsed = gateway.parse_event({}, paypal_event("CHECKOUT.PAYMENT-APPROVAL.REVERSED", resource))
    assert (parsed.kind, parsed.gateway_ref, parsed.payment_id) == (EventKind.FAILURE, ORDER_ID, PAYMENT_ID)


def test_custom_id_that_is_not_text_is_no_id_of_ours(gateway: PayPalGateway) -> None:
    unit = {"reference_id": PAYMENT_ID, "custom_id": 12345, "amount": {"currency_code": "EUR", "value": "15.00"}}
    parsed = gateway.parse_event(
        {}, paypal_event("CHECKOUT.ORDER.APPROVED", {"id": ORDER_ID, "purchase_units": [unit]})
    )
    assert (parsed.payment_id, parsed.customer_id, parsed.money) == (PAYMENT_ID, None, Money(1500, "EUR"))


def test_an_order_event_with_a_bad_amount_is_a_value_error_whatever_its_kind(gateway: PayPalGateway) -> None:
    unit = {"reference_id": PAYMENT_ID, "amount": {"currency_code": "JPY", "value": "10.5"}}
    with pytest.raises(ValueError, match="decimal places"):
        gateway.parse_event({}, paypal_event("CHECKOUT.ORDER.VOIDED", {"id": ORDER_ID, "purchase_units": [unit]}))


def test_denied_capture_needs_no_amount_and_names_its_order(gateway: PayPalGateway) -> None:
    resource = {"id": CAPTURE_ID, "status": "DENIED", "supplementary_data": {"related_ids": {"order_id": ORDER_ID}}}
    parsed = gateway.parse_event({}, paypal_event("PAYMENT.CAPTURE.DENIED", resource))
    assert (parsed.kind, parsed.reason, parsed.gateway_ref) == (EventKind.FAILURE, "DENIED", ORDER_ID)


@pytest.mark.parametrize("supplementary", [None, [], {"related_ids": []}, {"related_ids": {"order_id": 5}}])
def test_capture_without_readable_related_ids_has_no_order(gateway: PayPalGateway, supplementary: Any) -> None:
    resource = {"id": CAPTURE_ID, "invoice_id": PAYMENT_ID, "supplementary_data": supplementary}
    parsed = gateway.parse_event({}, paypal_event("PAYMENT.CAPTURE.PENDING", resource))
    assert (parsed.kind, parsed.payment_id, parsed.gateway_ref) == (EventKind.HELD, PAYMENT_ID, None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (paypal_event("PAYMENT.CAPTURE.COMPLETED", "capture"), "resource"),
        (paypal_event("PAYMENT.CAPTURE.COMPLETED", ["capture"]), "resource"),
        (json.dumps({"event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {}}).encode(), "id"),
        (json.dumps({"id": "WH-1", "event_type": 7, "resource": {}}).encode(), "event_type"),
        (paypal_event("PAYMENT.CAPTURE.COMPLETED", {"amount": {"value": "1.00"}}), "currency_code"),
        (paypal_event("PAYMENT.CAPTURE.COMPLETED", {"id": CAPTURE_ID}), "without an amount"),
        (b"[]", "not a JSON object"),
    ],
)
def test_signed_but_malformed_events_are_value_errors(gateway: PayPalGateway, body: bytes, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        gateway.parse_event({}, body)


# -- answers ------------------------------------------------------------------------------------------------


def test_a_token_answer_without_an_access_token_is_rejected(
    gateway: PayPalGateway, api: responses.RequestsMock
) -> None:
    token(api, token_type="Bearer", expires_in=32400)
    with pytest.raises(GatewayRejected, match="access_token") as caught:
        gateway.fetch_status(ORDER_ID, PAYMENT_ID)
    assert caught.value.http_status == 502


def test_a_token_without_a_lifetime_is_used_once(gateway: PayPalGateway, api: responses.RequestsMock) -> None:
    for _ in range(2):
        token(api, access_token="T", expires_in="soon")
        api.get(f"{API}/v2/checkout/orders/{ORDER_ID}", json={"id": ORDER_ID, "status": "CREATED"})
        assert gateway.fetch_status(ORDER_ID, PAYMENT_ID).kind is EventKind.IGNORED
    assert [call.request.url for call in api.calls].count(f"{API}/v1/oauth2/token") == 2


def test_an_order_whose_purchase_units_are_not_a_list_is_read_without_them(
    gateway: PayPalGateway, api: responses.RequestsMock
) -> None:
    token(api)
    api.get(f"{API}/v2/checkout/orders/{ORDER_ID}", json={"id": ORDER_ID, "status": "APPROVED", "purchase_units": {}})
    assert gateway.fetch_status(ORDER_ID, PAYMENT_ID).kind is EventKind.CAPTURE


def test_a_completed_capture_without_an_amount_becomes_a_502(
    gateway: PayPalGateway, api: responses.RequestsMock
) -> None:
    token(api)
    order = {
        "id": ORDER_ID,
        "status": "COMPLETED",
        "purchase_units": [{"payments": {"captures": [{"status": "COMPLETED"}]}}],
    }
    api.get(f"{API}/v2/checkout/orders/{ORDER_ID}", json=order)
    with pytest.raises(GatewayRejected) as caught, reading_answers("paypal", "reconcile"):
        gateway.fetch_status(ORDER_ID, PAYMENT_ID)
    assert caught.value.http_status == 502


def test_an_order_status_that_is_not_text_reads_as_absent(gateway: PayPalGateway, api: responses.RequestsMock) -> None:
    token(api)
    api.get(f"{API}/v2/checkout/orders/{ORDER_ID}", json={"id": ORDER_ID, "status": ["COMPLETED"]})
    assert gateway.fetch_status(ORDER_ID, PAYMENT_ID).kind is EventKind.IGNORED  # nothing to settle


@pytest.mark.parametrize(
    "answer",
    [
        {"id": ORDER_ID, "links": [{"rel": "self", "href": "https://x"}]},
        {"id": ORDER_ID, "links": {"approve": "https://x"}},
        {"links": [{"rel": "approve", "href": "https://x"}]},
        {"id": "", "links": [{"rel": "approve", "href": "https://x"}]},
    ],
)
def test_a_created_order_without_an_id_or_approve_link_is_rejected(
    gateway: PayPalGateway, api: responses.RequestsMock, answer: dict[str, Any]
) -> None:
    token(api)
    api.post(f"{API}/v2/checkout/orders", status=201, json=answer)
    request = CreateRequest(
        payment_id=PAYMENT_ID, customer_id="acme", money=Money(1000, "USD"), description="x", idempotency_key="k"
    )
    with pytest.raises(GatewayRejected, match="approve link"):
        gateway.create(request)


def test_the_approve_link_is_taken_when_there_is_no_payer_action_link(
    gateway: PayPalGateway, api: responses.RequestsMock
) -> None:
    token(api)
    links = [{"rel": "payer-action"}, {"rel": "approve", "href": "https://approve"}]
    api.post(f"{API}/v2/checkout/orders", status=201, json={"id": ORDER_ID, "links": links})
    request = CreateRequest(
        payment_id=PAYMENT_ID, customer_id="acme", money=Money(1000, "USD"), description="x", idempotency_key="k"
    )
    assert gateway.create(request).next_action == {"type": "redirect", "url": "https://approve"}


@pytest.mark.parametrize("details", [None, "x", [], ["x"], [{"issue": 5}]])
def test_a_capture_refusal_without_a_readable_issue_is_raised(
    gateway: PayPalGateway, api: responses.RequestsMock, details: Any
) -> None:
    token(api)
    api.post(f"{API}/v2/checkout/orders/{ORDER_ID}/capture", status=422, json={"details": details})
    with pytest.raises(HttpRejected):
        gateway.capture(ORDER_ID, "capture-key")


def test_a_pending_capture_holds_the_payment_and_says_why(gateway: PayPalGateway) -> None:
    resource = {
        "id": CAPTURE_ID,
        "status": "PENDING",
        "status_details": {"reason": "RECEIVING_PREFERENCE_MANDATES_MANUAL_ACTION"},
        "invoice_id": PAYMENT_ID,
        "supplementary_data": {"related_ids": {"order_id": ORDER_ID}},
    }
    parsed = gateway.parse_event({}, paypal_event("PAYMENT.CAPTURE.PENDING", resource))
    assert (parsed.kind, parsed.gateway_ref, parsed.payment_id, parsed.money) == (
        EventKind.HELD,
        ORDER_ID,
        PAYMENT_ID,
        None,
    )
    assert parsed.reason == (
        "PayPal holds the capture: RECEIVING_PREFERENCE_MANDATES_MANUAL_ACTION (the currency must be accepted in "
        "PayPal's dashboard)"
    )
