"""Saved cards through the account function against the Stripe simulator (docs/saved-cards.md): save (active, or
pending 3-D Secure settled by the real webhook handler), list, make default, remove (detached at Stripe), pay with a
saved card, and one Stripe Customer however many first saves race."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from payments.store import PaymentStore
from tests.conftest import claims_for, http_event, invoke, load_function
from tests.integration.helpers import post, settle_at_sim

pytestmark = pytest.mark.usefixtures("aws", "gateway_sim")
VISA = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
THREE_DS = {"number": "4000002500003155", "exp_month": 11, "exp_year": 2032, "cvc": "456"}


def save(customer: str, body: dict[str, Any], **kw: Any) -> tuple[int, Any]:
    return post("account", "/payment-methods", body, customer=customer, **kw)


def call(method: str, path: str, customer: str, *, route: str, card_id: str | None = None) -> tuple[int, Any]:
    event = http_event(
        method,
        path,
        route=route,
        claims=claims_for(customer, "finance"),
        path_params={"id": card_id} if card_id else None,
    )
    return invoke(load_function("account"), event)


def listed(customer: str) -> list[dict[str, Any]]:
    status, body = call("GET", "/payment-methods", customer, route="/payment-methods")
    assert status == 200, body
    return body["items"]


def remove(customer: str, card_id: str) -> tuple[int, Any]:
    return call("DELETE", f"/payment-methods/{card_id}", customer, route="/payment-methods/{id}", card_id=card_id)


def sim_stripe(gateway_sim: Any, kind: str) -> list[dict[str, Any]]:
    return list(gateway_sim.objects()["stripe"][kind])


def test_a_card_that_needs_nothing_is_active_default_and_listed(customer: str, gateway_sim: Any) -> None:
    status, body = save(customer, {"card": VISA})
    assert status == 201, body
    assert {k: body[k] for k in ("brand", "last4", "exp_month", "exp_year", "default", "state")} == {
        "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2031, "default": True, "state": "active",
    }  # fmt: skip
    assert body["next_action"] is None and body["id"].startswith("card_")
    assert [c["id"] for c in listed(customer)] == [body["id"]]
    card = PaymentStore().saved_card(customer, body["id"])
    assert card is not None and card.payment_method
    [method] = [m for m in sim_stripe(gateway_sim, "payment_methods") if m["id"] == card.payment_method]
    assert method["customer"] == PaymentStore().stripe_customer(customer)


def test_3ds_on_setup_is_pending_until_the_webhook(customer: str, gateway_sim: Any) -> None:
    status, body = save(customer, {"card": THREE_DS})
    assert status == 201, body
    assert body["state"] == "pending" and not body["default"]
    assert body["next_action"]["type"] == "stripe_sdk" and body["next_action"]["client_secret"].startswith("seti_")
    assert [c["state"] for c in listed(customer)] == ["pending"]
    card = PaymentStore().saved_card(customer, body["id"])
    assert card is not None
    status, answer = settle_at_sim(gateway_sim, "stripe", card.setup_intent, "success")
    assert (status, answer["outcome"]) == (200, "card_active")
    [shown] = listed(customer)
    assert (shown["state"], shown["default"]) == ("active", True)
    # an active card can pay; on-session Stripe's 3155 still wants 3-D Secure (off-session it would not)
    status, paid = post(
        "make_payment",
        "/payments",
        {"method": "credit_card", "saved_payment_method": body["id"], "amount": "15.00", "currency": "USD"},
        customer=customer,
    )
    assert status == 201, paid
    assert paid["payment"]["status"] == "pending" and paid["next_action"]["type"] == "stripe_sdk"


def test_setup_failed_marks_the_card_failed(customer: str, gateway_sim: Any) -> None:
    _, body = save(customer, {"payment_method": "pm_card_authenticationRequiredSetupForOffSession"})
    assert body["state"] == "pending"
    card = PaymentStore().saved_card(customer, body["id"])
    assert card is not None
    status, answer = settle_at_sim(gateway_sim, "stripe", card.setup_intent, "failure")
    assert (status, answer["outcome"]) == (200, "card_failed")
    assert listed(customer) == []
    status, error = post(
        "make_payment",
        "/payments",
        {"method": "credit_card", "saved_payment_method": body["id"], "amount": "15.00", "currency": "USD"},
        customer=customer,
    )
    assert status == 422 and error["field"] == "saved_payment_method"


def test_default_and_removal(customer: str, gateway_sim: Any) -> None:
    _, first = save(customer, {"card": VISA})
    _, second = save(customer, {"payment_method": "pm_card_mastercard"})
    assert first["default"] and not second["default"]
    status, made = call(
        "POST",
        f"/payment-methods/{second['id']}/default",
        customer,
        route="/payment-methods/{id}/default",
        card_id=second["id"],
    )
    assert status == 200 and made["default"] and made["brand"] == "mastercard"
    pm = PaymentStore().saved_card(customer, second["id"]).payment_method  # type: ignore[union-attr]
    assert remove(f"cust-{uuid.uuid4().hex[:8]}", second["id"])[0] == 404  # another customer's card
    status, _ = remove(customer, second["id"])
    assert status == 204
    [method] = [m for m in sim_stripe(gateway_sim, "payment_methods") if m["id"] == pm]
    assert method["customer"] is None  # detached at Stripe
    [left] = listed(customer)
    assert (left["id"], left["default"]) == (first["id"], True)
    assert remove(customer, second["id"])[0] == 404
    status, error = post(
        "make_payment",
        "/payments",
        {"method": "credit_card", "saved_payment_method": second["id"], "amount": "5.00", "currency": "USD"},
        customer=customer,
    )
    assert status == 422 and error["field"] == "saved_payment_method"


def test_paying_with_a_saved_card_names_the_customer_at_stripe(customer: str, gateway_sim: Any) -> None:
    _, card = save(customer, {"card": VISA})
    status, paid = post(
        "make_payment",
        "/payments",
        {"method": "credit_card", "saved_payment_method": card["id"], "amount": "20.00", "currency": "EUR"},
        customer=customer,
    )
    assert status == 201, paid
    assert paid["payment"]["status"] == "completed" and paid["payment"]["card"]["last4"] == "4242"
    stored = PaymentStore()
    intents = [i for i in sim_stripe(gateway_sim, "payment_intents") if i["metadata"].get("customer_id") == customer]
    assert [(i["customer"], i["payment_method"]) for i in intents] == [
        (stored.stripe_customer(customer), stored.saved_card(customer, card["id"]).payment_method)  # type: ignore[union-attr]
    ]
    other = f"cust-{uuid.uuid4().hex[:8]}"
    status, error = post(
        "make_payment",
        "/payments",
        {"method": "credit_card", "saved_payment_method": card["id"], "amount": "20.00", "currency": "EUR"},
        customer=other,
    )
    assert status == 422 and error["field"] == "saved_payment_method"


def test_ten_first_saves_at_once_make_one_stripe_customer(customer: str, gateway_sim: Any) -> None:
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: save(customer, {"payment_method": "pm_card_visa"}), range(10)))
    assert [status for status, _ in answers] == [201] * 10, answers
    customers = [c for c in sim_stripe(gateway_sim, "customers") if c["metadata"].get("customer_id") == customer]
    assert len(customers) == 1
    assert PaymentStore().stripe_customer(customer) == customers[0]["id"]
    assert len(listed(customer)) == 10
    assert sum(c["default"] for c in listed(customer)) == 1


def test_the_same_key_replays_the_same_card(customer: str) -> None:
    one = save(customer, {"card": VISA}, key="same-key")
    two = save(customer, {"card": VISA}, key="same-key")
    assert one == two and len(listed(customer)) == 1
    status, error = save(customer, {"card": THREE_DS}, key="same-key")
    assert status == 422 and error["field"] == "Idempotency-Key"


@pytest.mark.parametrize(
    ("payment_method", "code"),
    [
        ("pm_card_authenticationRequired", "authentication_required"),
        ("pm_card_chargeDeclined", "card_declined"),
        ("pm_card_chargeDeclinedInsufficientFunds", "card_declined"),
        ("pm_card_chargeCustomerFail", "card_declined"),
        ("pm_card_authenticationRequiredSetupForOffSession", None),
        ("pm_card_visa", None),
    ],
)
def test_off_session_test_cards_at_the_simulator(gateway_sim: Any, payment_method: str, code: str | None) -> None:
    """What the auto top-up relies on: off-session PaymentIntents honour Stripe's off-session test cards, and an
    Idempotency-Key replays the same PaymentIntent."""
    base = os.environ["STRIPE_API_BASE"]
    auth = {"Authorization": "Bearer sk_test_local"}
    customer = requests.post(f"{base}/v1/customers", data={"description": "t"}, headers=auth, timeout=5).json()["id"]
    setup = requests.post(
        f"{base}/v1/setup_intents",
        data={"customer": customer, "payment_method": payment_method, "confirm": "true", "usage": "off_session"},
        headers=auth,
        timeout=5,
    ).json()
    # a card declined on setup is charged as the bare test token (a fresh PaymentMethod, no Customer)
    pm = setup["payment_method"] if "error" not in setup else None
    owner = customer if pm else None
    key = {"Idempotency-Key": uuid.uuid4().hex}
    form = {
        "amount": "1000", "currency": "usd", "payment_method": pm or payment_method,
        "off_session": "true", "confirm": "true", "payment_method_types[0]": "card",
    }  # fmt: skip
    if owner:
        form["customer"] = owner
    first = requests.post(f"{base}/v1/payment_intents", data=form, headers={**auth, **key}, timeout=5)
    again = requests.post(f"{base}/v1/payment_intents", data=form, headers={**auth, **key}, timeout=5)
    if code is None:
        assert first.status_code == 200 and first.json()["status"] == "succeeded"
        assert again.json()["id"] == first.json()["id"]
    else:
        assert first.status_code == 402
        error = first.json()["error"]
        assert error["code"] == code and error["payment_intent"]["status"] == "requires_payment_method"
        assert again.json()["error"]["payment_intent"]["id"] == error["payment_intent"]["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
