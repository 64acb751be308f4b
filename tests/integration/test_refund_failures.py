"""A refund the gateway reports failed (docs/status-rules.md): its entry is cancelled and the money counts again,
exactly once, for every gateway that reports refund failures (Stripe refund.failed, Razorpay refund.failed,
Paystack refund.failed), in any order and however often each event arrives; and Razorpay's automatic refund of
a payment it never captured never debits. Through the webhooks handler, with the simulator's events."""

from __future__ import annotations

from typing import Any

import pytest

from payments.store import PaymentStore
from tests.integration import webhook_events as events
from tests.integration.helpers import balances, deliver, get_payment, post, settle_at_sim

# A payment each gateway settles: the amount is 30.00 in a currency it takes.
PAYMENTS = {
    "stripe": {"method": "credit_card", "currency": "USD", "payment_method": "pm_card_visa"},
    "razorpay": {"method": "razorpay", "currency": "INR"},
    "paystack": {"method": "paystack", "currency": "NGN"},
}
REPORTING = sorted(PAYMENTS)


def paid(customer: str, sim: Any, provider: str) -> tuple[dict[str, Any], str]:
    """A completed payment of 30.00 and its gateway reference."""
    status, body = post("make_payment", "/payments", {"amount": "30.00", **PAYMENTS[provider]}, customer=customer)
    assert status == 201, body
    payment = body["payment"]
    ref = PaymentStore().require(customer, payment["id"], consistent=True).gateway_ref or ""
    if payment["status"] != "completed":
        assert settle_at_sim(sim, provider, ref, "success")[0] == 200
    return payment, ref


def last_delivery(sim: Any, provider: str) -> events.Delivery:
    record = [r for r in sim.deliveries() if r["provider"] == provider][-1]
    return events.Delivery(record["body"].encode(), dict(record["headers"]))


def refund_entries(customer: str, payment_id: str) -> list[Any]:
    store = PaymentStore()
    original = store.require(customer, payment_id, consistent=True)
    return [store.require(customer, refund_id, consistent=True) for refund_id in sorted(original.refund_ids)]


@pytest.mark.parametrize("provider", REPORTING)
def test_a_failed_refund_is_cancelled_and_the_money_counts_again_once(customer: str, gateway_sim, provider) -> None:
    payment, ref = paid(customer, gateway_sim, provider)
    currency = payment["currency"]
    assert gateway_sim.settle(provider, ref, "refund", "10.00")["event"] is not None
    assert deliver(provider, last_delivery(gateway_sim, provider)) == (200, {"received": True, "outcome": "refunded"})
    assert balances(customer) == {currency: "20.00"}

    status, answer = settle_at_sim(gateway_sim, provider, ref, "refund_failed")
    failure = last_delivery(gateway_sim, provider)

    assert (status, answer) == (200, {"received": True, "outcome": "refund_failed"})
    assert balances(customer) == {currency: "30.00"}
    [entry] = refund_entries(customer, payment["id"])
    assert (entry.status.value, entry.refund_status, entry.amount_minor, entry.refund_of) == (
        "cancelled",
        "failed",
        -1000 if currency != "JPY" else -10,
        payment["id"],
    )
    assert [h.status.value for h in entry.history] == ["completed", "cancelled"]
    assert entry.history[-1].note and entry.history[-1].note.startswith("refund failed")
    original = PaymentStore().require(customer, payment["id"], consistent=True)
    assert (original.status.value, original.refunded_minor) == ("completed", 0)
    # The same failure again changes nothing; the API shows the entry as the failed refund it is.
    assert deliver(provider, failure) == (200, {"received": True, "outcome": "duplicate"})
    assert balances(customer) == {currency: "30.00"}
    status, shown = get_payment(customer, entry.id)
    assert status == 200
    assert (shown["status"], shown["refund_status"], shown["original_payment_id"]) == (
        "cancelled",
        "failed",
        payment["id"],
    )
    # The whole amount is refundable again.
    assert settle_at_sim(gateway_sim, provider, ref, "refund") == (200, {"received": True, "outcome": "refunded"})
    assert balances(customer) == {currency: "0.00"}


@pytest.mark.parametrize("provider", REPORTING)
def test_a_refund_reported_failed_before_it_was_reported_made_never_debits(
    customer: str, gateway_sim, provider: str
) -> None:
    payment, ref = paid(customer, gateway_sim, provider)
    currency = payment["currency"]
    gateway_sim.settle(provider, ref, "refund", "10.00")
    made = last_delivery(gateway_sim, provider)  # its delivery is late
    gateway_sim.settle(provider, ref, "refund_failed")
    failure = last_delivery(gateway_sim, provider)

    assert deliver(provider, failure) == (200, {"received": True, "outcome": "refund_failed"})
    assert deliver(provider, made) == (200, {"received": True, "outcome": "duplicate"})
    assert deliver(provider, failure) == (200, {"received": True, "outcome": "duplicate"})
    assert balances(customer) == {currency: "30.00"}
    assert refund_entries(customer, payment["id"]) == []


@pytest.mark.parametrize("provider", ["paypal", "nowpayments"])
def test_a_gateway_that_reports_no_refund_failures_has_no_such_outcome_at_the_simulator(gateway_sim, provider) -> None:
    from local.gateway_sim import SettleError

    with pytest.raises(SettleError) as refused:
        gateway_sim.settle(provider, "anything", "refund_failed")
    assert refused.value.status == 409 and "no refund_failed outcome" in refused.value.message


def test_razorpays_automatic_refund_of_a_payment_it_never_captured_never_debits(customer: str, gateway_sim) -> None:
    status, body = post("make_payment", "/payments", {"amount": "30.00", **PAYMENTS["razorpay"]}, customer=customer)
    assert status == 201, body
    pending = PaymentStore().require(customer, body["payment"]["id"], consistent=True)
    delivery = events.razorpay("refund", pending, captured=False)

    # Recorded and answered 200 (not deferred like a refund of a payment that may still be paid): nothing counts.
    assert deliver("razorpay", delivery) == (200, {"received": True, "outcome": "refused"})
    assert deliver("razorpay", delivery) == (200, {"received": True, "outcome": "duplicate"})
    assert balances(customer) == {}
    after = PaymentStore().require(customer, pending.id, consistent=True)
    assert (after.status.value, after.refund_ids, after.refunded_minor) == ("pending", frozenset(), 0)
