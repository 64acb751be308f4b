"""Card field checks: digits are ASCII digits only, and every field is named, never echoed."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest

from payments.cards import validate_card
from payments.errors import InvalidInput

TODAY = date(2026, 11, 25)
GOOD = {"number": "4242 4242 4242 4242", "exp_month": "12", "exp_year": "2030", "cvc": "123"}
# One non-ASCII digit of every script, plus characters str.isdigit() accepts but int() does not.
OTHER_DIGITS = sorted(
    {chr(c) for c in range(0x80, 0x110000) if unicodedata.decimal(chr(c), None) == 2} | {"²", "①", "⑵"}
)


def test_the_good_card_is_accepted() -> None:
    card = validate_card(**GOOD, today=TODAY)
    assert (card.number, card.exp_month, card.exp_year, card.cvc) == ("4242424242424242", 12, 2030, "123")
    assert validate_card("4242424242424242", 12, 30, 123, today=TODAY).exp_year == 2030


@pytest.mark.parametrize("digit", OTHER_DIGITS)
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("number", "424242424242424{}"),
        ("exp_month", "1{}"),
        ("exp_month", "{}"),
        ("exp_year", "20{}0"),
        ("cvc", "12{}"),
    ],
)
def test_non_ascii_digits_are_refused_naming_the_field(digit: str, field: str, value: str) -> None:
    card = {**GOOD, field: value.format(digit)}
    with pytest.raises(InvalidInput) as caught:
        validate_card(**card, today=TODAY)
    assert caught.value.field == f"card.{field}"
    assert value.format(digit) not in caught.value.message


@pytest.mark.parametrize(
    ("field", "value"),
    [("exp_month", " 12 "), ("exp_year", "2030\n"), ("exp_month", "+12"), ("exp_month", "1_2"), ("exp_year", "")],
)
def test_only_plain_ascii_whole_numbers_are_read(field: str, value: str) -> None:
    card = {**GOOD, field: value}
    if value.strip().isascii() and value.strip().isdigit():
        assert validate_card(**card, today=TODAY)
        return
    with pytest.raises(InvalidInput) as caught:
        validate_card(**card, today=TODAY)
    assert caught.value.field == f"card.{field}"


def test_every_wrong_card_field_is_named_together() -> None:
    """A payer fixing one field per round trip is what the page complained of: all of them come back at once."""
    with pytest.raises(InvalidInput) as refused:
        validate_card("4242424242424241", "13", "20x1", "12", today=date(2026, 12, 1))
    errors = refused.value.extra["errors"]
    assert [e["field"] for e in errors] == ["card.number", "card.exp_month", "card.exp_year", "card.cvc"]
    assert refused.value.field == "card.number"
    assert all(e["message"].startswith(("card.", "the card")) for e in errors)
    assert "4242" not in str(errors)  # the messages never echo the number
