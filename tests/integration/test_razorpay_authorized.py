"""Razorpay payments left authorized (docs/gateways.md#razorpay): Razorpay refunds them by itself after days unless
the merchant captures them, so `payment.authorized` is captured (for the order's amount, once) and the capture
settles the payment; a late authorization after `payment.failed` is captured too, and reconciliation captures
one whose webhook was lost. Through the real handlers, with the simulator's events and its capture API."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest

from payments import settlement
from payments.gateways import gateway
from payments.models import utcnow
from payments.store import PaymentStore
from tests.integration import webhook_events as events
from tests.integration.helpers import balances, deliver, post, settle_at_sim
from tests.integration.test_admin_and_reconcile import made_with

pytestmark = pytest.mark.usefixtures("aws", "gateway_sim")
BODY = {"method": "razorpay", "amount": "300.00", "currency": "INR"}


def razorpay_payment(customer: str) -> tuple[str, str]:
    status, body = post("make_payment", "/payments", BODY, customer=customer)
    assert status == 201, body
    payment_id = body["payment"]["id"]
    return payment_id, PaymentStore().require(customer, payment_id, consistent=True).gateway_ref or ""


def sim_payments(sim: Any, order_id: str) -> list[dict[str, Any]]:
    return [p for p in sim.objects()["razorpay"]["payments"] if p["order_id"] == order_id]


def later_webhooks(sim: Any, order_id: str, names: set[str], timeout: float = 10.0) -> list[events.Delivery]:
    """Razorpay's payment.captured and order.paid, which its capture API sends after answering."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [
            r
            for r in sim.deliveries()
            if r["provider"] == "razorpay" and json.loads(r["body"])["event"] in names and order_id in r["body"]
        ]
        if len(found) >= len(names):
            return [events.Delivery(r["body"].encode(), dict(r["headers"])) for r in found]
        time.sleep(0.05)
    raise AssertionError(f"no {names} webhooks for {order_id}")


def test_an_authorized_payment_is_captured_once_and_completes(gateway_sim: Any, customer: str) -> None:
    payment_id, order_id = razorpay_payment(customer)

    status, body = settle_at_sim(gateway_sim, "razorpay", order_id, "authorize")

    assert (status, body) == (200, {"received": True, "outcome": "completed"})
    assert balances(customer) == {"INR": "300.00"}
    [taken] = sim_payments(gateway_sim, order_id)
    assert (taken["status"], taken["captured"], taken["amount"]) == ("captured", True, 30000)
    # Razorpay's own payment.captured and order.paid, and the authorization again, change nothing.
    for delivery in later_webhooks(gateway_sim, order_id, {"payment.captured", "order.paid"}):
        status, body = deliver("razorpay", delivery)
        assert status == 200 and body["outcome"] in ("duplicate", "unchanged"), body
    assert balances(customer) == {"INR": "300.00"}
    history = PaymentStore().require(customer, payment_id, consistent=True).history
    assert [h.status.value for h in history] == ["pending", "completed"]


def test_a_late_authorization_after_a_failure_is_captured(gateway_sim: Any, customer: str) -> None:
    payment_id, order_id = razorpay_payment(customer)
    assert settle_at_sim(gateway_sim, "razorpay", order_id, "failure") == (
        200,
        {"received": True, "outcome": "cancelled"},
    )

    status, body = settle_at_sim(gateway_sim, "razorpay", order_id, "authorize")

    assert (status, body) == (200, {"received": True, "outcome": "completed"})
    after = PaymentStore().require(customer, payment_id, consistent=True)
    assert [h.status.value for h in after.history] == ["pending", "cancelled", "completed"]
    assert balances(customer) == {"INR": "300.00"}


def test_reconciliation_captures_an_authorization_whose_webhook_was_lost(
    gateway_sim: Any, customer: str, own_store: PaymentStore
) -> None:
    payment = made_with(own_store, customer, BODY)
    gateway_sim.settle("razorpay", payment.gateway_ref, "authorize")  # its webhook goes nowhere

    report = settlement.reconcile(
        own_store,
        {"razorpay": gateway("razorpay")},
        now=utcnow(),
        ask_after=timedelta(0),
        give_up_after=timedelta(hours=72),
    )

    assert (report.checked, report.completed, report.errors) == (1, 1, 0), report
    assert own_store.require(customer, payment.id, consistent=True).status.value == "completed"
    [taken] = sim_payments(gateway_sim, payment.gateway_ref or "")
    assert taken["status"] == "captured"
