"""Writing the table: new payments (pending ones with their pointers, completed ones with their balance),
refunds, status changes, event markers; and the transaction parts the other writers share. Imported at the
first write, so the read functions never load it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from payments import outbox
from payments.models import Payment, PaymentMethod, PaymentStatus, iso_z, utcnow
from payments.money import Money
from payments.status import Change
from payments.store.base import Written
from payments.store.codec import Item, history_value, item_of, to_item, value, values
from payments.store.keys import (
    BALANCE_SK,
    EVENT_SK,
    GATEWAY_REF_SK,
    REFERENCE_SK,
    customer_pk,
    event_pk,
    gateway_ref_pk,
    idempotency_sk,
    payment_sk,
    reference_pk,
)
from payments.store.outbox_items import outbox_put
from payments.store.reads import Reads
from payments.store.records import BalanceCeiling, Dedupe, DisputeWritten, RefundWritten
from payments.store.table import Table, cancellation_codes, key

EVENT_TTL_SECONDS = 90 * 24 * 3600  # longer than any gateway retries (PayPal: 3 days)


# ---- the small items (one builder per item type: items.ITEM_TYPES) --------------------------------


def idempotency_pointer(customer_id: str, request_key: str, payment_id: str) -> Item:
    return item_of(
        {
            "PK": customer_pk(customer_id),
            "SK": idempotency_sk(request_key),
            "type": "idempotency-pointer",
            "payment_id": payment_id,
        }
    )


def gateway_pointer(provider: str, gateway_ref: str, customer_id: str, payment_id: str) -> Item:
    return item_of(
        {
            "PK": gateway_ref_pk(provider, gateway_ref),
            "SK": GATEWAY_REF_SK,
            "type": "gateway-ref",
            "customer_id": customer_id,
            "payment_id": payment_id,
        }
    )


def bank_reference(reference: str, payment_id: str) -> Item:
    return item_of({"PK": reference_pk(reference), "SK": REFERENCE_SK, "payment_id": payment_id})


def event_item(marker: Dedupe, payment_id: str | None, recorded_at: str, expires_at: int, **more: str) -> Item:
    return item_of(
        {
            "PK": event_pk(marker.source, marker.key),
            "SK": EVENT_SK,
            "type": "event",
            "recorded_at": recorded_at,
            "expires_at": expires_at,
            "payment_id": payment_id or None,
            **more,
        }
    )


def add(store: Table, payment: Payment, *, dedupe: Dedupe | None = None) -> bool:
    """Record a new payment; a completed one moves the balance in the same transaction.

    Returns False (and writes nothing) if `dedupe` was already recorded.
    """
    try:
        new_payment(store, payment, dedupe=dedupe)
    except store.client.exceptions.TransactionCanceledException as exc:
        reasons = cancellation_codes(exc)
        if dedupe and reasons and reasons[-1] == "ConditionalCheckFailed":
            return False
        raise
    return True


def new_payment(
    store: Table,
    payment: Payment,
    *,
    dedupe: Dedupe | None = None,
    extra: Sequence[Item] = (),
    balance_at_most: int | None = None,
) -> None:
    """The transaction of a new payment: its Put, `extra` (parts that must succeed with it), the balance if
    it is completed, its outbound event if it is settled (the outbox: docs/events.md), and `dedupe` last (so a
    cancellation's last reason tells a duplicate). `balance_at_most`: the balance may not end above it (the
    balance part's condition; raises BalanceCeiling when that is what cancelled the transaction)."""
    parts: list[Item] = [store.put_new(to_item(payment)), *extra]
    if payment.status is PaymentStatus.COMPLETED:
        balance = balance_update(store, payment.customer_id, payment.money, payment.id)
        if balance_at_most is not None:
            room = balance_at_most - payment.money.minor  # a missing balance is 0: it fits only if room >= 0
            fits = "attribute_not_exists(#cur) OR #cur <= :room" if room >= 0 else "#cur <= :room"
            balance["Update"]["ConditionExpression"] = fits
            balance["Update"]["ExpressionAttributeValues"][":room"] = value(room)
        parts.append(balance)
    event = outbox.of_new(payment)
    if event is not None:
        parts.append(outbox_put(store, event))
    if dedupe:
        parts.append(store.put_new(marker_item(dedupe, payment.id)))
    if balance_at_most is None:
        store.transact(parts)
        return
    try:
        store.transact(parts)
    except store.client.exceptions.TransactionCanceledException as exc:
        place = 1 + len(extra)  # the balance part
        codes = cancellation_codes(exc)
        if len(codes) > place and codes[place] == "ConditionalCheckFailed":
            raise BalanceCeiling(payment.customer_id) from None
        raise


def put_pending(
    store: Reads,
    payment: Payment,
    request_key: str,
    *,
    reference: str | None = None,
    gateway_ref: tuple[str, str] | None = None,
) -> tuple[Payment, bool]:
    """Put a new pending payment with the idempotency pointer of the request that makes it, in one transaction;
    or find the payment an earlier request with the same `request_key` put. True if put.

    `reference`: its bank reference, unique (`REF#`). `gateway_ref` (provider, reference): the pointer of the
    gateway object its first attempt will create, where we choose the reference (Paystack).
    """
    parts = [store.put_new(idempotency_pointer(payment.customer_id, request_key, payment.id))]
    if gateway_ref:
        parts.append(gateway_ref_pointer(store, payment, *gateway_ref))
    if reference:
        parts.append(store.put_new(bank_reference(reference, payment.id)))
    try:
        new_payment(store, payment, extra=parts)
    except store.client.exceptions.TransactionCanceledException:
        earlier = store.find_by_request(payment.customer_id, request_key)
        if earlier is None:
            raise  # a reference collision (1 in 2^60): the client's retry draws a new one
        return earlier, False
    return payment, True


def record_refund(store: Table, refund: Payment, original: Payment, dedupe: Dedupe) -> RefundWritten:
    """Record `refund` (a completed negative payment of `original`'s customer) and count it against `original`,
    once: only a completed payment can be refunded, and never by more than it was for."""
    limit = abs(original.amount_minor) + refund.amount_minor
    # `status.refundable`: completed only, checked again here, atomically.
    claim = {
        "Update": {
            "TableName": store.table,
            "Key": payment_key(original),
            "UpdateExpression": "ADD refunded_minor :x, refund_ids :id",
            "ConditionExpression": "#status = :completed AND "
            "(attribute_not_exists(refunded_minor) OR refunded_minor <= :limit)",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": values(
                {
                    ":x": -refund.amount_minor,
                    ":id": {refund.id},
                    ":limit": limit,
                    ":completed": PaymentStatus.COMPLETED.value,
                }
            ),
        }
    }
    try:
        new_payment(store, refund, dedupe=dedupe, extra=[claim])
    except store.client.exceptions.TransactionCanceledException as exc:
        reasons = cancellation_codes(exc)
        if reasons and reasons[-1] == "ConditionalCheckFailed":
            return RefundWritten.DUPLICATE
        return RefundWritten.REFUSED
    return RefundWritten.RECORDED


