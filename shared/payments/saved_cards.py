"""Saved cards (docs/saved-cards.md): save a card at Stripe for later, off-session use, list, make default, remove;
pay with one; and what the SetupIntent's webhooks do to a card (`apply_setup_event`).

What is stored of a card is brand, last 4 digits and expiry, with Stripe's PaymentMethod and SetupIntent ids
(`store.records.SavedCard`); the number and the CVC go to Stripe and nowhere else (not even a digest: the request's
fingerprint is keyed, as Make Payment's). One Stripe Customer per customer of ours, created once however many
requests race (`ensure_stripe_customer`). A card is usable (`active`) once its SetupIntent succeeded: at once, or
after 3-D Secure on setup when `setup_intent.succeeded` arrives; `setup_intent.setup_failed` marks it `failed`.
Only the SetupIntent pointer we stored binds an event to a card.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from payments import cards
from payments.checkout import CardFields
from payments.cursor import derived_key
from payments.errors import InvalidInput, NotFound, UpstreamError
from payments.gateways.base import (
    CardInput,
    EventKind,
    GatewayError,
    GatewayEvent,
    GatewayInputRejected,
    reading_answers,
)
from payments.identity import Caller
from payments.models import iso_z, utcnow
from payments.store.records import SavedCard

if TYPE_CHECKING:
    from payments.gateways.stripe_cards import StripeCards
    from payments.settlement import Result
    from payments.store import Store

logger = logging.getLogger(__name__)
PROVIDER = "stripe"
SHOWN_STATES = ("active", "pending")  # what GET /payment-methods lists
CARD_ID_PREFIX = "card_"


class SaveCardBody(BaseModel):
    """POST /payment-methods: the card's fields, or a Stripe PaymentMethod made by Stripe.js (pm_...)."""

    model_config = ConfigDict(hide_input_in_errors=True)

    card: CardFields | None = Field(default=None, description="Raw card fields; never stored or logged")
    payment_method: str | None = Field(default=None, max_length=255, description="A Stripe PaymentMethod id (pm_...)")


class SavedCardOut(BaseModel):
    """A saved card: only brand, last 4 digits and expiry (docs/saved-cards.md)."""

    id: str = Field(description="Ours (card_...): what saved_payment_method and the routes take")
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    default: bool = Field(description="The card an auto top-up and the page use unless told otherwise")
    state: str = Field(description="active (usable), pending (3-D Secure on setup not finished yet)")
    created_at: str


class SavedCardCreatedOut(SavedCardOut):
    next_action: dict[str, Any] | None = Field(
        default=None, description='{"type": "stripe_sdk", "client_secret"} while the bank wants 3-D Secure'
    )


class SavedCardsOut(BaseModel):
    items: list[SavedCardOut]


def card_out(card: SavedCard) -> dict[str, Any]:
    return SavedCardOut(
        id=card.id,
        brand=card.brand,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        default=card.default,
        state=card.state,
        created_at=card.created_at,
    ).model_dump()


@dataclass(frozen=True)
class SaveCommand:
    """A validated POST /payment-methods. `fingerprint`: a keyed digest of the body, for Powertools' same-key check."""

    customer_id: str
    idempotency_key: str
    card: CardInput | None
    payment_method: str | None
    email: str | None
    fingerprint: str

    def __repr__(self) -> str:
        return f"SaveCommand(customer_id={self.customer_id!r}, card={self.card!r})"

    def as_idempotency_data(self) -> dict[str, str]:
        return {"customer_id": self.customer_id, "key": self.idempotency_key, "fingerprint": self.fingerprint}


def validate(body: SaveCardBody, caller: Caller, customer_id: str, key: str, *, today: date) -> SaveCommand:
    """Exactly one of card and payment_method; the card's fields checked as Make Payment checks them (422s name
    the field, never echo a value)."""
    if body.card is None and not body.payment_method:
        raise InvalidInput("card", "send card fields or a payment_method (pm_...)")
    if body.card is not None and body.payment_method:
        raise InvalidInput("payment_method", "send either card or payment_method, not both")
    card = None
    if body.card is not None:
        c = body.card
        card = cards.validate_card(c.number, c.exp_month, c.exp_year, c.cvc, today=today)
    elif body.payment_method and not body.payment_method.startswith("pm_"):
        raise InvalidInput("payment_method", "payment_method must be a Stripe PaymentMethod id (pm_...)")
    data = body.model_dump_json(exclude_none=True).encode()
    fingerprint = hmac.new(derived_key("saved-card-fingerprint"), data, hashlib.sha256).hexdigest()
    return SaveCommand(customer_id, key, card, body.payment_method, caller.email, fingerprint)


