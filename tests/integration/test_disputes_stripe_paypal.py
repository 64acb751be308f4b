"""Disputes, chargebacks and reversals of Stripe and PayPal payments (docs/status-rules.md#disputes-and-chargebacks),
end to end: each dispute outcome played at the gateway simulator, its signed webhooks handed to the real webhooks
handler in the order the simulator sent them (and each twice), checked on the answers, the payment and its
chargeback entries as GET /payments/{id} shows them, their history and the exact balance."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from payments.store import PaymentStore
from tests.integration.helpers import balances, deliver, get_payment, post
from tests.integration.test_paypal_webhooks import pending_paypal, settle
from tests.integration.webhook_events import Delivery

pytestmark = pytest.mark.usefixtures("aws", "gateway_sim")

SENT_BY = {  # the webhooks each outcome makes the gateway send, in order
    ("stripe", "dispute"): ["charge.dispute.created", "charge.dispute.funds_withdrawn"],
    ("stripe", "dispute_won"): ["charge.dispute.funds_reinstated", "charge.dispute.closed"],
    ("stripe", "dispute_lost"): ["charge.dispute.closed"],
    ("paypal", "dispute"): ["CUSTOMER.DISPUTE.CREATED"],
    ("paypal", "dispute_won"): ["CUSTOMER.DISPUTE.RESOLVED"],
    ("paypal", "dispute_lost"): ["CUSTOMER.DISPUTE.RESOLVED", "PAYMENT.CAPTURE.REVERSED"],
}


def played(sim: Any, provider: str, ref: str, outcome: str, amount: str | None = None) -> list[Delivery]:
    """Play `outcome` at the simulator: the signed webhooks it sent (its own deliveries go nowhere here), in order."""
    expected = SENT_BY[provider, outcome]
    seen = len(sim.deliveries())
    sim.settle(provider, ref, outcome, amount)
    deadline = time.monotonic() + 10
    while True:
        sent = [d for d in sim.deliveries()[seen:] if d["event_type"] in expected]
        if len(sent) >= len(expected) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [d["event_type"] for d in sent] == expected
    return [Delivery(d["body"].encode(), dict(d["headers"])) for d in sent]


def answered(provider: str, delivery: Delivery) -> str:
    status, body = deliver(provider, delivery)
    assert status == 200, body
    assert body["received"] is True
    return str(body["outcome"])


def delivered_twice(provider: str, deliveries: list[Delivery]) -> list[tuple[str, str]]:
    """Each webhook handed to the handler twice, as gateways deliver at least once: the two answers of each."""
    return [(answered(provider, d), answered(provider, d)) for d in deliveries]


def shown(customer: str, payment_id: str) -> dict[str, Any]:
    status, body = get_payment(customer, payment_id)
    assert status == 200, body
    return dict(body)


def notes(payment: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(h["status"], h.get("note")) for h in payment["history"]]


def card_payment(customer: str, amount: str = "40.00") -> tuple[str, str]:
    """A card payment made through POST /payments, completed at once: our payment id and its PaymentIntent."""
    request = {"method": "credit_card", "amount": amount, "currency": "USD", "payment_method": "pm_card_visa"}
    status, body = post("make_payment", "/payments", request, customer=customer)
    assert status == 201 and body["payment"]["status"] == "completed", body
    payment_id = body["payment"]["id"]
    ref = PaymentStore().require(customer, payment_id, consistent=True).gateway_ref or ""
    return payment_id, ref


def paypal_payment(sim: Any, customer: str, amount: str = "40.00") -> tuple[str, str]:
    """A PayPal payment approved, captured through the webhooks handler and completed: our id and the order's."""
    payment_id, order_id = pending_paypal(customer, amount)
    assert answered("paypal", settle(sim, order_id, "success")) == "completed"
    return payment_id, order_id


def dispute_in(delivery: Delivery) -> str:
    """The id of the dispute a Stripe or PayPal dispute webhook is about."""
    event = json.loads(delivery.body)
    return str(event["data"]["object"]["id"] if "data" in event else event["resource"]["dispute_id"])


def entries(customer: str, original: dict[str, Any]) -> list[dict[str, Any]]:
    """The original's refund and chargeback entries, oldest first."""
    return [shown(customer, entry_id) for entry_id in reversed(original.get("refunds", []))]


def dispute_shown(payment: dict[str, Any]) -> dict[str, Any]:
    """The payment's `dispute`, its `opened_at` checked (a time after the payment completed) and left out."""
    dispute = dict(payment["dispute"])
    assert dispute.pop("opened_at") >= payment["completed_at"]
    return dispute


def entry_fields(entry: dict[str, Any]) -> dict[str, Any]:
    keys = ("amount", "currency", "status", "method", "description", "reference", "original_payment_id", "refund_of")
    return {key: entry.get(key) for key in keys}


def test_a_stripe_dispute_lost_takes_the_disputed_amount_back_once(gateway_sim: Any, customer: str) -> None:
    payment_id, intent_id = card_payment(customer)

    sent = played(gateway_sim, "stripe", intent_id, "dispute", "15.00")
    opened = delivered_twice("stripe", sent)
    after_open = balances(customer)
    closed = delivered_twice("stripe", played(gateway_sim, "stripe", intent_id, "dispute_lost"))

    dispute_id = dispute_in(sent[0])
    assert opened == [("dispute", "duplicate"), ("chargeback", "duplicate")]
    assert closed == [("dispute", "duplicate")]
    assert after_open == balances(customer) == {"USD": "25.00"}
    original = shown(customer, payment_id)
    assert (original["status"], original["amount"], "refunded_amount" in original) == ("completed", "40.00", False)
    assert dispute_shown(original) == {"status": "lost", "amount": "15.00", "reason": "fraudulent"}
    assert notes(original) == [
        ("pending", "created"),
        ("completed", None),
        ("completed", "dispute open: fraudulent"),
        ("completed", "dispute lost: fraudulent"),
    ]
    [chargeback] = entries(customer, original)
    assert entry_fields(chargeback) == {
        "amount": "-15.00",
        "currency": "USD",
        "status": "completed",
        "method": "chargeback",
        "description": "Chargeback of Visa card ending 4242",
        "reference": dispute_id,
        "original_payment_id": payment_id,
        "refund_of": payment_id,
    }
    assert notes(chargeback) == [("completed", "chargeback: fraudulent")]


