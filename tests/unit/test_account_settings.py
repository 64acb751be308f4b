"""Account settings (docs/account-settings.md): parsing, the surcharge's half-up rounding (the documented table),
and the limits every payment path enforces, at and around each boundary, in USD, JPY and KWD. The in-memory store
and a scripted gateway: no AWS."""

from __future__ import annotations

import dataclasses
import threading
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from payments import account, checkout, registry, vouchers
from payments.checkout import Checkout, PaymentBody
from payments.errors import InvalidInput
from payments.gateways.base import CreateRequest, CreateResult
from payments.identity import Caller, Group
from payments.models import PaymentMethod, PaymentStatus
from payments.money import Money
from payments.status import Cause, credit_arrived
from payments.store.memory import MemoryStore
from payments.store.records import BalanceCeiling

CUSTOMER = "cust-limits"
CALLER = Caller(sub="u1", email="payer@example.com", customer_id=CUSTOMER, groups=frozenset({Group.ADMIN}))
TODAY = date(2026, 12, 2)
GATEWAY_METHODS = [m for m in account.PAYABLE if m not in ("bank_transfer", "voucher")]
TOP_UPS = [m for m in account.PAYABLE if m != "voucher"]


def terms(**fields: Any) -> account.AccountSettings:
    return account.parse(account.SettingsIn(**fields), account.defaults())


# ---- surcharges: half-up in the currency's minor units ----------------------------------------------------------

ROUNDING = [
    # amount, currency, fixed, percent, surcharge
    ("10.00", "USD", "0.30", "2.9", "0.59"),
    ("10.01", "USD", "0", "2.5", "0.25"),  # 25.025 cents
    ("10.02", "USD", "0", "2.5", "0.25"),  # 25.05
    ("10.10", "USD", "0", "2.5", "0.25"),  # 25.25
    ("10.20", "USD", "0", "2.5", "0.26"),  # 25.5: half-up
    ("0.01", "USD", "0", "49.9999", "0.00"),  # 0.499999 cents
    ("0.01", "USD", "0", "50", "0.01"),  # 0.5 cents: half-up
    ("1000", "JPY", "0", "3.55", "36"),  # 35.5 yen
    ("1000", "JPY", "0", "3.54", "35"),  # 35.4
    ("999", "JPY", "30", "0", "30"),
    ("1.001", "KWD", "0.100", "2.5", "0.125"),  # 25.025 fils + 100
    ("1.020", "KWD", "0", "2.5", "0.026"),  # 25.5 fils
    ("20.00", "USD", "0", "0", None),  # no surcharge at all
]


@pytest.mark.parametrize(("amount", "currency", "fixed", "percent", "expected"), ROUNDING)
def test_the_surcharge_is_fixed_plus_percent_rounded_half_up(
    amount: str, currency: str, fixed: str, percent: str, expected: str | None
) -> None:
    settings = terms(
        account_currency=currency, methods={"paypal": {"surcharge_fixed": fixed, "surcharge_percent": percent}}
    )
    money = Money.parse(amount, currency)
    surcharge = settings.surcharge(money, "paypal")
    assert surcharge.format() == (expected or Money(0, currency).format())
    body = PaymentBody(method="paypal", amount=amount, currency=currency)
    command = checkout.validate(body, CALLER, CUSTOMER, "k", today=TODAY, terms=settings)
    assert command.surcharge == (Money.parse(expected, currency) if expected and surcharge.minor else None)
    assert command.charged == money + surcharge


def test_a_top_up_in_another_currency_pays_the_percent_part_only() -> None:
    settings = terms(account_currency="USD", methods={"paypal": {"surcharge_fixed": "0.30", "surcharge_percent": "2"}})
    assert settings.surcharge(Money(1000, "EUR"), "paypal") == Money(20, "EUR")
    assert settings.surcharge(Money(1000, "USD"), "paypal") == Money(50, "USD")


# ---- the settings document -----------------------------------------------------------------------------------


