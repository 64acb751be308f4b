"""Stripe's webhook events read into `payments.gateways.stripe_models`: the quirks, and signed bodies that are not
Stripe's shape (ValueError, which the webhook route answers with 400)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from payments.gateways.base import EventKind
from payments.gateways.stripe import StripeGateway, StripeSettings
from payments.gateways.stripe_models import ChargeRefundedEvent, PaymentIntentEvent
from payments.money import Money

PAYMENT_ID = "pay_01JD0000000000000000000000"
SECRET_LOOKING = "4242424242424242"  # stands for anything a body may hold that must not reach a message


@pytest.fixture
def gateway() -> StripeGateway:
    return StripeGateway(StripeSettings(webhook_secret="whsec_test"))


def event(event_type: str, obj: dict[str, Any], **data: Any) -> bytes:
    return json.dumps({"id": "evt_9", "type": event_type, "data": {"object": obj, **data}}).encode()


def charge(**fields: Any) -> dict[str, Any]:
    return {"id": "ch_1", "object": "charge", "amount_refunded": 3000, "currency": "usd", "payment_intent": "pi_7"} | (
        fields
    )


def test_charge_refunded_reports_the_growth_since_previous_attributes(gateway: StripeGateway) -> None:
    refunds = {"object": "list", "data": [{"id": "re_new"}, {"id": "re_old"}]}
    body = event("charge.refunded", charge(refunds=refunds), previous_attributes={"amount_refunded": 1000})

    parsed = gateway.parse_event({}, body)

    assert (parsed.kind, parsed.money, parsed.refund_id) == (EventKind.REFUND, Money(2000, "USD"), "re_new")
    assert parsed.gateway_ref == "pi_7"
    model = ChargeRefundedEvent.model_validate(json.loads(body))
    assert model.data.previous_attributes.amount_refunded == 1000
    assert model.data.object.newest_refund_id == "re_new"


@pytest.mark.parametrize("previous", [None, "nope", [], {}, {"status": "succeeded"}])
def test_charge_refunded_without_a_previous_total_counts_from_zero(gateway: StripeGateway, previous: Any) -> None:
    data = {} if previous is None else {"previous_attributes": previous}
    parsed = gateway.parse_event({}, event("charge.refunded", charge(), **data))
    assert parsed.money == Money(3000, "USD")


def test_charge_refunded_without_a_refund_list_is_named_by_the_event(gateway: StripeGateway) -> None:
    # Newer API versions no longer embed `refunds` in a charge.
    parsed = gateway.parse_event({}, event("charge.refunded", charge(refunds=None)))
    assert parsed.refund_id == "evt_9"


def test_charge_refunded_without_a_payment_intent_names_the_charge(gateway: StripeGateway) -> None:
    parsed = gateway.parse_event({}, event("charge.refunded", charge(payment_intent=None)))
    assert parsed.gateway_ref == "ch_1"


@pytest.mark.parametrize(
    ("obj", "previous", "field"),
    [
        (charge(), {"amount_refunded": "1000"}, "previous_attributes.amount_refunded"),
        (charge(), {"amount_refunded": True}, "previous_attributes.amount_refunded"),
        (charge(amount_refunded=30.5), {}, "object.amount_refunded"),
        (charge(amount_refunded=None), {}, "object.amount_refunded"),
        (charge(currency=None), {}, "object.currency"),
        ({k: v for k, v in charge().items() if k != "id"}, {}, "object.id"),
    ],
)
def test_charge_refunded_not_in_stripes_shape_is_a_value_error(
    gateway: StripeGateway, obj: dict[str, Any], previous: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        gateway.parse_event({}, event("charge.refunded", obj, previous_attributes=previous))


def test_charge_refunded_with_no_new_refund_is_a_value_error(gateway: StripeGateway) -> None:
    body = event("charge.refunded", charge(), previous_attributes={"amount_refunded": 3000})
    with pytest.raises(ValueError, match="no new refunded amount"):
        gateway.parse_event({}, body)


def test_metadata_that_is_not_an_object_holds_none_of_our_ids(gateway: StripeGateway) -> None:
    intent = {"id": "pi_1", "amount_received": 1250, "currency": "usd", "metadata": ["x"]}
    parsed = gateway.parse_event({}, event("payment_intent.succeeded", intent))
    assert (parsed.payment_id, parsed.customer_id, parsed.money) == (None, None, Money(1250, "USD"))


def test_metadata_values_that_are_not_text_are_not_ids(gateway: StripeGateway) -> None:
    intent = {"id": "pi_1", "amount_received": 1, "currency": "usd", "metadata": {"payment_id": 7, "customer_id": ""}}
    parsed = gateway.parse_event({}, event("payment_intent.succeeded", intent))
    assert (parsed.payment_id, parsed.customer_id) == (None, None)


def test_failure_reason_from_the_error_then_the_cancellation_then_the_type(gateway: StripeGateway) -> None:
    def reason(event_type: str, **intent: Any) -> str | None:
        return gateway.parse_event({}, event(event_type, {"id": "pi_1", **intent})).reason

    assert (
        reason("payment_intent.payment_failed", last_payment_error={"code": "expired_card"}) == "expired_card: declined"
    )
    assert reason("payment_intent.payment_failed", last_payment_error={}) == "card_declined: declined"
    assert reason("payment_intent.canceled", last_payment_error=None, cancellation_reason="duplicate") == "duplicate"
    assert reason("payment_intent.canceled") == "payment_intent.canceled"


def test_a_failure_needs_no_amount(gateway: StripeGateway) -> None:
    model = PaymentIntentEvent.model_validate(json.loads(event("payment_intent.canceled", {"id": "pi_1"})))
    assert (model.data.object.amount_received, model.data.object.currency) == (None, None)


def test_ignored_events_read_any_object(gateway: StripeGateway) -> None:
    parsed = gateway.parse_event({}, event("customer.created", {"object": "customer", "email": "a@b.c"}))
    assert (parsed.kind, parsed.gateway_ref, parsed.payment_id) == (EventKind.IGNORED, None, None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (event("payment_intent.succeeded", {"id": "pi_1", "amount_received": "1250", "currency": "usd"}), "amount"),
        (event("payment_intent.succeeded", {"id": "pi_1", "amount_received": 1250}), "amount"),  # no currency
        (event("payment_intent.succeeded", {"id": "pi_1", "amount_received": 1250, "currency": "zzz"}), "currency"),
        (event("payment_intent.succeeded", {"id": 42, "amount_received": 1, "currency": "usd"}), "object.id"),
        (event("payment_intent.canceled", {"id": "pi_1", "cancellation_reason": 5}), "cancellation_reason"),
        (event("payment_intent.payment_failed", {"id": "pi_1", "last_payment_error": {"code": 9}}), "code"),
        (json.dumps({"id": "evt_1", "type": "customer.created", "data": {"object": "x"}}).encode(), "data.object"),
        (json.dumps({"id": "", "type": "charge.refunded", "data": {}}).encode(), "id"),
        (json.dumps({"id": "evt_1", "type": ["charge.refunded"]}).encode(), "type"),
    ],
)
def test_signed_but_malformed_events_are_value_errors(gateway: StripeGateway, body: bytes, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        gateway.parse_event({}, body)


def test_messages_name_the_field_never_its_value(gateway: StripeGateway) -> None:
    intent = {"id": "pi_1", "amount_received": SECRET_LOOKING, "currency": "usd", "metadata": {"n": SECRET_LOOKING}}
    with pytest.raises(ValueError, match="amount_received") as caught:
        gateway.parse_event({}, event("payment_intent.succeeded", intent))
    assert SECRET_LOOKING not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no ValidationError with inputs
    assert len(str(caught.value)) < 300


def test_refund_failed_names_the_refund_its_payment_intent_and_why(gateway: StripeGateway) -> None:
    refund = {
        "id": "re_3Fail",
        "object": "refund",
        "amount": 1000,
        "currency": "usd",
        "charge": "ch_1",
        "payment_intent": "pi_7",
        "status": "failed",
        "failure_reason": "expired_or_canceled_card",
        "metadata": {},
    }
    parsed = gateway.parse_event({}, event("refund.failed", refund))

    assert (parsed.kind, parsed.refund_id, parsed.gateway_ref, parsed.money, parsed.reason) == (
        EventKind.REFUND_FAILED,
        "re_3Fail",
        "pi_7",
        Money(1000, "USD"),
        "expired_or_canceled_card",
    )
    assert (parsed.payment_id, parsed.event_id, parsed.uncaptured) == (None, "evt_9", False)


@pytest.mark.parametrize("missing", ["id", "amount", "currency"])
def test_a_refund_failed_without_what_it_is_read_for_is_a_value_error(gateway: StripeGateway, missing: str) -> None:
    refund = {"id": "re_1", "object": "refund", "amount": 1000, "currency": "usd", "payment_intent": "pi_7"}
    refund.pop(missing)
    with pytest.raises(ValueError):
        gateway.parse_event({}, event("refund.failed", refund))


def test_a_processing_intent_holds_the_payment(gateway: StripeGateway) -> None:
    intent = {"id": "pi_7", "object": "payment_intent", "status": "processing", "metadata": {"payment_id": PAYMENT_ID}}
    parsed = gateway.parse_event({}, event("payment_intent.processing", intent))
    assert (parsed.kind, parsed.gateway_ref, parsed.payment_id, parsed.money) == (
        EventKind.HELD,
        "pi_7",
        PAYMENT_ID,
        None,
    )
    assert parsed.reason and parsed.reason.startswith("Stripe is processing the payment")
