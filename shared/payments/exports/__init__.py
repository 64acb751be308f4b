"""CSV exports of a customer's payments (docs/exports.md), in three parts, each usable on its own:

- `csv_format`: the CSV (`csv_row`, `write_csv`: RFC 4180, formula cells neutralised as OWASP recommends);
- `s3_writer`: `S3ObjectWriter`, bytes streamed into one S3 object, multipart once they outgrow a part;
- `service`: `Exporter`, the use cases behind the routes; the export records are the store's.
"""

from __future__ import annotations

from payments.config import ExportSettings
from payments.exports.csv_format import (
    BOM,
    CONTENT_TYPE,
    HEADER,
    ByteSink,
    csv_row,
    neutralise,
    spreadsheet_time,
    total_cell,
    write_csv,
)
from payments.exports.s3_writer import MIN_PART_SIZE, S3ObjectWriter
from payments.exports.service import (
    STALE_AFTER,
    UNREADABLE,
    Exporter,
    ExportFailed,
    ExportOut,
    ExportRequest,
    Launcher,
    WrittenExport,
    export_key,
    filename_of,
    invoke_self_async,
    s3_client,
    stream_export,
)
from payments.store.export_records import ExportFilters, ExportRecord, ExportStatus, UnreadableRecord

__all__ = [
    "BOM",
    "CONTENT_TYPE",
    "HEADER",
    "MIN_PART_SIZE",
    "STALE_AFTER",
    "UNREADABLE",
    "ByteSink",
    "ExportFailed",
    "ExportFilters",
    "ExportOut",
    "ExportRecord",
    "ExportRequest",
    "ExportSettings",
    "ExportStatus",
    "Exporter",
    "Launcher",
    "S3ObjectWriter",
    "UnreadableRecord",
    "WrittenExport",
    "csv_row",
    "export_key",
    "filename_of",
    "invoke_self_async",
    "neutralise",
    "s3_client",
    "spreadsheet_time",
    "stream_export",
    "total_cell",
    "write_csv",
]
