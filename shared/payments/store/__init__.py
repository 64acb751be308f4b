"""The payments table: the only code that knows DynamoDB (docs/data-model.md, docs/architecture.md).

`interface.Store` is what the use cases may ask; `PaymentStore` (DynamoDB) and `memory.MemoryStore` keep it.
Item types in `items`, keys in `keys`, attribute values in `codec`; requests in `reads`, and for writes in
`writes` (payments, balances, refunds, status changes, event markers), `gateway_items`, `voucher_items` and
`export_items`, all over `table`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from payments.store.base import BUSY_MESSAGE, Written
from payments.store.codec import Item, from_item, search_text, to_item
from payments.store.dynamodb import PaymentStore
from payments.store.keys import BALANCE_SK, customer_pk, payment_sk
from payments.store.reads import SEARCH_PAGE, SEARCH_QUERIES
from payments.store.records import Dedupe, DisputeWritten, RefundWritten, TransitionOutcome, Voucher
from payments.store.table import dynamodb_client

if TYPE_CHECKING:
    from payments.store.interface import Store
    from payments.store.items import ITEM_TYPES, ItemType
    from payments.store.writes import EVENT_TTL_SECONDS

__all__ = [
    "BALANCE_SK",
    "BUSY_MESSAGE",
    "EVENT_TTL_SECONDS",
    "ITEM_TYPES",
    "SEARCH_PAGE",
    "SEARCH_QUERIES",
    "Dedupe",
    "DisputeWritten",
    "Item",
    "ItemType",
    "PaymentStore",
    "RefundWritten",
    "Store",
    "TransitionOutcome",
    "Voucher",
    "Written",
    "customer_pk",
    "dynamodb_client",
    "from_item",
    "payment_sk",
    "search_text",
    "to_item",
]

_LAZY = {
    "Store": "payments.store.interface",
    "ITEM_TYPES": "payments.store.items",
    "ItemType": "payments.store.items",
    "EVENT_TTL_SECONDS": "payments.store.writes",
}


def __getattr__(name: str) -> Any:
    """What the read functions never need, imported when first asked for: they do not load it at start."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
