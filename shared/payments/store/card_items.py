"""Saved cards (docs/saved-cards.md): the customer's Stripe Customer, their cards, and each card's SetupIntent
pointer. Imported by the account routes, the webhooks and Make Payment (a payment with a saved card) only.

Items, all but the pointer in the customer's partition:
- `CUST#<customer>` / `STRIPE_CUSTOMER`: the claim on creating the Stripe Customer (`email`, `claimed_at`, set
  once by `if_not_exists`), then `stripe_customer` (recorded once, conditioned), and `default_card`: the id of the
  default card (one attribute, so there is never more than one default).
- `CUST#<customer>` / `CARD#<card id>`: brand, last 4, expiry, the PaymentMethod and the SetupIntent; `state`
  pending | active | failed | removed. Never a card number, a CVC or any digest of them.
- `GWREF#stripe#<seti>` / `GWREF`: the SetupIntent we created, naming the card (`card_id`): the only proof of which
  card a setup_intent.* webhook is about.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from payments.models import iso_z, utcnow
from payments.store.codec import Item, item_of, plain, values
from payments.store.keys import (
    CARD_SK_PREFIX,
    GATEWAY_REF_SK,
    STRIPE_CUSTOMER_SK,
    card_sk,
    customer_pk,
    gateway_ref_pk,
)
from payments.store.records import SavedCard
from payments.store.table import cancellation_codes, key

if TYPE_CHECKING:
    from payments.store.table import Table

CARD_TYPE = "saved-card"
CUSTOMER_TYPE = "stripe-customer"
SETUP_POINTER_TYPE = "setup-pointer"
CARD_ID_MAX = 64


def _customer_item(store: Table, customer_id: str) -> dict[str, Any]:
    found = store.client.get_item(
        TableName=store.table, Key=key(customer_pk(customer_id), STRIPE_CUSTOMER_SK), ConsistentRead=True
    )
    return plain(found.get("Item") or {})


def stripe_customer(store: Table, customer_id: str) -> str | None:
    """The customer's Stripe Customer (cus_...), once recorded; None before."""
    value = _customer_item(store, customer_id).get("stripe_customer")
    return str(value) if value else None


def claim_stripe_customer(store: Table, customer_id: str, email: str | None) -> tuple[str | None, str | None]:
    """Claim creating the customer's Stripe Customer: one UpdateItem whose `if_not_exists` keeps the first claim's
    e-mail and time, so every racing caller then asks Stripe with the same parameters (and the same idempotency
    key). (the Stripe Customer if recorded already, the e-mail to create it with)."""
    answer = store.client.update_item(
        TableName=store.table,
        Key=key(customer_pk(customer_id), STRIPE_CUSTOMER_SK),
        UpdateExpression="SET #type = :type, claimed_at = if_not_exists(claimed_at, :now), "
        "email = if_not_exists(email, :email)",
        ExpressionAttributeNames={"#type": "type"},
        ExpressionAttributeValues=values({":type": CUSTOMER_TYPE, ":now": iso_z(utcnow()), ":email": email or ""}),
        ReturnValues="ALL_NEW",
    )
    item = plain(answer.get("Attributes") or {})
    recorded = item.get("stripe_customer")
    return (str(recorded) if recorded else None), (str(item.get("email") or "") or None)


def record_stripe_customer(store: Table, customer_id: str, stripe_customer_id: str) -> str:
    """Record the Stripe Customer, only if none (or this one) is recorded; the one recorded, either way."""
    try:
        store.client.update_item(
            TableName=store.table,
            Key=key(customer_pk(customer_id), STRIPE_CUSTOMER_SK),
            UpdateExpression="SET stripe_customer = :cus, created_at = if_not_exists(created_at, :now)",
            ConditionExpression="attribute_not_exists(stripe_customer) OR stripe_customer = :cus",
            ExpressionAttributeValues=values({":cus": stripe_customer_id, ":now": iso_z(utcnow())}),
        )
    except store.client.exceptions.ConditionalCheckFailedException:
        recorded = stripe_customer(store, customer_id)
        assert recorded is not None
        return recorded
    return stripe_customer_id


def _card_of(attributes: Mapping[str, Any], default_card: str | None) -> SavedCard:
    def number(name: str) -> int | None:
        held = attributes.get(name)
        return int(held) if held is not None else None

    return SavedCard(
        id=str(attributes["id"]),
        customer_id=str(attributes["customer_id"]),
        payment_method=str(attributes["payment_method"]) if attributes.get("payment_method") else None,
        setup_intent=str(attributes.get("setup_intent") or ""),
        state=str(attributes["state"]),
        brand=str(attributes["brand"]) if attributes.get("brand") else None,
        last4=str(attributes["last4"]) if attributes.get("last4") else None,
        exp_month=number("exp_month"),
        exp_year=number("exp_year"),
        default=default_card is not None and default_card == attributes["id"],
        created_at=str(attributes.get("created_at") or ""),
    )


