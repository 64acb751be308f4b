"""NOWPayments' IPNs and answers read into `payments.gateways.nowpayments_models` from the exact parse
(`loads_exact`): numbers kept as sent, the signature still over the canonical form, and what is not an IPN."""

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

from payments.gateways.base import CreateRequest, EventKind, GatewayRejected
from payments.gateways.nowpayments import NowPaymentsGateway, NowPaymentsSettings, dumps_canonical, loads_exact
from payments.gateways.nowpayments_models import Ipn, JsonNumber, exact_decimal, number_text
from payments.ids import new_payment_id
from payments.money import Money

BASE = "http://nowpayments.test"
IPN_SECRET = "ipn-secret-test"
PAYMENT_ID = new_payment_id(datetime(2026, 11, 25, 17, 25, tzinfo=UTC))
ORDER_ID = f"acme:{PAYMENT_ID}"


@pytest.fixture
def gateway() -> NowPaymentsGateway:
    settings = NowPaymentsSettings(api_base=BASE, api_key="np-key", ipn_secret=IPN_SECRET)
    return NowPaymentsGateway(settings, session=requests.Session())


def sign(canonical: str) -> dict[str, str]:
    return {"x-nowpayments-sig": hmac.new(IPN_SECRET.encode(), canonical.encode(), hashlib.sha512).hexdigest()}


# An IPN as NOWPayments might send it: escapes, spaces, a fee of 17 significant digits.
RAW = (
    '{"payment_id": 5077125051, "invoice_id": 4522625843, "payment_status": "finished",\n'
    ' "price_amount": 12.50, "price_currency": "usd", "actually_paid": 0.09853637216235617,\n'
    ' "order_id": "' + ORDER_ID + '", "order_description": "Caf\\u00e9 \\u00e9t\\u00e9",\n'
    ' "fee": {"depositFee": 0.09853637216235617, "currency": "btc"}}'
)
CANONICAL = (
    '{"actually_paid":0.09853637216235617,"fee":{"currency":"btc","depositFee":0.09853637216235617},'
    '"invoice_id":4522625843,"order_description":"Café été","order_id":"' + ORDER_ID + '",'
    '"payment_id":5077125051,"payment_status":"finished","price_amount":12.50,"price_currency":"usd"}'
)


@pytest.mark.parametrize("body", [RAW.encode(), RAW.replace("\\u00e9", "é").encode("utf-8")])
def test_a_signed_ipn_with_e_acute_verifies_and_reads_its_numbers_exactly(
    gateway: NowPaymentsGateway, body: bytes
) -> None:
    gateway.verify_webhook(sign(CANONICAL), body)  # the signature is over the exact tokens and raw UTF-8

    parsed = gateway.parse_event({}, body)

    assert parsed.event_id == "5077125051:finished:0.09853637216235617"  # the token as sent, not a float's digits
    assert (parsed.kind, parsed.money, parsed.gateway_ref) == (EventKind.SUCCESS, Money(1250, "USD"), "4522625843")
    assert (parsed.payment_id, parsed.customer_id) == (PAYMENT_ID, "acme")
    assert dumps_canonical(loads_exact(body)) == CANONICAL  # reading the fields changed nothing signed


def test_the_model_reads_from_the_exact_parse() -> None:
    ipn = Ipn.model_validate(loads_exact(RAW.encode()))
    assert ipn.actually_paid == "0.09853637216235617"
    assert ipn.price_amount == Decimal("12.50")
    assert str(ipn.price_amount) == "12.50"  # the exponent as sent
    assert (ipn.payment_id, ipn.invoice_id) == ("5077125051", "4522625843")


@pytest.mark.parametrize(
    ("value", "decimal"),
    [
        (JsonNumber("0.09853637216235617"), Decimal("0.09853637216235617")),
        (JsonNumber("-1e-7"), Decimal("-1E-7")),
        ("12.50", Decimal("12.50")),
        (15, Decimal(15)),
        (JsonNumber("NaN"), None),
        ("Infinity", None),
        ("twelve", None),
        (True, None),
        (None, None),
        (12.5, None),  # a float is never an amount
    ],
)
def test_amounts_are_exact_decimals_or_none(value: Any, decimal: Decimal | None) -> None:
    assert exact_decimal(value) == decimal


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (JsonNumber("123456789"), "123456789"),
        (JsonNumber("1.50"), "1.50"),
        (7, "7"),
        ("finished", "finished"),
        (True, None),
        ("", None),
        (None, None),
        ([1], None),
    ],
)
def test_ids_and_statuses_are_text_with_numbers_as_their_tokens(value: Any, text: str | None) -> None:
    assert number_text(value) == text


