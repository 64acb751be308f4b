"""Concurrency through the real local stack over HTTP (issue 11 §2, §5): duplicates of one request meet,
whatever method; parallel voucher guesses cannot outrun the lockout.

The local stack runs each function's requests on their own warm instances, as Lambda would, and computes the
same idempotency keys a deployment does, so concurrent duplicates reach Powertools' in-progress record and
the store's claim on creating the gateway object.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

CALLERS = 30
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
BODIES: dict[str, dict[str, Any]] = {
    "credit_card": {"method": "credit_card", "amount": "19.99", "currency": "USD", "card": CARD},
    "paypal": {"method": "paypal", "amount": "23.99", "currency": "USD"},
    "razorpay": {"method": "razorpay", "amount": "499.00", "currency": "INR"},
    "paystack": {"method": "paystack", "amount": "2500.00", "currency": "NGN"},
    "nowpayments": {"method": "nowpayments", "amount": "120.00", "currency": "EUR"},
    "bank_transfer": {"method": "bank_transfer", "amount": "25.00", "currency": "EUR"},
    "voucher": {"method": "voucher", "currency": "USD"},
}
# Where each gateway keeps the objects a create makes (voucher and bank transfer make none).
GATEWAY_OBJECTS = {
    "credit_card": ("stripe", "payment_intents"),
    "paypal": ("paypal", "orders"),
    "razorpay": ("razorpay", "orders"),
    "paystack": ("paystack", "transactions"),
    "nowpayments": ("nowpayments", "invoices"),
}


def post_payment(stack, token: str, body: dict[str, Any], key: str) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    answer = stack.call("POST", "/payments", token=token, headers=headers, body=json.dumps(body))
    return answer.status, answer.json()


def sim_objects(stack, provider: str, kind: str, customer: str) -> list[dict[str, Any]]:
    held = requests.get(f"{stack.sim_url}/_sim/objects", timeout=30).json()[provider][kind]
    return [o for o in held if customer in json.dumps(o)]


def voucher_code(stack, amount: str, currency: str) -> str:
    operator = stack.token("provider", ("operator",))
    answer = stack.call(
        "POST",
        "/admin/vouchers",
        token=operator,
        headers={"Content-Type": "application/json"},
        body=json.dumps({"amount": amount, "currency": currency}),
    )
    assert answer.status == 201, answer.body
    return str(answer.json()["vouchers"][0]["code"])


@pytest.mark.parametrize("method", sorted(BODIES))
def test_thirty_identical_requests_at_once_make_one_payment_and_one_gateway_object(stack, method: str) -> None:
    customer = f"dup-{method}-{uuid.uuid4().hex[:6]}"
    token = stack.token(customer, ("finance",))
    body = dict(BODIES[method])
    if method == "voucher":
        body["voucher_code"] = voucher_code(stack, "5.00", "USD")
    key = uuid.uuid4().hex
    with ThreadPoolExecutor(CALLERS) as pool:
        results = list(pool.map(lambda _: post_payment(stack, token, body, key), range(CALLERS)))

    statuses = [status for status, _ in results]
    assert set(statuses) <= {201, 409}, results
    answered = [answer for status, answer in results if status == 201]
    assert answered, statuses
    assert len({a["payment"]["id"] for a in answered}) == 1  # every caller that got one got the same payment
    assert len({json.dumps(a["next_action"], sort_keys=True) for a in answered}) == 1
    for status, answer in results:
        if status == 409:
            assert "retry" in answer["message"].lower(), answer
    listed = stack.call("GET", "/payments", token=token).json()["items"]
    assert [p["id"] for p in listed] == [answered[0]["payment"]["id"]]
    if method in GATEWAY_OBJECTS:
        assert len(sim_objects(stack, *GATEWAY_OBJECTS[method], customer)) == 1
    # And the same request once more, after the burst: the same answer.
    assert post_payment(stack, token, body, key) == (201, answered[0])


def test_thirty_parallel_voucher_guesses_get_at_most_five_checks(stack) -> None:
    customer = f"guess-{uuid.uuid4().hex[:8]}"
    token = stack.token(customer, ("finance",))
    guesses = [{"method": "voucher", "voucher_code": f"GUESS-{i:04d}", "currency": "USD"} for i in range(CALLERS)]
    with ThreadPoolExecutor(CALLERS) as pool:
        results = list(pool.map(lambda body: post_payment(stack, token, body, uuid.uuid4().hex), guesses))
    statuses = [status for status, _ in results]
    assert set(statuses) <= {422, 429}, results
    assert statuses.count(422) <= 5, statuses  # only five codes were ever looked up
    assert all("try again" in a["message"] for s, a in results if s == 429)
    assert stack.call("GET", "/payments", token=token).json()["items"] == []


# ---- operator refunds (issue 14 §1) ------------------------------------------------------------------------

REFUNDED: dict[str, dict[str, Any]] = {  # a payment each refunding gateway completes at once or when settled
    "stripe": {"method": "credit_card", "amount": "100.00", "currency": "USD", "payment_method": "pm_card_visa"},
    "razorpay": {"method": "razorpay", "amount": "100.00", "currency": "INR"},
}


def gateway_refunds(stack, provider: str, payment: dict[str, Any]) -> list[dict[str, Any]]:
    """The refunds the simulator made of `payment`'s gateway object (as its refund API lists them)."""
    held = requests.get(f"{stack.sim_url}/_sim/objects", timeout=30).json()[provider]
    if provider == "stripe":
        return [r for r in held["refunds"] if r["payment_intent"] == payment["gateway_reference"]]
    paid = {p["id"] for p in held["payments"] if p["order_id"] == payment["gateway_reference"]}
    return [r for r in held["refunds"] if r["payment_id"] in paid]


