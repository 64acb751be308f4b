"""Operator refunds through each gateway's refund API (docs/refunds.md), through the real admin and webhooks
handlers and the simulator's refund endpoints: partial and full refunds, never more in total than was paid, the
same Idempotency-Key as one refund and one gateway call, the gateway's later webhooks about the same refund as
duplicates (and `succeeded` updating the detail), a failed refund counting again, a bank transfer recorded for a
payout by hand, NOWPayments and the other unrefundable payments refused with what to do, and reconciliation
binding a refund whose answer was lost."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import pytest

from payments import refunds
from payments.gateways import gateway
from payments.models import utcnow
from payments.store import PaymentStore
from tests.integration import webhook_events as events
from tests.integration.helpers import balances, deliver, get_payment, post, settle_at_sim

pytestmark = pytest.mark.usefixtures("aws", "gateway_sim")

PAYMENTS = {  # 30.00 in a currency each gateway takes
    "stripe": {"method": "credit_card", "currency": "USD", "payment_method": "pm_card_visa"},
    "paypal": {"method": "paypal", "currency": "USD"},
    "razorpay": {"method": "razorpay", "currency": "INR"},
    "paystack": {"method": "paystack", "currency": "NGN"},
}
REFUNDING = sorted(PAYMENTS)
ROUTE = "/admin/customers/{customer_id}/payments/{id}/refunds"
# What each gateway's refund API answers at once, and what its later webhook reports.
ANSWERED = {"stripe": "succeeded", "paypal": "succeeded", "razorpay": "pending", "paystack": "pending"}


def paid(customer: str, sim: Any, provider: str) -> tuple[dict[str, Any], str]:
    """A completed payment of 30.00 and its gateway reference."""
    status, body = post("make_payment", "/payments", {"amount": "30.00", **PAYMENTS[provider]}, customer=customer)
    assert status == 201, body
    payment = body["payment"]
    ref = PaymentStore().require(customer, payment["id"], consistent=True).gateway_ref or ""
    if payment["status"] != "completed":
        assert settle_at_sim(sim, provider, ref, "success")[0] == 200
    for _ in range(50):  # PayPal: the capture's own webhook follows the approval
        if PaymentStore().require(customer, payment["id"], consistent=True).status.value == "completed":
            break
        time.sleep(0.05)
    return payment, ref


def refund(
    customer: str, payment_id: str, body: dict[str, Any] | None = None, key: str | None = None
) -> tuple[int, Any]:
    return post(
        "admin",
        f"/admin/customers/{customer}/payments/{payment_id}/refunds",
        body,
        customer=None,
        groups=("operator",),
        key=key or uuid.uuid4().hex,
        route=ROUTE,
        path_params={"customer_id": customer, "id": payment_id},
    )


def later_deliveries(sim: Any, provider: str, seen: int, count: int) -> list[events.Delivery]:
    """The refund webhooks the simulator sends after answering a refund call (on a timer), once `count` came."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        records = [
            r for r in sim.deliveries()[seen:] if r["provider"] == provider and "refund" in r["event_type"].lower()
        ]
        if len(records) >= count:
            return [events.Delivery(r["body"].encode(), dict(r["headers"])) for r in records]
        time.sleep(0.02)
    raise AssertionError(f"{provider} sent fewer than {count} webhooks")


def gateway_refunds(sim: Any, provider: str) -> list[dict[str, Any]]:
    """The refunds the simulator made (however they were asked for), as it holds them."""
    held = sim.objects()[provider]
    if provider == "paypal":  # inside their orders, as PayPal shows them
        return [
            refund
            for order in held["orders"]
            for unit in order.get("purchase_units", [])
            for refund in (unit.get("payments") or {}).get("refunds", [])
        ]
    if provider == "paystack":  # kept beside the transactions (GET /refund lists them)
        return list(sim._gateways["paystack"]._refunds)
    return list(held["refunds"])