OFFSET = "offset"  # a dispute marker's direction recorded with no money moved (its opposite came first)


def record_dispute_funds(store: Table, entry: Payment, original: Payment, marker: Dedupe) -> DisputeWritten:
    """Funds a gateway withdrew for a dispute of `original` (a CHARGEBACK entry, negative) or reinstated (a
    CHARGEBACK_REVERSAL entry, positive), once per dispute and direction, in one transaction: the entry (and its
    balance delta), its count on `original` (withdrawn: within what is still not taken back; reinstated: within
    what chargebacks took), and the direction on the dispute's marker. Reinstated before withdrawn (or withdrawn
    after an early reinstatement) records the direction with no money moved: the two cancel out."""
    withdrawn = entry.method is PaymentMethod.CHARGEBACK
    this, other = ("withdrawn", "reinstated") if withdrawn else ("reinstated", "withdrawn")
    x = abs(entry.amount_minor)
    if withdrawn:
        claim = {
            "UpdateExpression": "ADD refunded_minor :x, charged_back_minor :x, refund_ids :id",
            "ConditionExpression": "#status = :completed AND "
            "(attribute_not_exists(refunded_minor) OR refunded_minor <= :limit)",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": values(
                {
                    ":x": x,
                    ":id": {entry.id},
                    ":limit": abs(original.amount_minor) - x,
                    ":completed": PaymentStatus.COMPLETED.value,
                }
            ),
        }
        moved = "attribute_not_exists(#this) AND attribute_not_exists(#other)"
    else:
        claim = {
            "UpdateExpression": "ADD refunded_minor :minus, charged_back_minor :minus, refund_ids :id",
            "ConditionExpression": "charged_back_minor >= :x",
            "ExpressionAttributeValues": values({":minus": -x, ":x": x, ":id": {entry.id}}),
        }
        moved = "attribute_not_exists(#this) AND attribute_exists(#other) AND #other <> :offset"
    parts: list[Item] = [
        {"Update": {"TableName": store.table, "Key": payment_key(original), **claim}},
        _dispute_marker_update(store, marker, original, this, other, entry.id, moved),
    ]
    try:
        new_payment(store, entry, extra=parts)  # [entry, claim, marker, balance, outbox event]
    except store.client.exceptions.TransactionCanceledException as exc:
        reasons = cancellation_codes(exc)
        if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed":
            return _dispute_offset(store, marker, original, this, other)
        if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
            return DisputeWritten.REFUSED
        raise
    return DisputeWritten.RECORDED


