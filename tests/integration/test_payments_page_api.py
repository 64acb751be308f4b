"""What the Payments page needs of the API (issue 12), through the real handlers: the gateway reference of every
payment, links between a payment and its refunds, a sentence for every decline, descriptions that say
something, card details of tokenised cards, search, the count and totals of a filter, and the voucher lockout's
end."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from payments.store import PaymentStore
from tests.conftest import FakeContext, claims_for, http_event, invoke, load_function
from tests.integration import webhook_events as events
from tests.integration.helpers import deliver, issue_vouchers, post

pytestmark = pytest.mark.usefixtures("aws", "gateway_sim")

GATEWAY_BODIES = {
    "credit_card": {"method": "credit_card", "amount": "19.99", "currency": "USD", "payment_method": "pm_card_visa"},
    "paypal": {"method": "paypal", "amount": "23.99", "currency": "USD"},
    "razorpay": {"method": "razorpay", "amount": "499.00", "currency": "INR"},
    "paystack": {"method": "paystack", "amount": "2500.00", "currency": "NGN"},
    "nowpayments": {"method": "nowpayments", "amount": "120.00", "currency": "EUR"},
}


def pay(customer: str, body: dict[str, Any], key: str | None = None) -> tuple[int, Any]:
    return post("make_payment", "/payments", body, customer=customer, key=key or uuid.uuid4().hex)


def get(customer: str, path: str, query: dict[str, str] | None = None, **params: str) -> tuple[int, Any]:
    route = "/payments/{id}" if params else path
    event = http_event(
        "GET", path, route=route, claims=claims_for(customer, "support"), query=query, path_params=params
    )
    return invoke(load_function("list_payments"), event)


@pytest.mark.parametrize("method", sorted(GATEWAY_BODIES))
def test_every_gateway_payment_shows_its_gateway_reference_and_a_telling_description(customer: str, method: str):
    status, body = pay(customer, GATEWAY_BODIES[method])
    assert status == 201, body
    stored = PaymentStore().require(customer, body["payment"]["id"], consistent=True)
    assert body["payment"]["gateway_reference"] == stored.gateway_ref  # what the simulator settles or refunds
    status, detail = get(customer, f"/payments/{stored.id}", id=stored.id)
    assert detail["gateway_reference"] == stored.gateway_ref
    expected = {
        "credit_card": "Visa card ending 4242",  # from the PaymentMethod Stripe returns for the token
        "paypal": f"PayPal order {stored.gateway_ref}",
        "razorpay": f"Razorpay order {stored.gateway_ref}",
        "paystack": f"Paystack payment {stored.gateway_ref}",
        "nowpayments": f"Crypto payment, NOWPayments invoice {stored.gateway_ref}",
    }[method]
    assert detail["description"] == expected
    if method == "credit_card":
        assert detail["card"] == {"brand": "visa", "last4": "4242"}


def test_bank_transfers_and_vouchers_are_described_by_their_reference(customer: str) -> None:
    status, body = pay(customer, {"method": "bank_transfer", "amount": "25.00", "currency": "EUR"})
    reference = body["payment"]["reference"]
    assert (
        re.fullmatch(r"PAY-\w{4}-\w{4}-\w{4}", reference)
        and body["payment"]["description"] == f"Bank transfer {reference}"
    )
    [code] = issue_vouchers("5.00", "USD")
    status, body = pay(customer, {"method": "voucher", "voucher_code": code, "currency": "USD"})
    assert status == 201 and body["payment"]["description"] == f"Voucher ending {code.replace('-', '')[-4:]}"
    status, body = pay(customer, {"method": "paypal", "amount": "5.00", "currency": "USD", "description": "May top-up"})
    assert body["payment"]["description"] == "May top-up"  # the customer's own words are kept


def test_a_decline_is_told_in_a_sentence_and_keeps_its_code(customer: str) -> None:
    card = {"number": "4000000000009995", "exp_month": 12, "exp_year": 2031, "cvc": "123"}  # insufficient funds
    status, body = pay(customer, {"method": "credit_card", "amount": "10.00", "currency": "USD", "card": card})
    assert status == 402, body
    payment = body["payment"]
    assert payment["failure_reason"] == "card_declined: insufficient_funds"
    assert payment["failure_message"].startswith("There is not enough money")
    assert body["message"] == payment["failure_message"]


def test_a_payment_and_its_refunds_link_each_other(customer: str) -> None:
    status, body = pay(customer, GATEWAY_BODIES["razorpay"])
    payment = PaymentStore().require(customer, body["payment"]["id"], consistent=True)
    deliver("razorpay", events.razorpay("success", payment))
    for amount in (10000, 5000):
        status, answer = deliver("razorpay", events.razorpay("refund", payment, amount_minor=amount))
        assert answer["outcome"] == "refunded"
    status, page = get(customer, "/payments", query={"status": "completed"})
    refunds = [p["id"] for p in page["items"] if p["method"] == "refund"]
    status, original = get(customer, f"/payments/{payment.id}", id=payment.id)
    assert len(refunds) == 2
    assert original["refunded_amount"] == "150.00" and original["refunds"] == refunds  # newest first, as listed
    for refund_id in refunds:
        status, refund = get(customer, f"/payments/{refund_id}", id=refund_id)
        assert status == 200
        assert refund["original_payment_id"] == refund["refund_of"] == payment.id
        assert refund["gateway_reference"] == payment.gateway_ref


def test_search_finds_by_reference_description_and_gateway_reference_in_any_case(customer: str) -> None:
    made = {}
    for description in ("Roaming pack", "SIM swap", "roaming extra"):
        status, body = pay(
            customer, {"method": "bank_transfer", "amount": "1.00", "currency": "EUR", "description": description}
        )
        made[description] = body["payment"]
    status, body = pay(customer, GATEWAY_BODIES["paypal"])
    paypal = body["payment"]

    def found(q: str, **query: str) -> list[str]:
        status, page = get(customer, "/payments", query={"q": q, **query})
        assert status == 200, page
        return [p["id"] for p in page["items"]]

    assert found("ROAMING") == [made["roaming extra"]["id"], made["Roaming pack"]["id"]]
    assert found(made["SIM swap"]["reference"].lower()) == [made["SIM swap"]["id"]]
    assert found(paypal["gateway_reference"]) == [paypal["id"]]
    assert found("nothing like it") == []
    # Paging a search: the cursor carries on the same search, and only that search.
    status, first = get(customer, "/payments", query={"q": "roaming", "limit": "1"})
    assert [p["id"] for p in first["items"]] == [made["roaming extra"]["id"]] and first["next_cursor"]
    status, second = get(customer, "/payments", query={"q": "roaming", "limit": "1", "cursor": first["next_cursor"]})
    assert [p["id"] for p in second["items"]] == [made["Roaming pack"]["id"]]
    status, refused = get(customer, "/payments", query={"q": "sim", "cursor": first["next_cursor"]})
    assert status == 400 and refused["field"] == "cursor"


def test_the_summary_counts_what_a_filter_holds_and_totals_the_completed(customer: str) -> None:
    codes = issue_vouchers("5.00", "USD", count=2) + issue_vouchers("3.000", "KWD")
    for code, currency in zip(codes, ("USD", "USD", "KWD"), strict=True):
        assert pay(customer, {"method": "voucher", "voucher_code": code, "currency": currency})[0] == 201
    for _ in range(2):
        assert pay(customer, {"method": "bank_transfer", "amount": "7.00", "currency": "USD"})[0] == 201
    status, summary = get(customer, "/payments/summary")
    assert status == 200, summary
    assert summary == {
        "count": 5,
        "statuses": {"pending": 2, "completed": 3, "cancelled": 0},
        "completed": [{"currency": "KWD", "amount": "3.000"}, {"currency": "USD", "amount": "10.00"}],
    }
    status, pending = get(customer, "/payments/summary", query={"status": "pending", "q": "bank transfer"})
    assert pending == {"count": 2, "statuses": {"pending": 2, "completed": 0, "cancelled": 0}, "completed": []}


def test_a_voucher_lockout_says_when_it_ends(customer: str) -> None:
    for _ in range(5):
        assert pay(customer, {"method": "voucher", "voucher_code": "WRONG-CODE", "currency": "USD"})[0] == 422
    event = http_event(
        "POST",
        "/payments",
        claims=claims_for(customer, "finance"),
        body='{"method": "voucher", "voucher_code": "WRONG-CODE", "currency": "USD"}',
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    answer = load_function("make_payment").lambda_handler(event, FakeContext())
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 429 and 0 < int(answer["headers"]["Retry-After"]) <= 15 * 60
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z", body["locked_until"])
    assert body["locked_until"] in body["message"]
