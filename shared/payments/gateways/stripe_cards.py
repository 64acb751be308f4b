"""Saved cards at Stripe (docs/saved-cards.md): the Customer, SetupIntents (`usage=off_session`), detaching.

The calls use the Stripe adapter's own `stripe.StripeClient` (`StripeGateway.client`): same API base, timeouts,
retries and key. Like the adapter, this module translates and decides nothing: `payments.saved_cards` decides,
`payments.store` writes. Raw card numbers and CVCs go to POST /v1/payment_methods and nowhere else.

- `ensure_customer(customer_id, email)`: POST /v1/customers with an idempotency key derived from our customer id
  alone, so two racing requests get the same Customer back from Stripe (its replay lasts 24 hours).
- `setup_card(stripe_customer, card | payment_method, idempotency_key)`: a PaymentMethod from the raw fields where
  given, then a SetupIntent confirmed at once for off-session use; `SetupResult` says succeeded, requires_action
  (3-D Secure: the client_secret, never stored) or failed.
- `detach(payment_method)`: POST /v1/payment_methods/{pm}/detach; one that is not attached (any more) is done.
- `setup_event(...)`: setup_intent.succeeded / setup_intent.setup_failed as a neutral GatewayEvent.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import stripe
from stripe.params import PaymentMethodCreateParamsCard, SetupIntentCreateParams

from payments.gateways.base import (
    CardInput,
    EventKind,
    GatewayEvent,
    GatewayRejected,
    SavedCardDetails,
    SetupResult,
)
from payments.gateways.payload import read_answer
from payments.gateways.stripe import (
    StripeGateway,
    _bounded_key,
    _check_object_id,
    _error_reason,
    _gateway_error,
    _sdk_prints_bodies,
)
from payments.gateways.stripe_models import PaymentError, SavedPaymentMethod, SetupIntent, SetupIntentEvent

logger = logging.getLogger(__name__)

SETUP_EVENT_KINDS: dict[str, EventKind] = {
    "setup_intent.succeeded": EventKind.SETUP_SUCCEEDED,
    "setup_intent.setup_failed": EventKind.SETUP_FAILED,
}


def customer_key(customer_id: str) -> str:
    """The idempotency key of creating our customer's Stripe Customer: the same for every request of theirs."""
    return "customer:" + hashlib.sha256(f"stripe-customer\x1f{customer_id}".encode()).hexdigest()[:48]


class StripeCards:
    """Saved-card calls over a Stripe adapter's client."""

    def __init__(self, adapter: StripeGateway) -> None:
        self.adapter = adapter

    @property
    def client(self) -> stripe.StripeClient:
        return self.adapter.client

    def ensure_customer(self, customer_id: str, email: str | None) -> str:
        """The Stripe Customer of our customer: created, or (the same key again) replayed by Stripe. Its parameters
        must be the same for every caller, so `email` is the one the store's claim kept (the first caller's)."""
        params: dict[str, Any] = {
            "description": f"Customer {customer_id}"[:350],
            "metadata": {"customer_id": customer_id},
        }
        if email:
            params["email"] = email
        try:
            created = self.client.v1.customers.create(params, {"idempotency_key": customer_key(customer_id)})  # type: ignore[arg-type]
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "create the customer") from None
        customer = created.to_dict(recursive=False).get("id")
        if not isinstance(customer, str) or not customer.startswith("cus_"):
            raise GatewayRejected("Stripe answered a customer without its id")
        return customer

    def setup_card(
        self,
        stripe_customer: str,
        *,
        card: CardInput | None = None,
        payment_method: str | None = None,
        idempotency_key: str,
        metadata: dict[str, str] | None = None,
    ) -> SetupResult:
        """A SetupIntent for `stripe_customer`, confirmed now with the card (`usage=off_session`)."""
        _check_object_id(stripe_customer, "customer")
        known = SavedCardDetails()
        try:
            if card is not None:
                payment_method, known = self._payment_method(card, idempotency_key)
            if not payment_method:
                raise ValueError("saving a card needs card fields or a payment_method")
            params: SetupIntentCreateParams = {
                "customer": stripe_customer,
                "payment_method": payment_method,
                # no redirecting methods, so confirming needs no return_url
                "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
                "usage": "off_session",
                "confirm": True,
                "use_stripe_sdk": True,  # next_action is then for Stripe.js handleNextAction(client_secret)
                "metadata": metadata or {},
                "expand": ["payment_method"],
            }
            answer = self.client.v1.setup_intents.create(params, {"idempotency_key": _bounded_key(idempotency_key)})
        except stripe.CardError as exc:  # declined at the card or at the setup: an answer, not an error
            return _setup_declined(exc, known)
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "save the card") from None
        return setup_result(read_answer(SetupIntent, answer.to_dict(), "stripe", "the SetupIntent"), known)

    def _payment_method(self, card: CardInput, idempotency_key: str) -> tuple[str, SavedCardDetails]:
        if _sdk_prints_bodies():
            raise GatewayRejected("refusing to send card data while Stripe SDK debug output is on (STRIPE_LOG)")
        fields: PaymentMethodCreateParamsCard = {
            "number": card.number,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "cvc": card.cvc,
        }
        created = self.client.v1.payment_methods.create(
            {"type": "card", "card": fields}, {"idempotency_key": _bounded_key(idempotency_key + ":pm")}
        )
        method = read_answer(SavedPaymentMethod, created.to_dict(), "stripe", "the PaymentMethod")
        return method.id, _details(method)

    def retrieve_setup(self, setup_intent: str) -> SetupResult:
        """GET /v1/setup_intents/{id} (the payment method expanded): as Stripe has it now."""
        _check_object_id(setup_intent, "setup intent")
        try:
            answer = self.client.v1.setup_intents.retrieve(setup_intent, {"expand": ["payment_method"]})
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "read the SetupIntent") from None
        return setup_result(read_answer(SetupIntent, answer.to_dict(), "stripe", "the SetupIntent"))

    def detach(self, payment_method: str) -> None:
        """POST /v1/payment_methods/{pm}/detach. A PaymentMethod Stripe no longer has attached (detached before, or
        never attached) is done: Stripe answers 400 for it."""
        _check_object_id(payment_method, "payment method")
        try:
            self.client.v1.payment_methods.detach(payment_method)
        except stripe.InvalidRequestError as exc:
            if exc.http_status in (400, 404):
                logger.info("stripe payment method was not attached", extra={"stripe_code": exc.code})
                return
            raise _gateway_error(exc, "detach the card") from None
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "detach the card") from None


