"""Outbound webhooks' items (docs/webhooks-outbound.md): the endpoints operators register, and one delivery per
(event, endpoint) with every attempt made. Imported by the webhook routes and the delivery function only.

A delivery is claimed attempt by attempt with conditional writes: `attempts` counts the attempts claimed,
`finished` the attempts whose outcome is recorded. Attempt n may start only while the delivery is pending and
either n - 1 attempts were claimed and finished, or attempt n was claimed by a process whose lease ran out
(it died mid-attempt). So a duplicate message, or the event delivered again by EventBridge, never starts a
second attempt alongside the first, nor any attempt once the delivery is delivered or failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from payments.store.codec import Item, item_of, plain, values, whole
from payments.store.keys import WEBHOOKS_PK, delivery_sk, endpoint_sk, webhook_pk
from payments.store.table import key

if TYPE_CHECKING:
    from payments.store.table import Table

ENDPOINT_TYPE = "webhook-endpoint"
DELIVERY_TYPE = "webhook-delivery"
DELIVERY_TTL_SECONDS = 30 * 24 * 3600  # a delivery's record is kept 30 days after it opened


class DeliveryState(StrEnum):
    PENDING = "pending"  # attempts go on
    DELIVERED = "delivered"  # an attempt got a 2xx
    FAILED = "failed"  # the retry window closed: the last attempt went to the dead-letter queue
    CANCELLED = "cancelled"  # the endpoint was deleted before it succeeded


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    endpoint_id: str
    url: str
    events: tuple[str, ...]
    customer_id: str | None  # None: every customer's events
    secret_ciphertext: str  # KMS ciphertext (base64) of the signing secret: the plaintext is never stored
    created_at: str
    created_by: str


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    at: str  # ISO 8601 UTC, when it started
    status: int | None  # the HTTP status answered, None if none
    error: str | None  # what went wrong without an answer (timeout, connection failed, refused)
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Delivery:
    endpoint_id: str
    event_id: str
    detail_type: str
    customer_id: str | None
    state: DeliveryState
    opened_at: str
    attempts: int = 0  # claimed
    finished: int = 0  # recorded
    lease_until_ms: int = 0
    delivered_at: str | None = None
    log: tuple[Attempt, ...] = field(default_factory=tuple)


# ---- endpoints ------------------------------------------------------------------------------------


def endpoint_item(endpoint: WebhookEndpoint) -> Item:
    return item_of(
        {
            "PK": WEBHOOKS_PK,
            "SK": endpoint_sk(endpoint.endpoint_id),
            "type": ENDPOINT_TYPE,
            "endpoint_id": endpoint.endpoint_id,
            "url": endpoint.url,
            "events": list(endpoint.events),
            "customer_id": endpoint.customer_id,
            "secret_ciphertext": endpoint.secret_ciphertext,
            "created_at": endpoint.created_at,
            "created_by": endpoint.created_by,
        }
    )


def endpoint_of(item: Item) -> WebhookEndpoint:
    v = plain(item)
    return WebhookEndpoint(
        endpoint_id=str(v["endpoint_id"]),
        url=str(v["url"]),
        events=tuple(str(e) for e in v.get("events", [])),
        customer_id=str(v["customer_id"]) if v.get("customer_id") else None,
        secret_ciphertext=str(v["secret_ciphertext"]),
        created_at=str(v["created_at"]),
        created_by=str(v.get("created_by", "")),
    )


def put_endpoint(store: Table, endpoint: WebhookEndpoint) -> None:
    store.client.put_item(
        TableName=store.table, Item=endpoint_item(endpoint), ConditionExpression="attribute_not_exists(PK)"
    )


def get_endpoint(store: Table, endpoint_id: str) -> WebhookEndpoint | None:
    if not endpoint_id or len(endpoint_id) > 64:
        return None
    found = store.client.get_item(
        TableName=store.table, Key=key(WEBHOOKS_PK, endpoint_sk(endpoint_id)), ConsistentRead=True
    ).get("Item")
    return endpoint_of(found) if found else None


def list_endpoints(store: Table) -> list[WebhookEndpoint]:
    """Every endpoint, oldest id first (their partition, all pages)."""
    found: list[WebhookEndpoint] = []
    request: dict[str, Any] = {
        "TableName": store.table,
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :sk)",
        "ExpressionAttributeValues": values({":pk": WEBHOOKS_PK, ":sk": endpoint_sk("")}),
        "ConsistentRead": True,
    }
    while True:
        page = store.client.query(**request)
        found += [endpoint_of(item) for item in page.get("Items", [])]
        if "LastEvaluatedKey" not in page:
            return found
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def delete_endpoint(store: Table, endpoint_id: str) -> bool:
    """False if there was no such endpoint. Its deliveries stay readable until their TTL."""
    if not endpoint_id or len(endpoint_id) > 64:
        return False
    try:
        store.client.delete_item(
            TableName=store.table,
            Key=key(WEBHOOKS_PK, endpoint_sk(endpoint_id)),
            ConditionExpression="attribute_exists(PK)",
        )
    except store.client.exceptions.ConditionalCheckFailedException:
        return False
    return True


# ---- deliveries -----------------------------------------------------------------------------------


def delivery_item(delivery: Delivery, expires_at: int) -> Item:
    return item_of(
        {
            "PK": webhook_pk(delivery.endpoint_id),
            "SK": delivery_sk(delivery.event_id),
            "type": DELIVERY_TYPE,
            "endpoint_id": delivery.endpoint_id,
            "event_id": delivery.event_id,
            "detail_type": delivery.detail_type,
            "customer_id": delivery.customer_id,
            "state": delivery.state.value,
            "opened_at": delivery.opened_at,
            "attempts": delivery.attempts,
            "finished": delivery.finished,
            "lease_until": delivery.lease_until_ms,
            "attempt_log": [],
            "expires_at": expires_at,
        }
    )


def _number(value: Any) -> int:
    return whole(value) if isinstance(value, Decimal) else 0


def delivery_of(item: Item) -> Delivery:
    v = plain(item)
    log = tuple(
        Attempt(
            number=_number(entry.get("n")),
            at=str(entry.get("at", "")),
            status=_number(entry["status"]) if entry.get("status") is not None else None,
            error=str(entry["error"]) if entry.get("error") else None,
            duration_ms=_number(entry.get("ms")),
        )
        for entry in v.get("attempt_log", [])
    )
    return Delivery(
        endpoint_id=str(v["endpoint_id"]),
        event_id=str(v["event_id"]),
        detail_type=str(v.get("detail_type", "")),
        customer_id=str(v["customer_id"]) if v.get("customer_id") else None,
        state=DeliveryState(str(v["state"])),
        opened_at=str(v.get("opened_at", "")),
        attempts=_number(v.get("attempts")),
        finished=_number(v.get("finished")),
        lease_until_ms=_number(v.get("lease_until")),
        delivered_at=str(v["delivered_at"]) if v.get("delivered_at") else None,
        log=log,
    )


def _delivery_key(endpoint_id: str, event_id: str) -> Item:
    return key(webhook_pk(endpoint_id), delivery_sk(event_id))


def get_delivery(store: Table, endpoint_id: str, event_id: str) -> Delivery | None:
    found = store.client.get_item(
        TableName=store.table, Key=_delivery_key(endpoint_id, event_id), ConsistentRead=True
    ).get("Item")
    return delivery_of(found) if found else None


def open_delivery(store: Table, delivery: Delivery, expires_at: int) -> tuple[Delivery, bool]:
    """Put the delivery if it is new: (the stored delivery, whether it was put now). One per (event, endpoint)."""
    try:
        store.client.put_item(
            TableName=store.table,
            Item=delivery_item(delivery, expires_at),
            ConditionExpression="attribute_not_exists(PK)",
        )
    except store.client.exceptions.ConditionalCheckFailedException:
        existing = get_delivery(store, delivery.endpoint_id, delivery.event_id)
        if existing is not None:
            return existing, False
        raise  # expired between the put and the read: let the message come again
    return delivery, True


def claim_attempt(store: Table, endpoint_id: str, event_id: str, number: int, now_ms: int, lease_ms: int) -> bool:
    """Start attempt `number` (see the module's note); False if it may not start now."""
    try:
        store.client.update_item(
            TableName=store.table,
            Key=_delivery_key(endpoint_id, event_id),
            UpdateExpression="SET attempts = :n, lease_until = :lease",
            ConditionExpression=(
                "#state = :pending AND finished = :previous"
                " AND (attempts = :previous OR (attempts = :n AND lease_until < :now))"
            ),
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=values(
                {
                    ":n": number,
                    ":previous": number - 1,
                    ":lease": now_ms + lease_ms,
                    ":now": now_ms,
                    ":pending": DeliveryState.PENDING.value,
                }
            ),
        )
    except store.client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def finish_attempt(
    store: Table, endpoint_id: str, event_id: str, attempt: Attempt, state: DeliveryState, *, delivered_at: str | None
) -> bool:
    """Record the outcome of the attempt this process claimed, and the delivery's state after it. False if the
    claim was lost (its lease ran out and another process took the attempt over)."""
    entry = {"n": attempt.number, "at": attempt.at, "status": attempt.status, "error": attempt.error}
    entry["ms"] = attempt.duration_ms
    sets = "finished = :n, #state = :state, lease_until = :zero, attempt_log = list_append(attempt_log, :entry)"
    named: dict[str, object] = {
        ":n": attempt.number,
        ":state": state.value,
        ":zero": 0,
        ":entry": [{k: v for k, v in entry.items() if v is not None}],
        ":pending": DeliveryState.PENDING.value,
        ":previous": attempt.number - 1,
    }
    if delivered_at is not None:
        sets += ", delivered_at = :delivered"
        named[":delivered"] = delivered_at
    try:
        store.client.update_item(
            TableName=store.table,
            Key=_delivery_key(endpoint_id, event_id),
            UpdateExpression="SET " + sets,
            ConditionExpression="#state = :pending AND attempts = :n AND finished = :previous",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=values(named),
        )
    except store.client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def cancel_delivery(store: Table, endpoint_id: str, event_id: str) -> None:
    """A pending delivery whose endpoint was deleted: no attempt follows."""
    try:
        store.client.update_item(
            TableName=store.table,
            Key=_delivery_key(endpoint_id, event_id),
            UpdateExpression="SET #state = :cancelled",
            ConditionExpression="#state = :pending",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=values(
                {":cancelled": DeliveryState.CANCELLED.value, ":pending": DeliveryState.PENDING.value}
            ),
        )
    except store.client.exceptions.ConditionalCheckFailedException:
        return


def list_deliveries(store: Table, endpoint_id: str, *, limit: int, scan_cap: int = 1000) -> list[Delivery]:
    """The endpoint's deliveries, newest opened first: `limit` of the first `scan_cap` read (docs: the record
    of a delivery is kept 30 days)."""
    found: list[Delivery] = []
    request: dict[str, Any] = {
        "TableName": store.table,
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :sk)",
        "ExpressionAttributeValues": values({":pk": webhook_pk(endpoint_id), ":sk": delivery_sk("")}),
        "ConsistentRead": True,
    }
    while len(found) < scan_cap:
        page = store.client.query(**request)
        found += [delivery_of(item) for item in page.get("Items", [])]
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(found, key=lambda d: d.opened_at, reverse=True)[:limit]
