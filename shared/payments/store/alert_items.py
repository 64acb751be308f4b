"""The low-balance alert (docs/alerts.md): one item beside the customer's balance, and what the stream's balance
records do with it. Imported by the account routes and the stream's publisher only.

The alert's state changes only through conditioned writes: a crossing down (armed -> not armed, with the
`balance.low` outbox item, in one transaction), a rise above the reset threshold (not armed -> armed). Each is
conditioned on the save it was judged by (`rev`), on the state it was judged from (`armed`) and on the balance
record being newer than the last one the alert was set for (`seen_version`), so a redelivered record changes
nothing and a save made meanwhile is never overwritten.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from payments.models import iso_z, utcnow
from payments.outbox import OutboxEvent
from payments.store.codec import Item, item_of, plain, values
from payments.store.keys import BALANCE_SK, LOW_BALANCE_ALERT_SK, customer_of_pk, customer_pk, payment_sk
from payments.store.outbox_items import OUTBOX_TTL_SECONDS, outbox_item
from payments.store.records import BalanceRecord, LowBalanceAlert
from payments.store.table import cancellation_codes, key

if TYPE_CHECKING:
    from payments.store.table import Table

ALERT_TYPE = "low-balance-alert"


def low_balance_alert(store: Table, customer_id: str) -> LowBalanceAlert | None:
    """The customer's alert (a consistent read); None if none is set."""
    found = store.client.get_item(
        TableName=store.table, Key=key(customer_pk(customer_id), LOW_BALANCE_ALERT_SK), ConsistentRead=True
    )
    item = found.get("Item")
    return _alert_of(plain(item)) if item else None


def _alert_of(attributes: Mapping[str, Any]) -> LowBalanceAlert:
    return LowBalanceAlert(
        currency=str(attributes["currency"]),
        threshold_minor=int(attributes["threshold_minor"]),
        reset_minor=int(attributes["reset_minor"]),
        emails=tuple(str(e) for e in attributes.get("emails") or ()),
        armed=bool(attributes.get("armed")),
        seen_version=int(attributes.get("seen_version") or 0),
        rev=str(attributes.get("rev") or ""),
        updated_at=str(attributes.get("updated_at") or ""),
    )


def balance_state(store: Table, customer_id: str, currency: str) -> tuple[int, int]:
    """(the completed balance in `currency`, the balance item's version): one consistent GetItem."""
    found = store.client.get_item(
        TableName=store.table, Key=key(customer_pk(customer_id), BALANCE_SK), ConsistentRead=True
    )
    item = plain(found.get("Item") or {})
    return int(item.get(f"bal_{currency}", 0)), int(item.get("version", 0))


def alert_item(customer_id: str, alert: LowBalanceAlert) -> Item:
    return item_of(
        {
            "PK": customer_pk(customer_id),
            "SK": LOW_BALANCE_ALERT_SK,
            "type": ALERT_TYPE,
            "currency": alert.currency,
            "threshold_minor": alert.threshold_minor,
            "reset_minor": alert.reset_minor,
            "emails": list(alert.emails),
            "armed": alert.armed,
            "seen_version": alert.seen_version,
            "rev": alert.rev,
            "updated_at": alert.updated_at,
        }
    )


def put_low_balance_alert(store: Table, customer_id: str, alert: LowBalanceAlert) -> LowBalanceAlert | None:
    """Replace the customer's alert (a save: a new `rev`, its `updated_at`), only while the balance item is still at
    `alert.seen_version` (the version its `armed` was judged at): one transaction, the alert's Put and a
    ConditionCheck of the balance. The alert as stored; None if the balance changed meanwhile (judge it again)."""
    saved = alert._replace(rev=uuid.uuid4().hex, updated_at=iso_z(utcnow()))
    check = {
        "ConditionCheck": {
            "TableName": store.table,
            "Key": key(customer_pk(customer_id), BALANCE_SK),
            "ConditionExpression": "attribute_not_exists(#version) OR #version = :version"
            if alert.seen_version == 0
            else "#version = :version",
            "ExpressionAttributeNames": {"#version": "version"},
            "ExpressionAttributeValues": values({":version": alert.seen_version}),
        }
    }
    put = {
        "Put": {
            "TableName": store.table,
            "Item": alert_item(customer_id, saved),
        }
    }
    try:
        store.transact([put, check])
    except store.client.exceptions.TransactionCanceledException as exc:
        if "ConditionalCheckFailed" in cancellation_codes(exc):
            return None
        raise
    return saved


