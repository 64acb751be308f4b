"""Gateway fees (docs/gateways.md#gateway-fees): each adapter reads the fee its gateway reports from real-shaped
payloads (absent or unreadable: None), and settlement keeps it on the payment in the payment's currency only: in the
completion's own write, or once later (Stripe's charge.updated) without moving the balance or publishing anything.
No network: `responses` stands in for Stripe's API where the adapter asks it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses

from payments import settlement
from payments.gateways.base import Capability, EventKind, GatewayEvent, StatusAnswer
from payments.gateways.paypal import PayPalGateway, PayPalSettings
from payments.gateways.paypal_models import Order
from payments.gateways.paystack import PaystackGateway, PaystackSettings
from payments.gateways.razorpay import RazorpayGateway, RazorpaySettings
from payments.gateways.stripe import StripeGateway, StripeSettings
from payments.ids import new_payment_id
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus
from payments.money import Money
from payments.settlement import Outcome
from payments.store.memory import MemoryStore

PAYMENT_ID = "pay_01JD0000000000000000000000"
CUSTOMER_ID = "cust-42"
STRIPE_API = "http://stripe.test"


# ---- PayPal: seller_receivable_breakdown.paypal_fee ------------------------------------------------------------


def paypal_capture(amount: str, currency: str, fee: Any = "absent") -> bytes:
    """PAYMENT.CAPTURE.COMPLETED as PayPal sends it (the sample of PayPal's webhook reference; docs/gateways.md has
    where the fee comes from), with the fee given."""
    breakdown: dict[str, Any] = {
        "gross_amount": {"currency_code": currency, "value": amount},
        "net_amount": {"currency_code": currency, "value": amount},
    }
    if fee != "absent":
        breakdown["paypal_fee"] = fee
    resource = {
        "id": "02335565G34798738",
        "status": "COMPLETED",
        "amount": {"currency_code": currency, "value": amount},
        "custom_id": f"{CUSTOMER_ID}:{PAYMENT_ID}",
        "invoice_id": PAYMENT_ID,
        "final_capture": True,
        "supplementary_data": {"related_ids": {"order_id": "1W5313654M9708630"}},
        "seller_receivable_breakdown": breakdown,
    }
    body = {
        "id": "WH-9YJ16368AL6057013-6DC39630JU8971338",
        "event_version": "1.0",
        "resource_type": "capture",
        "event_type": "PAYMENT.CAPTURE.COMPLETED",
        "resource": resource,
    }
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("amount", "currency", "fee", "expected"),
    [
        ("23.99", "USD", {"currency_code": "USD", "value": "1.36"}, Money(136, "USD")),
        ("10.00", "USD", {"currency_code": "USD", "value": "0.59"}, Money(59, "USD")),  # a decimal string, exactly
        ("1000", "JPY", {"currency_code": "JPY", "value": "45"}, Money(45, "JPY")),  # no decimals in yen
        ("10.00", "USD", "absent", None),
        ("10.00", "USD", None, None),
        ("10.00", "USD", {"currency_code": "USD", "value": 0.59}, None),  # a float is not PayPal's shape: no fee
        ("1000", "JPY", {"currency_code": "JPY", "value": "0.5"}, None),  # yen has no fractions: unreadable
        ("10.00", "USD", {"currency_code": "EUR", "value": "0.55"}, Money(55, "EUR")),  # read; settlement drops it
    ],
)
def test_paypal_capture_completed_carries_paypals_fee(amount: str, currency: str, fee: Any, expected: Any) -> None:
    event = PayPalGateway(PayPalSettings()).parse_event({}, paypal_capture(amount, currency, fee))
    assert (event.kind, event.money, event.fee) == (EventKind.SUCCESS, Money.parse(amount, currency), expected)


def test_paypal_capture_answer_and_reconciliation_carry_the_fee() -> None:
    capture = json.loads(paypal_capture("10.00", "USD", {"currency_code": "USD", "value": "0.59"}))["resource"]
    order = {
        "id": "1W5313654M9708630",
        "status": "COMPLETED",
        "purchase_units": [{"payments": {"captures": [capture]}}],
    }
    answer = PayPalGateway._order_answer(Order.model_validate(order))  # the capture call's answer, and reconciliation's
    assert (answer.kind, answer.money, answer.fee) == (EventKind.SUCCESS, Money(1000, "USD"), Money(59, "USD"))


# ---- Razorpay: payment entity fee (GST included) and tax -----------------------------------------------------------


def razorpay_event(event: str, **payment: Any) -> bytes:
    """payment.captured as Razorpay's docs show it (webhooks/payments.md), with `fee` and `tax`."""
    entity = {
        "id": "pay_DESlfW9H8K9uqM",
        "entity": "payment",
        "amount": 100,
        "currency": "INR",
        "status": "captured",
        "order_id": "order_DESlLckIVRkHWj",
        "method": "netbanking",
        "captured": True,
        "notes": [],
        "fee": 2,
        "tax": 0,
        "error_code": None,
        "created_at": 1567674599,
        **payment,
    }
    body = {"entity": "event", "event": event, "contains": ["payment"], "payload": {"payment": {"entity": entity}}}
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("payment", "expected"),
    [
        ({}, Money(2, "INR")),
        ({"amount": 500000, "fee": 11800, "tax": 1800}, Money(11800, "INR")),  # fee includes the 18% GST (tax)
        ({"amount": 10000, "currency": "KWD", "fee": 240, "tax": 40}, Money(240, "KWD")),  # fils: 0.240 KWD
        ({"amount": 1000, "currency": "JPY", "fee": 24, "tax": 4}, Money(24, "JPY")),  # whole yen
        ({"fee": None, "tax": None}, None),  # not captured yet: Razorpay says none
        ({"fee": "2"}, None),  # not integer subunits: no fee
    ],
)
def test_razorpay_payment_captured_carries_the_fee_with_gst(payment: dict[str, Any], expected: Any) -> None:
    gateway = RazorpayGateway(RazorpaySettings(), session=requests.Session())
    event = gateway.parse_event({"x-razorpay-event-id": "evt_1"}, razorpay_event("payment.captured", **payment))
    assert (event.kind, event.fee) == (EventKind.SUCCESS, expected)


