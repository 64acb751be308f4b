"""The embedded AWS: moto in server mode, with DynamoDB's isolation guarantees restored.

moto applies a TransactWriteItems item by item and, on a failed condition, restores a deep copy of
the whole table; a conditional PutItem checks and then writes. Nothing locks, so under concurrent
requests two transactions can both pass a condition, and a rollback can erase another request's
write. Real DynamoDB makes each request atomic and isolated, and this service's exactly-once design
relies on that. So every DynamoDB backend call runs under one lock here: requests are serialised,
exactly as the guarantees we depend on say they may be.

moto also deep-copies every table a transaction names before applying it, so each TransactWriteItems costs
time in proportion to the whole table: the local stack and the test session slowed down as data piled up
(and a rolled-back transaction left stream records of its partial writes). `transact_write_items` below
checks every condition first and writes only when all hold, backing up just the items it writes.

moto's Query likewise costs time in proportion to the table: it sorts every item of the table (comparing
moto's attribute objects, slow) and then keeps the partition asked for. At 5,000 items a Query of one small
partition took ~0.1 s, so every test slowed down as the session's table filled. Here a Query of the table
reads just its partition, and the table's items are sorted by their plain key values (moto's own order):
same answers, in time proportional to the partition.

moto keeps the e-mails SES was given (`sent_messages` of its SES backend, which sesv2 sends through) but no API
of SES lists them, and moto's own `/moto-api/data.json` dumps every object of every service (each DynamoDB item
copy included). So the embedded AWS serves one more route, `GET /moto-api/local/sent-emails`: the raw messages,
oldest first (`SENT_EMAILS_PATH`; local/mailbox.py reads and parses them for `GET /_local/outbox` and the tests).
"""

from __future__ import annotations

import functools
import inspect
import threading
from typing import Any

_OPERATIONS = (
    "put_item",
    "get_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "transact_write_items",
    "transact_get_items",
    "batch_get_item",
    "batch_write_item",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
)
_patched = False
SENT_EMAILS_PATH = "/moto-api/local/sent-emails"


def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """DynamoDB's TransactWriteItems on moto's backend, in time proportional to the transaction, not the tables.

    As moto: one cancellation reason per part (`ConditionalCheckFailed` with the item when asked for
    `ALL_OLD`, else "None"), `MultipleTransactionsException` for two parts on one item, validation errors
    raised as they are. Unlike moto: the conditions are all checked before anything is written, so a
    cancelled transaction writes nothing at all; a part that fails while being applied (a bad update
    expression) puts back the items written before it. Runs under the backend lock, like every call here.
    """
    import copy

    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    parts: list[tuple[str, dict[str, Any], str, dict[str, Any], Any]] = []
    targets: set[tuple[str, str]] = set()
    reasons: list[tuple[Any, Any, Any]] = []
    for part in transact_items:
        if len(part) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(part.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise ValueError("Unsupported transaction operation")
        table_name = op["TableName"]
        if op_type == "Put":
            table = self.get_table(table_name)
            key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = op["Item"][table.range_key_attr]
        else:
            key = op["Key"]
        target = (str(table_name), str(dict(sorted(key.items()))))
        if target in targets:
            raise MultipleTransactionsException()
        targets.add(target)
        current = self.get_item(table_name, key)
        condition = op.get("ConditionExpression")
        held = condition is None or get_filter_expression(
            condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        ).expr(current)
        if held:
            reasons.append((None, None, None))
        else:
            old = (
                current.to_json()["Attributes"]
                if current and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
                else None
            )
            reasons.append(("ConditionalCheckFailed", ConditionalCheckFailed().message, old))
        parts.append((op_type, op, table_name, key, copy.deepcopy(current)))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)
    written: list[tuple[str, dict[str, Any], Any]] = []
    try:
        for op_type, op, table_name, key, before in parts:
            if op_type == "ConditionCheck":
                continue
            written.append((table_name, key, before))
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(
                    table_name, op["Item"], expression_attribute_names=names, expression_attribute_values=values
                )
            elif op_type == "Delete":
                self.delete_item(table_name, key, expression_attribute_names=names, expression_attribute_values=values)
            else:
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
    except Exception as exc:
        for table_name, key, before in reversed(written):  # what was written before the failing part
            if before is None:
                if self.get_item(table_name, key) is not None:
                    self.delete_item(table_name, key)
            else:
                self.put_item(table_name, before.to_json()["Attributes"])
        from moto.dynamodb.exceptions import MockValidationException

        if isinstance(exc, MockValidationException):
            raise
        failed = len(written) - 1
        raise TransactionCanceledException(
            [(type(exc).__name__, str(exc), None) if i == failed else (None, None, None) for i in range(len(parts))]
        ) from exc


