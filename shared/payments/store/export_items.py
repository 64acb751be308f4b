"""Export records in the table: put when an export starts, finished once, read by their customer only.

`PaymentStore` imports this module when first asked for an export record, which the read functions never do."""

from __future__ import annotations

from payments.models import iso_z, utcnow
from payments.store.codec import values
from payments.store.export_records import ExportRecord, ExportStatus, export_item, export_of
from payments.store.keys import customer_pk, export_sk
from payments.store.table import Table, key


def put_export(store: Table, record: ExportRecord, requested_by: str) -> None:
    store.client.put_item(TableName=store.table, Item=export_item(record, requested_by))


def finish_export(
    store: Table, customer_id: str, export_id: str, status: ExportStatus, *, rows: int | None = None, failure: str = ""
) -> None:
    """Set the export's final status (and its row count, or what failed)."""
    sets = ["#status = :status", "finished_at = :now"]
    named: dict[str, object] = {":status": status.value, ":now": iso_z(utcnow())}
    if rows is not None:
        sets.append("row_count = :rows")
        named[":rows"] = rows
    if failure:
        sets.append("failure = :failure")
        named[":failure"] = failure
    store.client.update_item(
        TableName=store.table,
        Key=key(customer_pk(customer_id), export_sk(export_id)),
        UpdateExpression="SET " + ", ".join(sets),
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues=values(named),
    )


def get_export(store: Table, customer_id: str, export_id: str) -> ExportRecord | None:
    """The customer's export record (one consistent GetItem), None if there is none; UnreadableRecord if
    the stored item cannot be read."""
    if len(export_id) > 64:
        return None
    item = store.client.get_item(
        TableName=store.table, Key=key(customer_pk(customer_id), export_sk(export_id)), ConsistentRead=True
    ).get("Item")
    return export_of(item) if item else None
