"""`PaymentStore`: the payments table in DynamoDB (docs/data-model.md); keys in `items`, items in `codec`.

Payment ids are ULIDs, so `PAY#<id>` sorts by creation time and `from`/`to` become key conditions.
Every money-moving write is one TransactWriteItems with conditions, so retries and races are safe.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from payments.config import settings
from payments.errors import NotFound, RetryLater
from payments.ids import PREFIX as PAYMENT_ID_PREFIX
from payments.ids import id_bound
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus, iso_z, utcnow
from payments.money import Money
from payments.status import Cause, counts_in_balance, decide
from payments.store.codec import Item, _action_text, _history_item, _n, _s, from_item, search_text, to_item
from payments.store.items import (
    BALANCE_SK,
    GATEWAY_REF_SK,
    customer_pk,
    gateway_ref_pk,
    payment_sk,
    pending_pk,
    status_pk,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


EVENT_TTL_SECONDS = 90 * 24 * 3600  # longer than any gateway retries (PayPal: 3 days)
_MAX_TRANSITION_ATTEMPTS = 4
_MAX_CONFLICT_RETRIES = 4  # TransactionConflict: another transaction held an item; back off and send again
_CONFLICT_BACKOFF_SECONDS = 0.05
SEARCH_QUERIES = 10  # a searched page reads at most this many Query pages before it answers short, with a cursor
SEARCH_PAGE = 200  # items read per Query of a searched page
BUSY_MESSAGE = "the service is busy; retry in a moment, with the same Idempotency-Key if any"


def dynamodb_client() -> DynamoDBClient:
    import boto3

    return boto3.client("dynamodb")


# ---- writes as transaction parts ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dedupe:
    """A once-only marker written in the same transaction as the change it guards."""

    source: str  # e.g. "stripe" or "charge"
    key: str  # e.g. the gateway's event id or an idempotency key

    def put(self, table: str, payment_id: str | None) -> Item:
        item: Item = {
            "PK": _s(f"EVENT#{self.source}#{self.key}"),
            "SK": _s("EVENT"),
            "type": _s("event"),
            "recorded_at": _s(iso_z(utcnow())),
            "expires_at": _n(int(time.time()) + EVENT_TTL_SECONDS),
        }
        if payment_id:
            item["payment_id"] = _s(payment_id)
        return {"Put": {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}}


def _balance_update(table: str, customer_id: str, money: Money) -> Item:
    return {
        "Update": {
            "TableName": table,
            "Key": {"PK": _s(customer_pk(customer_id)), "SK": _s(BALANCE_SK)},
            "UpdateExpression": "ADD #cur :delta SET updated_at = :now",
            "ExpressionAttributeNames": {"#cur": f"bal_{money.currency}"},
            "ExpressionAttributeValues": {":delta": _n(money.minor), ":now": _s(iso_z(utcnow()))},
        }
    }


@dataclass(frozen=True, slots=True)
class TransitionOutcome:
    payment: Payment
    changed: bool  # False: it was already in the target status, or the event was a duplicate
    duplicate: bool = False


class PaymentStore:
    """Payments and balances of customers in the payments table."""

    def __init__(self, table_name: str | None = None, client: DynamoDBClient | None = None) -> None:
        self.table = table_name or settings().payments_table
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            self._client = dynamodb_client()
        return self._client

    # -- reads --

    def get(self, customer_id: str, payment_id: str, *, consistent: bool = False) -> Payment | None:
        """One GetItem on the customer's own partition: another customer's id is simply not found."""
        if not payment_id.startswith(PAYMENT_ID_PREFIX) or len(payment_id) > 64:
            return None
        answer = self.client.get_item(
            TableName=self.table,
            Key={"PK": _s(customer_pk(customer_id)), "SK": _s(payment_sk(payment_id))},
            ConsistentRead=consistent,
        )
        item = answer.get("Item")
        return from_item(item) if item else None

    def require(self, customer_id: str, payment_id: str, *, consistent: bool = False) -> Payment:
        payment = self.get(customer_id, payment_id, consistent=consistent)
        if payment is None:
            raise NotFound(f"payment {payment_id[:64]} not found")
        return payment

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
        request["ExpressionAttributeValues"] = {":pk": _s(pk_value), ":lower": _s(lower), ":upper": _s(upper)}
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
            request["ExpressionAttributeValues"][":q"] = _s(search)
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
        start = {"PK": _s(customer_pk(customer_id)), "SK": _s(payment_sk(after))}
        if status is not None:
            start |= {"GSI1PK": _s(status_pk(customer_id, status)), "GSI1SK": _s(payment_sk(after))}
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
            request["ExpressionAttributeValues"][":q"] = _s(search)
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

    def stream(
        self,
        customer_id: str,
        *,
        page_size: int = 500,
        status: PaymentStatus | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        search: str | None = None,
    ) -> Iterator[Payment]:
        """Every matching payment, newest first, one Query page at a time (constant memory)."""
        after: str | None = None
        while True:
            payments, after = self.page(
                customer_id,
                limit=page_size,
                after=after,
                status=status,
                created_from=created_from,
                created_to=created_to,
                search=search,
            )
            yield from payments
            if after is None:
                return

    def balances(self, customer_id: str) -> list[Money]:
        """The customer's balance item: one GetItem, never a sum at read time."""
        answer = self.client.get_item(
            TableName=self.table,
            Key={"PK": _s(customer_pk(customer_id)), "SK": _s(BALANCE_SK)},
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
            ExpressionAttributeValues={
                ":pk": _s(pending_pk(method)),
                ":before": _s(payment_sk(id_bound(before, upper=False))),
            },
            Limit=limit,
        )
        return [from_item(i) for i in answer.get("Items", [])]

    def find_by_gateway_ref(self, provider: str, gateway_ref: str) -> Payment | None:
        """The payment we created gateway object `gateway_ref` for (two GetItems: pointer, then payment)."""
        item = self.client.get_item(TableName=self.table, Key=_gateway_ref_key(provider, gateway_ref)).get("Item")
        if not item:
            return None
        return self.get(item["customer_id"]["S"], item["payment_id"]["S"], consistent=True)

    # -- the gateway object of a payment: claimed, then recorded once --

    @staticmethod
    def claim_until(hold_seconds: float) -> int:
        """The epoch-ms end of a claim held for `hold_seconds` from now."""
        return int((time.time() + hold_seconds) * 1000)

    def claim_gateway_object(
        self, payment: Payment, *, provider: str, hold_seconds: float, ref: Callable[[int], str | None]
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
        values: dict[str, Any] = {
            ":pending": _s(PaymentStatus.PENDING.value),
            ":now": _n(int(now * 1000)),
            ":until": _n(self.claim_until(hold_seconds)),
            ":attempt": _n(attempt),
        }
        condition = (
            "#status = :pending AND attribute_not_exists(gateway_ref) "
            "AND (attribute_not_exists(gw_claim_until) OR gw_claim_until < :now) AND "
        )
        if payment.gateway_attempts:
            condition += "gw_attempts = :seen"
            values[":seen"] = _n(payment.gateway_attempts)
        else:
            condition += "attribute_not_exists(gw_attempts)"
        update = "SET gw_attempts = :attempt, gw_claim_until = :until"
        if chosen:
            update += " ADD gateway_refs :refs"
            values[":refs"] = {"SS": [chosen]}
        claim: Item = {
            "TableName": self.table,
            "Key": self._payment_key(payment),
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        try:
            if chosen:
                self._transact([{"Update": claim}, self.gateway_ref_pointer(payment, provider, chosen)])
            else:
                self.client.update_item(**claim)
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        except self.client.exceptions.TransactionCanceledException as exc:
            if "ConditionalCheckFailed" not in _cancellation_codes(exc.response):
                raise
            return None
        refs = payment.gateway_refs | {chosen} if chosen else payment.gateway_refs
        until = int(values[":until"]["N"])
        return payment.model_copy(
            update={"gateway_attempts": attempt, "gateway_refs": refs, "gateway_claim_until": until}
        )

    def record_gateway_object(
        self,
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
        values: dict[str, Any] = {
            ":ref": _s(gateway_ref),
            ":refs": {"SS": [gateway_ref]},
            ":attempt": _n(payment.gateway_attempts),
        }
        after = payment.model_copy(
            update={"gateway_ref": gateway_ref, "card_last4": card_last4 or payment.card_last4}
            | ({"description": description} if description else {})
        )
        sets = ["gateway_ref = :ref", "search_text = :search"]
        values[":search"] = _s(search_text(after))
        known = {
            "card_brand": card_brand,
            "card_last4": card_last4,
            "next_action": _action_text(next_action),
            "description": description,
        }
        for name, value in known.items():
            if value:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = _s(value)
        update: Item = {
            "Update": {
                "TableName": self.table,
                "Key": self._payment_key(payment),
                "UpdateExpression": "SET "
                + ", ".join(sets)
                + " ADD gateway_refs :refs REMOVE gw_claim_until, last_error",
                "ConditionExpression": "attribute_not_exists(gateway_ref) AND gw_attempts = :attempt",
                "ExpressionAttributeValues": values,
            }
        }
        try:
            self._transact([update, self.gateway_ref_pointer(payment, provider, gateway_ref)])
        except self.client.exceptions.TransactionCanceledException as exc:
            if "ConditionalCheckFailed" not in _cancellation_codes(exc.response):
                raise
            return None
        recorded = {
            k: v
            for k, v in {"card_brand": card_brand, "card_last4": card_last4, "description": description}.items()
            if v
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

    def release_gateway_claim(self, payment: Payment, problem: str) -> None:
        """Let the next retry create (or find) the gateway object at once, and keep what went wrong for operators.
        Only our own claim is released: a later attempt's is left alone."""
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.table,
                Key=self._payment_key(payment),
                UpdateExpression="SET last_error = :e REMOVE gw_claim_until",
                ConditionExpression="gw_attempts = :attempt",
                ExpressionAttributeValues={":e": _s(problem[:500]), ":attempt": _n(payment.gateway_attempts)},
            )

    def gateway_ref_pointer(self, payment: Payment, provider: str, gateway_ref: str) -> Item:
        """A transaction part: the pointer from a gateway reference of ours to its payment."""
        return {
            "Put": {
                "TableName": self.table,
                "Item": {
                    **_gateway_ref_key(provider, gateway_ref),
                    "type": _s("gateway-ref"),
                    "customer_id": _s(payment.customer_id),
                    "payment_id": _s(payment.id),
                },
                # A gateway reference names one payment for ever.
                "ConditionExpression": "attribute_not_exists(PK) OR (customer_id = :cust AND payment_id = :pid)",
                "ExpressionAttributeValues": {":cust": _s(payment.customer_id), ":pid": _s(payment.id)},
            }
        }

    def _payment_key(self, payment: Payment) -> Item:
        return {"PK": _s(customer_pk(payment.customer_id)), "SK": _s(payment_sk(payment.id))}

    def refund_claim(self, original: Payment, refund: Money, refund_id: str) -> Item:
        """A transaction part that counts refund `refund_id` of `refund` against `original`: only a completed payment
        can be refunded, and never by more than it was for."""
        limit = abs(original.amount_minor) - refund.minor
        return {
            "Update": {
                "TableName": self.table,
                "Key": self._payment_key(original),
                "UpdateExpression": "ADD refunded_minor :x, refund_ids :id",
                "ConditionExpression": "#status = :completed AND "
                "(attribute_not_exists(refunded_minor) OR refunded_minor <= :limit)",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":x": _n(refund.minor),
                    ":id": {"SS": [refund_id]},
                    ":limit": _n(limit),
                    ":completed": _s(PaymentStatus.COMPLETED.value),
                },
            }
        }

    # -- writes --

    def add(self, payment: Payment, *, dedupe: Dedupe | None = None, extra: Sequence[Item] = ()) -> bool:
        """Record a new payment; a completed one moves the balance in the same transaction.

        Returns False (and writes nothing) if `dedupe` was already recorded. `extra` are further
        transaction parts that must succeed together (a voucher's redemption, say).
        """
        parts: list[Item] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item(payment),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            *extra,
        ]
        if payment.status is PaymentStatus.COMPLETED:
            parts.append(_balance_update(self.table, payment.customer_id, payment.money))
        if dedupe:
            parts.append(dedupe.put(self.table, payment.id))
        try:
            self._transact(parts)
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = _cancellation_codes(exc.response)
            if dedupe and reasons and reasons[-1] == "ConditionalCheckFailed":
                return False
            raise
        return True

    def _transact(self, parts: Sequence[Item]) -> None:
        """TransactWriteItems, sent again with jittered backoff while DynamoDB reports a TransactionConflict
        (another transaction held one of the items: nothing was written). Every part is conditional, so a repeat
        cannot apply twice. Still conflicting after the retries: RetryLater (503 with Retry-After)."""
        for attempt in range(_MAX_CONFLICT_RETRIES + 1):
            try:
                self.client.transact_write_items(TransactItems=list(parts))  # type: ignore[arg-type]
                return
            except self.client.exceptions.TransactionCanceledException as exc:
                if "TransactionConflict" not in _cancellation_codes(exc.response):
                    raise
                if attempt == _MAX_CONFLICT_RETRIES:
                    raise RetryLater(BUSY_MESSAGE, http_status=503) from exc
            time.sleep(random.uniform(0, _CONFLICT_BACKOFF_SECONDS * 2**attempt))  # noqa: S311 - jitter only

    def transition(
        self,
        customer_id: str,
        payment_id: str,
        target: PaymentStatus,
        cause: Cause,
        by: str,
        *,
        note: str | None = None,
        dedupe: Dedupe | None = None,
        current: Payment | None = None,
        failure_field: str | None = None,
    ) -> TransitionOutcome:
        """Move a payment to `target` if the status rules allow it, exactly once.

        The payment update (conditioned on the status we read), the balance update and the dedupe
        marker are one transaction. A lost race re-reads and decides again; one lost race after another
        ends in RetryLater (503), never in a wrong answer. Raises NotFound or TransitionRefused.
        `current` saves the first read when the caller has just read the payment.
        """
        for attempt in range(_MAX_TRANSITION_ATTEMPTS):
            # `current`: the caller's fresh read, used once; a lost race reads again.
            payment, current = current or self.require(customer_id, payment_id, consistent=True), None
            decision = decide(payment.status, target, cause)
            now = utcnow()
            parts: list[Item] = []
            if decision.apply:
                parts.append(self._status_update(payment, target, by, note, now, failure_field))
                if counts_in_balance(target) != counts_in_balance(payment.status):
                    sign = 1 if counts_in_balance(target) else -1
                    parts.append(
                        _balance_update(self.table, customer_id, Money(sign * payment.amount_minor, payment.currency))
                    )
            if dedupe:
                parts.append(dedupe.put(self.table, payment_id))
            if not parts:
                return TransitionOutcome(payment, changed=False)
            try:
                if len(parts) == 1 and "Put" in parts[0]:
                    self.client.put_item(**parts[0]["Put"])
                else:
                    self._transact(parts)
            except self.client.exceptions.ConditionalCheckFailedException:
                return TransitionOutcome(payment, changed=False, duplicate=True)
            except self.client.exceptions.TransactionCanceledException as exc:
                reasons = _cancellation_codes(exc.response)
                if dedupe and reasons and reasons[-1] == "ConditionalCheckFailed":
                    return TransitionOutcome(payment, changed=False, duplicate=True)
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    # Someone changed the status meanwhile: decide again on fresh data, after a short pause
                    # from the second loss on, so racing writers spread out.
                    if attempt:
                        time.sleep(random.uniform(0, _CONFLICT_BACKOFF_SECONDS * 2**attempt))  # noqa: S311
                    continue
                raise
            if not decision.apply:
                return TransitionOutcome(payment, changed=False)
            # The condition held, so the item is what we read plus this change: no need to read it again.
            return TransitionOutcome(_after(payment, target, by, note, now, failure_field), changed=True)
        raise RetryLater(BUSY_MESSAGE, http_status=503)

    def _status_update(
        self,
        payment: Payment,
        target: PaymentStatus,
        by: str,
        note: str | None,
        now: datetime,
        failure_field: str | None,
    ) -> Item:
        entry = HistoryEntry(at=now, status=target, by=by, note=note)
        names = {"#status": "status"}
        values: dict[str, Any] = {
            ":to": _s(target.value),
            ":from": _s(payment.status.value),
            ":gsi1": _s(status_pk(payment.customer_id, target)),
            ":h": {"L": [_history_item(entry)]},
        }
        sets = ["#status = :to", "GSI1PK = :gsi1", "history = list_append(history, :h)"]
        if target is PaymentStatus.COMPLETED:
            sets.append("completed_at = :now")
            values[":now"] = _s(iso_z(now))
        if target is PaymentStatus.CANCELLED and note:
            sets.append("failure_reason = :reason")
            values[":reason"] = _s(note)
        if target is PaymentStatus.CANCELLED and failure_field:
            sets.append("failure_field = :field")
            values[":field"] = _s(failure_field)
        return {
            "Update": {
                "TableName": self.table,
                "Key": self._payment_key(payment),
                # A settled payment's gateway object is no longer being created: drop any claim with the index.
                "UpdateExpression": "SET " + ", ".join(sets) + " REMOVE GSI2PK, GSI2SK, gw_claim_until",
                "ConditionExpression": "#status = :from",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }


def _after(
    payment: Payment, target: PaymentStatus, by: str, note: str | None, now: datetime, failure_field: str | None
) -> Payment:
    """`payment` as `_status_update` leaves it."""
    update: dict[str, Any] = {
        "status": target,
        "history": (*payment.history, HistoryEntry(at=now, status=target, by=by, note=note)),
    }
    if target is PaymentStatus.COMPLETED:
        update["completed_at"] = now
    if target is PaymentStatus.CANCELLED and note:
        update["failure_reason"] = note
    if target is PaymentStatus.CANCELLED and failure_field:
        update["failure_field"] = failure_field
    return payment.model_copy(update=update)


def _gateway_ref_key(provider: str, gateway_ref: str) -> Item:
    return {"PK": _s(gateway_ref_pk(provider, gateway_ref)), "SK": _s(GATEWAY_REF_SK)}


def _cancellation_codes(response: Mapping[str, Any]) -> list[str]:
    return [str(r.get("Code", "None")) for r in response.get("CancellationReasons", [])]