@pytest.mark.parametrize("provider", REFUNDING)
def test_partial_then_full_refunds_through_the_gateway_never_pass_what_was_paid(
    customer: str, gateway_sim: Any, provider: str
) -> None:
    payment, _ref = paid(customer, gateway_sim, provider)
    currency = payment["currency"]
    made_before = len(gateway_refunds(gateway_sim, provider))
    seen = len(gateway_sim.deliveries())

    status, first = refund(customer, payment["id"], {"amount": "9.00", "reason": "goodwill"})

    assert status == 201, first
    assert (first["method"], first["status"], first["amount"], first["currency"]) == (
        "refund",
        "completed",
        "-9.00",
        currency,
    )
    assert first["original_payment_id"] == payment["id"] and first["refund_status"] == ANSWERED[provider]
    assert first["reference"], first  # the gateway's refund id
    assert [h["status"] for h in first["history"]] == ["pending", "completed"]
    assert first["history"][0]["note"] == "refund requested: goodwill"
    assert balances(customer) == {currency: "21.00"}
    made = gateway_refunds(gateway_sim, provider)[made_before:]
    assert len(made) == 1

    # The gateway's own webhooks about that refund: the same refund, counted once; `processed` updates the detail.
    for delivery in later_deliveries(gateway_sim, provider, seen, 1):
        status, answer = deliver(provider, delivery)
        assert status == 200 and answer["outcome"] in ("duplicate", "refund_succeeded"), answer
    assert balances(customer) == {currency: "21.00"}

    status, rest = refund(customer, payment["id"])  # no amount: all that is left
    assert status == 201 and rest["amount"] == "-21.00", rest
    status, refused = refund(customer, payment["id"], {"amount": "0.01"})
    assert status == 422 and refused["field"] == "amount", refused
    assert "refunded in full" in refused["message"]

    assert balances(customer) == {currency: "0.00"}
    assert len(gateway_refunds(gateway_sim, provider)) == made_before + 2  # the refused one never reached it
    status, original = get_payment(customer, payment["id"])
    assert status == 200
    assert original["refunded_amount"] == "30.00" and set(original["refunds"]) == {first["id"], rest["id"]}


@pytest.mark.parametrize("provider", REFUNDING)
def test_the_same_key_is_one_refund_and_one_gateway_call(customer: str, gateway_sim: Any, provider: str) -> None:
    payment, _ref = paid(customer, gateway_sim, provider)
    made_before = len(gateway_refunds(gateway_sim, provider))
    key = uuid.uuid4().hex

    answers = [refund(customer, payment["id"], {"amount": "5.00"}, key=key) for _ in range(3)]

    assert [status for status, _ in answers] == [201, 201, 201]
    assert answers[0][1] == answers[1][1] == answers[2][1]
    assert len(gateway_refunds(gateway_sim, provider)) == made_before + 1
    assert balances(customer) == {payment["currency"]: "25.00"}
    status, reused = refund(customer, payment["id"], {"amount": "6.00"}, key=key)  # the same key, another body
    assert status == 422 and reused["field"] == "Idempotency-Key", reused


@pytest.mark.parametrize("provider", ["stripe", "razorpay", "paystack"])
def test_a_route_refund_the_gateway_then_reports_failed_counts_again(
    customer: str, gateway_sim: Any, provider: str
) -> None:
    payment, ref = paid(customer, gateway_sim, provider)
    status, made = refund(customer, payment["id"], {"amount": "10.00"})
    assert status == 201, made

    status, answer = settle_at_sim(gateway_sim, provider, ref, "refund_failed")

    assert (status, answer) == (200, {"received": True, "outcome": "refund_failed"})
    status, shown = get_payment(customer, made["id"])
    assert (shown["status"], shown["refund_status"]) == ("cancelled", "failed")
    assert balances(customer) == {payment["currency"]: "30.00"}
    status, again = refund(customer, payment["id"])  # all of it is refundable again
    assert status == 201 and again["amount"] == "-30.00", again


