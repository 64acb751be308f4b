"""The export use cases behind the routes (docs/exports.md): start an export, write it now or in
the background, describe it. The export record is the store's (`Store.put_export` and so on).

Memory stays flat: payments are read one Query page at a time and each CSV row goes straight into a buffer of
at most one upload part; neither the file nor the list of rows is ever held whole.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from payments import snapstart
from payments.config import ExportSettings, load, settings
from payments.errors import NotFound, PaymentsError
from payments.exports.csv_format import write_csv
from payments.exports.s3_writer import MIN_PART_SIZE, S3ObjectWriter
from payments.models import PaymentStatus, iso_z, utcnow
from payments.store.export_records import ExportFilters, ExportRecord, ExportStatus, UnreadableRecord

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

    from payments.store import Store

logger = logging.getLogger(__name__)

# ---- API shapes -----------------------------------------------------------------------------------


class ExportRequest(BaseModel):
    """`POST /payments/exports` body: the same filters as `GET /payments`. All optional."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    created_from: datetime | None = Field(default=None, alias="from", description="created_at >= (ISO 8601)")
    created_to: datetime | None = Field(default=None, alias="to", description="created_at <= (ISO 8601)")
    status: PaymentStatus | None = None
    q: str | None = Field(default=None, description="Only payments whose text holds this, as GET /payments?q=")
    bom: bool = Field(default=False, description="Start the file with a UTF-8 byte order mark, for Excel")


def _absent(value: object) -> bool:
    return value is None


class ExportOut(BaseModel):
    """An export: once done, the presigned link to its CSV."""

    export_id: str
    status: ExportStatus
    url: str | None = Field(default=None, exclude_if=_absent, description="Presigned GET of the CSV (done only)")
    expires_at: str | None = Field(default=None, exclude_if=_absent, description="When `url` stops working")
    row_count: int | None = Field(default=None, exclude_if=_absent, description="Payments in the file (done only)")
    message: str | None = Field(default=None, exclude_if=_absent, description="Why it failed (failed only)")


class ExportFailed(PaymentsError):
    """S3 or DynamoDB failed while writing an export; nothing partial is left and the client may retry."""

    http_status = 503


# ---- export records (stored by the store) ------------------------------------------------------------

UNREADABLE = "this export's record could not be read; start a new export"


def export_key(customer_id: str, export_id: str) -> str:
    """The customer's own prefix (quoted, so no customer id can reach another's) under `exports/`."""
    return f"exports/{quote(customer_id, safe='')}/{export_id}.csv"


# ---- the use cases --------------------------------------------------------------------------------


# Longer than any Lambda run (15 minutes): a record still "running" after this lost its worker.
STALE_AFTER = timedelta(minutes=16)

Launcher = Callable[[dict[str, str]], None]  # takes the job {"customer_id", "export_id"}


def s3_client() -> S3Client:
    import boto3
    from botocore.config import Config

    # SigV4 presigning: X-Amz-Expires carries the configured lifetime.
    return snapstart.closes_connections(boto3.client("s3", config=Config(signature_version="s3v4")))


def invoke_self_async(job: dict[str, str], function_name: str) -> None:
    """Run `job` in a fresh invocation of this very function (InvocationType=Event returns at once)."""
    import boto3

    boto3.client("lambda").invoke(
        FunctionName=function_name,
        InvocationType="Event",
        Payload=json.dumps({"export_job": job}).encode(),
    )


@dataclass(frozen=True, slots=True)
class WrittenExport:
    rows: int
    size: int  # bytes
    parts: int  # 0: one PutObject


def stream_export(
    store: Store,
    s3: S3Client,
    bucket: str,
    key: str,
    customer_id: str,
    filters: ExportFilters,
    *,
    filename: str,
    part_size: int = MIN_PART_SIZE,
    page_size: int = 500,
) -> WrittenExport:
    """The customer's matching payments, newest first, as one CSV object: Query pages in, parts out."""
    rows = store.stream_rows(
        customer_id,
        page_size=page_size,
        status=filters.status,
        created_from=filters.created_from,
        created_to=filters.created_to,
        search=filters.search,
    )
    disposition = f'attachment; filename="{filename}"'
    with S3ObjectWriter(s3, bucket, key, content_disposition=disposition, part_size=part_size) as out:
        count = write_csv(rows, out, bom=filters.bom)
    return WrittenExport(count, out.bytes_written, out.parts)


def filename_of(record: ExportRecord) -> str:
    """`payments-2026-12-01-UTC.csv`: the day it was made, and the time zone of every time in it."""
    return f"payments-{iso_z(record.created_at)[:10]}-UTC.csv"


