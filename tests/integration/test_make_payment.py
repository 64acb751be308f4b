"""POST /payments: bank transfer, voucher, input validation and idempotency (gateways: test_gateway_methods)."""

from __future__ import annotations

import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.helpers import balances, issue_vouchers, post, stored_payments

pytestmark = pytest.mark.usefixtures("aws")


def pay(customer: str, body, **kw):
    return post("make_payment", "/payments", body, customer=customer, **kw)


def test_bank_transfer_is_pending_with_instructions(customer: str) -> None:
    status, body = pay(customer, {"method": "bank_transfer", "amount": "120.50", "currency": "EUR"})
    assert status == 201, body
    payment, action = body["payment"], body["next_action"]
    assert payment["status"] == "pending" and payment["amount"] == "120.50" and payment["method"] == "bank_transfer"
    assert payment["completed_at"] is None
    assert action["type"] == "bank_transfer_instructions"
    assert action["reference"] == payment["reference"]
    assert re.fullmatch(r"PAY-[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}", action["reference"])
    assert action["iban"] and action["amount"] == "120.50"
    [item] = stored_payments(customer)
    assert item["status"]["S"] == "pending" and item["amount_minor"]["N"] == "12050"
    assert item["reference"]["S"] == action["reference"]
    assert balances(customer) == {}


def test_bank_references_are_unique(customer: str) -> None:
    refs = {
        pay(customer, {"method": "bank_transfer", "amount": 1, "currency": "USD"})[1]["payment"]["reference"]
        for _ in range(20)
    }
    assert len(refs) == 20


def test_voucher_completes_at_once_and_moves_balance(customer: str) -> None:
    [code] = issue_vouchers("25.00", "USD")
    status, body = pay(customer, {"method": "voucher", "voucher_code": code.lower(), "currency": "USD"})
    assert status == 201, body
    assert body["payment"]["status"] == "completed" and body["payment"]["amount"] == "25.00"
    assert body["payment"]["method"] == "voucher" and body["next_action"] is None
    assert balances(customer) == {"USD": "25.00"}
    # Used now: the same code again is the uniform 422, and nothing more is stored.
    status, again = pay(customer, {"method": "voucher", "voucher_code": code, "currency": "USD"})
    assert status == 422 and again["message"] == "the voucher code is not valid for this account and currency"
    assert len(stored_payments(customer)) == 1
    assert balances(customer) == {"USD": "25.00"}


def test_voucher_failures_are_uniform_then_429(customer: str) -> None:
    [code] = issue_vouchers("5", "EUR")
    [expiring] = issue_vouchers("5", "USD", expires_at="2099-01-01T00:00:00Z")
    messages = set()
    for attempt in ({"voucher_code": "NOPE-NOPE-NOPE", "currency": "USD"}, {"voucher_code": code, "currency": "USD"}):
        status, body = pay(customer, {"method": "voucher", **attempt})
        assert status == 422
        messages.add(body["message"])
    assert len(messages) == 1
    for _ in range(3):
        assert pay(customer, {"method": "voucher", "voucher_code": "WRONG", "currency": "USD"})[0] == 422
    status, body = pay(customer, {"method": "voucher", "voucher_code": expiring, "currency": "USD"})
    assert status == 429 and "try again" in body["message"]
    assert stored_payments(customer) == []


def test_thirty_parallel_wrong_guesses_get_at_most_the_allowed_five_checks(customer: str) -> None:
    """The attempt is counted before the code is looked at, so parallel guesses cannot outrun the lockout."""
    guesses = [f"GUESS-{i:04d}-XXXX" for i in range(30)]
    with ThreadPoolExecutor(30) as pool:
        results = list(
            pool.map(
                lambda code: pay(customer, {"method": "voucher", "voucher_code": code, "currency": "USD"}), guesses
            )
        )
    statuses = [status for status, _ in results]
    assert set(statuses) <= {422, 429}, results
    assert statuses.count(422) <= 5 and statuses.count(429) >= 25, statuses
    assert stored_payments(customer) == []
    [code] = issue_vouchers("5.00", "USD")  # a right code too waits for the window to pass
    assert pay(customer, {"method": "voucher", "voucher_code": code, "currency": "USD"})[0] == 429


def test_a_successful_redemption_does_not_use_up_the_allowance(customer: str) -> None:
    codes = issue_vouchers("1.00", "USD", count=8)
    for code in codes:
        assert pay(customer, {"method": "voucher", "voucher_code": code, "currency": "USD"})[0] == 201
    for _ in range(5):
        assert pay(customer, {"method": "voucher", "voucher_code": "WRONG-CODE", "currency": "USD"})[0] == 422
    assert pay(customer, {"method": "voucher", "voucher_code": "WRONG-CODE", "currency": "USD"})[0] == 429
    assert balances(customer) == {"USD": "8.00"}


def test_twenty_concurrent_redemptions_of_one_code_give_one_success() -> None:
    [code] = issue_vouchers("10.00", "GBP")
    customers = [f"race-{uuid.uuid4().hex[:8]}" for _ in range(20)]
    with ThreadPoolExecutor(20) as pool:
        results = list(
            pool.map(lambda c: pay(c, {"method": "voucher", "voucher_code": code, "currency": "GBP"}), customers)
        )
    assert sorted(status for status, _ in results).count(201) == 1
    assert all(status == 422 for status, _ in results if status != 201)
    winners = [c for c in customers if stored_payments(c)]
    assert len(winners) == 1 and balances(winners[0]) == {"GBP": "10.00"}


