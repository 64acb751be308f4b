"""The DynamoDB side every part of `PaymentStore` shares: the table, its client, keys, transactions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from payments import snapstart
from payments.config import settings
from payments.errors import RetryLater
from payments.store.base import BUSY_MESSAGE, StoreBase, backoff
from payments.store.codec import Item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_MAX_CONFLICT_RETRIES = 4  # TransactionConflict: another transaction held an item; back off and send again


def dynamodb_client() -> DynamoDBClient:
    import boto3

    return snapstart.closes_connections(boto3.client("dynamodb"))  # docs/snapstart.md


def key(pk: str, sk: str) -> Item:
    """The primary key of an item."""
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def cancellation_codes(exc: Any) -> list[str]:
    """The reason of each part of a cancelled transaction, in order ("None" for a part that was fine)."""
    response: Mapping[str, Any] = exc.response
    return [str(r.get("Code", "None")) for r in response.get("CancellationReasons", [])]


class Table(StoreBase):
    """The payments table and its DynamoDB client (created at first use)."""

    def __init__(self, table_name: str | None = None, client: DynamoDBClient | None = None) -> None:
        self.table = table_name or settings().payments_table
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            self._client = dynamodb_client()
        return self._client

    def transact(self, parts: Sequence[Item]) -> None:
        """TransactWriteItems, sent again with jittered backoff while DynamoDB reports a TransactionConflict
        (another transaction held one of the items: nothing was written). Every part is conditional, so a repeat
        cannot apply twice. Still conflicting after the retries: RetryLater (503 with Retry-After)."""
        for attempt in range(_MAX_CONFLICT_RETRIES + 1):
            try:
                self.client.transact_write_items(TransactItems=list(parts))  # type: ignore[arg-type]
                return
            except self.client.exceptions.TransactionCanceledException as exc:
                if "TransactionConflict" not in cancellation_codes(exc):
                    raise
                if attempt == _MAX_CONFLICT_RETRIES:
                    raise RetryLater(BUSY_MESSAGE, http_status=503) from exc
            backoff(attempt)

    def put_new(self, item: Item) -> Item:
        """A transaction part: put `item`, which must not exist yet."""
        return {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}}
