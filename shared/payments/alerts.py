"""Low-balance alerts (docs/alerts.md): a customer's threshold and reset threshold, the crossing rule judged from the
balance item's stream records, the `balance.low` event and its e-mail.

The rule, with hysteresis: an armed alert fires when a change takes the completed balance from at or above the
threshold to below it (one `balance.low` event, one e-mail) and is then disarmed; it is armed again only when a
change takes the balance above the reset threshold. A save arms it if the balance is at or above the threshold
then; a balance already below when saved is not alerted until it has risen above the reset threshold and falls
again.

Each balance record is judged from its own old and new images, in stream order (one item's records are in order
within its shard), and the alert's state changes only through the store's conditioned writes: so any number of
concurrent writers make exactly one event per crossing, and a redelivered record makes none.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from payments import account
from payments.emails import Email
from payments.errors import InvalidInput, RetryLater
from payments.money import Money, MoneyError, parse_currency
from payments.outbox import BALANCE_LOW, OutboxEvent
from payments.store.records import BalanceRecord, LowBalanceAlert

if TYPE_CHECKING:
    from payments.store import Store

MAX_EMAILS = 10
_ATTEMPTS = 4  # a record judged again after the alert changed under it (a save meanwhile)


# ---- the routes' JSON ------------------------------------------------------------------------------------------


class AlertIn(BaseModel):
    """PUT /alerts/low-balance: the whole alert (PUT replaces it); `"threshold": null` turns it off."""

    model_config = ConfigDict(extra="forbid")

    currency: str | None = Field(None, description="ISO 4217; the account currency if left out")
    threshold: str | Decimal | int | None = Field(
        description='Alert when the balance falls below this (major units, e.g. "12.50"; may be 0 or negative); '
        "null turns the alert off"
    )
    reset_threshold: str | Decimal | int | None = Field(
        None, description="Alert again only after the balance has risen above this; the threshold if left out"
    )
    emails: list[str] = Field(default_factory=list, description=f"Who is e-mailed, at most {MAX_EMAILS}")


class AlertOut(BaseModel):
    """GET/PUT /alerts/low-balance's answer: what is set (amounts in the currency's exact minor digits)."""

    currency: str
    threshold: str | None
    reset_threshold: str | None
    emails: list[str]
    state: Literal["armed", "below"] | None = Field(
        None, description="armed: the next fall below the threshold alerts; below: alerted (or saved below)"
    )


def _amount(value: object, currency: str, field: str) -> int:
    try:
        return Money.parse(value, currency, field=field).minor
    except MoneyError as exc:
        raise InvalidInput(field, exc.message) from None


def parse(body: AlertIn, account_currency: str) -> tuple[str, LowBalanceAlert | None]:
    """(the alert's currency, the alert; None to turn it off). InvalidInput (422) names the first bad field."""
    try:
        currency = parse_currency(body.currency, "currency") if body.currency is not None else account_currency
    except MoneyError as exc:
        raise InvalidInput("currency", exc.message) from None
    if body.threshold is None:
        return currency, None
    threshold = _amount(body.threshold, currency, "threshold")
    reset = threshold if body.reset_threshold is None else _amount(body.reset_threshold, currency, "reset_threshold")
    if reset < threshold:
        raise InvalidInput("reset_threshold", "reset_threshold must not be below threshold")
    if len(body.emails) > MAX_EMAILS:
        raise InvalidInput("emails", f"emails holds at most {MAX_EMAILS} addresses")
    for i, address in enumerate(body.emails):
        if not isinstance(address, str) or not account.valid_email(address):
            raise InvalidInput(f"emails.{i}", f"emails.{i} is not an e-mail address")
    emails = tuple(dict.fromkeys(body.emails))
    return currency, LowBalanceAlert(currency, threshold, reset, emails, armed=False)


def view(alert: LowBalanceAlert | None, account_currency: str) -> dict[str, Any]:
    """The routes' answer; with no alert set: the account currency, nulls and no e-mails."""
    if alert is None:
        return AlertOut(currency=account_currency, threshold=None, reset_threshold=None, emails=[]).model_dump(
            exclude={"state"}
        )
    return AlertOut(
        currency=alert.currency,
        threshold=Money(alert.threshold_minor, alert.currency).format(),
        reset_threshold=Money(alert.reset_minor, alert.currency).format(),
        emails=list(alert.emails),
        state="armed" if alert.armed else "below",
    ).model_dump()


def get(store: Store, customer_id: str) -> dict[str, Any]:
    """GET /alerts/low-balance: the caller's own alert."""
    currency = account.for_customer(store, customer_id).account_currency
    return view(store.low_balance_alert(customer_id), currency)


def save(store: Store, customer_id: str, body: AlertIn) -> dict[str, Any]:
    """PUT /alerts/low-balance: replace the alert (or turn it off); nothing is stored if a field is bad. It is armed
    if the balance is at or above the threshold now, judged at the balance's version and saved only while the
    balance is still at it (else judged again)."""
    account_currency = account.for_customer(store, customer_id).account_currency
    currency, alert = parse(body, account_currency)
    if alert is None:
        store.delete_low_balance_alert(customer_id)
        return view(None, account_currency)
    for _ in range(_ATTEMPTS):
        balance, version = store.balance_state(customer_id, currency)
        saved = store.put_low_balance_alert(
            customer_id, alert._replace(armed=balance >= alert.threshold_minor, seen_version=version)
        )
        if saved is not None:
            return view(saved, account_currency)
    raise RetryLater("the balance kept changing while the alert was saved; send it again", http_status=503)


# ---- the rule ---------------------------------------------------------------------------------------------------


class Crossing(StrEnum):
    FIRE = "fire"  # armed, and the change took the balance from >= threshold to < threshold
    REARM = "rearm"  # not armed, and the change took the balance above the reset threshold


def judge(alert: LowBalanceAlert, old_minor: int, new_minor: int) -> Crossing | None:
    """What one change of the balance (old -> new, in the alert's currency) does to the alert. Pure."""
    if alert.armed and old_minor >= alert.threshold_minor > new_minor:
        return Crossing.FIRE
    if not alert.armed and new_minor > alert.reset_minor:
        return Crossing.REARM
    return None


def event_id(customer_id: str, currency: str, sequence: str) -> str:
    """`evt_` and a hash of the customer, the currency and the stream record's sequence number: a redelivered record
    makes the same id, so the outbox's conditional put keeps one event."""
    seed = f"{BALANCE_LOW}:{customer_id}:{currency}:{sequence}"
    return "evt_" + hashlib.sha256(seed.encode()).hexdigest()[:32]


def low_event(record: BalanceRecord, alert: LowBalanceAlert) -> OutboxEvent:
    """The `balance.low` event of `record` falling below `alert`'s threshold (docs/events.md)."""
    body = {
        "balance": {"currency": record.currency, "amount": Money(record.new_minor, record.currency).format()},
        "threshold": Money(alert.threshold_minor, alert.currency).format(),
        "reset_threshold": Money(alert.reset_minor, alert.currency).format(),
        "payment_id": record.payment_id,
    }
    return OutboxEvent(
        event_id(record.customer_id, record.currency, record.sequence),
        BALANCE_LOW,
        record.customer_id,
        record.currency,
        record.updated_at,
        json.dumps(body, separators=(",", ":"), sort_keys=True),
    )


class Outcome(StrEnum):
    NONE = "none"  # no alert in this currency, or nothing crossed
    FIRED = "fired"  # the balance.low event is in the outbox, the alert disarmed
    REARMED = "rearmed"
    SEEN = "seen"  # this record (or a later save) was accounted for before: a redelivery


def on_balance_change(store: Store, record: BalanceRecord) -> Outcome:
    """One stream record of the customer's balance item: the balance after it on the payment that made it (first
    writer wins), then the alert's crossing, if any, written once. Raises RetryLater if the alert kept changing
    under it (the record is delivered again)."""
    store.set_balance_after(record.customer_id, record.payment_id, record.new_minor)
    for _ in range(_ATTEMPTS):
        alert = store.low_balance_alert(record.customer_id)
        if alert is None or alert.currency != record.currency:
            return Outcome.NONE
        if record.version <= alert.seen_version:
            return Outcome.SEEN
        crossing = judge(alert, record.old_minor, record.new_minor)
        if crossing is None:
            return Outcome.NONE
        if crossing is Crossing.FIRE:
            written = store.disarm_low_balance(record.customer_id, alert, record.version, low_event(record, alert))
            if written is None:
                return Outcome.SEEN
            if written:
                return Outcome.FIRED
        elif store.rearm_low_balance(record.customer_id, alert, record.version):
            return Outcome.REARMED
    raise RetryLater("the low-balance alert kept changing while a balance record was judged", http_status=503)


# ---- the e-mail -------------------------------------------------------------------------------------------------


def low_balance_email(store: Store, detail: dict[str, Any], *, wait: bool = True) -> Email | None:
    """The e-mail of a `balance.low` event's detail: to the alert's addresses; None if the alert has none, was turned
    off or moved to another currency since. `key` is the event id (one e-mail per event). It waits for nothing
    (`wait`, the notices' contract, is not needed)."""
    customer_id = str(detail["customer_id"])
    alert = store.low_balance_alert(customer_id)
    balance = detail["balance"]
    if alert is None or not alert.emails or alert.currency != balance["currency"]:
        return None
    currency = balance["currency"]
    subject = f"Your balance is low: {balance['amount']} {currency}"
    text = (
        f"Your {currency} balance is {balance['amount']} {currency}, below your alert threshold of "
        f"{detail['threshold']} {currency}.\n\n"
        f"You will not be alerted again until it has risen above {detail['reset_threshold']} {currency}.\n"
        f"The change that took it below: payment {detail['payment_id']}.\n"
    )
    return Email(to=alert.emails, subject=subject, text=text, key=str(detail["event_id"]))
