"""What each operation costs in AWS at list prices (us-east-1), per million operations: `make bench` renders it into
docs/benchmarks.md (`run()`, then `render()`).

The requests and billable units behind every row are `COSTS` below, one table: tests/integration/test_request_counts.py
measures every operation through the real handlers against the embedded AWS and asserts it equals its row, so the
priced numbers are measured ones and cannot drift from the code. The prices are `PRICES`, each with the AWS page it is
from; Lambda's duration per invocation is an assumption, stated (`ASSUMED_MS`).

Billable units are counted by `counting_units()` from the requests themselves, while scripts/bench_lib.py's request
counter is counting (so exactly the counted part of an operation is measured):
- DynamoDB request units by the documented rules: a write is 1 WRU per started KB of the larger of the item before and
  after it (both read, uncounted, beside the request), 2 in a transaction; a write to an item in a global secondary
  index is 1 more WRU per index per started KB (2 when the item's index key changes, 1 when it leaves the index); a
  read is 1 RRU per started 4 KB (a Query: of all the items it read, summed; a miss still 1), half if eventually
  consistent, 2 in a transaction. Item sizes follow DynamoDB's rules (names + values; numbers approximately).
- EventBridge: each PutEvents entry per started 64 KB; SQS: each message sent per started 64 KB; SES: each recipient.
"""

from __future__ import annotations

import base64
import json
import math
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# ---- item sizes (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html) ----


def value_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB's wire shape ({"S": ...}, {"M": {...}}, ...)."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(inner if isinstance(inner, bytes | bytearray) else base64.b64decode(inner))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(_number_size(n) for n in inner)
    if kind == "BS":
        return sum(len(b) for b in inner)
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in inner.items())
    raise ValueError(f"unknown attribute type {kind}")


def _number_size(text: str) -> int:
    digits = Decimal(text).normalize().as_tuple().digits
    return math.ceil(len(digits) / 2) + 1


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


# ---- counting billable units ------------------------------------------------------------------------------------

_UNITS_ID = "payments-bench-units"
_recorders: list[Units] = []
_side = threading.local()  # a client of our own for the item reads beside a write, counted by nobody


@dataclass
class Units:
    """Billable units of the AWS requests made while scripts/bench_lib.py counts requests."""

    rru: float = 0.0  # DynamoDB read request units
    wru: int = 0  # DynamoDB write request units on the tables
    index_wru: int = 0  # ... on their global secondary indexes
    events: int = 0  # EventBridge PutEvents entries (64 KB chunks)
    sqs: int = 0  # SQS requests (64 KB chunks of each message sent)
    emails: int = 0  # SES recipients
    # scripts/bench_lib.py reports the requests of an operation's last counting block (one that prepares data may
    # count its own first): the units of each block, so that the last one's are reported too
    _blocks: list[tuple[Counter[str], Units]] = field(default_factory=list, repr=False)

    def of(self, counter: Counter[str]) -> Units:
        if not self._blocks or self._blocks[-1][0] is not counter:
            self._blocks.append((counter, Units()))
        return self._blocks[-1][1]

    def as_dict(self) -> dict[str, float]:
        """The units of the last counting block (the requests scripts/bench_lib.py reports)."""
        if self._blocks:
            return self._blocks[-1][1].as_dict()
        values = {"RRU": self.rru, "WRU": self.wru, "index WRU": self.index_wru}
        values |= {"events": self.events, "sqs": self.sqs, "emails": self.emails}
        return {k: v for k, v in values.items() if v}


def _side_client() -> Any:
    """A DynamoDB client on a botocore session of its own: the request counter hooks every live client when a block
    starts, so its hook is taken off before each use."""
    import boto3

    from scripts.bench_lib import _HOOK_ID

    if getattr(_side, "client", None) is None:
        _side.client = boto3.session.Session().client("dynamodb")
        _side.keys = {}
    client = _side.client
    client.meta.events.unregister("before-call", unique_id=_HOOK_ID)
    client.meta.events.unregister("before-parameter-build", unique_id=_UNITS_ID + "-before")
    client.meta.events.unregister("after-call", unique_id=_UNITS_ID + "-after")
    return client