def test_razorpay_order_paid_reads_the_fee_from_its_payment_entity() -> None:
    gateway = RazorpayGateway(RazorpaySettings(), session=requests.Session())
    assert gateway.parse_event({}, razorpay_event("order.paid", fee=236, tax=36)).fee == Money(236, "INR")


# ---- Paystack: charge.success data.fees ------------------------------------------------------------------------------


def paystack_charge(**data: Any) -> bytes:
    """charge.success as Paystack's own sample shows it (PaystackOSS/doc-code-snippets), `fees` in subunits."""
    body = {
        "id": 4677002219,
        "domain": "test",
        "status": "success",
        "reference": "pay-01JD0000000000000000000000",
        "amount": 10000,
        "currency": "KES",
        "gateway_response": "Successful",
        "channel": "card",
        "metadata": {"payment_id": PAYMENT_ID, "customer_id": CUSTOMER_ID},
        "fees": 290,
        **data,
    }
    return json.dumps({"event": "charge.success", "data": body}).encode()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, Money(290, "KES")),
        ({"amount": 500000, "currency": "NGN", "fees": 200000}, Money(200000, "NGN")),  # capped: NGN 2,000 in kobo
        ({"fees": None}, None),
        ({"fees": 2.9}, None),  # not integer subunits
    ],
)
def test_paystack_charge_success_carries_its_fees(data: dict[str, Any], expected: Any) -> None:
    gateway = PaystackGateway(PaystackSettings(secret_key="sk_test_x"), session=requests.Session())
    event = gateway.parse_event({}, paystack_charge(**data))
    assert (event.kind, event.fee) == (EventKind.SUCCESS, expected)


