"""The embedded AWS: moto in server mode, with DynamoDB's isolation guarantees restored.

moto applies a TransactWriteItems item by item and, on a failed condition, restores a deep copy of
the whole table; a conditional PutItem checks and then writes. Nothing locks, so under concurrent
requests two transactions can both pass a condition, and a rollback can erase another request's
write. Real DynamoDB makes each request atomic and isolated, and this service's exactly-once design
relies on that. So every DynamoDB backend call runs under one lock here: requests are serialised,
exactly as the guarantees we depend on say they may be.
"""

from __future__ import annotations

import functools
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


def isolate_dynamodb() -> None:
    """Serialise moto's DynamoDB backend operations (idempotent)."""
    global _patched
    if _patched:
        return
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in _OPERATIONS:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)
    _patched = True


def start(port: int, host: str = "127.0.0.1") -> Any:
    """Start moto's server on host:port with isolated DynamoDB; returns the server (call .stop())."""
    from moto.server import ThreadedMotoServer

    isolate_dynamodb()
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    return server
