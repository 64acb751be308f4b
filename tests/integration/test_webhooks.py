"""POST /webhooks/{provider}: verified, exactly once, in any order; checked on the answer AND the stored state."""

from __future__ import annotations

import hashlib
import hmac
import random
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.defaults import gateway_credential
from payments import registry
from payments.ids import new_payment_id
from payments.models import HistoryEntry, Payment, PaymentStatus, utcnow
from payments.store import PaymentStore
from tests.integration import webhook_events as events
from tests.integration.helpers import balances, deliver, stored_payments, with_gateway_object

pytestmark = pytest.mark.usefixtures("aws")
METHODS = {entry.provider: entry.method for entry in registry.GATEWAYS}
CURRENCY = {"stripe": "EUR", "razorpay": "INR", "paystack": "NGN", "nowpayments": "USD"}
PROVIDERS = sorted(events.SIGNERS)


def pending_payment(provider: str, customer: str, minor: int = 12345) -> Payment:
    """A payment as Make Payment leaves it after the gateway's create call."""
    now = utcnow()
    payment = Payment(
        id=new_payment_id(now),
        customer_id=customer,
        created_at=now,
        amount_minor=minor,
        currency=CURRENCY[provider],
        status=PaymentStatus.PENDING,
        method=METHODS[provider],
        description="Top-up",
        history=(HistoryEntry(at=now, status=PaymentStatus.PENDING, by="customer:u"),),
    )
    store = PaymentStore()
    store.add(payment)
    ref = {
        "stripe": "pi_" + uuid.uuid4().hex[:20],
        "razorpay": "order_" + uuid.uuid4().hex[:14],
        "paystack": payment.id.replace("_", "-"),
        "nowpayments": str(uuid.uuid4().int % 10**10),
    }[provider]
    return with_gateway_object(payment, provider, ref, store)


def status_of(payment: Payment) -> str:
    return PaymentStore().require(payment.customer_id, payment.id, consistent=True).status.value


def formatted(payment: Payment, sign: int = 1) -> str:
    return payment.money.__class__(sign * payment.amount_minor, payment.currency).format()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_success_completes_once_and_credits_balance(provider: str, customer: str) -> None:
    payment = pending_payment(provider, customer)
    delivery = events.SIGNERS[provider]("success", payment)
    status, body = deliver(provider, delivery)
    assert (status, body.get("outcome")) == (200, "completed"), body
    stored = PaymentStore().require(customer, payment.id, consistent=True)
    assert stored.status is PaymentStatus.COMPLETED and stored.completed_at is not None
    assert stored.history[-1].by.startswith(f"gateway:{provider}:")
    assert balances(customer) == {payment.currency: formatted(payment)}
    for _ in range(3):  # duplicates: 2xx, nothing changes
        status, body = deliver(provider, delivery, base64_body=True)
        assert (status, body["outcome"]) == (200, "duplicate")
    assert balances(customer) == {payment.currency: formatted(payment)}
    assert len(PaymentStore().require(customer, payment.id).history) == 2


@pytest.mark.parametrize("provider", ["stripe", "razorpay", "nowpayments"])
def test_failure_cancels_then_success_completes_then_failure_is_refused(provider: str, customer: str) -> None:
    payment = pending_payment(provider, customer)
    status, body = deliver(provider, events.SIGNERS[provider]("failure", payment))
    assert (status, body["outcome"], status_of(payment)) == (200, "cancelled", "cancelled")
    assert balances(customer) == {}
    status, body = deliver(provider, events.SIGNERS[provider]("success", payment))
    assert (status, body["outcome"], status_of(payment)) == (200, "completed", "completed")
    status, body = deliver(provider, events.SIGNERS[provider]("failure", payment))
    assert (status, body["outcome"], status_of(payment)) == (200, "refused", "completed")
    assert balances(customer) == {payment.currency: formatted(payment)}


def test_paystack_has_no_failure_event_so_the_payment_stays_pending(customer: str) -> None:
    payment = pending_payment("paystack", customer)
    status, body = deliver("paystack", events.paystack("failure", payment))
    assert (status, body["outcome"], status_of(payment)) == (200, "ignored", "pending")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_refund_is_a_new_negative_payment(provider: str, customer: str) -> None:
    payment = pending_payment(provider, customer, minor=10000)
    deliver(provider, events.SIGNERS[provider]("success", payment))
    refund = events.SIGNERS[provider]("refund", payment, amount_minor=2500)
    status, body = deliver(provider, refund)
    assert (status, body["outcome"]) == (200, "refunded")
    assert deliver(provider, refund)[1]["outcome"] == "duplicate"
    rows = [p for p in stored_payments(customer) if p["method"]["S"] == "refund"]
    assert len(rows) == 1
    assert rows[0]["amount_minor"]["N"] == "-2500" and rows[0]["refund_of"]["S"] == payment.id
    assert rows[0]["status"]["S"] == "completed"
    assert balances(customer) == {payment.currency: payment.money.__class__(7500, payment.currency).format()}
    assert status_of(payment) == "completed"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_underpayment_changes_nothing(provider: str, customer: str) -> None:
    payment = pending_payment(provider, customer, minor=10000)
    status, body = deliver(provider, events.SIGNERS[provider]("success", payment, amount_minor=100))
    assert (status, body["outcome"], status_of(payment)) == (200, "mismatch", "pending")
    assert balances(customer) == {}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("attack", ["tampered", "wrong_secret", "missing_header"])
