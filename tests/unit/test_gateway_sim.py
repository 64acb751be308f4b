"""The local gateway simulator answers like the real gateways and signs its webhooks exactly as they do.

Real HTTP on 127.0.0.1 only. Webhooks go to a tiny local receiver standing in for the API; every signature is
checked here independently of the simulator (Stripe's own SDK is the oracle for Stripe).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from local.defaults import gateway_credential
from local.gateway_sim import GatewaySimulator, SettleError, parse_nested_form, serve

REPO_ROOT = Path(__file__).resolve().parents[2]


class Receiver:
    """Stands in for the API's /webhooks/{provider}: records each request, answers 200 with a JSON body."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver.requests.append({"path": self.path, "headers": headers, "body": body})
                payload = json.dumps({"received": len(receiver.requests)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def last(self) -> dict[str, Any]:
        return self.requests[-1]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def sim(receiver: Receiver) -> Iterator[GatewaySimulator]:
    simulator = GatewaySimulator(receiver.url)
    simulator.start()
    yield simulator
    simulator.stop()


# ---- helpers ------------------------------------------------------------------------------------------------

STRIPE_AUTH = {"Authorization": f"Bearer {gateway_credential('STRIPE_SECRET_KEY')}"}
CARD_ONLY = {"payment_method_types[0]": "card"}


def stripe_post(sim: GatewaySimulator, path: str, data: dict[str, str], **headers: str) -> requests.Response:
    return requests.post(f"{sim.base_url}/stripe/v1/{path}", data=data, headers={**STRIPE_AUTH, **headers}, timeout=5)


def card_payment_method(sim: GatewaySimulator, number: str) -> dict[str, Any]:
    card = {"card[number]": number, "card[exp_month]": "12", "card[exp_year]": "2040", "card[cvc]": "123"}
    response = stripe_post(
        sim, "payment_methods", {"type": "card", **card}, **{"Idempotency-Key": f"pm-{uuid.uuid4()}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def confirmed_intent(sim: GatewaySimulator, payment_method: str, **extra: str) -> requests.Response:
    form = {
        "amount": "1250",
        "currency": "usd",
        "confirm": "true",
        "payment_method": payment_method,
        "metadata[payment_id]": "pay_01TEST",
        "metadata[customer_id]": "acme",
        **CARD_ONLY,
        **extra,
    }
    return stripe_post(sim, "payment_intents", form)


def paypal_token(sim: GatewaySimulator) -> str:
    response = requests.post(
        f"{sim.base_url}/paypal/v1/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(gateway_credential("PAYPAL_CLIENT_ID"), gateway_credential("PAYPAL_CLIENT_SECRET")),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def paypal_call(sim: GatewaySimulator, token: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return requests.request(method, f"{sim.base_url}/paypal{path}", headers=headers, timeout=5, **kwargs)


PAYPAL_ORDER = {
    "intent": "CAPTURE",
    "purchase_units": [
        {
            "reference_id": "pay_01PP",
            "custom_id": "acme|pay_01PP",
            "invoice_id": "pay_01PP",
            "amount": {"currency_code": "USD", "value": "10.00"},
        }
    ],
    "payment_source": {
        "paypal": {
            "experience_context": {"return_url": "http://portal.test/return", "cancel_url": "http://portal.test/cancel"}
        }
    },
}


def create_paypal_order(sim: GatewaySimulator, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = paypal_call(sim, token, "POST", "/v2/checkout/orders", json=body or PAYPAL_ORDER)
    assert response.status_code == 201, response.text
    return response.json()


def verify_paypal(sim: GatewaySimulator, token: str, headers: dict[str, str], event: Any, **override: str) -> str:
    body = {
        "auth_algo": headers["paypal-auth-algo"],
        "cert_url": headers["paypal-cert-url"],
        "transmission_id": headers["paypal-transmission-id"],
        "transmission_sig": headers["paypal-transmission-sig"],
        "transmission_time": headers["paypal-transmission-time"],
        "webhook_id": gateway_credential("PAYPAL_WEBHOOK_ID"),
        "webhook_event": event,
        **override,
    }
    response = paypal_call(sim, token, "POST", "/v1/notifications/verify-webhook-signature", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["verification_status"])


RAZORPAY_AUTH = (gateway_credential("RAZORPAY_KEY_ID"), gateway_credential("RAZORPAY_KEY_SECRET"))
PAYSTACK_AUTH = {"Authorization": f"Bearer {gateway_credential('PAYSTACK_SECRET_KEY')}"}
NOWPAYMENTS_AUTH = {"x-api-key": gateway_credential("NOWPAYMENTS_API_KEY")}


def hex_hmac(secret: str, message: bytes, algorithm: Any) -> str:
    return hmac.new(secret.encode(), message, algorithm).hexdigest()


# ---- Stripe -------------------------------------------------------------------------------------------------


def test_stripe_payment_method_keeps_brand_and_last4_but_never_the_number(sim: GatewaySimulator) -> None:
    payment_method = card_payment_method(sim, "5555555555554444")

    assert payment_method["id"].startswith("pm_")
    assert payment_method["object"] == "payment_method"
    assert payment_method["type"] == "card"
    card = payment_method["card"]
    assert (card["brand"], card["last4"], card["exp_month"], card["exp_year"]) == ("mastercard", "4444", 12, 2040)
    assert "number" not in card and "cvc" not in card
    confirmed_intent(sim, payment_method["id"])
    assert "5555555555554444" not in json.dumps(sim.objects())
    assert "5555555555554444" not in repr(vars(sim))  # nor in idempotency records or anywhere else it holds


def test_stripe_refuses_a_missing_or_wrong_secret_key(sim: GatewaySimulator) -> None:
    form = {"amount": "1000", "currency": "usd"}
    missing = requests.post(f"{sim.base_url}/stripe/v1/payment_intents", data=form, timeout=5)
    wrong = stripe_post(sim, "payment_intents", form, Authorization="Bearer sk_test_not_the_key")

    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert missing.json()["error"]["message"].startswith("You did not provide an API key")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["message"].startswith("Invalid API Key provided: sk_test_")
    assert sim.objects()["stripe"]["payment_intents"] == []


@pytest.mark.parametrize(
    ("card", "expected_status"),
    [
        ("pm_card_visa", "succeeded"),
        ("4242424242424242", "succeeded"),
        ("pm_card_authenticationRequired", "requires_action"),
        ("4000002500003155", "requires_action"),
        ("4000000000003220", "requires_action"),
    ],
)
def test_stripe_test_cards_that_succeed_or_need_3ds(sim: GatewaySimulator, card: str, expected_status: str) -> None:
    method = card if card.startswith("pm_") else card_payment_method(sim, card)["id"]

    response = confirmed_intent(sim, method)

    assert response.status_code == 200, response.text
    intent = response.json()
    assert intent["id"].startswith("pi_") and intent["object"] == "payment_intent"
    assert (intent["status"], intent["amount"], intent["currency"]) == (expected_status, 1250, "usd")
    assert intent["metadata"] == {"payment_id": "pay_01TEST", "customer_id": "acme"}
    assert intent["client_secret"].startswith(f"{intent['id']}_secret_")
    if expected_status == "succeeded":
        assert intent["amount_received"] == 1250 and intent["next_action"] is None
    else:
        assert intent["next_action"]["type"] == "use_stripe_sdk"
        assert intent["amount_received"] == 0


@pytest.mark.parametrize("card", ["pm_card_chargeDeclined", "4000000000000002"])
def test_stripe_declined_card_is_a_402_card_error(sim: GatewaySimulator, card: str) -> None:
    method = card if card.startswith("pm_") else card_payment_method(sim, card)["id"]

    response = confirmed_intent(sim, method)

    assert response.status_code == 402
    error = response.json()["error"]
    assert error["type"] == "card_error"
    assert (error["code"], error["decline_code"]) == ("card_declined", "generic_decline")
    assert error["message"] == "Your card was declined."
    assert error["payment_intent"]["status"] == "requires_payment_method"
    assert error["payment_intent"]["metadata"]["payment_id"] == "pay_01TEST"
    stored = requests.get(
        f"{sim.base_url}/stripe/v1/payment_intents/{error['payment_intent']['id']}", headers=STRIPE_AUTH, timeout=5
    )
    assert stored.json()["last_payment_error"]["decline_code"] == "generic_decline"


def test_stripe_sdk_reads_the_simulator_as_stripe(sim: GatewaySimulator) -> None:
    client = stripe.StripeClient(
        gateway_credential("STRIPE_SECRET_KEY"), base_addresses={"api": sim.provider_base("stripe")}
    )
    params: dict[str, Any] = {"amount": 2000, "currency": "eur", "confirm": True, "payment_method_types": ["card"]}

    succeeded = client.v1.payment_intents.create(
        params={**params, "payment_method": "pm_card_visa", "metadata": {"payment_id": "p1"}}
    )
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.create(params={**params, "payment_method": "pm_card_chargeDeclinedInsufficientFunds"})
    fetched = client.v1.payment_intents.retrieve(succeeded.id)

    assert (succeeded.status, fetched.status, fetched.metadata["payment_id"]) == ("succeeded", "succeeded", "p1")
    assert declined.value.code == "card_declined"
    assert declined.value.error is not None and declined.value.error.decline_code == "insufficient_funds"


def test_stripe_idempotency_key_replays_the_first_answer(sim: GatewaySimulator) -> None:
    form = {"amount": "1250", "currency": "usd", "confirm": "true", "payment_method": "pm_card_visa", **CARD_ONLY}

    first = stripe_post(sim, "payment_intents", form, **{"Idempotency-Key": "key-1"})
    again = stripe_post(sim, "payment_intents", form, **{"Idempotency-Key": "key-1"})
    other_body = stripe_post(sim, "payment_intents", {**form, "amount": "999"}, **{"Idempotency-Key": "key-1"})
    declined = {**form, "payment_method": "pm_card_chargeDeclined"}
    declined_first = stripe_post(sim, "payment_intents", declined, **{"Idempotency-Key": "key-2"})
    declined_again = stripe_post(sim, "payment_intents", declined, **{"Idempotency-Key": "key-2"})

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert other_body.status_code == 400
    assert other_body.json()["error"]["type"] == "idempotency_error"
    assert declined_first.status_code == declined_again.status_code == 402
    assert declined_again.json() == declined_first.json()
    assert len(sim.objects()["stripe"]["payment_intents"]) == 2


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"amount": "12.50"}, "parameter_invalid_integer"),
        ({"amount": "0"}, "parameter_invalid_integer"),
        ({"amount": None}, "parameter_missing"),
        ({"currency": None}, "parameter_missing"),
        ({"amount": "10"}, "amount_too_small"),
        ({"amount": "100000000"}, "amount_too_large"),
    ],
)
def test_stripe_validates_amount_like_stripe(sim: GatewaySimulator, change: dict[str, str | None], code: str) -> None:
    form = {"amount": "1250", "currency": "usd", **CARD_ONLY, **change}
    response = stripe_post(sim, "payment_intents", {k: v for k, v in form.items() if v is not None})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_stripe_confirm_with_automatic_payment_methods_needs_a_return_url(sim: GatewaySimulator) -> None:
    form = {"amount": "1250", "currency": "usd", "confirm": "true", "payment_method": "pm_card_visa"}

    refused = stripe_post(sim, "payment_intents", form)
    with_url = stripe_post(sim, "payment_intents", {**form, "return_url": "http://portal.test/done"})
    no_redirects = stripe_post(
        sim,
        "payment_intents",
        {**form, "automatic_payment_methods[enabled]": "true", "automatic_payment_methods[allow_redirects]": "never"},
    )

    assert refused.status_code == 400 and refused.json()["error"]["param"] == "return_url"
    assert with_url.json()["status"] == no_redirects.json()["status"] == "succeeded"


def test_stripe_settle_success_sends_a_signed_payment_intent_succeeded(
    sim: GatewaySimulator, receiver: Receiver
) -> None:
    intent = confirmed_intent(sim, "pm_card_authenticationRequired").json()

    answer = sim.settle("stripe", intent["id"], "success")

    delivery = receiver.last()
    assert delivery["path"] == "/webhooks/stripe"
    header = delivery["headers"]["stripe-signature"]
    secret = gateway_credential("STRIPE_WEBHOOK_SECRET")
    assert stripe.WebhookSignature.verify_header(delivery["body"].decode(), header, secret, tolerance=300)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(delivery["body"].decode(), header, "whsec_other", tolerance=300)
    tampered = delivery["body"].replace(b'"amount": 1250', b'"amount": 1')
    assert tampered != delivery["body"]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(tampered.decode(), header, secret, tolerance=300)
    event = json.loads(delivery["body"])
    assert event["type"] == "payment_intent.succeeded" and event["object"] == "event"
    assert event["id"].startswith("evt_")
    assert event["data"]["object"]["id"] == intent["id"]
    assert event["data"]["object"]["metadata"] == {"payment_id": "pay_01TEST", "customer_id": "acme"}
    assert event["data"]["object"]["amount_received"] == 1250
    assert answer == {"delivered": True, "status": 200, "response": {"received": 1}, "event": event}
    stored = requests.get(f"{sim.base_url}/stripe/v1/payment_intents/{intent['id']}", headers=STRIPE_AUTH, timeout=5)
    assert stored.json()["status"] == "succeeded"


def test_stripe_settle_failure_and_partial_refund(sim: GatewaySimulator, receiver: Receiver) -> None:
    pending = confirmed_intent(sim, "pm_card_authenticationRequired").json()
    paid = confirmed_intent(sim, "pm_card_visa").json()
    secret = gateway_credential("STRIPE_WEBHOOK_SECRET")

    failed = sim.settle("stripe", pending["id"], "failure")["event"]
    refunded = sim.settle("stripe", paid["id"], "refund", amount="5.00")["event"]

    for delivery in receiver.requests:
        assert stripe.WebhookSignature.verify_header(
            delivery["body"].decode(), delivery["headers"]["stripe-signature"], secret
        )
    assert failed["type"] == "payment_intent.payment_failed"
    assert failed["data"]["object"]["status"] == "requires_payment_method"
    assert failed["data"]["object"]["last_payment_error"]["code"] == "card_declined"
    assert failed["data"]["object"]["metadata"]["payment_id"] == "pay_01TEST"
    charge = refunded["data"]["object"]
    assert refunded["type"] == "charge.refunded"
    assert (charge["object"], charge["payment_intent"], charge["amount_refunded"]) == ("charge", paid["id"], 500)
    assert charge["refunded"] is False and charge["refunds"]["data"][0]["amount"] == 500
    assert charge["metadata"] == {"payment_id": "pay_01TEST", "customer_id": "acme"}
    assert refunded["data"]["previous_attributes"] == {"amount_refunded": 0}  # the total before this refund
    listed = requests.get(
        f"{sim.base_url}/stripe/v1/refunds", params={"payment_intent": paid["id"]}, headers=STRIPE_AUTH, timeout=5
    ).json()
    assert [(r["id"], r["amount"]) for r in listed["data"]] == [(charge["refunds"]["data"][0]["id"], 500)]
    with pytest.raises(SettleError) as too_much:
        sim.settle("stripe", paid["id"], "refund", amount="8.00")
    assert too_much.value.status == 409
    second = sim.settle("stripe", paid["id"], "refund", amount="2.50")["event"]["data"]
    assert (second["object"]["amount_refunded"], second["previous_attributes"]) == (750, {"amount_refunded": 500})


def stripe_deliveries(receiver: Receiver, event_type: str, count: int) -> list[dict[str, Any]]:
    """The webhooks of `event_type` the receiver got, once there are `count` (refunds send them after answering)."""
    for _ in range(100):
        found = [r for r in receiver.requests if json.loads(r["body"])["type"] == event_type]
        if len(found) >= count:
            return found
        threading.Event().wait(0.05)
    raise AssertionError(f"{count} {event_type} webhooks did not arrive")


def test_stripe_refunds_replay_per_key_and_refuse_past_what_is_left(sim: GatewaySimulator) -> None:
    intent = confirmed_intent(sim, "pm_card_visa").json()
    form = {
        "payment_intent": intent["id"],
        "amount": "500",
        "metadata[refund_entry]": "pay_01E1",
        "reason": "duplicate",
    }

    first = stripe_post(sim, "refunds", form, **{"Idempotency-Key": "refund-1"})
    replayed = stripe_post(sim, "refunds", form, **{"Idempotency-Key": "refund-1"})
    other_params = stripe_post(sim, "refunds", {**form, "amount": "600"}, **{"Idempotency-Key": "refund-1"})
    too_much = stripe_post(sim, "refunds", {"payment_intent": intent["id"], "amount": "751"})
    rest = stripe_post(sim, "refunds", {"payment_intent": intent["id"]})  # no amount: what is left
    nothing_left = stripe_post(sim, "refunds", {"payment_intent": intent["id"], "amount": "1"})

    refund = first.json()
    assert first.status_code == 200
    assert (refund["object"], refund["amount"], refund["currency"], refund["status"]) == (
        "refund",
        500,
        "usd",
        "succeeded",
    )
    assert (refund["payment_intent"], refund["charge"], refund["reason"]) == (
        intent["id"],
        intent["latest_charge"],
        "duplicate",
    )
    assert refund["metadata"] == {"refund_entry": "pay_01E1"} and refund["id"].startswith("re_")
    assert replayed.json() == refund and replayed.headers["Idempotent-Replayed"] == "true"
    assert other_params.status_code == 400 and other_params.json()["error"]["type"] == "idempotency_error"
    assert too_much.status_code == 400
    assert too_much.json()["error"] == {
        "message": "Refund amount ($7.51) is greater than unrefunded amount on charge ($7.50)",
        "type": "invalid_request_error",
        "code": "amount_too_large",
        "param": "amount",
        "doc_url": "https://stripe.com/docs/error-codes/amount-too-large",
    }
    assert rest.status_code == 200 and rest.json()["amount"] == 750
    assert nothing_left.status_code == 400
    assert nothing_left.json()["error"] == {
        "message": f"Charge {intent['latest_charge']} has already been refunded.",
        "type": "invalid_request_error",
        "code": "charge_already_refunded",
        "doc_url": "https://stripe.com/docs/error-codes/charge-already-refunded",
    }
    assert [r["amount"] for r in sim.objects()["stripe"]["refunds"]] == [500, 750]


PAID_INTENT = "<the paid PaymentIntent>"


@pytest.mark.parametrize(
    ("form", "param"),
    [
        ({"amount": "100"}, "payment_intent"),
        ({"payment_intent": "pi_3NOSUCHINTENT", "amount": "100"}, "payment_intent"),
        ({"payment_intent": PAID_INTENT, "amount": "0"}, "amount"),
        ({"payment_intent": PAID_INTENT, "amount": "1.5"}, "amount"),
        ({"payment_intent": PAID_INTENT, "amount": "100", "reason": "goodwill"}, "reason"),
    ],
)
def test_stripe_refund_parameters_are_checked_like_stripe(
    sim: GatewaySimulator, form: dict[str, str], param: str
) -> None:
    intent = confirmed_intent(sim, "pm_card_visa").json()
    sent = {name: intent["id"] if value == PAID_INTENT else value for name, value in form.items()}

    refused = stripe_post(sim, "refunds", sent)

    assert refused.status_code == 400 and refused.json()["error"]["param"] == param
    assert sim.objects()["stripe"]["refunds"] == []


def test_stripe_refund_of_an_unpaid_intent_is_refused(sim: GatewaySimulator) -> None:
    pending = confirmed_intent(sim, "pm_card_authenticationRequired").json()

    refused = stripe_post(sim, "refunds", {"payment_intent": pending["id"]})

    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == (
        f"This PaymentIntent ({pending['id']}) does not have a successful charge to refund."
    )


def test_stripe_refunds_are_listed_newest_first_a_page_at_a_time(sim: GatewaySimulator) -> None:
    intent = confirmed_intent(sim, "pm_card_visa").json()
    other = confirmed_intent(sim, "pm_card_visa").json()
    made = [stripe_post(sim, "refunds", {"payment_intent": intent["id"], "amount": str(n)}).json() for n in (100, 200)]
    stripe_post(sim, "refunds", {"payment_intent": other["id"], "amount": "300"})
    url = f"{sim.base_url}/stripe/v1/refunds"

    def listed(**query: str) -> requests.Response:
        return requests.get(url, params=query, headers=STRIPE_AUTH, timeout=5)

    page = listed(payment_intent=intent["id"], limit="1").json()
    after = listed(payment_intent=intent["id"], limit="1", starting_after=made[1]["id"]).json()

    assert page["object"] == "list" and page["url"] == "/v1/refunds"
    assert ([r["id"] for r in page["data"]], page["has_more"]) == ([made[1]["id"]], True)
    assert ([r["id"] for r in after["data"]], after["has_more"]) == ([made[0]["id"]], False)
    assert [r["amount"] for r in listed().json()["data"]] == [300, 200, 100]
    assert [r["amount"] for r in listed(charge=other["latest_charge"]).json()["data"]] == [300]
    one = requests.get(f"{url}/{made[0]['id']}", headers=STRIPE_AUTH, timeout=5)
    assert one.json() == made[0]
    assert requests.get(f"{url}/re_3NOSUCH", headers=STRIPE_AUTH, timeout=5).status_code == 404
    assert listed(payment_intent="pi_3NOSUCH").json()["error"]["code"] == "resource_missing"
    assert listed(limit="101").status_code == 400
    assert requests.get(url, timeout=5).status_code == 401


def test_stripe_refund_sends_signed_charge_refunded_and_refund_created_after_answering(
    sim: GatewaySimulator, receiver: Receiver
) -> None:
    intent = confirmed_intent(sim, "pm_card_visa").json()
    first = stripe_post(sim, "refunds", {"payment_intent": intent["id"], "amount": "500"}).json()
    second = stripe_post(sim, "refunds", {"payment_intent": intent["id"], "amount": "250"}).json()
    secret = gateway_credential("STRIPE_WEBHOOK_SECRET")

    charges = stripe_deliveries(receiver, "charge.refunded", 2)
    created = stripe_deliveries(receiver, "refund.created", 2)

    for delivery in charges + created:
        assert delivery["path"] == "/webhooks/stripe"
        assert stripe.WebhookSignature.verify_header(
            delivery["body"].decode(), delivery["headers"]["stripe-signature"], secret, tolerance=300
        )
    assert sorted((e["data"]["object"]["id"], e["data"]["object"]["amount"]) for e in map(_event, created)) == sorted(
        [(first["id"], 500), (second["id"], 250)]
    )
    assert {_event(d)["data"]["object"]["id"]: _event(d)["data"]["object"] for d in created}[second["id"]] == second
    totals = sorted(
        (
            e["data"]["object"]["refunds"]["data"][0]["id"],
            e["data"]["previous_attributes"]["amount_refunded"],
            e["data"]["object"]["amount_refunded"],
        )
        for e in map(_event, charges)
    )
    assert totals == sorted([(first["id"], 0, 500), (second["id"], 500, 750)])


def _event(delivery: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(delivery["body"])
    return event


def test_stripe_refund_failed_fails_a_refund_made_through_the_api_and_gives_its_amount_back(
    sim: GatewaySimulator, receiver: Receiver
) -> None:
    intent = confirmed_intent(sim, "pm_card_visa").json()
    made = stripe_post(sim, "refunds", {"payment_intent": intent["id"]}).json()

    failed = sim.settle("stripe", intent["id"], "refund_failed")["event"]
    again = stripe_post(sim, "refunds", {"payment_intent": intent["id"], "amount": "1250"})

    assert failed["type"] == "refund.failed"
    assert (failed["data"]["object"]["id"], failed["data"]["object"]["status"]) == (made["id"], "failed")
    stored = requests.get(f"{sim.base_url}/stripe/v1/refunds/{made['id']}", headers=STRIPE_AUTH, timeout=5).json()
    assert (stored["status"], stored["failure_reason"]) == ("failed", "expired_or_canceled_card")
    assert again.status_code == 200 and again.json()["amount"] == 1250


# ---- PayPal -------------------------------------------------------------------------------------------------


def test_paypal_token_needs_the_client_credentials(sim: GatewaySimulator) -> None:
    url = f"{sim.base_url}/paypal/v1/oauth2/token"
    client_id = gateway_credential("PAYPAL_CLIENT_ID")

    wrong = requests.post(url, data={"grant_type": "client_credentials"}, auth=(client_id, "nope"), timeout=5)
    no_grant = requests.post(url, data={}, auth=(client_id, gateway_credential("PAYPAL_CLIENT_SECRET")), timeout=5)
    good = requests.post(
        url,
        data={"grant_type": "client_credentials"},
        auth=(client_id, gateway_credential("PAYPAL_CLIENT_SECRET")),
        timeout=5,
    )

    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert no_grant.status_code == 400 and no_grant.json()["error"] == "unsupported_grant_type"
    assert good.json()["token_type"] == "Bearer" and good.json()["expires_in"] == 32400
    assert good.json()["access_token"]


def test_paypal_create_order_shape_auth_and_request_id_replay(sim: GatewaySimulator) -> None:
    token = paypal_token(sim)
    unauthenticated = paypal_call(sim, "not-a-token", "POST", "/v2/checkout/orders", json=PAYPAL_ORDER)
    plain_body = {"intent": "CAPTURE", "purchase_units": [{"amount": {"currency_code": "EUR", "value": "3.10"}}]}

    with_source = create_paypal_order(sim, token)
    plain = create_paypal_order(sim, token, plain_body)
    replay_headers = {"PayPal-Request-Id": "req-1"}
    first = paypal_call(sim, token, "POST", "/v2/checkout/orders", json=PAYPAL_ORDER, headers=replay_headers)
    replayed = paypal_call(sim, token, "POST", "/v2/checkout/orders", json=PAYPAL_ORDER, headers=replay_headers)
    bad_decimals = {"intent": "CAPTURE", "purchase_units": [{"amount": {"currency_code": "JPY", "value": "10.50"}}]}
    refused = paypal_call(sim, token, "POST", "/v2/checkout/orders", json=bad_decimals)

    assert unauthenticated.status_code == 401 and unauthenticated.json()["name"] == "AUTHENTICATION_FAILURE"
    assert with_source["status"] == "PAYER_ACTION_REQUIRED"
    payer_action = [link for link in with_source["links"] if link["rel"] == "payer-action"]
    assert payer_action == [
        {"href": f"{sim.base_url}/paypal/checkoutnow?token={with_source['id']}", "rel": "payer-action", "method": "GET"}
    ]
    assert plain["status"] == "CREATED"
    assert {link["rel"] for link in plain["links"]} >= {"approve", "self", "capture"}
    assert first.json() == replayed.json() and replayed.status_code == 201
    assert len(sim.objects()["paypal"]["orders"]) == 3
    assert refused.status_code == 422 and refused.json()["details"][0]["issue"] == "DECIMAL_PRECISION"
    page = requests.get(payer_action[0]["href"], timeout=5)
    assert page.status_code == 200 and "10.00 USD" in page.text and 'value="success"' in page.text
    fetched = paypal_call(sim, token, "GET", f"/v2/checkout/orders/{with_source['id']}").json()
    assert fetched["purchase_units"][0]["custom_id"] == "acme|pay_01PP"
    not_approved = paypal_call(sim, token, "POST", f"/v2/checkout/orders/{plain['id']}/capture", json={})
    assert not_approved.status_code == 422 and not_approved.json()["details"][0]["issue"] == "ORDER_NOT_APPROVED"


def test_paypal_approval_capture_and_verify_only_its_own_transmissions(
    sim: GatewaySimulator, receiver: Receiver
) -> None:
    token = paypal_token(sim)
    order = create_paypal_order(sim, token)

    approved = sim.settle("paypal", order["id"], "success")

    delivery = receiver.last()
    event = json.loads(delivery["body"])
    assert approved["delivered"] is True and approved["event"] == event
    assert event["event_type"] == "CHECKOUT.ORDER.APPROVED" and event["resource_type"] == "checkout-order"
    assert event["resource"]["id"] == order["id"] and event["resource"]["status"] == "APPROVED"
    assert event["resource"]["purchase_units"][0]["custom_id"] == "acme|pay_01PP"
    headers = delivery["headers"]
    assert headers["paypal-auth-algo"] == "SHA256withRSA"
    assert verify_paypal(sim, token, headers, event) == "SUCCESS"
    assert (
        verify_paypal(sim, token, headers, event, transmission_sig=headers["paypal-transmission-sig"][::-1])
        == "FAILURE"
    )
    assert verify_paypal(sim, token, headers, event, webhook_id="WH-SOMEONE-ELSE") == "FAILURE"
    assert verify_paypal(sim, token, headers, event, transmission_id="8a4f-not-sent") == "FAILURE"
    tampered = json.loads(delivery["body"])
    tampered["resource"]["purchase_units"][0]["amount"]["value"] = "1.00"
    assert verify_paypal(sim, token, headers, tampered) == "FAILURE"

    capture_headers = {"PayPal-Request-Id": "capture-1"}
    captured = paypal_call(
        sim, token, "POST", f"/v2/checkout/orders/{order['id']}/capture", json={}, headers=capture_headers
    )
    replayed = paypal_call(
        sim, token, "POST", f"/v2/checkout/orders/{order['id']}/capture", json={}, headers=capture_headers
    )
    twice = paypal_call(sim, token, "POST", f"/v2/checkout/orders/{order['id']}/capture", json={})

    assert captured.status_code == 201 and captured.json()["status"] == "COMPLETED"
    capture = captured.json()["purchase_units"][0]["payments"]["captures"][0]
    assert (capture["status"], capture["custom_id"], capture["invoice_id"]) == (
        "COMPLETED",
        "acme|pay_01PP",
        "pay_01PP",
    )
    assert capture["amount"] == {"currency_code": "USD", "value": "10.00"}
    assert replayed.json() == captured.json()
    assert twice.status_code == 422 and twice.json()["details"][0]["issue"] == "ORDER_ALREADY_CAPTURED"
    completed = sim.wait_for_delivery("PAYMENT.CAPTURE.COMPLETED")
    assert completed["status"] == 200
    completed_event = completed["event"]
    assert completed_event["resource"]["id"] == capture["id"]
    assert completed_event["resource"]["custom_id"] == "acme|pay_01PP"
    assert completed_event["resource"]["supplementary_data"]["related_ids"]["order_id"] == order["id"]
    sent = next(r for r in receiver.requests if json.loads(r["body"])["event_type"] == "PAYMENT.CAPTURE.COMPLETED")
    assert verify_paypal(sim, token, sent["headers"], json.loads(sent["body"])) == "SUCCESS"
    assert len([d for d in sim.deliveries() if d["event_type"] == "PAYMENT.CAPTURE.COMPLETED"]) == 1

    refund = sim.settle("paypal", order["id"], "refund")["event"]
    assert refund["event_type"] == "PAYMENT.CAPTURE.REFUNDED" and refund["resource_type"] == "refund"
    assert (refund["resource"]["custom_id"], refund["resource"]["amount"]["value"]) == ("acme|pay_01PP", "10.00")


def test_paypal_underpayment_and_denial(sim: GatewaySimulator) -> None:
    token = paypal_token(sim)
    short, denied = create_paypal_order(sim, token), create_paypal_order(sim, token)

    sim.settle("paypal", short["id"], "success", amount="4.00")
    captured = paypal_call(sim, token, "POST", f"/v2/checkout/orders/{short['id']}/capture", json={}).json()
    denial = sim.settle("paypal", denied["id"], "failure")["event"]

    assert captured["purchase_units"][0]["payments"]["captures"][0]["amount"]["value"] == "4.00"
    assert denial["event_type"] == "PAYMENT.CAPTURE.DENIED"
    assert denial["resource"]["custom_id"] == "acme|pay_01PP"
    assert denial["resource"]["supplementary_data"]["related_ids"]["order_id"] == denied["id"]


def paypal_capture(sim: GatewaySimulator, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """An order approved and captured: (the order, its capture)."""
    order = create_paypal_order(sim, token)
    sim.settle("paypal", order["id"], "success")
    captured = paypal_call(sim, token, "POST", f"/v2/checkout/orders/{order['id']}/capture", json={}).json()
    return order, captured["purchase_units"][0]["payments"]["captures"][0]


def test_paypal_capture_refund_replays_refuses_like_paypal_and_shows_in_the_order(sim: GatewaySimulator) -> None:
    token = paypal_token(sim)
    order, capture = paypal_capture(sim, token)
    path = f"/v2/payments/captures/{capture['id']}/refund"
    keyed = {"PayPal-Request-Id": "refund-1", "Prefer": "return=representation"}
    body = {"amount": {"value": "4.00", "currency_code": "USD"}, "custom_id": "pay_01E1", "note_to_payer": "Sorry"}

    first = paypal_call(sim, token, "POST", path, json=body, headers=keyed)
    replayed = paypal_call(sim, token, "POST", path, json=body, headers=keyed)
    minimal = paypal_call(sim, token, "POST", path, json={"amount": {"value": "1.00", "currency_code": "USD"}})
    too_much = paypal_call(sim, token, "POST", path, json={"amount": {"value": "5.01", "currency_code": "USD"}})
    other_currency = paypal_call(sim, token, "POST", path, json={"amount": {"value": "1.00", "currency_code": "EUR"}})
    rest = paypal_call(sim, token, "POST", path, json={}, headers={"Prefer": "return=representation"})
    fully = paypal_call(sim, token, "POST", path, json={})
    unknown = paypal_call(sim, token, "POST", "/v2/payments/captures/NOSUCHCAPTURE/refund", json={})

    refund = first.json()
    assert first.status_code == 201
    assert (refund["status"], refund["amount"], refund["custom_id"], refund["note_to_payer"]) == (
        "COMPLETED",
        {"currency_code": "USD", "value": "4.00"},
        "pay_01E1",
        "Sorry",
    )
    assert [link["rel"] for link in refund["links"]] == ["self", "up"]
    assert refund["links"][1]["href"].endswith(f"/paypal/v2/payments/captures/{capture['id']}")
    assert replayed.json() == refund
    assert minimal.status_code == 201 and set(minimal.json()) == {"id", "status", "links"}
    assert too_much.status_code == 422
    assert too_much.json()["name"] == "UNPROCESSABLE_ENTITY"
    assert too_much.json()["details"][0]["issue"] == "REFUND_AMOUNT_EXCEEDED"
    assert too_much.json()["details"][0]["description"] == (
        "The refund amount must be less than or equal to the capture amount that has not yet been refunded."
    )
    assert other_currency.status_code == 422 and other_currency.json()["details"][0]["issue"] == "CURRENCY_MISMATCH"
    assert rest.status_code == 201 and rest.json()["amount"]["value"] == "5.00"  # no amount: what is left
    assert fully.status_code == 422 and fully.json()["details"][0]["issue"] == "CAPTURE_FULLY_REFUNDED"
    assert unknown.status_code == 404 and unknown.json()["name"] == "RESOURCE_NOT_FOUND"
    fetched = paypal_call(sim, token, "GET", f"/v2/checkout/orders/{order['id']}").json()
    payments = fetched["purchase_units"][0]["payments"]
    assert [r["amount"]["value"] for r in payments["refunds"]] == ["4.00", "1.00", "5.00"]
    assert payments["refunds"][0] == refund
    assert payments["captures"][0]["status"] == "REFUNDED"


def test_paypal_refund_sends_a_verifiable_payment_capture_refunded_after_answering(
    sim: GatewaySimulator, receiver: Receiver
) -> None:
    token = paypal_token(sim)
    _order, capture = paypal_capture(sim, token)
    body = {"amount": {"value": "2.50", "currency_code": "USD"}, "custom_id": "pay_01E2"}

    refund = paypal_call(sim, token, "POST", f"/v2/payments/captures/{capture['id']}/refund", json=body).json()

    delivered = sim.wait_for_delivery("PAYMENT.CAPTURE.REFUNDED")
    event = delivered["event"]
    assert (event["resource_type"], event["resource"]["id"], event["resource"]["custom_id"]) == (
        "refund",
        refund["id"],
        "pay_01E2",
    )
    assert event["resource"]["amount"] == {"currency_code": "USD", "value": "2.50"}
    assert event["resource"]["seller_payable_breakdown"]["total_refunded_amount"]["value"] == "2.50"
    sent = next(r for r in receiver.requests if json.loads(r["body"])["event_type"] == "PAYMENT.CAPTURE.REFUNDED")
    assert verify_paypal(sim, token, sent["headers"], json.loads(sent["body"])) == "SUCCESS"
    assert len([d for d in sim.deliveries() if d["event_type"] == "PAYMENT.CAPTURE.REFUNDED"]) == 1


# ---- Razorpay -----------------------------------------------------------------------------------------------


def test_razorpay_order_shape_and_auth(sim: GatewaySimulator) -> None:
    url = f"{sim.base_url}/razorpay/v1/orders"
    body = {"amount": 5000, "currency": "INR", "receipt": "pay_01RZ", "notes": {"payment_id": "pay_01RZ"}}

    anonymous = requests.post(url, json=body, timeout=5)
    wrong = requests.post(url, json=body, auth=(RAZORPAY_AUTH[0], "wrong-secret"), timeout=5)
    created = requests.post(url, json=body, auth=RAZORPAY_AUTH, timeout=5)
    no_notes = requests.post(url, json={"amount": 100, "currency": "INR"}, auth=RAZORPAY_AUTH, timeout=5)
    too_small = requests.post(url, json={"amount": 99, "currency": "INR"}, auth=RAZORPAY_AUTH, timeout=5)

    for refused in (anonymous, wrong):
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "BAD_REQUEST_ERROR"
    order = created.json()
    assert order["id"].startswith("order_") and order["entity"] == "order"
    assert (order["amount"], order["amount_paid"], order["amount_due"], order["currency"]) == (5000, 0, 5000, "INR")
    assert (order["receipt"], order["status"], order["attempts"]) == ("pay_01RZ", "created", 0)
    assert order["notes"] == {"payment_id": "pay_01RZ"}
    assert no_notes.json()["notes"] == []
    assert too_small.status_code == 400 and too_small.json()["error"]["field"] == "amount"
    assert requests.get(f"{url}/{order['id']}", auth=RAZORPAY_AUTH, timeout=5).json() == order
    missing = requests.get(f"{url}/order_nope", auth=RAZORPAY_AUTH, timeout=5)
    assert missing.status_code == 400 and missing.json()["error"]["description"] == "The id provided does not exist"


def test_razorpay_settle_sends_signed_events_with_event_id(sim: GatewaySimulator, receiver: Receiver) -> None:
    body = {"amount": 5000, "currency": "INR", "receipt": "pay_01RZ", "notes": {"payment_id": "pay_01RZ"}}
    order = requests.post(f"{sim.base_url}/razorpay/v1/orders", json=body, auth=RAZORPAY_AUTH, timeout=5).json()

    failed = sim.settle("razorpay", order["id"], "failure")["event"]
    captured = sim.settle("razorpay", order["id"], "success")["event"]
    refunded = sim.settle("razorpay", order["id"], "refund")["event"]

    secret = gateway_credential("RAZORPAY_WEBHOOK_SECRET")
    event_ids = set()
    for delivery in receiver.requests:
        assert delivery["path"] == "/webhooks/razorpay"
        signature = delivery["headers"]["x-razorpay-signature"]
        assert hmac.compare_digest(signature, hex_hmac(secret, delivery["body"], hashlib.sha256))
        assert signature != hex_hmac("other-secret", delivery["body"], hashlib.sha256)
        event_ids.add(delivery["headers"]["x-razorpay-event-id"])
    assert len(event_ids) == 3
    assert [failed["event"], captured["event"], refunded["event"]] == [
        "payment.failed",
        "payment.captured",
        "refund.processed",
    ]
    payment = captured["payload"]["payment"]["entity"]
    assert (payment["status"], payment["order_id"], payment["amount"]) == ("captured", order["id"], 5000)
    assert payment["notes"] == {"payment_id": "pay_01RZ"}
    assert failed["payload"]["payment"]["entity"]["error_reason"] == "payment_failed"
    assert refunded["contains"] == ["refund", "payment"]
    assert refunded["payload"]["refund"]["entity"]["payment_id"] == payment["id"]
    fetched = requests.get(f"{sim.base_url}/razorpay/v1/orders/{order['id']}", auth=RAZORPAY_AUTH, timeout=5).json()
    assert (fetched["status"], fetched["amount_paid"], fetched["attempts"]) == ("paid", 5000, 2)
    payments = requests.get(f"{sim.base_url}/razorpay/v1/orders/{order['id']}/payments", auth=RAZORPAY_AUTH, timeout=5)
    assert payments.json()["count"] == 2


def wait_for_requests(receiver: Receiver, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The first `count` webhooks the receiver got (some are sent in the background, after an answer)."""
    deadline = time.monotonic() + timeout
    while len(receiver.requests) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(receiver.requests) >= count, f"{len(receiver.requests)} webhooks, expected {count}"
    return receiver.requests[:count]


def test_razorpay_refunds_through_the_api_answer_pending_then_send_created_and_processed(
    sim: GatewaySimulator, receiver: Receiver
) -> None:
    body = {"amount": 5000, "currency": "INR", "receipt": "pay_01RZ", "notes": {"payment_id": "pay_01RZ"}}
    order = requests.post(f"{sim.base_url}/razorpay/v1/orders", json=body, auth=RAZORPAY_AUTH, timeout=5).json()
    paid = sim.settle("razorpay", order["id"], "success")["event"]["payload"]["payment"]["entity"]
    url = f"{sim.base_url}/razorpay/v1/payments/{paid['id']}/refund"
    refund_body = {"amount": 2000, "receipt": "rf_01RZ", "notes": {"refund_entry": "rf_01RZ"}}

    anonymous = requests.post(url, json=refund_body, timeout=5)
    made = requests.post(
        url, json=refund_body, auth=RAZORPAY_AUTH, timeout=5, headers={"X-Refund-Idempotency": "k" * 12}
    )
    replayed = requests.post(
        url, json=refund_body, auth=RAZORPAY_AUTH, timeout=5, headers={"X-Refund-Idempotency": "k" * 12}
    )
    other_body = requests.post(
        url, json={"amount": 1}, auth=RAZORPAY_AUTH, timeout=5, headers={"X-Refund-Idempotency": "k" * 12}
    )
    too_much = requests.post(url, json={"amount": 3001}, auth=RAZORPAY_AUTH, timeout=5)
    rest = requests.post(url, json={}, auth=RAZORPAY_AUTH, timeout=5)  # no amount: all that is left
    nothing_left = requests.post(url, json={"amount": 1}, auth=RAZORPAY_AUTH, timeout=5)
    unknown = requests.post(
        f"{sim.base_url}/razorpay/v1/payments/pay_nope/refund", json={}, auth=RAZORPAY_AUTH, timeout=5
    )

    assert anonymous.status_code == 401
    refund = made.json()
    assert made.status_code == 200 and refund["id"].startswith("rfnd_") and refund["entity"] == "refund"
    assert (refund["amount"], refund["currency"], refund["payment_id"], refund["status"]) == (
        2000,
        "INR",
        paid["id"],
        "pending",
    )
    assert (refund["receipt"], refund["notes"]) == ("rf_01RZ", {"refund_entry": "rf_01RZ"})
    assert replayed.status_code == 200 and replayed.json()["id"] == refund["id"]
    assert other_body.status_code == 400 and "idempotency key" in other_body.json()["error"]["description"]
    assert too_much.status_code == 400
    assert too_much.json()["error"] == {
        "code": "BAD_REQUEST_ERROR",
        "description": "The refund amount provided is greater than amount captured",
        "source": "business",
        "step": "payment_initiation",
        "reason": "input_validation_failed",
        "metadata": {},
        "field": "amount",
    }
    assert rest.status_code == 200 and rest.json()["amount"] == 3000
    assert nothing_left.status_code == 400
    assert nothing_left.json()["error"]["description"] == "The payment has been fully refunded already"
    assert unknown.status_code == 400 and unknown.json()["error"]["description"] == "The id provided does not exist"

    listed = requests.get(
        f"{sim.base_url}/razorpay/v1/payments/{paid['id']}/refunds", auth=RAZORPAY_AUTH, timeout=5
    ).json()
    assert (listed["entity"], listed["count"]) == ("collection", 2)
    assert [(r["id"], r["amount"], r["status"]) for r in listed["items"]] == [
        (rest.json()["id"], 3000, "processed"),  # newest first
        (refund["id"], 2000, "processed"),
    ]
    one = requests.get(
        f"{sim.base_url}/razorpay/v1/payments/{paid['id']}/refunds?count=1&skip=1", auth=RAZORPAY_AUTH, timeout=5
    ).json()
    assert [r["id"] for r in one["items"]] == [refund["id"]]
    payments = requests.get(f"{sim.base_url}/razorpay/v1/orders/{order['id']}/payments", auth=RAZORPAY_AUTH, timeout=5)
    [refunded] = [p for p in payments.json()["items"] if p["id"] == paid["id"]]
    assert (refunded["status"], refunded["amount_refunded"], refunded["refund_status"]) == ("refunded", 5000, "full")

    # The payment.captured of settling, then created and processed for each refund, in order, signed.
    sent = wait_for_requests(receiver, 5)
    secret = gateway_credential("RAZORPAY_WEBHOOK_SECRET")
    of_refund: dict[str, list[tuple[str, str]]] = {}
    for delivery in sent:
        assert hmac.compare_digest(
            delivery["headers"]["x-razorpay-signature"], hex_hmac(secret, delivery["body"], hashlib.sha256)
        )
        event = json.loads(delivery["body"])
        entity = event["payload"].get("refund", {}).get("entity", {"id": "-", "status": "-"})
        of_refund.setdefault(entity["id"], []).append((event["event"], entity["status"]))
    # Each refund's in order; two refunds' may interleave (each refund sends its own after its answer).
    assert of_refund == {
        "-": [("payment.captured", "-")],
        refund["id"]: [("refund.created", "pending"), ("refund.processed", "processed")],
        rest.json()["id"]: [("refund.created", "pending"), ("refund.processed", "processed")],
    }
    assert len({d["headers"]["x-razorpay-event-id"] for d in sent}) == 5


def test_razorpay_refund_failed_fails_the_latest_refund_made_through_the_api(sim: GatewaySimulator) -> None:
    body = {"amount": 5000, "currency": "INR", "receipt": "pay_01RZ", "notes": {}}
    order = requests.post(f"{sim.base_url}/razorpay/v1/orders", json=body, auth=RAZORPAY_AUTH, timeout=5).json()
    paid = sim.settle("razorpay", order["id"], "success")["event"]["payload"]["payment"]["entity"]
    url = f"{sim.base_url}/razorpay/v1/payments/{paid['id']}/refund"
    first = requests.post(url, json={"amount": 1000}, auth=RAZORPAY_AUTH, timeout=5).json()
    latest = requests.post(url, json={"amount": 4000}, auth=RAZORPAY_AUTH, timeout=5).json()

    failed = sim.settle("razorpay", order["id"], "refund_failed")["event"]

    assert failed["event"] == "refund.failed"
    assert (failed["payload"]["refund"]["entity"]["id"], failed["payload"]["refund"]["entity"]["status"]) == (
        latest["id"],
        "failed",
    )
    payment = failed["payload"]["payment"]["entity"]
    assert (payment["amount_refunded"], payment["status"], payment["refund_status"]) == (1000, "captured", "partial")
    again = requests.post(url, json={"amount": 4000}, auth=RAZORPAY_AUTH, timeout=5)  # the failed 40.00 counts again
    assert again.status_code == 200 and again.json()["amount"] == 4000
    listed = requests.get(f"{sim.base_url}/razorpay/v1/payments/{paid['id']}/refunds", auth=RAZORPAY_AUTH, timeout=5)
    assert [(r["id"], r["status"]) for r in listed.json()["items"]] == [
        (again.json()["id"], "processed"),
        (latest["id"], "failed"),
        (first["id"], "processed"),
    ]


# ---- Paystack -----------------------------------------------------------------------------------------------


def paystack_initialize(sim: GatewaySimulator, reference: str, **headers: str) -> requests.Response:
    body = {
        "email": "a@b.co",
        "amount": 500000,
        "currency": "NGN",
        "reference": reference,
        "metadata": {"payment_id": reference},
        "callback_url": "http://portal.test/paystack",
    }
    url = f"{sim.base_url}/paystack/transaction/initialize"
    return requests.post(url, json=body, headers={**PAYSTACK_AUTH, **headers}, timeout=5)


def paystack_verify(sim: GatewaySimulator, reference: str) -> dict[str, Any]:
    url = f"{sim.base_url}/paystack/transaction/verify/{reference}"
    return dict(requests.get(url, headers=PAYSTACK_AUTH, timeout=5).json())


def test_paystack_initialize_shape_duplicate_reference_and_auth(sim: GatewaySimulator) -> None:
    wrong = paystack_initialize(sim, "pay-01PS", Authorization="Bearer sk_test_wrong")
    created = paystack_initialize(sim, "pay-01PS")
    duplicate = paystack_initialize(sim, "pay-01PS")

    assert wrong.status_code == 401 and wrong.json() == {"status": False, "message": "Invalid key"}
    assert created.status_code == 200
    answer = created.json()
    assert (answer["status"], answer["message"]) == (True, "Authorization URL created")
    assert answer["data"]["reference"] == "pay-01PS"
    assert answer["data"]["authorization_url"] == f"{sim.base_url}/paystack/checkout/{answer['data']['access_code']}"
    assert "5000.00 NGN" in requests.get(answer["data"]["authorization_url"], timeout=5).text
    assert duplicate.status_code == 400
    assert duplicate.json() == {"status": False, "message": "Duplicate Transaction Reference"}
    assert paystack_verify(sim, "pay-01PS")["data"]["status"] == "abandoned"


def test_paystack_failure_is_silent_and_success_is_signed_with_the_secret_key(
    sim: GatewaySimulator, receiver: Receiver
) -> None:
    paystack_initialize(sim, "pay-fail")
    paystack_initialize(sim, "pay-ok")

    failure = sim.settle("paystack", "pay-fail", "failure")
    assert failure["event"] is None and receiver.requests == []
    assert paystack_verify(sim, "pay-fail")["data"]["status"] == "failed"

    success = sim.settle("paystack", "pay-ok", "success")
    refund = sim.settle("paystack", "pay-ok", "refund", amount="1000.00")

    secret = gateway_credential("PAYSTACK_SECRET_KEY")
    for delivery in receiver.requests:
        assert delivery["path"] == "/webhooks/paystack"
        assert hmac.compare_digest(
            delivery["headers"]["x-paystack-signature"], hex_hmac(secret, delivery["body"], hashlib.sha512)
        )
    charge = json.loads(receiver.requests[0]["body"])
    assert charge == success["event"] and charge["event"] == "charge.success"
    assert (charge["data"]["status"], charge["data"]["reference"], charge["data"]["amount"]) == (
        "success",
        "pay-ok",
        500000,
    )
    assert charge["data"]["metadata"] == {"payment_id": "pay-ok"}
    assert refund["event"]["event"] == "refund.processed"
    assert (refund["event"]["data"]["transaction_reference"], refund["event"]["data"]["amount"]) == ("pay-ok", 100000)
    verified = paystack_verify(sim, "pay-ok")
    assert verified["status"] is True and verified["data"]["status"] == "success"


def paystack_refund(sim: GatewaySimulator, body: dict[str, Any], **headers: str) -> requests.Response:
    return requests.post(f"{sim.base_url}/paystack/refund", json=body, headers={**PAYSTACK_AUTH, **headers}, timeout=5)


def paystack_refunds(sim: GatewaySimulator, **query: Any) -> requests.Response:
    return requests.get(f"{sim.base_url}/paystack/refund", params=query, headers=PAYSTACK_AUTH, timeout=5)


def test_paystack_refunds_through_the_api_are_queued_then_send_pending_and_processed(
    sim: GatewaySimulator, receiver: Receiver
) -> None:
    paystack_initialize(sim, "pay-rf")
    paystack_initialize(sim, "pay-unpaid")
    sim.settle("paystack", "pay-rf", "success")
    transaction_id = paystack_verify(sim, "pay-rf")["data"]["id"]

    wrong = paystack_refund(sim, {"transaction": "pay-rf"}, Authorization="Bearer sk_test_wrong")
    made = paystack_refund(
        sim, {"transaction": "pay-rf", "amount": 200000, "merchant_note": "refund rf_1", "customer_note": "Sorry"}
    )
    too_much = paystack_refund(sim, {"transaction": "pay-rf", "amount": 300001})
    by_id = paystack_refund(sim, {"transaction": transaction_id, "amount": "100000", "currency": "NGN"})
    rest = paystack_refund(sim, {"transaction": "pay-rf"})  # no amount: all that is left
    nothing_left = paystack_refund(sim, {"transaction": "pay-rf", "amount": 1})
    unpaid = paystack_refund(sim, {"transaction": "pay-unpaid"})
    unknown = paystack_refund(sim, {"transaction": "pay-nope"})

    assert wrong.status_code == 401 and wrong.json() == {"status": False, "message": "Invalid key"}
    answer = made.json()
    assert made.status_code == 200
    assert (answer["status"], answer["message"]) == (True, "Refund has been queued for processing")
    refund = answer["data"]
    assert (refund["amount"], refund["currency"], refund["status"]) == (200000, "NGN", "pending")
    assert (refund["merchant_note"], refund["customer_note"]) == ("refund rf_1", "Sorry")
    assert (refund["transaction"]["id"], refund["transaction"]["reference"]) == (transaction_id, "pay-rf")
    assert too_much.status_code == 400
    assert too_much.json() == {"status": False, "message": "Refund amount cannot be greater than transaction amount"}
    assert by_id.status_code == 200 and by_id.json()["data"]["amount"] == 100000
    assert rest.status_code == 200 and rest.json()["data"]["amount"] == 200000
    assert nothing_left.status_code == 400
    assert nothing_left.json() == {"status": False, "message": "Transaction has been fully reversed"}
    assert unpaid.status_code == 400 and unknown.status_code == 404
    assert paystack_verify(sim, "pay-rf")["data"]["status"] == "reversed"

    listing = paystack_refunds(sim, transaction=transaction_id).json()
    assert [(r["id"], r["amount"], r["status"], r["transaction"]) for r in listing["data"]] == [
        (rest.json()["data"]["id"], 200000, "processed", transaction_id),  # newest first
        (by_id.json()["data"]["id"], 100000, "processed", transaction_id),
        (refund["id"], 200000, "processed", transaction_id),
    ]
    assert listing["data"][2]["transaction_reference"] == "pay-rf"
    assert (listing["meta"]["total"], listing["meta"]["pageCount"]) == (3, 1)
    paged = paystack_refunds(sim, transaction=transaction_id, perPage=2, page=2).json()
    assert [r["id"] for r in paged["data"]] == [refund["id"]] and paged["meta"]["pageCount"] == 2
    assert paystack_refunds(sim, transaction=1).json()["data"] == []
    by_reference = paystack_refunds(sim, transaction="pay-rf")
    assert by_reference.status_code == 400
    assert by_reference.json() == {"status": False, "message": "Transaction ID should be numeric."}

    # charge.success of settling, then pending and processed for each refund, in order, signed with the key.
    sent = wait_for_requests(receiver, 7)
    secret = gateway_credential("PAYSTACK_SECRET_KEY")
    for delivery in sent:
        assert hmac.compare_digest(
            delivery["headers"]["x-paystack-signature"], hex_hmac(secret, delivery["body"], hashlib.sha512)
        )
    events = [json.loads(delivery["body"]) for delivery in sent]
    assert events[0]["event"] == "charge.success"
    # Each refund's in order; two refunds' may interleave (each refund sends its own after its answer).
    of_refund: dict[int, list[tuple[str, str, int]]] = {}
    for sent_event in events[1:]:
        data = sent_event["data"]
        of_refund.setdefault(data["id"], []).append((sent_event["event"], data["status"], data["amount"]))
    assert of_refund == {
        refund["id"]: [("refund.pending", "pending", 200000), ("refund.processed", "processed", 200000)],
        by_id.json()["data"]["id"]: [("refund.pending", "pending", 100000), ("refund.processed", "processed", 100000)],
        rest.json()["data"]["id"]: [("refund.pending", "pending", 200000), ("refund.processed", "processed", 200000)],
    }
    assert {e["data"]["transaction_reference"] for e in events[1:]} == {"pay-rf"}


def test_paystack_refund_failed_fails_the_latest_refund_made_through_the_api(sim: GatewaySimulator) -> None:
    paystack_initialize(sim, "pay-rff")
    sim.settle("paystack", "pay-rff", "success")
    first = paystack_refund(sim, {"transaction": "pay-rff", "amount": 100000}).json()["data"]
    latest = paystack_refund(sim, {"transaction": "pay-rff"}).json()["data"]  # the other 4000.00: reversed

    failed = sim.settle("paystack", "pay-rff", "refund_failed")["event"]

    assert (failed["event"], failed["data"]["id"], failed["data"]["amount"]) == ("refund.failed", latest["id"], 400000)
    assert paystack_verify(sim, "pay-rff")["data"]["status"] == "success"
    again = paystack_refund(sim, {"transaction": "pay-rff", "amount": 400000})  # the failed 4000.00 counts again
    assert again.status_code == 200
    transaction_id = paystack_verify(sim, "pay-rff")["data"]["id"]
    listing = paystack_refunds(sim, transaction=transaction_id).json()
    assert [(r["id"], r["status"]) for r in listing["data"]] == [
        (again.json()["data"]["id"], "processed"),
        (latest["id"], "failed"),
        (first["id"], "processed"),
    ]
    assert listing["meta"]["failedRefundCount"] == 1


# ---- NOWPayments --------------------------------------------------------------------------------------------


def nowpayments_invoice(sim: GatewaySimulator, body: dict[str, Any], **headers: str) -> requests.Response:
    url = f"{sim.base_url}/nowpayments/v1/invoice"
    return requests.post(url, json=body, headers={**NOWPAYMENTS_AUTH, **headers}, timeout=5)


INVOICE = {
    "price_amount": 12.5,
    "price_currency": "usd",
    "order_id": "pay_01NP",
    "order_description": "Café crème top-up",
    "ipn_callback_url": "http://127.0.0.1:3000/webhooks/nowpayments",
    "success_url": "http://portal.test/ok",
    "cancel_url": "http://portal.test/cancel",
}


def test_nowpayments_invoice_shape_and_api_key(sim: GatewaySimulator) -> None:
    wrong = nowpayments_invoice(sim, INVOICE, **{"x-api-key": "nope"})
    missing = requests.post(f"{sim.base_url}/nowpayments/v1/invoice", json=INVOICE, timeout=5)
    created = nowpayments_invoice(sim, INVOICE)
    no_price = nowpayments_invoice(sim, {"price_currency": "usd"})

    for refused in (wrong, missing):
        assert refused.status_code == 403 and refused.json()["code"] == "INVALID_API_KEY"
    invoice = created.json()
    assert created.status_code == 201
    assert invoice["id"].isdigit() and invoice["token_id"]
    assert (invoice["price_amount"], invoice["price_currency"], invoice["pay_currency"]) == ("12.5", "usd", None)
    assert (invoice["order_id"], invoice["order_description"]) == ("pay_01NP", "Café crème top-up")
    assert invoice["invoice_url"] == f"{sim.base_url}/nowpayments/payment/?iid={invoice['id']}"
    assert (invoice["success_url"], invoice["cancel_url"]) == ("http://portal.test/ok", "http://portal.test/cancel")
    assert invoice["ipn_callback_url"] == INVOICE["ipn_callback_url"] and invoice["created_at"].endswith("Z")
    assert no_price.status_code == 400 and "price_amount" in no_price.json()["message"]


def test_nowpayments_ipn_is_signed_over_the_sorted_body(sim: GatewaySimulator, receiver: Receiver) -> None:
    invoice = nowpayments_invoice(sim, INVOICE).json()
    short = nowpayments_invoice(sim, {**INVOICE, "order_id": "pay_02NP"}).json()

    finished = sim.settle("nowpayments", invoice["id"], "success")
    partial = sim.settle("nowpayments", short["id"], "success", amount="6.25")

    secret = gateway_credential("NOWPAYMENTS_IPN_SECRET")
    for delivery in receiver.requests:
        parsed = json.loads(delivery["body"])
        canonical = json.dumps(parsed, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
        assert canonical != delivery["body"]  # the sorting matters: verifying the raw body must fail
        signature = delivery["headers"]["x-nowpayments-sig"]
        assert hmac.compare_digest(signature, hex_hmac(secret, canonical, hashlib.sha512))
        assert signature != hex_hmac(secret, delivery["body"], hashlib.sha512)
    ipn = json.loads(receiver.requests[0]["body"])
    assert ipn == finished["event"]
    assert (ipn["payment_status"], ipn["order_id"], ipn["invoice_id"]) == ("finished", "pay_01NP", int(invoice["id"]))
    assert (ipn["price_amount"], ipn["price_currency"], ipn["order_description"]) == (12.5, "usd", "Café crème top-up")
    assert partial["event"]["payment_status"] == "partially_paid"
    assert partial["event"]["actually_paid_at_fiat"] == 6.25
    status = requests.get(
        f"{sim.base_url}/nowpayments/v1/payment/{ipn['payment_id']}", headers=NOWPAYMENTS_AUTH, timeout=5
    )
    assert status.json()["payment_status"] == "finished" and status.json()["order_id"] == "pay_01NP"


# ---- payer pages and control endpoints ----------------------------------------------------------------------


def redirect_link(sim: GatewaySimulator, provider: str) -> tuple[str, str, str]:
    """(the link a gateway hands the payer, the amount it should show, where Pay should lead back to)."""
    if provider == "paypal":
        order = create_paypal_order(sim, paypal_token(sim))
        link = next(link["href"] for link in order["links"] if link["rel"] == "payer-action")
        return link, "10.00 USD", f"http://portal.test/return?token={order['id']}&amp;PayerID="
    if provider == "paystack":
        data = paystack_initialize(sim, "pay-page").json()["data"]
        return (
            data["authorization_url"],
            "5000.00 NGN",
            "http://portal.test/paystack?trxref=pay-page&amp;reference=pay-page",
        )
    if provider == "nowpayments":
        return nowpayments_invoice(sim, INVOICE).json()["invoice_url"], "12.5 USD", "http://portal.test/ok"
    intent = confirmed_intent(sim, "pm_card_authenticationRequired", return_url="http://portal.test/done").json()
    link = intent["next_action"]["use_stripe_sdk"]["stripe_js"]
    return link, "12.50 USD", f"http://portal.test/done?payment_intent={intent['id']}"


@pytest.mark.parametrize(
    ("provider", "event_type"),
    [
        ("paypal", "CHECKOUT.ORDER.APPROVED"),
        ("paystack", "charge.success"),
        ("nowpayments", "finished"),
        ("stripe", "payment_intent.succeeded"),
    ],
)
def test_payer_page_pay_button_settles_and_links_back_to_the_portal(
    sim: GatewaySimulator, receiver: Receiver, provider: str, event_type: str
) -> None:
    link, amount, back_url = redirect_link(sim, provider)

    page = requests.get(link, timeout=5)
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text))
    result = requests.post(f"{sim.base_url}/_sim/pay", data={**fields, "outcome": "success"}, timeout=5)

    assert page.status_code == 200 and amount in page.text
    assert 'value="success">Pay<' in page.text and 'value="failure">Cancel<' in page.text
    assert fields["provider"] == provider
    assert result.status_code == 200 and event_type in result.text
    assert f'href="{back_url}' in result.text
    assert receiver.last()["path"] == f"/webhooks/{provider}"
    assert "already settled" in requests.get(link, timeout=5).text


def test_settle_endpoint_answers_and_refuses_over_http(sim: GatewaySimulator, receiver: Receiver) -> None:
    invoice = nowpayments_invoice(sim, INVOICE).json()
    settle_url = f"{sim.base_url}/_sim/settle"

    unknown = requests.post(
        settle_url, json={"provider": "stripe", "ref": "pi_missing", "outcome": "success"}, timeout=5
    )
    bad_outcome = requests.post(
        settle_url, json={"provider": "nowpayments", "ref": invoice["id"], "outcome": "paid"}, timeout=5
    )
    early_refund = requests.post(
        settle_url, json={"provider": "nowpayments", "ref": invoice["id"], "outcome": "refund"}, timeout=5
    )
    settled = requests.post(
        settle_url, json={"provider": "nowpayments", "ref": invoice["id"], "outcome": "success"}, timeout=5
    )

    assert (unknown.status_code, bad_outcome.status_code, early_refund.status_code) == (404, 400, 409)
    assert settled.status_code == 200
    answer = settled.json()
    assert (answer["delivered"], answer["status"], answer["response"]) == (True, 200, {"received": 1})
    assert answer["event"]["order_id"] == "pay_01NP"
    objects = requests.get(f"{sim.base_url}/_sim/objects", timeout=5).json()
    assert [i["id"] for i in objects["nowpayments"]["invoices"]] == [invoice["id"]]
    assert objects["deliveries"][0]["event_type"] == "finished"
    assert requests.post(f"{sim.base_url}/_sim/reset", timeout=5).status_code == 200
    emptied = sim.objects()
    assert emptied["nowpayments"] == {"invoices": [], "payments": []} and emptied["deliveries"] == []


def test_settle_reports_an_unreachable_api(receiver: Receiver) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with GatewaySimulator(f"http://127.0.0.1:{closed_port}") as simulator:
        url = f"{simulator.base_url}/razorpay/v1/orders"
        order = requests.post(url, json={"amount": 1000, "currency": "INR"}, auth=RAZORPAY_AUTH, timeout=5).json()
        answer = requests.post(
            f"{simulator.base_url}/_sim/settle",
            json={"provider": "razorpay", "ref": order["id"], "outcome": "success"},
            timeout=5,
        )
    assert answer.status_code == 502
    assert answer.json()["delivered"] is False and answer.json()["event"]["event"] == "payment.captured"


def test_parse_nested_form_reads_stripe_keys() -> None:
    body = b"amount=100&metadata[payment_id]=p1&card[number]=4242&payment_method_types[0]=card&expand[]=x&expand[]=y"

    assert parse_nested_form(body) == {
        "amount": "100",
        "metadata": {"payment_id": "p1"},
        "card": {"number": "4242"},
        "payment_method_types": ["card"],
        "expand": ["x", "y"],
    }


def test_command_line_refuses_a_taken_port_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "local.gateway_sim", "--port", str(port), "--api", "http://127.0.0.1:9"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_serve_returns_a_started_simulator_for_make_dev(receiver: Receiver) -> None:
    simulator = serve(0, receiver.url)
    try:
        answer = requests.get(f"{simulator.base_url}/_sim/objects", timeout=5)
        assert answer.status_code == 200 and answer.json()["deliveries"] == []
        assert simulator.api_base_env()["PAYPAL_API_BASE"] == f"{simulator.base_url}/paypal"
    finally:
        simulator.shutdown()
