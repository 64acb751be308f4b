"""Raw card field checks done before anything is stored or sent (docs/api.md#bodies-by-method).

Messages name the field and never echo its value: card data must not reach logs or error bodies.
Digits are ASCII digits: `str.isdigit()` and `int()` also take "١٢" or "１２", and `isdigit()` takes "²",
which `int()` then refuses (docs/errors.md).
"""

from __future__ import annotations

import re
from datetime import date

from payments.errors import InvalidInput
from payments.gateways.base import CardInput

_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_BLANKS = " \t\r\n"


def _ascii_digits(text: str) -> bool:
    return _DIGITS.fullmatch(text) is not None


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a string of ASCII digits."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def validate_card(number: object, exp_month: object, exp_year: object, cvc: object, *, today: date) -> CardInput:
    """The card fields checked together: every field that is wrong is named (422), not only the first."""
    problems: list[tuple[str, str]] = []
    digits = str(number if number is not None else "").replace(" ", "").replace("-", "")
    if not _ascii_digits(digits) or not 12 <= len(digits) <= 19:
        problems.append(("card.number", "card.number must be 12 to 19 digits"))
    elif not luhn_ok(digits):
        problems.append(("card.number", "card.number is not a valid card number (checksum failed)"))
    month = _integer(exp_month, "card.exp_month", problems)
    if month is not None and not 1 <= month <= 12:
        problems.append(("card.exp_month", "card.exp_month must be 1 to 12"))
        month = None
    year = _integer(exp_year, "card.exp_year", problems)
    if year is not None and year < 100:
        year += 2000
    if year is not None and month is not None and (year, month) < (today.year, today.month):
        problems.append(("card.exp_year", "the card has expired (card.exp_month/card.exp_year are in the past)"))
    elif year is not None and year > today.year + 50:
        problems.append(("card.exp_year", "card.exp_year is too far in the future"))
    code = str(cvc if cvc is not None else "")
    if not _ascii_digits(code) or not 3 <= len(code) <= 4:
        problems.append(("card.cvc", "card.cvc must be 3 or 4 digits"))
    if problems:
        raise InvalidInput.of(problems)
    assert month is not None  # no problem noted, so both were read
    assert year is not None
    return CardInput(number=digits, exp_month=month, exp_year=year, cvc=code)


def _integer(value: object, field: str, problems: list[tuple[str, str]]) -> int | None:
    """A whole number given as a JSON integer or as ASCII digits (blanks around them allowed); None, with the
    problem noted, for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and len(value) <= 8 and _ascii_digits(value.strip(_BLANKS)):
        return int(value.strip(_BLANKS))
    problems.append((field, f"{field} must be a whole number"))
    return None
