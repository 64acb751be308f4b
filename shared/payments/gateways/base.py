"""The one small interface every payment gateway adapter implements (docs/gateways.md).

An adapter module (`payments/gateways/<name>.py`) holds everything about one gateway: creating a
payment there, verifying and reading its webhooks, and asking it about a payment's status. Adding a
gateway is adding a file and its entry in `payments.registry.GATEWAYS`
(docs/gateways.md#the-registry-and-each-gateways-settings).

Adapters never touch DynamoDB and never decide statuses: they translate between the gateway's shapes
and these neutral types. `payments.status` decides, `payments.store` writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

# Defined in payments.errors so that api.py maps it to HTTP without importing the gateway modules.
from payments.errors import GatewayError as GatewayError
from payments.models import DisputeStatus, PaymentStatus, RefundStatus
from payments.money import Money


class GatewayInputRejected(GatewayError):
    """The gateway cannot take a value the caller sent: an unknown Stripe PaymentMethod, a currency or amount it
    does not take. 422 naming the field; the same request can never succeed, so a payment already recorded for
    it is cancelled with the reason."""

    http_status = 422

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class CurrencyNotSupported(GatewayInputRejected):
    """The gateway cannot take this currency/amount; raised before any network call (422)."""

    def __init__(self, message: str, field: str = "currency") -> None:
        super().__init__(message, field)


class GatewayUnavailable(GatewayError):
    """Timeout, connection error or 5xx from the gateway: outcome unknown, safe to retry (503)."""

    http_status = 503


class GatewayRejected(GatewayError):
    """The gateway answered 4xx or garbage for a request we built: our side or config is wrong (502)."""

    http_status = 502


logger = logging.getLogger(__name__)
# What reading an answer of an unexpected shape raises (a field missing, another type, a bad amount).
_UNREADABLE = (KeyError, IndexError, AttributeError, TypeError, ValueError)


@contextmanager
def reading_answers(gateway: str, doing: str) -> Iterator[None]:
    """Around a call to an adapter: an answer it could not read becomes GatewayRejected (502), so no gateway
    answer ever surfaces as a 500. The traceback is logged; the payment stays as it was, for the retry or
    for reconciliation."""
    try:
        yield
    except GatewayError:
        raise
    except _UNREADABLE as exc:
        logger.exception("gateway answer not understood", extra={"gateway": gateway, "doing": doing})
        raise GatewayRejected(f"{gateway} answered in a form we could not read while we tried to {doing}") from exc


class SignatureInvalid(Exception):
    """A webhook whose signature is missing, malformed, stale or wrong (answered 400/401)."""

    def __init__(self, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """What every adapter is configured with. Each adapter module subclasses it with its own credentials, named
    as its registry entry's `credentials` (a test checks they agree). repr hides every value."""

    api_base: str = ""  # the loader always sets it: the registry default or its variable
    public_base_url: str = "http://127.0.0.1:3000"  # IPNs go back here (the deployed API's URL)
    portal_return_url: str = "http://127.0.0.1:3000/"  # where a redirecting gateway sends the payer back

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<redacted>)"


class Capability(StrEnum):
    """What an adapter can do besides creating payments and reading webhooks; declared, never probed."""

    CAPTURE = "capture"  # an approval event needs our capture call (PayPal)
    RECONCILE = "reconcile"  # the gateway can be asked about a payment (fetch_status)
    REFUND = "refund"  # the gateway has a refund API (refund, find_refund): operators refund through it


class NotSupported(GatewayError):
    """The gateway cannot do this (a capability it does not declare)."""

    http_status = 409


