"""Saved cards at Stripe (docs/saved-cards.md): the adapter's Customer, SetupIntent and detach calls against a fake
Stripe API, and setup_intent.* webhooks read into neutral events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses

from payments.gateways.base import CardInput, CreateRequest, EventKind, GatewayRejected
from payments.gateways.stripe import StripeGateway, StripeSettings
from payments.gateways.stripe_cards import StripeCards, cards_api, customer_key
from payments.money import Money

API = "http://stripe.test"


@pytest.fixture
def adapter() -> StripeGateway:
    return StripeGateway(StripeSettings(api_base=API, secret_key="sk_test_fake", webhook_secret="whsec_x"))


@pytest.fixture
def stripe_cards(adapter: StripeGateway) -> StripeCards:
    return cards_api(adapter)


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def form(call: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


PAYMENT_METHOD = {
    "id": "pm_1Q0abc",
    "object": "payment_method",
    "customer": "cus_Q1",
    "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2031, "fingerprint": "Xt5EWLLDS7FJjR1c"},
    "type": "card",
}


def setup_intent(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "seti_1Q0abc",
        "object": "setup_intent",
        "client_secret": "seti_1Q0abc_secret_xyz",
        "customer": "cus_Q1",
        "last_setup_error": None,
        "metadata": {"customer_id": "cust-1", "card_id": "card_1"},
        "next_action": None,
        "payment_method": PAYMENT_METHOD,
        "payment_method_types": ["card"],
        "status": status,
        "usage": "off_session",
        **extra,
    }


def test_customer_is_created_with_a_key_of_our_customer_alone(
    stripe_cards: StripeCards, api: responses.RequestsMock
) -> None:
    api.post(f"{API}/v1/customers", json={"id": "cus_Q1", "object": "customer"})
    assert stripe_cards.ensure_customer("cust-1", "a@example.com") == "cus_Q1"
    sent = api.calls[0].request
    assert sent.headers["Idempotency-Key"] == customer_key("cust-1") != customer_key("cust-2")
    assert form(api.calls[0])["metadata[customer_id]"] == "cust-1"
    assert form(api.calls[0])["email"] == "a@example.com"


def test_setup_with_raw_card_makes_a_payment_method_then_an_off_session_setup_intent(
    stripe_cards: StripeCards, api: responses.RequestsMock
) -> None:
    api.post(f"{API}/v1/payment_methods", json={**PAYMENT_METHOD, "customer": None})
    api.post(f"{API}/v1/setup_intents", json=setup_intent("succeeded"))
    card = CardInput(number="4242424242424242", exp_month=12, exp_year=2031, cvc="123")
    result = stripe_cards.setup_card("cus_Q1", card=card, idempotency_key="seti:k")
    assert (result.status, result.setup_intent, result.payment_method) == ("succeeded", "seti_1Q0abc", "pm_1Q0abc")
    assert (result.brand, result.last4, result.exp_month, result.exp_year) == ("visa", "4242", 12, 2031)
    assert result.client_secret is None
    sent = form(api.calls[1])
    assert sent["usage"] == "off_session" and sent["confirm"] == "true" and sent["customer"] == "cus_Q1"
    assert sent["payment_method"] == "pm_1Q0abc"
    assert api.calls[1].request.headers["Idempotency-Key"] == "seti:k"
    assert "4242424242424242" not in repr(result)


def test_setup_needing_3ds_gives_the_client_secret(stripe_cards: StripeCards, api: responses.RequestsMock) -> None:
    api.post(f"{API}/v1/setup_intents", json=setup_intent("requires_action", next_action={"type": "use_stripe_sdk"}))
    result = stripe_cards.setup_card("cus_Q1", payment_method="pm_card_visa", idempotency_key="k")
    assert result.status == "requires_action"
    assert result.client_secret == "seti_1Q0abc_secret_xyz"
    assert "secret" not in repr(result)


def test_setup_declined_is_an_answer(stripe_cards: StripeCards, api: responses.RequestsMock) -> None:
    failed = setup_intent("requires_payment_method", payment_method=None)
    error = {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "generic_decline",
        "message": "Your card was declined.",
        "setup_intent": failed,
        "payment_method": PAYMENT_METHOD,
    }
    api.post(f"{API}/v1/setup_intents", json={"error": error}, status=402)
    result = stripe_cards.setup_card("cus_Q1", payment_method="pm_card_chargeDeclined", idempotency_key="k")
    assert (result.status, result.setup_intent) == ("failed", "seti_1Q0abc")
    assert result.failure_reason == "card_declined: generic_decline"
    assert result.last4 == "4242"


def test_detach_and_detach_of_a_card_not_attached(stripe_cards: StripeCards, api: responses.RequestsMock) -> None:
    api.post(f"{API}/v1/payment_methods/pm_1Q0abc/detach", json={**PAYMENT_METHOD, "customer": None})
    stripe_cards.detach("pm_1Q0abc")
    api.post(
        f"{API}/v1/payment_methods/pm_2/detach",
        json={"error": {"type": "invalid_request_error", "message": "not attached"}},
        status=400,
    )
    stripe_cards.detach("pm_2")  # already detached: done
    with pytest.raises(GatewayRejected):
        stripe_cards.detach("not a pm/../x")


def test_payment_with_a_saved_card_names_its_customer(adapter: StripeGateway, api: responses.RequestsMock) -> None:
    api.post(
        f"{API}/v1/payment_intents",
        json={"id": "pi_1", "object": "payment_intent", "status": "succeeded", "payment_method": PAYMENT_METHOD},
    )
    request = CreateRequest(
        payment_id="pay_1",
        customer_id="cust-1",
        money=Money(1000, "USD"),
        description="Top-up",
        idempotency_key="k",
        payment_method="pm_1Q0abc",
        stripe_customer="cus_Q1",
    )
    adapter.create(request)
    assert form(api.calls[0])["customer"] == "cus_Q1"


def _event(event_type: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"id": "evt_1", "object": "event", "type": event_type, "data": {"object": obj}}).encode()


def test_setup_webhooks_read_into_setup_events(adapter: StripeGateway) -> None:
    succeeded = adapter.parse_event(
        {}, _event("setup_intent.succeeded", setup_intent("succeeded", payment_method="pm_1"))
    )
    assert succeeded.kind is EventKind.SETUP_SUCCEEDED
    assert (succeeded.gateway_ref, succeeded.payment_method, succeeded.payment_id) == ("seti_1Q0abc", "pm_1", None)
    error = {"code": "setup_intent_authentication_failure", "message": "authentication failed"}
    failed = adapter.parse_event(
        {}, _event("setup_intent.setup_failed", setup_intent("requires_payment_method", last_setup_error=error))
    )
    assert failed.kind is EventKind.SETUP_FAILED
    assert failed.reason == "setup_intent_authentication_failure: authentication failed"
    assert failed.card is not None and failed.card.last4 == "4242"  # an expanded PaymentMethod
    other = adapter.parse_event({}, _event("setup_intent.created", setup_intent("requires_confirmation")))
    assert other.kind is EventKind.IGNORED
    with pytest.raises(ValueError):
        adapter.parse_event({}, _event("setup_intent.succeeded", {"object": "setup_intent"}))