def test_paystack_without_fees_reads_as_none() -> None:
    body = json.loads(paystack_charge())
    del body["data"]["fees"]
    gateway = PaystackGateway(PaystackSettings(secret_key="sk_test_x"), session=requests.Session())
    assert gateway.parse_event({}, json.dumps(body).encode()).fee is None


# ---- Stripe: the charge's balance transaction --------------------------------------------------------------------


def stripe_charge_event(event_type: str, balance_transaction: Any, **extra: Any) -> bytes:
    charge = {
        "id": "ch_3NvKgBIGBnsLynRr0ZyvP9AN",
        "object": "charge",
        "amount": 7200,
        "currency": "usd",
        "payment_intent": "pi_3NvKgBIGBnsLynRr09Ny3Heu",
        "balance_transaction": balance_transaction,
        "metadata": {},
    }
    data: dict[str, Any] = {"object": charge, **extra}
    return json.dumps({"id": "evt_3Nv", "object": "event", "type": event_type, "data": data}).encode()


def stripe_gateway() -> StripeGateway:
    return StripeGateway(StripeSettings(api_base=STRIPE_API, secret_key="sk_test_fake", webhook_secret="whsec_x"))


def balance_transaction(fee: int, currency: str = "usd") -> dict[str, Any]:
    return {
        "id": "txn_3NvKgBIGBnsLynRr0KbYEz76",
        "object": "balance_transaction",
        "amount": 7200,
        "currency": currency,
        "fee": fee,
        "fee_details": [{"amount": fee, "currency": currency, "type": "stripe_fee"}],
        "net": 7200 - fee,
        "reporting_category": "charge",
        "source": "ch_3NvKgBIGBnsLynRr0ZyvP9AN",
        "type": "charge",
    }


TXN_URL = f"{STRIPE_API}/v1/balance_transactions/txn_3NvKgBIGBnsLynRr0KbYEz76"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (balance_transaction(239), Money(239, "USD")),  # 2.9% + 30 cents of 72.00
        (balance_transaction(2500, "jpy"), Money(2500, "JPY")),  # zero-decimal: whole yen
        (balance_transaction(240, "kwd"), Money(240, "KWD")),  # thousandths, as ISO: 0.240 KWD
        (balance_transaction(5000, "isk"), Money(50, "ISK")),  # Stripe keeps two decimals for ISK: 50 krónur
    ],
)
def test_stripe_charge_updated_with_its_balance_transaction_asks_for_the_fee(answer: Any, expected: Money) -> None:
    body = stripe_charge_event(
        "charge.updated", "txn_3NvKgBIGBnsLynRr0KbYEz76", previous_attributes={"balance_transaction": None}
    )
    with responses.RequestsMock() as api:
        api.get(TXN_URL, json=answer)
        event = stripe_gateway().parse_event({}, body)
    assert (event.kind, event.gateway_ref, event.fee) == (EventKind.FEE, "pi_3NvKgBIGBnsLynRr09Ny3Heu", expected)


def test_stripe_fee_that_cannot_be_read_leaves_it_unknown_once() -> None:
    body = stripe_charge_event("charge.succeeded", "txn_3NvKgBIGBnsLynRr0KbYEz76")
    with responses.RequestsMock() as api:
        api.get(TXN_URL, status=500, json={"error": {"message": "boom"}})
        event = stripe_gateway().parse_event({}, body)
        assert len(api.calls) == 1  # no retries on the webhook's path
    assert (event.kind, event.fee) == (EventKind.FEE, None)


def test_stripe_expanded_balance_transaction_needs_no_call() -> None:
    body = stripe_charge_event("charge.succeeded", balance_transaction(239))
    with responses.RequestsMock():  # any call would fail: none is made
        event = stripe_gateway().parse_event({}, body)
    assert event.fee == Money(239, "USD")