def _dispute_marker_update(
    store: Table, marker: Dedupe, original: Payment, this: str, other: str, value: str, condition: str
) -> Item:
    named: dict[str, Any] = {":v": value, ":pid": original.id, ":event": "event", ":at": iso_z(utcnow())}
    named[":exp"] = int(time.time()) + EVENT_TTL_SECONDS
    if ":offset" in condition:
        named[":offset"] = OFFSET
    return {
        "Update": {
            "TableName": store.table,
            "Key": key(event_pk(marker.source, marker.key), EVENT_SK),
            "UpdateExpression": "SET #this = :v, #type = :event, payment_id = :pid, recorded_at = if_not_exists("
            "recorded_at, :at), expires_at = :exp",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#this": this, "#other": other, "#type": "type"},
            "ExpressionAttributeValues": values(named),
        }
    }


def _dispute_offset(store: Table, marker: Dedupe, original: Payment, this: str, other: str) -> DisputeWritten:
    """The marker refused the direction: it moved before (a duplicate), or its opposite came first, or has not
    come (a reinstatement first): record this direction with nothing moved, once."""
    if this in _marker(store, marker):
        return DisputeWritten.DUPLICATE
    # Withdrawn after its reinstatement, or reinstated before any withdrawal: they cancel out.
    condition = "attribute_not_exists(#this) AND " + (
        "attribute_exists(#other)" if this == "withdrawn" else "attribute_not_exists(#other)"
    )
    try:
        store.client.update_item(
            **_dispute_marker_update(store, marker, original, this, other, OFFSET, condition)["Update"]
        )
    except store.client.exceptions.ConditionalCheckFailedException:
        return DisputeWritten.DUPLICATE if this in _marker(store, marker) else DisputeWritten.REFUSED
    return DisputeWritten.OFFSET


def dispute_funds(store: Table, marker: Dedupe) -> tuple[str | None, str | None]:
    """(withdrawn, reinstated) of a dispute's marker: the entry ids, OFFSET, or None where nothing moved yet."""
    item = _marker(store, marker)
    return (item["withdrawn"]["S"] if "withdrawn" in item else None), (
        item["reinstated"]["S"] if "reinstated" in item else None
    )


def _marker(store: Table, marker: Dedupe) -> Item:
    answer: Item = store.client.get_item(
        TableName=store.table, Key=key(event_pk(marker.source, marker.key), EVENT_SK), ConsistentRead=True
    ).get("Item", {})
    return answer


def write_change(store: Table, change: Change, dedupe: Dedupe | None) -> Written:
    """One TransactWriteItems: the payment Update from `change.before` to `change.after` (conditioned on the
    status it was computed from), the balance ADD of its delta, the outbound event of a status change (the
    outbox), the dedupe Put. A dedupe marker alone is one PutItem (nothing changed: no event)."""
    parts: list[Item] = []
    if change.changed:
        parts.append(change_update(store, change))
        if change.balance_delta is not None:
            parts.append(balance_update(store, change.before.customer_id, change.balance_delta, change.before.id))
        if change.released_minor and change.before.refund_of:
            parts.append(release_refund(store, change))
        event = outbox.of_change(change)
        if event is not None:
            parts.append(outbox_put(store, event))
    if dedupe:
        parts.append(store.put_new(marker_item(dedupe, change.before.id)))
    try:
        if len(parts) == 1 and "Put" in parts[0]:
            store.client.put_item(**parts[0]["Put"])
        else:
            store.transact(parts)
    except store.client.exceptions.ConditionalCheckFailedException:
        return Written.DUPLICATE
    except store.client.exceptions.TransactionCanceledException as exc:
        reasons = cancellation_codes(exc)
        if dedupe and reasons and reasons[-1] == "ConditionalCheckFailed":
            return Written.DUPLICATE
        if reasons and reasons[0] == "ConditionalCheckFailed":
            return Written.LOST
        raise
    return Written.WRITTEN


