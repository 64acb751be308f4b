"""Exact AWS requests and billable units per operation (docs/benchmarks.md): what each operation costs in AWS,
whatever the machine. Requests are counted with botocore's `before-call` hook on every client, through the real
handlers; DynamoDB request units, EventBridge entries, SQS messages and SES recipients by scripts/bench_costs.py's
`counting_units` from the same requests.

The expected values are scripts/bench_costs.py's `COSTS`, the table `make bench` prices: a change in what an operation
asks of AWS fails here, and the priced table cannot drift from the code. The operations are scripts/bench_lib.py's
(which `make bench` also counts) and tests/integration/request_operations.py's (every other route family and every
event-driven function).

Where each operation stands against its floor (the requests it cannot do without):
- a read route: 1 request (Query, GetItem, or one BatchGetItem: the balance with the settings it needs). At the
  floor.
- POST /payments: the settings GetItem (limits and surcharges: the payment cannot be judged without them), Powertools'
  idempotency record (PutItem in progress, UpdateItem with the answer: the route's replay contract), and one
  transaction per state change the gateway makes us record. A card settled at once makes 3 transactions (pending +
  idempotency pointer + claim on the gateway object; the gateway's reference; the completion): the second and third
  could be one when the gateway answers `succeeded` at once (one transaction, 2 WRU per item, fewer). A saved card
  reads its card, the Stripe customer and the default with 3 more GetItems: one BatchGetItem would do (same units).
- a webhook: the binding GetItem and one transaction (status, balance, event dedupe, outbox). At the floor. A dispute
  reads 3 (opened) and 5 (funds withdrawn) items one GetItem at a time: the reads that do not depend on each other
  could be one BatchGetItem (fewer requests, the same units).
- the outbox publish: 1 PutEvents per 10 events (its maximum); per balance record 1 UpdateItem (the payment's balance
  after, which the receipt needs) and 2 GetItems (the low-balance alert and the auto top-up). Those 2 reads per record
  could be one BatchGetItem per batch (20 requests -> 1 for a batch of 10; the same units, 1 RRU each).
- notify: reads (GetItem 2-3), the e-mail marker claimed before SES and marked sent after (UpdateItem 2: once per
  e-mail), one SendEmail. Webhook delivery: per attempt the claim and the outcome (UpdateItem 2), one GetItem, and 1
  KMS Decrypt of the endpoint's secret (a cache per container would save it on warm attempts).
"""

from __future__ import annotations

from typing import Any

import pytest

from scripts import bench_lib
from scripts.bench_costs import COSTS, counting_units
from scripts.bench_lib import OPERATIONS, counting_requests
from tests.integration import request_operations
from tests.integration.request_operations import World

pytestmark = pytest.mark.usefixtures("aws")


def test_every_operation_has_its_row_and_every_row_is_measured() -> None:
    measured = [op.label for op in OPERATIONS] + [op.label for op in request_operations.OPERATIONS]
    assert len(measured) == len(set(measured))
    assert sorted(COSTS) == sorted(measured)


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_requests_per_operation(operation: bench_lib.Operation, customer: str, request: Any) -> None:
    if operation.needs_gateway_sim:
        request.getfixturevalue("gateway_sim")
    with counting_units() as units:
        result = operation.run(customer)
    assert result.status == operation.ok, result.body
    assert result.requests == COSTS[operation.label].requests
    assert units.as_dict() == COSTS[operation.label].units


@pytest.mark.parametrize(
    "operation", request_operations.OPERATIONS, ids=[op.label for op in request_operations.OPERATIONS]
)
def test_requests_per_other_operation(operation: request_operations.Op, customer: str, gateway_sim: Any) -> None:
    with counting_units() as units:
        result = operation.run(World(customer, gateway_sim))
    assert result.status == operation.ok, result.body
    assert result.requests == COSTS[operation.label].requests
    assert units.as_dict() == COSTS[operation.label].units


def test_each_further_export_page_is_one_more_query(customer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORT_PAGE_SIZE", "5")
    bench_lib.seed_payments(customer, 12)  # pages of 5, 5 and 2
    result = bench_lib.call_handler("export_csv", bench_lib.post_event("/payments/exports", customer, {}))
    assert result.status == 201, result.body
    assert result.body["row_count"] == 12
    assert result.requests == {"Query": 1 + 3, "PutItem": 1, "UpdateItem": 1, "s3.PutObject": 1}


def test_each_ten_events_of_a_stream_batch_are_one_put_events(customer: str, gateway_sim: Any) -> None:
    result = request_operations.publish_batch(25)(World(customer, gateway_sim))
    assert result.status == 200, result.body
    assert result.requests["events.PutEvents"] == 3  # 10 + 10 + 5


def test_the_counter_sees_clients_created_inside_and_before_the_block(aws: dict[str, str]) -> None:
    import boto3

    before = boto3.client("dynamodb")
    with counting_requests() as counts:
        before.describe_table(TableName=aws["PaymentsTable"])
        boto3.client("dynamodb").describe_table(TableName=aws["PaymentsTable"])
        boto3.client("s3").list_buckets()
    before.describe_table(TableName=aws["PaymentsTable"])  # after the block: not counted
    assert counts == {"DescribeTable": 2, "s3.ListBuckets": 1}


def test_units_follow_dynamodbs_rules(aws: dict[str, str], customer: str) -> None:
    """A 2.5 KB item: put is 3 WRU, an eventually consistent read 0.5 RRU, a transactional put 6 WRU; a miss 1 RRU."""
    import boto3

    client, table = boto3.client("dynamodb"), aws["PaymentsTable"]
    item = {"PK": {"S": f"CUST#{customer}"}, "SK": {"S": "UNITS"}, "blob": {"S": "x" * 2500}}
    with counting_units() as units, counting_requests():
        client.put_item(TableName=table, Item=item)
        client.get_item(TableName=table, Key={"PK": item["PK"], "SK": item["SK"]})
        client.get_item(TableName=table, Key={"PK": item["PK"], "SK": {"S": "NONE"}}, ConsistentRead=True)
        client.transact_write_items(TransactItems=[{"Put": {"TableName": table, "Item": item}}])
    assert units.as_dict() == {"WRU": 3 + 6, "RRU": 0.5 + 1}
