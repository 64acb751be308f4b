"""Payments and balances in the table: reads, new payments, refunds, status changes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from payments.ids import PREFIX as PAYMENT_ID_PREFIX
from payments.ids import id_bound
from payments.models import Payment, PaymentMethod, PaymentStatus, iso_z, utcnow
from payments.money import Money
from payments.status import Change, counts_in_balance
from payments.store.base import Written
from payments.store.codec import (
    Item,
    bank_reference,
    event_item,
    from_item,
    gateway_pointer,
    history_value,
    idempotency_pointer,
    to_item,
    value,
    values,
)
from payments.store.items import (
    BALANCE_SK,
    GATEWAY_REF_SK,
    customer_pk,
    gateway_ref_pk,
    idempotency_sk,
    payment_sk,
    pending_pk,
    status_pk,
)
from payments.store.records import Dedupe, RefundWritten
from payments.store.table import Table, cancellation_codes, key

EVENT_TTL_SECONDS = 90 * 24 * 3600  # longer than any gateway retries (PayPal: 3 days)
SEARCH_QUERIES = 10  # a searched page reads at most this many Query pages before it answers short, with a cursor
SEARCH_PAGE = 200  # items read per Query of a searched page


class PaymentItems(Table):
    """Payments and balances of customers."""

    # -- reads --

    def get(self, customer_id: str, payment_id: str, *, consistent: bool = False) -> Payment | None:
        """One GetItem on the customer's own partition: another customer's id is simply not found."""
        if not payment_id.startswith(PAYMENT_ID_PREFIX) or len(payment_id) > 64:
            return None
        answer = self.client.get_item(
            TableName=self.table,
            Key=key(customer_pk(customer_id), payment_sk(payment_id)),
            ConsistentRead=consistent,
        )
        item = answer.get("Item")
        return from_item(item) if item else None

    def _listing_query(
        self,
        customer_id: str,
        status: PaymentStatus | None,
        created_from: datetime | None,
        created_to: datetime | None,
    ) -> dict[str, Any]:
        """The key condition every listing uses: the customer's partition (or its status index), newest
        first, `from`/`to` as bounds on the time-ordered payment id."""
        lower = payment_sk(id_bound(created_from, upper=False)) if created_from else "PAY#"
        upper = payment_sk(id_bound(created_to, upper=True)) if created_to else "PAY$"
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :lower AND :upper",
            "ScanIndexForward": False,
        }
        if status is None:
            request["ExpressionAttributeNames"] = {"#pk": "PK", "#sk": "SK"}
            pk_value = customer_pk(customer_id)
        else:
            request["IndexName"] = "GSI1"
            request["ExpressionAttributeNames"] = {"#pk": "GSI1PK", "#sk": "GSI1SK"}
            pk_value = status_pk(customer_id, status)
        request["ExpressionAttributeValues"] = values({":pk": pk_value, ":lower": lower, ":upper": upper})
        return request

    def page(
        self,
        customer_id: str,
        *,
        limit: int,
        after: str | None = None,
        status: PaymentStatus | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        search: str | None = None,
    ) -> tuple[list[Payment], str | None]:
        """Newest first: the payments and the id to go on after, if more may follow.

        One Query. With `search` (lower-case text found in the id, description, reference, gateway reference or
        card's last 4 digits), a filter: a page may take several Queries to fill, at most SEARCH_QUERIES, and
        may come back short with a cursor when the matches are rare.
        """
        request = self._listing_query(customer_id, status, created_from, created_to)
        if search:
            request["FilterExpression"] = "contains(search_text, :q)"
            request["ExpressionAttributeValues"][":q"] = value(search)
        items: list[Item] = []
        last_evaluated: str | None = after
        for _ in range(SEARCH_QUERIES if search else 1):
            # One extra item tells whether another page exists; a filtered Query reads a fuller page.
            request["Limit"] = max(limit + 1 - len(items), SEARCH_PAGE) if search else limit + 1
            if last_evaluated is not None:
                request["ExclusiveStartKey"] = self._start_key(customer_id, status, last_evaluated)
            answer = self.client.query(**request)
            items += answer.get("Items", [])
            stopped_at = answer.get("LastEvaluatedKey")
            last_evaluated = stopped_at["SK"]["S"].removeprefix("PAY#") if stopped_at else None
            if len(items) > limit or last_evaluated is None:
                break
        payments = [from_item(i) for i in items[:limit]]
        if len(items) > limit:
            return payments, payments[-1].id
        # DynamoDB stopped early (its 1 MB page cap, or the search's Query budget): go on after where it stopped.
        return payments, last_evaluated

    def _start_key(self, customer_id: str, status: PaymentStatus | None, after: str) -> Item:
        start = key(customer_pk(customer_id), payment_sk(after))
        if status is not None:
            start |= values({"GSI1PK": status_pk(customer_id, status), "GSI1SK": payment_sk(after)})
        return start

    def summary(
        self,
        customer_id: str,
        *,
        status: PaymentStatus | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        search: str | None = None,
    ) -> tuple[dict[PaymentStatus, int], list[Money]]:
        """How many payments a listing holds per status, and the sum of its completed ones per currency: one
        Query per 1 MB of matching payments, reading only the status, amount and currency."""
        request = self._listing_query(customer_id, status, created_from, created_to)
        request["ProjectionExpression"] = "#status, amount_minor, currency"
        request["ExpressionAttributeNames"]["#status"] = "status"
        if search:
            request["FilterExpression"] = "contains(search_text, :q)"
            request["ExpressionAttributeValues"][":q"] = value(search)
        counts = dict.fromkeys(PaymentStatus, 0)
        totals: dict[str, int] = {}
        while True:
            answer = self.client.query(**request)
            for item in answer.get("Items", []):
                current = PaymentStatus(item["status"]["S"])
                counts[current] += 1
                if counts_in_balance(current):
                    currency = item["currency"]["S"]
                    totals[currency] = totals.get(currency, 0) + int(item["amount_minor"]["N"])
            if "LastEvaluatedKey" not in answer:
                break
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return counts, [Money(minor, currency) for currency, minor in sorted(totals.items())]

    def count(
        self,
        customer_id: str,
        *,
        cap: int,
        status: PaymentStatus | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> int:
        """How many payments a listing would return, counting no further than `cap` (COUNT Queries, no Scan)."""
        request = self._listing_query(customer_id, status, created_from, created_to)
        request["Select"] = "COUNT"
        counted = 0
        while counted < cap:
            answer = self.client.query(**request, Limit=cap - counted)
            counted += answer.get("Count", 0)
            if "LastEvaluatedKey" not in answer:
                break
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return counted

    def balances(self, customer_id: str) -> list[Money]:
        """The customer's balance item: one GetItem, never a sum at read time."""
        answer = self.client.get_item(
            TableName=self.table,
            Key=key(customer_pk(customer_id), BALANCE_SK),
        )
        item = answer.get("Item") or {}
        return sorted(
            (Money(int(v["N"]), k.removeprefix("bal_")) for k, v in item.items() if k.startswith("bal_")),
            key=lambda m: m.currency,
        )

    def pending_before(self, method: PaymentMethod, before: datetime, *, limit: int) -> list[Payment]:
        """Pending payments of `method` created before `before`, oldest first (sparse index GSI2)."""
        answer = self.client.query(
            TableName=self.table,
            IndexName="GSI2",
            KeyConditionExpression="GSI2PK = :pk AND GSI2SK < :before",
            ExpressionAttributeValues=values(
                {":pk": pending_pk(method), ":before": payment_sk(id_bound(before, upper=False))}
            ),
            Limit=limit,
        )
        return [from_item(i) for i in answer.get("Items", [])]

    def find_by_gateway_ref(self, provider: str, gateway_ref: str) -> Payment | None:
        """The payment we created gateway object `gateway_ref` for (two GetItems: pointer, then payment)."""
        item = self.client.get_item(
            TableName=self.table, Key=key(gateway_ref_pk(provider, gateway_ref), GATEWAY_REF_SK)
        ).get("Item")
        if not item:
            return None
        return self.get(item["customer_id"]["S"], item["payment_id"]["S"], consistent=True)

    def find_by_request(self, customer_id: str, request_key: str) -> Payment | None:
        """The payment a Make Payment request put (its idempotency pointer, then the payment: two GetItems)."""
        item = self.client.get_item(
            TableName=self.table, Key=key(customer_pk(customer_id), idempotency_sk(request_key)), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return self.require(customer_id, item["payment_id"]["S"], consistent=True)

    # -- writes --

    def add(self, payment: Payment, *, dedupe: Dedupe | None = None) -> bool:
        """Record a new payment; a completed one moves the balance in the same transaction.

        Returns False (and writes nothing) if `dedupe` was already recorded.
        """
        try:
            self._add(payment, dedupe=dedupe)
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = cancellation_codes(exc)
            if dedupe and reasons and reasons[-1] == "ConditionalCheckFailed":
                return False
            raise
        return True

    def _add(self, payment: Payment, *, dedupe: Dedupe | None = None, extra: Sequence[Item] = ()) -> None:
        """The transaction of a new payment: its Put, `extra` (parts that must succeed with it), the balance if
        it is completed, and `dedupe` last (so a cancellation's last reason tells a duplicate)."""
        parts: list[Item] = [self._put_new(to_item(payment)), *extra]
        if payment.status is PaymentStatus.COMPLETED:
            parts.append(self._balance_update(payment.customer_id, payment.money))
        if dedupe:
            parts.append(self._put_new(self._event_item(dedupe, payment.id)))
        self._transact(parts)

    def put_pending(
        self,
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
        parts = [self._put_new(idempotency_pointer(payment.customer_id, request_key, payment.id))]
        if gateway_ref:
            parts.append(self._gateway_ref_pointer(payment, *gateway_ref))
        if reference:
            parts.append(self._put_new(bank_reference(reference, payment.id)))
        try:
            self._add(payment, extra=parts)
        except self.client.exceptions.TransactionCanceledException:
            earlier = self.find_by_request(payment.customer_id, request_key)
            if earlier is None:
                raise  # a reference collision (1 in 2^60): the client's retry draws a new one
            return earlier, False
        return payment, True

    def record_refund(self, refund: Payment, original: Payment, dedupe: Dedupe) -> RefundWritten:
        """Record `refund` (a completed negative payment of `original`'s customer) and count it against `original`,
        once: only a completed payment can be refunded, and never by more than it was for."""
        limit = abs(original.amount_minor) + refund.amount_minor
        # `status.refundable`: completed only, checked again here, atomically.
        claim = {
            "Update": {
                "TableName": self.table,
                "Key": self._payment_key(original),
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
            self._add(refund, dedupe=dedupe, extra=[claim])
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = cancellation_codes(exc)
            if reasons and reasons[-1] == "ConditionalCheckFailed":
                return RefundWritten.DUPLICATE
            return RefundWritten.REFUSED
        return RefundWritten.RECORDED

    def _write_change(self, change: Change, dedupe: Dedupe | None) -> Written:
        """One TransactWriteItems: the payment Update from `change.before` to `change.after` (conditioned on the
        status it was computed from), the balance ADD of its delta, the dedupe Put. A dedupe marker alone is one
        PutItem."""
        parts: list[Item] = []
        if change.changed:
            parts.append(self._change_update(change))
            if change.balance_delta is not None:
                parts.append(self._balance_update(change.before.customer_id, change.balance_delta))
        if dedupe:
            parts.append(self._put_new(self._event_item(dedupe, change.before.id)))
        try:
            if len(parts) == 1 and "Put" in parts[0]:
                self.client.put_item(**parts[0]["Put"])
            else:
                self._transact(parts)
        except self.client.exceptions.ConditionalCheckFailedException:
            return Written.DUPLICATE
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = cancellation_codes(exc)
            if dedupe and reasons and reasons[-1] == "ConditionalCheckFailed":
                return Written.DUPLICATE
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return Written.LOST
            raise
        return Written.WRITTEN

    def _change_update(self, change: Change) -> Item:
        """The Update that makes the stored `change.before` into `change.after`, conditioned on its status.

        It sets what differs between their items, appends the new history entries, and removes what `after`
        no longer has. The attributes other writers change without changing the status (the pending index, the
        claim) are removed whenever `after` has none: the `before` read may predate them.
        """
        before, after = to_item(change.before), to_item(change.after)
        sets: list[str] = []
        names = {"#status": "status"}
        named: dict[str, Any] = {":seen": before["status"]}
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
                "TableName": self.table,
                "Key": self._payment_key(change.before),
                "UpdateExpression": expression.strip(),
                "ConditionExpression": "#status = :seen",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": named,
            }
        }

    # -- parts --

    def _payment_key(self, payment: Payment) -> Item:
        return key(customer_pk(payment.customer_id), payment_sk(payment.id))

    def _balance_update(self, customer_id: str, money: Money) -> Item:
        return {
            "Update": {
                "TableName": self.table,
                "Key": key(customer_pk(customer_id), BALANCE_SK),
                "UpdateExpression": "ADD #cur :delta SET updated_at = :now",
                "ExpressionAttributeNames": {"#cur": f"bal_{money.currency}"},
                "ExpressionAttributeValues": values({":delta": money.minor, ":now": iso_z(utcnow())}),
            }
        }

    @staticmethod
    def _event_item(marker: Dedupe, payment_id: str | None, **more: str) -> Item:
        return event_item(marker, payment_id, iso_z(utcnow()), int(time.time()) + EVENT_TTL_SECONDS, **more)

    def _gateway_ref_pointer(self, payment: Payment, provider: str, gateway_ref: str) -> Item:
        """A transaction part: the pointer from a gateway reference of ours to its payment."""
        return {
            "Put": {
                "TableName": self.table,
                "Item": gateway_pointer(provider, gateway_ref, payment.customer_id, payment.id),
                # A gateway reference names one payment for ever.
                "ConditionExpression": "attribute_not_exists(PK) OR (customer_id = :cust AND payment_id = :pid)",
                "ExpressionAttributeValues": values({":cust": payment.customer_id, ":pid": payment.id}),
            }
        }


# Written by the claim on creating a payment's gateway object, under no condition on the status; and the pending
# index, which goes with the status.
_CHANGED_BY_OTHERS = ("GSI2PK", "GSI2SK", "gw_claim_until")
