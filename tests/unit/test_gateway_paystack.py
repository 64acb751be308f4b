"""Paystack adapter: the transaction it initializes, webhook signatures and event mapping, verify.

HTTP is faked with `responses` at http://paystack.test; signatures are computed here, independently.
"""

from __future__ import annotations

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
from payments.gateways.paystack import PaystackGateway, PaystackSettings, payment_id_from_reference, reference_for
from payments.ids import new_payment_id
from payments.money import Money

BASE = "http://paystack.test"
SECRET_KEY = "sk_test_paystack"
PAYMENT_ID = new_payment_id(datetime(2026, 11, 25, 17, 25, tzinfo=UTC))
REFERENCE = "pay-" + PAYMENT_ID.removeprefix("pay_")
SETTINGS = PaystackSettings(
    api_base=BASE,
    secret_key=SECRET_KEY,
    portal_return_url="https://portal.example/payments",
)


@pytest.fixture
def gateway() -> PaystackGateway:
    return PaystackGateway(SETTINGS, session=requests.Session())


def create_request(
    money: Money, email: str | None = "payer@example.com", return_url: str | None = None, attempt: int = 1
) -> CreateRequest:
    return CreateRequest(
        payment_id=PAYMENT_ID,
        customer_id="acme",
        money=money,
        description="Top-up",
        idempotency_key="idem-1",
        email=email,
        return_url=return_url,
        attempt=attempt,
    )


def sign(body: bytes, secret: str = SECRET_KEY) -> dict[str, str]:
    return {"x-paystack-signature": hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()}


def test_is_a_gateway() -> None:
    adapter: Gateway = PaystackGateway(SETTINGS)
    assert adapter.name == "paystack"


def test_reference_swaps_the_underscore_both_ways() -> None:
    assert reference_for(PAYMENT_ID) == REFERENCE
    assert "_" not in REFERENCE
    assert payment_id_from_reference(REFERENCE) == PAYMENT_ID
    assert payment_id_from_reference(REFERENCE + ".1a2b3c4d") == PAYMENT_ID  # a repeated create's reference
    assert payment_id_from_reference("T173424527684156") is None  # someone else's reference
    assert payment_id_from_reference("pay-not-a-ulid") is None


# ---- create ---------------------------------------------------------------------------------------


@responses.activate
def test_create_initializes_in_kobo_with_a_safe_reference(gateway: PaystackGateway) -> None:
    responses.post(
        f"{BASE}/transaction/initialize",
        json={
            "status": True,
            "message": "Authorization URL created",
            "data": {
                "authorization_url": "https://checkout.paystack.com/0peioxfhpn",
                "access_code": "0peioxfhpn",
                "reference": REFERENCE,
            },
        },
    )
    result = gateway.create(create_request(Money(500000, "NGN")))

    sent = responses.calls[0].request
    assert sent.url == f"{BASE}/transaction/initialize"
    assert sent.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert json.loads(sent.body) == {
        "email": "payer@example.com",
        "amount": 500000,
        "currency": "NGN",
        "reference": REFERENCE,
        "callback_url": "https://portal.example/payments",
        "metadata": {"payment_id": PAYMENT_ID, "customer_id": "acme"},
    }
    assert result.gateway_ref == REFERENCE
    assert result.next_action == {"type": "redirect", "url": "https://checkout.paystack.com/0peioxfhpn"}


@responses.activate
def test_create_uses_the_requests_return_url(gateway: PaystackGateway) -> None:
    responses.post(f"{BASE}/transaction/initialize", json={"data": {"authorization_url": "https://c/x"}})
    result = gateway.create(create_request(Money(1000, "GHS"), return_url="https://portal.example/back"))
    assert json.loads(responses.calls[0].request.body)["callback_url"] == "https://portal.example/back"
    assert result.gateway_ref == REFERENCE  # Paystack did not echo it: ours stands


@pytest.mark.parametrize(
    ("currency", "accepted"),
    [("NGN", True), ("GHS", True), ("ZAR", True), ("KES", True), ("USD", True), ("EUR", False), ("INR", False)],
)
def test_check_currency(gateway: PaystackGateway, currency: str, accepted: bool) -> None:
    money = Money(1000, currency)
    if accepted:
        gateway.check_currency(money)
    else:
        with pytest.raises(CurrencyNotSupported) as refused:
            gateway.check_currency(money)
        assert refused.value.field == "currency"


@responses.activate
def test_create_refuses_other_currencies_and_missing_email_before_any_call(gateway: PaystackGateway) -> None:
    with pytest.raises(CurrencyNotSupported) as refused:
        gateway.create(create_request(Money(1000, "EUR")))
    assert refused.value.field == "currency"
    with pytest.raises(CurrencyNotSupported) as no_email:
        gateway.create(create_request(Money(1000, "NGN"), email=None))
    assert no_email.value.field == "email"
    assert no_email.value.http_status == 422
    assert len(responses.calls) == 0


