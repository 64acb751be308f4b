"""POST /payments/exports and GET /payments/exports/{id} through the real handler, moto's DynamoDB and S3.

The CSV is always fetched through the presigned link the route answers, and compared with what
`GET /payments` pages out for the same filters.
"""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from payments import exports
from payments.config import settings
from payments.exports import S3ObjectWriter
from payments.ids import new_payment_id
from payments.models import Payment, PaymentMethod, PaymentStatus
from payments.store import PaymentStore
from tests.conftest import FakeContext, aws_client, claims_for, http_event, invoke, load_function

pytestmark = pytest.mark.usefixtures("aws")
BASE = datetime(2026, 3, 1, tzinfo=UTC)
HEADER = [
    "Date/Time",
    "Total",
    "Currency",
    "Status",
    "Description",
    "Payment ID",
    "Method",
    "Reference",
    "Created At",
    "Original Payment ID",
]

# (minor units, currency, status, method, description, reference): varied on purpose.
SPECS: list[tuple[int, str, PaymentStatus, PaymentMethod, str, str | None]] = [
    (1250, "USD", PaymentStatus.COMPLETED, PaymentMethod.CREDIT_CARD, "Top-up", None),
    (-300, "USD", PaymentStatus.COMPLETED, PaymentMethod.PURCHASE, "Plan upgrade", "INV-1"),
    (-5, "USD", PaymentStatus.COMPLETED, PaymentMethod.REFUND, "Refund, partial", "pay_original"),
    (1000, "JPY", PaymentStatus.PENDING, PaymentMethod.BANK_TRANSFER, 'Quote "inside", and comma', "BT-1"),
    (1250, "KWD", PaymentStatus.CANCELLED, PaymentMethod.PAYPAL, "Two\nlines", None),
    (2000, "EUR", PaymentStatus.COMPLETED, PaymentMethod.VOUCHER, '=HYPERLINK("http://x")', None),
    (700, "USD", PaymentStatus.PENDING, PaymentMethod.RAZORPAY, "-5% promo", "@ref"),
    (999, "GBP", PaymentStatus.COMPLETED, PaymentMethod.PAYSTACK, "ünïcödé €", "+44"),
]


def seed(customer: str, count: int, *, start: datetime = BASE) -> list[Payment]:
    """`count` payments one hour apart, cycling through SPECS."""
    store = PaymentStore()
    made = []
    for i in range(count):
        minor, currency, status, method, description, reference = SPECS[i % len(SPECS)]
        at = start + timedelta(hours=i)
        payment = Payment(
            id=new_payment_id(at),
            customer_id=customer,
            created_at=at,
            completed_at=at + timedelta(minutes=2) if status is PaymentStatus.COMPLETED else None,
            amount_minor=minor,
            currency=currency,
            status=status,
            method=method,
            description=f"{description}" if i < len(SPECS) else f"{description} #{i}",
            reference=reference,
        )
        assert store.add(payment)
        made.append(payment)
    return made


@pytest.fixture(scope="module")
def handler():
    return load_function("export_csv")


@pytest.fixture
def env(monkeypatch):
    """Set environment variables for one test; settings() is re-read before and after."""

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        settings.cache_clear()

    yield set_env
    monkeypatch.undo()
    settings.cache_clear()


def start(handler, customer: str | None, body: Any = None, *groups: str) -> tuple[int, Any]:
    raw = body if isinstance(body, str) or body is None else json.dumps(body)
    claims = claims_for(customer, *(groups or ("finance",))) if groups != ("none",) else None
    return invoke(handler, http_event("POST", "/payments/exports", claims=claims, body=raw))


def status_of(handler, customer: str, export_id: str, *groups: str) -> tuple[int, Any]:
    event = http_event(
        "GET",
        f"/payments/exports/{export_id}",
        route="/payments/exports/{export_id}",
        claims=claims_for(customer, *(groups or ("finance",))),
        path_params={"export_id": export_id},
    )
    return invoke(handler, event)


def download(url: str) -> list[list[str]]:
    answer = requests.get(url, timeout=30)
    assert answer.status_code == 200, answer.text
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8"), newline="")))