def test_a_bank_transfer_refund_is_recorded_for_a_payout_by_hand(customer: str) -> None:
    status, body = post(
        "make_payment",
        "/payments",
        {"method": "bank_transfer", "amount": "50.00", "currency": "EUR"},
        customer=customer,
    )
    assert status == 201
    payment_id = body["payment"]["id"]
    status, _ = post(
        "admin",
        f"/admin/customers/{customer}/payments/{payment_id}/complete",
        {"note": "arrived"},
        customer=None,
        groups=("operator",),
        key=None,
        route="/admin/customers/{customer_id}/payments/{id}/complete",
        path_params={"customer_id": customer, "id": payment_id},
    )
    assert status == 200

    status, made = refund(customer, payment_id, {"amount": "20.00", "reason": "overpaid"})

    assert status == 201, made
    assert (made["status"], made["amount"], made["refund_status"]) == ("completed", "-20.00", "pending")
    assert made["history"][0]["note"] == "refund to be paid out by hand: overpaid"
    assert balances(customer) == {"EUR": "30.00"}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"method": "nowpayments", "amount": "30.00", "currency": "USD"}, "NOWPayments has no refund API"),
        ({"method": "bank_transfer", "amount": "30.00", "currency": "EUR"}, "only a completed payment"),
    ],
)
def test_what_cannot_be_refunded_is_a_409_saying_what_to_do(
    customer: str, gateway_sim: Any, body: dict[str, Any], says: str
) -> None:
    status, made = post("make_payment", "/payments", body, customer=customer)
    assert status == 201
    payment_id = made["payment"]["id"]
    if body["method"] == "nowpayments":
        ref = PaymentStore().require(customer, payment_id, consistent=True).gateway_ref or ""
        assert settle_at_sim(gateway_sim, "nowpayments", ref, "success")[1]["outcome"] == "completed"

    status, refused = refund(customer, payment_id)

    assert status == 409 and says in refused["message"], refused
    original = PaymentStore().require(customer, payment_id, consistent=True)
    assert (original.refunded_minor, original.refund_ids) == (0, frozenset())


def test_another_customers_payment_is_not_found(customer: str, gateway_sim: Any) -> None:
    payment, _ = paid(customer, gateway_sim, "stripe")
    status, answer = refund("someone-else", payment["id"])
    assert status == 404, answer
    assert balances(customer) == {"USD": "30.00"}


@pytest.mark.parametrize("provider", REFUNDING)
def test_reconciliation_binds_a_refund_whose_answer_was_lost(
    customer: str, gateway_sim: Any, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway made the refund, but its answer never reached us (a timeout): the entry stays pending with its
    reservation; reconciliation finds the refund by our key and binds it; the gateway made it once."""
    payment, _ref = paid(customer, gateway_sim, provider)
    adapter = gateway(provider)
    real = adapter.refund

    def lost(request: Any) -> Any:
        real(request)
        from payments.gateways.base import GatewayUnavailable

        raise GatewayUnavailable(f"{provider} timed out")

    monkeypatch.setattr(adapter, "refund", lost)
    made_before = len(gateway_refunds(gateway_sim, provider))

    status, answer = refund(customer, payment["id"], {"amount": "12.00"})

    assert status == 503 and "recorded as pending" in answer["message"], answer
    monkeypatch.undo()
    store = PaymentStore()
    [entry_id] = store.require(customer, payment["id"], consistent=True).refund_ids
    assert store.require(customer, entry_id, consistent=True).status.value == "pending"
    assert balances(customer) == {payment["currency"]: "30.00"}  # reserved, not debited

    report = refunds.reconcile_refunds(
        store,
        {provider: gateway(provider)},
        now=utcnow() + timedelta(seconds=1),
        ask_after=timedelta(0),
        give_up_after=timedelta(hours=1),
    )

    assert (report.checked, report.bound, report.errors) >= (1, 1, 0) and report.errors == 0
    bound = store.require(customer, entry_id, consistent=True)
    assert bound.status.value == "completed" and bound.reference
    assert balances(customer) == {payment["currency"]: "18.00"}
    assert len(gateway_refunds(gateway_sim, provider)) == made_before + 1
