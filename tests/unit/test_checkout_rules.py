"""Make Payment's rules (docs/make-payment.md) against the in-memory store and a scripted gateway: one payment per
Idempotency-Key, one gateway object per payment whatever retries happen (the claim), what each answer means, and
voucher redemption with its attempt allowance. No AWS, no gateway."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from payments import checkout, registry, vouchers
from payments.checkout import Checkout, Command
from payments.errors import InvalidInput, RetryLater, TooManyRequests, UpstreamError
from payments.gateways import adapter_class
from payments.gateways.base import (
    CreateRequest,
    CreateResult,
    GatewayInputRejected,
    GatewayUnavailable,
)
from payments.identity import Caller, Group
from payments.ids import new_payment_id
from payments.models import Payment, PaymentMethod, PaymentStatus
from payments.money import Money
from payments.status import Cause
from payments.store.memory import MemoryStore

CUSTOMER = "cust-1"


def _object_name(provider: str) -> str:
    """The real adapter's: how a payment's description names the gateway object."""
    return str(adapter_class(provider).object_name) if provider in registry.GATEWAY_BY_PROVIDER else ""


class Gateway:
    """A gateway whose answers a test scripts: `answers` are returned (or raised) in turn."""

    def __init__(self, name: str, *answers: CreateResult | Exception, chooses_refs: bool = False) -> None:
        self.name = name
        self.object_name = _object_name(name)
        self.answers = list(answers)
        self.requests: list[CreateRequest] = []
        self.chooses_refs = chooses_refs

    def check_currency(self, money: Money) -> None:
        pass

    def reference_for_attempt(self, payment_id: str, attempt: int) -> str | None:
        return f"{payment_id}.{attempt}" if self.chooses_refs else None

    def recover(self, request: CreateRequest) -> CreateResult | None:
        return None

    def create(self, request: CreateRequest) -> CreateResult:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def resume(self, gateway_ref: str, stored_next_action: dict[str, Any] | None) -> CreateResult:
        return CreateResult(gateway_ref=gateway_ref, next_action=stored_next_action)


def command(method: str, key: str = "key-1", **extra: Any) -> Command:
    values: dict[str, Any] = {
        "customer_id": CUSTOMER,
        "idempotency_key": key,
        "method": method,
        "money": Money(4200, "USD"),
        "currency": "USD",
        "description": "Card payment",
        "email": "payer@example.com",
        "actor": "customer:c",
        "card": None,
        "payment_method": "pm_card_visa" if method == "credit_card" else None,
        "voucher_code": None,
        "fingerprint": "f",
        "described": False,
    }
    return Command(**(values | extra))


def run(store: MemoryStore, gateway: Gateway, cmd: Command) -> checkout.Outcome:
    return Checkout(store, gateway_for=lambda provider: gateway).run(cmd)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


# ---- one payment per Idempotency-Key ------------------------------------------------------------------


def test_a_bank_transfer_is_put_once_per_key_with_a_unique_reference(store: MemoryStore) -> None:
    first = run(store, Gateway("none"), command("bank_transfer"))
    again = run(store, Gateway("none"), command("bank_transfer"))
    other = run(store, Gateway("none"), command("bank_transfer", key="key-2"))

    assert first.declined is again.declined is None
    assert first.payment.id == again.payment.id != other.payment.id
    assert first.next_action and other.next_action
    reference = first.next_action["reference"]
    assert (first.payment.reference, first.payment.description) == (reference, f"Bank transfer {reference}")
    assert set(store.tables.bank_references) == {reference, other.next_action["reference"]}


def test_a_card_settled_at_once_completes_and_a_retry_gets_the_first_answer(store: MemoryStore) -> None:
    gateway = Gateway("stripe", CreateResult("pi_1", PaymentStatus.COMPLETED, card_brand="visa", card_last4="4242"))

    first = run(store, gateway, command("credit_card"))
    again = run(store, gateway, command("credit_card"))

    assert (first.declined, first.payment.status, first.next_action) == (None, PaymentStatus.COMPLETED, None)
    assert first.payment.description == "Visa card ending 4242"
    assert again.payment.id == first.payment.id
    assert len(gateway.requests) == 1  # the retry never reached the gateway
    assert store.balances(CUSTOMER) == [Money(4200, "USD")]
    stored = store.require(CUSTOMER, first.payment.id)
    assert (stored.gateway_ref, stored.gateway_claim_until) == ("pi_1", None)
    assert store.find_by_gateway_ref("stripe", "pi_1") == stored


def test_a_decline_is_402_and_so_is_every_retry(store: MemoryStore) -> None:
    gateway = Gateway("stripe", CreateResult("pi_2", PaymentStatus.CANCELLED, failure_reason="card_declined"))

    first = run(store, gateway, command("credit_card"))
    again = run(store, gateway, command("credit_card"))

    assert (
        first.declined
        == again.declined
        == (
            "Your bank or the payment provider declined the payment. Try another card or payment method, or contact "
            "your bank."
        )
    )
    assert first.payment.status is again.payment.status is PaymentStatus.CANCELLED
    assert first.payment.failure_reason == "card_declined"
    assert store.balances(CUSTOMER) == []


def test_a_refused_field_closes_the_payment_with_a_422_that_every_retry_repeats(store: MemoryStore) -> None:
    gateway = Gateway("stripe", GatewayInputRejected("no such PaymentMethod", "payment_method"))

    with pytest.raises(InvalidInput) as first:
        run(store, gateway, command("credit_card"))
    with pytest.raises(InvalidInput) as again:
        run(store, gateway, command("credit_card"))

    assert first.value.field == again.value.field == "payment_method"
    [payment] = store.payments_of(CUSTOMER)
    assert (payment.status, payment.failure_field, payment.gateway_claim_until) == (
        PaymentStatus.CANCELLED,
        "payment_method",
        None,
    )


def test_a_gateway_error_releases_the_claim_so_the_retry_creates_at_once(store: MemoryStore) -> None:
    gateway = Gateway(
        "razorpay",
        GatewayUnavailable("razorpay timed out"),
        CreateResult("order_1", next_action={"type": "razorpay_checkout", "order_id": "order_1"}),
    )

    with pytest.raises(UpstreamError):
        run(store, gateway, command("razorpay"))
    [payment] = store.payments_of(CUSTOMER)
    assert payment.gateway_claim_until is None
    assert store.tables.last_errors[(CUSTOMER, payment.id)] == "razorpay timed out"

    answer = run(store, gateway, command("razorpay"))
    assert answer.declined is None and answer.next_action
    assert answer.next_action["order_id"] == "order_1"
    assert [r.attempt for r in gateway.requests] == [1, 2]
    assert answer.payment.description == "Razorpay order order_1"


# ---- one gateway object per payment: the claim ------------------------------------------------------------


def pending(store: MemoryStore, *, hold_seconds: float = 30, first_ref: str | None = None) -> Payment:
    now = datetime.now(UTC)
    payment = Payment(
        id=new_payment_id(now),
        customer_id=CUSTOMER,
        created_at=now,
        amount_minor=4200,
        currency="USD",
        status=PaymentStatus.PENDING,
        method=PaymentMethod.PAYSTACK,
        gateway_attempts=1,
        gateway_claim_until=store.claim_until(hold_seconds),
        gateway_refs=frozenset({first_ref}) if first_ref else frozenset(),
    )
    put, created = store.put_pending(
        payment, f"req-{payment.id}", gateway_ref=("paystack", first_ref) if first_ref else None
    )
    assert created
    return put


def claim(store: MemoryStore, payment: Payment, ref: Callable[[int], str | None] = lambda n: None) -> Payment | None:
    return store.claim_gateway_object(payment, provider="paystack", hold_seconds=30, ref=ref)


def test_nobody_takes_a_live_claim_over(store: MemoryStore) -> None:
    payment = pending(store)
    assert claim(store, payment) is None


def test_an_expired_claim_is_taken_over_once_with_the_next_attempt(store: MemoryStore) -> None:
    payment = pending(store, hold_seconds=-1, first_ref="ref.1")

    taken = claim(store, payment, lambda attempt: f"ref.{attempt}")

    assert taken is not None and taken.gateway_attempts == 2
    assert taken.gateway_refs == {"ref.1", "ref.2"}  # money paid into either object counts
    assert claim(store, payment) is None  # the same read cannot claim twice
    assert store.find_by_gateway_ref("paystack", "ref.2") == store.require(CUSTOMER, payment.id)


def test_a_gateway_object_is_recorded_once_and_a_pointer_never_moves(store: MemoryStore) -> None:
    first, second = pending(store, first_ref="shared.1"), pending(store)

    def record(payment: Payment, ref: str) -> Payment | None:
        return store.record_gateway_object(
            payment, provider="paystack", gateway_ref=ref, next_action=None, card_brand=None, card_last4=None
        )

    assert record(second, "shared.1") is None  # names the first payment for ever
    recorded = record(first, "shared.1")
    assert recorded is not None and recorded.gateway_ref == "shared.1"
    assert record(first, "another") is None  # written once, never replaced
    assert store.find_by_gateway_ref("paystack", "shared.1") == store.require(CUSTOMER, first.id)


def test_a_settled_payment_cannot_be_claimed_and_releasing_an_old_claim_leaves_a_new_one(store: MemoryStore) -> None:
    payment = pending(store, hold_seconds=-1)
    taken = claim(store, payment)
    assert taken is not None

    store.release_gateway_claim(payment, "an old attempt's error")  # attempt 1 no longer holds the claim
    assert store.require(CUSTOMER, payment.id).gateway_claim_until == taken.gateway_claim_until

    store.transition(CUSTOMER, payment.id, PaymentStatus.CANCELLED, Cause.TIMEOUT, "system:reconcile")
    cancelled = store.require(CUSTOMER, payment.id)
    assert cancelled.gateway_claim_until is None
    assert claim(store, cancelled) is None


def test_a_live_claim_held_by_another_request_answers_409_retry_shortly(store: MemoryStore) -> None:
    gateway = Gateway("paystack", chooses_refs=True)
    cmd = command("paystack")
    key = checkout._gateway_key(cmd)
    now = datetime.now(UTC)
    other = Payment(
        id=new_payment_id(now),
        customer_id=CUSTOMER,
        created_at=now,
        amount_minor=4200,
        currency="USD",
        status=PaymentStatus.PENDING,
        method=PaymentMethod.PAYSTACK,
        gateway_attempts=1,
        gateway_claim_until=store.claim_until(30),
    )
    store.put_pending(other, key)  # the first request, still at work

    with pytest.raises(RetryLater) as busy:
        run(store, gateway, cmd)
    assert busy.value.http_status == 409
    assert gateway.requests == []


# ---- vouchers --------------------------------------------------------------------------------------------


def test_a_voucher_is_redeemed_once_and_gives_its_attempt_back(store: MemoryStore) -> None:
    [issued] = vouchers.issue(store, Money(1500, "EUR"), 1, None, "operator:o")

    paid = vouchers.redeem(store, CUSTOMER, issued.code.lower(), "EUR", actor="customer:c")
    assert (paid.status, paid.amount_minor, paid.description) == (
        PaymentStatus.COMPLETED,
        1500,
        f"Voucher ending {vouchers.normalise(issued.code)[-4:]}",
    )
    assert store.balances(CUSTOMER) == [Money(1500, "EUR")]
    assert store.tables.voucher_attempts[CUSTOMER].count == 0  # the success gave its attempt back
    with pytest.raises(InvalidInput):
        vouchers.redeem(store, CUSTOMER, issued.code, "EUR", actor="customer:c")
    assert store.balances(CUSTOMER) == [Money(1500, "EUR")]


def test_another_currency_or_an_expired_voucher_is_the_same_422(store: MemoryStore) -> None:
    [fresh] = vouchers.issue(store, Money(1500, "EUR"), 1, None, "operator:o")
    [old] = vouchers.issue(store, Money(1500, "EUR"), 1, datetime.now(UTC) - timedelta(seconds=1), "operator:o")
    for code, currency in ((fresh.code, "USD"), (old.code, "EUR"), ("NOPE-NOPE-NOPE-NOPE-NOPE", "EUR")):
        with pytest.raises(InvalidInput) as refused:
            vouchers.redeem(store, CUSTOMER, code, currency, actor="customer:c")
        assert refused.value.message == vouchers.INVALID_VOUCHER


def test_five_wrong_codes_lock_the_customer_out_until_the_window_ends(store: MemoryStore) -> None:
    for _ in range(vouchers.MAX_FAILURES):
        with pytest.raises(InvalidInput):
            vouchers.redeem(store, CUSTOMER, "WRONG-WRONG-WRONG-WRONG", "EUR", actor="customer:c")
    [good] = vouchers.issue(store, Money(100, "EUR"), 1, None, "operator:o")

    with pytest.raises(TooManyRequests) as locked:
        vouchers.redeem(store, CUSTOMER, good.code, "EUR", actor="customer:c")  # even a good code waits
    assert 0 < int(locked.value.headers["Retry-After"]) <= vouchers.FAILURE_WINDOW_SECONDS
    assert vouchers.redeem(store, "cust-2", good.code, "EUR", actor="customer:d").amount_minor == 100


@pytest.mark.parametrize("entry", registry.GATEWAYS, ids=[e.provider for e in registry.GATEWAYS])
def test_a_gateway_that_needs_the_payers_email_is_refused_without_one(entry: registry.GatewayEntry) -> None:
    currency = "NGN" if entry.provider == "paystack" else "USD"
    values: dict[str, Any] = {"method": entry.method.value, "amount": "10.00", "currency": currency}
    if entry.method is PaymentMethod.CREDIT_CARD:
        values["payment_method"] = "pm_card_visa"
    body = checkout.PaymentBody.model_validate(values)
    without_email = Caller(sub="u1", email=None, customer_id=CUSTOMER, groups=frozenset({Group.ADMIN}))
    today = datetime(2026, 12, 1, tzinfo=UTC).date()

    if entry.needs_payer_email:
        with pytest.raises(InvalidInput) as refused:
            checkout.validate(body, without_email, CUSTOMER, "key-1", today=today)
        assert (refused.value.field, refused.value.message) == (
            "email",
            f"{entry.provider} needs the email claim in the token",
        )
    else:
        assert checkout.validate(body, without_email, CUSTOMER, "key-1", today=today).email is None
    with_email = dataclasses.replace(without_email, email="payer@example.com")
    assert checkout.validate(body, with_email, CUSTOMER, "key-1", today=today).email == "payer@example.com"


def test_paystack_is_the_gateway_that_needs_the_payers_email() -> None:
    assert [e.provider for e in registry.GATEWAYS if e.needs_payer_email] == ["paystack"]