BAD_SETTINGS = [
    ({"account_currency": "usd"}, "account_currency"),
    ({"account_currency": "XAU"}, "account_currency"),
    ({"allowed_currencies": []}, "allowed_currencies"),
    ({"allowed_currencies": ["EUR"]}, "allowed_currencies"),  # must include the account currency (USD)
    ({"allowed_currencies": ["USD", "ZZZ"]}, "allowed_currencies"),
    ({"min_payment": "1.001"}, "min_payment"),
    ({"min_payment": "0"}, "min_payment"),
    ({"max_payment": "-5"}, "max_payment"),
    ({"min_payment": "10", "max_payment": "5"}, "min_payment"),
    ({"max_balance": "abc"}, "max_balance"),
    ({"credit_limit": "-1"}, "credit_limit"),
    ({"methods": {"cash": {}}}, "methods.cash"),
    ({"methods": {"paypal": {"surcharge_percent": "50.5"}}}, "methods.paypal.surcharge_percent"),
    ({"methods": {"paypal": {"surcharge_percent": "1.23456"}}}, "methods.paypal.surcharge_percent"),
    ({"methods": {"paypal": {"surcharge_percent": "NaN"}}}, "methods.paypal.surcharge_percent"),
    ({"methods": {"paypal": {"surcharge_percent": "x"}}}, "methods.paypal.surcharge_percent"),
    ({"methods": {"paypal": {"surcharge_fixed": "0.001"}}}, "methods.paypal.surcharge_fixed"),
    ({"methods": {"voucher": {"surcharge_percent": "1"}}}, "methods.voucher"),
    ({"receipt_emails": ["not-an-address"]}, "receipt_emails.0"),
    ({"receipt_emails": ["ok@example.com", "a@b"]}, "receipt_emails.1"),
]


@pytest.mark.parametrize(("fields", "field"), BAD_SETTINGS, ids=[f for _, f in BAD_SETTINGS])
def test_a_bad_setting_is_a_422_naming_it_and_nothing_is_stored(fields: dict[str, Any], field: str) -> None:
    store = MemoryStore()
    with pytest.raises(InvalidInput) as refused:
        account.save(store, CUSTOMER, account.SettingsIn(**fields), "operator:o")
    assert refused.value.field == field
    assert field.split(".")[0] in refused.value.message
    assert store.account_settings(CUSTOMER) is None


def test_saved_settings_read_back_as_saved_and_others_keep_the_defaults() -> None:
    store = MemoryStore()
    body = account.SettingsIn(
        account_currency="KWD",
        allowed_currencies=["KWD", "USD"],
        min_payment="1.500",
        max_payment=Decimal("250"),
        max_balance=1000,
        methods={"nowpayments": {"enabled": False}, "paypal": {"surcharge_fixed": "0.100", "surcharge_percent": "3.4"}},
        email_receipts=True,
        credit_limit="5.000",
        provider={"name": "Kuwait Tel", "address": "1 Gulf Road\nKuwait City"},
    )
    saved = account.save(store, CUSTOMER, body, "operator:o")
    read = account.for_customer(store, CUSTOMER)
    assert read == saved
    out = read.to_out()
    assert (out.min_payment, out.max_payment, out.max_balance, out.credit_limit) == (
        "1.500",
        "250.000",
        "1000.000",
        "5.000",
    )
    assert out.methods["paypal"].model_dump() == {
        "enabled": True,
        "surcharge_fixed": "0.100",
        "surcharge_percent": "3.4",
    }
    assert out.methods["nowpayments"].enabled is False
    assert out.methods["credit_card"].model_dump() == {
        "enabled": True,
        "surcharge_fixed": "0.000",
        "surcharge_percent": "0",
    }
    assert account.for_customer(store, "someone-else") == account.defaults()


# ---- limits: every method, at and around each boundary ------------------------------------------------------------

CURRENCIES = [("USD", "10.00", "500.00", "0.01"), ("JPY", "1000", "50000", "1"), ("KWD", "1.000", "150.000", "0.001")]


