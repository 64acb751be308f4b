"""Auto top-up (docs/auto-topup.md): a saved card charged off-session when the balance falls below a threshold.

- Settings and consent: `save` validates the whole setting (422 naming the field), and turning it on, or changing
  its terms, records a new mandate (who, when, the terms shown) the off-session charges are made under.
- The trigger: `on_balance_change`, called by the stream's publisher for each balance record (as the low-balance
  alert is, docs/alerts.md): a crossing from at or above the threshold to below it, in the auto top-up's currency,
  while it is active, nothing is in flight and today's count is under `max_per_day`, starts exactly one charge: in
  one transaction the auto top-up is marked in flight, the pending `credit_card` payment (`auto_topup`, its id
  derived from the crossing) is put, and the internal `autotopup.charge` event goes to the outbox.
- The charge: `charge`, called by the autotopup function from its queue: one PaymentIntent, off-session, its
  idempotency key the payment id; recorded through the store's gateway-object machinery and `Store.transition`.
- The outcome: `on_payment`, called by the autotopup function with the payment's own `payment.completed` or
  `payment.cancelled` event (an auto top-up payment's): once per payment, as the auto top-up's write is
  conditioned on the payment being the one in flight. `authentication_required` is handled by `charge` itself
  (the payment stays pending, so it has no event).
- The e-mails: `requires_action_email` and `disabled_email` (payments.notices).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from payments import account, outbox
from payments.emails import Email
from payments.errors import Conflict, GatewayError, InvalidInput, NotFound, RetryLater, UpstreamError
from payments.ids import derived_payment_id
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus, iso_z, utcnow
from payments.money import Money, MoneyError, parse_currency
from payments.outbox import OutboxEvent
from payments.status import Cause, TransitionRefused
from payments.store.base import Written
from payments.store.records import AutoTopup, BalanceRecord, Mandate, SavedCard

if TYPE_CHECKING:
    from payments.gateways.base import CreateRequest, CreateResult
    from payments.identity import Caller
    from payments.store import Store

logger = logging.getLogger(__name__)
ACTIVE, DISABLED, REQUIRES_ACTION = "active", "disabled", "requires_action"
MAX_FAILURES = 3  # declines in a row that turn it off
DEFAULT_MAX_PER_DAY = 3
PROVIDER = "stripe"
ACTOR = "autotopup"
_ATTEMPTS = 5  # a write refused because the auto top-up changed meanwhile is judged again on a fresh read
CLAIM_SECONDS = 900.0  # the pending payment holds the claim on creating its PaymentIntent this long


class Cards(Protocol):
    """What the auto top-up needs of the saved cards (payments.saved_cards' store methods): injected, so this
    module does not depend on how they are kept."""

    def saved_card(self, customer_id: str, card_id: str) -> SavedCard | None: ...

    def stripe_customer(self, customer_id: str) -> str | None: ...


# The off-session charge: (request, Stripe Customer id) -> result. By default the Stripe adapter's.
Charger = Callable[["CreateRequest", str], "CreateResult"]


def stripe_charger() -> Charger:
    from payments.gateways import gateway

    adapter: Any = gateway(PROVIDER)
    charge: Charger = adapter.charge_off_session
    return charge


# ---- the routes' JSON ------------------------------------------------------------------------------------------


class AutoTopupIn(BaseModel):
    """PUT /auto-topup: the whole setting (PUT replaces it)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(description="false turns it off (the setting is kept)")
    payment_method_id: str | None = Field(None, max_length=64, description="Our saved card id (card_...)")
    currency: str | None = Field(None, description="ISO 4217; the account currency if left out")
    threshold: str | Decimal | int | None = Field(
        None, description='Top up when the balance falls below this (major units, e.g. "10.00")'
    )
    amount: str | Decimal | int | None = Field(None, description="How much each top-up charges (major units)")
    max_per_day: int = Field(DEFAULT_MAX_PER_DAY, ge=1, le=24, description="At most this many top-ups a UTC day")


class MandateOut(BaseModel):
    id: str
    accepted_at: str
    accepted_by: str
    email: str | None
    card: dict[str, Any]
    currency: str
    threshold: str
    amount: str
    max_per_day: int


class AutoTopupOut(BaseModel):
    """GET/PUT /auto-topup's answer."""

    enabled: bool
    payment_method_id: str | None
    currency: str
    threshold: str | None
    amount: str | None
    max_per_day: int
    state: Literal["active", "disabled", "requires_action"]
    failures: int
    reason: str | None = Field(None, description="Why it is disabled")
    last_attempt: dict[str, Any] | None = Field(description="The last auto top-up payment, or null")
    mandate_id: str | None = None
    mandate_at: str | None = None
    mandate: MandateOut | None = Field(None, description="Operators: the consent in force")


def _amount(value: object, currency: str, field: str) -> Money:
    if value is None:
        raise InvalidInput(field, f"{field} is required to turn the auto top-up on")
    try:
        return Money.parse(value, currency, field=field)
    except MoneyError as exc:
        raise InvalidInput(field, exc.message) from None


def card_usable(card: SavedCard | None, today: date) -> str | None:
    """Why `card` cannot be charged (None if it can): unknown, not active, or expired (after its expiry month)."""
    if card is None:
        return "is not a saved card of this account"
    if card.state != "active" or not card.payment_method:
        return f"is {card.state}, not an active saved card"
    if card.exp_year and card.exp_month and (card.exp_year, card.exp_month) < (today.year, today.month):
        return "has expired"
    return None


class Terms(BaseModel):
    """A validated setting: what a mandate agrees to."""

    card: SavedCard
    currency: str
    threshold: Money
    amount: Money
    max_per_day: int


def parse(
    body: AutoTopupIn, terms: account.AccountSettings, cards: Cards, customer_id: str, today: date
) -> Terms | None:
    """The setting as validated; None to turn it off. InvalidInput (422) names the first bad field: a currency the
    account does not allow, an amount outside min/max payment, a threshold plus amount above `max_balance` (a top-up
    that would pass it, refused when saved), an unknown, pending, removed or expired card."""
    if not body.enabled:
        return None
    try:
        currency = parse_currency(body.currency, "currency") if body.currency is not None else terms.account_currency
    except MoneyError as exc:
        raise InvalidInput("currency", exc.message) from None
    allowed = terms.allowed_currencies
    if allowed is not None and currency not in allowed:
        raise InvalidInput("currency", f"currency {currency} is not allowed for this account: {', '.join(allowed)}")
    threshold = _amount(body.threshold, currency, "threshold")
    amount = _amount(body.amount, currency, "amount")
    if not amount.is_positive:
        raise InvalidInput("amount", "amount must be positive")
    account.check_amount(terms, amount, "amount")
    ceiling = account.balance_room(terms, currency)
    if ceiling is not None and threshold.minor + amount.minor > ceiling:
        raise InvalidInput(
            "amount",
            f"a top-up of {amount.format()} {currency} at a balance just under {threshold.format()} {currency} could "
            f"take it above the maximum balance of {Money(ceiling, currency).format()} {currency} (max_balance)",
            max_balance=Money(ceiling, currency).format(),
        )
    if not body.payment_method_id:
        raise InvalidInput("payment_method_id", "payment_method_id (a saved card) is required to turn it on")
    card = cards.saved_card(customer_id, body.payment_method_id)
    problem = card_usable(card, today)
    if problem is not None or card is None:
        raise InvalidInput("payment_method_id", f"payment_method_id {problem}")
    return Terms(card=card, currency=currency, threshold=threshold, amount=amount, max_per_day=body.max_per_day)


def _same_terms(topup: AutoTopup | None, terms: Terms) -> bool:
    return (
        topup is not None
        and topup.enabled
        and topup.mandate_id is not None
        and (topup.card_id, topup.currency, topup.threshold_minor, topup.amount_minor, topup.max_per_day)
        == (terms.card.id, terms.currency, terms.threshold.minor, terms.amount.minor, terms.max_per_day)
    )


def _mandate_view(mandate: Mandate) -> MandateOut:
    return MandateOut(
        id=mandate.id,
        accepted_at=mandate.accepted_at,
        accepted_by=mandate.sub,
        email=mandate.email,
        card={"id": mandate.card_id, "brand": mandate.card_brand, "last4": mandate.card_last4},
        currency=mandate.currency,
        threshold=Money(mandate.threshold_minor, mandate.currency).format(),
        amount=Money(mandate.amount_minor, mandate.currency).format(),
        max_per_day=mandate.max_per_day,
    )


def view(store: Store, customer_id: str, topup: AutoTopup | None, *, with_mandate: bool = False) -> dict[str, Any]:
    """The routes' answer (with no auto top-up set: off, in the account currency)."""
    if topup is None:
        currency = account.for_customer(store, customer_id).account_currency
        return AutoTopupOut(
            enabled=False,
            payment_method_id=None,
            currency=currency,
            threshold=None,
            amount=None,
            max_per_day=DEFAULT_MAX_PER_DAY,
            state=DISABLED,
            failures=0,
            last_attempt=None,
        ).model_dump(mode="json", exclude_none=False, exclude={"mandate"})
    last = store.get(customer_id, topup.last_payment) if topup.last_payment else None
    mandate = store.mandate(customer_id, topup.mandate_id) if with_mandate and topup.mandate_id else None
    answer = AutoTopupOut(
        enabled=topup.enabled,
        payment_method_id=topup.card_id or None,
        currency=topup.currency,
        threshold=Money(topup.threshold_minor, topup.currency).format(),
        amount=Money(topup.amount_minor, topup.currency).format(),
        max_per_day=topup.max_per_day,
        state=topup.state,
        failures=topup.failures,
        reason=topup.reason,
        last_attempt=last.to_api().model_dump(mode="json") if last else None,
        mandate_id=topup.mandate_id,
        mandate_at=topup.mandate_at or None,
        mandate=_mandate_view(mandate) if mandate else None,
    )
    return answer.model_dump(mode="json", exclude={"mandate"} if not with_mandate else None)


def get(store: Store, customer_id: str) -> dict[str, Any]:
    """GET /auto-topup: the caller's own."""
    return view(store, customer_id, store.auto_topup(customer_id))


def save(store: Store, cards: Cards, customer_id: str, body: AutoTopupIn, caller: Caller) -> dict[str, Any]:
    """PUT /auto-topup. Turning it on, or changing its terms, records a new mandate (the caller's consent: the token's
    subject and e-mail, now, the card's brand and last 4, threshold, amount and cap); the same terms again keep the
    mandate. Saving it on makes it active with no failures; a charge in flight stays in flight (never two)."""
    terms = account.for_customer(store, customer_id)
    parsed = parse(body, terms, cards, customer_id, utcnow().date())
    for _ in range(_ATTEMPTS):
        held = store.auto_topup(customer_id)
        if parsed is None:
            if held is None:
                return view(store, customer_id, None)
            topup = held._replace(enabled=False, state=DISABLED, reason="customer", changed_by=caller.actor)
            mandate = None
        else:
            _, version = store.balance_state(customer_id, parsed.currency)
            mandate = None
            mandate_id, mandate_at = (held.mandate_id, held.mandate_at) if held else (None, "")
            if not _same_terms(held, parsed):
                now = iso_z(utcnow())
                mandate = Mandate(
                    id="mdt_" + uuid.uuid4().hex,
                    customer_id=customer_id,
                    accepted_at=now,
                    sub=caller.sub,
                    email=caller.email,
                    card_id=parsed.card.id,
                    card_brand=parsed.card.brand,
                    card_last4=parsed.card.last4,
                    currency=parsed.currency,
                    threshold_minor=parsed.threshold.minor,
                    amount_minor=parsed.amount.minor,
                    max_per_day=parsed.max_per_day,
                )
                mandate_id, mandate_at = mandate.id, now
            base = held or AutoTopup(True, parsed.card.id, parsed.currency, 0, 0)
            topup = base._replace(
                enabled=True,
                card_id=parsed.card.id,
                currency=parsed.currency,
                threshold_minor=parsed.threshold.minor,
                amount_minor=parsed.amount.minor,
                max_per_day=parsed.max_per_day,
                state=REQUIRES_ACTION if held and held.in_flight and held.state == REQUIRES_ACTION else ACTIVE,
                failures=0,
                reason=None,
                mandate_id=mandate_id,
                mandate_at=mandate_at,
                changed_by=caller.actor,
                # Records older than the save are not judged by it; a change committed meanwhile comes later.
                seen_version=max(version, held.seen_version if held else 0),
            )
        written, saved = store.write_auto_topup(
            customer_id, topup, seen_rev=held.rev if held else None, mandate=mandate
        )
        if written is Written.WRITTEN:
            return view(store, customer_id, saved)
    raise RetryLater("the auto top-up kept changing while it was saved; send it again", http_status=503)


def disable(store: Store, customer_id: str, reason: str, by: str) -> dict[str, Any]:
    """Turn it off (an operator, `reason` "operator"): NotFound if none is set. The `autotopup.disabled` event sends
    the e-mail saying so."""
    for _ in range(_ATTEMPTS):
        held = store.auto_topup(customer_id)
        if held is None:
            raise NotFound(f"customer {customer_id} has no auto top-up")
        if not held.enabled:
            return view(store, customer_id, held, with_mandate=True)
        saved = _turn_off(store, customer_id, held, reason, by)
        if saved is not None:
            return view(store, customer_id, saved, with_mandate=True)
    raise RetryLater("the auto top-up kept changing; send it again", http_status=503)


def _turn_off(store: Store, customer_id: str, held: AutoTopup, reason: str, by: str) -> AutoTopup | None:
    topup = held._replace(enabled=False, state=DISABLED, reason=reason, changed_by=by)
    event = _event(outbox.AUTOTOPUP_DISABLED, customer_id, f"{held.rev}:{reason}", topup, None)
    written, saved = store.write_auto_topup(customer_id, topup, seen_rev=held.rev, event=event)
    return saved if written is Written.WRITTEN else None


def card_removed(store: Store, customer_id: str, card_id: str, reason: str = "card_removed") -> bool:
    """Called by the saved cards when a card is removed (or found expired: `reason` "card_expired"): an auto top-up
    that charges that card is turned off, with the reason and an e-mail. True if it was on and is now off."""
    for _ in range(_ATTEMPTS):
        held = store.auto_topup(customer_id)
        if held is None or not held.enabled or held.card_id != card_id:
            return False
        if _turn_off(store, customer_id, held, reason, "saved-cards") is not None:
            return True
    raise RetryLater("the auto top-up kept changing while a card was removed", http_status=503)


# ---- the trigger --------------------------------------------------------------------------------------------------


def day_of(moment: str) -> str:
    """The UTC day (YYYY-MM-DD) of an ISO 8601 moment (a balance record's `updated_at`); today if it has none."""
    try:
        return datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(UTC).date().isoformat()
    except ValueError:
        return utcnow().date().isoformat()


def count_on(topup: AutoTopup, day: str) -> int:
    return topup.day_count if topup.day == day else 0


def crosses(topup: AutoTopup, currency: str, old_minor: int, new_minor: int, day: str) -> bool:
    """Whether one change of the balance (old -> new, in `currency`, on `day`) starts a charge. Pure."""
    return (
        topup.enabled
        and topup.state == ACTIVE
        and topup.in_flight is None
        and currency == topup.currency
        and old_minor >= topup.threshold_minor > new_minor
        and count_on(topup, day) < topup.max_per_day
    )


def payment_id_of(record: BalanceRecord) -> str:
    """The auto top-up payment of a crossing: its time the balance change's, the rest a hash of the customer, the
    currency and the balance version. A redelivered record makes the same id, so the payment's conditional put
    keeps one."""
    moment = _moment(record.updated_at)
    return derived_payment_id(moment, f"autotopup:{record.customer_id}:{record.currency}:{record.version}")


def _moment(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return utcnow()


def _event_id(kind: str, customer_id: str, seed: str) -> str:
    return "evt_" + hashlib.sha256(f"{kind}:{customer_id}:{seed}".encode()).hexdigest()[:32]


def _event(kind: str, customer_id: str, seed: str, topup: AutoTopup, payment: Payment | None) -> OutboxEvent:
    """An auto top-up event: its detail carries the state after it and the payment (if any), flat."""
    body = {
        "state": topup.state,
        "failures": topup.failures,
        "disabled": topup.state == DISABLED,
        "reason": topup.reason,
        "currency": topup.currency,
        "threshold": Money(topup.threshold_minor, topup.currency).format(),
        "amount": Money(topup.amount_minor, topup.currency).format(),
        "payment": payment.to_api().model_dump(mode="json") if payment else None,
    }
    return OutboxEvent(
        _event_id(kind, customer_id, seed),
        kind,
        customer_id,
        payment.id if payment else topup.currency,
        iso_z(utcnow()),
        json.dumps(body, separators=(",", ":"), sort_keys=True),
    )


class Started(StrEnum):
    NONE = "none"  # no auto top-up in this currency, or this change does not start one
    STARTED = "started"  # the pending payment and its charge event are written
    SEEN = "seen"  # this record was acted on before (a redelivery), or a later save accounts for it


def on_balance_change(store: Store, record: BalanceRecord) -> Started:
    """One stream record of the customer's balance item: a crossing the auto top-up acts on starts one charge."""
    for _ in range(_ATTEMPTS):
        topup = store.auto_topup(record.customer_id)
        if topup is None or topup.currency != record.currency:
            return Started.NONE
        if record.version <= topup.seen_version:
            return Started.SEEN
        day = day_of(record.updated_at)
        if not crosses(topup, record.currency, record.old_minor, record.new_minor, day):
            return Started.NONE
        payment = _pending_payment(store, record, topup)
        started = topup._replace(
            in_flight=payment.id,
            day=day,
            day_count=count_on(topup, day) + 1,
            last_payment=payment.id,
            seen_version=record.version,
        )
        body = json.dumps({"payment_id": payment.id, "card_id": topup.card_id, "mandate_id": topup.mandate_id})
        event = OutboxEvent(
            _event_id(outbox.AUTOTOPUP_CHARGE, record.customer_id, payment.id),
            outbox.AUTOTOPUP_CHARGE,
            record.customer_id,
            payment.id,
            iso_z(payment.created_at),
            body,
        )
        written, _ = store.write_auto_topup(
            record.customer_id, started, seen_rev=topup.rev, payment=payment, event=event
        )
        if written is Written.WRITTEN:
            return Started.STARTED
        if written is Written.DUPLICATE:
            return Started.SEEN
    raise RetryLater("the auto top-up kept changing while a balance record was judged", http_status=503)


def _pending_payment(store: Store, record: BalanceRecord, topup: AutoTopup) -> Payment:
    now = _moment(record.updated_at)
    return Payment(
        id=payment_id_of(record),
        customer_id=record.customer_id,
        created_at=now,
        amount_minor=topup.amount_minor,
        currency=topup.currency,
        status=PaymentStatus.PENDING,
        method=PaymentMethod.CREDIT_CARD,
        description="Auto top-up",
        auto_topup=True,
        payer_email=None,
        # Put holding the claim on creating its PaymentIntent (attempt 1): the charge records it under that claim.
        gateway_attempts=1,
        gateway_claim_until=store.claim_until(CLAIM_SECONDS),
        history=(HistoryEntry(at=now, status=PaymentStatus.PENDING, by=ACTOR, note="auto top-up"),),
    )


# ---- the charge ---------------------------------------------------------------------------------------------------


class Charged(StrEnum):
    MISSING = "missing"  # no such payment (never written: nothing to do)
    SETTLED = "settled"  # the payment is completed or cancelled (its own event handles the auto top-up)
    REQUIRES_ACTION = "requires_action"  # pending: the bank wants the customer to authenticate
    PENDING = "pending"  # pending at Stripe (processing): its webhook settles it


def charge(store: Store, cards: Cards, detail: dict[str, Any], charger: Charger | None = None) -> Charged:
    """The `autotopup.charge` event's work: charge the saved card off-session, once. Safe to run again (an SQS
    retry after a crash): the PaymentIntent's idempotency key is the payment id, so Stripe answers the one it made,
    and the payment is recorded and moved through the store's conditioned writes."""
    from payments.config import site_settings
    from payments.gateways.base import CreateRequest

    customer_id, payment_id = str(detail["customer_id"]), str(detail["payment_id"])
    payment = store.get(customer_id, payment_id, consistent=True)
    if payment is None:
        return Charged.MISSING
    if payment.status is not PaymentStatus.PENDING:
        return Charged.SETTLED
    card_id = str(detail.get("card_id") or "")
    card = cards.saved_card(customer_id, card_id)
    problem = card_usable(card, utcnow().date())
    stripe_customer = cards.stripe_customer(customer_id)
    if problem is not None or card is None or stripe_customer is None:
        store.transition(
            customer_id,
            payment_id,
            PaymentStatus.CANCELLED,
            Cause.GATEWAY_FAILURE,
            ACTOR,
            note="card_unavailable",
            current=payment,
        )
        # A removed or expired card turns the auto top-up off (the saved cards tell a removal too: card_removed).
        card_removed(store, customer_id, card_id, "card_expired" if problem == "has expired" else "card_removed")
        return Charged.SETTLED
    request = CreateRequest(
        payment_id=payment.id,
        customer_id=customer_id,
        money=Money(payment.charged_minor, payment.currency),
        description=payment.description,
        idempotency_key=payment.id,
        return_url=site_settings().portal_return_url,
        payment_method=card.payment_method,
        attempt=payment.gateway_attempts or 1,
    )
    result = (charger or stripe_charger())(request, stripe_customer)
    if result.gateway_ref and payment.gateway_ref is None:
        recorded = store.record_gateway_object(
            payment,
            provider=PROVIDER,
            gateway_ref=result.gateway_ref,
            next_action=result.next_action if result.storable_next_action else None,
            card_brand=result.card_brand or card.brand,
            card_last4=result.card_last4 or card.last4,
        )
        payment = recorded or store.require(customer_id, payment_id, consistent=True)
    if result.status is not PaymentStatus.PENDING:
        store.transition(
            customer_id,
            payment_id,
            result.status,
            Cause.GATEWAY_SUCCESS if result.status is PaymentStatus.COMPLETED else Cause.GATEWAY_FAILURE,
            f"gateway:{PROVIDER}:off_session",
            note=None if result.status is PaymentStatus.COMPLETED else result.failure_reason or "declined",
            current=payment,
        )
        return Charged.SETTLED
    if result.failure_reason == "authentication_required" or result.next_action:
        _requires_action(store, customer_id, payment)
        return Charged.REQUIRES_ACTION
    return Charged.PENDING


def _requires_action(store: Store, customer_id: str, payment: Payment) -> None:
    """The bank wants the customer: the auto top-up waits (`requires_action`, no other charge), once."""
    for _ in range(_ATTEMPTS):
        held = store.auto_topup(customer_id)
        if held is None or held.in_flight != payment.id or held.state != ACTIVE:
            return
        topup = held._replace(state=REQUIRES_ACTION)
        event = _event(outbox.AUTOTOPUP_REQUIRES_ACTION, customer_id, payment.id, topup, payment)
        written, _ = store.write_auto_topup(customer_id, topup, seen_rev=held.rev, event=event)
        if written is not Written.LOST:
            return
    raise RetryLater("the auto top-up kept changing while its charge was recorded", http_status=503)


# ---- reconciliation: charges whose message never got through ------------------------------------------------------

# Stripe keeps an idempotency key at least 24 hours: within that, charging again with the payment id as key answers
# the PaymentIntent a lost attempt made, or makes the one it never made. Past it, a new attempt could make a second.
REDRIVE_WITHIN = timedelta(hours=23)


@dataclass(frozen=True, slots=True)
class RedriveReport:
    redriven: int = 0  # charged again (made, or the one made before recovered): recorded as `charge` records it
    left: int = 0  # older than REDRIVE_WITHIN with no PaymentIntent recorded: left pending for an operator
    errors: int = 0  # Stripe failed again: tried again on the next run


def redrive(
    store: Store, cards: Cards, *, now: datetime, ask_after: timedelta, limit: int = 100, charger: Charger | None = None
) -> RedriveReport:
    """Auto top-up payments still pending with no PaymentIntent recorded `ask_after` after they were made: their
    `autotopup.charge` message kept failing (Stripe down past the queue's retries, it went to the dead-letter queue)
    or the charge crashed before recording. Run the charge again, exactly as the queue would (same idempotency key),
    while Stripe still keeps the key; older ones are left pending, logged, for an operator to look up at Stripe and
    complete or cancel (either ends the auto top-up's charge in flight). Reconciliation never times them out
    (settlement.reconcile skips them): the card may have been charged."""
    report = RedriveReport()
    for payment in store.pending_before(PaymentMethod.CREDIT_CARD, now - ask_after, limit=limit):
        if not payment.auto_topup or payment.gateway_ref:
            continue
        if payment.created_at < now - REDRIVE_WITHIN:
            logger.error(
                "auto top-up charge never recorded and too old to charge again: look it up at Stripe "
                "(metadata.payment_id), then complete or cancel it",
                extra={"payment_id": payment.id, "customer_id": payment.customer_id},
            )
            report = dataclasses.replace(report, left=report.left + 1)
            continue
        topup = store.auto_topup(payment.customer_id)
        detail = {
            "customer_id": payment.customer_id,
            "payment_id": payment.id,
            "card_id": topup.card_id if topup else "",
        }
        try:
            charge(store, cards, detail, charger)
        except (GatewayError, RetryLater) as exc:
            logger.warning("auto top-up charge failed again", extra={"payment_id": payment.id, "error": str(exc)})
            report = dataclasses.replace(report, errors=report.errors + 1)
            continue
        report = dataclasses.replace(report, redriven=report.redriven + 1)
    return report


# ---- when the bank asks: the customer confirms on the page ---------------------------------------------------------

# (PaymentIntent id, saved card's PaymentMethod, return URL, idempotency key) -> result; by default Stripe's.
Confirmer = Callable[[str, str, str, str], "CreateResult"]


def stripe_confirmer() -> Confirmer:
    from payments.gateways import gateway

    adapter: Any = gateway(PROVIDER)
    confirm: Confirmer = adapter.confirm_on_session
    return confirm


def authenticate(
    store: Store, cards: Cards, customer_id: str, confirmer: Confirmer | None = None
) -> tuple[Payment, dict[str, Any] | None]:
    """POST /auto-topup/authenticate: the customer is back on the page to confirm the top-up the bank held
    (`requires_action`). Its PaymentIntent is confirmed again on-session with the auto top-up's card, so the bank can
    ask for 3-D Secure: (the pending payment, the `stripe_sdk` next_action) for the page to follow, or the payment as
    settled when the bank asks nothing more (completed) or declines (cancelled: a failure, as any decline). Asking
    twice confirms once (one idempotency key per payment); nothing waiting is a Conflict naming why."""
    from payments.config import site_settings
    from payments.gateways.base import reading_answers

    topup = store.auto_topup(customer_id)
    if topup is None or topup.state != REQUIRES_ACTION or not topup.in_flight:
        raise Conflict("no automatic top-up is waiting for you to confirm it")
    payment = store.get(customer_id, topup.in_flight, consistent=True)
    if payment is None or payment.status is not PaymentStatus.PENDING or not payment.gateway_ref:
        raise Conflict("the automatic top-up that waited for you is settled already; reload its state")
    card = cards.saved_card(customer_id, topup.card_id)
    problem = card_usable(card, utcnow().date())
    if problem is not None or card is None or not card.payment_method:
        raise Conflict(f"the automatic top-up's card {problem}: choose another card for it, then try again")
    try:
        with reading_answers(PROVIDER, "confirm the payment"):
            result = (confirmer or stripe_confirmer())(
                payment.gateway_ref, card.payment_method, site_settings().portal_return_url, f"{payment.id}:confirm"
            )
    except GatewayError as exc:
        raise UpstreamError(
            f"Stripe did not answer properly: {exc.message}; the top-up still waits, try again",
            http_status=exc.http_status,
        ) from exc
    if result.status is PaymentStatus.PENDING:
        return store.require(customer_id, payment.id, consistent=True), result.next_action
    try:
        settled = store.transition(
            customer_id,
            payment.id,
            result.status,
            Cause.GATEWAY_SUCCESS if result.status is PaymentStatus.COMPLETED else Cause.GATEWAY_FAILURE,
            f"gateway:{PROVIDER}:on_session",
            note=None if result.status is PaymentStatus.COMPLETED else result.failure_reason or "declined",
            current=payment,
        )
    except TransitionRefused:  # its webhook settled it meanwhile: that is the answer
        return store.require(customer_id, payment.id, consistent=True), None
    return settled.payment, None


# ---- the outcome --------------------------------------------------------------------------------------------------


class Handled(StrEnum):
    IGNORED = "ignored"  # not an auto top-up payment, or still pending
    SEEN = "seen"  # not the payment in flight: handled before (a redelivery)
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DISABLED = "disabled"  # failed, and the third in a row: turned off


def outcome(topup: AutoTopup, payment: Payment) -> tuple[AutoTopup, str]:
    """What a settled auto top-up payment does to its auto top-up: (after, event detail-type). Pure.

    Completed: active (if it was on), failures 0, nothing in flight; `autotopup.succeeded`. Cancelled: failures + 1,
    nothing in flight; the third in a row turns it off (reason `declined`); `autotopup.failed` either way."""
    cleared = topup._replace(in_flight=None)
    if payment.status is PaymentStatus.COMPLETED:
        return cleared._replace(failures=0, state=ACTIVE if topup.enabled else DISABLED), outbox.AUTOTOPUP_SUCCEEDED
    failures = topup.failures + 1
    if failures >= MAX_FAILURES and topup.enabled:
        after = cleared._replace(failures=failures, enabled=False, state=DISABLED, reason="declined")
        return after, outbox.AUTOTOPUP_FAILED
    return cleared._replace(failures=failures, state=ACTIVE if topup.enabled else DISABLED), outbox.AUTOTOPUP_FAILED


def on_payment(store: Store, customer_id: str, payment_id: str) -> Handled:
    """A `payment.completed` or `payment.cancelled` event of an auto top-up payment: its outcome, once (the write is
    conditioned on the payment being the one in flight, which it then no longer is)."""
    payment = store.get(customer_id, payment_id, consistent=True)
    if payment is None or not payment.auto_topup or payment.status is PaymentStatus.PENDING:
        return Handled.IGNORED
    for _ in range(_ATTEMPTS):
        held = store.auto_topup(customer_id)
        if held is None or held.in_flight != payment.id:
            return Handled.SEEN
        after, kind = outcome(held, payment)
        event = _event(kind, customer_id, f"{payment.id}:{payment.status.value}", after, payment)
        written, _ = store.write_auto_topup(customer_id, after, seen_rev=held.rev, event=event)
        if written is Written.DUPLICATE:
            return Handled.SEEN
        if written is Written.WRITTEN:
            if kind == outbox.AUTOTOPUP_SUCCEEDED:
                return Handled.SUCCEEDED
            return Handled.DISABLED if after.state == DISABLED and held.state != DISABLED else Handled.FAILED
    raise RetryLater("the auto top-up kept changing while a payment's outcome was recorded", http_status=503)


# ---- the e-mails (payments.notices) ---------------------------------------------------------------------------------


def _recipients(store: Store, customer_id: str) -> tuple[str, ...]:
    """The consenting customer's e-mail (the mandate's), and the account's receipt addresses."""
    topup = store.auto_topup(customer_id)
    mandate = store.mandate(customer_id, topup.mandate_id) if topup and topup.mandate_id else None
    found = [mandate.email] if mandate and mandate.email else []
    found += list(account.for_customer(store, customer_id).receipt_emails)
    return tuple(dict.fromkeys(found))


def requires_action_email(store: Store, detail: dict[str, Any], *, wait: bool = True) -> Email | None:
    """`autotopup.requires_action`: the bank wants the customer to confirm the top-up, on the page."""
    from payments.config import site_settings

    customer_id = str(detail["customer_id"])
    to = _recipients(store, customer_id)
    payment = detail.get("payment") or {}
    if not to:
        return None
    text = (
        f"Your bank asks you to confirm the automatic top-up of {payment.get('amount')} {payment.get('currency')} "
        f"(payment {payment.get('id')}).\n\nConfirm it here: {site_settings().portal_return_url}\n\n"
        "No other automatic top-up is made until it is confirmed or fails.\n"
    )
    return Email(to=to, subject="Confirm your automatic top-up", text=text, key=str(detail["event_id"]))


def disabled_email(store: Store, detail: dict[str, Any], *, wait: bool = True) -> Email | None:
    """`autotopup.failed` when it turned the auto top-up off (3 declines in a row), and `autotopup.disabled` (a card
    removed or expired, an operator): the auto top-up is off, and why. None for a failure that left it on."""
    if not detail.get("disabled"):
        return None
    customer_id = str(detail["customer_id"])
    to = _recipients(store, customer_id)
    if not to:
        return None
    why = {
        "declined": f"the card was declined {MAX_FAILURES} times in a row",
        "card_removed": "the card it charged was removed",
        "card_expired": "the card it charged has expired",
        "operator": "our support turned it off",
    }.get(str(detail.get("reason") or ""), "it was turned off")
    text = (
        f"Automatic top-ups of your {detail.get('currency')} balance are off: {why}.\n\n"
        "Turn them on again, with a saved card, on your account page.\n"
    )
    return Email(to=to, subject="Automatic top-up is off", text=text, key=str(detail["event_id"]))
