"""A customer's payment settings (docs/account-settings.md): currency, limits, methods and their surcharges, receipts,
credit limit, the provider shown on receipts. Operators set them per customer; what is not set comes from the
deployment's defaults (template parameters, read from the environment).

`AccountSettings` is the one form the use cases read: amounts in integer minor units of the account currency.
`SettingsIn` / `SettingsOut` are the operator route's JSON (amounts as strings in major units). The store keeps a
customer's settings as the JSON of `SettingsOut` (`store.account_settings`), so what an operator PUT is exactly
what a GET answers.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from payments import registry
from payments.errors import InvalidInput
from payments.money import Money, MoneyError, parse_currency
from payments.registry import PaymentMethod

if TYPE_CHECKING:
    from payments.store import Store

PAYABLE = tuple(m.method for m in registry.METHODS if m.payable)
PERCENT_LIMIT = Decimal("50")  # a surcharge above half the payment is a typo, not a fee


def bad_setting(field: str, message: str) -> InvalidInput:
    """A setting that is not usable, naming it: a 422 on the operator route (a cold-start stop for defaults)."""
    return InvalidInput(field, message)


class Provider(BaseModel):
    """Who the receipts are from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field("Telecom Payments Ltd", min_length=1, max_length=120)
    address: str = Field("", max_length=400, description="Lines separated by newlines")


class MethodTerms(BaseModel):
    """One method's terms for a customer: enabled, and the surcharge the gateway is charged on top of the amount."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = True
    surcharge_fixed_minor: int = 0  # minor units of the account currency
    surcharge_percent: Decimal = Decimal(0)


class AccountSettings(BaseModel):
    """A customer's settings, as the use cases read them (minor units of `account_currency`)."""

    model_config = ConfigDict(frozen=True)

    account_currency: str
    allowed_currencies: tuple[str, ...] | None = None  # None: any currency the gateway supports
    min_payment_minor: int | None = None
    max_payment_minor: int | None = None
    max_balance_minor: int | None = None
    methods: dict[str, MethodTerms] = Field(default_factory=dict)  # every payable method
    email_receipts: bool = False
    receipt_emails: tuple[str, ...] = ()  # receipts also (or, without a payer's e-mail, only) go here
    credit_limit_minor: int = 0
    provider: Provider = Provider()

    def terms(self, method: str) -> MethodTerms:
        return self.methods.get(method) or MethodTerms()

    def money(self, minor: int | None) -> str | None:
        return None if minor is None else Money(minor, self.account_currency).format()

    def surcharge(self, money: Money, method: str) -> Money:
        """What is charged on top of `money` for `method`: fixed + percent, rounded half-up to the currency's minor
        units (docs/account-settings.md#surcharges). The fixed part is in the account currency, so it applies to
        payments in it; a payment in another allowed currency pays the percent part only."""
        terms = self.terms(method)
        percent = (Decimal(money.minor) * terms.surcharge_percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        fixed = terms.surcharge_fixed_minor if money.currency == self.account_currency else 0
        return Money(int(percent) + fixed, money.currency)

    def to_out(self) -> SettingsOut:
        return SettingsOut(
            account_currency=self.account_currency,
            allowed_currencies=list(self.allowed_currencies) if self.allowed_currencies is not None else None,
            min_payment=self.money(self.min_payment_minor),
            max_payment=self.money(self.max_payment_minor),
            max_balance=self.money(self.max_balance_minor),
            methods={
                method: MethodOut(
                    enabled=self.terms(method).enabled,
                    surcharge_fixed=self.money(self.terms(method).surcharge_fixed_minor) or "0",
                    surcharge_percent=_percent_text(self.terms(method).surcharge_percent),
                )
                for method in PAYABLE
            },
            email_receipts=self.email_receipts,
            receipt_emails=list(self.receipt_emails),
            credit_limit=self.money(self.credit_limit_minor) or "0",
            provider=self.provider,
        )


def _percent_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".")


# ---- the operator route's JSON ---------------------------------------------------------------------------------


class MethodIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    surcharge_fixed: str | Decimal | int = Field("0", description="Major units of the account currency, >= 0")
    surcharge_percent: str | Decimal | int = Field("0", description='0 to 50, e.g. "2.9"')


