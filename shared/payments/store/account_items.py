"""A customer's account settings (docs/account-settings.md): one item beside the customer's payments, holding the
settings document `payments.account` made (the JSON of what the operator route answers), and who saved it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from payments.models import iso_z, utcnow
from payments.store.codec import item_of
from payments.store.keys import SETTINGS_SK, customer_pk
from payments.store.table import key

if TYPE_CHECKING:
    from payments.store.table import Table

SETTINGS_TYPE = "account-settings"


def account_settings(store: Table, customer_id: str) -> dict[str, Any] | None:
    """The settings document an operator saved for the customer; None if none was."""
    found = store.client.get_item(TableName=store.table, Key=key(customer_pk(customer_id), SETTINGS_SK))
    item = found.get("Item")
    if not item or "document" not in item:
        return None
    document = json.loads(item["document"]["S"])
    return document if isinstance(document, dict) else None


def put_account_settings(store: Table, customer_id: str, document: dict[str, Any], by: str) -> None:
    """Replace the customer's settings document (a PUT replaces them whole)."""
    store.client.put_item(
        TableName=store.table,
        Item=item_of(
            {
                "PK": customer_pk(customer_id),
                "SK": SETTINGS_SK,
                "type": SETTINGS_TYPE,
                "document": json.dumps(document, separators=(",", ":"), sort_keys=True),
                "updated_at": iso_z(utcnow()),
                "updated_by": by,
            }
        ),
    )