@dataclass(frozen=True, slots=True)
class CardInput:
    """Raw card fields, already validated (Luhn, expiry, CVC). Never stored, logged or repr'd."""

    number: str = field(repr=False)
    exp_month: int = field(repr=False)
    exp_year: int = field(repr=False)
    cvc: str = field(repr=False)

    def __repr__(self) -> str:  # keep card data out of logs and tracebacks
        return f"CardInput(last4={self.number[-4:]})"


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """What an adapter needs to start a payment at its gateway."""

    payment_id: str  # ours; travels in the gateway's metadata/reference fields
    customer_id: str  # ours; travels in metadata too, so a webhook finds the item with one GetItem
    money: Money  # positive
    description: str
    idempotency_key: str  # derived from the client's Idempotency-Key; pass on where the gateway takes one
    email: str | None = None
    return_url: str | None = None  # where a redirecting gateway sends the payer back
    cancel_url: str | None = None
    card: CardInput | None = None  # credit_card only
    payment_method: str | None = None  # credit_card only: a Stripe PaymentMethod id (pm_...)
    attempt: int = 1  # which claim of the payment makes this call (2+ after a request died mid-way)
    # credit_card with a saved card (docs/saved-cards.md): the Stripe Customer the card's PaymentMethod is attached to
    stripe_customer: str | None = None


@dataclass(frozen=True, slots=True)
class CreateResult:
    """What the gateway said. `status` is pending unless the gateway settled it at once (cards)."""

    gateway_ref: str  # the gateway's id for it: pi_..., PayPal order id, order_..., reference, invoice id
    status: PaymentStatus = PaymentStatus.PENDING
    next_action: dict[str, Any] | None = None  # docs/api.md#next-actions for the client
    failure_reason: str | None = None  # for a decline
    card_brand: str | None = None
    card_last4: str | None = None
    # False when next_action holds a secret (Stripe's client_secret): it is then read from the gateway again
    # (`resume`) instead of being stored.
    storable_next_action: bool = True


@dataclass(frozen=True, slots=True)
class RefundRequest:
    """An operator's refund of (part of) a paid payment, through the gateway's refund API."""

    gateway_ref: str  # the payment's gateway object, as we stored it (pi_..., PayPal order, order_..., reference)
    money: Money  # positive; the store has already reserved it against what is refundable
    key: str  # our refund entry's id: the idempotency key where the gateway takes one, and our reference in
    #           the gateway's refund (metadata, custom_id, receipt, note) so `find_refund` can find it again
    payment_id: str  # the refunded payment (ours)
    customer_id: str
    reason: str | None = None  # the operator's, passed on where the gateway keeps one


@dataclass(frozen=True, slots=True)
class RefundAnswer:
    """What the gateway says about one refund: accepted (`pending`), made (`succeeded`) or refused (`failed`)."""

    refund_id: str  # the gateway's id for the refund (re_..., PayPal refund id, rfnd_..., Paystack refund id)
    status: RefundStatus
    money: Money  # what the gateway refunds
    reason: str | None = None  # why it failed, if it did


