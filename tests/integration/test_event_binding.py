"""An event may only settle the payment its gateway object belongs to (issue 11 §1).

For every gateway, a correctly signed event whose ids of ours (metadata, notes, receipt, order_id, custom_id,
reference) name a payment it is not about changes nothing of that payment: not its status, balance, history,
stored gateway reference, nor its customer's list. The event is answered 2xx with `mismatch` so the gateway
stops resending. Named payments: (a) another customer's, (b) a bank transfer, (c) a voucher payment, (d) a
payment of another gateway, (e) a payment of the same gateway with another gateway object. And when the
event's gateway object is one we created for another payment, that payment is the one it settles.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from payments import registry
from payments.config import settings
from payments.gateways.paystack import reference_for
from payments.ids import new_payment_id
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus, utcnow
from payments.money import Money
from payments.status import Cause
from payments.store import PaymentStore
from tests.conftest import aws_client
from tests.integration import webhook_events as events
from tests.integration.helpers import balances, deliver, stored_items, with_gateway_object

pytestmark = pytest.mark.usefixtures("aws", "gateway_sim")

PROVIDERS = registry.PROVIDERS
METHOD = {entry.provider: entry.method for entry in registry.GATEWAYS}
CURRENCY = {"stripe": "EUR", "paypal": "USD", "razorpay": "INR", "paystack": "NGN", "nowpayments": "USD"}
AMOUNT = 10000
# What each gateway's events can report; Paystack sends no failure event.
KINDS = {
    "stripe": ("success", "failure", "refund"),
    "paypal": ("success", "failure", "approval"),
    "razorpay": ("success", "failure", "refund"),
    "paystack": ("success", "refund"),
    "nowpayments": ("success", "failure", "refund"),
}
TARGETS = ("another_customer", "bank_transfer", "voucher", "other_gateway", "other_object")


def fresh_customer() -> str:
    return f"cust-{uuid.uuid4().hex[:12]}"


def new_object_ref(provider: str, payment_id: str | None = None) -> str:
    """An id in the shape `provider` gives its objects (for Paystack: a reference as we make them)."""
    if provider == "stripe":
        return "pi_" + uuid.uuid4().hex[:24]
    if provider == "paypal":
        return uuid.uuid4().hex[:17].upper()
    if provider == "razorpay":
        return "order_" + uuid.uuid4().hex[:14]
    if provider == "paystack":
        return reference_for(payment_id or new_payment_id(utcnow()))
    return str(uuid.uuid4().int % 10**10)


def stored(
    customer: str,
    method: PaymentMethod,
    status: PaymentStatus,
    currency: str,
    *,
    provider: str | None = None,
    reference: str | None = None,
) -> Payment:
    """A payment put through the store as the service leaves it; with `provider`, its gateway object recorded."""
    now = utcnow()
    payment = Payment(
        id=new_payment_id(now),
        customer_id=customer,
        created_at=now,
        completed_at=now if status is PaymentStatus.COMPLETED else None,
        amount_minor=AMOUNT,
        currency=currency,
        status=status,
        method=method,
        description="Top-up",
        reference=reference,
        history=(HistoryEntry(at=now, status=status, by="customer:u"),),
    )
    store = PaymentStore()
    if provider is None:
        store.add(payment)
        return payment
    store.add(payment.model_copy(update={"status": PaymentStatus.PENDING, "completed_at": None}))
    pending = store.require(customer, payment.id, consistent=True)
    payment = with_gateway_object(pending, provider, new_object_ref(provider, payment.id), store)
    if status is PaymentStatus.COMPLETED:
        return store.transition(customer, payment.id, status, Cause.GATEWAY_SUCCESS, "gateway:test").payment
    return payment


def target_of(case: str, provider: str) -> Payment:
    """The payment an attacker's event names, in a customer of its own so its balance is its alone."""
    customer, currency = fresh_customer(), CURRENCY[provider]
    if case in ("another_customer", "other_object"):
        return stored(customer, METHOD[provider], PaymentStatus.PENDING, currency, provider=provider)
    if case == "bank_transfer":
        return stored(customer, PaymentMethod.BANK_TRANSFER, PaymentStatus.PENDING, currency, reference="PAY-AAAA")
    if case == "voucher":
        return stored(customer, PaymentMethod.VOUCHER, PaymentStatus.COMPLETED, currency, reference="VOUCHER-ABCD")
    other = PROVIDERS[(PROVIDERS.index(provider) + 1) % len(PROVIDERS)]
    return stored(customer, METHOD[other], PaymentStatus.PENDING, currency, provider=other)


