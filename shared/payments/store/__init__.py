"""The payments table: the only code that knows DynamoDB (docs/data-model.md, docs/architecture.md).

Every key, every item type, every request. `PaymentStore` is the table; the use cases call its methods.
"""

from __future__ import annotations

from payments.store.codec import Item, from_item, search_text, to_item
from payments.store.dynamodb import (
    BUSY_MESSAGE,
    EVENT_TTL_SECONDS,
    SEARCH_PAGE,
    SEARCH_QUERIES,
    Dedupe,
    PaymentStore,
    TransitionOutcome,
    dynamodb_client,
)
from payments.store.items import BALANCE_SK, customer_pk, payment_sk

__all__ = [
    "BALANCE_SK",
    "BUSY_MESSAGE",
    "EVENT_TTL_SECONDS",
    "SEARCH_PAGE",
    "SEARCH_QUERIES",
    "Dedupe",
    "Item",
    "PaymentStore",
    "TransitionOutcome",
    "customer_pk",
    "dynamodb_client",
    "from_item",
    "payment_sk",
    "search_text",
    "to_item",
]