def ipn(**fields: Any) -> bytes:
    body: dict[str, Any] = {
        "payment_id": 5077125051,
        "invoice_id": 4522625843,
        "payment_status": "finished",
        "price_amount": Decimal("12.50"),
        "price_currency": "usd",
        "order_id": ORDER_ID,
    }
    return dumps_canonical(body | fields).encode()


@pytest.mark.parametrize(
    ("fields", "money"),
    [
        ({"price_amount": "12.50"}, Money(1250, "USD")),  # a decimal string
        ({"price_amount": 12}, Money(1200, "USD")),
        ({"price_currency": "EUR"}, Money(1250, "EUR")),
        ({"price_amount": Decimal("12.505")}, None),  # more decimals than the currency has
        ({"price_currency": "zzz"}, None),
        ({"price_currency": None}, None),
        ({"price_amount": None}, None),
    ],
)
def test_the_price_is_read_exactly_or_is_no_amount(
    gateway: NowPaymentsGateway, fields: dict[str, Any], money: Money | None
) -> None:
    # An unreadable price is not refused: a success without its amount is a mismatch (docs/webhooks.md).
    assert gateway.parse_event({}, ipn(**fields)).money == money


def test_ids_as_strings_or_numbers_make_the_same_event(gateway: NowPaymentsGateway) -> None:
    as_numbers = gateway.parse_event({}, ipn())
    as_strings = gateway.parse_event({}, ipn(payment_id="5077125051", invoice_id="4522625843"))
    assert (as_numbers.event_id, as_numbers.gateway_ref) == (as_strings.event_id, as_strings.gateway_ref)
    assert as_numbers.event_id == "5077125051:finished:0"  # nothing paid yet says 0


def test_an_order_id_that_is_not_ours_names_no_payment(gateway: NowPaymentsGateway) -> None:
    for order_id in (None, 12345, "", "ord_1", PAYMENT_ID):
        parsed = gateway.parse_event({}, ipn(order_id=order_id))
        assert (parsed.payment_id, parsed.customer_id) == (None, None)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (ipn(payment_id=None), "payment_id"),
        (ipn(payment_id=True), "payment_id"),
        (ipn(payment_id=""), "payment_id"),
        (ipn(payment_status=None), "payment_status"),
        (json.dumps({"payment_id": 1}).encode(), "payment_status"),
        (b'{"payment_id": 1, "payment_status": "finished", "price_amount": NaN}', "NaN is not JSON"),
        (b'"finished"', "not a JSON object"),
    ],
)
def test_signed_but_malformed_ipns_are_value_errors(gateway: NowPaymentsGateway, body: bytes, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as caught:
        gateway.parse_event({}, body)
    assert "nowpayments" in str(caught.value)


# ---- answers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [{"invoice_url": "https://np/x"}, {"id": True, "invoice_url": "https://np/x"}, {"id": "1", "invoice_url": ""}],
)
@responses.activate
def test_an_invoice_answer_without_id_or_url_is_rejected(gateway: NowPaymentsGateway, answer: dict[str, Any]) -> None:
    responses.post(f"{BASE}/v1/invoice", json=answer)
    request = CreateRequest(
        payment_id=PAYMENT_ID, customer_id="acme", money=Money(1000, "USD"), description="d", idempotency_key="k"
    )
    with pytest.raises(GatewayRejected) as caught:
        gateway.create(request)
    assert caught.value.http_status == 502


@pytest.mark.parametrize("data", [None, {}, "x", ["x", 1]])
@responses.activate
def test_a_payments_list_without_payments_is_open(gateway: NowPaymentsGateway, data: Any) -> None:
    responses.get(f"{BASE}/v1/payment/", json={"data": data})
    assert gateway.fetch_status("4522625843", PAYMENT_ID).kind is EventKind.IGNORED


@responses.activate
def test_a_listed_price_is_read_from_its_exact_token(gateway: NowPaymentsGateway) -> None:
    # As a float, 1234567890123456.78 would be 1234567890123456.8: the token is what counts.
    body = (
        '{"data": ["skipped", {"payment_id": 9, "invoice_id": "4522625843", "payment_status": "finished",'
        ' "price_amount": 1234567890123456.78, "price_currency": "usd"}]}'
    )
    responses.get(f"{BASE}/v1/payment/", body=body, content_type="application/json")
    answer = gateway.fetch_status("4522625843", PAYMENT_ID)
    assert (answer.kind, answer.money) == (EventKind.SUCCESS, Money(123456789012345678, "USD"))
