"""Export records (the `EXPORT#<id>` items): their values and their (de)serialisation.

Only the export path imports this module (the store's export methods import it when first called).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from payments.models import PaymentStatus, iso_z
from payments.store.codec import Item, item_of, plain, whole
from payments.store.keys import customer_pk, export_sk

logger = logging.getLogger(__name__)


class ExportStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ExportFilters:
    status: PaymentStatus | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    search: str | None = None
    bom: bool = False  # how the file is written, kept with the filters for the background half


@dataclass(frozen=True, slots=True)
class ExportRecord:
    """An export: PK=CUST#<customer>, SK=EXPORT#<id>, outside every payment key range."""

    export_id: str
    customer_id: str
    status: ExportStatus
    filters: ExportFilters
    s3_key: str
    created_at: datetime
    purge_at: int  # epoch seconds: the table's TTL attribute, aligned with the bucket's lifecycle rule
    row_count: int | None = None
    failure: str | None = None


class UnreadableRecord(Exception):
    """A stored export item this code cannot read (a field missing or malformed): answered as failed."""


def export_item(record: ExportRecord, requested_by: str) -> Item:
    f = record.filters
    return item_of(
        {
            "PK": customer_pk(record.customer_id),
            "SK": export_sk(record.export_id),
            "type": "export",
            "export_id": record.export_id,
            "customer_id": record.customer_id,
            "status": record.status.value,
            "s3_key": record.s3_key,
            "created_at": iso_z(record.created_at),
            "requested_by": requested_by,
            "expires_at": record.purge_at,
            "filter_status": f.status.value if f.status else None,
            "filter_from": iso_z(f.created_from) if f.created_from else None,
            "filter_to": iso_z(f.created_to) if f.created_to else None,
            "filter_q": f.search or None,
            "bom": True if f.bom else None,
        }
    )


def export_of(item: Item) -> ExportRecord:
    """The record of a stored item; UnreadableRecord (logged) rather than a KeyError/ValueError."""
    try:
        return _parse(item)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        logger.error(
            "unreadable export record",
            extra={"sk": str(item.get("SK", {}).get("S", ""))[:80], "error": f"{type(exc).__name__}: {exc}"[:300]},
        )
        raise UnreadableRecord(str(exc)) from exc


def _parse(item: Item) -> ExportRecord:
    values = plain(item)

    def text(name: str) -> str | None:
        value = values.get(name)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} is not a string")
        return value

    def required(name: str) -> str:
        value = text(name)
        if value is None:
            raise KeyError(name)
        return value

    def moment(name: str) -> datetime | None:
        value = text(name)
        if not value:
            return None
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:  # iso_z always writes Z; compared with aware times later
            raise ValueError(f"{name} has no time zone")
        return parsed

    def number(name: str) -> int | None:
        value = values.get(name)
        return None if value is None else whole(value)

    status = text("filter_status")
    created_at = moment("created_at")
    purge_at = number("expires_at")
    if created_at is None or purge_at is None:
        raise KeyError("created_at" if created_at is None else "expires_at")
    return ExportRecord(
        export_id=required("export_id"),
        customer_id=required("customer_id"),
        status=ExportStatus(required("status")),
        filters=ExportFilters(
            PaymentStatus(status) if status else None,
            moment("filter_from"),
            moment("filter_to"),
            text("filter_q"),
            values.get("bom") is True,
        ),
        s3_key=required("s3_key"),
        created_at=created_at,
        purge_at=purge_at,
        row_count=number("row_count"),
        failure=text("failure"),
    )
