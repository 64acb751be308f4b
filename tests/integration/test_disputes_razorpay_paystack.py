"""Disputes and chargebacks at Razorpay and Paystack (docs/status-rules.md#disputes-and-chargebacks), end to end: the
simulator opens and decides a dispute of a paid payment (the `dispute`, `dispute_lost` and `dispute_won` outcomes),
its signed webhook goes through the real webhooks handler, and the answer, the stored payments (GET /payments/{id}),
their history and the balance say exactly what happened: a dispute shows on the payment and moves no money; lost,
its funds are taken back once, as a `chargeback` entry of the original; won, nothing moved. Every webhook delivered
again changes nothing, and refunds and chargebacks together never take more than was paid."""

from __future__ import annotations

from typing import Any

import pytest

from payments.store import PaymentStore
from tests.integration.helpers import balances, deliver, get_payment, post, settle_at_sim, stored_payments
from tests.integration.webhook_events import Delivery

pytestmark = pytest.mark.usefixtures("aws", "gateway_sim")

# A payment each gateway settles: 30.00 in a currency it takes.
PAYMENTS = {
    "razorpay": {"method": "razorpay", "currency": "INR"},
    "paystack": {"method": "paystack", "currency": "NGN"},
}
PROVIDERS = sorted(PAYMENTS)
# The event the simulator sends for each outcome.
EVENTS = {
    "razorpay": {
        "dispute": "payment.dispute.created",
        "dispute_lost": "payment.dispute.lost",
        "dispute_won": "payment.dispute.won",
        "refund": "refund.processed",
    },
    "paystack": {
        "dispute": "charge.dispute.create",
        "dispute_lost": "charge.dispute.resolve",
        "dispute_won": "charge.dispute.resolve",
        "refund": "refund.processed",
    },
}


def paid(customer: str, sim: Any, provider: str) -> tuple[str, str]:
    """A completed payment of 30.00 (the balance has it) and its gateway reference."""
    request = {"amount": "30.00", **PAYMENTS[provider]}
    status, body = post("make_payment", "/payments", request, customer=customer)
    assert status == 201, body
    payment_id = body["payment"]["id"]
    ref = PaymentStore().require(customer, payment_id, consistent=True).gateway_ref or ""
    assert settle_at_sim(sim, provider, ref, "success") == (200, {"received": True, "outcome": "completed"})
    return payment_id, ref


def settle(
    sim: Any, provider: str, ref: str, outcome: str, amount: str | None = None
) -> tuple[tuple[int, Any], Delivery]:
    """Play `outcome` at the simulator and hand its signed webhook to the webhooks handler: the handler's answer,
    and the delivery (to deliver again)."""
    seen = len(sim.deliveries())
    result = sim.settle(provider, ref, outcome, amount)
    assert result["event"] is not None
    [record] = [r for r in sim.deliveries()[seen:] if r["provider"] == provider]
    assert record["event_type"] == EVENTS[provider][outcome]
    delivery = Delivery(record["body"].encode(), dict(record["headers"]))
    return deliver(provider, delivery), delivery


def answer(outcome: str) -> tuple[int, dict[str, Any]]:
    return 200, {"received": True, "outcome": outcome}


def shown(customer: str, payment_id: str) -> dict[str, Any]:
    status, body = get_payment(customer, payment_id)
    assert status == 200, body
    return dict(body)


def dispute_notes(payment: dict[str, Any]) -> list[str]:
    return [h["note"] for h in payment["history"] if (h["note"] or "").startswith("dispute")]