class SettingsIn(BaseModel):
    """PUT /admin/customers/{id}/settings: the whole settings (PUT replaces them). Omitted fields take the
    deployment's defaults."""

    model_config = ConfigDict(extra="forbid")

    account_currency: str | None = Field(None, description="ISO 4217; the currency limits and surcharges are in")
    allowed_currencies: list[str] | None = Field(None, description="null: any currency the gateway supports")
    min_payment: str | Decimal | int | None = None
    max_payment: str | Decimal | int | None = None
    max_balance: str | Decimal | int | None = None
    methods: dict[str, MethodIn] | None = Field(None, description="Per method; methods left out keep the defaults")
    email_receipts: bool | None = None
    receipt_emails: list[str] | None = Field(None, max_length=10)
    credit_limit: str | Decimal | int | None = None
    provider: Provider | None = None


class MethodOut(BaseModel):
    enabled: bool
    surcharge_fixed: str
    surcharge_percent: str


class SettingsOut(BaseModel):
    account_currency: str
    allowed_currencies: list[str] | None
    min_payment: str | None
    max_payment: str | None
    max_balance: str | None
    methods: dict[str, MethodOut]
    email_receipts: bool
    receipt_emails: list[str]
    credit_limit: str
    provider: Provider


def _amount(value: object, currency: str, field: str, *, allow_zero: bool = True) -> int:
    try:
        money = Money.parse(value, currency, field=field)
    except MoneyError as exc:
        raise bad_setting(field, exc.message) from None
    if money.minor < 0 or (money.minor == 0 and not allow_zero):
        raise bad_setting(field, f"{field} must be {'zero or more' if allow_zero else 'more than zero'}")
    return money.minor


def _optional_amount(value: object, currency: str, field: str) -> int | None:
    return None if value is None or value == "" else _amount(value, currency, field, allow_zero=False)


def _percent(value: object, field: str) -> Decimal:
    try:
        percent = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise bad_setting(field, f'{field} must be a number of percent such as "2.9"') from None
    if not percent.is_finite() or percent < 0 or percent > PERCENT_LIMIT or percent.as_tuple().exponent < -4:  # type: ignore[operator]
        raise bad_setting(field, f"{field} must be between 0 and {PERCENT_LIMIT} with at most 4 decimals")
    return percent


_EMAIL_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.!#$%&'*+/=?^_`{|}~-")


def _nonzero(value: object) -> bool:
    try:
        return Decimal(str(value).strip()) != 0
    except InvalidOperation:
        return True


def valid_email(text: str) -> bool:
    """A plain addr-spec (local@domain.tld), ASCII, as SES takes it; no display names."""
    local, at, domain = text.rpartition("@")
    return (
        bool(at and local and domain)
        and len(text) <= 254
        and set(local) <= _EMAIL_CHARS
        and "." in domain
        and all(part and part.replace("-", "").isalnum() and part.isascii() for part in domain.split("."))
    )


def parse(body: SettingsIn, defaults: AccountSettings) -> AccountSettings:
    """Validate a PUT body against the defaults; InvalidInput (422) names the first bad field."""
    try:
        currency = parse_currency(body.account_currency, "account_currency") if body.account_currency else None
    except MoneyError as exc:
        raise bad_setting("account_currency", exc.message) from None
    currency = currency or defaults.account_currency
    allowed: tuple[str, ...] | None = None
    if body.allowed_currencies is not None:
        if not body.allowed_currencies:
            raise bad_setting("allowed_currencies", "allowed_currencies must name at least one currency, or be null")
        try:
            allowed = tuple(dict.fromkeys(parse_currency(c, "allowed_currencies") for c in body.allowed_currencies))
        except MoneyError as exc:
            raise bad_setting("allowed_currencies", exc.message) from None
        if currency not in allowed:
            raise bad_setting("allowed_currencies", f"allowed_currencies must include the account currency {currency}")
    minimum = _optional_amount(body.min_payment, currency, "min_payment")
    maximum = _optional_amount(body.max_payment, currency, "max_payment")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise bad_setting("min_payment", "min_payment must not be above max_payment")
    methods = dict(defaults.methods)
    for method, terms in (body.methods or {}).items():
        if method not in PAYABLE:
            raise bad_setting(
                f"methods.{method}", f"methods.{method} is not a payment method: use one of {', '.join(PAYABLE)}"
            )
        if method == "voucher" and (_nonzero(terms.surcharge_fixed) or _nonzero(terms.surcharge_percent)):
            raise bad_setting(f"methods.{method}", "methods.voucher cannot have a surcharge: no gateway charges it")
        methods[method] = MethodTerms(
            enabled=terms.enabled,
            surcharge_fixed_minor=_amount(terms.surcharge_fixed, currency, f"methods.{method}.surcharge_fixed"),
            surcharge_percent=_percent(terms.surcharge_percent, f"methods.{method}.surcharge_percent"),
        )
    emails = tuple(body.receipt_emails) if body.receipt_emails is not None else defaults.receipt_emails
    for i, address in enumerate(emails):
        if not valid_email(address):
            raise bad_setting(f"receipt_emails.{i}", f"receipt_emails.{i} is not an e-mail address")
    return AccountSettings(
        account_currency=currency,
        allowed_currencies=allowed,
        min_payment_minor=minimum,
        max_payment_minor=maximum,
        max_balance_minor=_optional_amount(body.max_balance, currency, "max_balance"),
        methods=methods,
        email_receipts=defaults.email_receipts if body.email_receipts is None else body.email_receipts,
        receipt_emails=emails,
        credit_limit_minor=_amount(body.credit_limit, currency, "credit_limit")
        if body.credit_limit is not None
        else defaults.credit_limit_minor
        if currency == defaults.account_currency
        else 0,
        provider=body.provider or defaults.provider,
    )


