"""Stripe adapter: card payments as PaymentIntents confirmed at once (docs/gateways.md#stripe).

What the client gets back to finish a payment is docs/api.md#next-actions.

Stripe's amount unit is not always ISO 4217's: zero-decimal currencies take whole units, ISK keeps
two decimals though only whole krónur can be charged, and three-decimal currencies take minor units
ending in 0. `_to_stripe_amount` / `_from_stripe_amount` are the only places that convert.

Operator refunds are Stripe Refunds of the PaymentIntent (`refund`), carrying our refund entry's id in their
metadata (`refund_entry`) so `find_refund` finds one again; their refund.* webhooks read as REFUND/REFUND_FAILED.

Disputes: charge.dispute.created/updated/closed read as DISPUTE (the Dispute's status as ours: `DISPUTE_STATUSES`),
charge.dispute.funds_withdrawn as CHARGEBACK and charge.dispute.funds_reinstated as CHARGEBACK_REVERSAL, each about the
PaymentIntent the Dispute names (`payment_intent`; a dispute naming none is about no payment of ours). Reconciliation
asks `fetch_dispute` (GET /v1/disputes/{id}) and `fetch_refund` (GET /v1/refunds/{id}).

Saved cards (Customers, SetupIntents, detaching; setup_intent.* webhooks) are `stripe_cards`, over this adapter's
client; a payment with a saved card is a PaymentIntent with `customer` set (`CreateRequest.stripe_customer`).

Raw card numbers and CVCs pass through `create` to Stripe's PaymentMethod API and nowhere else:
not into logs (the SDK's debug log of request bodies is filtered below), exceptions or results.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import stripe
from stripe.params import (
    PaymentIntentConfirmParams,
    PaymentIntentCreateParams,
    PaymentMethodCreateParamsCard,
    RefundCreateParams,
)

from payments._currencies import MINOR_DIGITS
from payments.gateways.base import (
    Capability,
    CreateRequest,
    CreateResult,
    CurrencyNotSupported,
    DisputeAnswer,
    EventKind,
    GatewayEvent,
    GatewayInputRejected,
    GatewayRejected,
    GatewaySettings,
    GatewayUnavailable,
    NotSupported,
    RefundAnswer,
    RefundRequest,
    SignatureInvalid,
    StatusAnswer,
)
from payments.gateways.payload import read_answer, read_webhook
from payments.gateways.stripe_models import (
    ChargeBalanceTransaction,
    ChargeEvent,
    ChargeRefundedEvent,
    Dispute,
    DisputeEvent,
    Event,
    Metadata,
    OtherEvent,
    PaymentError,
    PaymentIntentEvent,
    RefundEvent,
)
from payments.gateways.stripe_models import (
    PaymentIntent as IntentObject,
)
from payments.gateways.webhook_body import json_object
from payments.models import DisputeStatus, PaymentStatus, RefundStatus
from payments.money import Money

logger = logging.getLogger(__name__)

WEBHOOK_TOLERANCE_SECONDS = 300  # Stripe's own default: older signed timestamps are replays
TIMEOUT = (3.05, 20.0)  # (connect, read) seconds; the SDK's default read timeout is 80 s
NETWORK_RETRIES = 2  # safe: every POST carries an idempotency key
_IDEMPOTENCY_KEY_MAX = 255


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Presentment currencies Stripe accepts for card payments (docs.stripe.com/currencies), kept to the
# codes our ISO 4217 table knows. Funds codes (CLF, UYW, BOV...) and metals are not here on purpose.
SUPPORTED_CURRENCIES = (
    _codes(
        """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BWP BYN BZD CAD
    CDF CHF CLP CNY COP CRC CVE CZK DJF DKK DOP DZD EGP ETB EUR FJD FKP GBP GEL GIP GMD GNF GTQ GYD
    HKD HNL HTG HUF IDR ILS INR ISK JMD JOD JPY KES KGS KHR KMF KRW KWD KYD KZT LAK LBP LKR LRD LSL
    MAD MDL MGA MKD MMK MNT MOP MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP
    PKR PLN PYG QAR RON RSD RWF SAR SBD SCR SEK SGD SHP SLE SOS SRD SZL THB TJS TND TOP TRY TTD TWD
    TZS UAH UGX USD UYU UZS VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW
    """
    )
    & MINOR_DIGITS.keys()
)

ZERO_DECIMAL = _codes("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF")
THREE_DECIMAL = _codes("BHD JOD KWD OMR TND")  # last digit of the amount must be 0
# Stripe's minimum charge per settlement currency, in major units; others: at least one unit of
# Stripe's amount (Stripe itself refuses below ~0.50 USD equivalent, answered as GatewayRejected).
MINIMUM_CHARGE: dict[str, Decimal] = {
    k: Decimal(v)
    for k, v in {
        "USD": "0.50", "AED": "2.00", "AUD": "0.50", "BGN": "1.00", "BRL": "0.50", "CAD": "0.50", "CHF": "0.50",
        "CZK": "15.00", "DKK": "2.50", "EUR": "0.50", "GBP": "0.30", "HKD": "4.00", "HUF": "175.00", "INR": "0.50",
        "JPY": "50", "MXN": "10", "MYR": "2", "NOK": "3.00", "NZD": "0.50", "PLN": "2.00", "RON": "2.00",
        "SEK": "3.00", "SGD": "0.50", "THB": "10",
    }.items()
}  # fmt: skip
MAX_AMOUNT = 99_999_999  # eight digits of Stripe's amount unit


def _exponent(currency: str) -> int:
    """Decimal places of Stripe's amount unit for `currency` (ISK: 2, as Stripe keeps it)."""
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def _to_stripe_amount(money: Money) -> int:
    scaled = money.to_decimal().scaleb(_exponent(money.currency))
    if scaled != scaled.to_integral_value():
        raise CurrencyNotSupported(f"Stripe charges {money.currency} in whole units only", field="amount")
    return int(scaled)