def test_forged_webhooks_are_refused_and_change_nothing(provider: str, attack: str, customer: str) -> None:
    payment = pending_payment(provider, customer)
    if attack == "wrong_secret":
        delivery = events.SIGNERS[provider]("success", payment, secret="not-the-secret")
    else:
        delivery = events.SIGNERS[provider]("success", payment)
    if attack == "tampered":  # the amount changed after signing (NOWPayments signs values, not bytes)
        token = payment.money.format().encode() if provider == "nowpayments" else str(payment.amount_minor).encode()
        assert token in delivery.body
        delivery.body = delivery.body.replace(token, token[:-1] + b"9", 1)
    if attack == "missing_header":
        header = events.SIGNATURE_HEADERS[provider]
        delivery.headers = {k: v for k, v in delivery.headers.items() if k != header}
    status, body = deliver(provider, delivery)
    assert status in (400, 401), body
    assert body["message"]
    assert status_of(payment) == "pending"
    assert balances(customer) == {}


def test_stripe_timestamp_outside_tolerance_is_refused(customer: str) -> None:
    payment = pending_payment("stripe", customer)
    import time

    stale = events.stripe("success", payment, timestamp=int(time.time()) - 301)
    status, body = deliver("stripe", stale)
    assert status in (400, 401) and body["message"]
    assert status_of(payment) == "pending"
    fresh = events.stripe("success", payment, timestamp=int(time.time()) - 250)
    assert deliver("stripe", fresh)[0] == 200
    assert status_of(payment) == "completed"


def test_unknown_payment_is_recorded_not_retried(customer: str) -> None:
    ghost = pending_payment("razorpay", customer)
    ghost = ghost.model_copy(update={"id": new_payment_id(utcnow()), "gateway_ref": "order_unknown"})
    status, body = deliver("razorpay", events.razorpay("success", ghost, event_id="evt_ghost_" + customer))
    assert (status, body["outcome"]) == (200, "unknown_payment")
    status, body = deliver("razorpay", events.razorpay("success", ghost, event_id="evt_ghost_" + customer))
    assert (status, body["outcome"]) == (200, "duplicate")


def test_unknown_provider_is_404() -> None:
    status, body = deliver("bitcoin", events.Delivery(b"{}", {}))
    assert status == 404 and "bitcoin" in body["message"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_garbage_body_with_valid_signature_is_400(provider: str, customer: str) -> None:
    """A correctly signed body that is not the gateway's event shape: 400, nothing stored."""
    delivery = events.SIGNERS[provider]("success", pending_payment(provider, customer))
    garbage = events.resign(provider, delivery, b"[1,2,3]")
    status, answer = deliver(provider, garbage)
    assert 400 <= status < 500
    assert answer["message"]


def test_storm_of_duplicated_shuffled_concurrent_events() -> None:
    """Many payments, every event delivered several times, shuffled, from parallel threads."""
    rng = random.Random(7)
    customer = "storm-" + uuid.uuid4().hex[:8]
    plan = []  # (payment, final status, expected counted amount)
    deliveries = []
    for i in range(24):
        provider = PROVIDERS[i % 3]
        payment = pending_payment(provider, customer + "-" + provider, minor=1000 + i)
        fate = rng.choice(["success", "failure", "both"]) if provider != "paystack" else "success"
        evs = []
        if fate in ("success", "both"):
            evs.append(events.SIGNERS[provider]("success", payment))
        if fate in ("failure", "both"):
            evs.append(events.SIGNERS[provider]("failure", payment))
        final = "cancelled" if fate == "failure" else "completed"
        plan.append((payment, final))
        deliveries += [(provider, e) for e in evs for _ in range(rng.randint(2, 4))]
    rng.shuffle(deliveries)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda d: deliver(*d), deliveries))
    assert {s for s, _ in results} == {200}
    for payment, final in plan:
        assert status_of(payment) == final, payment.id
    for provider in PROVIDERS:
        owner = customer + "-" + provider
        expected = sum(p.amount_minor for p, f in plan if f == "completed" and p.customer_id == owner)
        currency = CURRENCY[provider]
        assert balances(owner).get(currency, _fmt(0, currency)) == _fmt(expected, currency)
        completed_rows = [r for r in stored_payments(owner) if r["status"]["S"] == "completed"]
        assert sum(int(r["amount_minor"]["N"]) for r in completed_rows) == expected


