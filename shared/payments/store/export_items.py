"""Export records in the table: put when an export starts, finished once, read by their customer only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from payments.models import iso_z, utcnow
from payments.store.codec import values
from payments.store.items import customer_pk, export_sk
from payments.store.table import Table, key

if TYPE_CHECKING:
    from payments.store.export_records import ExportRecord, ExportStatus

# The record types and their codec are imported by the methods: only the export path needs them, and the read
# functions should not pay for their dataclasses at start.


class ExportItems(Table):
    """Export records (`EXPORT#<id>` in the customer's partition)."""

    def put_export(self, record: ExportRecord, requested_by: str) -> None:
        from payments.store.export_records import export_item

        self.client.put_item(TableName=self.table, Item=export_item(record, requested_by))

    def finish_export(
        self, customer_id: str, export_id: str, status: ExportStatus, *, rows: int | None = None, failure: str = ""
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
        self.client.update_item(
            TableName=self.table,
            Key=key(customer_pk(customer_id), export_sk(export_id)),
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values(named),
        )

    def get_export(self, customer_id: str, export_id: str) -> ExportRecord | None:
        """The customer's export record (one consistent GetItem), None if there is none; UnreadableRecord if
        the stored item cannot be read."""
        from payments.store.export_records import export_of

        if len(export_id) > 64:
            return None
        item = self.client.get_item(
            TableName=self.table, Key=key(customer_pk(customer_id), export_sk(export_id)), ConsistentRead=True
        ).get("Item")
        return export_of(item) if item else None