def listed(customer: str, **query: str) -> list[dict[str, Any]]:
    """Every payment `GET /payments` pages out for these filters, in order."""
    lister = load_function("list_payments")
    items, cursor = [], None
    while True:
        params = {**query, "limit": "3", **({"cursor": cursor} if cursor else {})}
        code, page = invoke(
            lister, http_event("GET", "/payments", claims=claims_for(customer, "finance"), query=params)
        )
        assert code == 200, page
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def as_row(item: dict[str, Any]) -> list[str]:
    """The CSV row docs/api.md#the-csv-file describes, built from the API's own answer.

    Its times are as a spreadsheet reads them."""

    def text(value: str) -> str:
        return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value

    def spreadsheet(moment: str | None) -> str:  # 2026-03-01T23:02:00.123Z -> 2026-03-01 23:02:00
        return moment[:19].replace("T", " ") if moment else ""

    return [
        spreadsheet(item["completed_at"]),
        item["amount"],
        item["currency"],
        {"pending": "Pending", "completed": "Completed", "cancelled": "Cancelled"}[item["status"]],
        text(item["description"]),
        item["id"],
        item["method"],
        text(item["reference"] or ""),
        spreadsheet(item["created_at"]),
        item.get("original_payment_id") or "",
    ]


def export_record(customer: str, export_id: str) -> dict[str, Any]:
    item = aws_client("dynamodb").get_item(
        TableName=settings().payments_table,
        Key={"PK": {"S": f"CUST#{customer}"}, "SK": {"S": f"EXPORT#{export_id}"}},
        ConsistentRead=True,
    )["Item"]
    return item


# ---- the CSV ----------------------------------------------------------------------------------------


def test_the_linked_csv_equals_the_list_route_row_for_row(handler, customer: str) -> None:
    seed(customer, 20)
    other = seed(customer + "-other", 6, start=BASE + timedelta(minutes=30))
    code, body = start(handler, customer)
    assert code == 201, body
    assert set(body) == {"export_id", "status", "url", "expires_at", "row_count"}
    assert (body["status"], body["row_count"]) == ("done", 20)
    rows = download(body["url"])
    assert rows[0] == HEADER
    expected = [as_row(item) for item in listed(customer)]
    assert len(expected) == 20
    assert rows[1:] == expected
    assert not {p.id for p in other} & {row[5] for row in rows}  # another customer's payments never appear


def test_amounts_statuses_and_formulas_come_out_right(handler, customer: str) -> None:
    seed(customer, len(SPECS))
    code, body = start(handler, customer)
    assert code == 201, body
    by_description = {row[4]: row for row in download(body["url"])[1:]}
    assert by_description["Plan upgrade"][1:4] == ["-3.00", "USD", "Completed"]
    assert by_description["Refund, partial"][1:4] == ["-0.05", "USD", "Completed"]
    assert by_description['Quote "inside", and comma'][:4] == ["", "1000", "JPY", "Pending"]
    assert by_description["Two\nlines"][:4] == ["", "1.250", "KWD", "Cancelled"]
    hyperlink = by_description['\'=HYPERLINK("http://x")']
    assert hyperlink[1:4] == ["20.00", "EUR", "Completed"]
    assert datetime.strptime(hyperlink[0], "%Y-%m-%d %H:%M:%S")
    promo = by_description["'-5% promo"]
    assert promo[7] == "'@ref"
    assert by_description["ünïcödé €"][7] == "'+44"


@pytest.mark.parametrize(
    "filters",
    [
        {"status": "completed"},
        {"status": "pending"},
        {"from": "2026-03-01T05:00:00Z", "to": "2026-03-01T14:00:00Z"},
        {"status": "cancelled", "from": "2026-03-01T03:00:00Z"},
        {"to": "2026-03-01T02:30:00+01:00"},
    ],
)
def test_filters_select_what_the_list_route_selects(handler, customer: str, filters: dict[str, str]) -> None:
    seed(customer, 24)
    code, body = start(handler, customer, filters)
    assert code == 201, body
    expected = [as_row(item) for item in listed(customer, **filters)]
    assert 0 < len(expected) < 24
    assert body["row_count"] == len(expected)
    assert download(body["url"])[1:] == expected


def test_a_customer_without_payments_gets_a_header_only_file(handler, customer: str) -> None:
    code, body = start(handler, customer)
    assert code == 201, body
    assert body["row_count"] == 0
    answer = requests.get(body["url"], timeout=30)
    assert (
        answer.content
        == b"Date/Time,Total,Currency,Status,Description,Payment ID,Method,Reference,Created At,Original Payment ID\r\n"
    )


# ---- the object and the link -------------------------------------------------------------------------


def test_the_object_is_an_encrypted_csv_under_the_customers_prefix(handler, customer: str) -> None:
    seed(customer, 3)
    code, first = start(handler, customer)
    assert code == 201, first
    _, second = start(handler, customer)
    assert first["export_id"] != second["export_id"]
    assert len(first["export_id"]) >= 20
    record = export_record(customer, first["export_id"])
    key = record["s3_key"]["S"]
    assert key == f"exports/{customer}/{first['export_id']}.csv"
    assert record["status"]["S"] == "done"
    assert int(record["expires_at"]["N"]) > time.time() + 6 * 86400  # TTL: as long as the bucket keeps it
    head = aws_client("s3").head_object(Bucket=settings().exports_bucket, Key=key)
    assert head["ContentType"] == "text/csv; charset=utf-8"
    assert head["ServerSideEncryption"] == "AES256"
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert head["ContentDisposition"] == f'attachment; filename="payments-{today}-UTC.csv"'
    assert urlsplit(first["url"]).path.endswith(key)