class Exporter:
    """Start, run and describe exports. `launcher` (tests inject one) starts the background half."""

    def __init__(
        self,
        store: Store,
        *,
        s3: S3Client | None = None,
        bucket: str | None = None,
        launcher: Launcher | None = None,
        part_size: int = MIN_PART_SIZE,
    ) -> None:
        self.store = store
        self._s3 = s3
        self._bucket = bucket
        self.launcher = launcher
        self.part_size = part_size

    @property
    def s3(self) -> S3Client:
        if self._s3 is None:
            self._s3 = s3_client()
        return self._s3

    @property
    def bucket(self) -> str:
        return self._bucket or settings().exports_bucket

    # -- routes --

    def start(self, customer_id: str, filters: ExportFilters, *, requested_by: str) -> ExportOut:
        """Write the CSV now (status done), or, above the row threshold, in the background (status running)."""
        config = load(ExportSettings)
        export_id = secrets.token_urlsafe(16)
        now = utcnow()
        record = ExportRecord(
            export_id=export_id,
            customer_id=customer_id,
            status=ExportStatus.RUNNING,
            filters=filters,
            s3_key=export_key(customer_id, export_id),
            created_at=now,
            purge_at=int(now.timestamp()) + config.export_retention_days * 86400,
        )
        estimate = self.count_up_to(customer_id, filters, config.async_row_threshold + 1)
        self.store.put_export(record, requested_by)
        logger.info("export started", extra={"export_id": export_id, "estimated_rows": estimate})
        if estimate > config.async_row_threshold:
            self._launch({"customer_id": customer_id, "export_id": export_id}, config)
            return ExportOut(export_id=export_id, status=ExportStatus.RUNNING)
        return self.describe(customer_id, export_id, record=self._write(record))

    def describe(self, customer_id: str, export_id: str, *, record: ExportRecord | None = None) -> ExportOut:
        """The export's status; once done, a freshly presigned link. Another customer's id: 404."""
        try:
            record = record or self._get(customer_id, export_id)
        except UnreadableRecord:  # the customer's own item, but not one we can describe: failed, not 500
            return ExportOut(export_id=export_id, status=ExportStatus.FAILED, message=UNREADABLE)
        if record is None or record.purge_at <= time.time():  # TTL deletion can lag: expired is gone
            raise NotFound(f"export {export_id[:64]} not found")
        if record.status is ExportStatus.DONE:
            seconds = settings().export_url_seconds
            expires_at = utcnow() + timedelta(seconds=seconds)
            url = self.s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": record.s3_key}, ExpiresIn=seconds
            )
            return ExportOut(
                export_id=export_id,
                status=record.status,
                url=url,
                expires_at=iso_z(expires_at),
                row_count=record.row_count,
            )
        if record.status is ExportStatus.RUNNING and utcnow() - record.created_at > STALE_AFTER:
            return ExportOut(
                export_id=export_id, status=ExportStatus.FAILED, message="the export did not finish; start a new one"
            )
        if record.status is ExportStatus.FAILED:
            return ExportOut(export_id=export_id, status=record.status, message=record.failure)
        return ExportOut(export_id=export_id, status=record.status)

    # -- background half --

    def run(self, customer_id: str, export_id: str) -> ExportStatus | None:
        """The asynchronous job. A repeated delivery of a finished job does nothing."""
        try:
            record = self._get(customer_id, export_id)
        except UnreadableRecord:  # logged; a retry would read the same item
            return ExportStatus.FAILED
        if record is None or record.status is not ExportStatus.RUNNING:
            return record.status if record else None
        try:
            return self._write(record).status
        except ExportFailed:
            return ExportStatus.FAILED  # recorded as failed; a Lambda retry would fail the same way

    def _launch(self, job: dict[str, str], config: ExportSettings) -> None:
        try:
            if self.launcher is not None:
                self.launcher(job)
            elif config.async_mode == "thread":  # the local stack has no Lambda service
                threading.Thread(target=self.run, args=(job["customer_id"], job["export_id"]), daemon=True).start()
            elif config.function_name:
                invoke_self_async(job, config.function_name)
            else:
                raise RuntimeError("EXPORT_ASYNC_MODE is lambda but AWS_LAMBDA_FUNCTION_NAME is not set")
        except Exception as exc:
            self._finish(job["customer_id"], job["export_id"], ExportStatus.FAILED, failure="could not start")
            raise ExportFailed("the export could not be started; please try again") from exc

    # -- writing --

    def _write(self, record: ExportRecord) -> ExportRecord:
        """Stream the CSV to S3 and mark the record done, or failed (leaving no object)."""
        try:
            written = stream_export(
                self.store,
                self.s3,
                self.bucket,
                record.s3_key,
                record.customer_id,
                record.filters,
                filename=filename_of(record),
                part_size=self.part_size,
                page_size=load(ExportSettings).page_size,
            )
        except Exception as exc:
            logger.exception("export failed", extra={"export_id": record.export_id})
            self._finish(record.customer_id, record.export_id, ExportStatus.FAILED, failure="the export failed")
            raise ExportFailed("the export could not be written; please try again") from exc
        self._finish(record.customer_id, record.export_id, ExportStatus.DONE, rows=written.rows)
        logger.info("export done", extra={"export_id": record.export_id, "rows": written.rows, "bytes": written.size})
        return replace(record, status=ExportStatus.DONE, row_count=written.rows)

    def _finish(
        self, customer_id: str, export_id: str, status: ExportStatus, *, rows: int | None = None, failure: str = ""
    ) -> None:
        self.store.finish_export(customer_id, export_id, status, rows=rows, failure=failure)

    def _get(self, customer_id: str, export_id: str) -> ExportRecord | None:
        """The customer's export record, None if there is none; UnreadableRecord if it cannot be read."""
        return self.store.get_export(customer_id, export_id)

    # -- estimate --

    def count_up_to(self, customer_id: str, filters: ExportFilters, cap: int) -> int:
        """How many payments match, counting no further than `cap`: the list's key condition, never a Scan.

        DynamoDB still reads (and bills) the counted items, at most 1 MB per request, so the cost is
        bounded by `cap`, not by the size of the account."""
        return self.store.count(
            customer_id,
            cap=cap,
            status=filters.status,
            created_from=filters.created_from,
            created_to=filters.created_to,
        )
