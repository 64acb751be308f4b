"""Account settings through the real handlers on the embedded AWS (docs/account-settings.md): the operator's routes,
what the payer is offered, the limits on POST /payments, surcharges charged at each gateway (the simulator holds the
charged amount, its signed webhook completes the payment, the balance gets the amount), and the credit limit on
GET /balance."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import claims_for, http_event, invoke, load_function
from tests.integration.helpers import balances, deliver, get_payment, issue_vouchers, post, settle_at_sim
from tests.integration.test_paypal_webhooks import settle as settle_paypal

pytestmark = pytest.mark.usefixtures("aws")


def call(function: str, method: str, path: str, claims: dict[str, Any], body: Any = None, **extra: Any) -> Any:
    event = http_event(
        method, path, claims=claims, body=None if body is None else json.dumps(body), **extra
    )  # fmt: skip
    return invoke(load_function(function), event)


def put_settings(customer: str, body: dict[str, Any]) -> tuple[int, Any]:
    return call(
        "admin",
        "PUT",
        f"/admin/customers/{customer}/settings",
        claims_for(None, "operator", sub="op-1"),
        body,
        route="/admin/customers/{customer_id}/settings",
        path_params={"customer_id": customer},
    )


def get_settings(customer: str) -> tuple[int, Any]:
    return call(
        "admin",
        "GET",
        f"/admin/customers/{customer}/settings",
        claims_for(None, "operator", sub="op-1"),
        route="/admin/customers/{customer_id}/settings",
        path_params={"customer_id": customer},
    )


def options(customer: str, group: str = "support") -> tuple[int, Any]:
    return call("make_payment", "GET", "/payment-options", claims_for(customer, group))


def balance(customer: str) -> Any:
    status, body = call("list_payments", "GET", "/balance", claims_for(customer, "support"))
    assert status == 200, body
    return body["balances"]


def test_an_operator_sets_a_customers_settings_and_the_payer_is_offered_them(customer: str) -> None:
    status, defaults = get_settings(customer)
    assert status == 200, defaults
    assert (defaults["account_currency"], defaults["max_balance"], defaults["credit_limit"]) == ("USD", None, "0.00")

    settings = {
        "account_currency": "KWD",
        "allowed_currencies": ["KWD", "USD"],
        "min_payment": "1.500",
        "max_payment": "250",
        "max_balance": "500.000",
        "methods": {"paystack": {"enabled": False}, "paypal": {"surcharge_fixed": "0.100", "surcharge_percent": "3.4"}},
        "email_receipts": True,
        "credit_limit": "5.000",
        "provider": {"name": "Gulf Telecom", "address": "1 Gulf Road\nKuwait City"},
    }
    status, saved = put_settings(customer, settings)
    assert status == 200, saved
    assert get_settings(customer) == (200, saved)
    assert saved["max_payment"] == "250.000" and saved["methods"]["paypal"]["surcharge_fixed"] == "0.100"

    status, offered = options(customer)
    assert status == 200, offered
    methods = {m["method"]: m for m in offered["methods"]}
    assert "paystack" not in methods
    assert (offered["account_currency"], offered["max_balance"]) == ("KWD", "500.000")
    assert methods["paypal"] | {"label": "x"} == {
        "method": "paypal", "label": "x", "currencies": ["USD"], "min_amount": "1.500", "max_amount": "250.000",
        "surcharge_fixed": "0.100", "surcharge_percent": "3.4",
    }  # fmt: skip
    assert methods["bank_transfer"]["currencies"] == ["KWD", "USD"]
    # A support user can read the options; another customer still has the defaults.
    other = options(f"{customer}-other")[1]
    assert {m["method"] for m in other["methods"]} >= {"paystack", "paypal"}

    # The credit limit: the account currency's entry, even before any payment.
    assert balance(customer) == [{"currency": "KWD", "amount": "0.000", "credit_limit": "5.000", "available": "5.000"}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_balance": "1.2345"}, "max_balance"),
        ({"methods": {"paypal": {"surcharge_percent": "80"}}}, "methods.paypal.surcharge_percent"),
        ({"allowed_currencies": ["EUR"]}, "allowed_currencies"),
        ({"methods": {"bitcoin": {}}}, "methods.bitcoin"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_a_bad_setting_is_a_422_naming_it_and_the_settings_stay(
    customer: str, body: dict[str, Any], field: str
) -> None:
    assert put_settings(customer, {"min_payment": "2.00"})[0] == 200
    status, answer = put_settings(customer, body)
    assert status == 422, answer
    assert answer["errors"][0]["field"] == field and field.split(".")[-1] in answer["message"]
    assert get_settings(customer)[1]["min_payment"] == "2.00"


def test_operators_only(customer: str) -> None:
    for group in ("admin", "finance", "support"):
        status, _ = call(
            "admin",
            "PUT",
            f"/admin/customers/{customer}/settings",
            claims_for(customer, group),
            {"max_balance": "1.00"},
            route="/admin/customers/{customer_id}/settings",
            path_params={"customer_id": customer},
        )
        assert status == 403
    assert get_settings(customer)[1]["max_balance"] is None


def pay(customer: str, method: str, amount: str, currency: str, **extra: Any) -> tuple[int, Any]:
    body = {"method": method, "amount": amount, "currency": currency, **extra}
    return post("make_payment", "/payments", body, customer=customer)


@pytest.mark.parametrize("method", ["bank_transfer", "paypal", "razorpay", "paystack", "nowpayments", "credit_card"])
def test_limits_hold_on_every_method_and_nothing_is_stored_when_refused(customer: str, method: str) -> None:
    currency = {"razorpay": "INR", "paystack": "NGN"}.get(method, "USD")
    assert (
        put_settings(customer, {"account_currency": currency, "min_payment": "10.00", "max_payment": "20.00"})[0] == 200
    )
    extra = {"payment_method": "pm_card_visa"} if method == "credit_card" else {}
    for amount, word in (("9.99", "minimum"), ("20.01", "maximum")):
        status, answer = pay(customer, method, amount, currency, **extra)
        assert status == 422, answer
        assert answer["errors"][0]["field"] == "amount"
        limit = "10.00" if word == "minimum" else "20.00"
        assert f"{word} payment of {limit} {currency}" in answer["message"]
    assert get_payment(customer, "pay_none")[0] == 404
    status, listed = call("list_payments", "GET", "/payments", claims_for(customer, "support"))
    assert (status, listed["items"]) == (200, [])
    assert put_settings(customer, {"account_currency": currency, "methods": {method: {"enabled": False}}})[0] == 200
    status, answer = pay(customer, method, "15.00", currency, **extra)
    assert (status, answer["errors"][0]["field"]) == (422, "method")


def test_vouchers_stop_at_max_balance_even_redeemed_in_parallel_over_the_handler(customer: str) -> None:
    assert put_settings(customer, {"account_currency": "JPY", "max_balance": "10000"})[0] == 200
    codes = issue_vouchers("3000", "JPY", count=5)  # 5: more at once meet the brute-force allowance (429)
    answers: list[tuple[int, Any]] = []

    def redeem(code: str) -> None:
        answers.append(post("make_payment", "/payments", {"method": "voucher", "voucher_code": code, "currency": "JPY"},
                            customer=customer))  # fmt: skip

    threads = [threading.Thread(target=redeem, args=(code,)) for code in codes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(status for status, _ in answers) == [201] * 3 + [422] * 2
    refused = [body for status, body in answers if status == 422]
    assert all(b["errors"][0]["field"] == "voucher_code" and "(max_balance)" in b["message"] for b in refused)
    assert balances(customer) == {"JPY": "9000"}


@pytest.mark.parametrize(
    ("limits", "value", "named"),
    [
        ({"max_balance": "50.00"}, "60.00", "(max_balance)"),
        ({"min_payment": "20.00"}, "10.00", "min_payment"),
        ({"max_payment": "20.00"}, "30.00", "max_payment"),
    ],
    ids=["max_balance", "min_payment", "max_payment"],
)
def test_a_real_voucher_refused_by_a_limit_never_uses_up_the_wrong_code_allowance(
    customer: str, limits: dict[str, str], value: str, named: str
) -> None:
    """The allowance (5 failures per window, then 429) is against guessing codes. A customer holding a real voucher
    that a limit refuses is not guessing: however often they try, each answer names the limit, never a lockout,
    and the allowance for wrong codes is whole afterwards."""
    assert put_settings(customer, {"account_currency": "EUR", **limits})[0] == 200
    [code] = issue_vouchers(value, "EUR")
    voucher = {"method": "voucher", "voucher_code": code, "currency": "EUR"}
    for _ in range(7):  # more than the allowance of 5
        status, body = post("make_payment", "/payments", voucher, customer=customer)
        assert (status, body["errors"][0]["field"]) == (422, "voucher_code"), body
        assert named in body["message"], body
    wrong = {"method": "voucher", "voucher_code": "WRONG-CODE-0000", "currency": "EUR"}
    for _ in range(5):
        status, body = post("make_payment", "/payments", wrong, customer=customer)
        assert status == 422 and "locked_until" not in body, body
    status, body = post("make_payment", "/payments", wrong, customer=customer)
    assert status == 429 and body["locked_until"], body
    assert balances(customer) == {}
    status, listed = call("list_payments", "GET", "/payments", claims_for(customer, "support"))
    assert (status, listed["items"]) == (200, [])


# ---- surcharges: charged at the gateway, checked by its webhook, not credited ------------------------------------


def _gateway_amount(sim: Any, method: str, gateway_ref: str) -> Decimal:
    """What the simulator holds the gateway object for, in major units (each gateway's own units and field)."""
    objects = sim.objects()
    if method == "razorpay":
        [order] = [o for o in objects["razorpay"]["orders"] if o["id"] == gateway_ref]
        return Decimal(order["amount"]) / 100
    if method == "paystack":
        [held] = [t for t in objects["paystack"]["transactions"] if t["reference"] == gateway_ref]
        return Decimal(held["amount"]) / 100
    if method == "nowpayments":
        [invoice] = [i for i in objects["nowpayments"]["invoices"] if str(i["id"]) == gateway_ref]
        return Decimal(str(invoice["price_amount"]))
    if method == "paypal":
        [order] = [o for o in objects["paypal"]["orders"] if o["id"] == gateway_ref]
        return Decimal(order["purchase_units"][0]["amount"]["value"])
    [intent] = [i for i in objects["stripe"]["payment_intents"] if i["id"] == gateway_ref]
    return Decimal(intent["amount"]) / 100


@pytest.mark.usefixtures("gateway_sim")
@pytest.mark.parametrize("method", ["paypal", "razorpay", "paystack", "nowpayments", "credit_card"])
def test_the_gateway_charges_amount_plus_surcharge_and_its_webhook_completes_the_amount(
    gateway_sim: Any, customer: str, method: str
) -> None:
    currency = {"razorpay": "INR", "paystack": "NGN"}.get(method, "USD")
    terms = {"surcharge_fixed": "0.30", "surcharge_percent": "2.9"}
    assert put_settings(customer, {"account_currency": currency, "methods": {method: terms}})[0] == 200
    extra = {"payment_method": "pm_card_visa"} if method == "credit_card" else {}
    status, made = pay(customer, method, "100.00", currency, **extra)
    assert status == 201, made
    payment = made["payment"]
    assert (payment["amount"], payment["surcharge"], payment["charged_amount"]) == ("100.00", "3.20", "103.20")
    assert _gateway_amount(gateway_sim, method, payment["gateway_reference"]) == Decimal("103.20")

    if method == "paypal":
        status, answer = deliver("paypal", settle_paypal(gateway_sim, payment["gateway_reference"], "success"))
        assert (status, answer["outcome"]) == (200, "completed")
    elif method != "credit_card":  # a card with pm_card_visa completed at once
        assert settle_at_sim(gateway_sim, method, payment["gateway_reference"]) == (
            200,
            {"received": True, "outcome": "completed"},
        )
    status, shown = get_payment(customer, payment["id"])
    assert (status, shown["status"], shown["amount"], shown["charged_amount"]) == (200, "completed", "100.00", "103.20")
    assert balances(customer) == {currency: "100.00"}
