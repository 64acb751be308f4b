"""DynamoDB access for payments and balances: the only module that knows the table layout.

Single table (docs/data-model.md):

    item            PK                  SK               other keys
    payment         CUST#<customer>     PAY#<payment id> GSI1PK=CUST#<customer>#<status>, GSI1SK=PAY#<id>
                                                         GSI2PK=PENDING#<method>, GSI2SK=PAY#<id> (only while pending)
    balance         CUST#<customer>     BALANCE          bal_<CUR> = completed sum in minor units
    event dedupe    EVENT#<source>#<id> EVENT            expires_at (TTL)

Payment ids are ULIDs, so `PAY#<id>` sorts by creation time and `from`/`to` become key conditions.
Every money-moving write is one TransactWriteItems with conditions, so retries and races are safe.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from payments.config import settings
from payments.errors import NotFound
from payments.ids import PREFIX as PAYMENT_ID_PREFIX
from payments.ids import id_bound
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus, iso_z, utcnow
from payments.money import Money
from payments.status import Cause, TransitionRefused, decide

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

Item = dict[str, Any]

EVENT_TTL_SECONDS = 90 * 24 * 3600  # longer than any gateway retries (PayPal: 3 days)
_MAX_TRANSITION_ATTEMPTS = 4


def dynamodb_client() -> DynamoDBClient:
    import boto3

    return boto3.client("dynamodb")


# ---- keys -----------------------------------------------------------------------------------------


def customer_pk(customer_id: str) -> str:
    return f"CUST#{customer_id}"


def payment_sk(payment_id: str) -> str:
    return f"PAY#{payment_id}"


BALANCE_SK = "BALANCE"


def _status_pk(customer_id: str, status: PaymentStatus) -> str:
    return f"CUST#{customer_id}#{status.value}"


def _pending_pk(method: PaymentMethod) -> str:
    return f"PENDING#{method.value}"


# ---- item <-> Payment -----------------------------------------------------------------------------


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _history_item(entry: HistoryEntry) -> dict[str, Any]:
    m: dict[str, Any] = {"at": _s(iso_z(entry.at)), "status": _s(entry.status.value), "by": _s(entry.by)}
    if entry.note:
        m["note"] = _s(entry.note)
    return {"M": m}


def to_item(payment: Payment) -> Item:
    item: Item = {
        "PK": _s(customer_pk(payment.customer_id)),
        "SK": _s(payment_sk(payment.id)),
        "GSI1PK": _s(_status_pk(payment.customer_id, payment.status)),
        "GSI1SK": _s(payment_sk(payment.id)),
        "type": _s("payment"),
        "id": _s(payment.id),
        "customer_id": _s(payment.customer_id),
        "created_at": _s(iso_z(payment.created_at)),
        "amount_minor": _n(payment.amount_minor),
        "currency": _s(payment.currency),
        "status": _s(payment.status.value),
        "method": _s(payment.method.value),
        "description": _s(payment.description),
        "history": {"L": [_history_item(h) for h in payment.history]},
    }
    if payment.status is PaymentStatus.PENDING:
        item["GSI2PK"] = _s(_pending_pk(payment.method))
        item["GSI2SK"] = _s(payment_sk(payment.id))
    optional = {
        "completed_at": iso_z(payment.completed_at) if payment.completed_at else None,
        "reference": payment.reference,
        "gateway_ref": payment.gateway_ref,
        "failure_reason": payment.failure_reason,
        "card_brand": payment.card_brand,
        "card_last4": payment.card_last4,
        "refund_of": payment.refund_of,
    }
    item.update({k: _s(v) for k, v in optional.items() if v})
    return item


def _str(item: Item, name: str) -> str | None:
    value = item.get(name)
    return value["S"] if value else None


def from_item(item: Item) -> Payment:
    history = tuple(
        HistoryEntry(
            at=datetime.fromisoformat(h["M"]["at"]["S"]),
            status=PaymentStatus(h["M"]["status"]["S"]),
            by=h["M"]["by"]["S"],
            note=h["M"]["note"]["S"] if "note" in h["M"] else None,
        )
        for h in item.get("history", {}).get("L", [])
    )
    completed_at = _str(item, "completed_at")
    return Payment(
        id=item["id"]["S"],
        customer_id=item["customer_id"]["S"],
        created_at=datetime.fromisoformat(item["created_at"]["S"]),
        completed_at=datetime.fromisoformat(completed_at) if completed_at else None,
        amount_minor=int(item["amount_minor"]["N"]),
        currency=item["currency"]["S"],
        status=PaymentStatus(item["status"]["S"]),
        method=PaymentMethod(item["method"]["S"]),
        description=item.get("description", {}).get("S", ""),
        reference=_str(item, "reference"),
        gateway_ref=_str(item, "gateway_ref"),
        failure_reason=_str(item, "failure_reason"),
        card_brand=_str(item, "card_brand"),
        card_last4=_str(item, "card_last4"),
        refund_of=_str(item, "refund_of"),
        history=history,
    )


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
            pk_value = _status_pk(customer_id, status)
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
    ) -> tuple[list[Payment], str | None]:
        """One Query, newest first. Returns the payments and the last id if more may follow."""
        request = self._listing_query(customer_id, status, created_from, created_to)
        request["Limit"] = limit + 1  # one extra item tells whether another page exists
        if after is not None:
            start = {"PK": _s(customer_pk(customer_id)), "SK": _s(payment_sk(after))}
            if status is not None:
                start |= {"GSI1PK": _s(_status_pk(customer_id, status)), "GSI1SK": _s(payment_sk(after))}
            request["ExclusiveStartKey"] = start
        answer = self.client.query(**request)
        items = answer.get("Items", [])
        payments = [from_item(i) for i in items[:limit]]
        # More follows if the extra item came back, or if DynamoDB stopped early at its 1 MB page cap.
        more = len(items) > limit or "LastEvaluatedKey" in answer
        return payments, (payments[-1].id if more and payments else None)

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
                ":pk": _s(_pending_pk(method)),
                ":before": _s(payment_sk(id_bound(before, upper=False))),
            },
            Limit=limit,
        )
        return [from_item(i) for i in answer.get("Items", [])]

    def find_by_gateway_ref(self, provider: str, gateway_ref: str) -> Payment | None:
        """The payment a gateway knows as `gateway_ref` (two GetItems: pointer, then payment)."""
        item = self.client.get_item(
            TableName=self.table, Key={"PK": _s(f"GWREF#{provider}#{gateway_ref}"), "SK": _s("GWREF")}
        ).get("Item")
        if not item:
            return None
        return self.get(item["customer_id"]["S"], item["payment_id"]["S"], consistent=True)

    def attach_gateway_ref(
        self, payment: Payment, provider: str, gateway_ref: str, *, card_brand: str | None, card_last4: str | None
    ) -> None:
        """Remember the gateway's id on the payment, and a pointer from that id back to the payment."""
        values: dict[str, Any] = {":ref": _s(gateway_ref)}
        sets = ["gateway_ref = :ref"]
        for name, value in (("card_brand", card_brand), ("card_last4", card_last4)):
            if value:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = _s(value)
        self.client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"PK": _s(customer_pk(payment.customer_id)), "SK": _s(payment_sk(payment.id))},
                        "UpdateExpression": "SET " + ", ".join(sets) + " REMOVE last_error",
                        "ExpressionAttributeValues": values,
                    }
                },
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": {
                            "PK": _s(f"GWREF#{provider}#{gateway_ref}"),
                            "SK": _s("GWREF"),
                            "type": _s("gateway-ref"),
                            "customer_id": _s(payment.customer_id),
                            "payment_id": _s(payment.id),
                        },
                    }
                },
            ]
        )

    def refund_claim(self, original: Payment, refund: Money) -> Item:
        """A transaction part that counts `refund` against `original`, failing if refunds would exceed it."""
        limit = abs(original.amount_minor) - refund.minor
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"PK": _s(customer_pk(original.customer_id)), "SK": _s(payment_sk(original.id))},
                "UpdateExpression": "ADD refunded_minor :x",
                "ConditionExpression": "attribute_not_exists(refunded_minor) OR refunded_minor <= :limit",
                "ExpressionAttributeValues": {":x": _n(refund.minor), ":limit": _n(limit)},
            }
        }

    def note_error(self, payment: Payment, message: str) -> None:
        """Keep the last gateway error on a pending payment, for operators and the next retry."""
        self.client.update_item(
            TableName=self.table,
            Key={"PK": _s(customer_pk(payment.customer_id)), "SK": _s(payment_sk(payment.id))},
            UpdateExpression="SET last_error = :e",
            ExpressionAttributeValues={":e": _s(message[:500])},
        )

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
            self.client.transact_write_items(TransactItems=parts)  # type: ignore[arg-type]
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = _cancellation_codes(exc.response)
            if dedupe and reasons and reasons[-1] == "ConditionalCheckFailed":
                return False
            raise
        return True

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
        gateway_ref: str | None = None,
        current: Payment | None = None,
    ) -> TransitionOutcome:
        """Move a payment to `target` if the status rules allow it, exactly once.

        The payment update (conditioned on the status we read), the balance update and the dedupe
        marker are one transaction. A lost race re-reads and decides again. Raises NotFound or
        TransitionRefused. `current` saves the first read when the caller has just read the payment.
        """
        for _ in range(_MAX_TRANSITION_ATTEMPTS):
            # `current`: the caller's fresh read, used once; a lost race reads again.
            payment, current = current or self.require(customer_id, payment_id, consistent=True), None
            decision = decide(payment.status, target, cause)
            now = utcnow()
            parts: list[Item] = []
            if decision.apply:
                parts.append(self._status_update(payment, target, by, note, now, gateway_ref))
                if target is PaymentStatus.COMPLETED:
                    parts.append(_balance_update(self.table, customer_id, payment.money))
            if dedupe:
                parts.append(dedupe.put(self.table, payment_id))
            if not parts:
                return TransitionOutcome(payment, changed=False)
            try:
                if len(parts) == 1 and "Put" in parts[0]:
                    self.client.put_item(**parts[0]["Put"])
                else:
                    self.client.transact_write_items(TransactItems=parts)  # type: ignore[arg-type]
            except self.client.exceptions.ConditionalCheckFailedException:
                return TransitionOutcome(payment, changed=False, duplicate=True)
            except self.client.exceptions.TransactionCanceledException as exc:
                reasons = _cancellation_codes(exc.response)
                if dedupe and reasons and reasons[-1] == "ConditionalCheckFailed":
                    return TransitionOutcome(payment, changed=False, duplicate=True)
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    continue  # someone changed the status meanwhile: decide again on fresh data
                raise
            if not decision.apply:
                return TransitionOutcome(payment, changed=False)
            # The condition held, so the item is what we read plus this change: no need to read it again.
            return TransitionOutcome(_after(payment, target, by, note, now, gateway_ref), changed=True)
        raise TransitionRefused(payment.status, target, cause)

    def _status_update(
        self,
        payment: Payment,
        target: PaymentStatus,
        by: str,
        note: str | None,
        now: datetime,
        gateway_ref: str | None,
    ) -> Item:
        entry = HistoryEntry(at=now, status=target, by=by, note=note)
        names = {"#status": "status"}
        values: dict[str, Any] = {
            ":to": _s(target.value),
            ":from": _s(payment.status.value),
            ":gsi1": _s(_status_pk(payment.customer_id, target)),
            ":h": {"L": [_history_item(entry)]},
        }
        sets = ["#status = :to", "GSI1PK = :gsi1", "history = list_append(history, :h)"]
        if target is PaymentStatus.COMPLETED:
            sets.append("completed_at = :now")
            values[":now"] = _s(iso_z(now))
        if target is PaymentStatus.CANCELLED and note:
            sets.append("failure_reason = :reason")
            values[":reason"] = _s(note)
        if gateway_ref:
            sets.append("gateway_ref = :ref")
            values[":ref"] = _s(gateway_ref)
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"PK": _s(customer_pk(payment.customer_id)), "SK": _s(payment_sk(payment.id))},
                "UpdateExpression": "SET " + ", ".join(sets) + " REMOVE GSI2PK, GSI2SK",
                "ConditionExpression": "#status = :from",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }


def _after(
    payment: Payment, target: PaymentStatus, by: str, note: str | None, now: datetime, gateway_ref: str | None
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
    if gateway_ref:
        update["gateway_ref"] = gateway_ref
    return payment.model_copy(update=update)


def _cancellation_codes(response: Mapping[str, Any]) -> list[str]:
    return [str(r.get("Code", "None")) for r in response.get("CancellationReasons", [])]