def change_update(store: Table, change: Change) -> Item:
    """The Update that makes the stored `change.before` into `change.after`, conditioned on its status.

    It sets what differs between their items, appends the new history entries, and removes what `after`
    no longer has. The attributes other writers change without changing the status (the pending index, the
    claim) are removed whenever `after` has none: the `before` read may predate them.
    """
    before, after = to_item(change.before), to_item(change.after)
    sets: list[str] = []
    names = {"#status": "status"}
    named: dict[str, Any] = {":seen": before["status"], ":seen_amount": before["amount_minor"]}
    old_history = len(change.before.history)
    for attribute, attribute_value in after.items():
        if attribute in ("PK", "SK") or before.get(attribute) == attribute_value:
            continue
        names[f"#{attribute}"] = attribute
        if attribute == "history" and change.after.history[:old_history] == change.before.history:
            sets.append("#history = list_append(#history, :history)")
            named[":history"] = history_value(change.after.history[old_history:])
        else:
            sets.append(f"#{attribute} = :{attribute}")
            named[f":{attribute}"] = attribute_value
    removed = [a for a in (*before, *_CHANGED_BY_OTHERS) if a not in after and a not in ("PK", "SK")]
    removed = list(dict.fromkeys(removed))
    names |= {f"#{attribute}": attribute for attribute in removed}
    expression = ("SET " + ", ".join(sets) if sets else "") + (
        " REMOVE " + ", ".join(f"#{attribute}" for attribute in removed) if removed else ""
    )
    return {
        "Update": {
            "TableName": store.table,
            "Key": payment_key(change.before),
            "UpdateExpression": expression.strip(),
            # The amount too: a partial payment's top-up changes it, never its status (status.credit_arrived).
            "ConditionExpression": "#status = :seen AND amount_minor = :seen_amount",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": named,
        }
    }


def record_event(store: Table, marker: Dedupe, payment_id: str | None = None, *, event_type: str = "") -> bool:
    """Record an event acted on no further (its type, outcome `recorded`); False if it was recorded before."""
    item = marker_item(marker, payment_id, event_type=event_type[:100], outcome="recorded")
    try:
        store.client.put_item(TableName=store.table, Item=item, ConditionExpression="attribute_not_exists(PK)")
    except store.client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def release_refund(store: Table, change: Change) -> Item:
    """A failed refund no longer counts against its original: `refunded_minor` goes down by it, never below 0."""
    return {
        "Update": {
            "TableName": store.table,
            "Key": key(customer_pk(change.before.customer_id), payment_sk(change.before.refund_of or "")),
            "UpdateExpression": "ADD refunded_minor :minus",
            "ConditionExpression": "refunded_minor >= :x",
            "ExpressionAttributeValues": values({":minus": -change.released_minor, ":x": change.released_minor}),
        }
    }


def payment_key(payment: Payment) -> Item:
    return key(customer_pk(payment.customer_id), payment_sk(payment.id))


def balance_update(store: Table, customer_id: str, money: Money, payment_id: str) -> Item:
    """The balance's ADD of a change's delta. It names the payment that moved it (`last_payment`, `last_currency`), so
    each stream record of the balance item ties a new balance to the one payment that made it (docs/events.md), and
    counts its changes (`version`, one more each time: docs/alerts.md tells a redelivered record by it)."""
    return {
        "Update": {
            "TableName": store.table,
            "Key": key(customer_pk(customer_id), BALANCE_SK),
            "UpdateExpression": "ADD #cur :delta, #version :one "
            "SET updated_at = :now, last_payment = :pid, last_currency = :c",
            "ExpressionAttributeNames": {"#cur": f"bal_{money.currency}", "#version": "version"},
            "ExpressionAttributeValues": values(
                {":delta": money.minor, ":one": 1, ":now": iso_z(utcnow()), ":pid": payment_id, ":c": money.currency}
            ),
        }
    }


def marker_item(marker: Dedupe, payment_id: str | None, **more: str) -> Item:
    return event_item(marker, payment_id, iso_z(utcnow()), int(time.time()) + EVENT_TTL_SECONDS, **more)


def gateway_ref_pointer(store: Table, payment: Payment, provider: str, gateway_ref: str) -> Item:
    """A transaction part: the pointer from a gateway reference of ours to its payment."""
    return {
        "Put": {
            "TableName": store.table,
            "Item": gateway_pointer(provider, gateway_ref, payment.customer_id, payment.id),
            # A gateway reference names one payment for ever.
            "ConditionExpression": "attribute_not_exists(PK) OR (customer_id = :cust AND payment_id = :pid)",
            "ExpressionAttributeValues": values({":cust": payment.customer_id, ":pid": payment.id}),
        }
    }


# Written by the claim on creating a payment's gateway object, under no condition on the status; and the pending
# index, which goes with the status.
_CHANGED_BY_OTHERS = ("GSI2PK", "GSI2SK", "gw_claim_until")