def _default_card(store: Table, customer_id: str) -> str | None:
    value = _customer_item(store, customer_id).get("default_card")
    return str(value) if value else None


def saved_card(store: Table, customer_id: str, card_id: str) -> SavedCard | None:
    """One of the customer's cards, whatever its state (two consistent GetItems: the card, the default); another
    customer's id is simply not found."""
    if not card_id or len(card_id) > CARD_ID_MAX:
        return None
    found = store.client.get_item(
        TableName=store.table, Key=key(customer_pk(customer_id), card_sk(card_id)), ConsistentRead=True
    ).get("Item")
    if not found:
        return None
    return _card_of(plain(found), _default_card(store, customer_id))


def saved_cards(store: Table, customer_id: str) -> list[SavedCard]:
    """The customer's cards that are not removed (pending, active, failed), newest first: one Query of the
    partition's `CARD#` items and the default's GetItem."""
    items: list[Item] = []
    request: dict[str, Any] = {
        "TableName": store.table,
        "KeyConditionExpression": "PK = :pk AND begins_with(SK, :card)",
        "ExpressionAttributeValues": values({":pk": customer_pk(customer_id), ":card": CARD_SK_PREFIX}),
        "ConsistentRead": True,
    }
    while True:
        page = store.client.query(**request)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    default_card = _default_card(store, customer_id)
    cards = [_card_of(plain(item), default_card) for item in items]
    return sorted((c for c in cards if c.state != "removed"), key=lambda c: (c.created_at, c.id), reverse=True)


def card_by_setup(store: Table, provider: str, setup_intent: str) -> SavedCard | None:
    """The card whose SetupIntent this is, through the pointer we stored when we created it."""
    found = store.client.get_item(
        TableName=store.table, Key=key(gateway_ref_pk(provider, setup_intent), GATEWAY_REF_SK), ConsistentRead=True
    ).get("Item")
    if not found or "card_id" not in found:
        return None
    pointer = plain(found)
    return saved_card(store, str(pointer["customer_id"]), str(pointer["card_id"]))


def _card_item(card: SavedCard, now: str) -> Item:
    return item_of(
        {
            "PK": customer_pk(card.customer_id),
            "SK": card_sk(card.id),
            "type": CARD_TYPE,
            "id": card.id,
            "customer_id": card.customer_id,
            "payment_method": card.payment_method,
            "setup_intent": card.setup_intent or None,
            "state": card.state,
            "brand": card.brand,
            "last4": card.last4,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "created_at": card.created_at,
            "updated_at": now,
        }
    )


def _default_if_none(store: Table, customer_id: str, card_id: str) -> Item:
    """A transaction part: `card_id` becomes the default card if the customer has none."""
    return {
        "Update": {
            "TableName": store.table,
            "Key": key(customer_pk(customer_id), STRIPE_CUSTOMER_SK),
            "UpdateExpression": "SET default_card = if_not_exists(default_card, :card)",
            "ExpressionAttributeValues": values({":card": card_id}),
        }
    }


def put_saved_card(store: Table, card: SavedCard, provider: str) -> tuple[SavedCard, bool]:
    """Put a new card with its SetupIntent pointer (and, active, as the default if there is none), in one
    transaction. (the card as stored, True) or, when the card or the pointer exists (a retry of the same request:
    Stripe answered it the same SetupIntent), (the card already stored, False)."""
    now = iso_z(utcnow())
    parts: list[Item] = [store.put_new(_card_item(card, now))]
    if card.setup_intent:
        pointer = item_of(
            {
                "PK": gateway_ref_pk(provider, card.setup_intent),
                "SK": GATEWAY_REF_SK,
                "type": SETUP_POINTER_TYPE,
                "customer_id": card.customer_id,
                "card_id": card.id,
            }
        )
        parts.append(store.put_new(pointer))
    if card.state == "active":
        parts.append(_default_if_none(store, card.customer_id, card.id))
    try:
        store.transact(parts)
    except store.client.exceptions.TransactionCanceledException as exc:
        if "ConditionalCheckFailed" not in cancellation_codes(exc):
            raise
        existing = saved_card(store, card.customer_id, card.id)
        if existing is None and card.setup_intent:
            existing = card_by_setup(store, provider, card.setup_intent)
        if existing is None or existing.customer_id != card.customer_id:
            raise
        return existing, False
    stored = saved_card(store, card.customer_id, card.id)
    assert stored is not None
    return stored, True