def test_a_stripe_dispute_won_gives_the_amount_back(gateway_sim: Any, customer: str) -> None:
    payment_id, intent_id = card_payment(customer)

    sent = played(gateway_sim, "stripe", intent_id, "dispute")
    opened = delivered_twice("stripe", sent)
    after_open = balances(customer)
    won = delivered_twice("stripe", played(gateway_sim, "stripe", intent_id, "dispute_won"))

    dispute_id = dispute_in(sent[0])
    assert opened == [("dispute", "duplicate"), ("chargeback", "duplicate")]
    assert won == [("chargeback_reversed", "duplicate"), ("unchanged", "duplicate")]  # closed: already shown won
    assert after_open == {"USD": "0.00"}
    assert balances(customer) == {"USD": "40.00"}
    original = shown(customer, payment_id)
    assert dispute_shown(original) == {"status": "won", "amount": "40.00", "reason": "fraudulent"}
    assert notes(original)[2:] == [("completed", "dispute open: fraudulent"), ("completed", "dispute won: fraudulent")]
    chargeback, reversal = entries(customer, original)
    assert original["refunds"] == [reversal["id"], chargeback["id"]]  # newest first
    common = {"currency": "USD", "status": "completed", "reference": dispute_id}
    links = {"original_payment_id": payment_id, "refund_of": payment_id}
    assert entry_fields(chargeback) == {
        "amount": "-40.00",
        "method": "chargeback",
        "description": "Chargeback of Visa card ending 4242",
        **common,
        **links,
    }
    assert entry_fields(reversal) == {
        "amount": "40.00",
        "method": "chargeback_reversal",
        "description": "Chargeback reversal of Visa card ending 4242",
        **common,
        **links,
    }
    assert notes(reversal) == [("completed", "chargeback reversal: fraudulent")]


@pytest.mark.parametrize("order", ["as_sent", "reversal_first"])
def test_a_paypal_dispute_lost_and_the_reversal_of_its_capture_take_the_money_once(
    gateway_sim: Any, customer: str, order: str
) -> None:
    payment_id, order_id = paypal_payment(gateway_sim, customer)

    opened = delivered_twice("paypal", played(gateway_sim, "paypal", order_id, "dispute", "30.00"))
    resolved, reversal = played(gateway_sim, "paypal", order_id, "dispute_lost")
    lost = delivered_twice("paypal", [resolved, reversal] if order == "as_sent" else [reversal, resolved])

    dispute_id = dispute_in(resolved)
    reversal_id = json.loads(reversal.body)["resource"]["id"]
    assert opened == [("dispute", "duplicate")]
    assert lost == [("chargeback", "duplicate"), ("duplicate", "duplicate")]  # the second: the same capture's funds
    assert balances(customer) == {"USD": "10.00"}
    original = shown(customer, payment_id)
    [chargeback] = entries(customer, original)
    # The first of the two to arrive takes the money (its id is the entry's reference); the other changes nothing.
    # Either way the payment shows the dispute it was shown since CUSTOMER.DISPUTE.CREATED, now lost.
    reason, reference = "MERCHANDISE_OR_SERVICE_NOT_RECEIVED", dispute_id if order == "as_sent" else reversal_id
    assert dispute_shown(original) == {"status": "lost", "amount": "30.00", "reason": reason}
    assert notes(original)[2:] == [
        ("completed", "dispute open: MERCHANDISE_OR_SERVICE_NOT_RECEIVED"),
        ("completed", f"dispute lost: {reason}"),
    ]
    assert entry_fields(chargeback) == {
        "amount": "-30.00",
        "currency": "USD",
        "status": "completed",
        "method": "chargeback",
        "description": f"Chargeback of PayPal order {order_id}",
        "reference": reference,
        "original_payment_id": payment_id,
        "refund_of": payment_id,
    }
    taken_by = reason if order == "as_sent" else "Payment reversed"  # the entry says what took the money
    assert notes(chargeback) == [("completed", f"chargeback: {taken_by}")]


def test_a_paypal_dispute_won_moves_no_money(gateway_sim: Any, customer: str) -> None:
    payment_id, order_id = paypal_payment(gateway_sim, customer)

    opened = delivered_twice("paypal", played(gateway_sim, "paypal", order_id, "dispute"))
    won = delivered_twice("paypal", played(gateway_sim, "paypal", order_id, "dispute_won"))

    # Resolved for us: a reinstatement of funds never withdrawn, which cancels out (recorded, nothing moves).
    assert opened == [("dispute", "duplicate")]
    assert won == [("unchanged", "duplicate")]
    assert balances(customer) == {"USD": "40.00"}
    original = shown(customer, payment_id)
    assert "refunds" not in original
    assert dispute_shown(original) == {
        "status": "won",
        "amount": "40.00",
        "reason": "MERCHANDISE_OR_SERVICE_NOT_RECEIVED",
    }
    assert notes(original)[2:] == [
        ("completed", "dispute open: MERCHANDISE_OR_SERVICE_NOT_RECEIVED"),
        ("completed", "dispute won: MERCHANDISE_OR_SERVICE_NOT_RECEIVED"),
    ]
