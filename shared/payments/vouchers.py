"""Vouchers: issued by operators, redeemed by customers, exactly once (API.md §4).

A code is 20 characters from a 32-letter alphabet (100 random bits), shown once at issue and stored
only as its SHA-256. Redemption is one transaction: voucher unused -> redeemed, payment put as
completed, balance added; so 20 concurrent redemptions of one code give one success.
Unknown, used, expired or other-currency codes all get the same 422, and a customer who keeps
guessing gets 429 for a while.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from payments.errors import InvalidInput, RetryLater, TooManyRequests
from payments.ids import new_payment_id
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus, iso_z, utcnow
from payments.money import Money
from payments.store import PaymentStore, customer_pk

if TYPE_CHECKING:
    from payments.checkout import Command

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 letters: 5 bits each, no 0/O/1/I
CODE_LENGTH = 20  # 100 bits
MAX_FAILURES = 5
FAILURE_WINDOW_SECONDS = 15 * 60
INVALID_VOUCHER = "the voucher code is not valid for this account and currency"


def new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def normalise(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def code_hash(code: str) -> str:
    return hashlib.sha256(normalise(code).encode()).hexdigest()


def _voucher_key(code: str) -> dict[str, Any]:
    return {"PK": {"S": f"VOUCHER#{code_hash(code)}"}, "SK": {"S": "VOUCHER"}}


@dataclass(frozen=True)
class IssuedVoucher:
    code: str
    money: Money
    expires_at: datetime | None


def issue(store: PaymentStore, money: Money, count: int, expires_at: datetime | None, by: str) -> list[IssuedVoucher]:
    """Create `count` vouchers. Each put is conditional, so a (vanishingly unlikely) hash clash is redrawn."""
    issued: list[IssuedVoucher] = []
    while len(issued) < count:
        code = new_code()
        item: dict[str, Any] = {
            **_voucher_key(code),
            "type": {"S": "voucher"},
            "state": {"S": "unused"},
            "amount_minor": {"N": str(money.minor)},
            "currency": {"S": money.currency},
            "issued_at": {"S": iso_z(utcnow())},
            "issued_by": {"S": by},
        }
        if expires_at:
            item["expires_epoch"] = {"N": str(int(expires_at.timestamp()))}
        try:
            store.client.put_item(TableName=store.table, Item=item, ConditionExpression="attribute_not_exists(PK)")
        except store.client.exceptions.ConditionalCheckFailedException:
            continue
        issued.append(IssuedVoucher(code, money, expires_at))
    return issued


def _failure_key(customer_id: str) -> dict[str, Any]:
    return {"PK": {"S": customer_pk(customer_id)}, "SK": {"S": "VOUCHER_FAILURES"}}


def _count_attempt(store: PaymentStore, customer_id: str, now: int) -> None:
    """Count this redemption attempt before its code is checked, or refuse it (429).

    Counting first, with a conditional increment, is what makes the limit hold under concurrency: of 30
    parallel guesses at most MAX_FAILURES get past here within a window. A redemption that succeeds gives its
    attempt back in its own transaction (`_give_back_attempt`), so only failures use the allowance up.
    One UpdateItem in the usual case: it opens the first window, or counts in the current one.
    """
    key = _failure_key(customer_id)
    end = now + FAILURE_WINDOW_SECONDS
    for _ in range(5):  # each turn counts, refuses, or loses a race to replace an expired window
        try:
            store.client.update_item(
                TableName=store.table,
                Key=key,
                UpdateExpression="SET #count = if_not_exists(#count, :zero) + :one, "
                "window_end = if_not_exists(window_end, :end), expires_at = if_not_exists(expires_at, :ttl)",
                ConditionExpression="attribute_not_exists(window_end) OR (window_end > :now AND #count < :max)",
                ExpressionAttributeNames={"#count": "count"},
                ExpressionAttributeValues={
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                    ":end": {"N": str(end)},
                    ":ttl": {"N": str(end + 3600)},
                    ":now": {"N": str(now)},
                    ":max": {"N": str(MAX_FAILURES)},
                },
            )
            return
        except store.client.exceptions.ConditionalCheckFailedException:
            pass
        item = store.client.get_item(TableName=store.table, Key=key, ConsistentRead=True).get("Item")
        if item is None:
            continue  # the counter expired (TTL) meanwhile: open a window
        if int(item["window_end"]["N"]) > now:
            if int(item["count"]["N"]) >= MAX_FAILURES:
                raise _locked_out(int(item["window_end"]["N"]), now)
            continue  # an attempt was given back meanwhile: count again
        try:  # the window is over: replace exactly that one with a new window holding this attempt
            store.client.put_item(
                TableName=store.table,
                Item={**key, "count": {"N": "1"}, "window_end": {"N": str(end)}, "expires_at": {"N": str(end + 3600)}},
                ConditionExpression="window_end = :seen",
                ExpressionAttributeValues={":seen": item["window_end"]},
            )
            return
        except store.client.exceptions.ConditionalCheckFailedException:
            continue  # another attempt opened the new window first: count in it
    raise RetryLater("too many voucher attempts at once; retry in a moment", http_status=503)


def _locked_out(window_end: int, now: int) -> TooManyRequests:
    """429 saying until when: `locked_until` (ISO 8601) and Retry-After, so a page can show the end."""
    wait = max(window_end - now, 1)
    until = iso_z(datetime.fromtimestamp(window_end, UTC))
    refused = TooManyRequests(
        f"too many invalid voucher codes; try again in {wait // 60 + 1} minutes (at {until})", locked_until=until
    )
    refused.headers = {"Retry-After": str(wait)}
    return refused


def _give_back_attempt(store: PaymentStore, customer_id: str) -> dict[str, Any]:
    """A transaction part for a successful redemption: its attempt does not count against the limit."""
    return {
        "Update": {
            "TableName": store.table,
            "Key": _failure_key(customer_id),
            "UpdateExpression": "ADD #count :less",
            "ExpressionAttributeNames": {"#count": "count"},
            "ExpressionAttributeValues": {":less": {"N": "-1"}},
        }
    }


def redeem(store: PaymentStore, command: Command) -> Payment:
    """Redeem `command.voucher_code` for the customer in one transaction. Raises InvalidInput (422) or 429."""
    assert command.voucher_code is not None
    now = int(time.time())
    _count_attempt(store, command.customer_id, now)
    item = store.client.get_item(TableName=store.table, Key=_voucher_key(command.voucher_code), ConsistentRead=True)
    voucher = item.get("Item")
    usable = (
        voucher is not None
        and voucher["state"]["S"] == "unused"
        and voucher["currency"]["S"] == command.currency
        and ("expires_epoch" not in voucher or int(voucher["expires_epoch"]["N"]) > now)
    )
    if not usable or voucher is None:
        raise InvalidInput("voucher_code", INVALID_VOUCHER)
    moment = utcnow()
    ending = normalise(command.voucher_code)[-4:]
    payment = Payment(
        id=new_payment_id(moment),
        customer_id=command.customer_id,
        created_at=moment,
        completed_at=moment,
        amount_minor=int(voucher["amount_minor"]["N"]),
        currency=command.currency,
        status=PaymentStatus.COMPLETED,
        method=PaymentMethod.VOUCHER,
        description=command.description if command.described else f"Voucher ending {ending}",
        reference=f"VOUCHER-{ending}",
        history=(HistoryEntry(at=moment, status=PaymentStatus.COMPLETED, by=command.actor, note="voucher redeemed"),),
    )
    claim = {
        "Update": {
            "TableName": store.table,
            "Key": _voucher_key(command.voucher_code),
            "UpdateExpression": "SET #state = :redeemed, redeemed_by = :customer, payment_id = :pid, redeemed_at = :at",
            "ConditionExpression": "#state = :unused AND currency = :cur AND "
            "(attribute_not_exists(expires_epoch) OR expires_epoch > :now)",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": {
                ":redeemed": {"S": "redeemed"},
                ":unused": {"S": "unused"},
                ":customer": {"S": command.customer_id},
                ":pid": {"S": payment.id},
                ":at": {"S": iso_z(moment)},
                ":cur": {"S": command.currency},
                ":now": {"N": str(now)},
            },
        }
    }
    try:
        store.add(payment, extra=[claim, _give_back_attempt(store, command.customer_id)])
    except store.client.exceptions.TransactionCanceledException as exc:
        raise InvalidInput("voucher_code", INVALID_VOUCHER) from exc
    return payment


def parse_expiry(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput("expires_at", "expires_at must be an ISO 8601 time such as 2027-01-31T00:00:00Z") from exc
    if moment.tzinfo is None:
        raise InvalidInput("expires_at", "expires_at must include a time zone (Z)")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:00:00-05:00 is in the year 10000 in UTC
        raise InvalidInput(
            "expires_at", "expires_at is out of range: in UTC it must fall within the years 0001 to 9999"
        ) from exc
    if moment <= datetime.now(UTC):
        raise InvalidInput("expires_at", "expires_at must be in the future")
    return moment
