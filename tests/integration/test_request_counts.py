"""Exact AWS requests per operation (docs/benchmarks.md): what each request costs in DynamoDB, whatever
the machine. Counted with botocore's `before-call` hook on every client, through the real handlers.

The operations are scripts/bench_lib.py's, so `make bench` documents the very numbers asserted here.
"""

from __future__ import annotations

import pytest

from scripts import bench_lib
from scripts.bench_lib import OPERATIONS, counting_requests

pytestmark = pytest.mark.usefixtures("aws")

IDEMPOTENCY = {"PutItem": 1, "UpdateItem": 1}  # Powertools idempotency: in progress, then the saved answer

EXPECTED: dict[str, dict[str, int]] = {
    "GET /payments, first page of 50": {"Query": 1},
    "GET /payments, next page (cursor)": {"Query": 1},
    "GET /payments?status=completed": {"Query": 1},
    "GET /payments/{id}": {"GetItem": 1},
    # the balance item and the account settings (a credit limit adds to the answer) in one request
    "GET /balance": {"BatchGetItem": 1},
    # every POST /payments: 1 GetItem of the account settings (limits, surcharges); with a max_balance, 1 more of
    # the balance. Pending payment + IDEM pointer + bank reference in one transaction
    "POST /payments, bank transfer": {"GetItem": 1, **IDEMPOTENCY, "TransactWriteItems": 1},
    # the attempt counted (one conditional update), voucher read, then voucher claim + payment + balance + the
    # attempt given back in one transaction
    "POST /payments, voucher": {"PutItem": 1, "UpdateItem": 2, "GetItem": 2, "TransactWriteItems": 1},
    # pending + pointer + the claim on creating the PaymentIntent; gateway ref + pointer; completion
    # (status + balance), neither read back
    "POST /payments, card settled at once (Stripe)": {"GetItem": 1, **IDEMPOTENCY, "TransactWriteItems": 3},
    # find the payment; completion: read, transaction (status + balance + event dedupe), read back
    "POST /webhooks/stripe, payment succeeded": {"GetItem": 1, "TransactWriteItems": 1},
    # COUNT estimate, export record, one page of payments, record done; the file is one PutObject
    "POST /payments/exports, 60 rows (1 page)": {"Query": 2, "PutItem": 1, "UpdateItem": 1, "s3.PutObject": 1},
    "GET /payments/exports/{id}": {"GetItem": 1},
}


def test_every_operation_has_an_expected_count() -> None:
    assert sorted(EXPECTED) == sorted(op.label for op in OPERATIONS)


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_requests_per_operation(operation: bench_lib.Operation, customer: str, request) -> None:
    if operation.needs_gateway_sim:
        request.getfixturevalue("gateway_sim")
    result = operation.run(customer)
    assert result.status == operation.ok, result.body
    assert result.requests == EXPECTED[operation.label]


def test_each_further_export_page_is_one_more_query(customer: str, monkeypatch) -> None:
    monkeypatch.setenv("EXPORT_PAGE_SIZE", "5")
    bench_lib.seed_payments(customer, 12)  # pages of 5, 5 and 2
    result = bench_lib.call_handler("export_csv", bench_lib.post_event("/payments/exports", customer, {}))
    assert result.status == 201, result.body
    assert result.body["row_count"] == 12
    assert result.requests == {"Query": 1 + 3, "PutItem": 1, "UpdateItem": 1, "s3.PutObject": 1}


def test_the_counter_sees_clients_created_inside_and_before_the_block(aws: dict[str, str]) -> None:
    import boto3

    before = boto3.client("dynamodb")
    with counting_requests() as counts:
        before.describe_table(TableName=aws["PaymentsTable"])
        boto3.client("dynamodb").describe_table(TableName=aws["PaymentsTable"])
        boto3.client("s3").list_buckets()
    before.describe_table(TableName=aws["PaymentsTable"])  # after the block: not counted
    assert counts == {"DescribeTable": 2, "s3.ListBuckets": 1}
