"""Paystack's events and answers read into `payments.gateways.paystack_models`: metadata as "", 0, null or JSON
text, ids as numbers or strings, refund amounts as digit strings, and what is not Paystack's shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses

from payments.gateways.base import CreateRequest, EventKind, GatewayRejected
from payments.gateways.paystack import PaystackGateway, PaystackSettings
from payments.gateways.paystack_models import Event, Metadata
from payments.ids import created_at_of
from payments.money import Money

BASE = "http://paystack.test"
# Fixed, not new_payment_id(): parametrize ids are built from values that contain it, and must not change per run.
PAYMENT_ID = "pay_01M89VTGF0B8JJTBVGD7CT73AQ"  # made at 2026-11-25 17:25 UTC
REFERENCE = "pay-" + PAYMENT_ID.removeprefix("pay_")


@pytest.fixture
def gateway() -> PaystackGateway:
    return PaystackGateway(PaystackSettings(api_base=BASE, secret_key="sk_test"), session=requests.Session())


def test_the_fixed_payment_id_is_one_of_ours() -> None:
    assert created_at_of(PAYMENT_ID) == datetime(2026, 11, 25, 17, 25, tzinfo=UTC)


def event(name: str, **data: Any) -> bytes:
    return json.dumps({"event": name, "data": data}).encode()


def charge(**data: Any) -> bytes:
    return event(
        "charge.success", **({"id": 4677002219, "reference": REFERENCE, "amount": 10000, "currency": "NGN"} | data)
    )


OURS = {"payment_id": PAYMENT_ID, "customer_id": "acme"}


@pytest.mark.parametrize(
    ("metadata", "read"),
    [
        ("", Metadata()),
        (0, Metadata()),
        (None, Metadata()),
        (False, Metadata()),
        ([], Metadata()),
        (OURS, Metadata(**OURS)),
        (json.dumps(OURS), Metadata(**OURS)),
        ('{"payment_id": ', Metadata()),  # JSON text that is not JSON
        ('{"a": ' * 100 + "1" + "}" * 100, Metadata()),  # nested too deeply to read
        ("[1, 2]", Metadata()),  # text, but not of an object
        ('{"payment_id": 17, "customer_id": ""}', Metadata()),  # our ids are text
    ],
)
def test_metadata_in_every_form_paystack_sends(metadata: Any, read: Metadata) -> None:
    assert Event.model_validate(json.loads(charge(metadata=metadata))).data.metadata == read


@pytest.mark.parametrize("metadata", ["", 0, None, json.dumps({"customer_id": "acme"}), {"payment_id": "pay_not_ours"}])
def test_without_our_payment_id_in_metadata_the_reference_names_the_payment(
    gateway: PaystackGateway, metadata: Any
) -> None:
    parsed = gateway.parse_event({}, charge(metadata=metadata))
    assert parsed.payment_id == PAYMENT_ID


def test_metadata_as_json_text_gives_both_ids(gateway: PaystackGateway) -> None:
    parsed = gateway.parse_event({}, charge(metadata=json.dumps(OURS), reference="T123"))
    assert (parsed.payment_id, parsed.customer_id, parsed.gateway_ref) == (PAYMENT_ID, "acme", "T123")


@pytest.mark.parametrize(("data_id", "event_id"), [(4677002219, "4677002219"), ("4677002219", "4677002219"), (0, "0")])
def test_an_id_as_a_number_or_a_string_is_the_same_event(gateway: PaystackGateway, data_id: Any, event_id: str) -> None:
    assert gateway.parse_event({}, charge(id=data_id)).event_id == f"charge.success:{event_id}"


@pytest.mark.parametrize("data_id", [True, None, "", 1.5, {"id": 1}])
def test_an_id_that_is_neither_falls_back_to_the_reference(gateway: PaystackGateway, data_id: Any) -> None:
    assert gateway.parse_event({}, charge(id=data_id)).event_id == f"charge.success:{REFERENCE}"


def test_a_refund_with_numeric_id_and_digit_string_amount(gateway: PaystackGateway) -> None:
    parsed = gateway.parse_event(
        {}, event("refund.processed", id=991, transaction={"reference": REFERENCE}, amount="2500", currency="ghs")
    )
    assert (parsed.kind, parsed.refund_id, parsed.event_id) == (EventKind.REFUND, "991", "refund.processed:991")
    assert (parsed.gateway_ref, parsed.payment_id, parsed.money) == (REFERENCE, PAYMENT_ID, Money(2500, "GHS"))


def test_a_refund_without_an_id_is_named_by_its_refund_reference(gateway: PaystackGateway) -> None:
    raw = event("refund.processed", refund_reference="RR1", transaction_reference=REFERENCE, amount=1, currency="NGN")
    parsed = gateway.parse_event({}, raw)
    assert (parsed.refund_id, parsed.event_id) == ("RR1", "refund.processed:RR1")


@pytest.mark.parametrize("amount", ["２５００", "25.00", "-25", 25.0, True, None, [2500]])
def test_an_amount_that_is_not_subunits_is_no_amount(gateway: PaystackGateway, amount: Any) -> None:
    # Not refused: a success without its amount is a mismatch for settlement (docs/webhooks.md).
    parsed = gateway.parse_event({}, charge(amount=amount))
    assert (parsed.kind, parsed.money) == (EventKind.SUCCESS, None)


def test_an_unknown_currency_is_no_amount(gateway: PaystackGateway) -> None:
    assert gateway.parse_event({}, charge(currency="XYZ")).money is None


def test_ignored_events_carry_no_money(gateway: PaystackGateway) -> None:
    parsed = gateway.parse_event({}, event("transfer.success", id="TRF_1", amount=500, currency="NGN"))
    assert (parsed.kind, parsed.money, parsed.event_id) == (EventKind.IGNORED, None, "transfer.success:TRF_1")


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        (json.dumps({"event": 1, "data": {"id": 1}}).encode(), "event"),
        (json.dumps({"event": "", "data": {"id": 1}}).encode(), "event"),
        (json.dumps({"event": "charge.success", "data": []}).encode(), "carries no data.id"),
        (json.dumps({"event": "charge.success", "data": {"id": True}}).encode(), "carries no data.id"),
        (b"\x00", "not JSON"),
    ],
)
def test_signed_but_malformed_events_are_value_errors(gateway: PaystackGateway, raw: bytes, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as caught:
        gateway.parse_event({}, raw)
    assert "paystack" in str(caught.value)


# ---- answers --------------------------------------------------------------------------------------------


def create_request() -> CreateRequest:
    return CreateRequest(
        payment_id=PAYMENT_ID,
        customer_id="acme",
        money=Money(1000, "NGN"),
        description="Top-up",
        idempotency_key="k",
        email="payer@example.com",
    )


@pytest.mark.parametrize(
    "answer",
    [{}, {"data": None}, {"data": "x"}, {"data": {"authorization_url": ""}}, {"data": {"authorization_url": 5}}],
)
@responses.activate
def test_an_initialize_answer_without_an_authorization_url_is_rejected(
    gateway: PaystackGateway, answer: dict[str, Any]
) -> None:
    responses.post(f"{BASE}/transaction/initialize", json=answer)
    with pytest.raises(GatewayRejected, match="authorization_url") as caught:
        gateway.create(create_request())
    assert caught.value.http_status == 502


@pytest.mark.parametrize(
    ("echoed", "accepted"), [(REFERENCE, True), (None, True), ("", True), (7, True), ("T1", False)]
)
@responses.activate
def test_an_initialize_answer_naming_another_reference_is_rejected(
    gateway: PaystackGateway, echoed: Any, accepted: bool
) -> None:
    responses.post(
        f"{BASE}/transaction/initialize", json={"data": {"authorization_url": "https://c/x", "reference": echoed}}
    )
    if accepted:
        assert gateway.create(create_request()).gateway_ref == REFERENCE
    else:
        with pytest.raises(GatewayRejected, match="another reference"):
            gateway.create(create_request())


@pytest.mark.parametrize("data", [None, "x", [], {}, {"status": 1}])
@responses.activate
def test_a_verify_answer_without_a_readable_status_is_open(gateway: PaystackGateway, data: Any) -> None:
    responses.get(f"{BASE}/transaction/verify/{REFERENCE}", json={"status": True, "data": data})
    assert gateway.fetch_status(REFERENCE, PAYMENT_ID).kind is EventKind.IGNORED


@responses.activate
def test_a_verified_failure_without_a_gateway_response_names_its_status(gateway: PaystackGateway) -> None:
    responses.get(f"{BASE}/transaction/verify/{REFERENCE}", json={"data": {"status": "abandoned"}})
    assert gateway.fetch_status(REFERENCE, PAYMENT_ID).reason == "abandoned"


@pytest.mark.parametrize("message", [None, 5, ["not found"]])
@responses.activate
def test_a_refusal_without_a_readable_message_is_rejected(gateway: PaystackGateway, message: Any) -> None:
    responses.get(f"{BASE}/transaction/verify/{REFERENCE}", status=404, json={"status": False, "message": message})
    with pytest.raises(GatewayRejected):
        gateway.fetch_status(REFERENCE, PAYMENT_ID)


def test_refund_failed_names_the_refund_and_our_transaction(gateway: PaystackGateway) -> None:
    raw = event("refund.failed", id=992, status="failed", transaction_reference=REFERENCE, amount=2500, currency="NGN")
    parsed = gateway.parse_event({}, raw)
    assert (parsed.kind, parsed.refund_id, parsed.event_id, parsed.gateway_ref, parsed.money) == (
        EventKind.REFUND_FAILED,
        "992",
        "refund.failed:992",
        REFERENCE,
        Money(2500, "NGN"),
    )
