"""NOWPayments' IPNs and API answers, as the NOWPayments adapter reads them (docs/gateways.md#nowpayments).

IPNs and the payments list are parsed with `nowpayments.loads_exact`, which keeps every JSON number as the
`JsonNumber` token it was sent as (the IPN signature is over those tokens, and amounts are never floats). The
models read from that exact-parsed dict: ids and statuses as text (a number keeps its token: `123456789`,
`0.00058`), prices as exact Decimals. The signature itself is checked over the dict, never over a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Annotated

from pydantic import BeforeValidator, Field

from payments.gateways.payload import MaybeText, Payload, Text, objects_only
from payments.money import Money


@dataclass(frozen=True, slots=True)
class JsonNumber:
    """A JSON number exactly as the text spelt it."""

    token: str

    def to_decimal(self) -> Decimal:
        return Decimal(self.token)


def number_text(value: object) -> str | None:
    """A field NOWPayments sends as a number or a string, as text: a number as its token, exactly."""
    if isinstance(value, JsonNumber):
        return value.token
    if isinstance(value, int) and not isinstance(value, bool):  # from a plain json parse
        return str(value)
    return value if isinstance(value, str) and value else None


NumberText = Annotated[str | None, BeforeValidator(number_text)]
"""An id or status, as text; absent when it is neither a number nor a non-empty string."""

RequiredNumberText = Annotated[str, BeforeValidator(number_text)]


def exact_decimal(value: object) -> Decimal | None:
    """An amount exactly: a JSON number's token or a decimal string as a Decimal (never via float), else None."""
    if isinstance(value, JsonNumber):
        value = value.token
    elif isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


ExactDecimal = Annotated[Decimal | None, BeforeValidator(exact_decimal)]


class Payment(Payload):
    """A NOWPayments payment: one of GET /v1/payment/'s `data`. Our ids are only in `order_id`."""

    payment_id: NumberText = None  # NOWPayments' own id (a number)
    invoice_id: NumberText = None  # the invoice create() opened: our gateway_ref
    order_id: NumberText = None  # ours: "<customer_id>:<payment_id>"
    payment_status: NumberText = None  # waiting, confirming, confirmed, sending, partially_paid, finished, ...
    price_amount: ExactDecimal = None  # the fiat price, in major units
    price_currency: MaybeText = None  # lower case

    @property
    def price(self) -> Money | None:
        """The fiat price (`price_amount` in `price_currency`): the amount our payment was for. None if either is
        missing, or the price has more decimals than its currency."""
        if self.price_amount is None or self.price_currency is None:
            return None
        try:
            return Money.from_decimal(self.price_amount, self.price_currency.upper())
        except (ArithmeticError, ValueError, KeyError):  # a currency we do not know, or too many decimals
            return None


class Ipn(Payment):
    """An IPN: a payment's status changed."""

    payment_id: RequiredNumberText
    payment_status: RequiredNumberText
    actually_paid: NumberText = None  # the crypto paid so far, as its token: tells re-deposits apart
    pay_amount: ExactDecimal = None  # the crypto asked for (the price at the invoice's rate)
    parent_payment_id: NumberText = None  # a re-deposit: the payment it adds to

    def arrived(self) -> Money | None:
        """The fiat value of what arrived so far: the price times `actually_paid / pay_amount`, rounded down to the
        currency's minor units (never credit more than arrived), at most the price. None if it cannot be known."""
        price = self.price
        paid = exact_decimal(self.actually_paid)
        if price is None or paid is None or self.pay_amount is None or self.pay_amount <= 0 or paid <= 0:
            return None
        share = Decimal(price.minor) * paid / self.pay_amount
        return Money(min(int(share.to_integral_value(rounding=ROUND_FLOOR)), price.minor), price.currency)


class Payments(Payload):
    """GET /v1/payment/'s answer; anything in `data` that is not an object is skipped."""

    data: Annotated[list[Payment], BeforeValidator(objects_only)] = Field(default_factory=list)


class Invoice(Payload):
    """POST /v1/invoice's answer."""

    id: RequiredNumberText
    invoice_url: Text
