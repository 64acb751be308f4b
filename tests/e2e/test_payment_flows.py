"""Through the real local stack over HTTP: every method started, settled by the simulator's signed
webhooks, operators' routes, and the balance after each step (issues 3 and 4, "Done when")."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import requests

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
GATEWAY_METHODS = [
    ("credit_card", "stripe", "19.99", "USD", {"payment_method": "pm_card_authenticationRequired"}),
    ("paypal", "paypal", "23.99", "USD", {}),
    ("razorpay", "razorpay", "499.00", "INR", {}),
    ("paystack", "paystack", "2500.00", "NGN", {}),
    ("nowpayments", "nowpayments", "120.00", "EUR", {}),
]


def api(stack, method: str, path: str, token: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    answer = stack.call(method, path, token=token, headers=headers, body=json.dumps(body) if body is not None else None)
    return answer.status, answer.json()


def pay(stack, token: str, body: dict[str, Any]) -> tuple[int, Any]:
    return api(stack, "POST", "/payments", token, body, key=uuid.uuid4().hex)


def settle(stack, provider: str, ref: str, outcome: str, **extra: Any) -> dict[str, Any]:
    answer = requests.post(
        f"{stack.sim_url}/_sim/settle", json={"provider": provider, "ref": ref, "outcome": outcome, **extra}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def gateway_ref(stack, customer: str, payment_id: str) -> str:
    item = stack.aws("dynamodb").get_item(
        TableName=stack.resource_name("PaymentsTable"),
        Key={"PK": {"S": f"CUST#{customer}"}, "SK": {"S": f"PAY#{payment_id}"}},
    )["Item"]
    return item["gateway_ref"]["S"]


def wait_for_status(stack, token: str, payment_id: str, status: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        code, payment = api(stack, "GET", f"/payments/{payment_id}", token)
        assert code == 200
        if payment["status"] == status or time.monotonic() > deadline:
            return payment
        time.sleep(0.2)


def balance(stack, token: str) -> dict[str, str]:
    code, body = api(stack, "GET", "/balance", token)
    assert code == 200
    return {b["currency"]: b["amount"] for b in body["balances"]}


@pytest.mark.parametrize(("method", "provider", "amount", "currency", "extra"), GATEWAY_METHODS)
def test_each_gateway_method_is_settled_by_its_signed_webhook(stack, method, provider, amount, currency, extra) -> None:
    customer = f"flow-{method}-{uuid.uuid4().hex[:6]}"
    token = stack.token(customer, ("finance",))
    code, body = pay(stack, token, {"method": method, "amount": amount, "currency": currency, **extra})
    assert code == 201, body
    payment = body["payment"]
    assert payment["status"] == "pending" and body["next_action"]
    ref = gateway_ref(stack, customer, payment["id"])
    delivery = settle(stack, provider, ref, "success")
    assert delivery["status"] == 200, delivery
    settled = wait_for_status(stack, token, payment["id"], "completed")
    assert settled["status"] == "completed" and settled["completed_at"]
    assert settled["history"][-1]["by"].startswith(f"gateway:{provider}:")
    assert balance(stack, token) == {currency: amount}
    # The same gateway's refund arrives as a new negative payment.
    refund = settle(stack, provider, ref, "refund", amount=amount)
    assert refund["status"] == 200, refund
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        code, page = api(stack, "GET", "/payments", token)
        refunds = [p for p in page["items"] if p["method"] == "refund"]
        if refunds:
            break
        time.sleep(0.2)
    assert len(refunds) == 1 and refunds[0]["amount"] == "-" + amount and refunds[0]["refund_of"] == payment["id"]
    zero = "0" if currency == "JPY" else "0." + "0" * len(amount.split(".")[1])
    assert balance(stack, token) == {currency: zero}


def test_every_method_shows_in_the_list(stack) -> None:
    customer = f"all-{uuid.uuid4().hex[:6]}"
    token = stack.token(customer, ("finance",))
    operator = stack.token(None, ("operator",))
    code, vouchers = api(stack, "POST", "/admin/vouchers", operator, {"amount": "5.00", "currency": "USD"})
    assert code == 201
    bodies = [
        {"method": "bank_transfer", "amount": "10.00", "currency": "USD"},
        {"method": "paypal", "amount": "11.00", "currency": "USD"},
        {"method": "credit_card", "amount": "12.00", "currency": "USD", "card": CARD},
        {"method": "razorpay", "amount": "13.00", "currency": "INR"},
        {"method": "paystack", "amount": "14.00", "currency": "NGN"},
        {"method": "nowpayments", "amount": "15.00", "currency": "USD"},
        {"method": "voucher", "voucher_code": vouchers["vouchers"][0]["code"], "currency": "USD"},
    ]
    for body in bodies:
        code, answer = pay(stack, token, body)
        assert code == 201, (body["method"], answer)
    code, page = api(stack, "GET", "/payments", token)
    assert code == 200
    assert [p["method"] for p in page["items"]] == [b["method"] for b in reversed(bodies)]
    statuses = {p["method"]: p["status"] for p in page["items"]}
    assert statuses["credit_card"] == statuses["voucher"] == "completed"
    assert {m for m, s in statuses.items() if s == "pending"} == {
        "bank_transfer",
        "paypal",
        "razorpay",
        "paystack",
        "nowpayments",
    }
    assert balance(stack, token) == {"USD": "17.00"}


def test_operator_completes_a_bank_transfer_and_records_a_purchase(stack) -> None:
    customer = f"ops-{uuid.uuid4().hex[:6]}"
    token = stack.token(customer, ("finance",))
    operator = stack.token(None, ("operator",), sub="op-7")
    code, body = pay(stack, token, {"method": "bank_transfer", "amount": "50.00", "currency": "EUR"})
    payment_id = body["payment"]["id"]
    path = f"/admin/customers/{customer}/payments/{payment_id}"
    assert api(stack, "POST", path + "/complete", token)[0] == 403  # a customer is not an operator
    code, done = api(stack, "POST", path + "/complete", operator, {"note": "matched bank statement"})
    assert code == 200 and done["status"] == "completed"
    assert done["history"][-1] == {**done["history"][-1], "by": "operator:op-7", "status": "completed"}
    assert api(stack, "POST", path + "/cancel", operator)[0] == 409
    key = uuid.uuid4().hex
    charge = {"amount": "20.00", "currency": "EUR", "description": "SIM card"}
    first = api(stack, "POST", f"/admin/customers/{customer}/charges", operator, charge, key=key)
    again = api(stack, "POST", f"/admin/customers/{customer}/charges", operator, charge, key=key)
    assert first[0] == again[0] == 201 and first[1]["id"] == again[1]["id"]
    assert first[1]["amount"] == "-20.00" and first[1]["method"] == "purchase"
    assert balance(stack, token) == {"EUR": "30.00"}