def _validate(method: str, amount: str, currency: str, settings: account.AccountSettings) -> checkout.Command:
    body = PaymentBody(
        method=method,
        amount=amount,
        currency=currency,
        payment_method="pm_card_visa" if method == "credit_card" else None,
    )
    return checkout.validate(body, CALLER, CUSTOMER, "k", today=TODAY, terms=settings)


def _step(amount: str, currency: str, minor: int) -> str:
    return Money(Money.parse(amount, currency).minor + minor, currency).format()


@pytest.mark.parametrize("method", TOP_UPS)
@pytest.mark.parametrize(("currency", "low", "high", "unit"), CURRENCIES, ids=[c[0] for c in CURRENCIES])
def test_min_and_max_payment_hold_at_and_around_each_boundary(
    method: str, currency: str, low: str, high: str, unit: str
) -> None:
    settings = terms(account_currency=currency, min_payment=low, max_payment=high)
    for amount in (low, high, _step(low, currency, 1), _step(high, currency, -1)):
        assert _validate(method, amount, currency, settings).money == Money.parse(amount, currency)
    for amount, limit, word in (
        (_step(low, currency, -1), low, "minimum"),
        (_step(high, currency, 1), high, "maximum"),
    ):
        with pytest.raises(InvalidInput) as refused:
            _validate(method, amount, currency, settings)
        assert refused.value.field == "amount"
        assert f"{word} payment of {limit} {currency}" in refused.value.message


def _refused(method: str, currency: str, settings: account.AccountSettings) -> InvalidInput:
    """What validate refuses for `method` in `currency` (a voucher with a code, a card with a token)."""
    body = PaymentBody(
        method=method,
        amount=None if method == "voucher" else "12.00",
        currency=currency,
        voucher_code="ABCD-EFGH" if method == "voucher" else None,
        payment_method="pm_card_visa" if method == "credit_card" else None,
    )
    with pytest.raises(InvalidInput) as refused:
        checkout.validate(body, CALLER, CUSTOMER, "k", today=TODAY, terms=settings)
    return refused.value


@pytest.mark.parametrize("method", list(account.PAYABLE))
def test_a_disabled_method_is_refused_naming_method(method: str) -> None:
    refused = _refused(method, "USD", terms(methods={method: {"enabled": False}}))
    assert (refused.field, refused.message) == ("method", f"method {method} is not available for this account")


@pytest.mark.parametrize("method", list(account.PAYABLE))
def test_a_currency_not_allowed_is_refused_naming_currency(method: str) -> None:
    refused = _refused(method, "EUR", terms(account_currency="USD", allowed_currencies=["USD"]))
    assert refused.field == "currency"
    assert "EUR is not allowed" in refused.message and "USD" in refused.message


class ScriptedGateway:
    """Answers every create with a pending object; remembers what it was asked to charge."""

    object_name = ""

    def __init__(self) -> None:
        self.requests: list[CreateRequest] = []

    def check_currency(self, money: Money) -> None:
        pass

    def reference_for_attempt(self, payment_id: str, attempt: int) -> str | None:
        return None

    def recover(self, request: CreateRequest) -> CreateResult | None:
        return None

    def create(self, request: CreateRequest) -> CreateResult:
        self.requests.append(request)
        return CreateResult(f"obj_{len(self.requests)}", PaymentStatus.PENDING, next_action={"type": "redirect"})

    def resume(self, gateway_ref: str, stored_next_action: dict[str, Any] | None) -> CreateResult:
        return CreateResult(gateway_ref=gateway_ref, next_action=stored_next_action)


def _top_up(store: MemoryStore, minor: int, currency: str) -> None:
    [issued] = vouchers.issue(store, Money(minor, currency), 1, None, "operator:o")
    vouchers.redeem(store, CUSTOMER, issued.code, currency, actor="customer:c", terms=terms(account_currency=currency))