DUPLICATE = {"status": False, "message": "Duplicate Transaction Reference"}


@responses.activate
def test_a_later_attempt_opens_its_transaction_under_its_own_reference(gateway: PaystackGateway) -> None:
    # Paystack can neither dedupe an initialize nor hand back an earlier checkout URL: an attempt after one that
    # died opens another transaction, under the reference the store bound to the payment before the call.
    responses.post(f"{BASE}/transaction/initialize", json={"data": {"authorization_url": "https://c/second"}})
    assert gateway.reference_for_attempt(PAYMENT_ID, 1) == REFERENCE
    assert gateway.reference_for_attempt(PAYMENT_ID, 3) == REFERENCE + ".3"
    result = gateway.create(create_request(Money(1000, "NGN"), attempt=2))

    sent = json.loads(responses.calls[0].request.body)
    assert sent["reference"] == REFERENCE + ".2"
    assert result.gateway_ref == REFERENCE + ".2"
    assert result.next_action == {"type": "redirect", "url": "https://c/second"}
    assert payment_id_from_reference(result.gateway_ref) == PAYMENT_ID


@responses.activate
def test_a_duplicate_reference_is_refused_without_opening_another(gateway: PaystackGateway) -> None:
    # Each attempt's reference is used once, so a duplicate means someone else used ours: nothing is retried.
    responses.post(f"{BASE}/transaction/initialize", status=400, json=DUPLICATE)
    with pytest.raises(GatewayRejected, match="Duplicate Transaction Reference"):
        gateway.create(create_request(Money(1000, "NGN")))
    assert len(responses.calls) == 1


@responses.activate
def test_other_4xx_is_rejected_with_paystacks_message_and_not_repeated(gateway: PaystackGateway) -> None:
    responses.post(f"{BASE}/transaction/initialize", status=400, json={"status": False, "message": "Invalid Email"})
    with pytest.raises(GatewayRejected, match="Invalid Email"):
        gateway.create(create_request(Money(1000, "NGN")))
    assert len(responses.calls) == 1


@responses.activate
def test_create_timeout_and_5xx_are_unavailable(gateway: PaystackGateway) -> None:
    responses.post(f"{BASE}/transaction/initialize", body=requests.exceptions.ConnectTimeout("slow"))
    with pytest.raises(GatewayUnavailable):
        gateway.create(create_request(Money(1000, "NGN")))
    responses.replace(responses.POST, f"{BASE}/transaction/initialize", status=503, body="busy")
    with pytest.raises(GatewayUnavailable):
        gateway.create(create_request(Money(1000, "NGN")))


@responses.activate
def test_create_answer_without_url_is_rejected(gateway: PaystackGateway) -> None:
    responses.post(f"{BASE}/transaction/initialize", json={"status": True, "data": {}})
    with pytest.raises(GatewayRejected, match="authorization_url"):
        gateway.create(create_request(Money(1000, "NGN")))


# ---- webhooks -------------------------------------------------------------------------------------


def charge_success(metadata: Any) -> bytes:
    body = {
        "event": "charge.success",
        "data": {
            "id": 4677002219,
            "domain": "test",
            "status": "success",
            "reference": REFERENCE,
            "amount": 10000,
            "currency": "KES",
            "gateway_response": "Successful",
            "paid_at": "2025-02-11T10:42:20.000Z",
            "channel": "card",
            "metadata": metadata,
            "fees": 290,
            "customer": {"email": "payer@example.com", "customer_code": "CUS_x"},
        },
    }
    return json.dumps(body).encode()


def test_verify_accepts_the_right_signature(gateway: PaystackGateway) -> None:
    body = charge_success({"payment_id": PAYMENT_ID})
    gateway.verify_webhook(sign(body), body)


@pytest.mark.parametrize(
    ("headers_for", "status"),
    [
        (lambda body: sign(body.replace(b"10000", b"99999")), 401),  # tampered body
        (lambda body: sign(body, "sk_test_other"), 401),  # wrong secret
        (lambda body: {}, 400),  # missing header
        (lambda body: {"x-paystack-signature": hmac.new(SECRET_KEY.encode(), body, hashlib.sha256).hexdigest()}, 401),
    ],
)
def test_verify_refuses(gateway: PaystackGateway, headers_for: Any, status: int) -> None:
    body = charge_success({"payment_id": PAYMENT_ID})
    with pytest.raises(SignatureInvalid) as refused:
        gateway.verify_webhook(headers_for(body), body)
    assert refused.value.http_status == status


def test_charge_success_reads_metadata(gateway: PaystackGateway) -> None:
    body = charge_success({"payment_id": PAYMENT_ID, "customer_id": "acme"})
    event = gateway.parse_event(sign(body), body)
    assert event.provider == "paystack"
    assert event.event_id == "charge.success:4677002219"
    assert event.kind is EventKind.SUCCESS
    assert (event.payment_id, event.customer_id) == (PAYMENT_ID, "acme")
    assert event.gateway_ref == REFERENCE
    assert event.money == Money(10000, "KES")


