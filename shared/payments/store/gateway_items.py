"""The gateway object of a payment: claimed before it is created, recorded once (docs/make-payment.md).
`PaymentStore` imports this module at the first claim, which the read functions never make."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from payments.models import Payment, PaymentStatus
from payments.store.codec import Item, action_text, search_text, values
from payments.store.table import Table, cancellation_codes
from payments.store.writes import gateway_ref_pointer, payment_key


def claim_gateway_object(
    store: Table, payment: Payment, *, provider: str, hold_seconds: float, ref: Callable[[int], str | None]
) -> Payment | None:
    """Claim the creation of `payment`'s gateway object for `hold_seconds` (the caller's remaining run time).

    One conditional write: the payment is pending, has no gateway object yet, nobody holds a live claim,
    and its attempt counter is what we read. `ref(attempt)` is the gateway reference this attempt will
    create where we choose it (Paystack); it is stored, with its pointer, before the gateway is called, so
    money paid into it is credited even if we die before recording the answer. Returns the payment as
    claimed, or None if the condition failed (the caller reads again and decides).
    """
    attempt = payment.gateway_attempts + 1
    now = time.time()
    chosen = ref(attempt)
    names = {"#status": "status"}
    until = store.claim_until(hold_seconds)
    named: dict[str, object] = {
        ":pending": PaymentStatus.PENDING.value,
        ":now": int(now * 1000),
        ":until": until,
        ":attempt": attempt,
    }
    condition = (
        "#status = :pending AND attribute_not_exists(gateway_ref) "
        "AND (attribute_not_exists(gw_claim_until) OR gw_claim_until < :now) AND "
    )
    if payment.gateway_attempts:
        condition += "gw_attempts = :seen"
        named[":seen"] = payment.gateway_attempts
    else:
        condition += "attribute_not_exists(gw_attempts)"
    update = "SET gw_attempts = :attempt, gw_claim_until = :until"
    if chosen:
        update += " ADD gateway_refs :refs"
        named[":refs"] = {chosen}
    claim: Item = {
        "TableName": store.table,
        "Key": payment_key(payment),
        "UpdateExpression": update,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values(named),
    }
    try:
        if chosen:
            store.transact([{"Update": claim}, gateway_ref_pointer(store, payment, provider, chosen)])
        else:
            store.client.update_item(**claim)
    except store.client.exceptions.ConditionalCheckFailedException:
        return None
    except store.client.exceptions.TransactionCanceledException as exc:
        if "ConditionalCheckFailed" not in cancellation_codes(exc):
            raise
        return None
    refs = payment.gateway_refs | {chosen} if chosen else payment.gateway_refs
    return payment.model_copy(update={"gateway_attempts": attempt, "gateway_refs": refs, "gateway_claim_until": until})


def record_gateway_object(
    store: Table,
    payment: Payment,
    *,
    provider: str,
    gateway_ref: str,
    next_action: Mapping[str, Any] | None,
    card_brand: str | None,
    card_last4: str | None,
    description: str | None = None,
) -> Payment | None:
    """Store the gateway object `payment`'s claim created, and a pointer from it back to the payment
    (and `description`, when ours can now name the object).

    Conditioned on the payment having no gateway object yet and on our claim (its attempt) still being the
    latest: a reference once written is never replaced, and a pointer never moves to another payment.
    Returns the payment as stored, or None if the condition failed (someone else recorded one).
    """
    named: dict[str, object] = {":ref": gateway_ref, ":refs": {gateway_ref}, ":attempt": payment.gateway_attempts}
    after = payment.model_copy(
        update={"gateway_ref": gateway_ref, "card_last4": card_last4 or payment.card_last4}
        | ({"description": description} if description else {})
    )
    sets = ["gateway_ref = :ref", "search_text = :search"]
    named[":search"] = search_text(after)
    known = {
        "card_brand": card_brand,
        "card_last4": card_last4,
        "next_action": action_text(next_action),
        "description": description,
    }
    for name, value in known.items():
        if value:
            sets.append(f"{name} = :{name}")
            named[f":{name}"] = value
    update: Item = {
        "Update": {
            "TableName": store.table,
            "Key": payment_key(payment),
            "UpdateExpression": "SET " + ", ".join(sets) + " ADD gateway_refs :refs REMOVE gw_claim_until, last_error",
            "ConditionExpression": "attribute_not_exists(gateway_ref) AND gw_attempts = :attempt",
            "ExpressionAttributeValues": values(named),
        }
    }
    try:
        store.transact([update, gateway_ref_pointer(store, payment, provider, gateway_ref)])
    except store.client.exceptions.TransactionCanceledException as exc:
        if "ConditionalCheckFailed" not in cancellation_codes(exc):
            raise
        return None
    recorded = {
        k: v for k, v in {"card_brand": card_brand, "card_last4": card_last4, "description": description}.items() if v
    }
    return payment.model_copy(
        update={
            "gateway_ref": gateway_ref,
            "gateway_refs": payment.gateway_refs | {gateway_ref},
            "next_action": dict(next_action) if next_action else None,
            "gateway_claim_until": None,
            **recorded,
        }
    )


def release_gateway_claim(store: Table, payment: Payment, problem: str) -> None:
    """Let the next retry create (or find) the gateway object at once, and keep what went wrong for operators.
    Only our own claim is released: a later attempt's is left alone."""
    with contextlib.suppress(store.client.exceptions.ConditionalCheckFailedException):
        store.client.update_item(
            TableName=store.table,
            Key=payment_key(payment),
            UpdateExpression="SET last_error = :e REMOVE gw_claim_until",
            ConditionExpression="gw_attempts = :attempt",
            ExpressionAttributeValues=values({":e": problem[:500], ":attempt": payment.gateway_attempts}),
        )
