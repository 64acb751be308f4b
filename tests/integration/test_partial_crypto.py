"""A NOWPayments payment paid in part (docs/gateways.md#nowpayments): with the default `credit` setting the
payment completes with what arrived and shows `requested_amount`; more arriving, and `finished`, credit only the
difference, once each; with `hold` it stays pending with the reason and completes when paid in full. Through the
real handlers, with the simulator's signed IPNs."""

from __future__ import annotations

import os
from typing import Any

import pytest

from payments.store import PaymentStore
from tests.integration.helpers import Delivery, balances, deliver, get_payment, post

pytestmark = pytest.mark.usefixtures("aws", "gateway_sim")


def crypto_payment(customer: str, amount: str = "50.00") -> tuple[str, str]:
    status, body = post(
        "make_payment", "/payments", {"method": "nowpayments", "amount": amount, "currency": "USD"}, customer=customer
    )
    assert status == 201 and body["payment"]["status"] == "pending", body
    payment_id = body["payment"]["id"]
    return payment_id, PaymentStore().require(customer, payment_id, consistent=True).gateway_ref or ""


def paid(sim: Any, ref: str, amount: str | None) -> Delivery:
    """The payer sends coins worth `amount` more (None: the rest); the IPN NOWPayments sends about it."""
    seen = len(sim.deliveries())
    result = sim.settle("nowpayments", ref, "success", amount)
    assert result["event"] is not None
    record = next(r for r in sim.deliveries()[seen:] if r["provider"] == "nowpayments")
    return Delivery(record["body"].encode(), dict(record["headers"]))


def shown(customer: str, payment_id: str) -> dict[str, Any]:
    status, body = get_payment(customer, payment_id)
    assert status == 200, body
    return dict(body)


def test_a_partial_payment_credits_what_arrived_and_then_only_the_difference(gateway_sim: Any, customer: str) -> None:
    payment_id, ref = crypto_payment(customer)

    first = paid(gateway_sim, ref, "20.00")
    assert deliver("nowpayments", first) == (200, {"received": True, "outcome": "completed"})
    assert deliver("nowpayments", first) == (200, {"received": True, "outcome": "duplicate"})
    part = shown(customer, payment_id)
    assert (part["status"], part["amount"], part["requested_amount"]) == ("completed", "20.00", "50.00")
    assert part["history"][-1]["note"] == "20.00 of 50.00 arrived"
    assert balances(customer) == {"USD": "20.00"}

    more = paid(gateway_sim, ref, "10.00")
    assert deliver("nowpayments", more) == (200, {"received": True, "outcome": "completed"})
    assert (shown(customer, payment_id)["amount"], balances(customer)) == ("30.00", {"USD": "30.00"})

    rest = paid(gateway_sim, ref, None)  # finished
    assert deliver("nowpayments", rest) == (200, {"received": True, "outcome": "completed"})
    assert deliver("nowpayments", rest) == (200, {"received": True, "outcome": "duplicate"})
    assert deliver("nowpayments", first) == (200, {"received": True, "outcome": "duplicate"})  # an old one, late
    done = shown(customer, payment_id)
    assert (done["status"], done["amount"]) == ("completed", "50.00")
    assert "requested_amount" not in done
    assert balances(customer) == {"USD": "50.00"}


def test_a_late_partial_ipn_after_finished_takes_nothing_back(gateway_sim: Any, customer: str) -> None:
    payment_id, ref = crypto_payment(customer, "40.00")
    early = paid(gateway_sim, ref, "10.00")
    finished = paid(gateway_sim, ref, None)

    assert deliver("nowpayments", finished)[1]["outcome"] == "completed"
    assert deliver("nowpayments", early) == (200, {"received": True, "outcome": "unchanged"})

    assert (shown(customer, payment_id)["amount"], balances(customer)) == ("40.00", {"USD": "40.00"})


def test_the_hold_setting_keeps_a_partial_payment_pending_until_it_is_paid_in_full(
    gateway_sim: Any, customer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(os.environ, "NOWPAYMENTS_PARTIALLY_PAID", "hold")
    payment_id, ref = crypto_payment(customer)

    assert deliver("nowpayments", paid(gateway_sim, ref, "20.00")) == (200, {"received": True, "outcome": "held"})
    held = shown(customer, payment_id)
    assert held["status"] == "pending" and "requested_amount" not in held
    assert held["pending_reason"] == (
        "NOWPayments received part of the payment: 20.00 of 50.00 USD; it is credited when the rest arrives"
    )
    assert balances(customer) == {}

    assert deliver("nowpayments", paid(gateway_sim, ref, None)) == (200, {"received": True, "outcome": "completed"})
    done = shown(customer, payment_id)
    assert (done["status"], done["amount"]) == ("completed", "50.00") and "pending_reason" not in done
    assert balances(customer) == {"USD": "50.00"}


def test_an_unknown_setting_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from payments.gateways.nowpayments import NowPaymentsSettings

    with pytest.raises(ValueError, match="NOWPAYMENTS_PARTIALLY_PAID is credit or hold, not 'maybe'"):
        NowPaymentsSettings(partially_paid="maybe")
