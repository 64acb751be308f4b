"""Operator routes through the admin handler, and scheduled reconciliation against the gateway simulator."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest

from payments import checkout, settlement
from payments.gateways import gateway
from payments.gateways.base import CreateRequest
from payments.identity import caller_from_event
from payments.models import Payment, PaymentStatus, utcnow
from payments.money import Money
from payments.store import PaymentStore
from tests.conftest import FakeContext, aws_client, claims_for, http_event, load_function
from tests.integration.helpers import balances, post, stored_payments

pytestmark = pytest.mark.usefixtures("aws")
OPERATOR = ("operator",)


def admin(path: str, body, *, groups=OPERATOR, key: str | None = None, customer: str | None = None):
    return post("admin", path, body, customer=customer, groups=groups, key=key)


def bank_transfer(customer: str, amount: str = "40.00") -> dict:
    status, body = post(
        "make_payment", "/payments", {"method": "bank_transfer", "amount": amount, "currency": "USD"}, customer=customer
    )
    assert status == 201
    return body["payment"]


def test_complete_and_cancel_follow_the_status_rules(customer: str) -> None:
    first, second = bank_transfer(customer), bank_transfer(customer, "5.00")
    base = f"/admin/customers/{customer}/payments"
    status, done = admin(f"{base}/{first['id']}/complete", {"note": "seen on statement"})
    assert status == 200, done
    assert done["status"] == "completed" and done["history"][-1]["note"] == "seen on statement"
    assert balances(customer) == {"USD": "40.00"}
    assert admin(f"{base}/{first['id']}/cancel", None)[0] == 409  # completed is final
    assert admin(f"{base}/{first['id']}/complete", None)[0] == 409  # already completed
    status, cancelled = admin(f"{base}/{second['id']}/cancel", None)
    assert (status, cancelled["status"]) == (200, "cancelled")
    assert admin(f"{base}/{second['id']}/complete", None)[0] == 409  # only a gateway may revive it
    assert balances(customer) == {"USD": "40.00"}
    assert admin(f"{base}/pay_01JZZZZZZZZZZZZZZZZZZZZZZZ/complete", None)[0] == 404
    assert admin(f"/admin/customers/someone-else/payments/{first['id']}/cancel", None)[0] == 404


@pytest.mark.parametrize("groups", [("finance",), ("admin",), ("support",), ()])
def test_only_operators(customer: str, groups) -> None:
    payment = bank_transfer(customer)
    status, body = admin(
        f"/admin/customers/{customer}/payments/{payment['id']}/complete", None, groups=groups, customer=customer
    )
    assert status == 403 and "operator" in body["message"]
    assert admin("/admin/vouchers", {"amount": "1", "currency": "USD"}, groups=groups, customer=customer)[0] == 403
    assert stored_payments(customer)[0]["status"]["S"] == "pending"


def test_charges_are_idempotent_negative_completed_payments(customer: str) -> None:
    path = f"/admin/customers/{customer}/charges"
    body = {"amount": "12.34", "currency": "EUR", "description": "Roaming pack"}
    first = admin(path, body, key="charge-1")
    again = admin(path, body, key="charge-1")
    assert first[0] == again[0] == 201
    assert first[1] == again[1]
    assert first[1]["amount"] == "-12.34" and first[1]["method"] == "purchase" and first[1]["status"] == "completed"
    status, other = admin(path, {**body, "amount": "99.00"}, key="charge-1")
    assert status == 422 and "different request body" in other["message"]
    assert admin(path, body, key="charge-2")[0] == 201
    assert len(stored_payments(customer)) == 2
    assert balances(customer) == {"EUR": "-24.68"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "-1", "currency": "EUR", "description": "x"}, "amount"),
        ({"amount": "0", "currency": "EUR", "description": "x"}, "amount"),
        ({"amount": "1.001", "currency": "EUR", "description": "x"}, "amount"),
        ({"amount": "1", "currency": "EURO", "description": "x"}, "currency"),
        ({"amount": "1", "currency": "EUR", "description": ""}, "description"),
    ],
)
def test_bad_charges_store_nothing(customer: str, body, field: str) -> None:
    status, answer = admin(f"/admin/customers/{customer}/charges", body, key=uuid.uuid4().hex)
    assert status == 422 and field in answer["message"]
    assert stored_payments(customer) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "5", "currency": "USD", "count": 0}, "count"),
        ({"amount": "5", "currency": "USD", "count": 101}, "count"),
        ({"amount": "5", "currency": "USD", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"amount": "5", "currency": "USD", "expires_at": "soon"}, "expires_at"),
        ({"amount": "5", "currency": "USD", "expires_at": "2099-01-01T00:00:00"}, "expires_at"),
        ({"amount": "0", "currency": "USD"}, "amount"),
    ],
)
def test_bad_voucher_requests(body, field: str) -> None:
    status, answer = admin("/admin/vouchers", body)
    assert status == 422 and field in answer["message"], answer


def test_vouchers_have_100_random_bits_and_are_stored_only_as_hashes() -> None:
    status, body = admin("/admin/vouchers", {"amount": "10", "currency": "JPY", "count": 3})
    assert status == 201
    codes = [v["code"] for v in body["vouchers"]]
    assert len(set(codes)) == 3
    assert all(len(c.replace("-", "")) == 20 for c in codes)  # 20 letters of a 32-letter alphabet: 100 bits

    from payments.config import settings

    items = aws_client("dynamodb").scan(TableName=settings().payments_table)["Items"]  # a test may Scan
    assert not any(code.replace("-", "") in str(items) for code in codes)


# ---- reconciliation ---------------------------------------------------------------------------------


def gateway_payment(customer: str, method: str, currency: str, **extra) -> dict:
    status, body = post(
        "make_payment",
        "/payments",
        {"method": method, "amount": "30.00", "currency": currency, **extra},
        customer=customer,
    )
    assert status == 201, body
    return body["payment"]


def ref_of(customer: str, payment_id: str) -> str:
    return PaymentStore().require(customer, payment_id, consistent=True).gateway_ref or ""


def test_reconciliation_settles_lost_webhooks_and_times_out_the_silent(customer: str, gateway_sim) -> None:
    paid = gateway_payment(customer, "paystack", "NGN")
    failed = gateway_payment(customer, "paystack", "NGN")
    silent = gateway_payment(customer, "razorpay", "INR")
    card = gateway_payment(customer, "credit_card", "USD", payment_method="pm_card_authenticationRequired")
    bank = bank_transfer(customer)
    # The gateways settle, but their webhooks are lost (the simulator delivers to a dead address).
    gateway_sim.settle("paystack", ref_of(customer, paid["id"]), "success")
    gateway_sim.settle("paystack", ref_of(customer, failed["id"]), "failure")
    gateway_sim.settle("stripe", ref_of(customer, card["id"]), "success")
    store = PaymentStore()
    adapters = {p: gateway(p) for p in ("stripe", "paystack", "razorpay")}
    soon = settlement.reconcile(
        store,
        adapters,
        now=utcnow() + timedelta(hours=1),
        ask_after=timedelta(minutes=30),
        give_up_after=timedelta(hours=72),
        limit=1000,
    )
    assert soon.completed >= 2 and soon.cancelled >= 1  # other tests' pending payments may be counted too

    def status(payment: dict) -> str:
        return store.require(customer, payment["id"], consistent=True).status.value

    assert [status(p) for p in (paid, failed, silent, card, bank)] == [
        "completed",
        "cancelled",
        "pending",
        "completed",
        "pending",
    ]
    later = settlement.reconcile(
        store,
        adapters,
        now=utcnow() + timedelta(hours=73),
        ask_after=timedelta(minutes=30),
        give_up_after=timedelta(hours=72),
        limit=1000,
    )
    assert later.timed_out >= 1
    assert status(silent) == "cancelled" and status(bank) == "pending"  # bank transfers wait for an operator
    history = store.require(customer, silent["id"]).history
    assert history[-1].by == "system:reconcile"
    assert balances(customer) == {"NGN": "30.00", "USD": "30.00"}


def test_scheduled_handler_runs_and_reports(customer: str, gateway_sim, monkeypatch) -> None:
    monkeypatch.setitem(os.environ, "RECONCILE_ASK_AFTER_MINUTES", "0")
    payment = gateway_payment(customer, "paystack", "NGN")
    gateway_sim.settle("paystack", ref_of(customer, payment["id"]), "success")
    import sys

    sys.modules.pop("fn_reconcile", None)
    report = load_function("reconcile").lambda_handler({"source": "aws.scheduler"}, FakeContext())
    assert report["checked"] >= 1 and report["completed"] >= 1
    assert PaymentStore().require(customer, payment["id"], consistent=True).status is PaymentStatus.COMPLETED


# ---- reconciliation of every gateway, against a table of its own (issue 11 §5) ---------------------------


RECONCILED = {  # provider -> the body of a payment made with it
    "stripe": {
        "method": "credit_card",
        "amount": "30.00",
        "currency": "USD",
        "payment_method": "pm_card_authenticationRequired",  # pending until 3-D Secure: the bank decides later
    },
    "paypal": {"method": "paypal", "amount": "30.00", "currency": "USD"},
    "razorpay": {"method": "razorpay", "amount": "300.00", "currency": "INR"},
    "paystack": {"method": "paystack", "amount": "3000.00", "currency": "NGN"},
    "nowpayments": {"method": "nowpayments", "amount": "30.00", "currency": "USD"},
}


def made_with(store: PaymentStore, customer: str, body: dict) -> Payment:
    claims = claims_for(customer, "finance", email="payer@example.com")
    command = checkout.validate(
        checkout.PaymentBody.model_validate(body),
        caller_from_event(http_event("POST", "/payments", claims=claims)),
        customer,
        uuid.uuid4().hex,
        today=utcnow().date(),
    )
    outcome = checkout.Checkout(store).run(command)
    assert outcome.declined is None, outcome
    return store.require(customer, outcome.payment.id, consistent=True)


def test_reconciliation_asks_all_five_gateways_and_settles_what_they_decided(
    customer: str, gateway_sim, own_store: PaymentStore
) -> None:
    unrouted = len(gateway_sim.unrouted())
    plan: list[tuple[Payment, str]] = []
    for provider, body in RECONCILED.items():
        paid, failed, open_ = (made_with(own_store, customer, body) for _ in range(3))
        # The gateways settle, but every webhook is lost (the simulator delivers to a dead address).
        gateway_sim.settle(provider, paid.gateway_ref, "success")
        gateway_sim.settle(provider, failed.gateway_ref, "failure")
        # Paystack reports a checkout nobody finished as `abandoned`: past the ask-after window, that is a failure
        # (a late charge.success still completes it: cancelled -> completed on a gateway success).
        plan += [
            (paid, "completed"),
            (failed, "cancelled"),
            (open_, "cancelled" if provider == "paystack" else "pending"),
        ]
    report = settlement.reconcile(
        own_store,
        {provider: gateway(provider) for provider in RECONCILED},
        now=utcnow() + timedelta(hours=1),
        ask_after=timedelta(minutes=30),
        give_up_after=timedelta(hours=72),
    )
    assert [own_store.require(customer, p.id, consistent=True).status.value for p, _ in plan] == [s for _, s in plan]
    assert report == settlement.ReconcileReport(checked=15, completed=5, cancelled=6, still_pending=4), report
    assert gateway_sim.unrouted()[unrouted:] == []  # every call an adapter made is one the simulator serves
    paid_total = {p.currency: 0 for p, _ in plan}
    for payment, final in plan:
        paid_total[payment.currency] += payment.amount_minor if final == "completed" else 0
    assert own_store.balances(customer) == sorted(
        (Money(v, c) for c, v in paid_total.items()), key=lambda m: m.currency
    )


def test_every_gateway_call_an_adapter_makes_is_served_by_the_simulator(gateway_sim, customer, own_store) -> None:
    """A contract between each adapter and the simulator: create, look up, read back, capture, verify."""
    unrouted = len(gateway_sim.unrouted())
    for provider, body in RECONCILED.items():
        payment = made_with(own_store, customer, body)
        adapter = gateway(provider)
        request = CreateRequest(
            payment_id=payment.id,
            customer_id=customer,
            money=payment.money,
            description="Top-up",
            idempotency_key=uuid.uuid4().hex,
            email="payer@example.com",
            payment_method="pm_card_visa",
            attempt=2,
        )
        adapter.recover(request)
        adapter.resume(payment.gateway_ref or "", payment.next_action)
        adapter.fetch_status(payment.gateway_ref or "", payment.id)
        gateway_sim.settle(provider, payment.gateway_ref, "success")
        adapter.fetch_status(payment.gateway_ref or "", payment.id)
    paypal = gateway("paypal")
    order = made_with(own_store, customer, RECONCILED["paypal"]).gateway_ref or ""
    gateway_sim.settle("paypal", order, "success")
    paypal.capture(order, uuid.uuid4().hex)
    [capture] = [o for o in gateway_sim.objects()["paypal"]["orders"] if o["id"] == order]
    capture_id = capture["purchase_units"][0]["payments"]["captures"][0]["id"]
    assert paypal.capture_references(capture_id)[2] == order
    assert gateway_sim.unrouted()[unrouted:] == []
