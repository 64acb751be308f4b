"""POST /webhooks/paypal through the real handler, checked on the answer and the stored state.

PayPal signs with RSA and is verified by asking PayPal (verify-webhook-signature), so these events cannot
be made up like the HMAC gateways' in test_webhooks.py: the gateway simulator creates the order, settles
it and signs the webhook; its own delivery goes nowhere here (its API base is a closed port), and the
test hands the recorded delivery to the handler. Verification, the capture on CHECKOUT.ORDER.APPROVED
and PAYMENT.CAPTURE.COMPLETED all go through the simulator over HTTP.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.integration import webhook_events as events
from tests.integration.helpers import balances, deliver, post, stored_payments

pytestmark = pytest.mark.usefixtures("aws", "gateway_sim")


def pending_paypal(customer: str, amount: str = "40.00") -> tuple[str, str]:
    """A PayPal payment made through POST /payments: our payment id and PayPal's order id."""
    request = {"method": "paypal", "amount": amount, "currency": "USD"}
    status, body = post("make_payment", "/payments", request, customer=customer)
    assert status == 201, body
    [item] = [p for p in stored_payments(customer) if p["id"]["S"] == body["payment"]["id"]]
    return body["payment"]["id"], item["gateway_ref"]["S"]


def recorded(sim: Any, match: dict[str, str], timeout: float = 10.0) -> events.Delivery:
    """The simulator's signed webhook whose event has these fields (it may be sent in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in reversed(sim.deliveries()):
            event = json.loads(record["body"])
            if all(str(_field(event, path)) == value for path, value in match.items()):
                return events.Delivery(record["body"].encode(), dict(record["headers"]))
        time.sleep(0.05)
    raise AssertionError(f"the simulator sent no webhook matching {match}")


def _field(event: dict[str, Any], path: str) -> Any:
    value: Any = event
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def settle(sim: Any, order_id: str, outcome: str) -> events.Delivery:
    result = sim.settle("paypal", order_id, outcome)
    assert result["delivered"] is False  # nothing listens at the simulator's API base in these tests
    return recorded(sim, {"id": result["event"]["id"]})


def capture_completed(sim: Any, order_id: str) -> events.Delivery:
    return recorded(
        sim,
        {"event_type": "PAYMENT.CAPTURE.COMPLETED", "resource.supplementary_data.related_ids.order_id": order_id},
    )


def paypal_order(sim: Any, order_id: str) -> dict[str, Any]:
    [order] = [o for o in sim.objects()["paypal"]["orders"] if o["id"] == order_id]
    return dict(order)


def status_of(customer: str, payment_id: str) -> str:
    [item] = [p for p in stored_payments(customer) if p["id"]["S"] == payment_id]
    return str(item["status"]["S"])


def test_approval_captures_and_completes_once(gateway_sim: Any, customer: str) -> None:
    payment_id, order_id = pending_paypal(customer)
    approved = settle(gateway_sim, order_id, "success")

    status, body = deliver("paypal", approved)

    assert (status, body["outcome"]) == (200, "completed"), body
    assert status_of(customer, payment_id) == "completed"
    assert balances(customer) == {"USD": "40.00"}
    order = paypal_order(gateway_sim, order_id)
    assert order["status"] == "COMPLETED"  # captured at PayPal, once
    assert len(order["purchase_units"][0]["payments"]["captures"]) == 1
    # PayPal's own capture webhook and a redelivered approval change nothing.
    for delivery in (capture_completed(gateway_sim, order_id), approved, approved):
        status, body = deliver("paypal", delivery)
        assert status == 200 and body["outcome"] in ("duplicate", "unchanged"), body
    assert balances(customer) == {"USD": "40.00"}
    [stored] = stored_payments(customer)
    assert [h["M"]["status"]["S"] for h in stored["history"]["L"]] == ["pending", "completed"]


def test_denied_capture_cancels_and_credits_nothing(gateway_sim: Any, customer: str) -> None:
    payment_id, order_id = pending_paypal(customer)

    status, body = deliver("paypal", settle(gateway_sim, order_id, "failure"))

    assert (status, body["outcome"]) == (200, "cancelled"), body
    assert status_of(customer, payment_id) == "cancelled"
    assert balances(customer) == {}


def test_refund_is_a_new_negative_payment_counted_once(gateway_sim: Any, customer: str) -> None:
    payment_id, order_id = pending_paypal(customer, "40.00")
    assert deliver("paypal", settle(gateway_sim, order_id, "success"))[1]["outcome"] == "completed"
    refund = settle(gateway_sim, order_id, "refund")

    status, body = deliver("paypal", refund)

    assert (status, body["outcome"]) == (200, "refunded"), body
    assert deliver("paypal", refund)[1]["outcome"] == "duplicate"
    rows = [p for p in stored_payments(customer) if p["method"]["S"] == "refund"]
    assert len(rows) == 1
    assert (rows[0]["amount_minor"]["N"], rows[0]["refund_of"]["S"]) == ("-4000", payment_id)
    assert status_of(customer, payment_id) == "completed"
    assert balances(customer) == {"USD": "0.00"}


REFUSED_BY = {  # who refuses each forgery: PayPal's verify-webhook-signature, or our check before asking
    "tampered": "PayPal says this webhook signature is not valid",
    "signature_of_another_event": "PayPal says this webhook signature is not valid",
    "missing_signature": "missing PayPal signature header(s): paypal-transmission-sig",
}


@pytest.mark.parametrize("attack", sorted(REFUSED_BY))
def test_forged_webhooks_are_refused_and_change_nothing(gateway_sim: Any, customer: str, attack: str) -> None:
    payment_id, order_id = pending_paypal(customer)
    approved = settle(gateway_sim, order_id, "success")
    if attack == "tampered":  # another order id after signing: PayPal's check covers the body's CRC32
        approved.body = approved.body.replace(order_id.encode(), b"0" * len(order_id))
    if attack == "signature_of_another_event":
        _, other_order = pending_paypal(customer)
        other = settle(gateway_sim, other_order, "success")
        approved.headers = {**approved.headers, "PAYPAL-TRANSMISSION-SIG": other.headers["PAYPAL-TRANSMISSION-SIG"]}
    if attack == "missing_signature":
        approved.headers = {k: v for k, v in approved.headers.items() if k != "PAYPAL-TRANSMISSION-SIG"}

    status, body = deliver("paypal", approved)

    assert status in (400, 401), body
    assert REFUSED_BY[attack] in body["message"]
    assert status_of(customer, payment_id) == "pending"
    assert balances(customer) == {}
    assert "payments" not in paypal_order(gateway_sim, order_id)["purchase_units"][0]  # nothing was captured
