"""CSV formatting and the streaming S3 writer of the exports (docs/api.md#the-csv-file), without AWS."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from payments import exports
from payments.exports import HEADER, S3ObjectWriter, csv_row, neutralise, spreadsheet_time, write_csv
from payments.ids import new_payment_id
from payments.models import Payment, PaymentMethod, PaymentStatus
from payments.store.export_rows import ExportRow, row_of_payment

CREATED = datetime(2026, 11, 25, 17, 25, 8, 223000, tzinfo=UTC)


def payment(
    minor: int = 1250,
    currency: str = "USD",
    status: PaymentStatus = PaymentStatus.COMPLETED,
    method: PaymentMethod = PaymentMethod.CREDIT_CARD,
    description: str = "Top-up",
    reference: str | None = None,
    created_at: datetime = CREATED,
    refund_of: str | None = None,
) -> Payment:
    return Payment(
        id=new_payment_id(created_at),
        customer_id="acme",
        created_at=created_at,
        completed_at=created_at + timedelta(seconds=3) if status is PaymentStatus.COMPLETED else None,
        amount_minor=minor,
        currency=currency,
        status=status,
        method=method,
        description=description,
        reference=reference,
        refund_of=refund_of,
    )


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


class Collect:
    """A ByteSink that keeps every write separately."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    @property
    def data(self) -> bytes:
        return b"".join(self.writes)


# ---- rows -----------------------------------------------------------------------------------------


def test_header_starts_with_the_five_pinned_columns() -> None:
    sink = Collect()
    assert write_csv([], sink) == 0
    assert (
        sink.data
        == b"Date/Time,Total,Currency,Status,Description,Payment ID,Method,Reference,Created At,Original Payment ID\r\n"
    )


@pytest.mark.parametrize(
    ("minor", "currency", "method", "total"),
    [
        (1250, "USD", PaymentMethod.CREDIT_CARD, "12.50"),
        (-300, "USD", PaymentMethod.PURCHASE, "-3.00"),
        (-5, "EUR", PaymentMethod.REFUND, "-0.05"),
        (1000, "JPY", PaymentMethod.VOUCHER, "1000"),
        (1250, "KWD", PaymentMethod.BANK_TRANSFER, "1.250"),
    ],
)
def test_amounts_are_formatted_as_the_api_formats_them(minor, currency, method, total) -> None:
    row = csv_row(payment(minor, currency, method=method))
    assert row[1:3] == (total, currency)
    assert row[1] == payment(minor, currency, method=method).to_api().amount


def test_a_completed_payment_row_in_column_order() -> None:
    p = payment(-300, "USD", method=PaymentMethod.PURCHASE, description="Plan upgrade", reference="INV-7")
    assert csv_row(p) == (
        "2026-11-25 17:25:11",  # Date/Time as spreadsheets read a date and time: UTC, whole seconds
        "-3.00",
        "USD",
        "Completed",
        "Plan upgrade",
        p.id,
        "purchase",
        "INV-7",
        "2026-11-25 17:25:08",
        "",  # Original Payment ID: a purchase takes from no payment
    )


@pytest.mark.parametrize("method", [PaymentMethod.REFUND, PaymentMethod.CHARGEBACK, PaymentMethod.CHARGEBACK_REVERSAL])
def test_a_refund_or_chargeback_row_names_its_original(method: PaymentMethod) -> None:
    original = "pay_01JDQ4W6S8X7C3M2K9V5T0R1AC"
    p = payment(
        -500 if method is not PaymentMethod.CHARGEBACK_REVERSAL else 500, "USD", method=method, refund_of=original
    )
    row = dict(zip(HEADER, csv_row(p), strict=True))
    assert (row["Method"], row["Original Payment ID"], row["Payment ID"]) == (method.value, original, p.id)


