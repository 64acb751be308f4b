"""Money: integer minor units plus an ISO 4217 currency. Never a float.

Amounts cross the API as strings in major units with exactly the currency's minor digits
("12.50" USD, "1000" JPY, "1.250" KWD). Inside the service they are integers of minor units, which
is also what DynamoDB stores and what Stripe, Razorpay and Paystack expect.

Text is read with ASCII digits only: `int()`, `Decimal()` and the regex `\\d` also take the digits of every
other script ("١٢", full-width "１２"), which no client means as an amount (docs/errors.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import MAX_PREC, Context, Decimal

from payments._currencies import MINOR_DIGITS, WITHOUT_MINOR_UNITS

# An amount the API accepts as text: optional sign, ASCII digits, optional fraction. No exponent, no spaces
# inside (blanks around it are stripped first).
_AMOUNT_TEXT = re.compile(r"[+-]?([0-9]+)(\.[0-9]+)?", re.ASCII)
_BLANKS = " \t\r\n"
# Amounts up to 10**31 major units: far above any payment (MAX_PAYMENT_AMOUNT), small enough to convert.
_LARGEST_EXPONENT = 30
# scaleb only moves the decimal point, but rounds to the context's precision (28 digits by default).
_EXACT = Context(prec=MAX_PREC)


class MoneyError(ValueError):
    """A value that is not a valid amount of money. `field` names the input that was wrong.

    `problems` lists every (field, message) found, when an amount and its currency were checked together;
    `field` and `message` then are the first field and all the messages joined.
    """

    def __init__(self, field: str, message: str, *, problems: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.problems: tuple[tuple[str, str], ...] = tuple(problems) or ((field, message),)

    @classmethod
    def of(cls, problems: Sequence[tuple[str, str]]) -> MoneyError:
        return cls(problems[0][0], "; ".join(message for _, message in problems), problems=problems)


def currency_digits(currency: str) -> int:
    """ISO 4217 minor-unit digits of `currency` (upper-case code); KeyError if unknown."""
    return MINOR_DIGITS[currency]


def _described(name: str) -> str:
    """ "Gold" -> "gold"; names of several words are kept as ISO publishes them."""
    return name.lower() if name.isalpha() else name


def parse_currency(code: object, field: str = "currency") -> str:
    """A currency payments can be made in: an ISO 4217 code with minor units, upper case."""
    if not isinstance(code, str) or not code:
        raise MoneyError(field, f"{field} must be an ISO 4217 currency code such as USD")
    if code in WITHOUT_MINOR_UNITS:
        raise MoneyError(
            field,
            f"{field} {code} is an ISO 4217 code without minor units ({_described(WITHOUT_MINOR_UNITS[code])}); "
            "payments cannot be made in it",
        )
    if code not in MINOR_DIGITS:
        upper = code.upper()
        hint = " (codes are upper case)" if upper in MINOR_DIGITS or upper in WITHOUT_MINOR_UNITS else ""
        raise MoneyError(field, f"{field} {code!r} is not an ISO 4217 currency code{hint}")
    return code


def _amount_decimal(value: object, field: str) -> tuple[Decimal, int]:
    """An API amount as an exact Decimal and its number of decimal places, whatever the currency.

    Text: optional sign, ASCII digits, optional fraction. Numbers: int or Decimal (JSON numbers), finite.
    Nothing here formats or expands the value: 1e400000000 costs no more than 1.
    """
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise MoneyError(field, f'{field} must be a decimal string such as "12.50"')
    if isinstance(value, int):
        return Decimal(value), 0
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise MoneyError(field, f"{field} must be a finite number")
        return value, max(0, -int(value.as_tuple().exponent))
    if not isinstance(value, str):
        raise MoneyError(field, f'{field} must be a decimal string such as "12.50"')
    text = value.strip(_BLANKS)
    match = _AMOUNT_TEXT.fullmatch(text)
    if not match:
        raise MoneyError(field, f"{field} {value[:40]!r} is not a decimal number")
    fraction = match.group(2)
    return Decimal(text), len(fraction) - 1 if fraction else 0


def _check_decimals(decimals: int, code: str, field: str) -> None:
    digits = MINOR_DIGITS[code]
    if decimals > digits:
        raise MoneyError(field, f"{field} has {decimals} decimal places but {code} allows {digits}")


def _minor_units(amount: Decimal, decimals: int, code: str, field: str) -> int:
    """Exactly `amount` in minor units of `code`: no rounding, and no giant integer for 1e400000000."""
    _check_decimals(decimals, code, field)
    if amount and amount.adjusted() > _LARGEST_EXPONENT:
        raise MoneyError(field, f"{field} is too large")
    return int(amount.scaleb(MINOR_DIGITS[code], context=_EXACT))


def parse_positive(
    amount: object,
    currency: object,
    *,
    limit: Decimal,
    amount_field: str = "amount",
    currency_field: str = "currency",
) -> Money:
    """An amount a payment can be made of: given, positive, at most `limit` major units, in a payable currency.

    Every problem of the two fields is reported at once (MoneyError.problems, amount first): "abc" in "XYZ"
    names both. The amount's own form is checked even when the currency is unknown.
    """
    problems: list[tuple[str, str]] = []
    code: str | None = None
    if currency is None or currency == "":
        problems.append((currency_field, f"{currency_field} is required"))
    else:
        try:
            code = parse_currency(currency, currency_field)
        except MoneyError as exc:
            problems.append((exc.field, exc.message))
    money: Money | None = None
    if amount is None or amount == "":
        problems.insert(0, (amount_field, f"{amount_field} is required"))
    else:
        try:
            value, decimals = _amount_decimal(amount, amount_field)
            if code is not None:
                _check_decimals(decimals, code, amount_field)
            if value <= 0:
                raise MoneyError(amount_field, f"{amount_field} must be greater than zero")
            if code is not None:
                if value > limit:
                    raise MoneyError(amount_field, f"{amount_field} must not exceed {limit} {code}")
                money = Money(_minor_units(value, decimals, code, amount_field), code)
        except MoneyError as exc:
            problems.insert(0, (exc.field, exc.message))
    if problems or money is None:
        raise MoneyError.of(problems)
    return money


def format_minor(minor: int, digits: int) -> str:
    """`minor` units as the API writes them with `digits` decimals ("12.50", "-0.05", "1000", "1.250"): integer
    arithmetic only, the same text as the exact Decimal's fixed-point form (a test holds the two equal)."""
    if not digits:
        return str(minor)
    whole, fraction = divmod(-minor if minor < 0 else minor, 10**digits)
    return f"{'-' if minor < 0 else ''}{whole}.{fraction:0{digits}d}"


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: `minor` units of `currency` (cents for USD, yen for JPY, fils for KWD)."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.minor) is not int:  # bool and float are refused on purpose
            raise TypeError("Money.minor must be an int")
        if self.currency not in MINOR_DIGITS:
            raise ValueError(f"unknown currency {self.currency!r}")

    @property
    def digits(self) -> int:
        return MINOR_DIGITS[self.currency]

    @classmethod
    def parse(cls, value: object, currency: object, *, field: str = "amount") -> Money:
        """Parse an API amount (string, int or Decimal in major units) for `currency`.

        Refuses floats, exponents in text, digits other than ASCII, and more decimals than the currency
        has. Sign is kept; callers decide whether negative or zero amounts are allowed (`parse_positive`).
        """
        code = parse_currency(currency)
        amount, decimals = _amount_decimal(value, field)
        return cls(_minor_units(amount, decimals, code, field), code)

    @classmethod
    def from_decimal(cls, amount: Decimal, currency: str) -> Money:
        """Exact conversion from a major-unit Decimal; ValueError if it does not fit the digits."""
        scaled = amount.scaleb(MINOR_DIGITS[currency], context=_EXACT)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{amount} has more decimals than {currency} allows")
        return cls(int(scaled), currency)

    def to_decimal(self) -> Decimal:
        """The amount in major units with exactly the currency's digits (Decimal("12.50"))."""
        return Decimal(self.minor).scaleb(-self.digits, context=_EXACT)

    def format(self) -> str:
        """The API's text form: "12.50", "-3.00", "1000", "1.250"."""
        return format_minor(self.minor, MINOR_DIGITS[self.currency])

    def __str__(self) -> str:
        return f"{self.format()} {self.currency}"

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.minor + other.minor, self.currency)

    @property
    def is_positive(self) -> bool:
        return self.minor > 0