@pytest.mark.parametrize("metadata", ["", 0, None])
def test_charge_success_with_empty_metadata_maps_the_reference_back(gateway: PaystackGateway, metadata: Any) -> None:
    body = charge_success(metadata)
    event = gateway.parse_event(sign(body), body)
    assert event.kind is EventKind.SUCCESS
    assert event.payment_id == PAYMENT_ID
    assert event.customer_id is None


def test_charge_success_with_metadata_as_json_text(gateway: PaystackGateway) -> None:
    body = charge_success(json.dumps({"payment_id": PAYMENT_ID, "customer_id": "acme"}))
    event = gateway.parse_event(sign(body), body)
    assert (event.payment_id, event.customer_id) == (PAYMENT_ID, "acme")


def test_refund_processed_is_refund_of_the_transaction(gateway: PaystackGateway) -> None:
    body = json.dumps(
        {
            "event": "refund.processed",
            "data": {
                "id": 1234567,
                "status": "processed",
                "transaction_reference": REFERENCE,
                "refund_reference": "T638398225102230",
                "amount": "2500",  # refund payloads may send amounts as digit strings
                "currency": "NGN",
                "domain": "test",
            },
        }
    ).encode()
    event = gateway.parse_event(sign(body), body)
    assert event.kind is EventKind.REFUND
    assert event.event_id == "refund.processed:1234567"
    assert event.payment_id == PAYMENT_ID
    assert event.gateway_ref == REFERENCE
    assert event.money == Money(2500, "NGN")
    assert event.refund_id == "1234567"


def test_other_events_are_ignored(gateway: PaystackGateway) -> None:
    body = json.dumps({"event": "transfer.success", "data": {"id": 99, "reference": "tr_1"}}).encode()
    event = gateway.parse_event(sign(body), body)
    assert event.kind is EventKind.IGNORED
    assert event.event_id == "transfer.success:99"
    assert event.payment_id is None


@pytest.mark.parametrize("body", [b"nope", b"[]", b'{"data": {"id": 1}}', b'{"event": "charge.success", "data": {}}'])
def test_parse_refuses_what_is_not_a_paystack_event(gateway: PaystackGateway, body: bytes) -> None:
    with pytest.raises(ValueError, match="paystack"):
        gateway.parse_event({}, body)


# ---- reconciliation -------------------------------------------------------------------------------


def verify_answer(status: str, **extra: Any) -> dict[str, Any]:
    data = {"id": 1, "status": status, "reference": REFERENCE, "amount": 40333, "currency": "NGN"}
    data.update(extra)
    return {"status": True, "message": "Verification successful", "data": data}


@responses.activate
def test_fetch_status_success(gateway: PaystackGateway) -> None:
    responses.get(f"{BASE}/transaction/verify/{REFERENCE}", json=verify_answer("success"))
    answer = gateway.fetch_status(REFERENCE, PAYMENT_ID)
    assert answer.kind is EventKind.SUCCESS
    assert answer.money == Money(40333, "NGN")
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {SECRET_KEY}"


@pytest.mark.parametrize("status", ["failed", "abandoned", "reversed"])
@responses.activate
def test_fetch_status_failure(gateway: PaystackGateway, status: str) -> None:
    responses.get(f"{BASE}/transaction/verify/{REFERENCE}", json=verify_answer(status, gateway_response="Declined"))
    answer = gateway.fetch_status(REFERENCE, PAYMENT_ID)
    assert answer.kind is EventKind.FAILURE
    assert answer.reason == "Declined"


@responses.activate
def test_fetch_status_ongoing_is_open_and_uses_the_payment_id_without_ref(gateway: PaystackGateway) -> None:
    responses.get(f"{BASE}/transaction/verify/{REFERENCE}", json=verify_answer("ongoing"))
    assert gateway.fetch_status("", PAYMENT_ID).kind is EventKind.IGNORED


@responses.activate
def test_fetch_status_unknown_reference_is_open(gateway: PaystackGateway) -> None:
    responses.get(
        f"{BASE}/transaction/verify/{REFERENCE}",
        status=400,
        json={"status": False, "message": "Transaction reference not found"},
    )
    assert gateway.fetch_status(REFERENCE, PAYMENT_ID).kind is EventKind.IGNORED


@responses.activate
def test_fetch_status_bad_key_is_rejected_and_timeout_unavailable(gateway: PaystackGateway) -> None:
    responses.get(
        f"{BASE}/transaction/verify/{REFERENCE}", status=401, json={"status": False, "message": "Invalid key"}
    )
    with pytest.raises(GatewayRejected, match="Invalid key"):
        gateway.fetch_status(REFERENCE, PAYMENT_ID)
    responses.replace(responses.GET, f"{BASE}/transaction/verify/{REFERENCE}", body=requests.exceptions.ReadTimeout())
    with pytest.raises(GatewayUnavailable):
        gateway.fetch_status(REFERENCE, PAYMENT_ID)