def dispute_id_of(customer: str, payment_id: str) -> str:
    stored = PaymentStore().require(customer, payment_id, consistent=True).dispute
    assert stored is not None
    return stored.id


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_dispute_then_lost_shows_on_the_payment_and_takes_it_back_once(
    customer: str, gateway_sim: Any, provider: str
) -> None:
    payment_id, ref = paid(customer, gateway_sim, provider)
    currency = PAYMENTS[provider]["currency"]

    assert settle(gateway_sim, provider, ref, "dispute")[0] == answer("dispute")

    opened = shown(customer, payment_id)
    assert opened["status"] == "completed"
    assert {k: v for k, v in opened["dispute"].items() if k != "opened_at"} == {
        "status": "open",
        "amount": "30.00",
        "reason": "chargeback",
    }
    assert "refunds" not in opened and "refunded_amount" not in opened
    assert balances(customer) == {currency: "30.00"}  # a dispute moves no money

    assert settle(gateway_sim, provider, ref, "dispute_lost")[0] == answer("chargeback")

    lost = shown(customer, payment_id)
    assert (lost["status"], lost["dispute"]["status"], lost["dispute"]["amount"]) == ("completed", "lost", "30.00")
    assert lost["dispute"]["opened_at"] == opened["dispute"]["opened_at"]
    assert dispute_notes(lost) == ["dispute open: chargeback", "dispute lost: chargeback"]
    assert all(h["by"].startswith(f"gateway:{provider}:") for h in lost["history"][-2:])
    [chargeback_id] = lost["refunds"]
    chargeback = shown(customer, chargeback_id)
    assert (chargeback["method"], chargeback["amount"], chargeback["currency"], chargeback["status"]) == (
        "chargeback",
        "-30.00",
        currency,
        "completed",
    )
    assert (chargeback["original_payment_id"], chargeback["reference"], chargeback["gateway_reference"]) == (
        payment_id,
        dispute_id_of(customer, payment_id),
        ref,
    )
    assert [h["status"] for h in chargeback["history"]] == ["completed"]
    assert chargeback["history"][0]["note"] == "chargeback: chargeback"
    assert balances(customer) == {currency: "0.00"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_dispute_then_won_moves_no_money_and_shows_it_won(customer: str, gateway_sim: Any, provider: str) -> None:
    payment_id, ref = paid(customer, gateway_sim, provider)
    currency = PAYMENTS[provider]["currency"]
    assert settle(gateway_sim, provider, ref, "dispute", "12.00")[0] == answer("dispute")
    assert shown(customer, payment_id)["dispute"]["amount"] == "12.00"  # part of it

    # Won with nothing withdrawn: the reinstatement is recorded as taking nothing (it would offset a late
    # withdrawal of the same dispute), and the payment shows the dispute won.
    assert settle(gateway_sim, provider, ref, "dispute_won")[0] == answer("unchanged")

    won = shown(customer, payment_id)
    assert (won["status"], won["dispute"]["status"], won["dispute"]["amount"]) == ("completed", "won", "12.00")
    assert dispute_notes(won) == ["dispute open: chargeback", "dispute won: chargeback"]
    assert "refunds" not in won and "refunded_amount" not in won
    assert balances(customer) == {currency: "30.00"}
    assert [i["method"]["S"] for i in stored_payments(customer)] == [PAYMENTS[provider]["method"]]  # no entry


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("decision", ["dispute_lost", "dispute_won"])
def test_every_dispute_webhook_delivered_again_changes_nothing(
    customer: str, gateway_sim: Any, provider: str, decision: str
) -> None:
    payment_id, ref = paid(customer, gateway_sim, provider)
    currency = PAYMENTS[provider]["currency"]
    first, opened = settle(gateway_sim, provider, ref, "dispute")
    assert first == answer("dispute")
    assert deliver(provider, opened) == answer("duplicate")
    second, decided = settle(gateway_sim, provider, ref, decision)
    assert second == answer("chargeback" if decision == "dispute_lost" else "unchanged")
    after = shown(customer, payment_id)

    for delivery in (decided, opened, decided, opened):  # again, in any order
        assert deliver(provider, delivery) == answer("duplicate")

    again = shown(customer, payment_id)
    assert again == after
    assert again["dispute"]["status"] == ("lost" if decision == "dispute_lost" else "won")
    assert len(dispute_notes(again)) == 2
    assert len(again.get("refunds", [])) == (1 if decision == "dispute_lost" else 0)
    assert balances(customer) == {currency: "0.00" if decision == "dispute_lost" else "30.00"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_refund_then_a_lost_dispute_take_no_more_than_was_paid(
    customer: str, gateway_sim: Any, provider: str
) -> None:
    payment_id, ref = paid(customer, gateway_sim, provider)
    currency = PAYMENTS[provider]["currency"]
    assert settle(gateway_sim, provider, ref, "refund", "10.00")[0] == answer("refunded")
    assert balances(customer) == {currency: "20.00"}

    assert settle(gateway_sim, provider, ref, "dispute")[0] == answer("dispute")  # all 30.00 of it
    assert settle(gateway_sim, provider, ref, "dispute_lost")[0] == answer("chargeback")

    original = shown(customer, payment_id)
    taken = sorted((shown(customer, entry_id) for entry_id in original["refunds"]), key=lambda p: p["method"])
    assert [(p["method"], p["amount"], p["original_payment_id"]) for p in taken] == [
        ("chargeback", "-20.00", payment_id),  # what the refund left, not the 30.00 disputed
        ("refund", "-10.00", payment_id),
    ]
    assert (original["dispute"]["status"], original["dispute"]["amount"], original["refunded_amount"]) == (
        "lost",
        "30.00",
        "10.00",  # refunds only; the chargeback is an entry of its own
    )
    assert balances(customer) == {currency: "0.00"}
    stored = PaymentStore().require(customer, payment_id, consistent=True)
    assert (stored.refunded_minor, stored.charged_back_minor) == (3000, 2000)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_lost_dispute_then_a_refund_take_no_more_than_was_paid(
    customer: str, gateway_sim: Any, provider: str
) -> None:
    payment_id, ref = paid(customer, gateway_sim, provider)
    currency = PAYMENTS[provider]["currency"]
    assert settle(gateway_sim, provider, ref, "dispute", "25.00")[0] == answer("dispute")
    assert settle(gateway_sim, provider, ref, "dispute_lost")[0] == answer("chargeback")
    assert balances(customer) == {currency: "5.00"}

    # The gateway refunds 10.00 more than is left: it is recorded and never debits.
    too_much, delivery = settle(gateway_sim, provider, ref, "refund", "10.00")
    assert too_much == answer("mismatch")
    assert deliver(provider, delivery) == answer("duplicate")
    assert balances(customer) == {currency: "5.00"}
    # What is left can still be refunded.
    assert settle(gateway_sim, provider, ref, "refund", "5.00")[0] == answer("refunded")

    original = shown(customer, payment_id)
    taken = sorted((shown(customer, entry_id) for entry_id in original["refunds"]), key=lambda p: p["method"])
    assert [(p["method"], p["amount"]) for p in taken] == [("chargeback", "-25.00"), ("refund", "-5.00")]
    assert balances(customer) == {currency: "0.00"}
    stored = PaymentStore().require(customer, payment_id, consistent=True)
    assert (stored.refunded_minor, stored.charged_back_minor) == (3000, 2500)