def test_same_key_same_body_replays_other_body_is_422(customer: str) -> None:
    body = {"method": "bank_transfer", "amount": "10", "currency": "USD", "description": "Invoice 7"}
    first = pay(customer, body, key="key-1")
    second = pay(customer, body, key="key-1")
    assert first[0] == second[0] == 201
    assert first[1] == second[1]
    status, other = pay(customer, {**body, "amount": "11"}, key="key-1")
    assert status == 422 and "different request body" in other["message"]
    assert len(stored_payments(customer)) == 1
    # The same key is a different request for another customer.
    assert pay(customer + "-b", body, key="key-1")[0] == 201


def test_twenty_concurrent_identical_requests_store_one_payment(customer: str) -> None:
    body = {"method": "bank_transfer", "amount": "99.99", "currency": "USD"}
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: pay(customer, body, key="same-key"), range(20)))
    statuses = [s for s, _ in results]
    assert set(statuses) <= {201, 409}
    assert statuses.count(201) >= 1
    assert len({json.dumps(b["payment"], sort_keys=True) for s, b in results if s == 201}) == 1
    assert len(stored_payments(customer)) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"method": "bank_transfer", "currency": "USD"}, "amount"),
        ({"method": "bank_transfer", "amount": "10"}, "currency"),
        ({"method": "bank_transfer", "amount": "0", "currency": "USD"}, "amount"),
        ({"method": "bank_transfer", "amount": "-5", "currency": "USD"}, "amount"),
        ({"method": "bank_transfer", "amount": "1.234", "currency": "USD"}, "amount"),
        ({"method": "bank_transfer", "amount": "1.5", "currency": "JPY"}, "amount"),
        ({"method": "bank_transfer", "amount": 1.234, "currency": "USD"}, "amount"),
        ({"method": "bank_transfer", "amount": "10", "currency": "ZZZ"}, "currency"),
        ({"method": "bank_transfer", "amount": "10", "currency": "usd"}, "currency"),
        ({"method": "bank_transfer", "amount": "100000000", "currency": "USD"}, "amount"),
        ({"method": "cash", "amount": "10", "currency": "USD"}, "method"),
        ({"amount": "10", "currency": "USD"}, "method"),
        ({"method": "voucher", "currency": "USD"}, "voucher_code"),
        ({"method": "voucher", "voucher_code": "X", "amount": "5", "currency": "USD"}, "amount"),
        ({"method": "credit_card", "amount": "10", "currency": "USD"}, "card"),
        (
            {
                "method": "credit_card",
                "amount": "10",
                "currency": "USD",
                "card": {"number": "4242424242424241", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
            },
            "card.number",
        ),
        (
            {
                "method": "credit_card",
                "amount": "10",
                "currency": "USD",
                "card": {"number": "4242424242424242", "exp_month": 1, "exp_year": 2020, "cvc": "123"},
            },
            "card.exp_year",
        ),
        (
            {
                "method": "credit_card",
                "amount": "10",
                "currency": "USD",
                "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "12"},
            },
            "card.cvc",
        ),
        ({"method": "paypal", "amount": "10", "currency": "USD", "card": {"number": "1"}}, "card"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_stores_nothing(customer: str, body, field: str) -> None:
    status, answer = pay(customer, body)
    assert status == 422, answer
    named = [e["field"] for e in answer["errors"]]
    assert any(name == field or name.startswith(f"{field}.") for name in named if name), answer
    assert answer["field"] == named[0]
    assert "4242424242424241" not in json.dumps(answer)
    assert stored_payments(customer) == []


@pytest.mark.parametrize(
    ("key", "status"),
    [(None, 422), ("", 422), ("x" * 300, 422), ("bad\nkey", 422), ("k" * 255, 201)],
)
def test_idempotency_key_rules(customer: str, key, status: int) -> None:
    code, answer = pay(customer, {"method": "bank_transfer", "amount": "1", "currency": "USD"}, key=key)
    assert code == status, answer
    if status == 422:
        assert "idempotency-key" in answer["message"].lower()
        assert stored_payments(customer) == []


@pytest.mark.parametrize("raw", ["not json", "[1,2]", '{"method": ', ""])
def test_non_json_bodies(customer: str, raw: str) -> None:
    status, answer = pay(customer, raw)
    assert 400 <= status < 500 and answer["message"]
    assert stored_payments(customer) == []


@pytest.mark.parametrize(("groups", "status"), [(("support",), 403), (("operator",), 403), (("admin",), 201)])
def test_groups(customer: str, groups, status: int) -> None:
    assert pay(customer, {"method": "bank_transfer", "amount": "1", "currency": "USD"}, groups=groups)[0] == status


def test_an_unknown_stripe_payment_method_is_422_naming_it_and_closes_the_payment(customer: str, gateway_sim) -> None:
    """Stripe's 4xx about a value the caller sent is the caller's mistake, not a gateway failure to retry."""
    body = {"method": "credit_card", "amount": "10.00", "currency": "USD", "payment_method": "pm_nope"}
    key = uuid.uuid4().hex
    status, answer = post("make_payment", "/payments", body, customer=customer, key=key)
    assert status == 422, answer
    assert answer["field"] == "payment_method" and "payment_method" in answer["message"], answer
    [item] = stored_payments(customer)
    assert item["status"]["S"] == "cancelled" and item["failure_field"]["S"] == "payment_method"
    assert "payment_method" in item["failure_reason"]["S"] and "GSI2PK" not in item  # not left for reconciliation
    calls = len(gateway_sim.objects()["stripe"]["payment_intents"])
    assert post("make_payment", "/payments", body, customer=customer, key=key) == (status, answer)
    assert len(gateway_sim.objects()["stripe"]["payment_intents"]) == calls  # the retry asked Stripe nothing
    assert len(stored_payments(customer)) == 1
