"""The e-mail markers (docs/receipts.md#once-per-event): one item per e-mail key, claimed by a conditional put before
the e-mail goes to SES and marked sent after SES answers, so a redelivered event sends nothing twice.

A claim expires (`claim_until`, epoch ms): a sender that crashed between its claim and SES's answer lets a later
delivery claim it again and send. Markers are kept 30 days (`expires_at`, the table's TTL), longer than any
redelivery (SQS keeps a message 4 days here; EventBridge retries for 24 hours).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from payments.models import iso_z, utcnow
from payments.store.codec import plain, values
from payments.store.keys import EMAIL_SK, email_pk
from payments.store.table import key

if TYPE_CHECKING:
    from payments.store.table import Table

EMAIL_TYPE = "email"
EMAIL_TTL_SECONDS = 30 * 24 * 3600
CLAIMED, SENT = "claimed", "sent"


def claim_email(store: Table, email_key: str, customer_id: str, *, hold_seconds: float) -> bool:
    """Claim the e-mail `email_key` for `hold_seconds`: True if this caller may send it now; False if it was sent,
    or another sender's claim still runs."""
    now = int(time.time() * 1000)
    try:
        store.client.update_item(
            TableName=store.table,
            Key=key(email_pk(email_key), EMAIL_SK),
            UpdateExpression="SET #t = :t, #s = :claimed, claim_until = :until, customer_id = :c, expires_at = :exp "
            "ADD claims :one",
            ConditionExpression="attribute_not_exists(PK) OR (#s = :claimed AND claim_until < :now)",
            ExpressionAttributeNames={"#t": "type", "#s": "state"},
            ExpressionAttributeValues=values(
                {
                    ":t": EMAIL_TYPE,
                    ":claimed": CLAIMED,
                    ":until": store.claim_until(hold_seconds),
                    ":c": customer_id,
                    ":exp": now // 1000 + EMAIL_TTL_SECONDS,
                    ":one": 1,
                    ":now": now,
                }
            ),
        )
    except store.client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def mark_email_sent(store: Table, email_key: str, message_id: str) -> None:
    """SES took the e-mail: no claim may send it again."""
    store.client.update_item(
        TableName=store.table,
        Key=key(email_pk(email_key), EMAIL_SK),
        UpdateExpression="SET #s = :sent, sent_at = :at, message_id = :id REMOVE claim_until",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues=values({":sent": SENT, ":at": iso_z(utcnow()), ":id": message_id}),
    )


def release_email(store: Table, email_key: str) -> None:
    """SES refused or failed: the claim ends now, so the next delivery may send at once (a sent marker stays)."""
    with contextlib.suppress(store.client.exceptions.ConditionalCheckFailedException):
        store.client.update_item(
            TableName=store.table,
            Key=key(email_pk(email_key), EMAIL_SK),
            UpdateExpression="SET claim_until = :zero",
            ConditionExpression="#s = :claimed",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=values({":zero": 0, ":claimed": CLAIMED}),
        )


def email_marker(store: Table, email_key: str) -> dict[str, object] | None:
    """The marker as plain values (state, claims, sent_at, message_id); None if the e-mail was never claimed."""
    found = store.client.get_item(TableName=store.table, Key=key(email_pk(email_key), EMAIL_SK), ConsistentRead=True)
    item = found.get("Item")
    if not item:
        return None
    return {name: value for name, value in plain(item).items() if name not in ("PK", "SK")}