# ---- the deployment's defaults ---------------------------------------------------------------------------------


@cache
def defaults() -> AccountSettings:
    """The deployment's defaults (template parameters, one variable each; docs/account-settings.md), checked once.

    METHOD_SURCHARGES is JSON: `{"paypal": {"surcharge_fixed": "0.30", "surcharge_percent": "3.4"}}`;
    DISABLED_METHODS and ALLOWED_CURRENCIES are comma-separated."""
    from payments.config import settings

    env = settings()
    base = AccountSettings(account_currency="USD", methods={m: MethodTerms() for m in PAYABLE})
    try:
        surcharges = json.loads(env.method_surcharges or "{}")
    except ValueError:
        raise bad_setting("METHOD_SURCHARGES", "METHOD_SURCHARGES must be a JSON object") from None
    disabled = {m.strip() for m in env.disabled_methods.split(",") if m.strip()}
    methods: dict[str, Any] = {}
    for method in PAYABLE:
        terms = surcharges.get(method) if isinstance(surcharges, dict) else None
        methods[method] = {**(terms if isinstance(terms, dict) else {}), "enabled": method not in disabled}
    unknown = (disabled | set(surcharges if isinstance(surcharges, dict) else ())) - set(PAYABLE)
    if unknown:
        raise bad_setting("DISABLED_METHODS", f"not payment methods: {', '.join(sorted(unknown))}")
    allowed = [c.strip() for c in env.allowed_currencies.split(",") if c.strip()]
    body = SettingsIn(
        account_currency=env.account_currency or None,
        allowed_currencies=allowed or None,
        min_payment=env.min_payment or None,
        max_payment=env.max_payment or None,
        max_balance=env.max_balance or None,
        methods={m: MethodIn(**t) for m, t in methods.items()},
        email_receipts=env.email_receipts,
        credit_limit=env.credit_limit or None,
        provider=Provider(name=env.provider_name or Provider().name, address=env.provider_address.replace("\\n", "\n")),
    )
    return parse(body, base)


def checked_defaults() -> AccountSettings:
    """`defaults()`, or the function stops at cold start naming the variable that is wrong."""
    from payments.config import SettingsError

    try:
        return defaults()
    except InvalidInput as exc:
        raise SettingsError(f"the account defaults are not usable: {exc.message}") from None


def of_document(document: dict[str, Any]) -> AccountSettings:
    """Settings stored by `save` (the JSON of SettingsOut), read back."""
    return parse(SettingsIn.model_validate(document), defaults())


def for_customer(store: Store, customer_id: str) -> AccountSettings:
    """The customer's settings: what an operator saved, else the deployment's defaults (one GetItem)."""
    document = store.account_settings(customer_id)
    return of_document(document) if document is not None else defaults()


def save(store: Store, customer_id: str, body: SettingsIn, by: str) -> AccountSettings:
    """Replace the customer's settings (PUT); InvalidInput (422) names a bad field and nothing is stored."""
    parsed = parse(body, defaults())
    store.put_account_settings(customer_id, parsed.to_out().model_dump(mode="json"), by)
    return parsed


# ---- enforcement (docs/account-settings.md#limits): every payment path asks these ------------------------------


def check_method(settings: AccountSettings, method: str, currency: str) -> None:
    """The method is enabled for the customer and the currency allowed: else 422 naming `method` or `currency`."""
    if not settings.terms(method).enabled:
        raise InvalidInput("method", f"method {method} is not available for this account")
    allowed = settings.allowed_currencies
    if allowed is not None and currency not in allowed:
        raise InvalidInput(
            "currency", f"currency {currency} is not allowed for this account: top up in {', '.join(allowed)}"
        )