def raw_item(payment: Payment) -> dict[str, Any]:
    return aws_client("dynamodb").get_item(
        TableName=settings().payments_table,
        Key={"PK": {"S": f"CUST#{payment.customer_id}"}, "SK": {"S": f"PAY#{payment.id}"}},
        ConsistentRead=True,
    )["Item"]


def snapshot(payment: Payment) -> tuple[Any, ...]:
    """Everything an event could change about a payment and its customer."""
    return (
        raw_item(payment),
        balances(payment.customer_id),
        sorted(i["SK"]["S"] for i in stored_items(payment.customer_id)),
    )


def event_about(provider: str, kind: str, names: Payment, object_ref: str, sim: Any) -> events.Delivery:
    """A signed `kind` event of `provider` about gateway object `object_ref`, whose ids of ours name `names`."""
    view = names.model_copy(update={"gateway_ref": object_ref, "currency": CURRENCY[provider], "amount_minor": AMOUNT})
    if provider != "paypal":
        return events.SIGNERS[provider](kind, view, amount_minor=AMOUNT if kind != "refund" else 2500)
    value = Money(AMOUNT, CURRENCY[provider]).format()
    ours = {"custom_id": f"{names.customer_id}:{names.id}", "invoice_id": names.id}
    amount = {"currency_code": CURRENCY[provider], "value": value}
    if kind == "approval":
        resource = {
            "id": object_ref,
            "status": "APPROVED",
            "intent": "CAPTURE",
            "purchase_units": [{"reference_id": names.id, **ours, "amount": amount}],
        }
        body, headers = sim.signed_paypal_event("CHECKOUT.ORDER.APPROVED", "checkout-order", resource)
    else:
        resource = {
            "id": uuid.uuid4().hex[:17].upper(),
            "status": "COMPLETED" if kind == "success" else "DENIED",
            "amount": amount,
            **ours,
            "supplementary_data": {"related_ids": {"order_id": object_ref}},
        }
        event_type = "PAYMENT.CAPTURE.COMPLETED" if kind == "success" else "PAYMENT.CAPTURE.DENIED"
        body, headers = sim.signed_paypal_event(event_type, "capture", resource)
    return events.Delivery(body, headers)


CASES = [(p, t, k) for p in PROVIDERS for t in TARGETS for k in KINDS[p]]


@pytest.mark.parametrize(("provider", "target", "kind"), CASES, ids=[f"{p}-{t}-{k}" for p, t, k in CASES])
def test_an_event_about_another_object_changes_nothing_of_the_payment_it_names(
    provider: str, target: str, kind: str, gateway_sim: Any
) -> None:
    named = target_of(target, provider)
    # (d): the other gateway's own reference, so only "the method belongs to the provider" can refuse it.
    object_ref = named.gateway_ref if target == "other_gateway" else new_object_ref(provider)
    if provider == "paystack" and target in ("bank_transfer", "voucher"):
        # A payer's own Paystack checkout can choose the reference: the very one we would derive for it.
        object_ref = reference_for(named.id)
    assert object_ref is not None
    before = snapshot(named)
    seen_by_sim = len(gateway_sim.objects()["paypal"]["orders"])

    delivery = event_about(provider, kind, named, object_ref, gateway_sim)
    status, body = deliver(provider, delivery)

    # Refund events of Stripe (a charge's metadata is empty) and Paystack carry no ids of ours: they name nothing.
    expected = "mismatch" if named.id.encode() in delivery.body else "unknown_payment"
    assert (status, body) == (200, {"received": True, "outcome": expected}), body
    assert snapshot(named) == before
    assert len(gateway_sim.objects()["paypal"]["orders"]) == seen_by_sim  # nothing was captured


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_event_about_our_object_settles_its_own_payment_whatever_else_it_names(provider: str, gateway_sim) -> None:
    """A payer who pays their own order but writes another payment's ids into the notes or metadata: the money
    is credited where it was paid, once, and the payment named is untouched."""
    payer = stored(fresh_customer(), METHOD[provider], PaymentStatus.PENDING, CURRENCY[provider], provider=provider)
    victim = target_of("bank_transfer", provider)
    before = snapshot(victim)
    assert payer.gateway_ref is not None
    status, body = deliver(provider, event_about(provider, "success", victim, payer.gateway_ref, gateway_sim))
    assert (status, body["outcome"]) == (200, "completed"), body
    assert snapshot(victim) == before
    paid = PaymentStore().require(payer.customer_id, payer.id, consistent=True)
    assert paid.status is PaymentStatus.COMPLETED and paid.gateway_ref == payer.gateway_ref
    assert balances(payer.customer_id) == {payer.currency: payer.money.format()}