@pytest.mark.parametrize("method", TOP_UPS)
@pytest.mark.parametrize(("currency", "ceiling"), [("USD", "100.00"), ("JPY", "10000"), ("KWD", "100.000")])
def test_max_balance_lets_a_top_up_reach_it_and_refuses_one_minor_unit_more(
    method: str, currency: str, ceiling: str
) -> None:
    store = MemoryStore()
    settings = terms(account_currency=currency, max_balance=ceiling)
    limit = Money.parse(ceiling, currency).minor
    _top_up(store, limit // 2, currency)
    room = Money(limit - limit // 2, currency)
    gateway = ScriptedGateway()

    def run(amount: Money, key: str) -> checkout.Outcome:
        command = _validate(method, amount.format(), currency, settings)
        command = dataclasses.replace(command, idempotency_key=key)
        return Checkout(store, gateway_for=lambda provider: gateway).run(command)

    with pytest.raises(InvalidInput) as refused:
        run(Money(room.minor + 1, currency), "over")
    assert refused.value.field == "amount"
    assert f"above the maximum balance of {ceiling} {currency} (max_balance)" in refused.value.message
    assert [p.id for p in store.tables.payments.values() if p.method.value == method] == []
    made = run(room, "fits")
    assert made.payment.amount_minor == room.minor and made.payment.status is PaymentStatus.PENDING
    # Once it completes the balance is at the ceiling; the same request again answers with its payment.
    store.transition(CUSTOMER, made.payment.id, PaymentStatus.COMPLETED, Cause.OPERATOR, "operator:o")
    assert store.balances(CUSTOMER) == [Money(limit, currency)]
    assert run(room, "fits").payment.id == made.payment.id


def test_a_voucher_is_refused_when_it_would_pass_max_balance_even_redeemed_concurrently() -> None:
    store = MemoryStore()
    settings = terms(account_currency="USD", max_balance="100.00")
    codes = [v.code for v in vouchers.issue(store, Money(3000, "USD"), 5, None, "operator:o")]  # within the allowance
    outcomes: list[str] = []

    def redeem(code: str) -> None:
        try:
            vouchers.redeem(store, CUSTOMER, code, "USD", actor="customer:c", terms=settings)
            outcomes.append("redeemed")
        except InvalidInput as exc:
            outcomes.append(exc.field)

    threads = [threading.Thread(target=redeem, args=(code,)) for code in codes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["redeemed"] * 3 + ["voucher_code"] * 2
    assert store.balances(CUSTOMER) == [Money(9000, "USD")]
    [extra] = vouchers.issue(store, Money(1001, "USD"), 1, None, "operator:o")
    over = next(iter(store.tables.payments.values())).model_copy(update={"id": "pay_x", "amount_minor": 1001})
    with pytest.raises(BalanceCeiling):  # the store's own condition, whatever the caller checked before
        store.redeem_voucher(vouchers.code_hash(extra.code), over, now=0, balance_at_most=10000)


def test_a_voucher_value_outside_min_and_max_payment_is_refused() -> None:
    store = MemoryStore()
    settings = terms(account_currency="JPY", min_payment="500", max_payment="5000")
    [small] = vouchers.issue(store, Money(499, "JPY"), 1, None, "operator:o")
    [fits] = vouchers.issue(store, Money(5000, "JPY"), 1, None, "operator:o")
    with pytest.raises(InvalidInput) as refused:
        vouchers.redeem(store, CUSTOMER, small.code, "JPY", actor="customer:c", terms=settings)
    assert (refused.value.field, "minimum payment of 500 JPY" in refused.value.message) == ("voucher_code", True)
    assert vouchers.redeem(store, CUSTOMER, fits.code, "JPY", actor="customer:c", terms=settings).amount_minor == 5000


# ---- the surcharge reaches the gateway, not the balance ------------------------------------------------------------


@pytest.mark.parametrize("method", GATEWAY_METHODS)
def test_the_gateway_is_charged_amount_plus_surcharge_and_the_payment_shows_all_three(method: str) -> None:
    store = MemoryStore()
    settings = terms(account_currency="USD", methods={method: {"surcharge_fixed": "0.30", "surcharge_percent": "2.9"}})
    gateway = ScriptedGateway()
    command = _validate(method, "10.00", "USD", settings)
    outcome = Checkout(store, gateway_for=lambda provider: gateway).run(command)
    assert [r.money for r in gateway.requests] == [Money(1059, "USD")]
    shown = outcome.payment.to_api().model_dump(exclude_none=True)
    assert (shown["amount"], shown["surcharge"], shown["charged_amount"]) == ("10.00", "0.59", "10.59")
    stored = store.require(CUSTOMER, outcome.payment.id)
    assert (stored.amount_minor, stored.surcharge_minor, stored.payer_email) == (1000, 59, "payer@example.com")


def test_a_bank_transfer_asks_for_the_charged_amount_and_credits_the_amount() -> None:
    store = MemoryStore()
    settings = terms(account_currency="KWD", methods={"bank_transfer": {"surcharge_fixed": "0.250"}})
    outcome = Checkout(store, gateway_for=lambda provider: None).run(
        _validate("bank_transfer", "10.000", "KWD", settings)
    )
    assert outcome.next_action is not None and outcome.next_action["amount"] == "10.250"
    store.transition(CUSTOMER, outcome.payment.id, PaymentStatus.COMPLETED, Cause.OPERATOR, "operator:o")
    assert store.balances(CUSTOMER) == [Money(10000, "KWD")]


def test_a_partial_crypto_payment_credits_the_amount_in_proportion_to_the_charged_price() -> None:
    store = MemoryStore()
    settings = terms(account_currency="USD", methods={"nowpayments": {"surcharge_percent": "10"}})
    payment = (
        Checkout(store, gateway_for=lambda provider: ScriptedGateway())
        .run(_validate("nowpayments", "50.00", "USD", settings))
        .payment
    )
    assert payment.charged_minor == 5500
    half = credit_arrived(payment, Money(2750, "USD"), Money(5500, "USD"), by="t", now=payment.created_at)
    assert (half.after.amount_minor, half.after.requested_minor, half.balance_delta) == (2500, 5000, Money(2500, "USD"))
    odd = credit_arrived(payment, Money(1001, "USD"), Money(5500, "USD"), by="t", now=payment.created_at)
    assert odd.after.amount_minor == 910  # 1001 x 50/55 = 910.0 cents, rounded down
    whole = credit_arrived(half.after, Money(5500, "USD"), Money(5500, "USD"), by="t", now=payment.created_at)
    assert (whole.after.amount_minor, whole.after.requested_minor, whole.balance_delta) == (
        5000,
        None,
        Money(2500, "USD"),
    )


# ---- what the page is offered -------------------------------------------------------------------------------------


def test_payment_options_offer_the_enabled_methods_with_their_currencies_limits_and_surcharges() -> None:
    settings = terms(
        account_currency="USD",
        allowed_currencies=["USD", "NGN", "INR"],
        min_payment="5.00",
        max_balance="300.00",
        methods={
            "nowpayments": {"enabled": False},
            "credit_card": {"surcharge_fixed": "0.30", "surcharge_percent": "2.9"},
        },
    )
    options = account.payment_options(settings)
    methods = {m.method: m for m in options.methods}
    assert set(methods) == set(account.PAYABLE) - {"nowpayments"}
    assert (options.account_currency, options.max_balance) == ("USD", "300.00")
    assert methods["paystack"].currencies == ["NGN", "USD"]
    assert methods["razorpay"].currencies == ["INR", "USD"]
    assert methods["bank_transfer"].currencies == ["USD", "NGN", "INR"]
    card = methods["credit_card"]
    assert (card.label, card.min_amount, card.max_amount) == (registry.label("credit_card"), "5.00", None)
    assert (card.surcharge_fixed, card.surcharge_percent) == ("0.30", "2.9")
    assert PaymentMethod.CREDIT_CARD in {PaymentMethod(m) for m in methods}
