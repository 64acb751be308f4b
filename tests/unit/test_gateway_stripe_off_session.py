"""The Stripe adapter's off-session charge of a saved card (docs/auto-topup.md#the-charge), against a fake Stripe API
(`responses` intercepts the SDK's requests client): the PaymentIntent's parameters, and what each answer means."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses

from payments.gateways.stripe import StripeGateway, StripeSettings
from payments.models import PaymentStatus
from payments.money import Money
from tests.unit.test_gateway_stripe import API, CUSTOMER_ID, PAYMENT_ID, SECRET_KEY, form, intent, request_for


@pytest.fixture
def gateway() -> StripeGateway:
    return StripeGateway(StripeSettings(api_base=API, secret_key=SECRET_KEY, webhook_secret="whsec_x"))


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def card_error(code: str, decline_code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {
        "type": "card_error",
        "code": code,
        "message": "The card was declined.",
        "payment_intent": {
            "id": "pi_off",
            "object": "payment_intent",
            "status": "requires_payment_method",
            "client_secret": "pi_off_secret_x",
        },
        "payment_method": {"id": "pm_1", "object": "payment_method", "card": {"brand": "visa", "last4": "3155"}},
    }
    if decline_code:
        error["decline_code"] = decline_code
    return {"error": error}


def test_it_sends_the_customer_the_saved_card_off_session_and_the_payment_id_as_idempotency_key(
    gateway: StripeGateway, api: responses.RequestsMock
) -> None:
    api.post(f"{API}/v1/payment_intents", json=intent("succeeded"))

    result = gateway.charge_off_session(request_for(Money(1250, "USD"), idempotency_key=PAYMENT_ID), "cus_1")

    assert (result.status, result.gateway_ref, result.card_last4) == (PaymentStatus.COMPLETED, "pi_123", "4242")
    assert api.calls[0].request.headers["Idempotency-Key"] == PAYMENT_ID
    body = form(api.calls[0])
    assert (body["customer"], body["payment_method"], body["off_session"], body["confirm"]) == (
        "cus_1", "pm_card_visa", "true", "true"
    )  # fmt: skip
    assert (body["metadata[payment_id]"], body["metadata[customer_id]"]) == (PAYMENT_ID, CUSTOMER_ID)
    assert "return_url" not in body and "use_stripe_sdk" not in body


def test_authentication_required_is_pending_with_the_client_secret_never_stored(
    gateway: StripeGateway, api: responses.RequestsMock
) -> None:
    api.post(f"{API}/v1/payment_intents", status=402, json=card_error("authentication_required"))

    result = gateway.charge_off_session(request_for(Money(1250, "USD")), "cus_1")

    assert result.status is PaymentStatus.PENDING and result.gateway_ref == "pi_off"
    assert result.next_action == {"type": "stripe_sdk", "client_secret": "pi_off_secret_x"}
    assert result.failure_reason == "authentication_required" and result.storable_next_action is False


@pytest.mark.parametrize(
    ("code", "decline_code", "reason"),
    [
        ("card_declined", "insufficient_funds", "card_declined: insufficient_funds"),
        ("card_declined", "generic_decline", "card_declined: generic_decline"),
        ("expired_card", None, "expired_card: The card was declined."),
    ],
)
def test_a_decline_is_cancelled_with_the_reason(
    gateway: StripeGateway, api: responses.RequestsMock, code: str, decline_code: str | None, reason: str
) -> None:
    api.post(f"{API}/v1/payment_intents", status=402, json=card_error(code, decline_code))

    result = gateway.charge_off_session(request_for(Money(1250, "USD")), "cus_1")

    assert (result.status, result.failure_reason, result.gateway_ref) == (PaymentStatus.CANCELLED, reason, "pi_off")
    assert len(api.calls) == 1
