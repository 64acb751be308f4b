"""PayPal adapter against a fake PayPal API (`responses`), and the shared HTTP helper it uses
(`payments.gateways.http`) against a real local server, since retries happen below `responses`."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import parse_qs

import pytest
import requests
import responses

from payments.gateways.base import (
    CreateRequest,
    CurrencyNotSupported,
    EventKind,
    GatewayRejected,
    GatewayUnavailable,
    SignatureInvalid,
)
from payments.gateways.http import HttpRejected, call_json, new_session
from payments.gateways.paypal import PayPalGateway, PayPalSettings, custom_id_for, parse_custom_id
from payments.models import PaymentStatus
from payments.money import Money

API = "http://paypal.test"
TOKEN = "A21AA-fake-token"
PAYMENT_ID = "pay_01JD0000000000000000000000"
CUSTOMER_ID = "cust-42"
ORDER_ID = "5O190127TN364715T"
APPROVE_URL = "https://www.sandbox.paypal.com/checkoutnow?token=5O190127TN364715T"


@pytest.fixture
def settings() -> PayPalSettings:
    return PayPalSettings(
        api_base=API,
        client_id="client-id",
        client_secret="client-secret",
        webhook_id="WH-ID-123",
        portal_return_url="https://portal.example/return",
    )


@pytest.fixture
def gateway(settings: PayPalSettings) -> PayPalGateway:
    return PayPalGateway(settings)


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def token_endpoint(api: responses.RequestsMock, expires_in: int = 32400, token: str = TOKEN) -> None:
    api.post(f"{API}/v1/oauth2/token", json={"access_token": token, "token_type": "Bearer", "expires_in": expires_in})


def request_for(money: Money, **overrides: Any) -> CreateRequest:
    fields: dict[str, Any] = {
        "payment_id": PAYMENT_ID,
        "customer_id": CUSTOMER_ID,
        "money": money,
        "description": "Mobile plan top-up",
        "idempotency_key": "idem-123",
    }
    fields.update(overrides)
    return CreateRequest(**fields)


CREATED = {
    "id": ORDER_ID,
    "status": "PAYER_ACTION_REQUIRED",
    "links": [
        {"href": f"{API}/v2/checkout/orders/{ORDER_ID}", "rel": "self", "method": "GET"},
        {"href": APPROVE_URL, "rel": "payer-action", "method": "GET"},
    ],
}


def sent_json(call: Any) -> Any:
    return json.loads(call.request.body)


# -- create ------------------------------------------------------------------------------------------


def test_create_makes_an_order_and_returns_the_approve_link(
    gateway: PayPalGateway, api: responses.RequestsMock
) -> None:
    token_endpoint(api)
    api.post(f"{API}/v2/checkout/orders", status=201, json=CREATED)

    result = gateway.create(request_for(Money(1000, "USD")))

    assert result.status is PaymentStatus.PENDING
    assert result.gateway_ref == ORDER_ID
    assert result.next_action == {"type": "redirect", "url": APPROVE_URL}
    token_call, order_call = api.calls
    expected_basic = base64.b64encode(b"client-id:client-secret").decode()
    assert token_call.request.headers["Authorization"] == f"Basic {expected_basic}"
    assert parse_qs(token_call.request.body) == {"grant_type": ["client_credentials"]}
    assert order_call.request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert order_call.request.headers["PayPal-Request-Id"] == "idem-123"
    assert sent_json(order_call) == {
        "intent": "CAPTURE",
        "purchase_units": [
            {
                "reference_id": PAYMENT_ID,
                "invoice_id": PAYMENT_ID,
                "custom_id": f"{CUSTOMER_ID}:{PAYMENT_ID}",
                "description": "Mobile plan top-up",
                "amount": {"currency_code": "USD", "value": "10.00"},
            }
        ],
        "payment_source": {
            "paypal": {
                "experience_context": {
                    "return_url": "https://portal.example/return",
                    "cancel_url": "https://portal.example/return",
                    "user_action": "PAY_NOW",
                    "shipping_preference": "NO_SHIPPING",
                }
            }
        },
    }


@pytest.mark.parametrize(
    ("money", "value"),
    [
        (Money(1000, "JPY"), "1000"),
        (Money(100000, "HUF"), "1000"),  # ISO has two decimals, PayPal takes none
        (Money(5000, "TWD"), "50"),
        (Money(1999, "EUR"), "19.99"),
    ],
)
def test_amount_value_has_the_digits_paypal_takes(
    gateway: PayPalGateway, api: responses.RequestsMock, money: Money, value: str
) -> None:
    token_endpoint(api)
    api.post(f"{API}/v2/checkout/orders", status=201, json=CREATED)

    gateway.create(request_for(money, return_url="https://r.example/ok", cancel_url="https://r.example/no"))

    body = sent_json(api.calls[1])
    assert body["purchase_units"][0]["amount"] == {"currency_code": money.currency, "value": value}
    context = body["payment_source"]["paypal"]["experience_context"]
    assert (context["return_url"], context["cancel_url"]) == ("https://r.example/ok", "https://r.example/no")


@pytest.mark.parametrize(
    ("money", "field"),
    [
        (Money(1250, "KWD"), "currency"),
        (Money(100, "CLF"), "currency"),
        (Money(100, "INR"), "currency"),
        (Money(100050, "HUF"), "amount"),  # 1000.50 HUF: no decimals at PayPal
        (Money(1, "TWD"), "amount"),
        (Money(0, "USD"), "amount"),
    ],
)
def test_unsupported_currency_or_amount_refused_before_any_call(
    gateway: PayPalGateway, api: responses.RequestsMock, money: Money, field: str
) -> None:
    with pytest.raises(CurrencyNotSupported) as caught:
        gateway.create(request_for(money))

    assert caught.value.field == field
    assert len(api.calls) == 0


def test_token_is_cached_until_it_nears_expiry(settings: PayPalSettings, api: responses.RequestsMock) -> None:
    gateway = PayPalGateway(settings)
    token_endpoint(api)
    api.post(f"{API}/v2/checkout/orders", status=201, json=CREATED)
    api.post(f"{API}/v2/checkout/orders", status=201, json=CREATED)
    gateway.create(request_for(Money(1000, "USD")))
    gateway.create(request_for(Money(1000, "USD"), idempotency_key="idem-456"))
    assert [c.request.url for c in api.calls].count(f"{API}/v1/oauth2/token") == 1

    short_lived = PayPalGateway(settings)
    token_endpoint(api, expires_in=30)  # inside the refresh margin: never reused
    short_lived.create(request_for(Money(1000, "USD")))
    short_lived.create(request_for(Money(1000, "USD")))
    assert [c.request.url for c in api.calls].count(f"{API}/v1/oauth2/token") == 3


def test_revoked_token_is_replaced_once(gateway: PayPalGateway, api: responses.RequestsMock) -> None:
    token_endpoint(api, token="old")
    api.post(f"{API}/v2/checkout/orders", status=401, json={"error": "invalid_token"})
    token_endpoint(api, token="new")
    api.post(f"{API}/v2/checkout/orders", status=201, json=CREATED)

    result = gateway.create(request_for(Money(1000, "USD")))

    assert result.gateway_ref == ORDER_ID
    assert api.calls[3].request.headers["Authorization"] == "Bearer new"
    assert api.calls[3].request.headers["PayPal-Request-Id"] == "idem-123"  # same key: still one order


def test_long_customer_id_leaves_custom_id_to_the_payment_id(
    gateway: PayPalGateway, api: responses.RequestsMock
) -> None:
    token_endpoint(api)
    api.post(f"{API}/v2/checkout/orders", status=201, json=CREATED)

    gateway.create(request_for(Money(1000, "USD"), customer_id="c" * 120))

    assert sent_json(api.calls[1])["purchase_units"][0]["custom_id"] == PAYMENT_ID


def test_custom_id_round_trip() -> None:
    assert parse_custom_id(custom_id_for("tenant:cust-1", PAYMENT_ID)) == ("tenant:cust-1", PAYMENT_ID)
    assert parse_custom_id(PAYMENT_ID) == (None, PAYMENT_ID)
    assert parse_custom_id(None) == (None, None)


def test_server_error_is_unavailable_and_client_error_rejected(
    settings: PayPalSettings, api: responses.RequestsMock
) -> None:
    gateway = PayPalGateway(settings, session=new_session(retries=0))  # `responses` honours the retry policy
    token_endpoint(api)
    api.post(f"{API}/v2/checkout/orders", status=503, body="upstream down")
    api.post(
        f"{API}/v2/checkout/orders",
        status=422,
        json={"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "CURRENCY_NOT_SUPPORTED"}]},
    )

    with pytest.raises(GatewayUnavailable):
        gateway.create(request_for(Money(1000, "USD")))
    with pytest.raises(GatewayRejected) as caught:
        gateway.create(request_for(Money(1000, "USD")))
    assert caught.value.http_status == 502


def test_missing_credentials_refused_without_a_call(api: responses.RequestsMock) -> None:
    gateway = PayPalGateway(PayPalSettings(api_base=API))
    with pytest.raises(GatewayRejected, match="credentials"):
        gateway.create(request_for(Money(1000, "USD")))
    assert len(api.calls) == 0


# -- capture -----------------------------------------------------------------------------------------


def captured_order(capture_status: str, **capture: Any) -> dict[str, Any]:
    return {
        "id": ORDER_ID,
        "status": "COMPLETED",
        "purchase_units": [
            {
                "reference_id": PAYMENT_ID,
                "custom_id": f"{CUSTOMER_ID}:{PAYMENT_ID}",
                "payments": {
                    "captures": [
                        {
                            "id": "3C679366HH908993F",
                            "status": capture_status,
                            "amount": {"currency_code": "USD", "value": "10.00"},
                            **capture,
                        }
                    ]
                },
            }
        ],
    }


@pytest.mark.parametrize(
    ("order", "kind", "money", "reason"),
    [
        (captured_order("COMPLETED"), EventKind.SUCCESS, Money(1000, "USD"), None),
        (
            captured_order("DECLINED", status_details={"reason": "DECLINED_BY_RISK_FRAUD_FILTERS"}),
            EventKind.FAILURE,
            None,
            "DECLINED_BY_RISK_FRAUD_FILTERS",
        ),
        (captured_order("PENDING"), EventKind.HELD, None, "PayPal holds the capture"),
        (
            captured_order("PENDING", status_details={"reason": "RECEIVING_PREFERENCE_MANDATES_MANUAL_ACTION"}),
            EventKind.HELD,
            None,
            "PayPal holds the capture: RECEIVING_PREFERENCE_MANDATES_MANUAL_ACTION (the currency must be accepted in "
            "PayPal's dashboard)",
        ),
        (captured_order("SOMETHING_NEW"), EventKind.IGNORED, None, "capture SOMETHING_NEW"),
    ],
)
def test_capture_reads_the_capture_status(
    gateway: PayPalGateway,
    api: responses.RequestsMock,
    order: dict[str, Any],
    kind: EventKind,
    money: Money | None,
    reason: str | None,
) -> None:
    token_endpoint(api)
    api.post(f"{API}/v2/checkout/orders/{ORDER_ID}/capture", status=201, json=order)

    answer = gateway.capture(ORDER_ID, "capture-key")

    assert (answer.kind, answer.money, answer.reason) == (kind, money, reason)
    sent = api.calls[1].request
    assert sent.headers["PayPal-Request-Id"] == "capture-key"
    assert sent.headers["Prefer"] == "return=representation"


def test_capture_of_an_already_captured_order_reads_the_order(
    gateway: PayPalGateway, api: responses.RequestsMock
) -> None:
    token_endpoint(api)
    already = {"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "ORDER_ALREADY_CAPTURED"}]}
    api.post(f"{API}/v2/checkout/orders/{ORDER_ID}/capture", status=422, json=already)
    api.get(f"{API}/v2/checkout/orders/{ORDER_ID}", json=captured_order("COMPLETED"))

    answer = gateway.capture(ORDER_ID, "capture-key")

    assert answer.kind is EventKind.SUCCESS
    assert answer.money == Money(1000, "USD")


def test_capture_refused_by_the_instrument_is_failure(gateway: PayPalGateway, api: responses.RequestsMock) -> None:
    token_endpoint(api)
    declined = {"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "INSTRUMENT_DECLINED"}]}
    api.post(f"{API}/v2/checkout/orders/{ORDER_ID}/capture", status=422, json=declined)

    answer = gateway.capture(ORDER_ID, "capture-key")

    assert (answer.kind, answer.reason) == (EventKind.FAILURE, "INSTRUMENT_DECLINED")


def test_ids_that_are_not_paypal_ids_never_reach_a_url(gateway: PayPalGateway, api: responses.RequestsMock) -> None:
    for bad in ("../v1/oauth2/token", "abc?x=1", ""):
        with pytest.raises(GatewayRejected):
            gateway.capture(bad, "k")
        with pytest.raises(GatewayRejected):
            gateway.fetch_status(bad, PAYMENT_ID)
    assert len(api.calls) == 0


# -- webhooks ----------------------------------------------------------------------------------------

SIGNATURE_HEADERS = {
    "paypal-auth-algo": "SHA256withRSA",
    "paypal-cert-url": "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42",
    "paypal-transmission-id": "69cd13f0-d67a-11e5-baa3-778b53f4ae55",
    "paypal-transmission-sig": "lmI95Jx3Y9nhR5SJWlHVIWpg4AgFk7n9bCHSRxbrd8A9zrhdu2rMyFrmz+Zjh3s3boXB07VX==",
    "paypal-transmission-time": "2016-02-18T20:01:35Z",
}
# Spacing and key order as PayPal sent them: the verify call must carry these exact bytes.
CAPTURE_COMPLETED = (
    b'{"id":"WH-9YJ16368AL6057013-6DC39630JU8971338","event_version":"1.0","resource_version":"2.0",'
    b'"create_time":"2021-11-01T17:39:22.666Z","resource_type":"capture","event_type":"PAYMENT.CAPTURE.COMPLETED",'
    b'"summary":"Payment completed for $ 23.99 USD","resource":{"id":"02335565G34798738","status":"COMPLETED",'
    b'"amount":{"currency_code":"USD","value":"23.99"},'
    b'"custom_id":"cust-42:pay_01JD0000000000000000000000","invoice_id":"pay_01JD0000000000000000000000",'
    b'"final_capture":true,"supplementary_data":{"related_ids":{"order_id":"1W5313654M9708630"}},'
    b'"seller_receivable_breakdown":{"gross_amount":{"currency_code":"USD","value":"23.99"},'
    b'"paypal_fee":{"currency_code":"USD","value":"1.36"},"net_amount":{"currency_code":"USD","value":"22.63"}}},'
    b'"links":[] }'
)
VERIFY_URL = f"{API}/v1/notifications/verify-webhook-signature"


def test_webhook_verified_by_postback_with_the_exact_body(gateway: PayPalGateway, api: responses.RequestsMock) -> None:
    token_endpoint(api)
    api.post(VERIFY_URL, json={"verification_status": "SUCCESS"})

    gateway.verify_webhook(SIGNATURE_HEADERS, CAPTURE_COMPLETED)

    sent = api.calls[1].request
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    raw = sent.body if isinstance(sent.body, bytes) else sent.body.encode()
    assert raw.endswith(b',"webhook_event":' + CAPTURE_COMPLETED + b"}")
    body = json.loads(raw)
    assert body["webhook_id"] == "WH-ID-123"
    assert body["auth_algo"] == "SHA256withRSA"
    assert body["cert_url"] == SIGNATURE_HEADERS["paypal-cert-url"]
    assert body["transmission_id"] == SIGNATURE_HEADERS["paypal-transmission-id"]
    assert body["transmission_sig"] == SIGNATURE_HEADERS["paypal-transmission-sig"]
    assert body["transmission_time"] == SIGNATURE_HEADERS["paypal-transmission-time"]
    assert body["webhook_event"]["id"] == "WH-9YJ16368AL6057013-6DC39630JU8971338"


@pytest.mark.parametrize("answer", [{"verification_status": "FAILURE"}, {}])
def test_webhook_paypal_does_not_confirm_is_refused(
    gateway: PayPalGateway, api: responses.RequestsMock, answer: dict[str, str]
) -> None:
    token_endpoint(api)
    api.post(VERIFY_URL, json=answer)

    with pytest.raises(SignatureInvalid) as caught:
        gateway.verify_webhook(SIGNATURE_HEADERS, CAPTURE_COMPLETED)
    assert caught.value.http_status == 400


def test_webhook_paypal_refusing_the_fields_is_refused(gateway: PayPalGateway, api: responses.RequestsMock) -> None:
    token_endpoint(api)
    api.post(VERIFY_URL, status=400, json={"name": "VALIDATION_ERROR"})

    with pytest.raises(SignatureInvalid):
        gateway.verify_webhook(SIGNATURE_HEADERS, CAPTURE_COMPLETED)


@pytest.mark.parametrize("missing", sorted(SIGNATURE_HEADERS))
def test_webhook_missing_a_signature_header_is_refused_without_a_call(
    gateway: PayPalGateway, api: responses.RequestsMock, missing: str
) -> None:
    headers = {k: v for k, v in SIGNATURE_HEADERS.items() if k != missing}

    with pytest.raises(SignatureInvalid) as caught:
        gateway.verify_webhook(headers, CAPTURE_COMPLETED)

    assert caught.value.http_status == 400
    assert missing in caught.value.message
    assert len(api.calls) == 0


@pytest.mark.parametrize("body", [b"not json", b"[1]", b"\xff"])
def test_webhook_body_not_an_object_is_refused_without_a_call(
    gateway: PayPalGateway, api: responses.RequestsMock, body: bytes
) -> None:
    with pytest.raises(SignatureInvalid):
        gateway.verify_webhook(SIGNATURE_HEADERS, body)
    assert len(api.calls) == 0


def test_webhook_without_configured_webhook_id_is_refused(api: responses.RequestsMock) -> None:
    gateway = PayPalGateway(PayPalSettings(api_base=API, client_id="a", client_secret="b"))
    with pytest.raises(SignatureInvalid):
        gateway.verify_webhook(SIGNATURE_HEADERS, CAPTURE_COMPLETED)
    assert len(api.calls) == 0


def test_webhook_verification_outage_is_unavailable(gateway: PayPalGateway, api: responses.RequestsMock) -> None:
    token_endpoint(api)
    api.post(VERIFY_URL, body=requests.ConnectionError("reset"))

    with pytest.raises(GatewayUnavailable):
        gateway.verify_webhook(SIGNATURE_HEADERS, CAPTURE_COMPLETED)


def paypal_event(event_type: str, resource: dict[str, Any]) -> bytes:
    return json.dumps({"id": "WH-1", "event_type": event_type, "resource": resource}).encode()


def order_resource(**extra: Any) -> dict[str, Any]:
    return {
        "id": ORDER_ID,
        "status": "APPROVED",
        "purchase_units": [
            {
                "reference_id": PAYMENT_ID,
                "custom_id": f"{CUSTOMER_ID}:{PAYMENT_ID}",
                "amount": {"currency_code": "EUR", "value": "15.00"},
            }
        ],
        **extra,
    }


def test_capture_completed_event_is_success(gateway: PayPalGateway) -> None:
    parsed = gateway.parse_event({}, CAPTURE_COMPLETED)

    assert parsed.kind is EventKind.SUCCESS
    assert parsed.provider == "paypal"
    assert (parsed.event_id, parsed.event_type) == (
        "WH-9YJ16368AL6057013-6DC39630JU8971338",
        "PAYMENT.CAPTURE.COMPLETED",
    )
    assert (parsed.payment_id, parsed.customer_id) == (PAYMENT_ID, CUSTOMER_ID)
    assert parsed.gateway_ref == "1W5313654M9708630"  # the order id, which create() returned
    assert parsed.money == Money(2399, "USD")


def test_order_approved_event_asks_for_capture(gateway: PayPalGateway) -> None:
    parsed = gateway.parse_event({}, paypal_event("CHECKOUT.ORDER.APPROVED", order_resource()))

    assert parsed.kind is EventKind.CAPTURE
    assert parsed.gateway_ref == ORDER_ID
    assert (parsed.payment_id, parsed.customer_id) == (PAYMENT_ID, CUSTOMER_ID)
    assert parsed.money == Money(1500, "EUR")


def test_order_approved_event_falls_back_to_reference_id(gateway: PayPalGateway) -> None:
    resource = order_resource()
    del resource["purchase_units"][0]["custom_id"]

    parsed = gateway.parse_event({}, paypal_event("CHECKOUT.ORDER.APPROVED", resource))

    assert (parsed.payment_id, parsed.customer_id) == (PAYMENT_ID, None)


@pytest.mark.parametrize("event_type", ["PAYMENT.CAPTURE.DENIED", "PAYMENT.CAPTURE.DECLINED"])
def test_denied_capture_is_failure_with_reason(gateway: PayPalGateway, event_type: str) -> None:
    resource = {
        "id": "02335565G34798738",
        "status": "DENIED",
        "status_details": {"reason": "DECLINED_BY_RISK_FRAUD_FILTERS"},
        "amount": {"currency_code": "USD", "value": "23.99"},
        "custom_id": f"{CUSTOMER_ID}:{PAYMENT_ID}",
        "supplementary_data": {"related_ids": {"order_id": ORDER_ID}},
    }

    parsed = gateway.parse_event({}, paypal_event(event_type, resource))

    assert parsed.kind is EventKind.FAILURE
    assert parsed.reason == "DECLINED_BY_RISK_FRAUD_FILTERS"
    assert (parsed.payment_id, parsed.gateway_ref) == (PAYMENT_ID, ORDER_ID)


@pytest.mark.parametrize("event_type", ["CHECKOUT.ORDER.VOIDED", "CHECKOUT.PAYMENT-APPROVAL.REVERSED"])
def test_voided_or_reversed_order_is_failure(gateway: PayPalGateway, event_type: str) -> None:
    parsed = gateway.parse_event({}, paypal_event(event_type, order_resource(status="VOIDED")))

    assert parsed.kind is EventKind.FAILURE
    assert (parsed.payment_id, parsed.gateway_ref, parsed.reason) == (PAYMENT_ID, ORDER_ID, event_type)


# PayPal's own sample: a refund resource names the capture only through its "up" link.
REFUNDED = (
    b'{"id":"WH-1GE84257G0350133W-6RW800890C634293G","event_version":"1.0","create_time":"2018-08-15T19:14:04.543Z",'
    b'"resource_type":"refund","resource_version":"2.0","event_type":"PAYMENT.CAPTURE.REFUNDED",'
    b'"summary":"A $ 0.99 USD capture payment was refunded","resource":{"id":"1Y107995YT783435V",'
    b'"amount":{"currency_code":"USD","value":"0.99"},"status":"COMPLETED",'
    b'"links":[{"href":"https://api.paypal.com/v2/payments/refunds/1Y107995YT783435V","rel":"self","method":"GET"},'
    b'{"href":"https://api.paypal.com/v2/payments/captures/0JF852973C016714D","rel":"up","method":"GET"}]}}'
)


def capture_lookup(api: responses.RequestsMock, custom_id: str | None = f"{CUSTOMER_ID}:{PAYMENT_ID}") -> None:
    token_endpoint(api)
    api.get(
        f"{API}/v2/payments/captures/0JF852973C016714D",
        json={
            "id": "0JF852973C016714D",
            **({"custom_id": custom_id} if custom_id else {}),
            "supplementary_data": {"related_ids": {"order_id": ORDER_ID}},
        },
    )


def test_refund_event_resolves_the_capture_to_our_payment_and_order(
    gateway: PayPalGateway, api: responses.RequestsMock
) -> None:
    capture_lookup(api)
    parsed = gateway.parse_event({}, REFUNDED)

    assert parsed.kind is EventKind.REFUND
    assert parsed.refund_id == "1Y107995YT783435V"
    assert parsed.money == Money(99, "USD")
    assert parsed.gateway_ref == ORDER_ID  # the id we stored at create, so the payment is found
    assert (parsed.payment_id, parsed.customer_id) == (PAYMENT_ID, CUSTOMER_ID)


def test_refund_event_with_our_ids_names_the_payment(gateway: PayPalGateway, api: responses.RequestsMock) -> None:
    capture_lookup(api, custom_id=None)
    event = json.loads(REFUNDED)
    event["resource"]["custom_id"] = f"{CUSTOMER_ID}:{PAYMENT_ID}"

    parsed = gateway.parse_event({}, json.dumps(event).encode())

    assert (parsed.payment_id, parsed.customer_id, parsed.gateway_ref) == (PAYMENT_ID, CUSTOMER_ID, ORDER_ID)


def test_capture_references_resolve_a_capture_to_our_ids(gateway: PayPalGateway, api: responses.RequestsMock) -> None:
    token_endpoint(api)
    api.get(
        f"{API}/v2/payments/captures/0JF852973C016714D",
        json={
            "id": "0JF852973C016714D",
            "custom_id": f"{CUSTOMER_ID}:{PAYMENT_ID}",
            "supplementary_data": {"related_ids": {"order_id": ORDER_ID}},
        },
    )

    assert gateway.capture_references("0JF852973C016714D") == (CUSTOMER_ID, PAYMENT_ID, ORDER_ID)


@pytest.mark.parametrize("event_type", ["PAYMENT.AUTHORIZATION.CREATED", "BILLING.SUBSCRIPTION.CREATED"])
def test_other_events_are_ignored(gateway: PayPalGateway, event_type: str) -> None:
    resource = {"id": "X1", "status": "PENDING", "custom_id": PAYMENT_ID}
    parsed = gateway.parse_event({}, paypal_event(event_type, resource))
    assert parsed.kind is EventKind.IGNORED
    assert parsed.payment_id == PAYMENT_ID
    assert parsed.money is None


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"id": "WH-1", "event_type": "PAYMENT.CAPTURE.COMPLETED"}',
        paypal_event("PAYMENT.CAPTURE.COMPLETED", {"amount": {"currency_code": "USD", "value": "1.999"}}),
        paypal_event("PAYMENT.CAPTURE.COMPLETED", {"amount": {"currency_code": "XXX1", "value": "1"}}),
    ],
)
def test_malformed_events_raise_value_error(gateway: PayPalGateway, body: bytes) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        gateway.parse_event({}, body)


# -- reconciliation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "kind", "money"),
    [
        (captured_order("COMPLETED"), EventKind.SUCCESS, Money(1000, "USD")),
        (captured_order("PARTIALLY_REFUNDED"), EventKind.SUCCESS, Money(1000, "USD")),
        (captured_order("FAILED"), EventKind.FAILURE, None),
        ({**order_resource(), "status": "VOIDED"}, EventKind.FAILURE, None),
        (order_resource(), EventKind.CAPTURE, None),  # approved, never captured: the caller captures
        ({**order_resource(), "status": "PAYER_ACTION_REQUIRED"}, EventKind.IGNORED, None),
    ],
)
def test_fetch_status_reads_the_order(
    gateway: PayPalGateway, api: responses.RequestsMock, order: dict[str, Any], kind: EventKind, money: Money | None
) -> None:
    token_endpoint(api)
    api.get(f"{API}/v2/checkout/orders/{ORDER_ID}", json=order)

    answer = gateway.fetch_status(ORDER_ID, PAYMENT_ID)

    assert (answer.kind, answer.money) == (kind, money)


def test_fetch_status_ignores_an_order_of_another_payment(gateway: PayPalGateway, api: responses.RequestsMock) -> None:
    token_endpoint(api)
    api.get(f"{API}/v2/checkout/orders/{ORDER_ID}", json=captured_order("COMPLETED"))

    assert gateway.fetch_status(ORDER_ID, "pay_other").kind is EventKind.IGNORED


# -- payments.gateways.http against a real local server -----------------------------------------------


class FakeGateway(http.server.BaseHTTPRequestHandler):
    """Answers each request with the next scripted (status, body); records what it received."""

    script: ClassVar[list[tuple[int, bytes]]] = []
    seen: ClassVar[list[tuple[str, str, dict[str, str]]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
        status, body = self.script.pop(0) if self.script else (200, b"{}")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    FakeGateway.script, FakeGateway.seen = [], []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeGateway)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_post_with_idempotency_header_is_retried_after_5xx(server: str) -> None:
    FakeGateway.script = [(503, b"{}"), (502, b"{}"), (201, b'{"id": "order-1"}')]

    answer = call_json(
        new_session(retries=2, backoff=0), "POST", f"{server}/orders", json={}, headers={"PayPal-Request-Id": "k1"}
    )

    assert answer == {"id": "order-1"}
    assert [(m, p, h["paypal-request-id"]) for m, p, h in FakeGateway.seen] == [("POST", "/orders", "k1")] * 3


def test_retries_are_bounded(server: str) -> None:
    FakeGateway.script = [(500, b"{}")] * 5

    with pytest.raises(GatewayUnavailable):
        call_json(new_session(retries=2, backoff=0), "GET", f"{server}/orders/1")

    assert len(FakeGateway.seen) == 3  # the first try and two retries


def test_post_without_idempotency_header_is_sent_once(server: str) -> None:
    FakeGateway.script = [(503, b"{}"), (201, b"{}")]

    with pytest.raises(GatewayUnavailable) as caught:
        call_json(new_session(retries=2, backoff=0), "POST", f"{server}/orders", json={}, gateway="razorpay")

    assert len(FakeGateway.seen) == 1
    assert caught.value.message == "razorpay answered 503 (POST /orders)"


def test_client_error_keeps_status_and_body(server: str) -> None:
    FakeGateway.script = [(422, b'{"details": [{"issue": "ORDER_ALREADY_CAPTURED"}]}')]

    with pytest.raises(HttpRejected) as caught:
        call_json(new_session(), "POST", f"{server}/orders/1/capture?token=secret", json={})

    assert caught.value.status == 422
    assert caught.value.body == {"details": [{"issue": "ORDER_ALREADY_CAPTURED"}]}
    assert caught.value.http_status == 502
    assert "secret" not in caught.value.message  # query strings stay out of messages


@pytest.mark.parametrize("body", [b"<html>ok</html>", b"[1, 2]"])
def test_success_that_is_not_a_json_object_is_rejected(server: str, body: bytes) -> None:
    FakeGateway.script = [(200, body)]

    with pytest.raises(GatewayRejected):
        call_json(new_session(), "GET", f"{server}/orders/1")


def test_empty_success_body_is_an_empty_object(server: str) -> None:
    FakeGateway.script = [(204, b"")]
    assert call_json(new_session(), "POST", f"{server}/void", headers={"Idempotency-Key": "k"}) == {}


def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as s:  # a 127.0.0.1 port nothing listens on once this closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    with pytest.raises(GatewayUnavailable, match="could not be reached"):
        call_json(new_session(retries=0), "GET", f"http://127.0.0.1:{port}/")


def test_read_timeout_is_unavailable(server: str) -> None:
    slow = threading.Event()

    def handler(self: FakeGateway) -> None:
        slow.wait(5)  # released below, after the client gave up

    original = FakeGateway.do_GET
    FakeGateway.do_GET = handler  # type: ignore[method-assign]
    try:
        with pytest.raises(GatewayUnavailable, match="did not answer in time"):
            call_json(new_session(retries=0), "GET", f"{server}/slow", timeout=(1.0, 0.2))
    finally:
        slow.set()
        FakeGateway.do_GET = original  # type: ignore[method-assign]


def test_throttled_request_is_unavailable(server: str) -> None:
    FakeGateway.script = [(429, b'{"name": "RATE_LIMIT_REACHED"}')]

    with pytest.raises(GatewayUnavailable):
        call_json(new_session(retries=0), "POST", f"{server}/orders", json={})
