import unicodedata
from decimal import Decimal

import pytest

from payments.money import Money, MoneyError, currency_digits, parse_currency, parse_positive


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
        (" 12.50\n", "USD", 1250, "12.50"),
        (Decimal("1.5E+2"), "USD", 15000, "150.00"),
        (Decimal("-0E-2"), "USD", 0, "0.00"),
        ("1.2345", "CLF", 12345, "1.2345"),
        ("123456789012345678901234567890.1234", "CLF", 1234567890123456789012345678901234, None),  # exact
        (Decimal("9" * 31 + ".99"), "USD", int("9" * 33), None),
    ],
)
def test_parse_and_format(value: object, currency: str, minor: int, text: str | None) -> None:
    money = Money.parse(value, currency)
    assert money == Money(minor, currency)
    assert money.format() == (text or str(value).strip())
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
        ("1.00", "XAU", "currency", "currency XAU is an ISO 4217 code without minor units (gold)"),
        ("1.00", "XDR", "currency", "without minor units (SDR (Special Drawing Right)); payments cannot be made"),
        ("1.00", "xau", "currency", "upper case"),
        ("١٢", "USD", "amount", "not a decimal number"),
        ("１２.50", "USD", "amount", "not a decimal number"),
        ("12.٥", "USD", "amount", "not a decimal number"),
        ("²", "USD", "amount", "not a decimal number"),
        ("\u200312", "USD", "amount", "not a decimal number"),
        (Decimal("1E+400000000"), "USD", "amount", "too large"),
        ("1" * 32, "USD", "amount", "too large"),
        (10**4000, "USD", "amount", "too large"),
        (Decimal("1E-400000000"), "USD", "amount", "400000000 decimal places but USD allows 2"),
        (Decimal("-0E-400000000"), "USD", "amount", "decimal places"),
        (Decimal("Infinity"), "USD", "amount", "finite"),
    ],
)
def test_parse_refuses_with_named_field(value: object, currency: object, field: str, fragment: str | None) -> None:
    with pytest.raises(MoneyError) as caught:
        Money.parse(value, currency)
    assert caught.value.field == field
    assert fragment is None or fragment in caught.value.message
    assert caught.value.problems == ((field, caught.value.message),)


# Every Unicode decimal digit that is not ASCII: int() and Decimal() read them all, the API must not.
OTHER_DIGITS = sorted({chr(c) for c in range(0x80, 0x110000) if unicodedata.decimal(chr(c), None) is not None})


def test_no_digit_but_ascii_makes_an_amount() -> None:
    assert len(OTHER_DIGITS) > 600
    for digit in OTHER_DIGITS:
        for text in (digit, f"1{digit}", f"1.{digit}0", f"{digit}.00"):
            with pytest.raises(MoneyError) as caught:
                Money.parse(text, "USD")
            assert caught.value.field == "amount"
            assert "is not a decimal number" in caught.value.message


@pytest.mark.parametrize(
    ("amount", "currency", "problems"),
    [
        ("abc", "XYZ", [("amount", "amount 'abc' is not a decimal number"),
                        ("currency", "currency 'XYZ' is not an ISO 4217 currency code")]),
        (None, None, [("amount", "amount is required"), ("currency", "currency is required")]),
        ("", "", [("amount", "amount is required"), ("currency", "currency is required")]),
        ("1.234", "XAU", [("currency", "without minor units (gold)")]),  # decimals need a currency
        ("-1", "XYZ", [("amount", "greater than zero"), ("currency", "not an ISO 4217 currency code")]),
        ("0", "USD", [("amount", "amount must be greater than zero")]),
        ("-1", "EUR", [("amount", "amount must be greater than zero")]),
        ("1000000.01", "USD", [("amount", "amount must not exceed 1000000 USD")]),
        (Decimal("1E+400000000"), "USD", [("amount", "amount must not exceed 1000000 USD")]),
        ("1.234", "USD", [("amount", "amount has 3 decimal places but USD allows 2")]),
        (1.5, "usd", [("amount", "decimal string"), ("currency", "upper case")]),
    ],
)  # fmt: skip
def test_parse_positive_reports_every_problem(amount: object, currency: object, problems: list) -> None:
    with pytest.raises(MoneyError) as caught:
        parse_positive(amount, currency, limit=Decimal(1_000_000))
    assert [field for field, _ in caught.value.problems] == [field for field, _ in problems]
    for (_, message), (_, fragment) in zip(caught.value.problems, problems, strict=True):
        assert fragment in message
    assert caught.value.field == problems[0][0]
    assert caught.value.message == "; ".join(message for _, message in caught.value.problems)


def test_parse_positive_accepts_a_payable_amount() -> None:
    assert parse_positive("12.50", "USD", limit=Decimal(100)) == Money(1250, "USD")
    assert parse_positive(Decimal("100"), "JPY", limit=Decimal(100)) == Money(100, "JPY")


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
