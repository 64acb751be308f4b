"""NOWPayments adapter: the invoice it creates, IPN signatures over the canonical form, event mapping.

HTTP is faked with `responses` at http://nowpayments.test. The canonical string an IPN is signed
over is written out by hand here (sorted keys at every depth, no spaces, raw UTF-8, numbers as sent)
and signed independently, so the adapter's serialiser is checked against a fixed oracle.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal
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
from payments.gateways.nowpayments import (
    JsonNumber,
    NowPaymentsGateway,
    NowPaymentsSettings,
    dumps_canonical,
    ids_from_order_id,
    loads_exact,
    order_id_for,
)
from payments.ids import new_payment_id
from payments.money import Money

BASE = "http://nowpayments.test"
IPN_SECRET = "ipn-secret-test"
PAYMENT_ID = new_payment_id(datetime(2026, 11, 25, 17, 25, tzinfo=UTC))
ORDER_ID = f"acme:{PAYMENT_ID}"
SETTINGS = NowPaymentsSettings(
    api_base=BASE,
    api_key="np-api-key",
    ipn_secret=IPN_SECRET,
    public_base_url="https://api.example/",
    portal_return_url="https://portal.example/payments",
)


@pytest.fixture
def gateway() -> NowPaymentsGateway:
    return NowPaymentsGateway(SETTINGS, session=requests.Session())


def create_request(money: Money) -> CreateRequest:
    return CreateRequest(
        payment_id=PAYMENT_ID,
        customer_id="acme",
        money=money,
        description="Top-up für Café",
        idempotency_key="idem-1",
    )


def sign_text(canonical: str, secret: str = IPN_SECRET) -> dict[str, str]:
    return {"x-nowpayments-sig": hmac.new(secret.encode(), canonical.encode("utf-8"), hashlib.sha512).hexdigest()}


def test_is_a_gateway() -> None:
    adapter: Gateway = NowPaymentsGateway(SETTINGS)
    assert adapter.name == "nowpayments"


def test_order_id_carries_customer_and_payment() -> None:
    assert order_id_for("acme", PAYMENT_ID) == ORDER_ID
    assert ids_from_order_id(ORDER_ID) == (PAYMENT_ID, "acme")
    assert ids_from_order_id(f"tenant:with:colons:{PAYMENT_ID}") == (PAYMENT_ID, "tenant:with:colons")
    assert ids_from_order_id(PAYMENT_ID) == (None, None)
    assert ids_from_order_id("ord_123") == (None, None)


# ---- create ---------------------------------------------------------------------------------------


@responses.activate
def test_create_sends_an_exact_decimal_price_and_our_order_id(gateway: NowPaymentsGateway) -> None:
    responses.post(
        f"{BASE}/v1/invoice",
        status=201,
        json={
            "id": "4522625843",
            "order_id": ORDER_ID,
            "price_amount": "1234.50",
            "price_currency": "usd",
            "invoice_url": "https://nowpayments.io/payment/?iid=4522625843",
        },
    )
    result = gateway.create(create_request(Money(123450, "USD")))

    sent = responses.calls[0].request
    assert sent.url == f"{BASE}/v1/invoice"
    assert sent.headers["x-api-key"] == "np-api-key"
    assert sent.headers["Content-Type"] == "application/json"
    body_text = sent.body.decode("utf-8")
    assert '"price_amount":1234.50' in body_text  # a JSON number written from the Decimal, not a float
    body = json.loads(body_text, parse_float=Decimal)
    assert body == {
        "price_amount": Decimal("1234.50"),
        "price_currency": "usd",
        "order_id": ORDER_ID,
        "order_description": "Top-up für Café",
        "ipn_callback_url": "https://api.example/webhooks/nowpayments",
        "success_url": "https://portal.example/payments",
        "cancel_url": "https://portal.example/payments",
        "is_fixed_rate": True,
    }
    assert result.gateway_ref == "4522625843"
    assert result.next_action == {"type": "redirect", "url": "https://nowpayments.io/payment/?iid=4522625843"}


@responses.activate
def test_create_accepts_a_numeric_invoice_id(gateway: NowPaymentsGateway) -> None:
    responses.post(f"{BASE}/v1/invoice", json={"id": 4522625843, "invoice_url": "https://nowpayments.io/p"})
    assert gateway.create(create_request(Money(1000, "EUR"))).gateway_ref == "4522625843"


@responses.activate
def test_create_refuses_unsupported_currency_before_any_call(gateway: NowPaymentsGateway) -> None:
    for money in (Money(1000, "INR"), Money(1000, "NGN")):
        with pytest.raises(CurrencyNotSupported) as refused:
            gateway.create(create_request(money))
        assert refused.value.field == "currency"
    assert len(responses.calls) == 0


@responses.activate
def test_create_errors(gateway: NowPaymentsGateway) -> None:
    responses.post(f"{BASE}/v1/invoice", body=requests.exceptions.ReadTimeout())
    with pytest.raises(GatewayUnavailable):
        gateway.create(create_request(Money(1000, "USD")))
    responses.replace(responses.POST, f"{BASE}/v1/invoice", status=500, json={})
    with pytest.raises(GatewayUnavailable):
        gateway.create(create_request(Money(1000, "USD")))
    responses.replace(responses.POST, f"{BASE}/v1/invoice", status=400, json={"message": "bad"})
    with pytest.raises(GatewayRejected):
        gateway.create(create_request(Money(1000, "USD")))
    responses.replace(responses.POST, f"{BASE}/v1/invoice", json={"id": "1"})  # no invoice_url
    with pytest.raises(GatewayRejected, match="invoice_url"):
        gateway.create(create_request(Money(1000, "USD")))


# ---- the canonical form ---------------------------------------------------------------------------

# As a gateway might send it: keys unsorted, spaces, nested object, numbers in several shapes.
IPN_RAW = (
    '{"payment_status": "finished", "payment_id": 123456789, "parent_payment_id": 987654321,\n'
    ' "invoice_id": 4522625843, "pay_address": "address", "payin_extra_id": null,\n'
    ' "price_amount": 12.50, "price_currency": "usd", "pay_amount": 15, "actually_paid": 15,\n'
    ' "actually_paid_at_fiat": 0, "pay_currency": "trx", "order_id": "' + ORDER_ID + '",\n'
    ' "order_description": "Café \\u00e9t\\u00e9 / top-up", "purchase_id": "123456789",\n'
    ' "outcome_amount": 14.8106, "outcome_currency": "trx", "payment_extra_ids": null,\n'
    ' "fee": {"serviceFee": 0, "depositFee": 0.09853637216235617, "withdrawalFee": 0, "currency": "btc"}}'
)
# What JSON.stringify of the recursively sorted object gives: the escapes become raw é, `/` stays.
IPN_CANONICAL = (
    '{"actually_paid":15,"actually_paid_at_fiat":0,'
    '"fee":{"currency":"btc","depositFee":0.09853637216235617,"serviceFee":0,"withdrawalFee":0},'
    '"invoice_id":4522625843,"order_description":"Café été / top-up","order_id":"' + ORDER_ID + '",'
    '"outcome_amount":14.8106,"outcome_currency":"trx","parent_payment_id":987654321,'
    '"pay_address":"address","pay_amount":15,"pay_currency":"trx","payin_extra_id":null,'
    '"payment_extra_ids":null,"payment_id":123456789,"payment_status":"finished",'
    '"price_amount":12.50,"price_currency":"usd","purchase_id":"123456789"}'
)


def test_canonical_form_sorts_deeply_keeps_number_tokens_and_writes_utf8_raw() -> None:
    assert dumps_canonical(loads_exact(IPN_RAW.encode())) == IPN_CANONICAL


def test_canonical_form_of_raw_utf8_equals_that_of_escapes() -> None:
    raw_utf8 = IPN_RAW.replace("\\u00e9", "é").encode("utf-8")
    assert dumps_canonical(loads_exact(raw_utf8)) == IPN_CANONICAL


def test_exact_parse_never_makes_floats() -> None:
    value = loads_exact(b'{"a": 0.09853637216235617, "b": [15, -1e-7]}')
    assert value == {"a": JsonNumber("0.09853637216235617"), "b": [JsonNumber("15"), JsonNumber("-1e-7")]}
    assert value["a"].to_decimal() == Decimal("0.09853637216235617")
    with pytest.raises(ValueError, match="NaN"):
        loads_exact(b'{"a": NaN}')
    with pytest.raises(TypeError):
        dumps_canonical({"a": 0.5})


# ---- webhooks -------------------------------------------------------------------------------------


def test_verify_accepts_the_signature_over_the_canonical_form(gateway: NowPaymentsGateway) -> None:
    gateway.verify_webhook(sign_text(IPN_CANONICAL), IPN_RAW.encode())
    gateway.verify_webhook(sign_text(IPN_CANONICAL), IPN_RAW.replace("\\u00e9", "é").encode("utf-8"))


def test_verify_refuses_a_signature_over_the_raw_body_or_an_ascii_escaped_form(gateway: NowPaymentsGateway) -> None:
    with pytest.raises(SignatureInvalid):
        gateway.verify_webhook(sign_text(IPN_RAW), IPN_RAW.encode())
    escaped = json.dumps(json.loads(IPN_RAW, parse_float=Decimal), sort_keys=True, separators=(",", ":"), default=str)
    with pytest.raises(SignatureInvalid):
        gateway.verify_webhook(sign_text(escaped), IPN_RAW.encode())


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        (sign_text(IPN_CANONICAL), IPN_RAW.replace('"finished"', '"refunded"').encode(), 401),  # tampered
        (sign_text(IPN_CANONICAL, "another-secret"), IPN_RAW.encode(), 401),  # wrong secret
        ({}, IPN_RAW.encode(), 400),  # missing header
        (sign_text(IPN_CANONICAL), b"not json", 400),
        (sign_text("[]"), b"[]", 400),
    ],
)
def test_verify_refuses(gateway: NowPaymentsGateway, headers: dict[str, str], body: bytes, status: int) -> None:
    with pytest.raises(SignatureInvalid) as refused:
        gateway.verify_webhook(headers, body)
    assert refused.value.http_status == status


def test_verify_refuses_a_number_changed_only_in_its_spelling(gateway: NowPaymentsGateway) -> None:
    # 12.50 and 12.5 are the same float; the signed text differs, so the signature must not match.
    with pytest.raises(SignatureInvalid):
        gateway.verify_webhook(sign_text(IPN_CANONICAL), IPN_RAW.replace("12.50", "12.5").encode())


def ipn(status: str, **overrides: Any) -> bytes:
    body: dict[str, Any] = {
        "payment_id": 5077125051,
        "invoice_id": 4522625843,
        "payment_status": status,
        "price_amount": Decimal("12.50"),
        "price_currency": "usd",
        "actually_paid": Decimal("0.00058"),
        "order_id": ORDER_ID,
    }
    body.update(overrides)
    return dumps_canonical(body).encode()


def test_finished_is_success_for_the_fiat_price(gateway: NowPaymentsGateway) -> None:
    event = gateway.parse_event({}, IPN_RAW.encode())
    assert event.provider == "nowpayments"
    assert event.kind is EventKind.SUCCESS
    assert event.event_id == "123456789:finished:15"
    assert event.event_type == "finished"
    assert (event.payment_id, event.customer_id) == (PAYMENT_ID, "acme")
    assert event.gateway_ref == "4522625843"
    assert event.money == Money(1250, "USD")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("failed", EventKind.FAILURE),
        ("expired", EventKind.FAILURE),
        ("refunded", EventKind.REFUND),
        ("partially_paid", EventKind.IGNORED),
        ("waiting", EventKind.IGNORED),
        ("confirming", EventKind.IGNORED),
        ("confirmed", EventKind.IGNORED),
        ("sending", EventKind.IGNORED),
    ],
)
def test_status_mapping(gateway: NowPaymentsGateway, status: str, kind: EventKind) -> None:
    event = gateway.parse_event({}, ipn(status))
    assert event.kind is kind
    assert event.event_id == f"5077125051:{status}:0.00058"
    assert event.payment_id == PAYMENT_ID
    if kind is EventKind.FAILURE:
        assert event.reason == f"nowpayments payment {status}"
    if kind is EventKind.REFUND:
        assert event.money == Money(1250, "USD")
        assert event.refund_id == "5077125051"
    if kind is EventKind.IGNORED:
        assert event.money is None


def test_redeposit_in_the_same_status_is_a_new_event(gateway: NowPaymentsGateway) -> None:
    first = gateway.parse_event({}, ipn("partially_paid", actually_paid=Decimal("0.0001")))
    second = gateway.parse_event({}, ipn("partially_paid", actually_paid=Decimal("0.0002")))
    assert first.event_id != second.event_id


def test_foreign_order_id_and_null_invoice(gateway: NowPaymentsGateway) -> None:
    event = gateway.parse_event({}, ipn("finished", order_id="ord_123", invoice_id=None))
    assert (event.payment_id, event.customer_id, event.gateway_ref) == (None, None, None)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [(b"nope", "Expecting value"), (b"[]", "not a JSON object"), (b'{"payment_status": "finished"}', "payment_id")],
)
def test_parse_refuses_what_is_not_an_ipn(gateway: NowPaymentsGateway, body: bytes, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        gateway.parse_event({}, body)


# ---- reconciliation -------------------------------------------------------------------------------


def listed(status: str, **overrides: Any) -> dict[str, Any]:
    payment: dict[str, Any] = {
        "payment_id": 5524759814,
        "invoice_id": 4522625843,
        "payment_status": status,
        "price_amount": 12.5,
        "price_currency": "usd",
        "order_id": ORDER_ID,
    }
    payment.update(overrides)
    return payment


@responses.activate
def test_fetch_status_finished_payment_of_the_invoice_is_success(gateway: NowPaymentsGateway) -> None:
    responses.get(
        f"{BASE}/v1/payment/",
        body='{"data": [{"payment_id": 1, "invoice_id": 4522625843, "payment_status": "expired", '
        '"price_amount": 1999.99, "price_currency": "usd", "order_id": "' + ORDER_ID + '"}, '
        '{"payment_id": 2, "invoice_id": 4522625843, "payment_status": "finished", '
        '"price_amount": 1999.99, "price_currency": "usd", "order_id": "' + ORDER_ID + '"}], "total": 2}',
        content_type="application/json",
    )
    answer = gateway.fetch_status("4522625843", PAYMENT_ID)
    assert answer.kind is EventKind.SUCCESS
    assert answer.money == Money(199999, "USD")
    sent = responses.calls[0].request
    assert sent.headers["x-api-key"] == "np-api-key"
    assert "invoiceId=4522625843" in sent.url


@responses.activate
def test_fetch_status_ignores_other_invoices_payments(gateway: NowPaymentsGateway) -> None:
    other = listed("finished", invoice_id=999, order_id="other:pay_x")
    responses.get(f"{BASE}/v1/payment/", json={"data": [other]})
    assert gateway.fetch_status("4522625843", PAYMENT_ID).kind is EventKind.IGNORED


@responses.activate
def test_fetch_status_all_expired_is_failure_and_open_ones_wait(gateway: NowPaymentsGateway) -> None:
    responses.get(f"{BASE}/v1/payment/", json={"data": [listed("expired"), listed("failed")]})
    answer = gateway.fetch_status("4522625843", PAYMENT_ID)
    assert answer.kind is EventKind.FAILURE
    responses.replace(responses.GET, f"{BASE}/v1/payment/", json={"data": [listed("expired"), listed("confirming")]})
    assert gateway.fetch_status("4522625843", PAYMENT_ID).kind is EventKind.IGNORED
    responses.replace(responses.GET, f"{BASE}/v1/payment/", json={"data": []})
    assert gateway.fetch_status("4522625843", PAYMENT_ID).kind is EventKind.IGNORED


@responses.activate
def test_fetch_status_errors(gateway: NowPaymentsGateway) -> None:
    responses.get(f"{BASE}/v1/payment/", body=requests.exceptions.ConnectionError())
    with pytest.raises(GatewayUnavailable):
        gateway.fetch_status("4522625843", PAYMENT_ID)
    responses.replace(responses.GET, f"{BASE}/v1/payment/", status=401, json={"message": "auth"})
    with pytest.raises(GatewayRejected):
        gateway.fetch_status("4522625843", PAYMENT_ID)