def test_the_link_expires_after_15_minutes_by_default(handler, customer: str) -> None:
    code, body = start(handler, customer)
    assert code == 201, body
    assert parse_qs(urlsplit(body["url"]).query)["X-Amz-Expires"] == ["900"]


def test_the_link_carries_the_configured_expiry(handler, customer: str, env) -> None:
    env(EXPORT_URL_EXPIRY_SECONDS="120")
    seed(customer, 2)
    before = datetime.now(UTC)
    code, body = start(handler, customer)
    assert code == 201, body
    assert parse_qs(urlsplit(body["url"]).query)["X-Amz-Expires"] == ["120"]
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert body["expires_at"].endswith("Z")
    assert before + timedelta(seconds=119) <= expires_at <= datetime.now(UTC) + timedelta(seconds=120)
    assert len(download(body["url"])) == 3


def test_a_multipart_object_round_trips_with_its_headers(customer: str) -> None:
    """Three parts of real size through moto: 5 MiB, 5 MiB and the rest."""
    s3 = exports.s3_client()
    bucket, key = settings().exports_bucket, f"exports/{customer}/big.csv"
    line = b"2026-03-01T00:00:00.000Z,-3.00,USD,Completed,abcdefghijklmnopqrstuvwxyz0123456789\r\n"
    lines = (11 * 1024 * 1024) // len(line)
    with S3ObjectWriter(s3, bucket, key, content_disposition='attachment; filename="x.csv"') as out:
        for _ in range(lines):
            out.write(line)
    assert out.parts == 3
    head = s3.head_object(Bucket=bucket, Key=key)
    assert (head["ContentLength"], head["ContentType"]) == (lines * len(line), "text/csv; charset=utf-8")
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ETag"].strip('"').endswith("-3")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == line * lines


class FailingS3:
    """The real client, but the `fail_at`-th UploadPart fails (after checking the upload is open)."""

    def __init__(self, fail_at: int) -> None:
        self.real = exports.s3_client()
        self.fail_at = fail_at
        self.parts = 0
        self.open_uploads_at_failure: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def upload_part(self, **kwargs: Any) -> Any:
        self.parts += 1
        if self.parts == self.fail_at:
            self.open_uploads_at_failure = self.real.list_multipart_uploads(Bucket=kwargs["Bucket"]).get("Uploads", [])
            raise ConnectionError("network went away")
        return self.real.upload_part(**kwargs)


def test_an_upload_failing_midway_leaves_no_object_and_no_open_upload(handler, customer: str, monkeypatch) -> None:
    seed(customer, 40)
    failing = FailingS3(fail_at=3)
    monkeypatch.setattr(handler.exporter, "_s3", failing)
    monkeypatch.setattr(handler.exporter, "part_size", 512)  # moto takes small parts until completion
    code, body = start(handler, customer)
    assert code == 503, body
    assert "could not be written" in body["message"]
    prefix = f"exports/{customer}/"
    assert [u["Key"] for u in failing.open_uploads_at_failure if u["Key"].startswith(prefix)]  # it was multipart
    s3 = aws_client("s3")
    uploads = s3.list_multipart_uploads(Bucket=settings().exports_bucket, Prefix=prefix).get("Uploads", [])
    assert uploads == []
    assert s3.list_objects_v2(Bucket=settings().exports_bucket, Prefix=prefix)["KeyCount"] == 0
    failed = [i for i in _export_items(customer) if i["status"]["S"] == "failed"]
    assert len(failed) == 1
    code, answer = status_of(handler, customer, failed[0]["export_id"]["S"])
    assert (code, answer["status"]) == (200, "failed")
    assert "url" not in answer


def _export_items(customer: str) -> list[dict[str, Any]]:
    return aws_client("dynamodb").query(
        TableName=settings().payments_table,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :export)",
        ExpressionAttributeValues={":pk": {"S": f"CUST#{customer}"}, ":export": {"S": "EXPORT#"}},
        ConsistentRead=True,
    )["Items"]


