"""`MemoryStore`: the store in a few dicts, for unit tests of the use cases. No DynamoDB, no boto3.

The same public methods as `PaymentStore`, with the same conditions: each write checks them and changes
everything or nothing under one lock, as a DynamoDB transaction would, so races, duplicates and lost claims
behave alike. Where `PaymentStore` lets a botocore error through (a condition nothing explains), this raises
`ConditionFailed`. Not modelled: DynamoDB's 1 MB pages and the search's Query budget (a page is always full),
TTL deletion, throttling.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from payments import outbox
from payments.ids import PREFIX as PAYMENT_ID_PREFIX
from payments.ids import id_bound
from payments.models import Payment, PaymentMethod, PaymentStatus, iso_z, utcnow
from payments.money import Money
from payments.outbox import OutboxEvent
from payments.status import Change, counts_in_balance, refundable
from payments.store.base import StoreBase, Written
from payments.store.codec import search_text, watch_of
from payments.store.export_records import ExportRecord, ExportStatus
from payments.store.records import (
    AutoTopup,
    BalanceCeiling,
    Dedupe,
    DisputeWritten,
    LowBalanceAlert,
    Mandate,
    RefundWritten,
    SavedCard,
    Voucher,
)

PaymentKey = tuple[str, str]  # (customer id, payment id)


class ConditionFailed(Exception):
    """A write's condition failed where `PaymentStore` would let DynamoDB's error through."""


@dataclass
class _Attempts:
    count: int = 0
    window_end: int | None = None


@dataclass
class _VoucherItem:
    voucher: Voucher
    issued_by: str
    redeemed_by: str | None = None
    payment_id: str | None = None


@dataclass
class Tables:
    """Everything the store holds, by item type (docs/data-model.md), for tests to look at."""

    payments: dict[PaymentKey, Payment] = field(default_factory=dict)
    last_errors: dict[PaymentKey, str] = field(default_factory=dict)
    balances: dict[str, dict[str, int]] = field(default_factory=dict)
    idempotency_pointers: dict[tuple[str, str], str] = field(default_factory=dict)
    gateway_pointers: dict[tuple[str, str], PaymentKey] = field(default_factory=dict)
    bank_references: dict[str, str] = field(default_factory=dict)
    events: dict[tuple[str, str], dict[str, str | None]] = field(default_factory=dict)
    vouchers: dict[str, _VoucherItem] = field(default_factory=dict)
    voucher_attempts: dict[str, _Attempts] = field(default_factory=dict)
    exports: dict[tuple[str, str], ExportRecord] = field(default_factory=dict)
    account_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: dict[str, OutboxEvent] = field(default_factory=dict)  # by event id, in the order written
    balance_versions: dict[str, int] = field(default_factory=dict)  # the balance item's `version`
    alerts: dict[str, LowBalanceAlert] = field(default_factory=dict)  # low-balance alerts, by customer
    emails: dict[str, dict[str, Any]] = field(default_factory=dict)  # e-mail markers by key
    # saved cards (docs/saved-cards.md): the Stripe Customer item by customer, cards by (customer, card id), the
    # SetupIntent pointers by (provider, seti)
    stripe_customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    cards: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    setup_pointers: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    auto_topups: dict[str, AutoTopup] = field(default_factory=dict)  # by customer
    mandates: dict[tuple[str, str], Mandate] = field(default_factory=dict)  # (customer, mandate id)


def _between(payment: Payment, created_from: datetime | None, created_to: datetime | None) -> bool:
    """The listing's key condition: the id between the bounds of `from` and `to` (as `PaymentStore` queries)."""
    lower = id_bound(created_from, upper=False) if created_from else ""
    upper = id_bound(created_to, upper=True) if created_to else "\U0010ffff"
    return lower <= payment.id <= upper


