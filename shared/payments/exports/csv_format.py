"""The CSV of an export (docs/exports.md): RFC 4180, formula cells neutralised as OWASP recommends, times as
spreadsheets read them, written row by row into any byte sink."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Protocol

from payments.models import Payment
from payments.store.export_rows import ExportRow, row_of_payment

HEADER = (
    "Date/Time",
    "Total",
    "Currency",
    "Status",
    "Description",
    "Payment ID",
    "Method",
    "Reference",
    "Created At",
    "Original Payment ID",  # a refund's, chargeback's or reversal's: the payment it takes from or gives back to
)
CONTENT_TYPE = "text/csv; charset=utf-8"
# Excel reads a CSV as the system's code page unless the file starts with this byte order mark.
BOM = "\ufeff"

# First characters that make Excel, LibreOffice or Google Sheets read a cell as a formula (OWASP's list,
# plus LF and NUL from ASVS 1.2.10, plus the full-width forms some East Asian Excel builds also accept).
_FORMULA_STARTS = frozenset("=+-@\t\r\n\0＝＋－＠")
_SIGNED_AMOUNT = re.compile(r"-?\d+(\.\d+)?")


def neutralise(cell: str) -> str:
    """A text cell a spreadsheet shows as text: a leading `'` in front of anything formula-like.

    Also covers a trigger hidden behind leading blanks or quotes (` =1+1`, `"=1+1`), which some
    spreadsheets strip before deciding.
    """
    if not cell:
        return cell
    hidden = cell[0] in ' "' and cell.lstrip(' "')[:1] in _FORMULA_STARTS
    return "'" + cell if cell[0] in _FORMULA_STARTS or hidden else cell


def total_cell(amount: str) -> str:
    """The signed API amount ("-3.00") stays a number; anything else would be a bug, so it is neutralised."""
    return amount if _SIGNED_AMOUNT.fullmatch(amount) else neutralise(amount)


def spreadsheet_time(moment: datetime | None) -> str:
    """`2026-12-01 18:11:18` in UTC: what Excel, LibreOffice and Google Sheets read as a date and time (they
    read the API's `2026-12-01T18:11:18.243Z` as text). Whole seconds; the API keeps the milliseconds."""
    if moment is None:
        return ""
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-{utc:%m-%d %H:%M:%S}"


def spreadsheet_text(stored: str | None) -> str:
    """`spreadsheet_time` of a stored ISO 8601 time: cut out of the `iso_z` text the store writes
    (`2026-12-01T18:11:18.243Z`), parsed only when it has another form."""
    if not stored:
        return ""
    if len(stored) == 24 and stored[23] == "Z" and stored[10] == "T":
        return f"{stored[:10]} {stored[11:19]}"
    return spreadsheet_time(datetime.fromisoformat(stored))


def csv_cells(row: ExportRow) -> tuple[str, ...]:
    """One payment in HEADER's order: amounts exactly as the API formats them, times as spreadsheet times."""
    return (
        spreadsheet_text(row.completed_at),
        total_cell(row.amount),
        neutralise(row.currency),
        neutralise(row.status),
        neutralise(row.description),
        neutralise(row.id),
        neutralise(row.method),
        neutralise(row.reference or ""),
        spreadsheet_text(row.created_at),
        neutralise(row.refund_of or ""),
    )


def csv_row(payment: Payment) -> tuple[str, ...]:
    """`csv_cells` of a `Payment` (through its API form)."""
    return csv_cells(row_of_payment(payment))


class ByteSink(Protocol):
    def write(self, data: bytes, /) -> None: ...


class _Utf8Lines:
    """The text file `csv.writer` wants, handing each encoded row on as soon as it is written."""

    def __init__(self, sink: ByteSink) -> None:
        self._sink = sink

    def write(self, text: str) -> int:
        self._sink.write(text.encode("utf-8"))
        return len(text)


def write_csv(rows: Iterable[ExportRow], sink: ByteSink, *, bom: bool = False) -> int:
    """The header and one RFC 4180 row per payment into `sink`, row by row. Returns the number of rows.
    `bom`: start with a UTF-8 byte order mark, so Excel reads non-ASCII text right."""
    lines = _Utf8Lines(sink)
    if bom:
        lines.write(BOM)
    writer = csv.writer(lines, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(HEADER)
    written = 0
    for row in rows:
        writer.writerow(csv_cells(row))
        written += 1
    return written