def settle_saved_card(
    store: Table,
    customer_id: str,
    card_id: str,
    state: str,
    *,
    payment_method: str | None = None,
    details: Mapping[str, object] | None = None,
) -> bool:
    """A pending card's SetupIntent ended: the card becomes `state` (active: the default if there is none). Only
    while it is pending; False if it is not (settled before, removed)."""
    names = {"#state": "state"}
    sets = ["#state = :state", "updated_at = :now"]
    given: dict[str, object] = {":state": state, ":now": iso_z(utcnow()), ":pending": "pending"}
    if payment_method:
        sets.append("payment_method = :pm")
        given[":pm"] = payment_method
    for name, held in (details or {}).items():
        if held is not None and name in ("brand", "last4", "exp_month", "exp_year"):
            sets.append(f"{name} = :{name}")
            given[f":{name}"] = held
    parts: list[Item] = [
        {
            "Update": {
                "TableName": store.table,
                "Key": key(customer_pk(customer_id), card_sk(card_id)),
                "UpdateExpression": "SET " + ", ".join(sets),
                "ConditionExpression": "#state = :pending",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values(given),
            }
        }
    ]
    if state == "active":
        parts.append(_default_if_none(store, customer_id, card_id))
    return _transact_if(store, parts)


def set_default_card(store: Table, customer_id: str, card_id: str) -> bool:
    """Make an active card the default: the customer item's `default_card`, with a check that the card is active.
    False if it is not."""
    parts: list[Item] = [
        {
            "ConditionCheck": {
                "TableName": store.table,
                "Key": key(customer_pk(customer_id), card_sk(card_id)),
                "ConditionExpression": "#state = :active",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": values({":active": "active"}),
            }
        },
        {
            "Update": {
                "TableName": store.table,
                "Key": key(customer_pk(customer_id), STRIPE_CUSTOMER_SK),
                "UpdateExpression": "SET default_card = :card",
                "ExpressionAttributeValues": values({":card": card_id}),
            }
        },
    ]
    return _transact_if(store, parts)


def remove_saved_card(
    store: Table, customer_id: str, card_id: str, *, was_default: bool, new_default: str | None
) -> bool:
    """Remove a card: `state` removed and `autotopup_off` set (what the auto top-up reads: a removed card is never
    charged again), and where it was the default, `new_default` (or none) in its place, conditioned on it still
    being the default (else, on it still not being it). One transaction; False if the card was removed before or the
    default changed meanwhile."""
    now = iso_z(utcnow())
    parts: list[Item] = [
        {
            "Update": {
                "TableName": store.table,
                "Key": key(customer_pk(customer_id), card_sk(card_id)),
                "UpdateExpression": "SET #state = :removed, removed_at = :now, updated_at = :now, autotopup_off = :yes",
                "ConditionExpression": "attribute_exists(PK) AND #state <> :removed",
                "ExpressionAttributeNames": {"#state": "state"},
                "ExpressionAttributeValues": values({":removed": "removed", ":now": now, ":yes": True}),
            }
        }
    ]
    if was_default:
        update: dict[str, Any] = {
            "TableName": store.table,
            "Key": key(customer_pk(customer_id), STRIPE_CUSTOMER_SK),
            "ConditionExpression": "default_card = :old",
        }
        if new_default:
            update["UpdateExpression"] = "SET default_card = :new"
            update["ExpressionAttributeValues"] = values({":old": card_id, ":new": new_default})
        else:
            update["UpdateExpression"] = "REMOVE default_card"
            update["ExpressionAttributeValues"] = values({":old": card_id})
        parts.append({"Update": update})
    else:  # judged not the default: it must not have become it meanwhile
        parts.append(
            {
                "ConditionCheck": {
                    "TableName": store.table,
                    "Key": key(customer_pk(customer_id), STRIPE_CUSTOMER_SK),
                    "ConditionExpression": "attribute_not_exists(default_card) OR default_card <> :card",
                    "ExpressionAttributeValues": values({":card": card_id}),
                }
            }
        )
    return _transact_if(store, parts)


def mark_card_detached(store: Table, customer_id: str, card_id: str) -> None:
    """Stripe detached the removed card's PaymentMethod: a DELETE again finds nothing left to do."""
    store.client.update_item(
        TableName=store.table,
        Key=key(customer_pk(customer_id), card_sk(card_id)),
        UpdateExpression="SET detached = :yes",
        ConditionExpression="attribute_exists(PK)",
        ExpressionAttributeValues=values({":yes": True}),
    )


def card_detached(store: Table, customer_id: str, card_id: str) -> bool:
    found = store.client.get_item(
        TableName=store.table, Key=key(customer_pk(customer_id), card_sk(card_id)), ConsistentRead=True
    ).get("Item")
    return bool(found and plain(found).get("detached"))


def _transact_if(store: Table, parts: list[Item]) -> bool:
    """Write `parts` as one transaction; False (nothing written) if one of their conditions failed."""
    try:
        store.transact(parts)
    except store.client.exceptions.TransactionCanceledException as exc:
        if "ConditionalCheckFailed" in cancellation_codes(exc):
            return False
        raise
    return True
