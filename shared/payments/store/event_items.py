"""Event markers (`EVENT#<source>#<key>`): each webhook event, refund, reconciliation answer or operator charge
once. Most are written inside the transaction of the change they guard (`PaymentItems`); these stand alone."""

from __future__ import annotations

from payments.store.items import EVENT_SK, event_pk
from payments.store.payment_items import PaymentItems
from payments.store.records import Dedupe
from payments.store.table import key


class EventItems(PaymentItems):
    def record_event(self, marker: Dedupe, payment_id: str | None = None, *, event_type: str = "") -> bool:
        """Record an event acted on no further (its type, outcome `recorded`); False if it was recorded before."""
        item = self._event_item(marker, payment_id, event_type=event_type[:100], outcome="recorded")
        try:
            self.client.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(PK)")
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def event_payment_id(self, marker: Dedupe) -> str | None:
        """The payment an event marker names (one consistent GetItem); None if it is not recorded or names none."""
        item = self.client.get_item(
            TableName=self.table, Key=key(event_pk(marker.source, marker.key), EVENT_SK), ConsistentRead=True
        ).get("Item")
        return item["payment_id"]["S"] if item and "payment_id" in item else None
