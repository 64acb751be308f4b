"""The outbox (docs/events.md): the item of an outbound event, put in the transaction of the change it tells, and
read back from the table's stream by the publisher. Imported by the writers and the publisher only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from payments.outbox import OutboxEvent
from payments.store.codec import Item, item_of, plain
from payments.store.keys import OUTBOX_SK, outbox_pk
from payments.store.table import key

if TYPE_CHECKING:
    from payments.store.table import Table

OUTBOX_TYPE = "outbox-event"  # the item's `type`: the stream's filter (template.yaml) selects on it
OUTBOX_TTL_SECONDS = 7 * 24 * 3600  # longer than the stream keeps a record (24 h): the item outlives its delivery
_FIELDS = ("event_id", "detail_type", "customer_id", "subject_id", "occurred_at", "detail")


def outbox_item(event: OutboxEvent, expires_at: int) -> Item:
    return item_of(
        {
            "PK": outbox_pk(event.event_id),
            "SK": OUTBOX_SK,
            "type": OUTBOX_TYPE,
            "event_id": event.event_id,
            "detail_type": event.detail_type,
            "customer_id": event.customer_id,
            "subject_id": event.subject_id,
            "occurred_at": event.occurred_at,
            "detail": event.body,
            "expires_at": expires_at,
        }
    )


def outbox_put(store: Table, event: OutboxEvent) -> Item:
    """A transaction part: the event's item, put once (its id is the change's: a repeat finds it)."""
    return store.put_new(outbox_item(event, int(time.time()) + OUTBOX_TTL_SECONDS))


def event_of_image(image: Mapping[str, Any]) -> OutboxEvent | None:
    """The event of an item's image as the stream carries it, in Python values (Powertools' `new_image`) or in
    attribute values (`{"S": ...}`); None if it is not a whole outbox item."""
    values = dict(image)
    if isinstance(values.get("type"), dict):  # attribute values: a raw stream record, or a GetItem
        values = plain(values)
    if values.get("type") != OUTBOX_TYPE or not all(isinstance(values.get(name), str) for name in _FIELDS):
        return None
    event_id, kind, customer_id, subject_id, occurred_at, body = (str(values[name]) for name in _FIELDS)
    return OutboxEvent(event_id, kind, customer_id, subject_id, occurred_at, body)


def outbox_event(store: Table, event_id: str) -> OutboxEvent | None:
    """The outbox item of `event_id`, if it was written (and has not expired)."""
    found = store.client.get_item(TableName=store.table, Key=key(outbox_pk(event_id), OUTBOX_SK), ConsistentRead=True)
    return event_of_image(found["Item"]) if "Item" in found else None