def card_id_for(customer_id: str, key: str) -> str:
    """Our id of the card a request saves: the same for a retry of it (same customer and Idempotency-Key)."""
    mac = hmac.new(derived_key("saved-card-id"), f"{customer_id}\x1f{key}".encode(), hashlib.sha256).hexdigest()
    return CARD_ID_PREFIX + mac[:24]


def _setup_key(customer_id: str, key: str) -> str:
    """The SetupIntent's idempotency key at Stripe: stable per (customer, key), nothing personal."""
    return "seti:" + hashlib.sha256(f"{customer_id}\x1f{key}".encode()).hexdigest()[:48]


def default_cards() -> StripeCards:
    from payments.gateways import gateway
    from payments.gateways.stripe_cards import cards_api

    return cards_api(gateway(PROVIDER))


CardsFor = Callable[[], "StripeCards"]


def ensure_stripe_customer(store: Store, stripe: StripeCards, customer_id: str, email: str | None) -> str:
    """The customer's one Stripe Customer, created once however many requests race
    (docs/saved-cards.md#one-stripe-customer-however-many-requests-race):

    1. recorded already: use it;
    2. claim it (`CUST#<customer>`/`STRIPE_CUSTOMER`, the first claim's e-mail kept);
    3. create it at Stripe with an idempotency key derived from our customer id and the claim's parameters, so
       every racing caller gets the same Customer back;
    4. record it, conditioned on none other being recorded; the recorded one wins.
    Crash windows: after 2 (claimed, none created) the next request creates it; after 3 (created, not recorded)
    the next request within Stripe's 24 hours of key replay gets the same Customer, later a second, empty one is
    created and only the recorded one is ever used (the other holds no card)."""
    recorded = store.stripe_customer(customer_id)
    if recorded:
        return recorded
    recorded, claimed_email = store.claim_stripe_customer(customer_id, email)
    if recorded:
        return recorded
    with reading_answers(PROVIDER, "create the customer"):
        created = stripe.ensure_customer(customer_id, claimed_email)
    return store.record_stripe_customer(customer_id, created)


def save(store: Store, command: SaveCommand, cards_for: CardsFor = default_cards) -> dict[str, Any]:
    """Save the card: the Stripe Customer, then a SetupIntent confirmed at once for off-session use, then the card
    and its SetupIntent pointer. The answer as {"status", "body"}: 201 (active, or pending with next_action), or
    402 when the bank refused the card (the card is kept as failed and not listed)."""
    stripe = cards_for()
    try:
        stripe_customer = ensure_stripe_customer(store, stripe, command.customer_id, command.email)
        card_id = card_id_for(command.customer_id, command.idempotency_key)
        with reading_answers(PROVIDER, "save the card"):
            result = stripe.setup_card(
                stripe_customer,
                card=command.card,
                payment_method=command.payment_method,
                idempotency_key=_setup_key(command.customer_id, command.idempotency_key),
                metadata={"customer_id": command.customer_id, "card_id": card_id},
            )
    except GatewayInputRejected as exc:  # an unknown PaymentMethod: the caller's to change
        raise InvalidInput(exc.field, exc.message) from exc
    except GatewayError as exc:
        raise UpstreamError(
            f"Stripe did not answer properly: {exc.message}; retry with the same Idempotency-Key",
            http_status=exc.http_status,
        ) from exc
    state = {"succeeded": "active", "requires_action": "pending"}.get(result.status, "failed")
    card = SavedCard(
        id=card_id,
        customer_id=command.customer_id,
        payment_method=result.payment_method,
        setup_intent=result.setup_intent,
        state=state,
        brand=result.brand,
        last4=result.last4 or (command.card.number[-4:] if command.card else None),
        exp_month=result.exp_month or (command.card.exp_month if command.card else None),
        exp_year=result.exp_year or (command.card.exp_year if command.card else None),
        default=False,
        created_at=iso_z(utcnow()),
    )
    stored, _ = store.put_saved_card(card, PROVIDER)
    if stored.state == "failed":
        from payments.declines import payer_message

        message = payer_message(result.failure_reason) or "the card was declined"
        return {"status": 402, "body": {"message": message, "field": "card", "card": card_out(stored)}}
    body = card_out(stored)
    body["next_action"] = (
        {"type": "stripe_sdk", "client_secret": result.client_secret}
        if stored.state == "pending" and result.client_secret
        else None
    )
    return {"status": 201, "body": body}


def listing(store: Store, customer_id: str) -> dict[str, Any]:
    return {"items": [card_out(c) for c in store.saved_cards(customer_id) if c.state in SHOWN_STATES]}


def _shown(store: Store, customer_id: str, card_id: str) -> SavedCard:
    card = store.saved_card(customer_id, card_id)
    if card is None or card.state not in SHOWN_STATES:
        raise NotFound(f"no saved card {card_id}")
    return card


