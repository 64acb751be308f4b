"""Reading the table: payments, balances, pointers and event markers. The read functions load no more of the
store than this (and `table`, `codec`, `keys`): every write is in `writes` and the modules beside it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from payments.ids import PREFIX as PAYMENT_ID_PREFIX
from payments.ids import id_bound
from payments.models import Payment, PaymentMethod, PaymentStatus
from payments.money import Money
from payments.status import counts_in_balance
from payments.store.base import paged
from payments.store.codec import Item, from_item, value, values
from payments.store.keys import (
    BALANCE_SK,
    EVENT_SK,
    GATEWAY_REF_SK,
    customer_pk,
    event_pk,
    gateway_ref_pk,
    idempotency_sk,
    payment_sk,
    pending_pk,
    status_pk,
    watch_pk,
)
from payments.store.records import Dedupe
from payments.store.table import Table, key

if TYPE_CHECKING:
    from payments.store.export_rows import ExportRow

SEARCH_QUERIES = 10  # a searched page reads at most this many Query pages before it answers short, with a cursor
SEARCH_PAGE = 200  # items read per Query of a searched page


class Reads(Table):
    """Every read of the table."""

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
        items, more = self._page_items(customer_id, limit, after, status, created_from, created_to, search)
        return [from_item(i) for i in items], more

    def stream_rows(
        self,
        customer_id: str,
        *,
        page_size: int = 500,
        status: PaymentStatus | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        search: str | None = None,
    ) -> Iterator[ExportRow]:
        """`stream`'s payments as export rows, read from each item without building a `Payment` (`export_rows`)."""
        from payments.store.export_rows import row_of_item

        return map(
            row_of_item,
            paged(
                lambda after: self._page_items(customer_id, page_size, after, status, created_from, created_to, search)
            ),
        )

    def _page_items(
        self,
        customer_id: str,
        limit: int,
        after: str | None,
        status: PaymentStatus | None,
        created_from: datetime | None,
        created_to: datetime | None,
        search: str | None,
    ) -> tuple[list[Item], str | None]:
        """`page`'s items (at most `limit`) and the id to go on after."""
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
        if len(items) > limit:
            return items[:limit], items[limit - 1]["id"]["S"]
        # DynamoDB stopped early (its 1 MB page cap, or the search's Query budget): go on after where it stopped.
        return items, last_evaluated

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
        return _balances_of(answer.get("Item") or {})

    def balances_and_settings(self, customer_id: str) -> tuple[list[Money], dict[str, Any] | None]:
        """The balance item and the account settings document together: one BatchGetItem (GET /balance with a
        credit limit). Unprocessed keys (throttling) are asked again."""
        import json

        from payments.store.keys import SETTINGS_SK

        wanted = [key(customer_pk(customer_id), BALANCE_SK), key(customer_pk(customer_id), SETTINGS_SK)]
        found: list[Item] = []
        request: dict[str, Any] = {self.table: {"Keys": wanted}}
        for _ in range(5):
            answer = self.client.batch_get_item(RequestItems=request)
            found += answer.get("Responses", {}).get(self.table, [])
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
        balance = next((i for i in found if i["SK"]["S"] == BALANCE_SK), {})
        settings = next((i for i in found if i["SK"]["S"] == SETTINGS_SK), None)
        document = json.loads(settings["document"]["S"]) if settings and "document" in settings else None
        return _balances_of(balance), document if isinstance(document, dict) else None

    def account_settings(self, customer_id: str) -> dict[str, Any] | None:
        from payments.store import account_items

        return account_items.account_settings(self, customer_id)

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

    def watched(self, kind: str, *, limit: int, after: str | None = None) -> list[Payment]:
        """Settled payments reconciliation watches (`codec.watch_of`): `dispute` or `refund`, oldest first, from
        after payment id `after` (sparse index GSI2)."""
        condition = "GSI2PK = :pk" + (" AND GSI2SK > :after" if after else "")
        named = {":pk": watch_pk(kind)} | ({":after": payment_sk(after)} if after else {})
        answer = self.client.query(
            TableName=self.table,
            IndexName="GSI2",
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values(named),
            Limit=limit,
        )
        return [from_item(i) for i in answer.get("Items", [])]

    def find_by_gateway_ref(self, provider: str, gateway_ref: str) -> Payment | None:
        """The payment we created gateway object `gateway_ref` for (two GetItems: pointer, then payment)."""
        item = self.client.get_item(
            TableName=self.table, Key=key(gateway_ref_pk(provider, gateway_ref), GATEWAY_REF_SK)
        ).get("Item")
        if not item or "payment_id" not in item:  # none, or a saved card's SetupIntent (docs/saved-cards.md)
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

    def event_payment_id(self, marker: Dedupe) -> str | None:
        """The payment an event marker names (one consistent GetItem); None if it is not recorded or names none."""
        item = self.client.get_item(
            TableName=self.table, Key=key(event_pk(marker.source, marker.key), EVENT_SK), ConsistentRead=True
        ).get("Item")
        return item["payment_id"]["S"] if item and "payment_id" in item else None


def _balances_of(item: Item) -> list[Money]:
    return sorted(
        (Money(int(v["N"]), k.removeprefix("bal_")) for k, v in item.items() if k.startswith("bal_")),
        key=lambda m: m.currency,
    )