def test_times_are_spreadsheet_times_in_utc_that_read_back_as_the_apis() -> None:
    p = payment(1250, "EUR")
    row = csv_row(p)
    for cell, api_time in ((row[0], p.to_api().completed_at), (row[8], p.to_api().created_at)):
        parsed = datetime.strptime(cell, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        assert api_time is not None and parsed == datetime.fromisoformat(api_time).replace(microsecond=0)
    assert spreadsheet_time(datetime(99, 1, 2, 3, 4, 5, tzinfo=UTC)) == "0099-01-02 03:04:05"  # 4-digit years


def test_a_byte_order_mark_is_written_first_only_when_asked() -> None:
    plain, marked, one = io.BytesIO(), io.BytesIO(), payment(100, "EUR", description="Café")
    write_csv([row_of_payment(one)], plain)
    write_csv([row_of_payment(one)], marked, bom=True)
    assert marked.getvalue() == b"\xef\xbb\xbf" + plain.getvalue()
    assert plain.getvalue().startswith(b"Date/Time,")


@pytest.mark.parametrize(
    ("status", "label"), [(PaymentStatus.PENDING, "Pending"), (PaymentStatus.CANCELLED, "Cancelled")]
)
def test_not_completed_payments_have_an_empty_date_time_and_their_label(status, label) -> None:
    row = csv_row(payment(status=status, method=PaymentMethod.BANK_TRANSFER))
    assert row[0] == ""
    assert row[3] == label
    assert row[7] == ""  # no reference


# ---- formula neutralisation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        (" =1+1", "' =1+1"),  # hidden behind a blank
        ('"=1+1', "'\"=1+1"),  # hidden behind a quote
        ("＝1+1", "'＝1+1"),  # full-width equals sign
        ("Top-up = 10 USD", "Top-up = 10 USD"),  # only the first character matters
        ("'=already text", "'=already text"),
        ("", ""),
        ("plain", "plain"),
    ],
)
def test_formula_cells_are_neutralised_with_a_leading_quote(cell, expected) -> None:
    assert neutralise(cell) == expected


def test_user_text_columns_are_neutralised_but_the_signed_total_stays_a_number() -> None:
    row = csv_row(payment(-300, method=PaymentMethod.REFUND, description='=HYPERLINK("http://x")', reference="@evil"))
    assert row[1] == "-3.00"
    assert float(row[1]) == -3.0
    assert row[4] == '\'=HYPERLINK("http://x")'
    assert row[7] == "'@evil"


def test_a_total_that_is_not_a_plain_signed_number_is_neutralised() -> None:
    assert exports.total_cell("-3.00") == "-3.00"
    assert exports.total_cell("-1+2") == "'-1+2"


# ---- RFC 4180 and streaming -----------------------------------------------------------------------


def test_rfc4180_quoting_and_crlf_round_trip() -> None:
    tricky = 'Line one\nline "two", with comma; and ünïcödé €'
    p = payment(description=tricky, reference="a,b")
    sink = Collect()
    assert write_csv([row_of_payment(p)], sink) == 1
    text = sink.data.decode("utf-8")
    assert text.endswith("\r\n")
    assert '"Line one\nline ""two"", with comma; and ünïcödé €"' in text
    header, row = parse(sink.data)
    assert header == list(HEADER)
    assert row[4] == tricky
    assert row[7] == "a,b"


def test_rows_are_written_while_payments_are_still_being_read() -> None:
    """write_csv never collects the rows: each one reaches the sink before the next payment is read."""
    sink = Collect()
    seen_before: list[int] = []

    def payments() -> Iterator[ExportRow]:
        for i in range(5):
            seen_before.append(len(sink.writes))
            yield row_of_payment(payment(i + 1, created_at=CREATED - timedelta(minutes=i)))

    assert write_csv(payments(), sink) == 5
    assert seen_before == [1, 2, 3, 4, 5]  # header, then one write per row already done
    assert len(parse(sink.data)) == 6


def test_export_request_reads_from_and_to_and_refuses_unknown_fields() -> None:
    body = exports.ExportRequest.model_validate({"from": "2026-01-01T00:00:00Z", "status": "completed"})
    assert body.created_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert body.created_to is None
    assert body.status is PaymentStatus.COMPLETED
    with pytest.raises(ValueError, match="start"):
        exports.ExportRequest.model_validate({"start": "2026-01-01T00:00:00Z"})


def test_export_keys_stay_under_the_customers_own_prefix() -> None:
    assert exports.export_key("acme", "abc") == "exports/acme/abc.csv"
    assert exports.export_key("../other", "abc") == "exports/..%2Fother/abc.csv"


# ---- the S3 writer against a recording client -------------------------------------------------------