@pytest.mark.parametrize("provider", ["stripe", "razorpay", "paystack", "nowpayments"])
def test_a_refund_about_another_object_never_debits_the_payment_it_names(provider: str, gateway_sim) -> None:
    victim = stored(fresh_customer(), METHOD[provider], PaymentStatus.COMPLETED, CURRENCY[provider], provider=provider)
    before = snapshot(victim)
    assert before[1] == {victim.currency: victim.money.format()}
    delivery = event_about(provider, "refund", victim, new_object_ref(provider), gateway_sim)
    status, body = deliver(provider, delivery)
    assert (status, body["outcome"]) == (200, "mismatch" if victim.id.encode() in delivery.body else "unknown_payment")
    assert snapshot(victim) == before


def test_a_stored_gateway_reference_is_never_replaced(customer: str) -> None:
    payment = stored(customer, PaymentMethod.RAZORPAY, PaymentStatus.PENDING, "INR", provider="razorpay")
    store = PaymentStore()
    before = raw_item(payment)
    again = store.record_gateway_object(
        payment, provider="razorpay", gateway_ref="order_Other", next_action=None, card_brand=None, card_last4=None
    )
    assert again is None
    assert raw_item(payment) == before
    assert store.find_by_gateway_ref("razorpay", "order_Other") is None
    assert store.claim_gateway_object(payment, provider="razorpay", hold_seconds=30, ref=lambda n: None) is None


def test_a_gateway_reference_pointer_never_moves_to_another_payment(customer: str) -> None:
    """Two payments can never be bound to one gateway object: the second recording is refused."""
    first = stored(customer, PaymentMethod.PAYSTACK, PaymentStatus.PENDING, "NGN", provider="paystack")
    assert first.gateway_ref is not None
    now = utcnow()
    second = first.model_copy(update={"id": new_payment_id(now), "gateway_ref": None, "gateway_refs": frozenset()})
    store = PaymentStore()
    store.add(second)
    claimed = store.claim_gateway_object(second, provider="paystack", hold_seconds=30, ref=lambda n: None)
    assert claimed is not None
    taken = store.record_gateway_object(
        claimed, provider="paystack", gateway_ref=first.gateway_ref, next_action=None, card_brand=None, card_last4=None
    )
    assert taken is None
    assert store.find_by_gateway_ref("paystack", first.gateway_ref).id == first.id  # type: ignore[union-attr]
    assert "gateway_ref" not in raw_item(second)


def test_mismatches_are_recorded_once_and_logged(customer: str, gateway_sim, caplog) -> None:
    named = target_of("bank_transfer", "razorpay")
    delivery = event_about("razorpay", "success", named, new_object_ref("razorpay"), gateway_sim)
    assert deliver("razorpay", delivery)[1]["outcome"] == "mismatch"
    assert deliver("razorpay", delivery)[1]["outcome"] == "duplicate"
    logged = [r for r in caplog.records if "not about the gateway object" in r.getMessage()]
    assert logged and logged[0].levelname == "ERROR"
    assert getattr(logged[0], "named_payment_id", None) == named.id
    assert json.loads(delivery.body)["payload"]["order"]["entity"]["receipt"] == named.id
