from decimal import Decimal

import pytest

from payments.money import Money, MoneyError, currency_digits, parse_currency


@pytest.mark.parametrize(
    ("value", "currency", "minor", "text"),
    [
        ("12.50", "USD", 1250, "12.50"),
        ("12.5", "USD", 1250, "12.50"),
        ("12", "USD", 1200, "12.00"),
        (12, "USD", 1200, "12.00"),
        (Decimal("0.01"), "USD", 1, "0.01"),
        ("1000", "JPY", 1000, "1000"),
        ("1.250", "KWD", 1250, "1.250"),
        ("-3.00", "EUR", -300, "-3.00"),
        ("0", "USD", 0, "0.00"),
        ("1.2345", "CLF", 12345, "1.2345"),
    ],
)
def test_parse_and_format(value: object, currency: str, minor: int, text: str) -> None:
    money = Money.parse(value, currency)
    assert money == Money(minor, currency)
    assert money.format() == text
    assert Money.parse(money.format(), currency) == money


@pytest.mark.parametrize(
    ("value", "currency", "field", "fragment"),
    [
        ("1.234", "USD", "amount", "3 decimal places but USD allows 2"),
        ("1.5", "JPY", "amount", "1 decimal places but JPY allows 0"),
        ("1.2345", "KWD", "amount", "4 decimal places but KWD allows 3"),
        (1.5, "USD", "amount", "decimal string"),
        (True, "USD", "amount", "decimal string"),
        (None, "USD", "amount", "decimal string"),
        ("1e3", "USD", "amount", "not a decimal number"),
        ("12,50", "USD", "amount", "not a decimal number"),
        ("abc", "USD", "amount", "not a decimal number"),
        ("", "USD", "amount", "not a decimal number"),
        (Decimal("NaN"), "USD", "amount", "finite"),
        ("1.00", "usd", "currency", "upper case"),
        ("1.00", "XYZ", "currency", "not an ISO 4217"),
        ("1.00", "", "currency", "ISO 4217"),
        ("1.00", None, "currency", "ISO 4217"),
        ("1.00", "XAU", "currency", "not an ISO 4217"),  # metals have no minor unit: not money here
    ],
)
def test_parse_refuses_with_named_field(value: object, currency: object, field: str, fragment: str) -> None:
    with pytest.raises(MoneyError) as caught:
        Money.parse(value, currency)
    assert caught.value.field == field
    assert fragment in caught.value.message


def test_money_refuses_floats_and_unknown_currencies() -> None:
    with pytest.raises(TypeError):
        Money(1.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True, "USD")
    with pytest.raises(ValueError, match="unknown currency"):
        Money(1, "ABC")


def test_arithmetic_keeps_currency() -> None:
    assert Money(150, "USD") + Money(-50, "USD") == Money(100, "USD")
    assert -Money(150, "USD") == Money(-150, "USD")
    with pytest.raises(ValueError, match="cannot add EUR to USD"):
        Money(1, "USD") + Money(1, "EUR")


def test_decimal_round_trip_is_exact() -> None:
    assert Money(1250, "KWD").to_decimal() == Decimal("1.250")
    assert Money.from_decimal(Decimal("23.99"), "USD") == Money(2399, "USD")
    with pytest.raises(ValueError, match="more decimals"):
        Money.from_decimal(Decimal("0.001"), "USD")


def test_iso_digits() -> None:
    assert (currency_digits("USD"), currency_digits("JPY"), currency_digits("KWD")) == (2, 0, 3)
    assert parse_currency("EUR") == "EUR"