def cards_api(adapter: Any) -> StripeCards:
    """The saved-card calls of the Stripe adapter `adapter` (`payments.gateways.gateway("stripe")`)."""
    if not isinstance(adapter, StripeGateway):
        raise TypeError("saved cards are Stripe's")
    return StripeCards(adapter)


def _details(method: SavedPaymentMethod | None) -> SavedCardDetails:
    card = method.card if method is not None else None
    if card is None:
        return SavedCardDetails()
    return SavedCardDetails(card.brand, card.last4, card.exp_month, card.exp_year)


_SETUP_STATUSES = {"succeeded": "succeeded", "requires_action": "requires_action"}


def setup_result(intent: SetupIntent, known: SavedCardDetails | None = None) -> SetupResult:
    """What a SetupIntent's state means for the saved card. `processing` (cards do not) reads as requires_action
    without a secret: the webhook decides."""
    details = _details(intent.payment_method)
    if known is not None and details.last4 is None:
        details = known
    method = intent.payment_method.id if intent.payment_method is not None else None
    status = _SETUP_STATUSES.get(intent.status or "")
    reason = None
    if status is None:
        if intent.status == "processing":
            status = "requires_action"
        else:  # requires_payment_method after a failed attempt, canceled, or anything we do not know
            status = "failed"
            error = intent.last_setup_error
            reason = _error_reason(error) if error is not None else (intent.status or "failed")
    return SetupResult(
        setup_intent=intent.id,
        status=status,
        payment_method=method,
        brand=details.brand,
        last4=details.last4,
        exp_month=details.exp_month,
        exp_year=details.exp_year,
        client_secret=intent.client_secret if status == "requires_action" else None,
        failure_reason=reason,
    )


def _setup_declined(exc: stripe.CardError, known: SavedCardDetails) -> SetupResult:
    """A card refused while saving it: at POST /v1/payment_methods (no SetupIntent yet) or at the SetupIntent's
    confirmation (the error names it)."""
    error = exc.error
    setup_id, method_id, details = "", None, known
    if error is not None:
        fields = error.to_dict()
        setup = fields.get("setup_intent")
        if isinstance(setup, dict) and isinstance(setup.get("id"), str):
            setup_id = setup["id"]
        method = fields.get("payment_method")
        if isinstance(method, dict) and isinstance(method.get("id"), str):
            read = SavedPaymentMethod.model_validate(method)
            method_id, details = read.id, _details(read) if details.last4 is None else details
    reason = _error_reason(error) if error is not None else f"card_declined: {exc.code or 'declined'}"
    return SetupResult(
        setup_intent=setup_id,
        status="failed",
        payment_method=method_id,
        brand=details.brand,
        last4=details.last4,
        exp_month=details.exp_month,
        exp_year=details.exp_year,
        failure_reason=reason,
    )


def setup_event(provider: str, event: SetupIntentEvent, kind: EventKind) -> GatewayEvent:
    """setup_intent.succeeded / setup_intent.setup_failed: about the SetupIntent (`gateway_ref`), whose pointer we
    stored is the only proof of which card it is (docs/saved-cards.md#binding-which-card-an-event-may-change)."""
    intent = event.data.object
    method = intent.payment_method
    details = _details(method)
    reason = None
    if kind is EventKind.SETUP_FAILED:
        error: PaymentError | None = intent.last_setup_error
        reason = _error_reason(error) if error is not None else event.type
    return GatewayEvent(
        provider=provider,
        event_id=event.id,
        event_type=event.type,
        kind=kind,
        payment_id=None,
        customer_id=intent.metadata.customer_id,
        gateway_ref=intent.id,
        reason=reason,
        payment_method=method.id if method is not None else None,
        card=details if details.last4 is not None else None,
    )
