"""What an export writes of each payment, read straight from its stored item: no `Payment`, no API model per row.

An export of 10M payments spends most of its own CPU on each row, so `row_of_item` reads only the ten attributes
the CSV has, as text, where `from_item` builds a whole `Payment` (history, dispute, enums, datetimes) and
`Payment.to_api` a pydantic model. `row_of_payment` is the same row by that long way: the memory store's, and the
reference a test holds `row_of_item` to, byte for byte in the CSV (tests/unit/test_export_rows.py).
"""

from __future__ import annotations

from typing import NamedTuple

from payments._currencies import MINOR_DIGITS
from payments.models import Payment, PaymentMethod, PaymentStatus, iso_z
from payments.money import format_minor
from payments.store.codec import Item

_LABELS = {status.value: status.label for status in PaymentStatus}
_METHODS = frozenset(method.value for method in PaymentMethod)


class ExportRow(NamedTuple):
    """One payment as the export sees it: the API's text of each field (`docs/api.md#the-payment-object`)."""

    id: str
    created_at: str  # ISO 8601 UTC, as stored (iso_z)
    completed_at: str | None
    amount: str  # signed, major units, exactly the currency's digits
    currency: str
    status: str  # the label the CSV shows: Pending, Completed, Cancelled
    method: str
    description: str
    reference: str | None
    refund_of: str | None


def row_of_item(item: Item) -> ExportRow:
    """The row of a stored payment item. A status, method or currency this code does not know raises ValueError,
    as `from_item` would: the export fails rather than write a row nobody can read."""
    status, method, currency = item["status"]["S"], item["method"]["S"], item["currency"]["S"]
    if status not in _LABELS or method not in _METHODS or currency not in MINOR_DIGITS:
        raise ValueError(f"unreadable payment item {item.get('id', {}).get('S', '?')[:64]}")
    completed = item.get("completed_at")
    reference = item.get("reference")
    refund_of = item.get("refund_of")
    return ExportRow(
        item["id"]["S"],
        item["created_at"]["S"],
        completed["S"] if completed else None,
        format_minor(int(item["amount_minor"]["N"]), MINOR_DIGITS[currency]),
        currency,
        _LABELS[status],
        method,
        item.get("description", {}).get("S", ""),
        reference["S"] if reference else None,
        refund_of["S"] if refund_of else None,
    )


def row_of_payment(payment: Payment) -> ExportRow:
    """The same row from a `Payment`, through its API form."""
    out = payment.to_api()
    return ExportRow(
        out.id,
        iso_z(payment.created_at),
        iso_z(payment.completed_at) if payment.completed_at else None,
        out.amount,
        out.currency,
        payment.status.label,
        out.method.value,
        out.description,
        out.reference,
        payment.refund_of,
    )
