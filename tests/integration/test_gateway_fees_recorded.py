"""Gateway fees end to end in process (docs/gateways.md#gateway-fees): a payment made through POST /payments and
completed by the simulator's signed webhook shows the fee the gateway reported as `gateway_fee` on GET /payments/{id},
in the payment's currency; the balance counts the amount, not the amount less the fee."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.helpers import balances, deliver, get_payment, post, settle_at_sim
from tests.integration.test_paypal_webhooks import capture_completed, pending_paypal, settle

pytestmark = pytest.mark.usefixtures("aws", "gateway_sim")


def test_a_razorpay_payment_shows_razorpays_fee_with_gst(gateway_sim: Any, customer: str) -> None:
    status, body = post(
        "make_payment", "/payments", {"method": "razorpay", "amount": "300.00", "currency": "INR"}, customer=customer
    )
    assert status == 201, body
    payment_id = body["payment"]["id"]
    [order] = [o for o in gateway_sim.objects()["razorpay"]["orders"] if o["receipt"] == payment_id]

    assert settle_at_sim(gateway_sim, "razorpay", order["id"]) == (200, {"received": True, "outcome": "completed"})

    status, shown = get_payment(customer, payment_id)
    assert status == 200, shown
    # The simulator's pricing: 2% of 300.00 (6.00) plus 18% GST on it (1.08): Razorpay's `fee`, GST included.
    assert (shown["status"], shown["amount"], shown["gateway_fee"]) == ("completed", "300.00", "7.08")
    assert balances(customer) == {"INR": "300.00"}


def test_a_paypal_payment_shows_the_fee_of_the_capture_answer(gateway_sim: Any, customer: str) -> None:
    payment_id, order_id = pending_paypal(customer, "10.00")

    status, body = deliver("paypal", settle(gateway_sim, order_id, "success"))  # approved: we capture
    assert (status, body["outcome"]) == (200, "completed")
    # PAYMENT.CAPTURE.COMPLETED follows with the same fee: nothing changes.
    status, body = deliver("paypal", capture_completed(gateway_sim, order_id))
    assert (status, body["outcome"]) == (200, "unchanged")

    status, shown = get_payment(customer, payment_id)
    assert status == 200, shown
    # 3.49% of 10.00 (0.35) plus PayPal's fixed 0.49, from seller_receivable_breakdown.paypal_fee ("0.84").
    assert (shown["status"], shown["gateway_fee"]) == ("completed", "0.84")
    assert balances(customer) == {"USD": "10.00"}