def _fmt(minor: int, currency: str) -> str:
    from payments.money import Money

    return Money(minor, currency).format()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["success", "failure", "refund", "replay"]), st.integers(1, 40)),
        min_size=1,
        max_size=12,
    )
)
def test_random_event_sequences_keep_status_rules_and_balance(steps) -> None:
    """Whatever gateway events arrive, in whatever order and however often: the stored status obeys the
    rules (completed is final; cancelled -> completed only on success) and the balance equals the sum of
    completed payments, refunds included."""
    customer = "prop-" + uuid.uuid4().hex[:10]
    payment = pending_payment("razorpay", customer, minor=10000)
    sent: list[events.Delivery] = []
    status = "pending"
    for kind, amount in steps:
        if kind == "replay" and sent:
            delivery = sent[amount % len(sent)]
        elif kind == "refund":
            delivery = events.razorpay("refund", payment, amount_minor=amount * 10)
        else:
            delivery = events.razorpay(kind if kind != "replay" else "success", payment)
        sent.append(delivery)
        before = len(stored_payments(customer))
        code, _ = deliver("razorpay", delivery)
        if code == 409:  # a refund of a payment not settled yet: nothing recorded, the gateway resends it later
            assert status == "pending" and len(stored_payments(customer)) == before
        else:
            assert code == 200
        now = status_of(payment)
        assert not (status == "completed" and now != "completed")
        status = now
    rows = stored_payments(customer)
    expected = sum(int(r["amount_minor"]["N"]) for r in rows if r["status"]["S"] == "completed")
    assert balances(customer).get("INR", "0.00") == _fmt(expected, "INR")
    refunds = [r for r in rows if r["method"]["S"] == "refund"]
    assert all(r["refund_of"]["S"] == payment.id and int(r["amount_minor"]["N"]) < 0 for r in refunds)
    assert not refunds or status_of(payment) == "completed"  # only money that counted is ever refunded
    assert -sum(int(r["amount_minor"]["N"]) for r in refunds) <= 10000  # never refund more than was paid


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_refund_reported_before_the_payment_completed_waits_for_it_and_then_counts_once(
    provider: str, customer: str
) -> None:
    """Events come in any order: a refund of a pending payment must not debit money that never arrived, and
    must not be lost either. It is not recorded, and answered 409 so the gateway delivers it again."""
    payment = pending_payment(provider, customer, minor=10000)
    refund = events.SIGNERS[provider]("refund", payment, amount_minor=2500)
    status, body = deliver(provider, refund)
    assert status == 409 and "not settled yet" in body["message"], body
    assert [p["method"]["S"] for p in stored_payments(customer)] == [payment.method.value]
    assert balances(customer) == {}

    assert deliver(provider, events.SIGNERS[provider]("success", payment))[1]["outcome"] == "completed"
    status, body = deliver(provider, refund)  # the gateway's retry
    assert (status, body["outcome"]) == (200, "refunded"), body
    assert deliver(provider, refund)[1]["outcome"] == "duplicate"
    assert balances(customer) == {payment.currency: formatted(payment.model_copy(update={"amount_minor": 7500}))}


@pytest.mark.parametrize("provider", ["stripe", "razorpay", "nowpayments"])
def test_a_refund_of_a_cancelled_payment_never_debits(provider: str, customer: str) -> None:
    payment = pending_payment(provider, customer, minor=10000)
    assert deliver(provider, events.SIGNERS[provider]("failure", payment))[1]["outcome"] == "cancelled"
    refund = events.SIGNERS[provider]("refund", payment, amount_minor=2500)
    status, body = deliver(provider, refund)
    assert (status, body["outcome"]) == (200, "refused"), body
    assert deliver(provider, refund)[1]["outcome"] == "duplicate"
    assert [p["method"]["S"] for p in stored_payments(customer)] == [payment.method.value]
    assert balances(customer) == {}
    assert status_of(payment) == "cancelled"


DEEP = b'{"a":' * 1500 + b"1" + b"}" * 1500
PAYPAL_HEADERS = {
    name: "x"
    for name in (
        "PAYPAL-AUTH-ALGO",
        "PAYPAL-CERT-URL",
        "PAYPAL-TRANSMISSION-ID",
        "PAYPAL-TRANSMISSION-SIG",
        "PAYPAL-TRANSMISSION-TIME",
    )
}


@pytest.mark.parametrize("provider", [*PROVIDERS, "paypal"])
@pytest.mark.parametrize("signed", [False, True], ids=["junk-signature", "valid-signature"])
def test_deeply_nested_webhook_bodies_are_refused_never_a_5xx(provider: str, signed: bool, gateway_sim) -> None:
    """JSON nested 1,500 deep made the parser raise RecursionError (500), before or after the signature check."""
    if provider == "paypal":
        delivery = events.Delivery(DEEP, PAYPAL_HEADERS)  # PayPal is asked about a signature only for JSON
    elif signed and provider == "nowpayments":  # the body is its own canonical form: one key, no spaces
        key = gateway_credential("NOWPAYMENTS_IPN_SECRET").encode()
        delivery = events.Delivery(DEEP, {"x-nowpayments-sig": hmac.new(key, DEEP, hashlib.sha512).hexdigest()})
    elif signed:
        delivery = events.resign(provider, events.Delivery(b"", {"X-Razorpay-Event-Id": "evt_deep"}), DEEP)
    else:
        delivery = events.Delivery(DEEP, {events.SIGNATURE_HEADERS[provider]: "0" * 64})
    status, body = deliver(provider, delivery)
    assert status in (400, 401), body
    assert body["message"]