def _from_stripe_amount(amount: int | None, currency: str | None) -> Money:
    if type(amount) is not int or currency is None:
        raise ValueError("Stripe amount must be an integer with a currency")
    code = currency.upper()
    if code not in MINOR_DIGITS:
        raise ValueError(f"unknown currency {currency!r}")
    return Money.from_decimal(Decimal(amount).scaleb(-_exponent(code)), code)


def _stripe_fee(transaction: ChargeBalanceTransaction) -> Money | None:
    """The balance transaction's `fee` as Money of its own currency (settlement keeps it only in the payment's)."""
    try:
        return _from_stripe_amount(transaction.fee, transaction.currency)
    except ValueError:
        return None


def _bounded_key(key: str) -> str:
    """Stripe keeps idempotency keys up to 255 chars; a longer one is replaced by its digest."""
    return key if len(key) <= _IDEMPOTENCY_KEY_MAX else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class _DropRequestBodies(logging.Filter):
    """The SDK logs every request body at DEBUG ("Post details"); for PaymentMethods that is card data."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "post_data=" not in str(record.msg)


logging.getLogger("stripe").addFilter(_DropRequestBodies())


def _sdk_prints_bodies() -> bool:
    """STRIPE_LOG=debug / stripe.log="debug" make the SDK print request bodies to stderr, past logging."""
    return "debug" in (str(stripe.log).lower(), os.environ.get("STRIPE_LOG", "").lower())


@dataclass(frozen=True, slots=True)
class StripeSettings(GatewaySettings):
    """stripe's credentials (registry: secret_key, webhook_secret), besides the API base every adapter has."""

    secret_key: str = ""
    webhook_secret: str = ""


