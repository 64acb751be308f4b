"""Money: integer minor units plus an ISO 4217 currency. Never a float.

Amounts cross the API as strings in major units with exactly the currency's minor digits
("12.50" USD, "1000" JPY, "1.250" KWD). Inside the service they are integers of minor units, which
is also what DynamoDB stores and what Stripe, Razorpay and Paystack expect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from payments._currencies import MINOR_DIGITS

# An amount the API accepts as text: optional sign, digits, optional fraction. No exponent, no spaces.
_AMOUNT_TEXT = re.compile(r"^[+-]?(\d+)(\.\d+)?$")


class MoneyError(ValueError):
    """A value that is not a valid amount of money. `field` names the input that was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def currency_digits(currency: str) -> int:
    """ISO 4217 minor-unit digits of `currency` (upper-case code); KeyError if unknown."""
    return MINOR_DIGITS[currency]


def is_currency(code: object) -> bool:
    return isinstance(code, str) and code in MINOR_DIGITS


def parse_currency(code: object, field: str = "currency") -> str:
    if not isinstance(code, str) or not code:
        raise MoneyError(field, f"{field} must be an ISO 4217 currency code such as USD")
    if code not in MINOR_DIGITS:
        hint = " (codes are upper case)" if code.upper() in MINOR_DIGITS else ""
        raise MoneyError(field, f"{field} {code!r} is not an ISO 4217 currency code{hint}")
    return code


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

        Refuses floats, exponents, and more decimals than the currency has. Sign is kept; callers
        decide whether negative or zero amounts are allowed.
        """
        code = parse_currency(currency)
        digits = MINOR_DIGITS[code]
        if isinstance(value, bool) or value is None or isinstance(value, float):
            raise MoneyError(field, f'{field} must be a decimal string such as "12.50"')
        if isinstance(value, int):
            text = str(value)
        elif isinstance(value, Decimal):
            if not value.is_finite():
                raise MoneyError(field, f"{field} must be a finite number")
            text = format(value, "f")
        elif isinstance(value, str):
            text = value.strip()
        else:
            raise MoneyError(field, f'{field} must be a decimal string such as "12.50"')
        match = _AMOUNT_TEXT.match(text)
        if not match:
            raise MoneyError(field, f"{field} {str(value)[:40]!r} is not a decimal number")
        fraction = match.group(2)
        decimals = len(fraction) - 1 if fraction else 0
        if decimals > digits:
            raise MoneyError(
                field,
                f"{field} has {decimals} decimal places but {code} allows {digits}",
            )
        try:
            minor = int(Decimal(text).scaleb(digits))
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only plain decimals
            raise MoneyError(field, f"{field} is not a decimal number") from exc
        return cls(minor, code)

    @classmethod
    def from_decimal(cls, amount: Decimal, currency: str) -> Money:
        """Exact conversion from a major-unit Decimal; ValueError if it does not fit the digits."""
        scaled = amount.scaleb(MINOR_DIGITS[currency])
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{amount} has more decimals than {currency} allows")
        return cls(int(scaled), currency)

    def to_decimal(self) -> Decimal:
        """The amount in major units with exactly the currency's digits (Decimal("12.50"))."""
        return Decimal(self.minor).scaleb(-self.digits)

    def format(self) -> str:
        """The API's text form: "12.50", "-3.00", "1000", "1.250"."""
        return f"{self.to_decimal():.{self.digits}f}"

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