@pytest.mark.parametrize(
    "body",
    [
        stripe_charge_event("charge.succeeded", None),  # no balance transaction yet
        stripe_charge_event("charge.updated", "txn_3NvKgBIGBnsLynRr0KbYEz76", previous_attributes={"description": "x"}),
    ],
)
def test_stripe_charge_events_not_about_the_fee_are_ignored_without_a_call(body: bytes) -> None:
    with responses.RequestsMock():
        event = stripe_gateway().parse_event({}, body)
    assert (event.kind, event.fee) == (EventKind.IGNORED, None)


def test_stripe_payment_intent_succeeded_makes_no_call_and_carries_no_fee() -> None:
    intent = {"id": "pi_1", "amount_received": 2000, "currency": "usd", "latest_charge": "ch_1", "metadata": {}}
    body = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": intent}}).encode()
    with responses.RequestsMock():
        event = stripe_gateway().parse_event({}, body)
    assert (event.kind, event.fee) == (EventKind.SUCCESS, None)


# ---- settlement ------------------------------------------------------------------------------------------------------


class Adapter:
    name = "paypal"
    capabilities = frozenset({Capability.CAPTURE, Capability.RECONCILE})

    def __init__(self, answer: StatusAnswer) -> None:
        self.answer = answer

    def capture(self, gateway_ref: str, request_id: str) -> StatusAnswer:
        return self.answer

    def fetch_status(self, gateway_ref: str, payment_id: str) -> StatusAnswer:
        return self.answer


USD = Money(1000, "USD")


def stored(store: MemoryStore, status: PaymentStatus = PaymentStatus.PENDING, **extra: Any) -> Payment:
    now = datetime.now(UTC)
    payment = Payment(
        id=new_payment_id(now),
        customer_id=CUSTOMER_ID,
        created_at=now,
        completed_at=now if status is PaymentStatus.COMPLETED else None,
        amount_minor=USD.minor,
        currency=USD.currency,
        status=status,
        method=PaymentMethod.PAYPAL,
        gateway_ref="ORDER1",
        history=(HistoryEntry(at=now, status=status, by="customer:c"),),
        **extra,
    )
    assert store.add(payment)
    return payment


def gateway_event(payment: Payment, kind: EventKind, event_id: str, **fields: Any) -> GatewayEvent:
    return GatewayEvent(
        provider="paypal",
        event_id=event_id,
        event_type=f"test.{kind.value}",
        kind=kind,
        payment_id=payment.id,
        customer_id=payment.customer_id,
        gateway_ref="ORDER1",
        **fields,
    )


def apply(store: MemoryStore, event: GatewayEvent, answer: StatusAnswer | None = None) -> Outcome:
    adapter = Adapter(answer or StatusAnswer(EventKind.IGNORED))
    return settlement.apply_event(store, adapter, event).outcome  # type: ignore[arg-type]


def test_completion_stores_the_fee_in_its_own_write_and_a_redelivery_keeps_it() -> None:
    store = MemoryStore()
    payment = stored(store)
    success = gateway_event(payment, EventKind.SUCCESS, "WH-1", money=USD, fee=Money(59, "USD"))
    assert apply(store, success) is Outcome.COMPLETED
    after = store.require(CUSTOMER_ID, payment.id)
    assert (after.status, after.gateway_fee_minor, after.to_api().gateway_fee) == (PaymentStatus.COMPLETED, 59, "0.59")
    assert store.balances(CUSTOMER_ID) == [USD]  # the amount counts, not the amount less the fee
    assert len(store.tables.outbox) == 1  # payment.completed, once
    (published,) = store.tables.outbox.values()
    assert json.loads(published.body)["gateway_fee"] == "0.59"
    assert apply(store, success) is Outcome.DUPLICATE
    later = gateway_event(payment, EventKind.SUCCESS, "WH-2", money=USD, fee=Money(70, "USD"))
    assert apply(store, later) is Outcome.UNCHANGED
    assert store.require(CUSTOMER_ID, payment.id).gateway_fee_minor == 59