class FakeS3:
    """Records S3 calls; `fail_on` makes that call (its nth occurrence) raise."""

    def __init__(self, fail_on: tuple[str, int] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_on = fail_on

    def _record(self, name: str, kwargs: dict[str, Any]) -> None:
        kwargs = {k: bytes(v) if isinstance(v, bytearray) else v for k, v in kwargs.items()}
        self.calls.append((name, kwargs))
        if self.fail_on and self.fail_on[0] == name and self.names().count(name) == self.fail_on[1]:
            raise ConnectionError(f"{name} failed")

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def put_object(self, **kw: Any) -> dict[str, Any]:
        self._record("put_object", kw)
        return {}

    def create_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        self._record("create_multipart_upload", kw)
        return {"UploadId": "up-1"}

    def upload_part(self, **kw: Any) -> dict[str, Any]:
        self._record("upload_part", kw)
        return {"ETag": f'"etag-{kw["PartNumber"]}"', "ChecksumCRC32": "AAAAAA=="}

    def complete_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        self._record("complete_multipart_upload", kw)
        return {}

    def abort_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        self._record("abort_multipart_upload", kw)
        return {}


def upload(s3: FakeS3, chunks: Iterable[bytes], part_size: int) -> None:
    with S3ObjectWriter(s3, "bucket", "k", part_size=part_size) as out:  # type: ignore[arg-type]
        for chunk in chunks:
            out.write(chunk)


def test_a_small_output_is_one_encrypted_put_with_csv_headers() -> None:
    s3 = FakeS3()
    with S3ObjectWriter(s3, "bucket", "exports/acme/x.csv", content_disposition="attachment") as out:  # type: ignore[arg-type]
        out.write(b"a,b\r\n")
        out.write(b"1,2\r\n")
    assert s3.names() == ["put_object"]
    put = s3.calls[0][1]
    assert put["Body"] == b"a,b\r\n1,2\r\n"
    assert put["ContentType"] == "text/csv; charset=utf-8"
    assert put["ServerSideEncryption"] == "AES256"
    assert put["ContentDisposition"] == "attachment"


def test_a_large_output_goes_up_in_parts_of_at_least_part_size() -> None:
    s3 = FakeS3()
    chunks = [bytes([65 + i % 26]) * 30 for i in range(10)]  # 300 bytes
    with S3ObjectWriter(s3, "bucket", "k", part_size=100) as out:  # type: ignore[arg-type]
        for chunk in chunks:
            out.write(chunk)
    assert s3.names() == ["create_multipart_upload", *["upload_part"] * 3, "complete_multipart_upload"]
    create = s3.calls[0][1]
    assert (create["ContentType"], create["ServerSideEncryption"]) == ("text/csv; charset=utf-8", "AES256")
    bodies = [kw["Body"] for name, kw in s3.calls if name == "upload_part"]
    assert b"".join(bodies) == b"".join(chunks)
    assert all(len(body) >= 100 for body in bodies[:-1])
    assert [kw["PartNumber"] for name, kw in s3.calls if name == "upload_part"] == [1, 2, 3]
    parts = s3.calls[-1][1]["MultipartUpload"]["Parts"]
    assert [p["ETag"] for p in parts] == ['"etag-1"', '"etag-2"', '"etag-3"']


@pytest.mark.parametrize(
    ("fail_on", "calls"),
    [
        (("upload_part", 2), ["create_multipart_upload", "upload_part", "upload_part", "abort_multipart_upload"]),
        (
            ("complete_multipart_upload", 1),
            ["create_multipart_upload", *["upload_part"] * 5, "complete_multipart_upload", "abort_multipart_upload"],
        ),
    ],
)
def test_a_failure_midway_aborts_the_multipart_upload(fail_on, calls) -> None:
    s3 = FakeS3(fail_on=fail_on)
    with pytest.raises(ConnectionError):
        upload(s3, [b"x" * 10] * 5, part_size=10)
    assert s3.names() == calls
    assert s3.calls[-1][1] == {"Bucket": "bucket", "Key": "k", "UploadId": "up-1"}


def test_an_error_in_the_producer_aborts_too() -> None:
    def failing_rows() -> Iterator[bytes]:
        yield b"x" * 25
        raise RuntimeError("reading payments failed")

    s3 = FakeS3()
    with pytest.raises(RuntimeError, match="reading payments failed"):
        upload(s3, failing_rows(), part_size=10)
    assert s3.names() == ["create_multipart_upload", "upload_part", "abort_multipart_upload"]