def delete_low_balance_alert(store: Table, customer_id: str) -> None:
    store.client.delete_item(TableName=store.table, Key=key(customer_pk(customer_id), LOW_BALANCE_ALERT_SK))


def _alert_update(store: Table, customer_id: str, alert: LowBalanceAlert, version: int, armed: bool) -> Item:
    return {
        "TableName": store.table,
        "Key": key(customer_pk(customer_id), LOW_BALANCE_ALERT_SK),
        "UpdateExpression": "SET armed = :armed, seen_version = :version",
        "ConditionExpression": "rev = :rev AND armed = :was AND seen_version < :version",
        "ExpressionAttributeValues": values(
            {":armed": armed, ":was": alert.armed, ":version": version, ":rev": alert.rev}
        ),
    }


def disarm_with_event(
    store: Table, customer_id: str, alert: LowBalanceAlert, version: int, event: OutboxEvent
) -> bool | None:
    """The crossing down, once: the alert armed -> not armed (as judged: same save, still armed, an older version
    seen) and the `balance.low` outbox item, in one transaction. True if written; None if the outbox item exists
    (this record was acted on before); False if the alert is not as judged (read it again)."""
    parts: list[Item] = [
        {"Update": _alert_update(store, customer_id, alert, version, armed=False)},
        store.put_new(outbox_item(event, int(time.time()) + OUTBOX_TTL_SECONDS)),
    ]
    try:
        store.transact(parts)
    except store.client.exceptions.TransactionCanceledException as exc:
        reasons = cancellation_codes(exc)
        if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
            return None
        if reasons and reasons[0] == "ConditionalCheckFailed":
            return False
        raise
    return True


def rearm(store: Table, customer_id: str, alert: LowBalanceAlert, version: int) -> bool:
    """The rise above the reset threshold: not armed -> armed, as judged. False if the alert is not as judged."""
    try:
        store.client.update_item(**_alert_update(store, customer_id, alert, version, armed=True))
    except store.client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def set_balance_after(store: Table, customer_id: str, payment_id: str, minor: int) -> bool:
    """The balance right after this payment's change, on the payment: only if it exists and has none yet (the first
    writer wins; a redelivered record finds it set). One UpdateItem. True if set."""
    try:
        store.client.update_item(
            TableName=store.table,
            Key=key(customer_pk(customer_id), payment_sk(payment_id)),
            UpdateExpression="SET balance_after_minor = :after",
            ConditionExpression="attribute_exists(PK) AND attribute_not_exists(balance_after_minor)",
            ExpressionAttributeValues=values({":after": minor}),
        )
    except store.client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def balance_record_of(record: Mapping[str, Any]) -> BalanceRecord | None:
    """The balance change a stream record tells (Lambda's DynamoDB record, attribute values), or None if it is not
    an INSERT or MODIFY of a customer's balance item naming the payment and currency that moved it."""
    dynamodb = record.get("dynamodb") or {}
    keys = plain(dynamodb.get("Keys") or {})
    customer_id = customer_of_pk(str(keys.get("PK", "")))
    if keys.get("SK") != BALANCE_SK or customer_id is None or record.get("eventName") not in ("INSERT", "MODIFY"):
        return None
    new, old = plain(dynamodb.get("NewImage") or {}), plain(dynamodb.get("OldImage") or {})
    currency, payment_id = new.get("last_currency"), new.get("last_payment")
    if not isinstance(currency, str) or not isinstance(payment_id, str) or f"bal_{currency}" not in new:
        return None
    return BalanceRecord(
        customer_id=customer_id,
        currency=currency,
        old_minor=int(old.get(f"bal_{currency}", 0)),
        new_minor=int(new[f"bal_{currency}"]),
        payment_id=payment_id,
        version=int(new.get("version", 0)),
        sequence=str(dynamodb.get("SequenceNumber") or ""),
        updated_at=str(new.get("updated_at") or ""),
    )
