"""Reconciliation of the lifecycle (issue 14 §5) through each gateway's real adapter and the simulator, on a table of
its own: a refund whose `refund.failed` was lost is cancelled and counts again; a dispute whose decision was lost
is decided, and the funds its gateway took back become a chargeback; each found once, with `errors == 0`.
(Razorpay's authorization whose webhook was lost: tests/integration/test_razorpay_authorized.py; operator refunds
left pending: tests/integration/test_operator_refunds.py.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from payments import refunds, settlement
from payments.gateways import gateway
from payments.models import DisputeStatus, Payment, PaymentMethod, PaymentStatus, utcnow
from payments.settlement import WatchReport
from payments.store import PaymentStore
from tests.integration.test_admin_and_reconcile import made_with

pytestmark = pytest.mark.usefixtures("aws", "gateway_sim")

BODIES = {  # 30.00 in a currency each gateway takes
    "stripe": {"method": "credit_card", "amount": "30.00", "currency": "USD", "payment_method": "pm_card_visa"},
    "paypal": {"method": "paypal", "amount": "30.00", "currency": "USD"},
    "razorpay": {"method": "razorpay", "amount": "30.00", "currency": "INR"},
    "paystack": {"method": "paystack", "amount": "30.00", "currency": "NGN"},
}


def paid(store: PaymentStore, sim: Any, customer: str, provider: str) -> Payment:
    """A completed payment whose own webhooks were lost: reconciliation completed it."""
    payment = made_with(store, customer, BODIES[provider])
    if payment.status is not PaymentStatus.COMPLETED:
        sim.settle(provider, payment.gateway_ref, "success")
        adapters = {provider: gateway(provider)}
        settlement.reconcile(store, adapters, now=utcnow() + timedelta(hours=1), ask_after=timedelta(0),
                             give_up_after=timedelta(days=3))  # fmt: skip
    done = store.require(customer, payment.id, consistent=True)
    assert done.status is PaymentStatus.COMPLETED, done
    return done


def delivered_first(store: PaymentStore, sim: Any, provider: str, ref: str, outcome: str) -> None:
    """Play `outcome` at the simulator; only its first webhook reaches us (verified and settled as the handler
    does), the rest are lost."""
    seen = len(sim.deliveries())
    result = sim.settle(provider, ref, outcome)
    assert result["event"] is not None
    # Its own (a late webhook of an earlier test on this session's simulator may come in between).
    first = result["event"]
    record = next(r for r in sim.deliveries()[seen:] if r["provider"] == provider and r["event"] == first)
    adapter = gateway(provider)
    headers = {name.lower(): value for name, value in record["headers"].items()}
    adapter.verify_webhook(headers, record["body"].encode())
    settlement.apply_event(store, adapter, adapter.parse_event(headers, record["body"].encode()))
    sim.drain()  # the simulator's later webhooks go out now, and are lost


def balance(store: PaymentStore, customer: str) -> dict[str, int]:
    return {m.currency: m.minor for m in store.balances(customer)}


@pytest.mark.parametrize("provider", ["razorpay", "paystack"])
def test_a_refund_whose_failure_was_lost_is_cancelled_by_asking_its_gateway(
    own_store: PaymentStore, gateway_sim: Any, customer: str, provider: str
) -> None:
    original = paid(own_store, gateway_sim, customer, provider)
    body = refunds.RefundBody(amount="10.00")
    entry = refunds.refund(own_store, gateway, customer, original.id, body, f"k-{provider}", "operator:op")
    assert (entry.status, entry.refund_status) == (PaymentStatus.COMPLETED, "pending")  # accepted: it debits
    gateway_sim.settle(provider, original.gateway_ref, "refund_failed")  # refund.failed is lost

    first = settlement.reconcile_watched(own_store, {provider: gateway(provider)})
    again = settlement.reconcile_watched(own_store, {provider: gateway(provider)})

    assert first == WatchReport(refunds_checked=1, refunds_changed=1)
    assert again == WatchReport()
    after = own_store.require(customer, entry.id, consistent=True)
    assert (after.status, after.refund_status) == (PaymentStatus.CANCELLED, "failed")
    assert balance(own_store, customer) == {original.currency: 3000}
    assert own_store.require(customer, original.id, consistent=True).refunded_minor == 0


@pytest.mark.parametrize("provider", sorted(BODIES))
def test_a_dispute_whose_decision_was_lost_is_found_and_its_funds_taken_back_once(
    own_store: PaymentStore, gateway_sim: Any, customer: str, provider: str
) -> None:
    original = paid(own_store, gateway_sim, customer, provider)
    delivered_first(own_store, gateway_sim, provider, original.gateway_ref or "", "dispute")  # opened: we know
    opened = own_store.require(customer, original.id, consistent=True).dispute
    assert opened is not None and opened.status is DisputeStatus.OPEN
    gateway_sim.settle(provider, original.gateway_ref, "dispute_lost")  # decided: every webhook lost
    gateway_sim.drain()

    first = settlement.reconcile_watched(own_store, {provider: gateway(provider)})
    again = settlement.reconcile_watched(own_store, {provider: gateway(provider)})

    assert first == WatchReport(disputes_checked=1, disputes_changed=1)
    assert again == WatchReport()  # decided: no longer watched
    shown = own_store.require(customer, original.id, consistent=True)
    assert shown.dispute is not None and shown.dispute.status is DisputeStatus.LOST
    chargebacks = [own_store.require(customer, entry, consistent=True) for entry in shown.refund_ids]
    assert [(c.method, c.amount_minor) for c in chargebacks] == [(PaymentMethod.CHARGEBACK, -3000)]
    assert balance(own_store, customer) == {original.currency: 0}