def make_default(store: Store, customer_id: str, card_id: str) -> dict[str, Any]:
    """POST /payment-methods/{id}/default: an active card becomes the default (a pending one: 409)."""
    card = _shown(store, customer_id, card_id)
    if card.state != "active" or not store.set_default_card(customer_id, card_id):
        from payments.errors import Conflict

        raise Conflict(f"card {card_id} is not usable yet (3-D Secure on setup is not finished)")
    updated = store.saved_card(customer_id, card_id)
    assert updated is not None
    return card_out(updated)


def _next_default(store: Store, customer_id: str, removed: str) -> str | None:
    """The newest other active card (`saved_cards` is newest first)."""
    return next((c.id for c in store.saved_cards(customer_id) if c.state == "active" and c.id != removed), None)


def remove(store: Store, customer_id: str, card_id: str, cards_for: CardsFor = default_cards) -> None:
    """DELETE /payment-methods/{id}: the card is removed here first (never charged again, the auto top-up off), then
    its PaymentMethod is detached at Stripe; a DELETE again after a failed detach detaches it then. Another
    customer's id, or a card removed and detached: 404."""
    card = store.saved_card(customer_id, card_id)
    if card is None or (card.state == "removed" and store.card_detached(customer_id, card_id)):
        raise NotFound(f"no saved card {card_id}")
    for _ in range(5):  # the default may change meanwhile (another removal, a make-default): judge it again
        if card.state == "removed":
            break
        if store.remove_saved_card(
            customer_id, card_id, was_default=card.default, new_default=_next_default(store, customer_id, card_id)
        ):
            break
        again = store.saved_card(customer_id, card_id)
        assert again is not None
        card = again
    # auto top-up: a removed card is never charged again; the auto top-up that used it is turned off here too.
    if importlib.util.find_spec("payments.autotopup") is not None:
        autotopup = importlib.import_module("payments.autotopup")
        autotopup.card_removed(store, customer_id, card_id)
    if card.payment_method:
        try:
            with reading_answers(PROVIDER, "detach the card"):
                cards_for().detach(card.payment_method)
        except GatewayError as exc:
            raise UpstreamError(
                f"the card is removed, but Stripe did not detach it: {exc.message}; send the DELETE again",
                http_status=exc.http_status,
            ) from exc
    store.mark_card_detached(customer_id, card_id)


def usable_card(store: Store, customer_id: str, card_id: str) -> tuple[SavedCard, str]:
    """A saved card Make Payment may charge, and the Stripe Customer it is attached to: 422 naming
    saved_payment_method for an unknown, another customer's, removed, failed or pending card."""
    card = store.saved_card(customer_id, card_id) if card_id.startswith(CARD_ID_PREFIX) else None
    if card is None or card.state == "removed" or card.state == "failed":
        raise InvalidInput("saved_payment_method", "no saved card with this id")
    if card.state != "active" or not card.payment_method:
        raise InvalidInput("saved_payment_method", "this card is not usable yet: 3-D Secure on setup is not finished")
    stripe_customer = store.stripe_customer(customer_id)
    if stripe_customer is None:
        raise InvalidInput("saved_payment_method", "no saved card with this id")
    return card, stripe_customer


def apply_setup_event(store: Store, event: GatewayEvent) -> Result:
    """setup_intent.succeeded / setup_intent.setup_failed: the card whose SetupIntent pointer we stored becomes
    active (the default if it has none) or failed, once. A SetupIntent we have no pointer for is about no card of
    ours; one whose PaymentMethod is not the card's is a mismatch."""
    from payments.settlement import Outcome, Result, record_only

    def recorded(outcome: Outcome) -> Result:
        return Result(outcome if record_only(store, event) else Outcome.DUPLICATE)

    card = store.card_by_setup(event.provider, event.gateway_ref) if event.gateway_ref else None
    if card is None:
        logger.warning("setup event about no card of ours", extra={"type": event.event_type})
        return recorded(Outcome.UNKNOWN_PAYMENT)
    if event.payment_method and card.payment_method and event.payment_method != card.payment_method:
        logger.error("setup event names another payment method than the card's", extra={"card_id": card.id})
        return recorded(Outcome.MISMATCH)
    state = "active" if event.kind is EventKind.SETUP_SUCCEEDED else "failed"
    details = None
    if event.card is not None:  # only where the event carries an expanded PaymentMethod
        shown = event.card
        details = {"brand": shown.brand, "last4": shown.last4, "exp_month": shown.exp_month, "exp_year": shown.exp_year}
    changed = store.settle_saved_card(
        card.customer_id, card.id, state, payment_method=event.payment_method or None, details=details
    )
    if not changed:
        return recorded(Outcome.UNCHANGED)
    record_only(store, event)
    logger.info("saved card settled", extra={"card_id": card.id, "state": state, "reason": event.reason})
    return Result(Outcome.CARD_ACTIVE if state == "active" else Outcome.CARD_FAILED)