def test_a_fee_in_another_currency_is_not_recorded() -> None:
    store = MemoryStore()
    payment = stored(store)
    success = gateway_event(payment, EventKind.SUCCESS, "WH-1", money=USD, fee=Money(55, "EUR"))
    assert apply(store, success) is Outcome.COMPLETED
    assert store.require(CUSTOMER_ID, payment.id).gateway_fee_minor is None
    assert "gateway_fee" not in store.require(CUSTOMER_ID, payment.id).to_api().model_dump(exclude_none=True)


def test_the_capture_answer_carries_its_fee_into_the_completion() -> None:
    store = MemoryStore()
    payment = stored(store)
    answer = StatusAnswer(EventKind.SUCCESS, money=USD, fee=Money(59, "USD"))
    assert apply(store, gateway_event(payment, EventKind.CAPTURE, "WH-A", money=USD), answer) is Outcome.COMPLETED
    assert store.require(CUSTOMER_ID, payment.id).gateway_fee_minor == 59


def test_a_later_fee_is_recorded_once_without_moving_the_balance_or_publishing() -> None:
    store = MemoryStore()
    payment = stored(store)
    assert apply(store, gateway_event(payment, EventKind.SUCCESS, "evt_pi", money=USD)) is Outcome.COMPLETED
    before = store.require(CUSTOMER_ID, payment.id)
    published = dict(store.tables.outbox)
    fee = gateway_event(payment, EventKind.FEE, "evt_ch", fee=Money(59, "USD"))

    assert apply(store, fee) is Outcome.FEE_RECORDED
    after = store.require(CUSTOMER_ID, payment.id)
    assert after.gateway_fee_minor == 59
    assert after.model_copy(update={"gateway_fee_minor": None}) == before  # nothing else changed
    assert store.balances(CUSTOMER_ID) == [USD]
    assert store.tables.outbox == published  # a fee publishes nothing

    assert apply(store, fee) is Outcome.DUPLICATE
    other = gateway_event(payment, EventKind.FEE, "evt_ch2", fee=Money(70, "USD"))
    assert apply(store, other) is Outcome.UNCHANGED  # the first fee stays
    assert store.require(CUSTOMER_ID, payment.id).gateway_fee_minor == 59
    assert apply(store, gateway_event(payment, EventKind.FEE, "evt_ch3", fee=Money(55, "EUR"))) is Outcome.IGNORED
    assert apply(store, gateway_event(payment, EventKind.FEE, "evt_ch4")) is Outcome.IGNORED  # fee unknown


def test_a_fee_before_the_success_is_kept_by_the_completion() -> None:
    store = MemoryStore()
    payment = stored(store)
    assert apply(store, gateway_event(payment, EventKind.FEE, "evt_ch", fee=Money(59, "USD"))) is Outcome.FEE_RECORDED
    assert store.require(CUSTOMER_ID, payment.id).status is PaymentStatus.PENDING
    assert store.tables.outbox == {}
    assert apply(store, gateway_event(payment, EventKind.SUCCESS, "evt_pi", money=USD)) is Outcome.COMPLETED
    assert store.require(CUSTOMER_ID, payment.id).gateway_fee_minor == 59


def test_a_fee_event_for_a_payment_it_is_not_bound_to_changes_nothing() -> None:
    store = MemoryStore()
    payment = stored(store)
    stray = GatewayEvent(
        provider="paypal",
        event_id="evt_x",
        event_type="test.fee",
        kind=EventKind.FEE,
        payment_id=payment.id,
        customer_id=CUSTOMER_ID,
        gateway_ref="ORDER-OTHER",
        fee=Money(59, "USD"),
    )
    assert apply(store, stray) is Outcome.MISMATCH
    assert store.require(CUSTOMER_ID, payment.id).gateway_fee_minor is None