@pytest.mark.parametrize("provider", sorted(REFUNDED))
def test_twenty_parallel_refunds_of_thirty_percent_three_succeed_and_the_gateway_made_three(
    stack, provider: str
) -> None:
    customer = f"refund-{provider}-{uuid.uuid4().hex[:6]}"
    status, made = post_payment(stack, stack.token(customer, ("finance",)), REFUNDED[provider], uuid.uuid4().hex)
    assert status == 201, made
    payment = made["payment"]
    if payment["status"] != "completed":
        settle = {"provider": provider, "ref": payment["gateway_reference"], "outcome": "success"}
        assert requests.post(f"{stack.sim_url}/_sim/settle", json=settle, timeout=30).status_code == 200
    operator = stack.token("provider", ("operator",))
    path = f"/admin/customers/{customer}/payments/{payment['id']}/refunds"

    def refund(_: int) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
        answer = stack.call("POST", path, token=operator, headers=headers, body=json.dumps({"amount": "30.00"}))
        return answer.status, answer.json()

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(refund, range(20)))

    made_refunds = [answer for status, answer in results if status == 201]
    refused = [answer for status, answer in results if status == 422]
    assert len(made_refunds) + len(refused) == 20, [status for status, _ in results]
    assert len(made_refunds) == 3, sorted({answer["message"] for answer in refused})  # 90% of what was paid
    assert all(answer["field"] == "amount" for answer in refused)
    at_gateway = gateway_refunds(stack, provider, payment)
    assert len(at_gateway) == len(made_refunds)  # the gateway saw no more than what succeeded
    assert sum(int(r["amount"]) for r in at_gateway) == 3000 * len(made_refunds)
    balance = stack.call("GET", "/balance", token=stack.token(customer, ("finance",))).json()["balances"]
    assert balance == [{"currency": payment["currency"], "amount": f"{100 - 30 * len(made_refunds)}.00"}]
    listed = stack.call("GET", "/payments?limit=100", token=stack.token(customer, ("finance",))).json()["items"]
    assert sorted(p["id"] for p in listed if p["method"] == "refund") == sorted(a["id"] for a in made_refunds)