class EventKind(StrEnum):
    SUCCESS = "success"  # money arrived -> completed
    FAILURE = "failure"  # failed / cancelled / expired -> cancelled
    REFUND = "refund"  # money went back -> a new negative refund payment
    REFUND_FAILED = "refund_failed"  # a refund was not made after all -> its entry is cancelled, counts again
    CAPTURE = "capture"  # PayPal order approved: we must capture it
    HELD = "held"  # the gateway holds the payment (reason says why): still pending, and not to be timed out
    PARTIAL = "partial"  # part of the payment arrived (NOWPayments partially_paid): credit what arrived (`money`)
    DISPUTE = "dispute"  # a dispute opened, changed or decided: the payment shows it; no money moves
    CHARGEBACK = "chargeback"  # the gateway withdrew a dispute's funds (or reversed the payment): a negative entry
    CHARGEBACK_REVERSAL = "chargeback_reversal"  # it reinstated them: a positive entry
    FEE = "fee"  # the gateway reports its fee later (Stripe's charge.updated): the payment shows it; nothing moves
    SETUP_SUCCEEDED = "setup_succeeded"  # a saved card's SetupIntent succeeded (3-D Secure done): the card is usable
    SETUP_FAILED = "setup_failed"  # ... or failed: the card is marked failed (docs/saved-cards.md)
    IGNORED = "ignored"  # anything else: answered 200 and dropped


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """A verified webhook, read into neutral terms."""

    provider: str
    event_id: str  # the gateway's unique id for this delivery's event (dedupe key)
    event_type: str  # the gateway's own name for it, e.g. payment_intent.succeeded
    kind: EventKind
    payment_id: str | None  # ours, from metadata; None if the event does not carry it
    customer_id: str | None  # ours, from metadata
    gateway_ref: str | None = None
    money: Money | None = None  # amount the event says moved (paid, or refunded for REFUND)
    reason: str | None = None  # failure reason, if any
    refund_id: str | None = None  # the gateway's refund id, for REFUND and REFUND_FAILED
    uncaptured: bool = False  # REFUND of a payment the gateway never captured (Razorpay's automatic refunds)
    refund_status: RefundStatus | None = None  # REFUND events: the refund's state at the gateway, where it says
    # DISPUTE, CHARGEBACK, CHARGEBACK_REVERSAL: the gateway's id of the dispute (or of the reversal, where there is
    # no dispute), and its state where the event says; `money` is the amount disputed or moved, `reason` its reason.
    dispute_id: str | None = None
    dispute_status: DisputeStatus | None = None
    # CHARGEBACK, CHARGEBACK_REVERSAL: the id under which the funds move once each way, where it is not the
    # dispute's (PayPal: the capture, which a dispute lost and a PAYMENT.CAPTURE.REVERSED both take back).
    funds_id: str | None = None
    requested: Money | None = None  # PARTIAL: the amount the payment was asked for (`money`: what arrived)
    # SUCCESS (and FEE): the fee the gateway says it kept, in the currency it says (settlement records it only in the
    # payment's currency, docs/gateways.md#gateway-fees); None where the event carries none or it cannot be read.
    fee: Money | None = None
    # SETUP_SUCCEEDED, SETUP_FAILED (`gateway_ref`: the SetupIntent): its PaymentMethod, and the card's details where
    # the event carries them (an expanded PaymentMethod); `reason` why it failed.
    payment_method: str | None = None
    card: SavedCardDetails | None = None


@dataclass(frozen=True, slots=True)
class SavedCardDetails:
    """What may be stored of a card: brand, last 4 digits, expiry. Never the number or the CVC."""

    brand: str | None = None
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None


@dataclass(frozen=True, slots=True)
class SetupResult:
    """What the gateway said about a SetupIntent (saving a card for off-session use, docs/saved-cards.md).

    `status`: "succeeded" (usable now), "requires_action" (3-D Secure: `client_secret` for the client, never
    stored) or "failed" (`failure_reason`). `setup_intent` may be "" for a card refused before any SetupIntent."""

    setup_intent: str
    status: str
    payment_method: str | None = None
    brand: str | None = None
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None
    client_secret: str | None = field(default=None, repr=False)
    failure_reason: str | None = None

    @property
    def card(self) -> SavedCardDetails:
        return SavedCardDetails(self.brand, self.last4, self.exp_month, self.exp_year)


@dataclass(frozen=True, slots=True)
class DisputeAnswer:
    """What the gateway's API says about one dispute now (reconciliation of a dispute event that was lost)."""

    dispute_id: str
    status: DisputeStatus
    money: Money  # disputed, in the payment's currency
    reason: str | None = None
    withdrawn: bool = False  # the gateway took the disputed funds back from the merchant
    reinstated: bool = False  # ... and gave them back
    funds_id: str | None = None  # as GatewayEvent.funds_id


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    """What the gateway's API says about a payment now (for reconciliation)."""

    kind: EventKind  # SUCCESS, FAILURE, CAPTURE (PayPal: approved, not captured yet) or IGNORED (still open / unknown)
    money: Money | None = None
    reason: str | None = None
    fee: Money | None = None  # SUCCESS: the gateway's fee, where its answer says (as GatewayEvent.fee)


