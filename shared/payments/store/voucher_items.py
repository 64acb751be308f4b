"""Vouchers (found by the hash of their code) and each customer's count of redemption attempts: their items and
requests. `PaymentStore` imports this module when first asked about a voucher, as the read functions never are."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from payments.errors import RetryLater
from payments.models import Payment, iso_z, utcnow
from payments.money import Money
from payments.store.codec import Item, item_of, plain, values, whole
from payments.store.keys import VOUCHER_ATTEMPTS_SK, VOUCHER_SK, customer_pk, voucher_pk
from payments.store.records import Voucher
from payments.store.table import Table, key
from payments.store.writes import new_payment

ATTEMPT_TURNS = 5  # each turn counts, refuses, or loses a race to replace an expired window
BUSY_ATTEMPTS = "too many voucher attempts at once; retry in a moment"


def voucher_item(code_hash: str, money: Money, expires_epoch: int | None, issued_at: str, issued_by: str) -> Item:
    return item_of(
        {
            "PK": voucher_pk(code_hash),
            "SK": VOUCHER_SK,
            "type": "voucher",
            "state": "unused",
            "amount_minor": money.minor,
            "currency": money.currency,
            "issued_at": issued_at,
            "issued_by": issued_by,
            "expires_epoch": expires_epoch,
        }
    )


def voucher_attempts(customer_id: str, count: int, window_end: int, expires_at: int) -> Item:
    return item_of(
        {
            "PK": customer_pk(customer_id),
            "SK": VOUCHER_ATTEMPTS_SK,
            "count": count,
            "window_end": window_end,
            "expires_at": expires_at,
        }
    )


def voucher_of(item: Mapping[str, Any]) -> Voucher:
    attributes = plain(item)
    expires = attributes.get("expires_epoch")
    return Voucher(
        state=attributes["state"],
        money=Money(whole(attributes["amount_minor"]), attributes["currency"]),
        expires_epoch=None if expires is None else whole(expires),
    )


def issue_voucher(store: Table, code_hash: str, money: Money, expires_at: datetime | None, by: str) -> bool:
    """Put a new unused voucher; False if one with this code hash exists (the caller draws another code)."""
    expires_epoch = int(expires_at.timestamp()) if expires_at else None
    item = voucher_item(code_hash, money, expires_epoch, iso_z(utcnow()), by)
    try:
        store.client.put_item(TableName=store.table, Item=item, ConditionExpression="attribute_not_exists(PK)")
    except store.client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def voucher(store: Table, code_hash: str) -> Voucher | None:
    """The voucher of this code hash (one consistent GetItem), None if there is none."""
    item = store.client.get_item(
        TableName=store.table, Key=key(voucher_pk(code_hash), VOUCHER_SK), ConsistentRead=True
    ).get("Item")
    return voucher_of(item) if item else None


def count_voucher_attempt(store: Table, customer_id: str, *, now: int, limit: int, window_seconds: int) -> int | None:
    """Count a redemption attempt of the customer in the current window, opening one if there is none or it
    is over; or refuse it, answering the epoch second the full window ends. None: counted.

    One UpdateItem in the usual case: it opens the first window, or counts in the current one. Conditional,
    so of 30 parallel attempts at most `limit` are counted in a window. An expired window costs a GetItem and
    a conditional PutItem more. Racing attempts that keep replacing each other: RetryLater.
    """
    attempts = key(customer_pk(customer_id), VOUCHER_ATTEMPTS_SK)
    end = now + window_seconds
    for _ in range(ATTEMPT_TURNS):
        try:
            store.client.update_item(
                TableName=store.table,
                Key=attempts,
                UpdateExpression="SET #count = if_not_exists(#count, :zero) + :one, "
                "window_end = if_not_exists(window_end, :end), expires_at = if_not_exists(expires_at, :ttl)",
                ConditionExpression="attribute_not_exists(window_end) OR (window_end > :now AND #count < :max)",
                ExpressionAttributeNames={"#count": "count"},
                ExpressionAttributeValues=values(
                    {":zero": 0, ":one": 1, ":end": end, ":ttl": end + 3600, ":now": now, ":max": limit}
                ),
            )
            return None
        except store.client.exceptions.ConditionalCheckFailedException:
            pass
        item = store.client.get_item(TableName=store.table, Key=attempts, ConsistentRead=True).get("Item")
        if item is None:
            continue  # the counter expired (TTL) meanwhile: open a window
        counter = plain(item)
        window_end = int(counter["window_end"])
        if window_end > now:
            if int(counter["count"]) >= limit:
                return window_end
            continue  # an attempt was given back meanwhile: count again
        try:  # the window is over: replace exactly that one with a new window holding this attempt
            store.client.put_item(
                TableName=store.table,
                Item=voucher_attempts(customer_id, 1, end, end + 3600),
                ConditionExpression="window_end = :seen",
                ExpressionAttributeValues={":seen": item["window_end"]},
            )
            return None
        except store.client.exceptions.ConditionalCheckFailedException:
            continue  # another attempt opened the new window first: count in it
    raise RetryLater(BUSY_ATTEMPTS, http_status=503)


def give_back_voucher_attempt(store: Table, customer_id: str) -> None:
    """One conditional UpdateItem: the count less one, never below zero (nothing to give back: no write)."""
    with contextlib.suppress(store.client.exceptions.ConditionalCheckFailedException):
        store.client.update_item(
            TableName=store.table,
            Key=key(customer_pk(customer_id), VOUCHER_ATTEMPTS_SK),
            UpdateExpression="ADD #count :less",
            ConditionExpression="#count > :zero",
            ExpressionAttributeNames={"#count": "count"},
            ExpressionAttributeValues=values({":less": -1, ":zero": 0}),
        )


def redeem_voucher(
    store: Table, code_hash: str, payment: Payment, *, now: int, balance_at_most: int | None = None
) -> bool:
    """Redeem the voucher for `payment` (completed, of its value, new) in one transaction: the voucher
    unused -> redeemed (still of the payment's currency and not expired at `now`), the payment put, the
    balance added (never above `balance_at_most`: else BalanceCeiling), and the customer's attempt given back.
    False if the voucher could not be redeemed."""
    claim: Item = {
        "Update": {
            "TableName": store.table,
            "Key": key(voucher_pk(code_hash), VOUCHER_SK),
            "UpdateExpression": "SET #state = :redeemed, redeemed_by = :customer, payment_id = :pid, redeemed_at = :at",
            "ConditionExpression": "#state = :unused AND currency = :cur AND "
            "(attribute_not_exists(expires_epoch) OR expires_epoch > :now)",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": values(
                {
                    ":redeemed": "redeemed",
                    ":unused": "unused",
                    ":customer": payment.customer_id,
                    ":pid": payment.id,
                    ":at": iso_z(payment.created_at),
                    ":cur": payment.currency,
                    ":now": now,
                }
            ),
        }
    }
    give_back: Item = {
        "Update": {
            "TableName": store.table,
            "Key": key(customer_pk(payment.customer_id), VOUCHER_ATTEMPTS_SK),
            "UpdateExpression": "ADD #count :less",
            "ExpressionAttributeNames": {"#count": "count"},
            "ExpressionAttributeValues": values({":less": -1}),
        }
    }
    try:
        new_payment(store, payment, extra=[claim, give_back], balance_at_most=balance_at_most)
    except store.client.exceptions.TransactionCanceledException:
        return False
    return True