def check_amount(settings: AccountSettings, money: Money, field: str = "amount") -> None:
    """`min_payment` <= amount <= `max_payment` (account currency only: the limits are stated in it)."""
    if money.currency != settings.account_currency:
        return
    shown = f"{field} {money.format()} {money.currency}"
    if settings.min_payment_minor is not None and money.minor < settings.min_payment_minor:
        limit = settings.money(settings.min_payment_minor)
        raise InvalidInput(field, f"{shown} is below the minimum payment of {limit} {money.currency} (min_payment)")
    if settings.max_payment_minor is not None and money.minor > settings.max_payment_minor:
        limit = settings.money(settings.max_payment_minor)
        raise InvalidInput(field, f"{shown} is above the maximum payment of {limit} {money.currency} (max_payment)")


def balance_room(settings: AccountSettings, currency: str) -> int | None:
    """How high the completed balance in `currency` may go (`max_balance`); None: no limit."""
    return settings.max_balance_minor if currency == settings.account_currency else None


def over_max_balance(
    settings: AccountSettings, money: Money, balance_minor: int, field: str = "amount"
) -> InvalidInput:
    """The 422 of a top-up that would take the balance above `max_balance`."""
    ceiling = settings.max_balance_minor or 0
    return InvalidInput(
        field,
        f"{field} {money.format()} {money.currency} would take the balance to "
        f"{Money(balance_minor + money.minor, money.currency).format()} {money.currency}, above the maximum balance "
        f"of {Money(ceiling, money.currency).format()} {money.currency} (max_balance)",
        max_balance=Money(ceiling, money.currency).format(),
    )


def check_balance(settings: AccountSettings, money: Money, balance_minor: int, field: str = "amount") -> None:
    """A top-up of `money` onto a completed balance of `balance_minor` stays within `max_balance`."""
    ceiling = balance_room(settings, money.currency)
    if ceiling is not None and balance_minor + money.minor > ceiling:
        raise over_max_balance(settings, money, balance_minor, field)


# ---- what the page offers (GET /payment-options) -----------------------------------------------------------------


class MethodOption(BaseModel):
    method: str
    label: str
    currencies: list[str] = Field(description="The currencies this method takes for this account")
    min_amount: str | None = Field(description="In the account currency; null: no minimum")
    max_amount: str | None = Field(description="In the account currency; null: no maximum but the deployment's")
    surcharge_fixed: str = Field(description="Added per payment in the account currency (major units)")
    surcharge_percent: str = Field(description="Added per payment: this percent of the amount, rounded half-up")


class PaymentOptionsOut(BaseModel):
    account_currency: str
    methods: list[MethodOption] = Field(description="The enabled methods only")
    max_balance: str | None = Field(description="The completed balance a top-up may not pass; null: no limit")


def _gateway_currencies(method: str) -> frozenset[str] | None:
    """The currencies the gateway behind `method` takes (its adapter module's SUPPORTED_CURRENCIES); None: any."""
    import importlib

    entry = registry.GATEWAY_BY_METHOD.get(PaymentMethod(method))
    if entry is None:
        return None
    module = importlib.import_module(entry.adapter.partition(":")[0])
    return frozenset(getattr(module, "SUPPORTED_CURRENCIES", ())) or None


def payment_options(settings: AccountSettings) -> PaymentOptionsOut:
    """What the customer may pay with: enabled methods, their currencies, limits and surcharges."""
    options = []
    for method in PAYABLE:
        terms = settings.terms(method)
        if not terms.enabled:
            continue
        supported = _gateway_currencies(method)
        allowed = settings.allowed_currencies
        if supported is None:
            currencies = list(allowed) if allowed is not None else [settings.account_currency]
        else:
            currencies = sorted(c for c in supported if allowed is None or c in allowed)
        options.append(
            MethodOption(
                method=method,
                label=registry.label(method),
                currencies=currencies,
                min_amount=settings.money(settings.min_payment_minor),
                max_amount=settings.money(settings.max_payment_minor),
                surcharge_fixed=settings.money(terms.surcharge_fixed_minor) or "0",
                surcharge_percent=_percent_text(terms.surcharge_percent),
            )
        )
    return PaymentOptionsOut(
        account_currency=settings.account_currency,
        methods=options,
        max_balance=settings.money(settings.max_balance_minor),
    )