_query_scope = threading.local()  # the items a Query in this thread may see: (table, items)


def _sort_key(item: Any) -> Any:
    """moto's order of a table's items, (hash key, range key), as the plain values moto's comparisons compare (a
    key attribute has one type in a table, so comparing the values alone orders them the same)."""
    return (item.hash_key.cast_value, item.range_key.cast_value) if item.range_key else item.hash_key.cast_value


def _all_items(self: Any) -> list[Any]:
    """moto's `Table.all_items`, sorted by plain values; within a Query of the table, only the partition asked for."""
    scope = getattr(_query_scope, "items", None)
    if scope is not None and scope[0] is self:
        return list(scope[1])
    items: list[Any] = []
    for hash_set in self.items.values():
        if self.range_key_attr:
            items.extend(hash_set.values())
        else:
            items.append(hash_set)
    return sorted(items, key=_sort_key)


def _partition_query(original: Any) -> Any:
    """moto's `Table.query`, shown only the partition of the hash key when it queries the table itself (moto
    then keeps exactly the items of that partition, and sorts them by range key, itself); index queries as moto."""
    signature = inspect.signature(original)

    @functools.wraps(original)
    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        hash_key = arguments.get("hash_key")
        if arguments.get("index_name") or hash_key is None:
            return original(self, *args, **kwargs)
        try:
            partition = self.items.get(hash_key)
        except TypeError:  # not a key value (moto refuses it as it will)
            return original(self, *args, **kwargs)
        if partition is None:
            items = []
        elif self.range_key_attr:
            items = list(partition.values())
        else:
            items = [partition]
        _query_scope.items = (self, items)
        try:
            return original(self, *args, **kwargs)
        finally:
            _query_scope.items = None

    return query


def isolate_dynamodb() -> None:
    """Serialise moto's DynamoDB backend operations (idempotent), with our `transact_write_items`, and Queries in
    time proportional to the partition."""
    global _patched
    if _patched:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    Table.all_items = _all_items  # type: ignore[method-assign]
    Table.query = _partition_query(Table.query)  # type: ignore[method-assign]
    lock = threading.RLock()
    for name in _OPERATIONS:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)
    _patched = True


def sent_emails(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """`GET /moto-api/local/sent-emails`: every raw message SES took, in every account and region, oldest first."""
    import json

    from moto.ses.models import RawMessage, ses_backends

    found = []
    for account_id, regions in ses_backends.items():
        for region, backend in regions.items():
            for message in backend.sent_messages:
                if isinstance(message, RawMessage):
                    found.append(
                        {
                            "id": message.id,
                            "account": account_id,
                            "region": region,
                            "source": message.source,
                            "destinations": list(message.destinations),
                            "raw": message.raw_data,
                        }
                    )
    return 200, {"Content-Type": "application/json"}, json.dumps({"emails": found})


def serve_sent_emails() -> None:
    """Add `SENT_EMAILS_PATH` to moto's own API routes (idempotent); before the server's first moto-api request."""
    from moto.moto_api._internal import urls

    urls.url_paths.setdefault("{0}" + SENT_EMAILS_PATH + "$", sent_emails)


def start(port: int, host: str = "127.0.0.1") -> Any:
    """Start moto's server on host:port with isolated DynamoDB; returns the server (call .stop())."""
    from moto.server import ThreadedMotoServer

    isolate_dynamodb()
    serve_sent_emails()
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    return server
