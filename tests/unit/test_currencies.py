"""The generated ISO 4217 table must match the maintained `iso4217` package it was made from."""

import iso4217

from payments._currencies import MINOR_DIGITS, PUBLISHED, WITHOUT_MINOR_UNITS
from scripts.gen_currencies import TARGET, render


def test_table_matches_the_installed_iso4217_package() -> None:
    expected = {c.code: c.exponent for c in iso4217.Currency if c.exponent is not None}
    assert expected == MINOR_DIGITS
    assert str(iso4217.__published__) == PUBLISHED


def test_every_iso4217_code_is_known_payable_or_not() -> None:
    without = {c.code: c.currency_name for c in iso4217.Currency if c.exponent is None}
    assert without == WITHOUT_MINOR_UNITS
    assert {"XAU", "XAG", "XPT", "XPD", "XDR", "XTS", "XXX", "XBA"} <= WITHOUT_MINOR_UNITS.keys()
    assert MINOR_DIGITS.keys() | WITHOUT_MINOR_UNITS.keys() == {c.code for c in iso4217.Currency}
    assert not MINOR_DIGITS.keys() & WITHOUT_MINOR_UNITS.keys()
    assert {"BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI", "UYW"} <= MINOR_DIGITS.keys()  # funds codes


def test_generated_file_is_current() -> None:
    assert TARGET.read_text() == render(), "run `make currencies` and commit the result"
