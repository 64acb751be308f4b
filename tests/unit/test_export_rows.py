"""The export's model-free row path (`payments.store.export_rows.row_of_item`) writes the same CSV, byte for byte, as
the long way through `from_item`, the `Payment` and its API form, for any payment the store can hold."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payments._currencies import MINOR_DIGITS
from payments.exports import write_csv
from payments.exports.csv_format import spreadsheet_text, spreadsheet_time
from payments.ids import new_payment_id
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus
from payments.money import Money, format_minor
from payments.store import from_item, to_item
from payments.store.export_rows import ExportRow, row_of_item, row_of_payment

CURRENCIES = sorted(MINOR_DIGITS)  # every digit count ISO 4217 has: 0 (JPY), 2 (USD), 3 (KWD), 4 (CLF)
# Text a payer or operator may set: formula starters, quotes, separators, line breaks, non-ASCII.
TEXT = st.text(alphabet=st.sampled_from([*list("aZ9 =+-@\t\r\n\"',;é€＝"), "\u2028", "😀"]), max_size=12)
MOMENTS = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)  # years 1-999 too: `iso_z` writes four digits


@st.composite
def payments(draw: st.DrawFn) -> Payment:
    created = draw(MOMENTS)
    status = draw(st.sampled_from(PaymentStatus))
    return Payment(
        id=new_payment_id(created),
        customer_id="acme",
        created_at=created,
        completed_at=created + timedelta(seconds=draw(st.integers(0, 10**6)))
        if status is PaymentStatus.COMPLETED and created.year < 9999
        else None,
        amount_minor=draw(st.integers(-(10**15), 10**15)),
        currency=draw(st.sampled_from(CURRENCIES)),
        status=status,
        method=draw(st.sampled_from(PaymentMethod)),
        description=draw(TEXT),
        reference=draw(st.none() | TEXT),
        refund_of=draw(st.none() | st.just(new_payment_id(created))),
        card_last4=draw(st.none() | st.just("4242")),
        history=(HistoryEntry(at=created, status=status, by="test"),),
    )


def csv_of(rows: list[ExportRow], *, bom: bool) -> bytes:
    sink = io.BytesIO()
    write_csv(rows, sink, bom=bom)
    return sink.getvalue()


@settings(max_examples=300, deadline=None)
@given(st.lists(payments(), min_size=1, max_size=5), st.booleans())
def test_rows_read_from_items_write_the_same_csv_as_rows_from_payments(batch: list[Payment], bom: bool) -> None:
    items = [to_item(p) for p in batch]
    fast = [row_of_item(item) for item in items]
    slow = [row_of_payment(from_item(item)) for item in items]
    assert fast == slow
    assert csv_of(fast, bom=bom) == csv_of(slow, bom=bom)


@pytest.mark.parametrize(
    "stored",
    ["2026-11-25T17:25:08.223Z", "2026-11-25T17:25:08+00:00", "2026-11-25T19:25:08.5+02:00", "0999-01-02T03:04:05Z"],
)
def test_a_stored_time_of_any_iso_form_becomes_the_same_spreadsheet_time(stored: str) -> None:
    """The store writes `iso_z`; items of any other ISO form are parsed, not cut, so none is misread."""
    assert spreadsheet_text(stored) == spreadsheet_time(datetime.fromisoformat(stored))


def test_an_item_with_an_unknown_status_method_or_currency_fails_the_export_as_from_item_would() -> None:
    good = to_item(
        Payment(
            id=new_payment_id(datetime(2026, 1, 1, tzinfo=UTC)),
            customer_id="acme",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
            amount_minor=100,
            currency="USD",
            status=PaymentStatus.PENDING,
            method=PaymentMethod.BANK_TRANSFER,
        )
    )
    assert row_of_item(good).status == "Pending"
    for name, bad in (("status", "lost"), ("method", "barter"), ("currency", "XYZ")):
        item = good | {name: {"S": bad}}
        with pytest.raises(ValueError):
            from_item(item).to_api()
        with pytest.raises(ValueError, match="unreadable payment item"):
            row_of_item(item)


@settings(max_examples=500, deadline=None)
@given(st.integers(-(10**20), 10**20), st.sampled_from(CURRENCIES))
def test_amounts_are_formatted_as_the_exact_decimal_formats_them(minor: int, currency: str) -> None:
    digits = MINOR_DIGITS[currency]
    assert format_minor(minor, digits) == f"{Decimal(minor).scaleb(-digits):.{digits}f}"
    assert Money(minor, currency).format() == format_minor(minor, digits)