class MemoryStore(StoreBase):
    def __init__(self) -> None:
        self.tables = Tables()
        self._lock = threading.RLock()

    # ---- payments and balances: reads --------------------------------------------------------------

    def get(self, customer_id: str, payment_id: str, *, consistent: bool = False) -> Payment | None:
        if not payment_id.startswith(PAYMENT_ID_PREFIX) or len(payment_id) > 64:
            return None
        with self._lock:
            return self.tables.payments.get((customer_id, payment_id))

    def _listing(
        self,
        customer_id: str,
        status: PaymentStatus | None,
        created_from: datetime | None,
        created_to: datetime | None,
        search: str | None,
    ) -> list[Payment]:
        """The customer's matching payments, newest first."""
        with self._lock:
            payments = [p for (customer, _), p in self.tables.payments.items() if customer == customer_id]
        return sorted(
            (
                p
                for p in payments
                if (status is None or p.status is status)
                and _between(p, created_from, created_to)
                and (not search or search in search_text(p))
            ),
            key=lambda p: p.id,
            reverse=True,
        )

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
        listed = self._listing(customer_id, status, created_from, created_to, search)
        if after is not None:
            listed = [p for p in listed if p.id < after]
        payments = listed[:limit]
        return payments, payments[-1].id if len(listed) > limit else None

    def summary(
        self,
        customer_id: str,
        *,
        status: PaymentStatus | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        search: str | None = None,
    ) -> tuple[dict[PaymentStatus, int], list[Money]]:
        counts = dict.fromkeys(PaymentStatus, 0)
        totals: dict[str, int] = {}
        for payment in self._listing(customer_id, status, created_from, created_to, search):
            counts[payment.status] += 1
            if counts_in_balance(payment.status):
                totals[payment.currency] = totals.get(payment.currency, 0) + payment.amount_minor
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
        return min(cap, len(self._listing(customer_id, status, created_from, created_to, None)))

    def balances_and_settings(self, customer_id: str) -> tuple[list[Money], dict[str, Any] | None]:
        return self.balances(customer_id), self.account_settings(customer_id)

    def account_settings(self, customer_id: str) -> dict[str, Any] | None:
        document = self.tables.account_settings.get(customer_id)
        return dict(document) if document is not None else None

    def put_account_settings(self, customer_id: str, document: dict[str, Any], by: str) -> None:
        with self._lock:
            self.tables.account_settings[customer_id] = dict(document)

    def claim_email(self, email_key: str, customer_id: str, *, hold_seconds: float) -> bool:
        now = int(time.time() * 1000)
        with self._lock:
            marker = self.tables.emails.get(email_key)
            if marker is not None and (marker["state"] != "claimed" or marker["claim_until"] >= now):
                return False
            claims = (marker or {}).get("claims", 0) + 1
            self.tables.emails[email_key] = {
                "state": "claimed",
                "claim_until": self.claim_until(hold_seconds),
                "claims": claims,
                "customer_id": customer_id,
            }
            return True

    def mark_email_sent(self, email_key: str, message_id: str) -> None:
        with self._lock:
            marker = self.tables.emails.setdefault(email_key, {"claims": 0})
            marker.pop("claim_until", None)
            marker.update(state="sent", message_id=message_id, sent_at=iso_z(utcnow()))

    def release_email(self, email_key: str) -> None:
        with self._lock:
            marker = self.tables.emails.get(email_key)
            if marker is not None and marker["state"] == "claimed":
                marker["claim_until"] = 0

    def email_marker(self, email_key: str) -> dict[str, object] | None:
        with self._lock:
            marker = self.tables.emails.get(email_key)
            return dict(marker) if marker is not None else None

    def balances(self, customer_id: str) -> list[Money]:
        with self._lock:
            held = dict(self.tables.balances.get(customer_id, {}))
        return [Money(minor, currency) for currency, minor in sorted(held.items())]

    def pending_before(self, method: PaymentMethod, before: datetime, *, limit: int) -> list[Payment]:
        bound = id_bound(before, upper=False)
        with self._lock:
            pending = [
                p
                for p in self.tables.payments.values()
                if p.status is PaymentStatus.PENDING and p.method is method and p.id < bound
            ]
        return sorted(pending, key=lambda p: p.id)[:limit]

    def watched(self, kind: str, *, limit: int, after: str | None = None) -> list[Payment]:
        with self._lock:
            found = [p for p in self.tables.payments.values() if watch_of(p) == kind and p.id > (after or "")]
        return sorted(found, key=lambda p: p.id)[:limit]

    def find_by_gateway_ref(self, provider: str, gateway_ref: str) -> Payment | None:
        with self._lock:
            pointed = self.tables.gateway_pointers.get((provider, gateway_ref))
            return self.tables.payments.get(pointed) if pointed else None

    def find_by_request(self, customer_id: str, request_key: str) -> Payment | None:
        with self._lock:
            payment_id = self.tables.idempotency_pointers.get((customer_id, request_key))
        return self.require(customer_id, payment_id, consistent=True) if payment_id else None

    # ---- payments and balances: writes -------------------------------------------------------------

    def _credit(self, customer_id: str, money: Money) -> None:
        held = self.tables.balances.setdefault(customer_id, {})
        held[money.currency] = held.get(money.currency, 0) + money.minor
        self.tables.balance_versions[customer_id] = self.tables.balance_versions.get(customer_id, 0) + 1

    def _event_is_new(self, dedupe: Dedupe | None) -> bool:
        return dedupe is None or (dedupe.source, dedupe.key) not in self.tables.events

    def _record(self, dedupe: Dedupe | None, payment_id: str | None, **more: str) -> None:
        if dedupe is not None:
            self.tables.events[(dedupe.source, dedupe.key)] = {"payment_id": payment_id, **more}

    def _put(self, payment: Payment) -> None:
        """Put a new payment, moving the balance if it is completed, with its outbound event if it is settled (the
        caller checked it is new)."""
        self.tables.payments[(payment.customer_id, payment.id)] = payment
        if payment.status is PaymentStatus.COMPLETED:
            self._credit(payment.customer_id, payment.money)
        self._outbox(outbox.of_new(payment))

    def _outbox(self, event: OutboxEvent | None) -> None:
        """The outbox item: put once per event id (as `PaymentStore`'s conditional put)."""
        if event is not None:
            if event.event_id in self.tables.outbox:
                raise ConditionFailed(f"outbox event {event.event_id} exists")
            self.tables.outbox[event.event_id] = event

    def outbox_event(self, event_id: str) -> OutboxEvent | None:
        with self._lock:
            return self.tables.outbox.get(event_id)

    def _pointer_free(self, provider: str, gateway_ref: str, payment: Payment) -> bool:
        """A gateway pointer may be put if it is new or already names this payment: it never moves."""
        pointed = self.tables.gateway_pointers.get((provider, gateway_ref))
        return pointed is None or pointed == (payment.customer_id, payment.id)

    def add(self, payment: Payment, *, dedupe: Dedupe | None = None) -> bool:
        with self._lock:
            if (payment.customer_id, payment.id) in self.tables.payments:
                raise ConditionFailed(f"payment {payment.id} exists")
            if not self._event_is_new(dedupe):
                return False
            self._put(payment)
            self._record(dedupe, payment.id)
        return True

    def put_pending(
        self,
        payment: Payment,
        request_key: str,
        *,
        reference: str | None = None,
        gateway_ref: tuple[str, str] | None = None,
    ) -> tuple[Payment, bool]:
        key = (payment.customer_id, payment.id)
        with self._lock:
            possible = (
                key not in self.tables.payments
                and (payment.customer_id, request_key) not in self.tables.idempotency_pointers
                and (gateway_ref is None or self._pointer_free(*gateway_ref, payment))
                and (reference is None or reference not in self.tables.bank_references)
            )
            if possible:
                self._put(payment)
                self.tables.idempotency_pointers[(payment.customer_id, request_key)] = payment.id
                if gateway_ref:
                    self.tables.gateway_pointers[gateway_ref] = key
                if reference:
                    self.tables.bank_references[reference] = payment.id
                return payment, True
        earlier = self.find_by_request(payment.customer_id, request_key)
        if earlier is None:
            raise ConditionFailed("the bank reference or the gateway reference is taken")
        return earlier, False

    def record_refund(self, refund: Payment, original: Payment, dedupe: Dedupe) -> RefundWritten:
        key = (original.customer_id, original.id)
        with self._lock:
            if not self._event_is_new(dedupe):
                return RefundWritten.DUPLICATE
            stored = self.tables.payments.get(key)
            amount = -refund.amount_minor
            if (
                stored is None
                or not refundable(stored.status)
                or stored.refunded_minor + amount > abs(stored.amount_minor)
                or (refund.customer_id, refund.id) in self.tables.payments
            ):
                return RefundWritten.REFUSED
            self._put(refund)
            self.tables.payments[key] = stored.model_copy(
                update={"refunded_minor": stored.refunded_minor + amount, "refund_ids": stored.refund_ids | {refund.id}}
            )
            self._record(dedupe, refund.id)
        return RefundWritten.RECORDED

    def record_dispute_funds(self, entry: Payment, original: Payment, marker: Dedupe) -> DisputeWritten:
        withdrawn = entry.method is PaymentMethod.CHARGEBACK
        this, other = ("withdrawn", "reinstated") if withdrawn else ("reinstated", "withdrawn")
        x = abs(entry.amount_minor)
        key = (original.customer_id, original.id)
        with self._lock:
            funds = self.tables.events.setdefault((marker.source, marker.key), {"payment_id": original.id})
            if funds.get(this):
                return DisputeWritten.DUPLICATE
            if bool(funds.get(other)) is withdrawn:
                funds[this] = "offset"  # the opposite came first (or a reinstatement precedes any withdrawal)
                return DisputeWritten.OFFSET
            stored = self.tables.payments.get(key)
            if stored is None:
                return DisputeWritten.REFUSED
            if withdrawn and (not refundable(stored.status) or stored.refunded_minor + x > abs(stored.amount_minor)):
                return DisputeWritten.REFUSED
            if not withdrawn and (funds.get(other) == "offset" or stored.charged_back_minor < x):
                return DisputeWritten.REFUSED
            sign = 1 if withdrawn else -1
            self._put(entry)
            self.tables.payments[key] = stored.model_copy(
                update={
                    "refunded_minor": stored.refunded_minor + sign * x,
                    "charged_back_minor": stored.charged_back_minor + sign * x,
                    "refund_ids": stored.refund_ids | {entry.id},
                }
            )
            funds[this] = entry.id
        return DisputeWritten.RECORDED

    def dispute_funds(self, marker: Dedupe) -> tuple[str | None, str | None]:
        with self._lock:
            funds = self.tables.events.get((marker.source, marker.key), {})
            return funds.get("withdrawn"), funds.get("reinstated")

    def _write_change(self, change: Change, dedupe: Dedupe | None) -> Written:
        key = (change.before.customer_id, change.before.id)
        with self._lock:
            if not self._event_is_new(dedupe):
                return Written.DUPLICATE
            if change.changed:
                stored = self.tables.payments.get(key)
                if stored is None or (stored.status, stored.amount_minor) != (
                    change.before.status,
                    change.before.amount_minor,
                ):
                    return Written.LOST
                original_key = (change.before.customer_id, change.before.refund_of or "")
                original = self.tables.payments.get(original_key) if change.released_minor else None
                if change.released_minor and (original is None or original.refunded_minor < change.released_minor):
                    raise RuntimeError("the original's refunds do not hold this refund")  # as DynamoDB's condition
                self.tables.payments[key] = _changed(stored, change)
                if change.balance_delta is not None:
                    self._credit(change.before.customer_id, change.balance_delta)
                if original is not None:
                    released = original.refunded_minor - change.released_minor
                    self.tables.payments[original_key] = original.model_copy(update={"refunded_minor": released})
                self._outbox(outbox.of_change(change))
            self._record(dedupe, change.before.id)
        return Written.WRITTEN

    # ---- the gateway object of a payment -----------------------------------------------------------

    def claim_gateway_object(
        self, payment: Payment, *, provider: str, hold_seconds: float, ref: Callable[[int], str | None]
    ) -> Payment | None:
        attempt = payment.gateway_attempts + 1
        now_ms = int(time.time() * 1000)
        chosen = ref(attempt)
        until = self.claim_until(hold_seconds)
        key = (payment.customer_id, payment.id)
        with self._lock:
            stored = self.tables.payments.get(key)
            if (
                stored is None
                or stored.status is not PaymentStatus.PENDING
                or stored.gateway_ref is not None
                or (stored.gateway_claim_until is not None and stored.gateway_claim_until >= now_ms)
                or stored.gateway_attempts != payment.gateway_attempts
                or (chosen is not None and not self._pointer_free(provider, chosen, payment))
            ):
                return None
            refs = stored.gateway_refs | {chosen} if chosen else stored.gateway_refs
            self.tables.payments[key] = stored.model_copy(
                update={"gateway_attempts": attempt, "gateway_claim_until": until, "gateway_refs": refs}
            )
            if chosen:
                self.tables.gateway_pointers[(provider, chosen)] = key
        refs = payment.gateway_refs | {chosen} if chosen else payment.gateway_refs
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
        key = (payment.customer_id, payment.id)
        known = {"card_brand": card_brand, "card_last4": card_last4, "description": description}
        recorded = {name: value for name, value in known.items() if value}
        with self._lock:
            stored = self.tables.payments.get(key)
            if (
                stored is None
                or stored.gateway_ref is not None
                or stored.gateway_attempts != payment.gateway_attempts
                or not self._pointer_free(provider, gateway_ref, payment)
            ):
                return None
            update: dict[str, Any] = {
                "gateway_ref": gateway_ref,
                "gateway_refs": stored.gateway_refs | {gateway_ref},
                "gateway_claim_until": None,
                **recorded,
            }
            if next_action:
                update["next_action"] = dict(next_action)
            self.tables.payments[key] = stored.model_copy(update=update)
            self.tables.last_errors.pop(key, None)
            self.tables.gateway_pointers[(provider, gateway_ref)] = key
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
        key = (payment.customer_id, payment.id)
        with self._lock:
            stored = self.tables.payments.get(key)
            if stored is None or stored.gateway_attempts != payment.gateway_attempts:
                return
            self.tables.payments[key] = stored.model_copy(update={"gateway_claim_until": None})
            self.tables.last_errors[key] = problem[:500]

    # ---- low-balance alerts ------------------------------------------------------------------------

    def low_balance_alert(self, customer_id: str) -> LowBalanceAlert | None:
        with self._lock:
            return self.tables.alerts.get(customer_id)

    def balance_state(self, customer_id: str, currency: str) -> tuple[int, int]:
        with self._lock:
            held = self.tables.balances.get(customer_id, {})
            return held.get(currency, 0), self.tables.balance_versions.get(customer_id, 0)

    def put_low_balance_alert(self, customer_id: str, alert: LowBalanceAlert) -> LowBalanceAlert | None:
        saved = alert._replace(rev=uuid.uuid4().hex, updated_at=iso_z(utcnow()))
        with self._lock:
            if self.tables.balance_versions.get(customer_id, 0) != alert.seen_version:
                return None
            self.tables.alerts[customer_id] = saved
        return saved

    def delete_low_balance_alert(self, customer_id: str) -> None:
        with self._lock:
            self.tables.alerts.pop(customer_id, None)

    def _as_judged(self, customer_id: str, alert: LowBalanceAlert, version: int) -> bool:
        held = self.tables.alerts.get(customer_id)
        return held is not None and held.rev == alert.rev and held.armed is alert.armed and held.seen_version < version

    def disarm_low_balance(
        self, customer_id: str, alert: LowBalanceAlert, version: int, event: OutboxEvent
    ) -> bool | None:
        with self._lock:
            if event.event_id in self.tables.outbox:
                return None
            if not self._as_judged(customer_id, alert, version):
                return False
            self.tables.alerts[customer_id] = self.tables.alerts[customer_id]._replace(
                armed=False, seen_version=version
            )
            self._outbox(event)
        return True

    def rearm_low_balance(self, customer_id: str, alert: LowBalanceAlert, version: int) -> bool:
        with self._lock:
            if not self._as_judged(customer_id, alert, version):
                return False
            self.tables.alerts[customer_id] = self.tables.alerts[customer_id]._replace(armed=True, seen_version=version)
        return True

    def set_balance_after(self, customer_id: str, payment_id: str, minor: int) -> bool:
        with self._lock:
            stored = self.tables.payments.get((customer_id, payment_id))
            if stored is None or stored.balance_after_minor is not None:
                return False
            self.tables.payments[(customer_id, payment_id)] = stored.model_copy(update={"balance_after_minor": minor})
        return True

    # ---- saved cards and the Stripe Customer -------------------------------------------------------

    def stripe_customer(self, customer_id: str) -> str | None:
        with self._lock:
            return self.tables.stripe_customers.get(customer_id, {}).get("stripe_customer")

    def claim_stripe_customer(self, customer_id: str, email: str | None) -> tuple[str | None, str | None]:
        with self._lock:
            item = self.tables.stripe_customers.setdefault(customer_id, {})
            item.setdefault("claimed_at", iso_z(utcnow()))
            item.setdefault("email", email or "")
            return item.get("stripe_customer"), item["email"] or None

    def record_stripe_customer(self, customer_id: str, stripe_customer: str) -> str:
        with self._lock:
            item = self.tables.stripe_customers.setdefault(customer_id, {})
            return str(item.setdefault("stripe_customer", stripe_customer))

    def _saved(self, held: dict[str, Any]) -> SavedCard:
        card: SavedCard = held["card"]
        default_card = self.tables.stripe_customers.get(card.customer_id, {}).get("default_card")
        return card._replace(default=default_card == card.id)

    def saved_card(self, customer_id: str, card_id: str) -> SavedCard | None:
        with self._lock:
            held = self.tables.cards.get((customer_id, card_id))
            return self._saved(held) if held else None

    def saved_cards(self, customer_id: str) -> list[SavedCard]:
        with self._lock:
            cards = [self._saved(h) for (c, _), h in self.tables.cards.items() if c == customer_id]
        return sorted((c for c in cards if c.state != "removed"), key=lambda c: (c.created_at, c.id), reverse=True)

    def card_by_setup(self, provider: str, setup_intent: str) -> SavedCard | None:
        with self._lock:
            pointer = self.tables.setup_pointers.get((provider, setup_intent))
            return self.saved_card(*pointer) if pointer else None

    def _default_if_none(self, customer_id: str, card_id: str) -> None:
        self.tables.stripe_customers.setdefault(customer_id, {}).setdefault("default_card", card_id)

    def put_saved_card(self, card: SavedCard, provider: str) -> tuple[SavedCard, bool]:
        with self._lock:
            existing = self.tables.cards.get((card.customer_id, card.id))
            pointer = self.tables.setup_pointers.get((provider, card.setup_intent)) if card.setup_intent else None
            if existing is not None or pointer is not None:
                found = self.saved_card(card.customer_id, card.id) or (self.saved_card(*pointer) if pointer else None)
                if found is None or found.customer_id != card.customer_id:
                    raise ConditionFailed(card.id)
                return found, False
            self.tables.cards[(card.customer_id, card.id)] = {"card": card._replace(default=False)}
            if card.setup_intent:
                self.tables.setup_pointers[(provider, card.setup_intent)] = (card.customer_id, card.id)
            if card.state == "active":
                self._default_if_none(card.customer_id, card.id)
            return self._saved(self.tables.cards[(card.customer_id, card.id)]), True

    def settle_saved_card(
        self,
        customer_id: str,
        card_id: str,
        state: str,
        *,
        payment_method: str | None = None,
        details: Mapping[str, object] | None = None,
    ) -> bool:
        with self._lock:
            held = self.tables.cards.get((customer_id, card_id))
            if held is None or held["card"].state != "pending":
                return False
            update: dict[str, Any] = {"state": state}
            if payment_method:
                update["payment_method"] = payment_method
            for name, value in (details or {}).items():
                if value is not None and name in ("brand", "last4", "exp_month", "exp_year"):
                    update[name] = value
            held["card"] = held["card"]._replace(**update)
            if state == "active":
                self._default_if_none(customer_id, card_id)
        return True

    def set_default_card(self, customer_id: str, card_id: str) -> bool:
        with self._lock:
            held = self.tables.cards.get((customer_id, card_id))
            if held is None or held["card"].state != "active":
                return False
            self.tables.stripe_customers.setdefault(customer_id, {})["default_card"] = card_id
        return True

    def remove_saved_card(self, customer_id: str, card_id: str, *, was_default: bool, new_default: str | None) -> bool:
        with self._lock:
            held = self.tables.cards.get((customer_id, card_id))
            customer = self.tables.stripe_customers.setdefault(customer_id, {})
            if held is None or held["card"].state == "removed":
                return False
            if was_default != (customer.get("default_card") == card_id):
                return False
            held["card"] = held["card"]._replace(state="removed")
            held["autotopup_off"] = True
            if was_default:
                if new_default:
                    customer["default_card"] = new_default
                else:
                    customer.pop("default_card", None)
        return True

    def mark_card_detached(self, customer_id: str, card_id: str) -> None:
        with self._lock:
            self.tables.cards[(customer_id, card_id)]["detached"] = True

    def card_detached(self, customer_id: str, card_id: str) -> bool:
        with self._lock:
            return bool(self.tables.cards.get((customer_id, card_id), {}).get("detached"))

    # ---- the auto top-up ---------------------------------------------------------------------------

    def auto_topup(self, customer_id: str) -> AutoTopup | None:
        with self._lock:
            return self.tables.auto_topups.get(customer_id)

    def mandate(self, customer_id: str, mandate_id: str) -> Mandate | None:
        with self._lock:
            return self.tables.mandates.get((customer_id, mandate_id))

    def write_auto_topup(
        self,
        customer_id: str,
        topup: AutoTopup,
        *,
        seen_rev: str | None,
        mandate: Mandate | None = None,
        payment: Payment | None = None,
        event: OutboxEvent | None = None,
    ) -> tuple[Written, AutoTopup | None]:
        saved = topup._replace(rev=uuid.uuid4().hex, updated_at=iso_z(utcnow()))
        with self._lock:
            held = self.tables.auto_topups.get(customer_id)
            if (held is None) != (seen_rev is None) or (held is not None and held.rev != seen_rev):
                return Written.LOST, None
            if (
                (mandate is not None and (customer_id, mandate.id) in self.tables.mandates)
                or (payment is not None and (payment.customer_id, payment.id) in self.tables.payments)
                or (event is not None and event.event_id in self.tables.outbox)
            ):
                return Written.DUPLICATE, None
            self.tables.auto_topups[customer_id] = saved
            if mandate is not None:
                self.tables.mandates[(customer_id, mandate.id)] = mandate
            if payment is not None:
                self._put(payment)
            self._outbox(event)
        return Written.WRITTEN, saved

    # ---- event markers -----------------------------------------------------------------------------

    def record_event(self, marker: Dedupe, payment_id: str | None = None, *, event_type: str = "") -> bool:
        with self._lock:
            if not self._event_is_new(marker):
                return False
            self._record(marker, payment_id, event_type=event_type[:100], outcome="recorded")
        return True

    def event_payment_id(self, marker: Dedupe) -> str | None:
        with self._lock:
            return self.tables.events.get((marker.source, marker.key), {}).get("payment_id")

    # ---- vouchers ----------------------------------------------------------------------------------

    def issue_voucher(self, code_hash: str, money: Money, expires_at: datetime | None, by: str) -> bool:
        with self._lock:
            if code_hash in self.tables.vouchers:
                return False
            expires = int(expires_at.timestamp()) if expires_at else None
            self.tables.vouchers[code_hash] = _VoucherItem(Voucher("unused", money, expires), issued_by=by)
        return True

    def voucher(self, code_hash: str) -> Voucher | None:
        with self._lock:
            held = self.tables.vouchers.get(code_hash)
            return held.voucher if held else None

    def count_voucher_attempt(self, customer_id: str, *, now: int, limit: int, window_seconds: int) -> int | None:
        with self._lock:
            attempts = self.tables.voucher_attempts.setdefault(customer_id, _Attempts())
            if attempts.window_end is None:  # none yet (or only a given-back attempt): open a window
                attempts.count, attempts.window_end = attempts.count + 1, now + window_seconds
            elif attempts.window_end <= now:  # the window is over: a new one holding this attempt
                attempts.count, attempts.window_end = 1, now + window_seconds
            elif attempts.count < limit:
                attempts.count += 1
            else:
                return attempts.window_end
        return None

    def give_back_voucher_attempt(self, customer_id: str) -> None:
        with self._lock:
            attempts = self.tables.voucher_attempts.get(customer_id)
            if attempts is not None and attempts.count > 0:
                attempts.count -= 1

    def redeem_voucher(self, code_hash: str, payment: Payment, *, now: int, balance_at_most: int | None = None) -> bool:
        with self._lock:
            held = self.tables.vouchers.get(code_hash)
            if (
                held is None
                or held.voucher.state != "unused"
                or held.voucher.money.currency != payment.currency
                or (held.voucher.expires_epoch is not None and held.voucher.expires_epoch <= now)
                or (payment.customer_id, payment.id) in self.tables.payments
            ):
                return False
            balance = self.tables.balances.get(payment.customer_id, {}).get(payment.currency, 0)
            if balance_at_most is not None and balance + payment.amount_minor > balance_at_most:
                raise BalanceCeiling(payment.customer_id)
            held.voucher = held.voucher._replace(state="redeemed")
            held.redeemed_by, held.payment_id = payment.customer_id, payment.id
            self._put(payment)
            self.tables.voucher_attempts.setdefault(payment.customer_id, _Attempts()).count -= 1
        return True

    # ---- export records ----------------------------------------------------------------------------

    def put_export(self, record: ExportRecord, requested_by: str) -> None:
        with self._lock:
            self.tables.exports[(record.customer_id, record.export_id)] = record

    def finish_export(
        self, customer_id: str, export_id: str, status: ExportStatus, *, rows: int | None = None, failure: str = ""
    ) -> None:
        with self._lock:
            record = self.tables.exports[(customer_id, export_id)]
            update: dict[str, Any] = {"status": status}
            if rows is not None:
                update["row_count"] = rows
            if failure:
                update["failure"] = failure
            self.tables.exports[(customer_id, export_id)] = replace(record, **update)

    def get_export(self, customer_id: str, export_id: str) -> ExportRecord | None:
        if len(export_id) > 64:
            return None
        with self._lock:
            return self.tables.exports.get((customer_id, export_id))

    # ---- for tests ---------------------------------------------------------------------------------

    def payments_of(self, customer_id: str) -> Iterable[Payment]:
        """Every payment of the customer, oldest first."""
        return reversed(self._listing(customer_id, None, None, None, None))


def _changed(stored: Payment, change: Change) -> Payment:
    """`stored` as `PaymentStore`'s Update leaves it: what differs between before and after set, the new history
    entries appended, the claim gone if after has none."""
    before, after = change.before, change.after
    update: dict[str, Any] = {
        name: getattr(after, name)
        for name in type(after).model_fields
        if name != "history" and getattr(after, name) != getattr(before, name)
    }
    update["history"] = (*stored.history, *after.history[len(before.history) :])
    if after.gateway_claim_until is None:
        update["gateway_claim_until"] = None
    return stored.model_copy(update=update)
