"""Stripe adapter against a fake Stripe API (`responses` intercepts the SDK's requests client)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses
import stripe

from payments.gateways.base import (
    CardInput,
    CreateRequest,
    CurrencyNotSupported,
    EventKind,
    GatewayRejected,
    GatewayUnavailable,
    SignatureInvalid,
)
from payments.gateways.stripe import StripeGateway, StripeSettings
from payments.models import PaymentStatus
from payments.money import Money

API = "http://stripe.test"
SECRET_KEY = "sk_test_fake"
WEBHOOK_SECRET = "whsec_test_secret"
CARD_NUMBER = "4000002500003155"
CVC = "987"
PAYMENT_ID = "pay_01JD0000000000000000000000"
CUSTOMER_ID = "cust-42"


@pytest.fixture
def settings() -> StripeSettings:
    return StripeSettings(
        api_base=API,
        secret_key=SECRET_KEY,
        webhook_secret=WEBHOOK_SECRET,
        portal_return_url="https://portal.example/return",
    )


@pytest.fixture
def gateway(settings: StripeSettings) -> StripeGateway:
    return StripeGateway(settings)


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def request_for(money: Money, **overrides: Any) -> CreateRequest:
    fields: dict[str, Any] = {
        "payment_id": PAYMENT_ID,
        "customer_id": CUSTOMER_ID,
        "money": money,
        "description": "Mobile plan top-up",
        "idempotency_key": "idem-123",
        "payment_method": "pm_card_visa",
    }
    fields.update(overrides)
    return CreateRequest(**fields)


def intent(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "pi_123",
        "object": "payment_intent",
        "status": status,
        "amount": 1250,
        "currency": "usd",
        "client_secret": "pi_123_secret_abc",
        "metadata": {"payment_id": PAYMENT_ID, "customer_id": CUSTOMER_ID},
        "payment_method": {"id": "pm_1", "object": "payment_method", "card": {"brand": "visa", "last4": "4242"}},
        **extra,
    }


def form(call: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


# -- create ------------------------------------------------------------------------------------------


def test_succeeded_intent_completes_and_sends_our_references(
    gateway: StripeGateway, api: responses.RequestsMock
) -> None:
    api.post(f"{API}/v1/payment_intents", json=intent("succeeded"))

    result = gateway.create(request_for(Money(1250, "USD")))

    assert result.status is PaymentStatus.COMPLETED
    assert result.gateway_ref == "pi_123"
    assert result.next_action is None
    assert (result.card_brand, result.card_last4) == ("visa", "4242")
    sent = api.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert sent.headers["Idempotency-Key"] == "idem-123"
    body = form(api.calls[0])
    assert body["amount"] == "1250"
    assert body["currency"] == "usd"
    assert body["confirm"] == "true"
    assert body["payment_method"] == "pm_card_visa"
    assert body["metadata[payment_id]"] == PAYMENT_ID
    assert body["metadata[customer_id]"] == CUSTOMER_ID
    assert body["description"] == "Mobile plan top-up"
    assert body["return_url"] == "https://portal.example/return"


@pytest.mark.parametrize(
    ("amount", "currency", "stripe_amount"),
    [
        ("12.50", "USD", "1250"),  # cents
        ("1000", "JPY", "1000"),  # zero-decimal: whole yen
        ("1.250", "KWD", "1250"),  # three-decimal: fils, last digit 0
        ("500", "ISK", "50000"),  # ISO has no decimals, Stripe keeps two
        ("3000", "MGA", "3000"),  # ISO two decimals, Stripe zero-decimal
    ],
)
def test_amount_is_sent_in_stripes_unit(
    gateway: StripeGateway, api: responses.RequestsMock, amount: str, currency: str, stripe_amount: str
) -> None:
    api.post(f"{API}/v1/payment_intents", json=intent("succeeded"))

    gateway.create(request_for(Money.parse(amount, currency)))

    body = form(api.calls[0])
    assert body["amount"] == stripe_amount
    assert body["currency"] == currency.lower()


def test_requires_action_is_pending_with_stripe_sdk_next_action(
    gateway: StripeGateway, api: responses.RequestsMock
) -> None:
    api.post(f"{API}/v1/payment_intents", json=intent("requires_action", next_action={"type": "use_stripe_sdk"}))

    result = gateway.create(request_for(Money(1250, "USD")))

    assert result.status is PaymentStatus.PENDING
    assert result.next_action == {"type": "stripe_sdk", "client_secret": "pi_123_secret_abc"}
    assert result.gateway_ref == "pi_123"


def decline_body() -> dict[str, Any]:
    return {
        "error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
            "payment_intent": {"id": "pi_declined", "object": "payment_intent", "status": "requires_payment_method"},
            "payment_method": {
                "id": "pm_2",
                "object": "payment_method",
                "card": {"brand": "mastercard", "last4": "9995"},
            },
        }
    }


def test_decline_is_a_cancelled_result_not_an_exception(gateway: StripeGateway, api: responses.RequestsMock) -> None:
    api.post(f"{API}/v1/payment_intents", status=402, json=decline_body())

    result = gateway.create(request_for(Money(1250, "USD")))

    assert result.status is PaymentStatus.CANCELLED
    assert result.failure_reason == "card_declined: insufficient_funds"
    assert result.gateway_ref == "pi_declined"
    assert (result.card_brand, result.card_last4) == ("mastercard", "9995")
    assert len(api.calls) == 1  # a decline is not retried


def card_request() -> CreateRequest:
    card = CardInput(number=CARD_NUMBER, exp_month=12, exp_year=2031, cvc=CVC)
    return request_for(Money(1250, "USD"), card=card, payment_method=None)


def assert_no_card_data(*texts: str) -> None:
    for text in texts:
        assert CARD_NUMBER not in text
        assert CVC not in text


def test_raw_card_becomes_a_payment_method_and_never_reaches_logs(
    gateway: StripeGateway, api: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the SDK logs request bodies at DEBUG: those must be dropped
    api.post(
        f"{API}/v1/payment_methods",
        json={"id": "pm_raw", "object": "payment_method", "card": {"brand": "visa", "last4": "3155"}},
    )
    api.post(f"{API}/v1/payment_intents", json=intent("requires_action", payment_method="pm_raw"))

    result = gateway.create(card_request())

    method_call, intent_call = api.calls
    assert form(method_call) == {
        "type": "card",
        "card[number]": CARD_NUMBER,
        "card[exp_month]": "12",
        "card[exp_year]": "2031",
        "card[cvc]": CVC,
    }
    assert method_call.request.headers["Idempotency-Key"] == "idem-123:pm"
    assert form(intent_call)["payment_method"] == "pm_raw"
    assert intent_call.request.headers["Idempotency-Key"] == "idem-123"
    assert (result.card_brand, result.card_last4) == ("visa", "3155")
    assert any(r.name.startswith("stripe") for r in caplog.records)  # the SDK did log, just not the body
    assert_no_card_data(caplog.text, repr(result), repr(card_request()))


def test_card_refused_when_registered_is_a_decline(
    gateway: StripeGateway, api: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = {"error": {"type": "card_error", "code": "incorrect_number", "message": "Your card number is incorrect."}}
    api.post(f"{API}/v1/payment_methods", status=402, json=body)

    result = gateway.create(card_request())

    assert result.status is PaymentStatus.CANCELLED
    assert result.failure_reason == "incorrect_number: Your card number is incorrect."
    assert result.gateway_ref == ""
    assert_no_card_data(caplog.text, repr(result))


def test_refused_request_is_gateway_rejected_without_card_data(
    gateway: StripeGateway, api: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.post(
        f"{API}/v1/payment_methods",
        json={"id": "pm_raw", "object": "payment_method", "card": {"brand": "visa", "last4": "3155"}},
    )
    body = {"error": {"type": "invalid_request_error", "code": "parameter_invalid_string", "param": "description"}}
    api.post(f"{API}/v1/payment_intents", status=400, json=body)

    with pytest.raises(GatewayRejected) as caught:
        gateway.create(card_request())

    assert caught.value.http_status == 502
    assert "parameter_invalid_string" in caught.value.message
    assert "description" in caught.value.message
    assert_no_card_data(str(caught.value), repr(caught.value), caplog.text)


def test_authentication_failure_is_gateway_rejected(gateway: StripeGateway, api: responses.RequestsMock) -> None:
    api.post(f"{API}/v1/payment_intents", status=401, json={"error": {"type": "invalid_request_error"}})

    with pytest.raises(GatewayRejected):
        gateway.create(request_for(Money(1250, "USD")))


def test_server_error_and_connection_error_are_unavailable(
    settings: StripeSettings, api: responses.RequestsMock
) -> None:
    client = stripe.StripeClient(
        SECRET_KEY, base_addresses={"api": API}, http_client=stripe.RequestsClient(), max_network_retries=0
    )
    gateway = StripeGateway(settings, client=client)
    api.post(f"{API}/v1/payment_intents", status=500, json={"error": {"type": "api_error"}})
    api.post(f"{API}/v1/payment_intents", body=requests.ConnectionError("connection reset"))

    for _ in range(2):
        with pytest.raises(GatewayUnavailable) as caught:
            gateway.create(request_for(Money(1250, "USD")))
        assert caught.value.http_status == 503


@pytest.mark.parametrize(
    ("money", "field"),
    [
        (Money(100, "CLF"), "currency"),  # four-digit unit of account
        (Money(100, "UYW"), "currency"),  # four-digit index unit
        (Money(100, "BOV"), "currency"),  # funds code
        (Money(1000, "IQD"), "currency"),  # not a Stripe presentment currency
        (Money(49, "USD"), "amount"),  # below the 0.50 USD minimum
        (Money(0, "EUR"), "amount"),
        (Money(1255, "KWD"), "amount"),  # three-decimal amounts must end in 0
        (Money(10_000_000_000, "USD"), "amount"),  # more than eight digits
        (Money(1050, "MGA"), "amount"),  # Stripe charges whole ariary
    ],
)
def test_unsupported_currency_or_amount_refused_before_any_call(
    gateway: StripeGateway, api: responses.RequestsMock, money: Money, field: str
) -> None:
    with pytest.raises(CurrencyNotSupported) as caught:
        gateway.create(request_for(money))

    assert caught.value.field == field
    assert caught.value.http_status == 422
    assert len(api.calls) == 0


def test_currency_check_accepts_edge_amounts(gateway: StripeGateway) -> None:
    gateway.check_currency(Money(50, "USD"))
    gateway.check_currency(Money(99_999_999, "USD"))
    gateway.check_currency(Money(1250, "KWD"))
    gateway.check_currency(Money(50, "JPY"))


# -- webhooks ----------------------------------------------------------------------------------------


def event(event_type: str, obj: dict[str, Any], **data: Any) -> bytes:
    body = {
        "id": "evt_1",
        "object": "event",
        "type": event_type,
        "created": 1714544302,
        "data": {"object": obj, **data},
    }
    return json.dumps(body).encode()


def signed(body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=timestamp)
    return {"stripe-signature": header}


SUCCEEDED = event("payment_intent.succeeded", intent("succeeded", amount_received=1250))


def test_signed_webhook_verifies(gateway: StripeGateway) -> None:
    gateway.verify_webhook(signed(SUCCEEDED), SUCCEEDED)


def test_one_matching_signature_among_several_verifies(gateway: StripeGateway) -> None:
    rotated = signed(SUCCEEDED, "whsec_old")["stripe-signature"]
    current = signed(SUCCEEDED)["stripe-signature"].split(",")[1]
    gateway.verify_webhook({"stripe-signature": f"{rotated},{current}"}, SUCCEEDED)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (signed(SUCCEEDED), SUCCEEDED.replace(b"1250", b"9250")),  # tampered body
        (signed(SUCCEEDED, secret="whsec_wrong"), SUCCEEDED),  # wrong secret
        ({}, SUCCEEDED),  # missing header
        ({"stripe-signature": "garbage"}, SUCCEEDED),
        (signed(SUCCEEDED, timestamp=int(time.time()) - 301), SUCCEEDED),  # older than the 300 s tolerance
        ({"stripe-signature": f"t={int(time.time())},v1=00"}, b"\xff\xfe"),  # not UTF-8
    ],
    ids=["tampered", "wrong-secret", "missing", "garbage", "stale", "not-utf8"],
)
def test_bad_signatures_are_refused(gateway: StripeGateway, headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(SignatureInvalid) as caught:
        gateway.verify_webhook(headers, body)
    assert caught.value.http_status == 400


def test_unconfigured_webhook_secret_refuses_everything() -> None:
    gateway = StripeGateway(StripeSettings(webhook_secret=""))
    with pytest.raises(SignatureInvalid):
        gateway.verify_webhook(signed(SUCCEEDED, secret=""), SUCCEEDED)


def test_succeeded_event_carries_amount_received_and_our_ids(gateway: StripeGateway) -> None:
    parsed = gateway.parse_event({}, event("payment_intent.succeeded", intent("succeeded", amount_received=1250)))

    assert parsed.kind is EventKind.SUCCESS
    assert parsed.provider == "stripe"
    assert (parsed.event_id, parsed.event_type) == ("evt_1", "payment_intent.succeeded")
    assert (parsed.payment_id, parsed.customer_id) == (PAYMENT_ID, CUSTOMER_ID)
    assert parsed.gateway_ref == "pi_123"
    assert parsed.money == Money(1250, "USD")


@pytest.mark.parametrize(
    ("currency", "amount", "expected"),
    [("jpy", 1000, Money(1000, "JPY")), ("kwd", 1250, Money(1250, "KWD")), ("isk", 50000, Money(500, "ISK"))],
)
def test_event_amounts_convert_back_from_stripes_unit(
    gateway: StripeGateway, currency: str, amount: int, expected: Money
) -> None:
    body = event("payment_intent.succeeded", intent("succeeded", currency=currency, amount_received=amount))
    assert gateway.parse_event({}, body).money == expected


def test_payment_failed_event_is_failure_with_decline_reason(gateway: StripeGateway) -> None:
    error = {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline", "message": "Declined."}
    body = event("payment_intent.payment_failed", intent("requires_payment_method", last_payment_error=error))

    parsed = gateway.parse_event({}, body)

    assert parsed.kind is EventKind.FAILURE
    assert parsed.reason == "card_declined: generic_decline"
    assert parsed.payment_id == PAYMENT_ID


def test_canceled_event_is_failure_with_cancellation_reason(gateway: StripeGateway) -> None:
    body = event("payment_intent.canceled", intent("canceled", cancellation_reason="abandoned"))

    parsed = gateway.parse_event({}, body)

    assert parsed.kind is EventKind.FAILURE
    assert parsed.reason == "abandoned"


def charge(amount_refunded: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": "ch_1",
        "object": "charge",
        "amount": 5000,
        "amount_refunded": amount_refunded,
        "currency": "eur",
        "payment_intent": "pi_123",
        "metadata": {},
        **extra,
    }


def test_partial_refund_event_reports_only_the_new_refund(gateway: StripeGateway) -> None:
    refunds = {"object": "list", "data": [{"id": "re_2", "amount": 1500}, {"id": "re_1", "amount": 1000}]}
    body = event("charge.refunded", charge(2500, refunds=refunds), previous_attributes={"amount_refunded": 1000})

    parsed = gateway.parse_event({}, body)

    assert parsed.kind is EventKind.REFUND
    assert parsed.money == Money(1500, "EUR")
    assert parsed.refund_id == "re_2"
    assert parsed.gateway_ref == "pi_123"  # the charge carries no metadata of ours
    assert parsed.payment_id is None


def test_full_refund_event_without_refund_list_uses_event_id(gateway: StripeGateway) -> None:
    meta = {"payment_id": PAYMENT_ID, "customer_id": CUSTOMER_ID}
    body = event("charge.refunded", charge(5000, metadata=meta), previous_attributes={"amount_refunded": 0})

    parsed = gateway.parse_event({}, body)

    assert parsed.money == Money(5000, "EUR")
    assert parsed.refund_id == "evt_1"
    assert parsed.payment_id == PAYMENT_ID


def test_other_event_types_are_ignored(gateway: StripeGateway) -> None:
    parsed = gateway.parse_event({}, event("payment_intent.created", intent("requires_payment_method")))
    assert parsed.kind is EventKind.IGNORED
    assert parsed.payment_id == PAYMENT_ID


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"id": "evt_1", "type": "payment_intent.succeeded"}', event("payment_intent.succeeded", {})],
)
def test_malformed_events_raise_value_error(gateway: StripeGateway, body: bytes) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        gateway.parse_event({}, body)


# -- reconciliation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "kind", "money", "reason"),
    [
        (intent("succeeded", amount_received=1250), EventKind.SUCCESS, Money(1250, "USD"), None),
        (intent("canceled", cancellation_reason="abandoned"), EventKind.FAILURE, None, "abandoned"),
        (
            intent(
                "requires_payment_method", last_payment_error={"code": "card_declined", "decline_code": "lost_card"}
            ),
            EventKind.FAILURE,
            None,
            "card_declined: lost_card",
        ),
        (intent("requires_action"), EventKind.IGNORED, None, None),
        (intent("processing"), EventKind.IGNORED, None, None),
    ],
)
def test_fetch_status_reads_the_payment_intent(
    gateway: StripeGateway,
    api: responses.RequestsMock,
    remote: dict[str, Any],
    kind: EventKind,
    money: Money | None,
    reason: str | None,
) -> None:
    api.get(f"{API}/v1/payment_intents/pi_123", json=remote)

    answer = gateway.fetch_status("pi_123", PAYMENT_ID)

    assert (answer.kind, answer.money, answer.reason) == (kind, money, reason)
    assert api.calls[0].request.headers["Authorization"] == f"Bearer {SECRET_KEY}"


def test_fetch_status_ignores_an_intent_of_another_payment(gateway: StripeGateway, api: responses.RequestsMock) -> None:
    api.get(f"{API}/v1/payment_intents/pi_123", json=intent("succeeded", amount_received=1250))

    answer = gateway.fetch_status("pi_123", "pay_other")

    assert answer.kind is EventKind.IGNORED


def test_fetch_status_needs_a_payment_intent_id(gateway: StripeGateway, api: responses.RequestsMock) -> None:
    with pytest.raises(GatewayRejected):
        gateway.fetch_status("", PAYMENT_ID)
    assert len(api.calls) == 0
