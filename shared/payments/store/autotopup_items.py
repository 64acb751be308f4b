"""The auto top-up (docs/auto-topup.md): one item beside the customer's balance (`CUST#<c>`/`AUTOTOPUP`), one item
per mandate (`CUST#<c>`/`MANDATE#<id>`), and the one write that changes the auto top-up: a Put conditioned on the
`rev` it was read at (or on there being none), in one transaction with what goes with it (a new mandate, the new
pending auto top-up payment, an outbox event), each of those conditioned on not existing yet. So a redelivered
stream record or queue message, whose payment or event exists, writes nothing (DUPLICATE), and a writer whose read
is stale writes nothing (LOST: read again).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from payments.models import Payment, iso_z, utcnow
from payments.outbox import OutboxEvent
from payments.store.base import Written
from payments.store.codec import Item, item_of, plain, to_item, values
from payments.store.keys import AUTOTOPUP_SK, customer_pk, mandate_sk
from payments.store.outbox_items import OUTBOX_TTL_SECONDS, outbox_item
from payments.store.records import AutoTopup, Mandate
from payments.store.table import cancellation_codes, key

if TYPE_CHECKING:
    from payments.store.table import Table

AUTOTOPUP_TYPE = "auto-topup"
MANDATE_TYPE = "mandate"


def auto_topup_item(customer_id: str, topup: AutoTopup) -> Item:
    return item_of(
        {
            "PK": customer_pk(customer_id),
            "SK": AUTOTOPUP_SK,
            "type": AUTOTOPUP_TYPE,
            "enabled": topup.enabled,
            "card_id": topup.card_id,
            "currency": topup.currency,
            "threshold_minor": topup.threshold_minor,
            "amount_minor": topup.amount_minor,
            "max_per_day": topup.max_per_day,
            "state": topup.state,
            "failures": topup.failures,
            "in_flight": topup.in_flight,
            "day": topup.day,
            "day_count": topup.day_count,
            "last_payment": topup.last_payment,
            "mandate_id": topup.mandate_id,
            "mandate_at": topup.mandate_at,
            "reason": topup.reason,
            "changed_by": topup.changed_by,
            "seen_version": topup.seen_version,
            "rev": topup.rev,
            "updated_at": topup.updated_at,
        }
    )


def _optional(attributes: Mapping[str, Any], name: str) -> str | None:
    found = attributes.get(name)
    return str(found) if found else None


def _topup_of(attributes: Mapping[str, Any]) -> AutoTopup:
    return AutoTopup(
        enabled=bool(attributes.get("enabled")),
        card_id=str(attributes.get("card_id") or ""),
        currency=str(attributes["currency"]),
        threshold_minor=int(attributes["threshold_minor"]),
        amount_minor=int(attributes["amount_minor"]),
        max_per_day=int(attributes.get("max_per_day") or 3),
        state=str(attributes.get("state") or "active"),
        failures=int(attributes.get("failures") or 0),
        in_flight=_optional(attributes, "in_flight"),
        day=str(attributes.get("day") or ""),
        day_count=int(attributes.get("day_count") or 0),
        last_payment=_optional(attributes, "last_payment"),
        mandate_id=_optional(attributes, "mandate_id"),
        mandate_at=str(attributes.get("mandate_at") or ""),
        reason=_optional(attributes, "reason"),
        changed_by=str(attributes.get("changed_by") or ""),
        seen_version=int(attributes.get("seen_version") or 0),
        rev=str(attributes.get("rev") or ""),
        updated_at=str(attributes.get("updated_at") or ""),
    )


def mandate_item(mandate: Mandate) -> Item:
    return item_of(
        {
            "PK": customer_pk(mandate.customer_id),
            "SK": mandate_sk(mandate.id),
            "type": MANDATE_TYPE,
            "id": mandate.id,
            "accepted_at": mandate.accepted_at,
            "sub": mandate.sub,
            "email": mandate.email,
            "card_id": mandate.card_id,
            "card_brand": mandate.card_brand,
            "card_last4": mandate.card_last4,
            "currency": mandate.currency,
            "threshold_minor": mandate.threshold_minor,
            "amount_minor": mandate.amount_minor,
            "max_per_day": mandate.max_per_day,
        }
    )


def _mandate_of(customer_id: str, attributes: Mapping[str, Any]) -> Mandate:
    return Mandate(
        id=str(attributes["id"]),
        customer_id=customer_id,
        accepted_at=str(attributes["accepted_at"]),
        sub=str(attributes["sub"]),
        email=_optional(attributes, "email"),
        card_id=str(attributes["card_id"]),
        card_brand=_optional(attributes, "card_brand"),
        card_last4=_optional(attributes, "card_last4"),
        currency=str(attributes["currency"]),
        threshold_minor=int(attributes["threshold_minor"]),
        amount_minor=int(attributes["amount_minor"]),
        max_per_day=int(attributes["max_per_day"]),
    )


def auto_topup(store: Table, customer_id: str) -> AutoTopup | None:
    """The customer's auto top-up (a consistent read); None if never set."""
    found = store.client.get_item(
        TableName=store.table, Key=key(customer_pk(customer_id), AUTOTOPUP_SK), ConsistentRead=True
    )
    item = found.get("Item")
    return _topup_of(plain(item)) if item else None


def mandate(store: Table, customer_id: str, mandate_id: str) -> Mandate | None:
    found = store.client.get_item(
        TableName=store.table, Key=key(customer_pk(customer_id), mandate_sk(mandate_id)), ConsistentRead=True
    )
    item = found.get("Item")
    return _mandate_of(customer_id, plain(item)) if item else None


def write_auto_topup(
    store: Table,
    customer_id: str,
    topup: AutoTopup,
    *,
    seen_rev: str | None,
    mandate: Mandate | None = None,
    payment: Payment | None = None,
    event: OutboxEvent | None = None,
) -> tuple[Written, AutoTopup | None]:
    """Replace the auto top-up with `topup` (a new `rev`, its `updated_at`) only if it is still at `seen_rev` (None:
    only if there is none), with `mandate`, `payment` (a new pending payment) and `event` (an outbox item), each
    new: one transaction. (WRITTEN, the auto top-up as stored); (DUPLICATE, None) if the payment or the event
    exists (acted on before); (LOST, None) if the auto top-up changed since it was read."""
    saved = topup._replace(rev=uuid.uuid4().hex, updated_at=iso_z(utcnow()))
    put: Item = {"TableName": store.table, "Item": auto_topup_item(customer_id, saved)}
    if seen_rev is None:
        put["ConditionExpression"] = "attribute_not_exists(PK)"
    else:
        put["ConditionExpression"] = "rev = :rev"
        put["ExpressionAttributeValues"] = values({":rev": seen_rev})
    parts: list[Item] = [{"Put": put}]
    if mandate is not None:
        parts.append(store.put_new(mandate_item(mandate)))
    if payment is not None:
        parts.append(store.put_new(to_item(payment)))
    if event is not None:
        parts.append(store.put_new(outbox_item(event, int(time.time()) + OUTBOX_TTL_SECONDS)))
    try:
        store.transact(parts)
    except store.client.exceptions.TransactionCanceledException as exc:
        reasons = cancellation_codes(exc)
        if any(code == "ConditionalCheckFailed" for code in reasons[1:]):
            return Written.DUPLICATE, None
        if reasons and reasons[0] == "ConditionalCheckFailed":
            return Written.LOST, None
        raise
    return Written.WRITTEN, saved
