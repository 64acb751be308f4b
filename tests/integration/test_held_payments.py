"""Payments the gateway holds (docs/status-rules.md, docs/webhooks.md): PayPal's capture left PENDING (here, a
currency the account must accept by hand) and a Stripe PaymentIntent still `processing` keep the payment pending
with `pending_reason`, credit nothing, are never timed out by reconciliation, and complete once the gateway
settles them. Through the real handlers, with the simulator's events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from payments.models import utcnow
from payments.store import PaymentStore
from tests.integration.helpers import balances, deliver, get_payment, post, settle_at_sim
from tests.integration.test_admin_and_reconcile import made_with
from tests.integration.test_paypal_webhooks import capture_completed, pending_paypal, recorded, settle

PAYPAL_HOLD = (
    "PayPal holds the capture: RECEIVING_PREFERENCE_MANDATES_MANUAL_ACTION (the currency must be accepted in "
    "PayPal's dashboard)"
)

pytestmark = pytest.mark.usefixtures("aws", "gateway_sim")


def shown(customer: str, payment_id: str) -> dict[str, Any]:
    status, body = get_payment(customer, payment_id)
    assert status == 200, body
    return dict(body)


def test_a_paypal_capture_left_pending_holds_the_payment_until_paypal_completes_it(
    gateway_sim: Any, customer: str
) -> None:
    payment_id, order_id = pending_paypal(customer)

    status, body = deliver("paypal", settle(gateway_sim, order_id, "hold"))  # approved; the capture stays PENDING

    assert (status, body) == (200, {"received": True, "outcome": "held"})
    held = shown(customer, payment_id)
    assert (held["status"], held["pending_reason"]) == ("pending", PAYPAL_HOLD)
    assert held["history"][-1]["note"] == PAYPAL_HOLD
    assert balances(customer) == {}
    # PayPal's own PAYMENT.CAPTURE.PENDING says the same: nothing more to record.
    pending_event = recorded(
        gateway_sim,
        {"event_type": "PAYMENT.CAPTURE.PENDING", "resource.supplementary_data.related_ids.order_id": order_id},
    )
    assert deliver("paypal", pending_event) == (200, {"received": True, "outcome": "unchanged"})
    assert deliver("paypal", pending_event) == (200, {"received": True, "outcome": "duplicate"})

    gateway_sim.settle("paypal", order_id, "success")  # accepted in the dashboard: the capture completes
    status, body = deliver("paypal", capture_completed(gateway_sim, order_id))

    assert (status, body) == (200, {"received": True, "outcome": "completed"})
    done = shown(customer, payment_id)
    assert done["status"] == "completed" and "pending_reason" not in done
    assert balances(customer) == {"USD": "40.00"}


def test_a_stripe_payment_still_processing_is_held_then_settled(gateway_sim: Any, customer: str) -> None:
    request = {
        "method": "credit_card",
        "amount": "25.00",
        "currency": "EUR",
        "payment_method": "pm_card_authenticationRequired",
    }
    status, body = post("make_payment", "/payments", request, customer=customer)
    assert status == 201 and body["payment"]["status"] == "pending", body
    payment_id = body["payment"]["id"]
    ref = PaymentStore().require(customer, payment_id, consistent=True).gateway_ref or ""

    assert settle_at_sim(gateway_sim, "stripe", ref, "hold") == (200, {"received": True, "outcome": "held"})
    held = shown(customer, payment_id)
    assert held["status"] == "pending"
    assert held["pending_reason"].startswith("Stripe is processing the payment")
    assert balances(customer) == {}

    assert settle_at_sim(gateway_sim, "stripe", ref, "success") == (200, {"received": True, "outcome": "completed"})
    done = shown(customer, payment_id)
    assert done["status"] == "completed" and "pending_reason" not in done
    assert balances(customer) == {"EUR": "25.00"}


def test_reconciliation_reads_a_held_capture_again_and_never_times_it_out(
    gateway_sim: Any, customer: str, own_store: PaymentStore
) -> None:
    from payments import settlement
    from payments.gateways import gateway

    payment = made_with(own_store, customer, {"method": "paypal", "amount": "40.00", "currency": "USD"})
    gateway_sim.settle("paypal", payment.gateway_ref, "hold")  # the approval webhook is lost
    # Reconciliation finds the approved order, captures it (PENDING at PayPal) and holds the payment; days later,
    # past the final timeout, it asks again and leaves it held.
    runs = [
        settlement.reconcile(
            own_store,
            {"paypal": gateway("paypal")},
            now=utcnow() + timedelta(days=days),
            ask_after=timedelta(0),
            give_up_after=timedelta(hours=72),
        )
        for days in (0, 5)
    ]

    assert [(r.checked, r.held, r.timed_out, r.errors) for r in runs] == [(1, 1, 0, 0), (1, 1, 0, 0)], runs
    after = own_store.require(customer, payment.id, consistent=True)
    assert (after.status.value, after.pending_reason) == ("pending", PAYPAL_HOLD)
    assert [h.note for h in after.history].count(PAYPAL_HOLD) == 1
    assert own_store.balances(customer) == []