class StripeGateway:
    """Cards through Stripe PaymentIntents. `client` is for tests; by default one is built lazily."""

    name = "stripe"
    object_name = ""  # a card payment is described by its card
    signature_headers = ("stripe-signature",)
    settings_class = StripeSettings
    capabilities = frozenset({Capability.RECONCILE, Capability.REFUND})

    def __init__(self, settings: StripeSettings, client: stripe.StripeClient | None = None) -> None:
        self._settings = settings
        self._client = client

    @property
    def client(self) -> stripe.StripeClient:
        if self._client is None:
            self._client = stripe.StripeClient(
                self._settings.secret_key,
                base_addresses={"api": self._settings.api_base},
                http_client=stripe.RequestsClient(timeout=TIMEOUT),
                max_network_retries=NETWORK_RETRIES,
            )
        return self._client

    # -- creating --------------------------------------------------------------------------------

    def check_currency(self, money: Money) -> None:
        code = money.currency
        if code not in SUPPORTED_CURRENCIES:
            raise CurrencyNotSupported(f"card payments cannot be made in {code}")
        if money.minor <= 0:
            raise CurrencyNotSupported("amount must be positive", field="amount")
        amount = _to_stripe_amount(money)
        if code in THREE_DECIMAL and amount % 10:
            raise CurrencyNotSupported(f"Stripe charges {code} in multiples of 0.010", field="amount")
        if amount > MAX_AMOUNT:
            raise CurrencyNotSupported(f"amount is above what a card payment in {code} can take", field="amount")
        minimum = MINIMUM_CHARGE.get(code)
        if minimum is not None and money.to_decimal() < minimum:
            raise CurrencyNotSupported(f"the smallest card payment in {code} is {minimum}", field="amount")

    def create(self, request: CreateRequest) -> CreateResult:
        self.check_currency(request.money)
        brand: str | None = None
        last4: str | None = None
        try:
            method_id, brand, last4 = self._payment_method(request)
            intent = self.client.v1.payment_intents.create(
                self._intent_params(request, method_id), {"idempotency_key": _bounded_key(request.idempotency_key)}
            )
        except stripe.CardError as exc:  # a decline, at the PaymentIntent or already at the card (bad number)
            return _declined(exc, brand, last4)
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "create the payment") from None  # the SDK error holds the request context

        return _result_of(intent, brand, last4)

    def charge_off_session(self, request: CreateRequest, stripe_customer: str) -> CreateResult:
        """Charge a saved card with the customer away (an auto top-up, docs/auto-topup.md): a PaymentIntent with the
        Stripe Customer and its PaymentMethod, `off_session` and `confirm`, idempotent by `request.idempotency_key`
        (the payment id: a retry after a crash gets the same PaymentIntent back). The bank wanting authentication
        (`authentication_required`) is a pending result whose next_action is the PaymentIntent's client secret, for
        the customer to confirm on the page; a decline is a cancelled result with the reason."""
        self.check_currency(request.money)
        if not request.payment_method:
            raise ValueError("an off-session charge needs the saved card's PaymentMethod")
        params: PaymentIntentCreateParams = {
            "amount": _to_stripe_amount(request.money),
            "currency": request.money.currency.lower(),
            "customer": stripe_customer,
            "payment_method": request.payment_method,
            "off_session": True,
            "confirm": True,
            # Nobody is there to follow a redirect: card methods only (else confirming asks for a return_url).
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "description": request.description[:1000],
            "metadata": {"payment_id": request.payment_id, "customer_id": request.customer_id},
            "expand": ["payment_method"],
        }
        try:
            intent = self.client.v1.payment_intents.create(
                params,
                {"idempotency_key": _bounded_key(request.idempotency_key)},
            )
        except stripe.CardError as exc:
            error = exc.error
            code = (error.code if error is not None else None) or exc.code
            if code == "authentication_required" and error is not None and error.payment_intent is not None:
                brand, last4 = _card_of(error.payment_method) if error.payment_method is not None else (None, None)
                return CreateResult(
                    error.payment_intent.id,
                    PaymentStatus.PENDING,
                    next_action={"type": "stripe_sdk", "client_secret": error.payment_intent.client_secret},
                    failure_reason="authentication_required",
                    card_brand=brand,
                    card_last4=last4,
                    storable_next_action=False,
                )
            return _declined(exc, None, None)
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "charge the saved card") from None
        result = _result_of(intent, None, None)
        if result.status is PaymentStatus.PENDING and result.next_action:
            return dataclasses.replace(result, failure_reason="authentication_required")
        return result

    def confirm_on_session(
        self, gateway_ref: str, payment_method: str, return_url: str, idempotency_key: str
    ) -> CreateResult:
        """The customer is back (docs/auto-topup.md#when-the-bank-asks): confirm the off-session PaymentIntent the
        bank held (`authentication_required` left it in requires_payment_method) again, on-session, with the same
        saved card, so the bank can ask for 3-D Secure: requires_action with the client secret for Stripe.js
        handleNextAction (read here, never stored), succeeded at once, or a decline (cancelled with the reason)."""
        _check_intent_id(gateway_ref)
        params: PaymentIntentConfirmParams = {
            "payment_method": payment_method,
            "use_stripe_sdk": True,
            "return_url": return_url or self._settings.portal_return_url,
            "expand": ["payment_method"],
        }
        try:
            intent = self.client.v1.payment_intents.confirm(
                gateway_ref, params, {"idempotency_key": _bounded_key(idempotency_key)}
            )
        except stripe.CardError as exc:
            return _declined(exc, None, None)
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "confirm the payment") from None
        return _result_of(intent, None, None)

    # -- one PaymentIntent per payment: a later attempt repeats `create` with the same idempotency keys, which
    # Stripe answers with the first PaymentIntent (gateways.base.Gateway) --

    def reference_for_attempt(self, payment_id: str, attempt: int) -> str | None:
        return None

    def recover(self, request: CreateRequest) -> CreateResult | None:
        return None

    def capture(self, gateway_ref: str, request_id: str) -> StatusAnswer:
        raise NotSupported("a card payment is captured when it is confirmed")

    def resume(self, gateway_ref: str, stored_next_action: dict[str, Any] | None) -> CreateResult:
        """The PaymentIntent as Stripe has it now (a retry of a payment still pending here): it may have
        succeeded since, or still wait for 3-D Secure, whose client_secret is read here, never stored."""
        if not gateway_ref.startswith("pi_"):
            raise GatewayRejected(f"{gateway_ref!r} is not a Stripe PaymentIntent id")
        try:
            intent = self.client.v1.payment_intents.retrieve(gateway_ref, {"expand": ["payment_method"]})
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "read the payment") from None
        return _result_of(intent, None, None)

    def _intent_params(self, request: CreateRequest, method_id: str) -> PaymentIntentCreateParams:
        params: PaymentIntentCreateParams = {
            "amount": _to_stripe_amount(request.money),
            "currency": request.money.currency.lower(),
            "payment_method": method_id,
            "confirm": True,
            "use_stripe_sdk": True,  # next_action is then for Stripe.js handleNextAction(client_secret)
            "return_url": request.return_url or self._settings.portal_return_url,
            "description": request.description[:1000],
            "metadata": {"payment_id": request.payment_id, "customer_id": request.customer_id},
            "expand": ["payment_method"],
        }
        if request.stripe_customer:  # a saved card: its PaymentMethod is attached to this Customer
            params["customer"] = request.stripe_customer
        return params

    def _payment_method(self, request: CreateRequest) -> tuple[str, str | None, str | None]:
        """The PaymentMethod to charge, and its brand/last4 when we already know them."""
        if request.payment_method:
            return request.payment_method, None, None
        card = request.card
        if card is None:
            raise ValueError("a card payment needs a card or a payment_method")
        if _sdk_prints_bodies():
            raise GatewayRejected("refusing to send card data while Stripe SDK debug output is on (STRIPE_LOG)")
        fields: PaymentMethodCreateParamsCard = {
            "number": card.number,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "cvc": card.cvc,
        }
        method = self.client.v1.payment_methods.create(
            {"type": "card", "card": fields},
            {"idempotency_key": _bounded_key(request.idempotency_key + ":pm")},
        )
        brand, last4 = _card_of(method)
        return method.id, brand, last4

    # -- refunds ---------------------------------------------------------------------------------

    def refund(self, request: RefundRequest) -> RefundAnswer:
        """POST /v1/refunds for part or all of the PaymentIntent, idempotent by `request.key`; Stripe answers the
        Refund (usually succeeded at once for cards, pending for some methods)."""
        _check_intent_id(request.gateway_ref)
        if not request.money.is_positive:
            raise GatewayInputRejected("a refund must be of a positive amount", field="amount")
        params: RefundCreateParams = {
            "payment_intent": request.gateway_ref,
            "amount": _to_stripe_amount(request.money),
            "metadata": _refund_metadata(request),
        }
        reason = _stripe_reason(request.reason)
        if reason is not None:
            params["reason"] = reason
        try:
            refund = self.client.v1.refunds.create(params, {"idempotency_key": _bounded_key(request.key)})
        except stripe.StripeError as exc:
            raise _refund_error(exc) from None
        answer = _refund_answer(refund)
        if answer.money != request.money:
            logger.error("stripe refunded another amount than asked", extra={"payment_id": request.payment_id})
        return answer

    def find_refund(self, request: RefundRequest) -> RefundAnswer | None:
        """The PaymentIntent's Refund whose metadata names our refund entry (`refund_entry` = `request.key`)."""
        _check_intent_id(request.gateway_ref)
        try:
            refunds = self.client.v1.refunds.list({"payment_intent": request.gateway_ref, "limit": 100})
            for refund in refunds.auto_paging_iter():  # newest first; pages on past 100
                metadata = refund.to_dict(recursive=False).get("metadata")
                entry = metadata.to_dict().get("refund_entry") if isinstance(metadata, stripe.StripeObject) else None
                if entry == request.key:
                    return _refund_answer(refund)
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "read the refunds") from None
        return None

    def fetch_refund(self, gateway_ref: str, refund_id: str) -> RefundAnswer | None:
        """GET /v1/refunds/{id}: the Refund as Stripe has it now, if it returns money of this PaymentIntent."""
        _check_intent_id(gateway_ref)
        _check_object_id(refund_id, "refund")
        try:
            refund = self.client.v1.refunds.retrieve(refund_id)
        except stripe.StripeError as exc:
            if _missing(exc):
                return None
            raise _gateway_error(exc, "read the refund") from None
        if refund.to_dict(recursive=False).get("payment_intent") != gateway_ref:
            return None  # another payment's refund (or one of a charge made without a PaymentIntent)
        return _refund_answer(refund)

    def fetch_dispute(self, gateway_ref: str, dispute_id: str) -> DisputeAnswer | None:
        """GET /v1/disputes/{id}: the Dispute as Stripe has it now, if it disputes this PaymentIntent. Its balance
        transactions say whether Stripe withdrew the disputed funds and reinstated them."""
        _check_intent_id(gateway_ref)
        _check_object_id(dispute_id, "dispute")
        try:
            answer = self.client.v1.disputes.retrieve(dispute_id)
        except stripe.StripeError as exc:
            if _missing(exc):
                return None
            raise _gateway_error(exc, "read the dispute") from None
        dispute = read_answer(Dispute, answer.to_dict(), self.name, "the dispute")
        if dispute.payment_intent != gateway_ref:
            return None
        status = DISPUTE_STATUSES.get(dispute.status or "")
        if status is None:
            raise GatewayRejected("Stripe answered a dispute without a status we know")
        return DisputeAnswer(
            dispute_id=dispute.id,
            status=status,
            money=_from_stripe_amount(dispute.amount, dispute.currency),
            reason=dispute.reason,
            withdrawn=dispute.withdrawn,
            reinstated=dispute.reinstated,
        )

    # -- webhooks --------------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        header = headers.get("stripe-signature")
        if not header:
            raise SignatureInvalid("missing Stripe-Signature header")
        secret = self._settings.webhook_secret
        if not secret:
            logger.error("stripe webhook secret is not configured; refusing every stripe webhook")
            raise SignatureInvalid("stripe webhooks are not configured")
        try:
            stripe.WebhookSignature.verify_header(raw_body, header, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError as exc:
            raise SignatureInvalid(f"bad Stripe-Signature: {exc.user_message}") from None
        except (UnicodeDecodeError, ValueError):
            raise SignatureInvalid("Stripe webhook body is not UTF-8 text") from None

    def parse_event(self, headers: Mapping[str, str], raw_body: bytes) -> GatewayEvent:
        body = json_object(raw_body, "stripe webhook body")
        event_type = read_webhook(Event, body, "stripe event").type
        kind = EVENT_KINDS.get(event_type, EventKind.IGNORED)
        if event_type.startswith("setup_intent."):  # saved cards (docs/saved-cards.md)
            from payments.gateways import stripe_cards
            from payments.gateways.stripe_models import SetupIntentEvent

            setup_kind = stripe_cards.SETUP_EVENT_KINDS.get(event_type)
            if setup_kind is not None:
                setup = read_webhook(SetupIntentEvent, body, f"stripe {event_type} event")
                return stripe_cards.setup_event(self.name, setup, setup_kind)
        if kind in (EventKind.SUCCESS, EventKind.FAILURE, EventKind.HELD):
            event = read_webhook(PaymentIntentEvent, body, "stripe payment_intent event")
            intent = event.data.object
            if kind is EventKind.HELD:
                return self._event(event, kind, intent.id, intent.metadata, reason=PROCESSING)
            if kind is EventKind.SUCCESS:
                money = _from_stripe_amount(intent.amount_received, intent.currency)
                return self._event(event, kind, intent.id, intent.metadata, money=money)
            error = intent.last_payment_error
            if event.type == "payment_intent.payment_failed" and _waits_for_customer(intent):
                # An off-session charge the bank wants the customer to authenticate: not a decline (the customer
                # confirms it on the page), so it stays pending, showing why.
                return self._event(event, EventKind.HELD, intent.id, intent.metadata, reason=AUTHENTICATION_WANTED)
            reason = _error_reason(error) if error is not None else intent.cancellation_reason
            return self._event(event, kind, intent.id, intent.metadata, reason=reason or event.type)
        if kind is EventKind.FEE:  # charge.succeeded, charge.updated
            return self._fee_event(read_webhook(ChargeEvent, body, f"stripe {event_type} event"))
        if event_type == "charge.refunded":
            return self._refund_event(read_webhook(ChargeRefundedEvent, body, "stripe charge.refunded event"))
        if kind in (EventKind.REFUND, EventKind.REFUND_FAILED):  # refund.created, refund.updated, refund.failed
            return self._refund_object_event(read_webhook(RefundEvent, body, f"stripe {event_type} event"), kind)
        if kind in (EventKind.DISPUTE, EventKind.CHARGEBACK, EventKind.CHARGEBACK_REVERSAL):  # charge.dispute.*
            return self._dispute_event(read_webhook(DisputeEvent, body, f"stripe {event_type} event"), kind)
        other = read_webhook(OtherEvent, body, "stripe event")
        return self._event(other, EventKind.IGNORED, other.data.object.id, other.data.object.metadata)

    def _fee_event(self, event: ChargeEvent) -> GatewayEvent:
        """charge.succeeded, or the charge.updated Stripe sends when the charge's balance transaction exists: Stripe's
        fee, read from the balance transaction. Webhooks carry only its id, so it is asked for once (no retries); an
        answer that fails or cannot be read leaves the fee unknown, never the webhook failed. A charge.updated about
        anything else, or a charge without a balance transaction yet, is IGNORED without a call."""
        charge = event.data.object
        transaction = charge.balance_transaction
        about_fee = event.type == "charge.succeeded" or "balance_transaction" in event.data.previous_attributes
        if transaction is None or not about_fee or not charge.payment_intent:
            return self._event(event, EventKind.IGNORED, charge.payment_intent or charge.id, charge.metadata)
        if transaction.fee is None or transaction.currency is None:
            transaction = self._balance_transaction(transaction.id)
        fee = _stripe_fee(transaction) if transaction is not None else None
        return self._event(event, EventKind.FEE, charge.payment_intent, charge.metadata, fee=fee)

    def _balance_transaction(self, transaction_id: str | None) -> ChargeBalanceTransaction | None:
        """GET /v1/balance_transactions/{id}, tried once; None if it cannot be had (logged)."""
        if transaction_id is None or not _OBJECT_ID.fullmatch(transaction_id):
            return None
        try:
            answer = self.client.v1.balance_transactions.retrieve(transaction_id, options={"max_network_retries": 0})
            return ChargeBalanceTransaction.model_validate(answer.to_dict())
        except Exception as exc:  # the fee is for reference: any failure (network, Stripe, shape) leaves it unknown
            logger.warning("stripe fee not read", extra={"error": type(exc).__name__})
            return None

    def _refund_event(self, event: ChargeRefundedEvent) -> GatewayEvent:
        """charge.refunded: `amount_refunded` is the charge's running total, so the refund this event
        reports is the growth since `previous_attributes`. The charge's own metadata is empty unless
        copied, so `gateway_ref` carries the PaymentIntent id to find the payment by."""
        charge = event.data.object
        before = event.data.previous_attributes.amount_refunded
        refunded = _from_stripe_amount(charge.amount_refunded - before, charge.currency)
        if not refunded.is_positive:
            raise ValueError("charge.refunded reports no new refunded amount")
        gateway_ref = charge.payment_intent or charge.id
        refund_id = charge.newest_refund_id or event.id
        newest = charge.newest_refund  # the refund this event is about, where the charge still lists its refunds
        status = REFUND_STATUSES.get(newest.status or "") if newest is not None else None
        return self._event(
            event,
            EventKind.REFUND,
            gateway_ref,
            charge.metadata,
            money=refunded,
            refund_id=refund_id,
            refund_status=status if status is not RefundStatus.FAILED else None,  # the total grew: not failed
        )

    def _refund_object_event(self, event: RefundEvent, kind: EventKind) -> GatewayEvent:
        """refund.created / refund.updated (REFUND, with the refund's status) and refund.failed (REFUND_FAILED): the
        Refund itself. One whose status is failed or canceled is REFUND_FAILED whichever event reports it: its money
        was not returned."""
        refund = event.data.object
        money = _from_stripe_amount(refund.amount, refund.currency)
        status = REFUND_STATUSES.get(refund.status or "")
        reason = None
        if kind is EventKind.REFUND_FAILED or status is RefundStatus.FAILED:
            kind, status = EventKind.REFUND_FAILED, RefundStatus.FAILED
            reason = refund.failure_reason or refund.status or "failed"
        return self._event(
            event,
            kind,
            refund.payment_intent,
            refund.metadata,
            money=money,
            reason=reason,
            refund_id=refund.id,
            refund_status=status,
        )

    def _dispute_event(self, event: DisputeEvent, kind: EventKind) -> GatewayEvent:
        """charge.dispute.*: the Dispute, about the PaymentIntent it names (Stripe does not copy the PaymentIntent's
        metadata onto it, so the payment is found by that id). `money` is the disputed amount, which is what Stripe
        withdraws and reinstates (the dispute fee is not ours to count)."""
        dispute = event.data.object
        status = DISPUTE_STATUSES.get(dispute.status or "")
        if status is None:
            logger.warning("stripe dispute status not known", extra={"stripe_status": dispute.status})
        return self._event(
            event,
            kind,
            dispute.payment_intent,
            dispute.metadata,
            money=_from_stripe_amount(dispute.amount, dispute.currency),
            reason=dispute.reason,
            dispute_id=dispute.id,
            dispute_status=status,
        )

    def _event(
        self,
        event: Event,
        kind: EventKind,
        gateway_ref: str | None,
        metadata: Metadata,
        *,
        money: Money | None = None,
        reason: str | None = None,
        refund_id: str | None = None,
        refund_status: RefundStatus | None = None,
        dispute_id: str | None = None,
        dispute_status: DisputeStatus | None = None,
        fee: Money | None = None,
    ) -> GatewayEvent:
        return GatewayEvent(
            provider=self.name,
            event_id=event.id,
            event_type=event.type,
            kind=kind,
            payment_id=metadata.payment_id,
            customer_id=metadata.customer_id,
            gateway_ref=gateway_ref,
            money=money,
            reason=reason,
            refund_id=refund_id,
            refund_status=refund_status,
            dispute_id=dispute_id,
            dispute_status=dispute_status,
            fee=fee,
        )

    # -- reconciliation --------------------------------------------------------------------------

    def fetch_status(self, gateway_ref: str, payment_id: str) -> StatusAnswer:
        if not gateway_ref.startswith("pi_"):  # e.g. "" for a card refused before any PaymentIntent
            raise GatewayRejected(f"{gateway_ref!r} is not a Stripe PaymentIntent id")
        try:
            intent = self.client.v1.payment_intents.retrieve(gateway_ref)
        except stripe.StripeError as exc:
            raise _gateway_error(exc, "read the payment") from exc
        owner = intent.metadata.to_dict().get("payment_id") if intent.metadata else None
        if owner and owner != payment_id:
            return StatusAnswer(EventKind.IGNORED, reason=f"{gateway_ref} belongs to another payment")
        if intent.status == "succeeded":
            return StatusAnswer(EventKind.SUCCESS, money=_from_stripe_amount(intent.amount_received, intent.currency))
        failure = _failure_of(intent)
        if failure is not None:
            return StatusAnswer(EventKind.FAILURE, reason=failure)
        return StatusAnswer(EventKind.IGNORED)


AUTHENTICATION_WANTED = "authentication_required: the bank asks the customer to confirm this payment on the page"
PROCESSING = "Stripe is processing the payment: a bank debit takes days to confirm, and can still fail"
# Stripe event type -> what it means for our payment. Anything else is IGNORED.
EVENT_KINDS: dict[str, EventKind] = {
    "payment_intent.succeeded": EventKind.SUCCESS,
    "payment_intent.payment_failed": EventKind.FAILURE,
    "payment_intent.canceled": EventKind.FAILURE,
    "charge.refunded": EventKind.REFUND,
    "payment_intent.processing": EventKind.HELD,
    # The charge of a PaymentIntent: read only for Stripe's fee, on its balance transaction (`_fee_event`).
    "charge.succeeded": EventKind.FEE,
    "charge.updated": EventKind.FEE,  # a bank debit: days until it succeeds or fails
    "refund.failed": EventKind.REFUND_FAILED,  # sent for every refund since API version 2024-10-28
    # The Refund itself (docs.stripe.com/refunds): made (succeeded), or still on its way (pending, requires_action);
    # one whose status is failed or canceled reads as REFUND_FAILED (`_refund_object_event`).
    "refund.created": EventKind.REFUND,
    "refund.updated": EventKind.REFUND,
    # Disputes (docs.stripe.com/disputes): the Dispute itself. Stripe withdraws the disputed amount when a chargeback
    # opens (an inquiry, warning_*, withdraws nothing) and reinstates it when the dispute is won.
    "charge.dispute.created": EventKind.DISPUTE,
    "charge.dispute.updated": EventKind.DISPUTE,
    "charge.dispute.closed": EventKind.DISPUTE,  # won, lost or warning_closed
    "charge.dispute.funds_withdrawn": EventKind.CHARGEBACK,
    "charge.dispute.funds_reinstated": EventKind.CHARGEBACK_REVERSAL,
}
# A Dispute's status (docs.stripe.com/api/disputes/object) -> ours. Any other leaves the dispute as it was shown.
DISPUTE_STATUSES: dict[str, DisputeStatus] = {
    "warning_needs_response": DisputeStatus.OPEN,  # an inquiry: no funds withdrawn yet
    "warning_under_review": DisputeStatus.OPEN,
    "needs_response": DisputeStatus.OPEN,  # a chargeback: the funds are withdrawn
    "under_review": DisputeStatus.OPEN,
    "appeal_needs_response": DisputeStatus.OPEN,
    "appeal_under_review": DisputeStatus.OPEN,
    "won": DisputeStatus.WON,  # the funds are reinstated
    "warning_closed": DisputeStatus.WON,  # an inquiry that never became a chargeback
    "prevented": DisputeStatus.WON,  # stopped before it became a chargeback (money back to the payer is a refund)
    "lost": DisputeStatus.LOST,
}
# What Stripe object ids look like (re_..., pyr_..., dp_..., du_...): anything else never reaches a URL.
_OBJECT_ID = re.compile(r"[a-z]{2,6}_[A-Za-z0-9]{1,250}")
# A Refund's status (docs.stripe.com/api/refunds/object) -> our refund entry's.
REFUND_STATUSES: dict[str, RefundStatus] = {
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,  # the customer must give details (some methods) before it is sent
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,  # failure_reason says why
    "canceled": RefundStatus.FAILED,
}
# The `reason` values Stripe takes on a refund; any other text of the operator's goes in the metadata.
REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
# Error codes with which Stripe refuses the refund itself, nothing refunded: more than is left (`amount_too_large`,
# which may also come as a bare `param: amount`), nothing left, or the charge is disputed.
REFUND_REFUSALS = frozenset({"amount_too_large", "charge_already_refunded", "charge_disputed"})
METADATA_VALUE_MAX = 500


def _declined(exc: stripe.CardError, brand: str | None, last4: str | None) -> CreateResult:
    """A decline is an answer, not an error: the payment is recorded as cancelled with the reason."""
    error = exc.error
    intent_id = ""
    if error is not None:
        if error.payment_intent is not None:
            intent_id = error.payment_intent.id
        if brand is None and error.payment_method is not None:
            brand, last4 = _card_of(error.payment_method)
    reason = _error_reason(error) if error is not None else f"card_declined: {exc.code or 'declined'}"
    return CreateResult(
        gateway_ref=intent_id, status=PaymentStatus.CANCELLED, failure_reason=reason, card_brand=brand, card_last4=last4
    )


def _result_of(intent: stripe.PaymentIntent, brand: str | None, last4: str | None) -> CreateResult:
    """What a PaymentIntent's state means for our payment."""
    method = intent.to_dict(recursive=False).get("payment_method")  # absent from some answers: never assumed
    if brand is None and isinstance(method, stripe.PaymentMethod):
        brand, last4 = _card_of(method)
    ref = intent.id
    if intent.status == "succeeded":
        return CreateResult(ref, PaymentStatus.COMPLETED, card_brand=brand, card_last4=last4)
    if intent.status == "requires_action":
        return CreateResult(
            ref,
            PaymentStatus.PENDING,
            next_action={"type": "stripe_sdk", "client_secret": intent.client_secret},
            card_brand=brand,
            card_last4=last4,
            storable_next_action=False,  # the client_secret is read from Stripe again, never stored
        )
    failure = _failure_of(intent)
    if failure is not None:
        return CreateResult(ref, PaymentStatus.CANCELLED, failure_reason=failure, card_brand=brand, card_last4=last4)
    return CreateResult(ref, PaymentStatus.PENDING, card_brand=brand, card_last4=last4)  # processing: webhook


def _waits_for_customer(intent: stripe.PaymentIntent | IntentObject) -> bool:
    """An off-session charge the bank refused without the customer (`authentication_required`, Stripe's docs on
    saved cards): the PaymentIntent can still be confirmed on-session, so the payment is not over."""
    error = getattr(intent, "last_payment_error", None)  # absent from a Stripe object that never failed
    code = getattr(error, "code", None) if error is not None else None
    return intent.status in ("requires_payment_method", "requires_action") and code == "authentication_required"


def _failure_of(intent: stripe.PaymentIntent) -> str | None:
    """Why a PaymentIntent ended unpaid, or None while it may still be paid. A failed attempt leaves
    it in requires_payment_method; we never retry on it, so for our payment that is final, except when the bank
    wants the customer to authenticate an off-session charge (`_waits_for_customer`): the customer can still."""
    if intent.status == "canceled":
        return intent.cancellation_reason or "canceled"
    if _waits_for_customer(intent):
        return None
    if intent.status == "requires_payment_method" and intent.last_payment_error is not None:
        return _error_reason(intent.last_payment_error)
    return None


def _error_reason(error: PaymentError | stripe.StripeObject) -> str:
    """`code: decline_code or message` from a Stripe error object (a webhook's, or the SDK's)."""
    if isinstance(error, PaymentError):
        code, decline_code, message = error.code, error.decline_code, error.message
    else:
        fields = error.to_dict()
        code, decline_code, message = fields.get("code"), fields.get("decline_code"), fields.get("message")
    return f"{code or 'card_declined'}: {decline_code or message or 'declined'}"[:500]


def _card_of(method: stripe.PaymentMethod) -> tuple[str | None, str | None]:
    card = getattr(method, "card", None)
    if card is None:
        return None, None
    return getattr(card, "brand", None), getattr(card, "last4", None)


def _check_intent_id(gateway_ref: str) -> None:
    if not gateway_ref.startswith("pi_"):  # e.g. "" for a card refused before any PaymentIntent
        raise GatewayRejected(f"{gateway_ref!r} is not a Stripe PaymentIntent id")


def _check_object_id(object_id: str, what: str) -> None:
    if not _OBJECT_ID.fullmatch(object_id):
        raise GatewayRejected(f"not a Stripe {what} id")


def _missing(exc: stripe.StripeError) -> bool:
    """Stripe's 404 for an object it does not have (`resource_missing`)."""
    return isinstance(exc, stripe.InvalidRequestError) and exc.http_status == 404


def _stripe_reason(reason: str | None) -> str | None:
    """The operator's reason as Stripe's enum ("Requested by customer" -> requested_by_customer), or None."""
    if not reason:
        return None
    normal = reason.strip().lower().replace(" ", "_").replace("-", "_")
    return normal if normal in REFUND_REASONS else None


def _refund_metadata(request: RefundRequest) -> dict[str, str]:
    """Our references on the Refund: the refund entry (what `find_refund` looks for), the payment and customer (what
    its webhooks are found by), and the operator's reason where Stripe's enum has no word for it."""
    metadata = {"refund_entry": request.key, "payment_id": request.payment_id, "customer_id": request.customer_id}
    if request.reason and _stripe_reason(request.reason) is None:
        metadata["reason"] = request.reason[:METADATA_VALUE_MAX]
    return metadata


def _refund_answer(refund: stripe.Refund) -> RefundAnswer:
    """What a Refund says. ValueError (a 502 through `reading_answers`) for one without an id, a status we know or
    an amount: the refund may have been made, so the caller asks `find_refund` again rather than guess."""
    fields = refund.to_dict(recursive=False)
    refund_id, state = fields.get("id"), fields.get("status")
    if not isinstance(refund_id, str) or not refund_id:
        raise ValueError("Stripe answered a refund without its id")
    status = REFUND_STATUSES.get(state) if isinstance(state, str) else None
    if status is None:
        raise ValueError("Stripe answered a refund without a status we know")
    money = _from_stripe_amount(fields.get("amount"), fields.get("currency"))
    reason = None
    if status is RefundStatus.FAILED:
        failure = fields.get("failure_reason")
        reason = failure if isinstance(failure, str) and failure else state
    return RefundAnswer(refund_id=refund_id, status=status, money=money, reason=reason)


def _refund_error(exc: stripe.StripeError) -> GatewayUnavailable | GatewayRejected | GatewayInputRejected:
    """A refund Stripe refuses for what it is (more than is left to refund, nothing left, a disputed charge) is the
    operator's to change: 422 on the amount, nothing refunded. Anything else as `_gateway_error`."""
    if isinstance(exc, stripe.InvalidRequestError):
        error = exc.error
        code = (error.code if error is not None else None) or exc.code
        param = error.param if error is not None else None
        if code in REFUND_REFUSALS or param == "amount":
            logger.warning("stripe refused the refund", extra={"stripe_code": code, "stripe_param": param})
            return GatewayInputRejected(f"Stripe refused the refund: {code or 'amount'}", field="amount")
    return _gateway_error(exc, "refund the payment")


# Stripe parameters that carry a value the caller sent, and the request field each one is.
CALLER_PARAMS = {"payment_method": "payment_method", "amount": "amount", "currency": "currency"}


def _gateway_error(exc: stripe.StripeError, doing: str) -> GatewayUnavailable | GatewayRejected | GatewayInputRejected:
    """Map an SDK error to ours with a message naming only the code/param Stripe gave, never input.

    A 4xx about a parameter the caller chose (an unknown PaymentMethod id) is the caller's mistake (422 naming
    the field); any other 4xx is ours or our configuration's (502)."""
    status = exc.http_status
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or (status or 0) >= 500:
        logger.warning("stripe unavailable", extra={"stripe_status": status, "stripe_request_id": exc.request_id})
        return GatewayUnavailable(f"Stripe could not {doing} now ({status or 'no answer'})")
    error = exc.error
    code = (error.code if error is not None else None) or exc.code or type(exc).__name__
    param = error.param if error is not None else None
    logger.warning("stripe refused", extra={"stripe_status": status, "stripe_code": code, "stripe_param": param})
    field = CALLER_PARAMS.get(param or "")
    if field is not None and isinstance(exc, stripe.InvalidRequestError):
        what = "no such PaymentMethod" if code == "resource_missing" else code
        return GatewayInputRejected(f"Stripe refused the {field}: {what}", field)
    where = f", parameter {param}" if param else ""
    return GatewayRejected(f"Stripe refused to {doing}: {status} {code}{where}")
