"""The Stripe adapter's off-session charge of a saved card (docs/auto-topup.md#the-charge), against a fake Stripe API
(`responses` intercepts the SDK's requests client): the PaymentIntent's parameters, and what each answer means."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses

from payments.gateways.base import EventKind, GatewayRejected, GatewayUnavailable
from payments.gateways.stripe import AUTHENTICATION_WANTED, StripeGateway, StripeSettings
from payments.models import PaymentStatus
from payments.money import Money
from tests.unit.test_gateway_stripe import (
    API,
    CUSTOMER_ID,
    PAYMENT_ID,
    SECRET_KEY,
    event,
    form,
    intent,
    request_for,
)  # fmt: skip


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


# ---- the bank asked for the customer: the webhook, reconciliation, and confirming on-session ----------------------

AUTH_ERROR = {"type": "card_error", "code": "authentication_required", "message": "Authentication required."}


def test_the_failed_webhook_of_an_authentication_required_charge_holds_the_payment_instead_of_cancelling(
    gateway: StripeGateway,
) -> None:
    failed = intent("requires_payment_method", last_payment_error=AUTH_ERROR)
    held = gateway.parse_event({}, event("payment_intent.payment_failed", failed))
    other = intent("requires_payment_method", last_payment_error={**AUTH_ERROR, "code": "card_declined"})
    declined = gateway.parse_event({}, event("payment_intent.payment_failed", other))

    assert (held.kind, held.reason, held.payment_id, held.gateway_ref) == (
        EventKind.HELD, AUTHENTICATION_WANTED, PAYMENT_ID, "pi_123"
    )  # fmt: skip
    assert declined.kind is EventKind.FAILURE and declined.reason.startswith("card_declined")


def test_reconciliation_leaves_an_authentication_required_charge_pending(
    gateway: StripeGateway, api: responses.RequestsMock
) -> None:
    api.get(f"{API}/v1/payment_intents/pi_123", json=intent("requires_payment_method", last_payment_error=AUTH_ERROR))

    assert gateway.fetch_status("pi_123", PAYMENT_ID).kind is EventKind.IGNORED


@pytest.mark.parametrize(
    ("status", "answer", "expected"),
    [
        (200, intent("requires_action"), (PaymentStatus.PENDING, None)),
        (200, intent("succeeded", amount_received=1250), (PaymentStatus.COMPLETED, None)),
        (402, card_error("card_declined", "insufficient_funds"),
         (PaymentStatus.CANCELLED, "card_declined: insufficient_funds")),
    ],
    ids=["requires_action", "succeeded", "declined"],
)  # fmt: skip
def test_confirming_on_session_sends_the_saved_card_for_3ds_and_reads_the_answer(
    gateway: StripeGateway, api: responses.RequestsMock, status: int, answer: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    api.post(f"{API}/v1/payment_intents/pi_123/confirm", status=status, json=answer)

    result = gateway.confirm_on_session("pi_123", "pm_saved", "https://portal.test/pay", "pay_1:on_session")

    assert (result.status, result.failure_reason) == expected
    if result.status is PaymentStatus.PENDING:
        assert result.next_action == {"type": "stripe_sdk", "client_secret": "pi_123_secret_abc"}
        assert result.storable_next_action is False
    sent = form(api.calls[0])
    assert (sent["payment_method"], sent["use_stripe_sdk"], sent["return_url"]) == (
        "pm_saved", "true", "https://portal.test/pay"
    )  # fmt: skip
    assert "off_session" not in sent and api.calls[0].request.headers["Idempotency-Key"] == "pay_1:on_session"


def test_confirming_needs_a_payment_intent_id_and_a_stripe_outage_is_a_gateway_error(
    gateway: StripeGateway, api: responses.RequestsMock
) -> None:
    with pytest.raises(GatewayRejected):
        gateway.confirm_on_session("seti_1", "pm_saved", "", "k")
    api.post(f"{API}/v1/payment_intents/pi_123/confirm", status=500, json={"error": {"type": "api_error"}})
    with pytest.raises(GatewayUnavailable):
        gateway.confirm_on_session("pi_123", "pm_saved", "", "k")
