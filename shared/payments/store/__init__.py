"""The payments table: the only code that knows DynamoDB (docs/data-model.md, docs/architecture.md).

Every key and item type (`items`), every attribute value (`codec`), every request (`PaymentStore`, in parts:
`payment_items`, `gateway_items`, `voucher_items`, `event_items`, `export_items` over `table`). The use cases
call the store's methods and never see an item.
"""

from __future__ import annotations

from payments.store.base import BUSY_MESSAGE, Store, Written
from payments.store.codec import Item, from_item, search_text, to_item
from payments.store.dynamodb import PaymentStore
from payments.store.items import BALANCE_SK, ITEM_TYPES, ItemType, customer_pk, payment_sk
from payments.store.payment_items import EVENT_TTL_SECONDS, SEARCH_PAGE, SEARCH_QUERIES
from payments.store.records import Dedupe, RefundWritten, TransitionOutcome, Voucher
from payments.store.table import dynamodb_client

__all__ = [
    "BALANCE_SK",
    "BUSY_MESSAGE",
    "EVENT_TTL_SECONDS",
    "ITEM_TYPES",
    "SEARCH_PAGE",
    "SEARCH_QUERIES",
    "Dedupe",
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