# ---- who and what may be asked ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("groups", "code"),
    [(("support",), 403), (("operator",), 403), (("none",), 401), (("admin",), 201), (("finance", "support"), 201)],
)
def test_only_admin_and_finance_may_export(handler, customer: str, groups: tuple[str, ...], code: int) -> None:
    answer_code, body = start(handler, customer, None, *groups)
    assert answer_code == code, body
    assert ("url" in body) is (code == 201)


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ({"from": "2026-03-01T00:00:00"}, 400, "time zone"),
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, 400, "from must not be after to"),
        ({"status": "paid"}, 422, "status"),
        ({"from": "yesterday"}, 422, "from"),
        ({"start": "2026-03-01T00:00:00Z"}, 422, "start"),
        ("{not json", 400, "not valid JSON"),
    ],
)
def test_bad_filters_are_refused_with_a_message(handler, customer: str, body: Any, code: int, fragment: str) -> None:
    answer_code, answer = start(handler, customer, body)
    assert answer_code == code, answer
    assert fragment in answer["message"]
    assert _export_items(customer) == []


def test_an_empty_json_object_means_no_filters(handler, customer: str) -> None:
    seed(customer, 4)
    code, body = start(handler, customer, {})
    assert (code, body["row_count"]) == (201, 4)


# ---- large accounts: in the background -----------------------------------------------------------------


def test_above_the_threshold_the_export_finishes_in_the_background(handler, customer: str, env, monkeypatch) -> None:
    env(EXPORT_ASYNC_ROW_THRESHOLD="5")
    seed(customer, 9)
    jobs: list[dict[str, str]] = []
    monkeypatch.setattr(handler.exporter, "launcher", jobs.append)
    code, body = start(handler, customer, {"status": "completed"})
    assert code == 202, body
    assert body == {"export_id": body["export_id"], "status": "running"}
    assert jobs == [{"customer_id": customer, "export_id": body["export_id"]}]
    code, running = status_of(handler, customer, body["export_id"])
    assert (code, running) == (200, {"export_id": body["export_id"], "status": "running"})

    # The asynchronous invocation, as Lambda delivers it.
    job_answer = handler.lambda_handler({"export_job": jobs[0]}, FakeContext())
    assert job_answer == {"export_id": body["export_id"], "status": "done"}
    code, done = status_of(handler, customer, body["export_id"])
    assert code == 200, done
    expected = [as_row(item) for item in listed(customer, status="completed")]
    assert (done["status"], done["row_count"]) == ("done", len(expected))
    assert parse_qs(urlsplit(done["url"]).query)["X-Amz-Expires"] == ["900"]
    assert download(done["url"])[1:] == expected
    # A second delivery of the same event changes nothing.
    assert handler.lambda_handler({"export_job": jobs[0]}, FakeContext())["status"] == "done"


def test_the_row_estimate_counts_no_further_than_its_cap(handler, customer: str) -> None:
    seed(customer, 12)
    exporter = handler.exporter
    assert exporter.count_up_to(customer, exports.ExportFilters(), 100) == 12
    assert exporter.count_up_to(customer, exports.ExportFilters(), 7) == 7
    completed = exports.ExportFilters(status=PaymentStatus.COMPLETED)
    assert exporter.count_up_to(customer, completed, 100) == len(listed(customer, status="completed"))


def test_locally_the_background_half_runs_in_a_thread(handler, customer: str, env) -> None:
    env(EXPORT_ASYNC_ROW_THRESHOLD="2", EXPORT_ASYNC_MODE="thread")
    seed(customer, 3)
    code, body = start(handler, customer)
    assert code == 202, body
    for _ in range(100):  # waits for the thread; not a timing assertion
        code, answer = status_of(handler, customer, body["export_id"])
        if answer["status"] != "running":
            break
        time.sleep(0.1)
    assert (code, answer["status"], answer["row_count"]) == (200, "done", 3)
    assert len(download(answer["url"])) == 4


def test_a_background_half_that_cannot_start_is_recorded_as_failed(handler, customer: str, env) -> None:
    # No such function in the embedded AWS: the asynchronous Invoke fails.
    env(EXPORT_ASYNC_ROW_THRESHOLD="1", EXPORT_ASYNC_MODE="lambda", AWS_LAMBDA_FUNCTION_NAME="payments-test-missing")
    seed(customer, 2)
    code, body = start(handler, customer)
    assert code == 503, body
    [record] = _export_items(customer)
    assert record["status"]["S"] == "failed"


def test_another_customers_export_is_not_found(handler, customer: str) -> None:
    seed(customer, 2)
    _, body = start(handler, customer)
    code, answer = status_of(handler, customer + "-other", body["export_id"])
    assert code == 404, answer
    assert "url" not in answer
    assert status_of(handler, customer, "no-such-export")[0] == 404
    assert status_of(handler, customer, body["export_id"], "support")[0] == 403