def _table_keys(table: str) -> tuple[list[str], dict[str, list[str]]]:
    """The table's key attributes, and each global secondary index's."""
    client = _side_client()
    if table not in _side.keys:
        description = client.describe_table(TableName=table)["Table"]
        indexes = {
            index["IndexName"]: [k["AttributeName"] for k in index["KeySchema"]]
            for index in description.get("GlobalSecondaryIndexes", [])
        }
        _side.keys[table] = ([k["AttributeName"] for k in description["KeySchema"]], indexes)
    return _side.keys[table]  # type: ignore[no-any-return]


def _current(table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    names, _ = _table_keys(table)
    answer = _side_client().get_item(TableName=table, Key={n: key[n] for n in names}, ConsistentRead=True)
    return answer.get("Item")  # type: ignore[no-any-return]


def _written_items(operation: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    """(table, key, the item a Put writes or None) of each item a write request touches."""
    found: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    if operation == "PutItem":
        found.append((params["TableName"], params["Item"], params["Item"]))
    elif operation in ("UpdateItem", "DeleteItem"):
        found.append((params["TableName"], params["Key"], None))
    elif operation == "BatchWriteItem":
        for table, requests in params["RequestItems"].items():
            for request in requests:
                if "PutRequest" in request:
                    found.append((table, request["PutRequest"]["Item"], request["PutRequest"]["Item"]))
                else:
                    found.append((table, request["DeleteRequest"]["Key"], None))
    elif operation == "TransactWriteItems":
        for entry in params["TransactItems"]:
            ((kind, body),) = entry.items()
            if kind == "Put":
                found.append((body["TableName"], body["Item"], body["Item"]))
            else:  # Update, Delete, ConditionCheck: a ConditionCheck is billed as a write in a transaction
                found.append((body["TableName"], body["Key"], None))
    return found


def _index_writes(table: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
    _, indexes = _table_keys(table)
    units = 0
    for attributes in indexes.values():
        old = [before.get(a) for a in attributes] if before and all(a in before for a in attributes) else None
        new = [after.get(a) for a in attributes] if after and all(a in after for a in attributes) else None
        if old is None and new is None:
            continue
        if old is not None and new is not None and old != new:
            units += 2  # the old index entry deleted, the new one put
        elif new is None:
            units += 1  # the item left the index
        elif before == after:
            continue  # a write that changed nothing (a failed condition) changes no index
        else:
            units += math.ceil(max(item_size(before), item_size(after)) / 1024)
    return units


def _before(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    from scripts.bench_lib import _active

    if not _recorders or not _active:
        return
    service = model.service_model.service_name
    context["bench-units"] = (params, _recorders[-1].of(_active[-1]))
    if service == "dynamodb":
        context["bench-before"] = [
            (table, key, put, _current(table, key)) for table, key, put in _written_items(model.name, params)
        ]


def _chunks(data: str | bytes, size: int = 64 * 1024) -> int:
    return max(1, math.ceil(len(data.encode() if isinstance(data, str) else data) / size))


def _after(parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    if not _recorders or "bench-units" not in context:
        return
    params, units = context.pop("bench-units")
    service, operation = model.service_model.service_name, model.name
    if service == "dynamodb":
        _dynamodb_units(units, operation, params, parsed, context.pop("bench-before", []))
    elif (service, operation) == ("events", "PutEvents"):
        units.events += sum(_chunks(json.dumps(e, default=str)) for e in params["Entries"])
    elif (service, operation) == ("sqs", "SendMessage"):
        units.sqs += _chunks(params["MessageBody"])
    elif (service, operation) == ("sqs", "SendMessageBatch"):
        units.sqs += sum(_chunks(e["MessageBody"]) for e in params["Entries"])
    elif service in ("ses", "sesv2") and operation.startswith("Send"):
        units.emails += _recipients(params)


def _recipients(params: dict[str, Any]) -> int:
    """SES bills each recipient: the destination's addresses, or a raw message's To, Cc and Bcc."""
    from email import message_from_bytes
    from email.utils import getaddresses

    destination = params.get("Destination") or {}
    listed = [*destination.get("ToAddresses", []), *destination.get("CcAddresses", [])]
    listed += [*destination.get("BccAddresses", []), *params.get("Destinations", [])]
    if listed:
        return len(listed)
    raw = ((params.get("Content") or {}).get("Raw") or params.get("RawMessage") or {}).get("Data")
    if raw:
        message = message_from_bytes(raw if isinstance(raw, bytes) else raw.encode())
        return len(getaddresses([v for h in ("To", "Cc", "Bcc") for v in message.get_all(h, [])]))
    return 1


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return units if consistent else units / 2


def _dynamodb_units(
    units: Units, operation: str, params: dict[str, Any], parsed: dict[str, Any], before: list[Any]
) -> None:
    consistent = bool(params.get("ConsistentRead"))
    if operation == "GetItem":
        units.rru += _read_units(item_size(parsed.get("Item")), consistent)
    elif operation == "BatchGetItem":
        for table, request in params["RequestItems"].items():
            found = (parsed.get("Responses") or {}).get(table, [])
            sizes = [item_size(item) for item in found] + [0] * (len(request["Keys"]) - len(found))
            units.rru += sum(_read_units(size, bool(request.get("ConsistentRead"))) for size in sizes)
    elif operation == "TransactGetItems":
        for found in parsed.get("Responses") or []:
            units.rru += 2 * _read_units(item_size(found.get("Item")), True)
    elif operation in ("Query", "Scan"):
        units.rru += _read_units(_query_read_size(operation, params, parsed), consistent)
    factor = 2 if operation == "TransactWriteItems" else 1
    for table, key, put, old in before:
        # a condition failed or the transaction was cancelled: nothing changed, still billed
        after = old if "Error" in parsed else put if put is not None else _current(table, key)
        size = max(item_size(old), item_size(after))
        units.wru += factor * max(1, math.ceil(size / 1024))
        units.index_wru += _index_writes(table, old, after)


def _query_read_size(operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> int:
    """Bytes a Query (or Scan) read: its items before any filter or COUNT, read again beside it when it filtered."""
    if "FilterExpression" not in params and params.get("Select") != "COUNT":
        return sum(item_size(i) for i in parsed.get("Items", []))
    again = {k: v for k, v in params.items() if k not in ("FilterExpression", "Select", "ProjectionExpression")}
    used = " ".join(str(params.get(k, "")) for k in ("KeyConditionExpression",))
    for name in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
        kept = {k: v for k, v in (params.get(name) or {}).items() if k in used}
        if kept:
            again[name] = kept
        else:
            again.pop(name, None)
    scanned = int(parsed.get("ScannedCount", 0))
    again["Limit"] = max(1, scanned)
    answer = getattr(_side_client(), "query" if operation == "Query" else "scan")(**again)
    return sum(item_size(i) for i in answer.get("Items", [])[:scanned])


def _hook_every_client() -> None:
    import gc

    import boto3
    from botocore.client import BaseClient

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    sessions = [boto3.DEFAULT_SESSION.events]  # type: ignore[union-attr]
    side = getattr(_side, "client", None)
    clients = [o.meta.events for o in gc.get_objects() if isinstance(o, BaseClient) and o is not side]
    for events in sessions + clients:
        events.register("before-parameter-build", _before, unique_id=_UNITS_ID + "-before")  # one id per event
        events.register("after-call", _after, unique_id=_UNITS_ID + "-after")


@contextmanager
def counting_units() -> Iterator[Units]:
    """The billable units of the requests scripts/bench_lib.counting_requests counts inside this block."""
    _hook_every_client()
    units = Units()
    _recorders.append(units)
    try:
        yield units
    finally:
        _recorders.remove(units)


# ---- what each operation makes: the one table the tests assert --------------------------------------------------


@dataclass(frozen=True)
class Cost:
    """One operation: the Lambda that runs it, how it is triggered, its AWS requests and billable units (measured:
    tests/integration/test_request_counts.py asserts both)."""

    function: str  # functions/<name>: its MemorySize is template.yaml's
    trigger: str  # "http": one API Gateway request; "stream": one batch of a DynamoDB stream; "sqs": one message
    requests: dict[str, int]
    units: dict[str, float]
    per: int = 1  # operations per invocation (a stream batch of `per` records is one invocation)


COSTS: dict[str, Cost] = {
    "GET /payments, first page of 50": Cost("list_payments", "http", {"Query": 1}, {"RRU": 3.5}),
    "GET /payments, next page (cursor)": Cost("list_payments", "http", {"Query": 1}, {"RRU": 1}),
    "GET /payments?status=completed": Cost("list_payments", "http", {"Query": 1}, {"RRU": 3}),
    "GET /payments/{id}": Cost("list_payments", "http", {"GetItem": 1}, {"RRU": 0.5}),
    "GET /balance": Cost("list_payments", "http", {"BatchGetItem": 1}, {"RRU": 1}),
    "POST /payments, bank transfer": Cost(
        "make_payment",
        "http",
        {"GetItem": 1, "PutItem": 1, "TransactWriteItems": 1, "UpdateItem": 1},
        {"RRU": 0.5, "WRU": 8, "index WRU": 2},
    ),
    "POST /payments, voucher": Cost(
        "make_payment",
        "http",
        {"GetItem": 2, "PutItem": 1, "TransactWriteItems": 1, "UpdateItem": 2},
        {"RRU": 1.5, "WRU": 13, "index WRU": 1},
    ),
    "POST /payments, card settled at once (Stripe)": Cost(
        "make_payment",
        "http",
        {"GetItem": 1, "PutItem": 1, "TransactWriteItems": 3, "UpdateItem": 1},
        {"RRU": 0.5, "WRU": 16, "index WRU": 7},
    ),
    "POST /webhooks/stripe, payment succeeded": Cost(
        "webhooks", "http", {"GetItem": 1, "TransactWriteItems": 1}, {"RRU": 1, "WRU": 8, "index WRU": 3}
    ),
    "POST /payments/exports, 60 rows (1 page)": Cost(
        "export_csv", "http", {"PutItem": 1, "Query": 2, "UpdateItem": 1, "s3.PutObject": 1}, {"RRU": 8, "WRU": 2}
    ),
    "GET /payments/exports/{id}": Cost("export_csv", "http", {"GetItem": 1}, {"RRU": 1}),
    "GET /payment-options": Cost("make_payment", "http", {"GetItem": 1}, {"RRU": 0.5}),
    "GET /payments/summary, 60 payments": Cost("list_payments", "http", {"Query": 1}, {"RRU": 0.5}),
    "POST /payments, card by payment method (pm_card_visa)": Cost(
        "make_payment",
        "http",
        {"GetItem": 1, "PutItem": 1, "TransactWriteItems": 3, "UpdateItem": 1},
        {"RRU": 0.5, "WRU": 16, "index WRU": 7},
    ),
    "POST /payments, saved card": Cost(
        "make_payment",
        "http",
        {"GetItem": 4, "PutItem": 1, "TransactWriteItems": 3, "UpdateItem": 1},
        {"RRU": 3.5, "WRU": 16, "index WRU": 7},
    ),
    "POST /payments, PayPal (order, redirect)": Cost(
        "make_payment",
        "http",
        {"GetItem": 1, "PutItem": 1, "TransactWriteItems": 2, "UpdateItem": 1},
        {"RRU": 0.5, "WRU": 10, "index WRU": 4},
    ),
    "POST /payments, Razorpay (order)": Cost(
        "make_payment",
        "http",
        {"GetItem": 1, "PutItem": 1, "TransactWriteItems": 2, "UpdateItem": 1},
        {"RRU": 0.5, "WRU": 10, "index WRU": 4},
    ),
    "POST /payments, Paystack (redirect)": Cost(
        "make_payment",
        "http",
        {"GetItem": 1, "PutItem": 1, "TransactWriteItems": 2, "UpdateItem": 1},
        {"RRU": 0.5, "WRU": 12, "index WRU": 4},
    ),
    "POST /payments, NOWPayments (invoice)": Cost(
        "make_payment",
        "http",
        {"GetItem": 1, "PutItem": 1, "TransactWriteItems": 2, "UpdateItem": 1},
        {"RRU": 0.5, "WRU": 10, "index WRU": 4},
    ),
    "POST /webhooks/stripe, payment failed": Cost(
        "webhooks", "http", {"GetItem": 1, "TransactWriteItems": 1}, {"RRU": 1, "WRU": 6, "index WRU": 3}
    ),
    "POST /webhooks/stripe, duplicate delivery": Cost(
        "webhooks", "http", {"GetItem": 1, "PutItem": 1}, {"RRU": 1, "WRU": 1}
    ),
    "POST /webhooks/stripe, charge refunded at Stripe": Cost(
        "webhooks", "http", {"GetItem": 1, "TransactWriteItems": 1}, {"RRU": 1, "WRU": 10, "index WRU": 2}
    ),
    "POST /webhooks/stripe, dispute opened": Cost(
        "webhooks", "http", {"GetItem": 3, "TransactWriteItems": 1}, {"RRU": 2.5, "WRU": 6, "index WRU": 4}
    ),
    "POST /webhooks/stripe, dispute funds withdrawn (chargeback)": Cost(
        "webhooks", "http", {"GetItem": 5, "TransactWriteItems": 1}, {"RRU": 4.5, "WRU": 12, "index WRU": 5}
    ),
    "POST /webhooks/razorpay, order paid (fee recorded)": Cost(
        "webhooks", "http", {"GetItem": 1, "TransactWriteItems": 1}, {"RRU": 1, "WRU": 8, "index WRU": 3}
    ),
    "POST /admin/.../refunds, operator refund (Stripe)": Cost(
        "admin",
        "http",
        {"GetItem": 3, "PutItem": 1, "TransactWriteItems": 2, "UpdateItem": 1},
        {"RRU": 3, "WRU": 16, "index WRU": 6},
    ),
    "POST /admin/.../complete, bank transfer received": Cost(
        "admin", "http", {"GetItem": 1, "TransactWriteItems": 1}, {"RRU": 1, "WRU": 6, "index WRU": 3}
    ),
    "POST /payment-methods, save a card": Cost(
        "account", "http", {"GetItem": 3, "PutItem": 1, "TransactWriteItems": 1, "UpdateItem": 3}, {"RRU": 3, "WRU": 10}
    ),
    "GET /payment-methods": Cost("account", "http", {"GetItem": 1, "Query": 1}, {"RRU": 2}),
    "DELETE /payment-methods/{id}": Cost(
        "account", "http", {"GetItem": 4, "Query": 1, "TransactWriteItems": 1, "UpdateItem": 1}, {"RRU": 5, "WRU": 5}
    ),
    "PUT /alerts/low-balance": Cost("account", "http", {"GetItem": 2, "TransactWriteItems": 1}, {"RRU": 1.5, "WRU": 4}),
    "PUT /auto-topup": Cost("account", "http", {"GetItem": 5, "TransactWriteItems": 1}, {"RRU": 4.5, "WRU": 4}),
    "GET /payments/{id}/receipt": Cost("receipts", "http", {"GetItem": 2}, {"RRU": 1}),
    "publish_events, stream batch of 10 completed payments (per payment)": Cost(
        "publish_events",
        "stream",
        {"GetItem": 20, "UpdateItem": 10, "events.PutEvents": 1},
        {"RRU": 20, "WRU": 10, "index WRU": 10, "events": 10},
        per=10,
    ),
    "publish_events, low-balance crossing": Cost(
        "publish_events",
        "stream",
        {"GetItem": 2, "TransactWriteItems": 1, "UpdateItem": 1},
        {"RRU": 2, "WRU": 5, "index WRU": 1},
    ),
    "publish_events, auto top-up crossing": Cost(
        "publish_events",
        "stream",
        {"GetItem": 2, "TransactWriteItems": 1, "UpdateItem": 1},
        {"RRU": 2, "WRU": 7, "index WRU": 3},
    ),
    "notify, receipt e-mail": Cost(
        "notify", "sqs", {"GetItem": 3, "UpdateItem": 2, "sesv2.SendEmail": 1}, {"RRU": 2, "WRU": 2, "emails": 2}
    ),
    "notify, low-balance e-mail": Cost(
        "notify", "sqs", {"GetItem": 2, "UpdateItem": 2, "sesv2.SendEmail": 1}, {"RRU": 1.5, "WRU": 2, "emails": 1}
    ),
    "deliver_webhooks, event to 1 endpoint (fan-out)": Cost(
        "deliver_webhooks", "sqs", {"PutItem": 1, "Query": 1, "sqs.SendMessageBatch": 1}, {"RRU": 1, "WRU": 1, "sqs": 1}
    ),
    "deliver_webhooks, one attempt delivered": Cost(
        "deliver_webhooks", "sqs", {"GetItem": 1, "UpdateItem": 2, "kms.Decrypt": 1}, {"RRU": 1, "WRU": 2}
    ),
    "autotopup, off-session charge": Cost(
        "autotopup", "sqs", {"GetItem": 4, "TransactWriteItems": 2}, {"RRU": 4, "WRU": 10, "index WRU": 5}
    ),
    "autotopup, outcome of the payment": Cost(
        "autotopup", "sqs", {"GetItem": 2, "TransactWriteItems": 1}, {"RRU": 2, "WRU": 4}
    ),
}

# Operations whose invocation waits on a gateway's or an operator's API (Lambda bills that waiting as duration).
CALLS_OUT = frozenset(
    {
        "POST /payments, card settled at once (Stripe)",
        "POST /payments, card by payment method (pm_card_visa)",
        "POST /payments, saved card",
        "POST /payments, PayPal (order, redirect)",
        "POST /payments, Razorpay (order)",
        "POST /payments, Paystack (redirect)",
        "POST /payments, NOWPayments (invoice)",
        "POST /admin/.../refunds, operator refund (Stripe)",
        "POST /payment-methods, save a card",
        "DELETE /payment-methods/{id}",
        "deliver_webhooks, one attempt delivered",
        "autotopup, off-session charge",
    }
)

# ---- prices (us-east-1, list, USD) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    usd: float  # per `unit`
    unit: str
    source: str  # the AWS page
    confirmed: bool  # the figure was read on an AWS page (else: on secondary pages quoting it; to check)


PRICES: dict[str, Price] = {
    "api": Price(
        1.00 / 1e6,
        "HTTP API request (first 300M a month; AWS's own figure in "
        "https://docs.aws.amazon.com/whitepapers/latest/best-practices-api-gateway-private-apis-integration/"
        "cost-optimization.html)",
        "https://aws.amazon.com/api-gateway/pricing/",
        True,
    ),
    "lambda_request": Price(0.20 / 1e6, "Lambda request", "https://aws.amazon.com/lambda/pricing/", False),
    "lambda_gb_s": Price(
        0.0000133334,
        "Lambda GB-second, Arm (first 7.5 billion GB-s a month)",
        "https://aws.amazon.com/lambda/pricing/",
        False,
    ),
    "rru": Price(
        0.125 / 1e6, "DynamoDB on-demand read request unit", "https://aws.amazon.com/dynamodb/pricing/on-demand/", False
    ),
    "wru": Price(
        0.625 / 1e6,
        "DynamoDB on-demand write request unit",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        False,
    ),
    "stream": Price(
        0.0,
        "DynamoDB Streams read by a Lambda trigger (free)",
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CostOptimization_StreamsUsage.html",
        True,
    ),
    "events": Price(
        1.00 / 1e6, "EventBridge custom event (64 KB chunk)", "https://aws.amazon.com/eventbridge/pricing/", False
    ),
    "sqs": Price(0.40 / 1e6, "SQS standard request (64 KB chunk)", "https://aws.amazon.com/sqs/pricing/", False),
    "email": Price(0.10 / 1e3, "SES e-mail (each recipient)", "https://aws.amazon.com/ses/pricing/", False),
    "kms": Price(0.03 / 1e4, "KMS request (symmetric)", "https://aws.amazon.com/kms/pricing/", False),
    "s3_put": Price(0.005 / 1e3, "S3 Standard PUT", "https://aws.amazon.com/s3/pricing/", False),
    "s3_get": Price(0.0004 / 1e3, "S3 Standard GET", "https://aws.amazon.com/s3/pricing/", False),
    "xray": Price(5.00 / 1e6, "X-Ray trace recorded", "https://aws.amazon.com/xray/pricing/", True),
}
ASSUMED_MS = {"own": 100, "calls_out": 500}  # billed Lambda duration per invocation: an assumption, not measured in AWS
# Each message of an SQS-fed function: sent by the EventBridge rule's target, received and deleted by Lambda's poller
# (upper bound: the poller receives and deletes up to its BatchSize at once)
SQS_PER_MESSAGE = 3


def memory_sizes() -> dict[str, int]:
    """MemorySize of each function (functions/<name>) in template.yaml, the Globals' where it sets none."""
    from local.template import load_template

    template = load_template()
    default = int(template["Globals"]["Function"]["MemorySize"])
    sizes = {}
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            props = resource["Properties"]
            sizes[Path(props["CodeUri"]).name] = int(props.get("MemorySize", default))
    return sizes


def cost_of(label: str, cost: Cost, memory_mb: int) -> dict[str, float]:
    """USD per million operations, by service (an invocation of `per` operations costs `per` times less each)."""
    p = {name: price.usd for name, price in PRICES.items()}
    units, requests = cost.units, cost.requests
    ms = ASSUMED_MS["calls_out" if label in CALLS_OUT else "own"]
    sqs = units.get("sqs", 0) + (SQS_PER_MESSAGE if cost.trigger == "sqs" else 0)
    other = units.get("events", 0) * p["events"] + units.get("emails", 0) * p["email"] + sqs * p["sqs"]
    other += sum(v for k, v in requests.items() if k.startswith("kms.")) * p["kms"]
    other += requests.get("s3.PutObject", 0) * p["s3_put"] + requests.get("s3.GetObject", 0) * p["s3_get"]
    per_invocation = {
        "api": (1 if cost.trigger == "http" else 0) * p["api"],
        "lambda": p["lambda_request"] + memory_mb / 1024 * ms / 1000 * p["lambda_gb_s"],
        "dynamodb": units.get("RRU", 0) * p["rru"] + (units.get("WRU", 0) + units.get("index WRU", 0)) * p["wru"],
        "other": other,
    }
    return {service: usd * 1e6 / cost.per for service, usd in per_invocation.items()}


def run() -> dict[str, Any]:
    """The priced table: every operation of `COSTS` (measured by the tests), per million operations."""
    sizes = memory_sizes()
    rows = []
    for label, cost in COSTS.items():
        usd = cost_of(label, cost, sizes[cost.function])
        rows.append(
            {
                "operation": label,
                "function": cost.function,
                "memory_mb": sizes[cost.function],
                "requests": cost.requests,
                "units": cost.units,
                "per": cost.per,
                "usd": usd,
                "total": sum(usd.values()),
            }
        )
    prices = {
        name: {"usd": p.usd, "unit": p.unit, "source": p.source, "confirmed": p.confirmed} for name, p in PRICES.items()
    }
    return {"rows": rows, "prices": prices, "assumed_ms": dict(ASSUMED_MS), "sqs_per_message": SQS_PER_MESSAGE}


def _money(usd: float) -> str:
    return f"{usd:,.2f}" if usd >= 0.995 or usd == 0 else f"{usd:.3f}"


def _units(units: dict[str, float]) -> str:
    rru, wru = units.get("RRU", 0), units.get("WRU", 0) + units.get("index WRU", 0)
    return f"{rru:g} / {wru:g}" + (f" ({units['index WRU']:g} index)" if units.get("index WRU") else "")


def render(results: dict[str, Any]) -> list[str]:
    """docs/benchmarks.md's section: markdown lines."""
    ms = results["assumed_ms"]
    lines = [
        "## What each operation costs in AWS",
        "",
        "USD per million operations at us-east-1 list prices, from the requests and billable units each operation "
        "makes (scripts/bench_costs.py `COSTS`: every row is measured through the real handlers against the embedded "
        "AWS and asserted by tests/integration/test_request_counts.py, so a change in requests fails `make test`). "
        "DynamoDB units are counted by DynamoDB's documented rules from the requests' items: a write 1 WRU per started "
        "KB of the "
        "larger of the item before and after it, 2 in a transaction (a ConditionCheck too), plus 1 per global "
        "secondary index it touches (2 when its index key changes); a read 1 RRU per started 4 KB, half if eventually "
        "consistent. Lambda duration is not measured in AWS: each invocation is assumed to be billed "
        f"{ms['own']} ms, or {ms['calls_out']} ms when it waits on a gateway's or an operator's API (marked †), at "
        "the function's MemorySize in template.yaml (Arm). Free tiers are left out.",
        "",
        "| operation | AWS requests | DynamoDB RRU / WRU | API Gateway | Lambda | DynamoDB | other | **total** |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        requests = ", ".join(f"{k} {v}" for k, v in sorted(row["requests"].items()))
        name = row["operation"] + (" †" if row["operation"] in CALLS_OUT else "")
        usd = row["usd"]
        lines.append(
            f"| {name} | {requests} | {_units(row['units'])} | {_money(usd['api'])} | {_money(usd['lambda'])} | "
            f"{_money(usd['dynamodb'])} | {_money(usd['other'])} | **{_money(row['total'])}** |"
        )
    lines += [
        "",
        "“other” is EventBridge (each event put on the bus), SQS (each message sent; an SQS-fed function's own "
        f"message counts {results['sqs_per_message']} requests: the rule's send, Lambda's receive and delete, an upper "
        "bound since Lambda receives and deletes in batches), SES (each recipient), KMS and S3. A stream batch is one "
        "invocation for all its records (the batch of 10 is priced per payment; its requests and units shown are the "
        "whole batch's). Not included: DynamoDB Streams reads "
        "(free for a Lambda trigger), X-Ray (tracing is on: each recorded trace costs, the default sampling records "
        "1 a second and 5% beyond), CloudWatch Logs and metrics (by the byte), storage, data transfer, Secrets Manager "
        "(read once per container). The chain a payment starts (its outbox publish, e-mails, webhooks) is in the later "
        "rows, each priced on its own.",
        "",
        "Prices (USD, us-east-1, on-demand list; ✓ read on the AWS page, ? quoted from secondary pages, to check "
        "against the AWS page):",
        "",
    ]
    for price in results["prices"].values():
        mark = "✓" if price["confirmed"] else "?"
        per = price["usd"] * 1e6
        lines.append(f"- {price['unit']}: {per:g} per million {mark} ({price['source']})")
    return lines


__all__ = ["COSTS", "PRICES", "Cost", "Units", "counting_units", "item_size", "render", "run"]