class Gateway(Protocol):
    """One payment gateway. Implementations are cheap to construct; they read config lazily.

    One gateway object per payment: `create` is called under a claim the store holds for the payment, with
    `request.attempt` counting the claims. A later attempt (its predecessor died or failed) gets the earlier
    object back where the gateway allows: repeating `create` with the same idempotency key (Stripe, PayPal),
    `recover` (a lookup by our payment id: Razorpay orders by receipt), or else a new object whose reference
    `reference_for_attempt` chose and the store bound to the payment before the call (Paystack).
    """

    name: str
    capabilities: frozenset[Capability]
    object_name: str  # how a payment's description names what create makes: "PayPal order {ref}" ("": nothing)
    signature_headers: tuple[str, ...]  # the webhook headers its signature check reads (lower case)

    def check_currency(self, money: Money) -> None:
        """Raise CurrencyNotSupported if this gateway cannot take `money` (no network)."""

    def create(self, request: CreateRequest) -> CreateResult:
        """Start the payment at the gateway. Raises GatewayUnavailable/GatewayRejected/GatewayInputRejected."""

    def reference_for_attempt(self, payment_id: str, attempt: int) -> str | None:
        """The reference `create` will give this attempt's object, where we choose it (else None)."""

    def recover(self, request: CreateRequest) -> CreateResult | None:
        """The object an earlier attempt created for `request.payment_id`, if the gateway can look it up."""

    def resume(self, gateway_ref: str, stored_next_action: dict[str, Any] | None) -> CreateResult:
        """An object created earlier (the answer to a retry): as the gateway has it now where that can have
        moved on without a webhook (a card payment), else pending with the stored next action."""

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        """Raise SignatureInvalid unless the body is signed as this gateway signs. Headers are lower-case."""

    def parse_event(self, headers: Mapping[str, str], raw_body: bytes) -> GatewayEvent:
        """Read a verified webhook body. Raises ValueError if it is not the gateway's shape."""

    def fetch_status(self, gateway_ref: str, payment_id: str) -> StatusAnswer:
        """Ask the gateway about a payment (reconciliation). Raises GatewayUnavailable."""

    def capture(self, gateway_ref: str, request_id: str) -> StatusAnswer:
        """Capture an approved object (Capability.CAPTURE); idempotent by `request_id`. Else NotSupported."""

    def refund(self, request: RefundRequest) -> RefundAnswer:
        """Refund `request.money` of the payment through the gateway's refund API (Capability.REFUND), idempotent
        by `request.key` where the gateway takes a key. Raises GatewayUnavailable (outcome unknown: the caller asks
        `find_refund` before it tries again), GatewayInputRejected (the gateway refuses this refund: nothing was
        refunded), GatewayRejected; NotSupported without the capability."""

    def fetch_refund(self, gateway_ref: str, refund_id: str) -> RefundAnswer | None:
        """One refund of the payment whose gateway object is `gateway_ref`, by the gateway's refund id, as the
        gateway has it now (None: no such refund of that payment). Reconciliation asks it about refunds still
        `pending`, so a lost `refund.failed` or `refund.processed` is found. Raises GatewayUnavailable."""

    def fetch_dispute(self, gateway_ref: str, dispute_id: str) -> DisputeAnswer | None:
        """One dispute of the payment whose gateway object is `gateway_ref`, as the gateway has it now (None: no
        such dispute of that payment). Reconciliation asks it about disputes still open. NotSupported where the
        gateway has no disputes (NOWPayments)."""

    def find_refund(self, request: RefundRequest) -> RefundAnswer | None:
        """The refund an earlier `refund(request)` made, found at the gateway by `request.key` (None: it made
        none). Asked before a retry and by reconciliation, so a refund is never made twice."""
