"""Stripe as the simulator acts it out: PaymentMethods and PaymentIntents (form bodies, `Idempotency-Key`), the
3-D Secure page, and the signed webhooks about them (docs/gateways.md#stripe).

Endpoints below /stripe: POST /v1/payment_methods, GET /v1/payment_methods/{id}, POST /v1/payment_methods/{id}/attach
and /detach, POST /v1/customers, GET /v1/customers/{id}, GET /v1/customers/{id}/payment_methods, POST
/v1/setup_intents, GET /v1/setup_intents/{id} (saved cards: docs/saved-cards.md), POST /v1/payment_intents,
GET /v1/payment_intents/{id}, POST /v1/refunds, GET /v1/refunds (?payment_intent=, charge=, limit=, starting_after=),
GET /v1/refunds/{id}, GET /v1/disputes/{id}; payer page GET /3ds/{pi}. A refund made through the API is the same
object the control outcomes `refund` and `refund_failed` make and fail: one running total per PaymentIntent;
charge.refunded and refund.created follow its answer, as with Stripe. Cards act as Stripe's documented test cards
(4242424242424242 / pm_card_visa succeeds, 4000002500003155 / pm_card_authenticationRequired needs 3-D Secure,
4000000000000002 / pm_card_chargeDeclined is declined with 402, ...). A PaymentMethod keeps brand and last 4
digits only, never the number.

Disputes: the control outcome `dispute` opens one of the PaymentIntent's charge (for `amount`, or all of it) and sends
charge.dispute.created, then charge.dispute.funds_withdrawn (Stripe withdraws the disputed amount at once);
`dispute_won` sends charge.dispute.funds_reinstated, then charge.dispute.closed (won); `dispute_lost` sends
charge.dispute.closed (lost). The first webhook is `settle()`'s answer, the others follow it shortly after, in order. A
charge with a dispute open, or lost, cannot be refunded (`charge_disputed`), as with Stripe.

The module-level functions build the objects and the signed webhooks; the routes, `settle()` and the tests'
events (tests/integration/webhook_events.py) all use them, so they send one shape.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from local.gateway_sim import pages
from local.gateway_sim.base import Answer, Refusal, Request, Route, SettleError, SimGateway, Webhook, settle_minor
from local.gateway_sim.common import (
    basic_auth,
    bearer,
    credential,
    major,
    parse_nested_form,
    same,
    token,
    with_query,
)

CREDENTIALS = {"STRIPE_SECRET_KEY": "sk_test_local", "STRIPE_WEBHOOK_SECRET": "whsec_local"}
API_BASE_VAR = "STRIPE_API_BASE"
SIGNATURE_HEADER = "Stripe-Signature"

_EVENT_API_VERSION = "2024-06-20"
# Stripe sends a refund's webhooks after answering the refund; a short pause keeps that order in tests.
REFUND_WEBHOOK_DELAY_SECONDS = 0.3
# A settle outcome that makes Stripe send several webhooks answers the first; the others follow after this pause.
FOLLOW_UP_WEBHOOK_DELAY_SECONDS = 0.3
DISPUTE_FEE = 1500  # Stripe's dispute fee (15.00 in the balance's currency), in the balance transactions only
_REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
_CURRENCY_SIGNS = {"usd": "$", "eur": "€", "gbp": "£"}  # how Stripe's refund errors show amounts
# Stripe turned automatic payment methods on by default (so confirming needs a return_url) in this version.
_AUTOMATIC_METHODS_SINCE = "2023-08-16"
_MAX_AMOUNT = 99_999_999
_MINIMUM_CHARGE = {
    "usd": 50, "eur": 50, "gbp": 30, "aud": 50, "brl": 50, "cad": 50, "chf": 50, "dkk": 250, "hkd": 400,
    "inr": 50, "jpy": 50, "mxn": 1000, "nok": 300, "nzd": 50, "pln": 200, "sek": 300, "sgd": 50,
}  # fmt: skip
_TEST_CARDS = {
    **dict.fromkeys(
        [
            "4242424242424242", "4000056655665556", "5555555555554444", "2223003122003222", "5200828282828210",
            "378282246310005", "371449635398431", "6011111111111117", "3056930009020004", "36227206271667",
            "3566002020360505", "6200000000000005",
        ],
        "succeed",
    ),
    # 3-D Secure on setup and on-session payments; once set up for off-session use, off-session payments succeed
    **dict.fromkeys(["4000002500003155", "4000000000003220", "4000000000003063"], "authenticate"),
    # authentication on every payment, however it was set up: off-session ones fail (authentication_required)
    "4000002760003184": "authenticate_always",
    # saving it to a Customer succeeds, every charge of it is declined (generic_decline)
    "4000000000000341": "attach_then_decline",
    "4000000000000002": "generic_decline",
    "4000000000009995": "insufficient_funds",
    "4000000000009987": "lost_card",
    "4000000000009979": "stolen_card",
    "4100000000000019": "fraudulent",
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
    "4000000000000119": "processing_error",
}  # fmt: skip
_TEST_PAYMENT_METHODS = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_amex": "378282246310005",
    "pm_card_discover": "6011111111111117",
    "pm_card_authenticationRequired": "4000002760003184",
    "pm_card_authenticationRequiredSetupForOffSession": "4000002500003155",
    "pm_card_threeDSecure2Required": "4000000000003220",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeCustomerFail": "4000000000000341",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_chargeDeclinedFraudulent": "4100000000000019",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
}
# decline_code -> (error code, message), as Stripe words them.
_DECLINES = {
    "generic_decline": ("card_declined", "Your card was declined."),
    "insufficient_funds": ("card_declined", "Your card has insufficient funds."),
    "lost_card": ("card_declined", "Your card was declined."),
    "stolen_card": ("card_declined", "Your card was declined."),
    "fraudulent": ("card_declined", "Your card was declined."),
    "expired_card": ("expired_card", "Your card has expired."),
    "incorrect_cvc": ("incorrect_cvc", "Your card's security code is incorrect."),
    "processing_error": (
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    "authentication_required": (
        "authentication_required",
        "Your card was declined. This transaction requires authentication.",
    ),
}
_NEEDS_AUTHENTICATION = ("authenticate", "authenticate_always")
_RETURN_URL_MESSAGE = (
    "A `return_url` must be specified because this Payment Intent is configured to automatically accept the "
    "payment methods enabled in the Dashboard, some of which may require a full page redirect to succeed. If you "
    "do not want to accept redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` and "
    "`automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment Intents."
)


# ----------------------------------------------------------------------------------------------------------
# Objects and webhooks


def payment_intent(
    amount: int, currency: str, *, metadata: dict[str, str], intent_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A PaymentIntent as Stripe creates it (not confirmed); `fields` set any of its other fields."""
    intent_id = intent_id or f"pi_3{token(23)}"
    intent: dict[str, Any] = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": 0,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic_async",
        "client_secret": f"{intent_id}_secret_{token(25)}",
        "confirmation_method": "automatic",
        "created": int(time.time()),
        "currency": currency.lower(),
        "customer": None,
        "description": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": metadata,
        "next_action": None,
        "payment_method": None,
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": None,
        "setup_future_usage": None,
        "shipping": None,
        "statement_descriptor": None,
        "status": "requires_payment_method",
    }
    unknown = set(fields) - set(intent)
    if unknown:
        raise TypeError(f"a PaymentIntent has no {', '.join(sorted(unknown))}")
    intent.update(fields)
    return intent


def succeed(intent: dict[str, Any], received: int) -> None:
    """Mark `intent` succeeded with `received` (minor units) received, as a charge of it does."""
    intent.update(
        status="succeeded",
        amount_received=received,
        latest_charge=f"ch_3{token(23)}",
        last_payment_error=None,
        next_action=None,
    )


def decline(intent: dict[str, Any], decline_code: str, payment_method: dict[str, Any] | None) -> dict[str, Any]:
    """Mark `intent` declined as Stripe does (back to requires_payment_method); returns the card error."""
    code, message = _DECLINES[decline_code]
    charge_id = f"ch_3{token(23)}"
    error = {
        "charge": charge_id,
        "code": code,
        "decline_code": decline_code,
        "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
        "message": message,
        "payment_method": copy.deepcopy(payment_method),
        "request_log_url": f"https://dashboard.stripe.com/test/logs/req_{token(14)}",
        "type": "card_error",
    }
    intent.update(status="requires_payment_method", latest_charge=charge_id, last_payment_error=error, next_action=None)
    return error


def refund_object(
    intent: dict[str, Any],
    amount: int,
    *,
    metadata: dict[str, str] | None = None,
    reason: str | None = None,
    refund_id: str | None = None,
) -> dict[str, Any]:
    """A Refund of `amount` (minor units) of succeeded `intent`'s charge, as Stripe makes it for a card: succeeded."""
    return {
        "id": refund_id or f"re_3{token(23)}",
        "object": "refund",
        "amount": amount,
        "balance_transaction": f"txn_3{token(23)}",
        "charge": intent["latest_charge"],
        "created": int(time.time()),
        "currency": intent["currency"],
        "metadata": dict(metadata or {}),
        "payment_intent": intent["id"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }


def refunded_charge(
    intent: dict[str, Any], refund: int, refunded_total: int, *, made: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The charge of succeeded `intent` once `refund` more is refunded (`refunded_total` in all), by the Refund
    `made` (a new one if not given), which its `refunds` list shows first."""
    charge_id = intent["latest_charge"]
    newest = copy.deepcopy(made) if made is not None else refund_object(intent, refund)
    return {
        "id": charge_id,
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount_received"],
        "amount_refunded": refunded_total,
        "captured": True,
        "created": intent["created"],
        "currency": intent["currency"],
        "description": intent["description"],
        "livemode": False,
        "metadata": copy.deepcopy(intent["metadata"]),  # a PaymentIntent's charge carries its metadata
        "paid": True,
        "payment_intent": intent["id"],
        "payment_method": intent["payment_method"],
        "refunded": refunded_total >= intent["amount_received"],
        "refunds": {
            "object": "list",
            "data": [newest],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/charges/{charge_id}/refunds",
        },
        "status": "succeeded",
    }


def dispute_object(intent: dict[str, Any], amount: int, *, reason: str = "fraudulent") -> dict[str, Any]:
    """A Dispute of `amount` (minor units) of succeeded `intent`'s charge, as Stripe opens a chargeback: it needs a
    response, and no funds have moved yet (`withdraw` records that)."""
    now = int(time.time())
    return {
        "id": f"dp_1{token(23)}",
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": intent["latest_charge"],
        "created": now,
        "currency": intent["currency"],
        "evidence": {"customer_name": None, "product_description": None, "uncategorized_text": None},
        "evidence_details": {
            "due_by": now + 7 * 86400,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "network_reason_code": "10.4" if reason == "fraudulent" else None,
        "payment_intent": intent["id"],
        "reason": reason,
        "status": "needs_response",
    }


def dispute_funds(dispute: dict[str, Any], *, withdrawn: bool) -> dict[str, Any]:
    """The balance transaction of `dispute`'s funds withdrawn (negative, plus the dispute fee) or reinstated."""
    sign = -1 if withdrawn else 1
    fee = DISPUTE_FEE if withdrawn else -DISPUTE_FEE
    now = int(time.time())
    category, label = ("dispute", "withdrawal") if withdrawn else ("dispute_reversal", "reversal")
    return {
        "id": f"txn_1{token(23)}",
        "object": "balance_transaction",
        "amount": sign * dispute["amount"],
        "available_on": now,
        "created": now,
        "currency": dispute["currency"],
        "description": f"Chargeback {label} for {dispute['charge']}",
        "exchange_rate": None,
        "fee": fee,
        "fee_details": [
            {"amount": fee, "application": None, "currency": dispute["currency"], "description": "Dispute fee",
             "type": "stripe_fee"}
        ],
        "net": sign * dispute["amount"] - fee,
        "reporting_category": category,
        "source": dispute["id"],
        "status": "available",
        "type": "adjustment",
    }  # fmt: skip


def event(
    event_type: str,
    obj: dict[str, Any],
    *,
    event_id: str | None = None,
    previous_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Stripe Event about (a copy of) `obj`."""
    data: dict[str, Any] = {"object": copy.deepcopy(obj)}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": event_id or f"evt_3{token(23)}",
        "object": "event",
        "api_version": _EVENT_API_VERSION,
        "created": int(time.time()),
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def signature(body: bytes, *, secret: str | None = None, timestamp: int | None = None) -> dict[str, str]:
    """Stripe-Signature for `body`: t=<timestamp>,v1=HMAC-SHA256 of "<t>.<body>" under the endpoint secret."""
    stamp = int(time.time()) if timestamp is None else timestamp
    key = (secret or credential(CREDENTIALS, "STRIPE_WEBHOOK_SECRET")).encode()
    digest = hmac.new(key, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {SIGNATURE_HEADER: f"t={stamp},v1={digest}"}


def signed(
    stripe_event: dict[str, Any], *, secret: str | None = None, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of `stripe_event`'s delivery."""
    body = json.dumps(stripe_event, indent=2).encode()  # Stripe sends pretty-printed JSON
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        **signature(body, secret=secret, timestamp=timestamp),
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    return body, headers


def payment_intent_event(
    kind: str,
    intent_id: str,
    amount_minor: int,
    currency: str,
    metadata: dict[str, str],
    *,
    reported_minor: int | None = None,
    event_id: str | None = None,
    secret: str | None = None,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The signed webhook about PaymentIntent `intent_id` for `amount_minor` when it succeeds
    (payment_intent.succeeded, `reported_minor` received), is declined (payment_intent.payment_failed) or has
    `reported_minor` refunded for the first time (charge.refunded); `reported_minor` defaults to the amount."""
    intent = payment_intent(amount_minor, currency, metadata=metadata, intent_id=intent_id)
    reported = amount_minor if reported_minor is None else reported_minor
    if kind == "failure":
        decline(intent, "generic_decline", None)
        stripe_event = event("payment_intent.payment_failed", intent, event_id=event_id)
    elif kind == "success":
        succeed(intent, reported)
        stripe_event = event("payment_intent.succeeded", intent, event_id=event_id)
    else:
        succeed(intent, amount_minor)
        charge = refunded_charge(intent, reported, reported)
        stripe_event = event("charge.refunded", charge, event_id=event_id, previous_attributes={"amount_refunded": 0})
    return signed(stripe_event, secret=secret, timestamp=timestamp)


# ----------------------------------------------------------------------------------------------------------
# The gateway


class Stripe(SimGateway):
    outcomes = ("success", "failure", "refund", "refund_failed", "hold", "dispute", "dispute_won", "dispute_lost")
    name = "stripe"
    label = "Stripe"
    api_base_var = API_BASE_VAR
    credentials = CREDENTIALS
    event_type_field = "type"
    kinds = ("payment_methods", "payment_intents", "refunds", "disputes", "customers", "setup_intents")

    def reset(self) -> None:
        super().reset()
        self._idempotency: dict[str, tuple[str, Answer]] = {}

    def routes(self) -> list[Route]:
        return [
            ("POST", "/v1/payment_methods", self._create_payment_method),
            ("GET", "/v1/payment_methods/(?P<id>[^/]+)", self._get_payment_method),
            ("POST", "/v1/payment_methods/(?P<id>[^/]+)/attach", self._attach_payment_method),
            ("POST", "/v1/payment_methods/(?P<id>[^/]+)/detach", self._detach_payment_method),
            ("POST", "/v1/customers", self._create_customer),
            ("GET", "/v1/customers/(?P<id>[^/]+)", self._get_customer),
            ("GET", "/v1/customers/(?P<id>[^/]+)/payment_methods", self._list_customer_payment_methods),
            ("POST", "/v1/setup_intents", self._create_setup_intent),
            ("GET", "/v1/setup_intents/(?P<id>[^/]+)", self._get_setup_intent),
            ("POST", "/v1/payment_intents", self._create_payment_intent),
            ("GET", "/v1/payment_intents/(?P<id>[^/]+)", self._get_payment_intent),
            ("POST", "/v1/payment_intents/(?P<id>[^/]+)/confirm", self._confirm_payment_intent),
            ("POST", "/v1/refunds", self._create_refund),
            ("GET", "/v1/refunds", self._list_refunds),
            ("GET", "/v1/refunds/(?P<id>[^/]+)", self._get_refund),
            ("GET", "/v1/disputes/(?P<id>[^/]+)", self._get_dispute),
            ("GET", "/3ds/(?P<id>[^/]+)", self._page),
        ]

    def not_found(self, method: str, rest: str) -> Answer | None:
        message = (
            f"Unrecognized request URL ({method}: /{rest}). Please see https://stripe.com/docs or we can help at "
            "https://support.stripe.com/."
        )
        return Answer(404, {"error": {"message": message, "type": "invalid_request_error"}})

    def return_url(self, ref: str, outcome: str) -> str | None:
        return_url = self.extra.get(ref, {}).get("return_url")
        return with_query(return_url, {"payment_intent": ref}) if return_url else None

    # -- requests ---------------------------------------------------------------------------------------------

    @staticmethod
    def _error(status: int, message: str, **fields: Any) -> Refusal:
        error = {"message": message, "type": fields.pop("type", "invalid_request_error"), **fields}
        if "code" in error:
            error.setdefault("doc_url", f"https://stripe.com/docs/error-codes/{error['code'].replace('_', '-')}")
        return Refusal(status, {"error": error}, {"Request-Id": f"req_{token(14)}"})

    def _auth(self, request: Request) -> None:
        header = request.headers.get("authorization")
        key = bearer(header)
        if key is None:
            basic = basic_auth(header)
            key = basic[0] if basic else None
        if not key:
            raise self._error(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
                "https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
            )
        if not same(key, self.credential("STRIPE_SECRET_KEY")):
            masked = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else "****"
            refusal = self._error(401, f"Invalid API Key provided: {masked}")
            refusal.answer.headers["WWW-Authenticate"] = 'Basic realm="Stripe"'
            raise refusal

    def _form(self, request: Request) -> dict[str, Any]:
        try:
            return parse_nested_form(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._error(400, f"Invalid request body: {exc}") from exc

    def _idempotent(self, request: Request, create: Callable[[dict[str, Any]], Answer]) -> Answer:
        """Stripe keeps the first answer per Idempotency-Key (once the endpoint ran, 402s included) and
        replays it with `Idempotent-Replayed: true`; the same key with other parameters is an error."""
        form = self._form(request)
        key = request.headers.get("idempotency-key")
        if not key:
            return create(form)
        # Keyed hash of the parameters: card numbers sent to /v1/payment_methods must not be kept.
        parameters = repr((request.path, sorted(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))))
        fingerprint = hmac.new(self._host.secret, parameters.encode(), hashlib.sha256).hexdigest()
        saved = self._idempotency.get(key)
        if saved is not None:
            if saved[0] != fingerprint:
                raise self._error(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters they were first used "
                    f"with. Try using a key other than '{key}' if you meant to execute a different request.",
                    type="idempotency_error",
                )
            first = saved[1]
            return Answer(first.status, copy.deepcopy(first.body), {**first.headers, "Idempotent-Replayed": "true"})
        try:
            answer = create(form)
        except Refusal as refusal:
            if refusal.answer.status != 402:  # validation failed before the endpoint ran: nothing is kept
                raise
            answer = refusal.answer
        answer.headers.update({"Idempotency-Key": key, "Request-Id": f"req_{token(14)}"})
        self._idempotency[key] = (fingerprint, Answer(answer.status, copy.deepcopy(answer.body), answer.headers))
        return answer

    def _create_payment_method(self, request: Request) -> Answer:
        self._auth(request)
        return self._idempotent(request, lambda form: Answer(200, self._new_payment_method(form)))

    def _get_payment_method(self, request: Request) -> Answer:
        self._auth(request)
        payment_method = self.find("payment_methods", request.params["id"])
        if payment_method is None:
            raise self._missing("payment_method", request.params["id"], "id")
        return Answer(200, copy.deepcopy(payment_method))

    def _missing(self, kind: str, object_id: str, param: str) -> Refusal:
        return self._error(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)

    def _new_payment_method(self, form: dict[str, Any]) -> dict[str, Any]:
        if form.get("type") != "card":
            if "type" not in form:
                raise self._error(400, "Missing required param: type.", code="parameter_missing", param="type")
            raise self._error(400, f"Invalid type: {form['type']}", code="parameter_invalid_string", param="type")
        card = form.get("card")
        if not isinstance(card, dict):
            raise self._error(400, "Missing required param: card.", code="parameter_missing", param="card")
        return self._card_payment_method(card)

    def _card_payment_method(self, card: dict[str, Any]) -> dict[str, Any]:
        """Validate raw card fields like Stripe (402 card errors) and keep only what Stripe shows back."""
        for name in ("number", "exp_month", "exp_year"):
            if not card.get(name):
                raise self._error(
                    400, f"Missing required param: card[{name}].", code="parameter_missing", param=f"card[{name}]"
                )

        def card_error(code: str, message: str, param: str, decline_code: str | None = None) -> Refusal:
            extra = {"decline_code": decline_code} if decline_code else {}
            return self._error(402, message, type="card_error", code=code, param=param, **extra)

        number = str(card["number"]).replace(" ", "")
        if not number.isdigit() or not 12 <= len(number) <= 19 or not _luhn_ok(number):
            raise card_error("incorrect_number", "Your card number is incorrect.", "number")
        month, year = str(card["exp_month"]), str(card["exp_year"])
        if not month.isdigit() or not 1 <= int(month) <= 12:
            raise card_error("invalid_expiry_month", "Your card's expiration month is invalid.", "exp_month")
        full_year = int(year) + 2000 if year.isdigit() and len(year) <= 2 else int(year) if year.isdigit() else 0
        today = datetime.now(UTC)
        if full_year < today.year or full_year > today.year + 50:
            raise card_error("invalid_expiry_year", "Your card's expiration year is invalid.", "exp_year")
        if (full_year, int(month)) < (today.year, today.month):
            raise card_error("invalid_expiry_month", "Your card's expiration month is invalid.", "exp_month")
        cvc = str(card.get("cvc") or "")
        if cvc and not (cvc.isdigit() and len(cvc) in (3, 4)):
            raise card_error("invalid_cvc", "Your card's security code is invalid.", "cvc")
        behaviour = _TEST_CARDS.get(number)
        if behaviour is None:  # Stripe's test mode refuses real card numbers
            raise card_error(
                "card_declined",
                "Your card was declined. Your request was in test mode, but used a non test (live) card. "
                "For a list of valid test cards, visit: https://stripe.com/docs/testing.",
                "number",
                decline_code="test_mode_live_card",
            )
        brand = _card_brand(number)
        payment_method_id = f"pm_1{token(23)}"
        payment_method = {
            "id": payment_method_id,
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": {
                "address": dict.fromkeys(["city", "country", "line1", "line2", "postal_code", "state"]),
                "email": None,
                "name": None,
                "phone": None,
            },
            "card": {
                "brand": brand,
                "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "unchecked"},
                "country": "US",
                "display_brand": brand,
                "exp_month": int(month),
                "exp_year": full_year,
                "fingerprint": hmac.new(self._host.secret, number.encode(), hashlib.sha256).hexdigest()[:16],
                "funding": "credit",
                "generated_from": None,
                "last4": number[-4:],
                "networks": {"available": [brand], "preferred": None},
                "three_d_secure_usage": {"supported": True},
                "wallet": None,
            },
            "created": int(time.time()),
            "customer": None,
            "livemode": False,
            "metadata": {},
            "type": "card",
        }
        return self.store("payment_methods", payment_method_id, payment_method, behaviour=behaviour)

    def _payment_method_for_intent(self, form: dict[str, Any]) -> dict[str, Any] | None:
        reference = form.get("payment_method")
        if isinstance(reference, str) and reference:
            if reference in _TEST_PAYMENT_METHODS:  # Stripe turns test tokens into fresh PaymentMethods
                card = {
                    "number": _TEST_PAYMENT_METHODS[reference],
                    "exp_month": "12",
                    "exp_year": str(datetime.now(UTC).year + 3),
                }
                return self._card_payment_method(card)
            found = self.find("payment_methods", reference)
            if found is None:
                raise self._error(
                    400, f"No such PaymentMethod: '{reference}'", code="resource_missing", param="payment_method"
                )
            self._check_owner(found, form.get("customer"))
            return found
        data = form.get("payment_method_data")
        if isinstance(data, dict):
            return self._new_payment_method(data)
        return None

    def _create_payment_intent(self, request: Request) -> Answer:
        self._auth(request)
        version = request.headers.get("stripe-version", "")
        return self._idempotent(request, lambda form: self._new_payment_intent(form, version))

    def _new_payment_intent(self, form: dict[str, Any], stripe_version: str) -> Answer:
        amount = self._amount(form)
        currency = str(form["currency"]).lower()
        if currency in _MINIMUM_CHARGE and amount < _MINIMUM_CHARGE[currency]:
            minimum = major(_MINIMUM_CHARGE[currency], currency)
            raise self._error(
                400, f"Amount must be at least {minimum} {currency}", code="amount_too_small", param="amount"
            )
        metadata = self._metadata(form.get("metadata"))
        confirm = form.get("confirm") == "true"
        automatic = form.get("automatic_payment_methods")
        if isinstance(automatic, dict):
            automatic_on = automatic.get("enabled") == "true"
        else:  # unset: on by default in API versions since 2023-08-16 unless types are listed
            automatic_on = "payment_method_types" not in form and (
                not stripe_version or stripe_version >= _AUTOMATIC_METHODS_SINCE
            )
        allow_redirects = automatic.get("allow_redirects", "always") if isinstance(automatic, dict) else "always"
        if confirm and automatic_on and allow_redirects != "never" and not form.get("return_url"):
            raise self._error(400, _RETURN_URL_MESSAGE, param="return_url")
        payment_method = self._payment_method_for_intent(form)
        if confirm and payment_method is None:
            raise self._error(
                400,
                "You cannot confirm this PaymentIntent because it's missing a payment method. To confirm the "
                "PaymentIntent, pass a payment method or confirm it client-side.",
                code="payment_intent_unexpected_state",
            )
        types = form.get("payment_method_types")
        intent = payment_intent(
            amount,
            currency,
            metadata=metadata,
            automatic_payment_methods=({"allow_redirects": allow_redirects, "enabled": True} if automatic_on else None),
            capture_method=form.get("capture_method", "automatic_async"),
            confirmation_method=form.get("confirmation_method", "automatic"),
            customer=form.get("customer"),
            description=form.get("description"),
            payment_method=payment_method["id"] if payment_method else None,
            payment_method_types=types if isinstance(types, list) else ["card"],
            receipt_email=form.get("receipt_email"),
            setup_future_usage=form.get("setup_future_usage"),
            statement_descriptor=form.get("statement_descriptor"),
            status="requires_confirmation" if payment_method else "requires_payment_method",
        )
        intent_id = intent["id"]
        self.store("payment_intents", intent_id, intent, refunded=0, return_url=form.get("return_url"))
        if not confirm or payment_method is None:
            return Answer(200, self._expanded(intent, form.get("expand")))
        behaviour = self.extra[payment_method["id"]]["behaviour"]
        if behaviour == "attach_then_decline":
            behaviour = "generic_decline"
        if form.get("off_session") == "true":
            return self._off_session(intent, amount, behaviour, payment_method, form.get("expand"))
        return self._on_session(intent, behaviour, payment_method, form.get("expand"))

    def _on_session(
        self, intent: dict[str, Any], behaviour: str, payment_method: dict[str, Any], expand: Any
    ) -> Answer:
        """Confirming with the customer there: the card's test behaviour succeeds, asks for 3-D Secure (requires_action,
        the simulator's challenge page standing in for Stripe.js) or declines (402 with the card error)."""
        if behaviour == "succeed":
            succeed(intent, intent["amount"])
        elif behaviour in _NEEDS_AUTHENTICATION:
            intent.update(
                status="requires_action",
                last_payment_error=None,
                next_action={
                    "type": "use_stripe_sdk",
                    "use_stripe_sdk": {
                        "type": "three_d_secure_redirect",
                        "stripe_js": f"{self.base_url}/stripe/3ds/{intent['id']}",
                        "source": f"src_1{token(23)}",
                    },
                },
            )
        else:
            error = decline(intent, behaviour, payment_method)
            body = {"error": {**error, "payment_intent": copy.deepcopy(intent)}}
            return Answer(402, body, {"Request-Id": f"req_{token(14)}"})
        return Answer(200, self._expanded(intent, expand))

    def _confirm_payment_intent(self, request: Request) -> Answer:
        """POST /v1/payment_intents/{id}/confirm: confirm again, e.g. on-session with the customer back after an
        off-session charge failed with authentication_required (Stripe's guide to saved cards). Only a PaymentIntent
        that still needs confirming or a payment method can be; its PaymentMethod is the one given, or the one it
        has."""
        self._auth(request)
        intent_id = request.params["id"]

        def confirm(form: dict[str, Any]) -> Answer:
            intent = self.find("payment_intents", intent_id)
            if intent is None:
                raise self._error(
                    404, f"No such payment_intent: '{intent_id}'", code="resource_missing", param="intent"
                )
            if intent["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
                raise self._error(
                    400,
                    f"You cannot confirm this PaymentIntent because it has a status of {intent['status']}.",
                    code="payment_intent_unexpected_state",
                )
            if form.get("payment_method"):
                payment_method = self._payment_method_for_intent({**form, "customer": intent.get("customer")})
            else:
                held = intent.get("payment_method")
                payment_method = self.find("payment_methods", held) if held else None
            if payment_method is None:
                raise self._error(
                    400,
                    "You cannot confirm this PaymentIntent because it's missing a payment method.",
                    code="payment_intent_unexpected_state",
                )
            intent["payment_method"] = payment_method["id"]
            if form.get("return_url"):
                self.extra[intent_id]["return_url"] = form["return_url"]
            behaviour = self.extra[payment_method["id"]]["behaviour"]
            if behaviour == "attach_then_decline":
                behaviour = "generic_decline"
            if form.get("off_session") == "true":
                return self._off_session(intent, intent["amount"], behaviour, payment_method, form.get("expand"))
            return self._on_session(intent, behaviour, payment_method, form.get("expand"))

        return self._idempotent(request, confirm)

    def _off_session(
        self, intent: dict[str, Any], amount: int, behaviour: str, payment_method: dict[str, Any], expand: Any
    ) -> Answer:
        """A PaymentIntent confirmed with `off_session=true` (a saved card, the customer away): no 3-D Secure is
        possible. Stripe's off-session test cards: pm_card_authenticationRequired (4000002760003184) fails with
        authentication_required (back to requires_payment_method), the decline cards decline, others (3155 once set
        up) succeed. Stripe then sends payment_intent.succeeded or payment_intent.payment_failed: here a moment
        after the answer."""
        if behaviour == "authenticate_always":
            behaviour = "authentication_required"
        if behaviour in ("succeed", "authenticate"):
            succeed(intent, amount)
            self._host.later(
                FOLLOW_UP_WEBHOOK_DELAY_SECONDS, [self._webhook(event("payment_intent.succeeded", intent))]
            )
            return Answer(200, self._expanded(intent, expand))
        error = decline(intent, behaviour, payment_method)
        self._host.later(
            FOLLOW_UP_WEBHOOK_DELAY_SECONDS, [self._webhook(event("payment_intent.payment_failed", intent))]
        )
        body = {"error": {**error, "payment_intent": copy.deepcopy(intent)}}
        return Answer(402, body, {"Request-Id": f"req_{token(14)}"})

    def _webhook(self, stripe_event: dict[str, Any]) -> Webhook:
        return Webhook(self.name, stripe_event, *signed(stripe_event))

    def _check_owner(self, payment_method: dict[str, Any], customer: Any) -> None:
        """As Stripe: a PaymentMethod detached from its Customer cannot be used again, and one attached to a Customer
        only with that Customer."""
        if self.extra.get(payment_method["id"], {}).get("detached"):
            raise self._error(
                400,
                "This PaymentMethod was previously used without being attached to a Customer or was detached from a "
                "Customer, and may not be used again.",
                param="payment_method",
            )
        owner = payment_method.get("customer")
        if owner and customer != owner:
            raise self._error(
                400,
                "The provided PaymentMethod was previously attached to a different Customer."
                if customer
                else "The provided PaymentMethod is attached to a Customer; provide that Customer in `customer`.",
                param="payment_method" if customer else "customer",
            )

    # -- customers and saved cards (SetupIntents) ---------------------------------------------------------

    def _create_customer(self, request: Request) -> Answer:
        self._auth(request)
        return self._idempotent(request, lambda form: Answer(200, self._new_customer(form)))

    def _new_customer(self, form: dict[str, Any]) -> dict[str, Any]:
        customer_id = f"cus_{token(14)}"
        customer = {
            "id": customer_id,
            "object": "customer",
            "created": int(time.time()),
            "description": form.get("description"),
            "email": form.get("email"),
            "invoice_settings": {"default_payment_method": None},
            "livemode": False,
            "metadata": self._metadata(form.get("metadata")),
            "name": form.get("name"),
        }
        return self.store("customers", customer_id, customer)

    def _get_customer(self, request: Request) -> Answer:
        self._auth(request)
        customer = self.find("customers", request.params["id"])
        if customer is None:
            raise self._missing("customer", request.params["id"], "id")
        return Answer(200, copy.deepcopy(customer))

    def _list_customer_payment_methods(self, request: Request) -> Answer:
        self._auth(request)
        customer_id = request.params["id"]
        if self.find("customers", customer_id) is None:
            raise self._missing("customer", customer_id, "customer")
        methods = [copy.deepcopy(m) for m in self.objects["payment_methods"].values() if m["customer"] == customer_id]
        methods.reverse()  # newest first
        body = {
            "object": "list",
            "data": methods,
            "has_more": False,
            "url": f"/v1/customers/{customer_id}/payment_methods",
        }
        return Answer(200, body)

    def _attach_payment_method(self, request: Request) -> Answer:
        self._auth(request)
        return self._idempotent(request, lambda form: self._attach(request.params["id"], form))

    def _attach(self, method_id: str, form: dict[str, Any]) -> Answer:
        method = self.find("payment_methods", method_id)
        if method is None:
            raise self._missing("payment_method", method_id, "payment_method")
        customer = form.get("customer")
        if not isinstance(customer, str) or self.find("customers", customer) is None:
            raise self._error(400, f"No such customer: '{customer}'", code="resource_missing", param="customer")
        self._check_owner(method, customer)
        method["customer"] = customer
        return Answer(200, copy.deepcopy(method))

    def _detach_payment_method(self, request: Request) -> Answer:
        self._auth(request)
        method = self.find("payment_methods", request.params["id"])
        if method is None:
            raise self._missing("payment_method", request.params["id"], "payment_method")
        if not method.get("customer"):
            raise self._error(
                400,
                "The payment method you provided is not attached to a customer so detachment is impossible.",
                code="payment_method_unexpected_state",
            )
        method["customer"] = None
        self.extra[method["id"]]["detached"] = True
        return Answer(200, copy.deepcopy(method))

    def _create_setup_intent(self, request: Request) -> Answer:
        self._auth(request)
        return self._idempotent(request, self._new_setup_intent)

    def _new_setup_intent(self, form: dict[str, Any]) -> Answer:
        """POST /v1/setup_intents (customer, payment_method or payment_method_data, confirm, usage, metadata): with
        confirm=true the card decides, as Stripe's test cards do on setup: 4242 / pm_card_visa succeed (the
        PaymentMethod is attached to the Customer, setup_intent.succeeded follows), 3155 / 3184 want 3-D Secure
        (requires_action; settle the seti to finish it), the decline cards fail (402 with the SetupIntent,
        setup_intent.setup_failed follows)."""
        customer = form.get("customer")
        if customer is not None and self.find("customers", str(customer)) is None:
            raise self._error(400, f"No such customer: '{customer}'", code="resource_missing", param="customer")
        usage = form.get("usage", "off_session")
        if usage not in ("off_session", "on_session"):
            raise self._error(400, f"Invalid usage: {usage}", param="usage")
        payment_method = self._payment_method_for_intent(form)
        confirm = form.get("confirm") == "true"
        setup_id = f"seti_1{token(23)}"
        setup = {
            "id": setup_id,
            "object": "setup_intent",
            "cancellation_reason": None,
            "client_secret": f"{setup_id}_secret_{token(25)}",
            "created": int(time.time()),
            "customer": customer,
            "description": form.get("description"),
            "last_setup_error": None,
            "latest_attempt": None,
            "livemode": False,
            "metadata": self._metadata(form.get("metadata")),
            "next_action": None,
            "payment_method": payment_method["id"] if payment_method else None,
            "payment_method_types": ["card"],
            "status": "requires_confirmation" if payment_method else "requires_payment_method",
            "usage": usage,
        }
        self.store("setup_intents", setup_id, setup)
        if not confirm or payment_method is None:
            return Answer(200, self._expanded(setup, form.get("expand")))
        behaviour = self.extra[payment_method["id"]]["behaviour"]
        if behaviour in ("succeed", "attach_then_decline"):
            self._setup_succeeded(setup)
            self._host.later(FOLLOW_UP_WEBHOOK_DELAY_SECONDS, [self._webhook(event("setup_intent.succeeded", setup))])
        elif behaviour in _NEEDS_AUTHENTICATION:
            setup.update(
                status="requires_action",
                next_action={
                    "type": "use_stripe_sdk",
                    "use_stripe_sdk": {
                        "type": "three_d_secure_redirect",
                        "stripe_js": f"{self.base_url}/stripe/3ds/{setup_id}",
                        "source": f"src_1{token(23)}",
                    },
                },
            )
        else:
            error = self._setup_failed(setup, behaviour, payment_method)
            self._host.later(
                FOLLOW_UP_WEBHOOK_DELAY_SECONDS, [self._webhook(event("setup_intent.setup_failed", setup))]
            )
            return Answer(
                402, {"error": {**error, "setup_intent": copy.deepcopy(setup)}}, {"Request-Id": f"req_{token(14)}"}
            )
        return Answer(200, self._expanded(setup, form.get("expand")))

    def _setup_succeeded(self, setup: dict[str, Any]) -> None:
        setup.update(status="succeeded", next_action=None, last_setup_error=None)
        method = self.find("payment_methods", setup["payment_method"]) if setup["payment_method"] else None
        if method is not None and setup["customer"]:
            method["customer"] = setup["customer"]  # Stripe attaches it to the Customer

    def _setup_failed(self, setup: dict[str, Any], decline_code: str, method: dict[str, Any] | None) -> dict[str, Any]:
        error: dict[str, Any]
        if decline_code in _DECLINES:
            code, message = _DECLINES[decline_code]
            error = {"code": code, "decline_code": decline_code, "message": message, "type": "card_error"}
        else:  # 3-D Secure on setup failed or was abandoned
            error = {
                "code": "setup_intent_authentication_failure",
                "message": "The latest attempt to set up the payment method has failed because authentication failed.",
                "type": "invalid_request_error",
            }
        error["payment_method"] = copy.deepcopy(method)
        setup.update(status="requires_payment_method", next_action=None, last_setup_error=error, payment_method=None)
        return error

    def _get_setup_intent(self, request: Request) -> Answer:
        self._auth(request)
        setup = self.find("setup_intents", request.params["id"])
        if setup is None:
            raise self._missing("setup_intent", request.params["id"], "intent")
        expand = [value for name, value in request.query.items() if name.startswith("expand")]
        return Answer(200, self._expanded(setup, expand))

    def _settle_setup(self, setup: dict[str, Any], outcome: str) -> Webhook:
        """The payer finished (success) or failed 3-D Secure on setup."""
        if setup["status"] != "requires_action":
            raise SettleError(409, f"{setup['id']} is {setup['status']}, not waiting for 3-D Secure")
        if outcome == "success":
            self._setup_succeeded(setup)
            return self._webhook(event("setup_intent.succeeded", setup))
        if outcome == "failure":
            method = self.find("payment_methods", setup["payment_method"]) if setup["payment_method"] else None
            self._setup_failed(setup, "authentication_failed", method)
            return self._webhook(event("setup_intent.setup_failed", setup))
        raise SettleError(409, f"a SetupIntent can only succeed or fail, not {outcome}")

    def _expanded(self, intent: dict[str, Any], expand: Any) -> dict[str, Any]:
        """A copy of `intent` with `expand[]=payment_method` honoured: the PaymentMethod object in place of its id,
        as Stripe answers (that is where a saved or tokenised card's brand and last 4 come from)."""
        answer = copy.deepcopy(intent)
        wanted = expand if isinstance(expand, list) else [expand] if isinstance(expand, str) else []
        if "payment_method" in wanted and answer.get("payment_method"):
            method = self.find("payment_methods", answer["payment_method"])
            if method is not None:
                answer["payment_method"] = copy.deepcopy(method)
        return answer

    def _amount(self, form: dict[str, Any]) -> int:
        for name in ("amount", "currency"):
            if not form.get(name):
                raise self._error(400, f"Missing required param: {name}.", code="parameter_missing", param=name)
        text = str(form["amount"])
        if not re.fullmatch(r"-?\d+", text):
            raise self._error(400, f"Invalid integer: {text}", code="parameter_invalid_integer", param="amount")
        amount = int(text)
        if amount < 1:
            raise self._error(
                400,
                "This value must be greater than or equal to 1.",
                code="parameter_invalid_integer",
                param="amount",
            )
        currency = str(form["currency"])
        if not re.fullmatch(r"[A-Za-z]{3}", currency):
            raise self._error(400, f"Invalid currency: {currency.lower()}.", param="currency")
        if amount > _MAX_AMOUNT:
            maximum = major(_MAX_AMOUNT, currency)
            raise self._error(
                400,
                f"Amount must be no more than {maximum} {currency.lower()}",
                code="amount_too_large",
                param="amount",
            )
        return amount

    def _metadata(self, metadata: Any) -> dict[str, str]:
        if metadata in (None, ""):
            return {}
        if not isinstance(metadata, dict):
            raise self._error(400, "Invalid object", code="parameter_invalid_object", param="metadata")
        if len(metadata) > 50:
            raise self._error(400, "You can have up to 50 metadata keys.", param="metadata")
        for key, value in metadata.items():
            if len(key) > 40:
                raise self._error(
                    400, "Metadata keys can have a maximum length of 40 characters.", param=f"metadata[{key}]"
                )
            if not isinstance(value, str) or len(value) > 500:
                raise self._error(400, "Metadata values can have up to 500 characters.", param=f"metadata[{key}]")
        return dict(metadata)

    def _get_payment_intent(self, request: Request) -> Answer:
        self._auth(request)
        intent = self.find("payment_intents", request.params["id"])
        if intent is None:
            raise self._missing("payment_intent", request.params["id"], "intent")
        expand = [value for name, value in request.query.items() if name.startswith("expand")]  # expand[0]=...
        return Answer(200, self._expanded(intent, expand))

    # -- refunds ----------------------------------------------------------------------------------------------

    def _create_refund(self, request: Request) -> Answer:
        """POST /v1/refunds (payment_intent or charge, amount?, reason?, metadata?): a Refund of what is left unless
        `amount` says less, refused as Stripe does past the remainder; replayed per Idempotency-Key."""
        self._auth(request)
        return self._idempotent(request, self._new_refund)

    def _new_refund(self, form: dict[str, Any]) -> Answer:
        intent = self._refunded_intent(form)
        intent_id, currency = intent["id"], intent["currency"]
        extra = self.extra[intent_id]
        if _charged_back(extra):
            raise self._error(
                400,
                f"Charge {intent['latest_charge']} has been charged back; cannot issue a refund.",
                code="charge_disputed",
            )
        remaining = intent["amount_received"] - extra["refunded"]
        if remaining <= 0:
            raise self._error(
                400, f"Charge {intent['latest_charge']} has already been refunded.", code="charge_already_refunded"
            )
        amount = self._refund_amount(form["amount"]) if "amount" in form else remaining
        if amount > remaining:
            raise self._error(
                400,
                f"Refund amount ({_shown(amount, currency)}) is greater than unrefunded amount on charge "
                f"({_shown(remaining, currency)})",
                code="amount_too_large",
                param="amount",
            )
        reason = form.get("reason") or None
        if reason is not None and reason not in _REFUND_REASONS:
            raise self._error(
                400,
                f"Invalid reason: must be one of {', '.join(_REFUND_REASONS[:-1])}, or {_REFUND_REASONS[-1]}",
                code="parameter_invalid_string",
                param="reason",
            )
        refund = refund_object(intent, amount, metadata=self._metadata(form.get("metadata")), reason=reason)
        webhooks = self._refund_made(intent, refund)
        # Sent after the answer, outside the simulator's lock (as PayPal's capture webhook is).
        self._host.later(REFUND_WEBHOOK_DELAY_SECONDS, webhooks)
        return Answer(200, copy.deepcopy(refund))

    def _refunded_intent(self, form: dict[str, Any]) -> dict[str, Any]:
        """The succeeded PaymentIntent a refund names (by `payment_intent`, or by its `charge`)."""
        intent_id, charge_id = form.get("payment_intent"), form.get("charge")
        if intent_id:
            intent = self.find("payment_intents", str(intent_id))
            if intent is None:
                raise self._error(
                    400, f"No such payment_intent: '{intent_id}'", code="resource_missing", param="payment_intent"
                )
        elif charge_id:
            found = [i for i in self.objects["payment_intents"].values() if i["latest_charge"] == charge_id]
            if not found:
                raise self._error(400, f"No such charge: '{charge_id}'", code="resource_missing", param="charge")
            intent = found[0]
        else:
            raise self._error(
                400, "Missing required param: payment_intent.", code="parameter_missing", param="payment_intent"
            )
        if intent["status"] != "succeeded":
            raise self._error(400, f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.")
        return intent

    def _refund_amount(self, value: Any) -> int:
        text = str(value)
        if not re.fullmatch(r"-?\d+", text):
            raise self._error(400, f"Invalid integer: {text}", code="parameter_invalid_integer", param="amount")
        if int(text) < 1:
            raise self._error(
                400, "This value must be greater than or equal to 1.", code="parameter_invalid_integer", param="amount"
            )
        return int(text)

    def _refund_made(self, intent: dict[str, Any], refund: dict[str, Any]) -> list[Webhook]:
        """Count `refund` against `intent` (the one running total `refund_failed` gives back) and keep it; answers
        the webhooks Stripe sends for it: charge.refunded, then refund.created."""
        extra = self.extra[intent["id"]]
        before = extra["refunded"]
        extra["refunded"] = before + refund["amount"]
        self.store("refunds", refund["id"], refund)
        extra.setdefault("refunds", []).append(refund)  # the same object: a failure shows in GET /v1/refunds too
        charge = refunded_charge(intent, refund["amount"], extra["refunded"], made=refund)
        events = [
            event("charge.refunded", charge, previous_attributes={"amount_refunded": before}),
            event("refund.created", refund),
        ]
        return [Webhook(self.name, stripe_event, *signed(stripe_event)) for stripe_event in events]

    def _list_refunds(self, request: Request) -> Answer:
        """GET /v1/refunds: newest first, `limit` (1-100, default 10) a page, `starting_after` the next one."""
        self._auth(request)
        query = request.query
        text = query.get("limit", "10")
        if not text.isdigit() or not 1 <= int(text) <= 100:
            raise self._error(
                400, "This value must be less than or equal to 100.", code="parameter_invalid_integer", param="limit"
            )
        refunds = list(reversed(self.objects["refunds"].values()))
        intent_id = query.get("payment_intent")
        if intent_id:
            if self.find("payment_intents", intent_id) is None:
                raise self._error(
                    400, f"No such payment_intent: '{intent_id}'", code="resource_missing", param="payment_intent"
                )
            refunds = [r for r in refunds if r["payment_intent"] == intent_id]
        if query.get("charge"):
            refunds = [r for r in refunds if r["charge"] == query["charge"]]
        after = query.get("starting_after")
        if after:
            ids = [r["id"] for r in refunds]
            if after not in ids:
                raise self._error(400, f"No such refund: '{after}'", code="resource_missing", param="starting_after")
            refunds = refunds[ids.index(after) + 1 :]
        page = refunds[: int(text)]
        body = {
            "object": "list",
            "data": copy.deepcopy(page),
            "has_more": len(refunds) > len(page),
            "url": "/v1/refunds",
        }
        return Answer(200, body)

    def _get_refund(self, request: Request) -> Answer:
        self._auth(request)
        refund = self.find("refunds", request.params["id"])
        if refund is None:
            raise self._missing("refund", request.params["id"], "id")
        return Answer(200, copy.deepcopy(refund))

    def _get_dispute(self, request: Request) -> Answer:
        self._auth(request)
        dispute = self.find("disputes", request.params["id"])
        if dispute is None:
            raise self._missing("dispute", request.params["id"], "dispute")
        return Answer(200, copy.deepcopy(dispute))

    def _page(self, request: Request) -> Answer:
        setup = self.find("setup_intents", request.params["id"])
        if setup is not None:  # 3-D Secure on saving a card: nothing is charged
            page = pages.checkout_page(
                gateway="Stripe 3-D Secure",
                provider="stripe",
                ref=setup["id"],
                amount="0.00",
                currency="usd",
                description="Save your card for later payments",
                payable=setup["status"] == "requires_action",
            )
            return Answer(200, page)
        intent = self.find("payment_intents", request.params["id"])
        if intent is None:
            return Answer(404, pages.missing_page(gateway="Stripe 3-D Secure", what="No such PaymentIntent."))
        page = pages.checkout_page(
            gateway="Stripe 3-D Secure",
            provider="stripe",
            ref=intent["id"],
            amount=major(intent["amount"], intent["currency"]),
            currency=intent["currency"],
            description=intent["description"],
            payable=intent["status"] == "requires_action",
        )
        return Answer(200, page)

    # -- settling ---------------------------------------------------------------------------------------------

    def settle(self, ref: str, outcome: str, amount: str | None) -> Webhook:
        setup = self.find("setup_intents", ref)
        if setup is not None:
            return self._settle_setup(setup, outcome)
        intent = self.find("payment_intents", ref)
        if intent is None:
            raise SettleError(404, f"no Stripe PaymentIntent {ref}")
        extra = self.extra[ref]
        currency = intent["currency"]
        if outcome in ("dispute", "dispute_won", "dispute_lost"):
            return self._send_in_order(self._dispute_events(intent, outcome, amount))
        if outcome == "success":
            if intent["status"] == "succeeded":
                raise SettleError(409, f"{ref} already succeeded")
            succeed(intent, settle_minor(amount, currency) if amount else intent["amount"])
            stripe_event = event("payment_intent.succeeded", intent)
        elif outcome == "failure":
            if intent["status"] == "succeeded":
                raise SettleError(409, f"{ref} already succeeded; settle a refund instead")
            method_id = intent["payment_method"]
            method = self.find("payment_methods", method_id) if method_id else None
            decline(intent, "generic_decline", method)
            stripe_event = event("payment_intent.payment_failed", intent)
        elif outcome == "hold":  # a bank debit: processing for days, then succeeded or failed
            if intent["status"] == "succeeded":
                raise SettleError(409, f"{ref} already succeeded")
            intent["status"] = "processing"
            stripe_event = event("payment_intent.processing", intent)
        elif outcome == "refund_failed":
            made = [r for r in extra.get("refunds", []) if r["status"] == "succeeded"]
            if not made:
                raise SettleError(409, f"{ref} has no refund that could fail")
            failed = made[-1]
            failed.update(status="failed", failure_reason="expired_or_canceled_card")
            extra["refunded"] -= failed["amount"]  # the money was not returned
            stripe_event = event("refund.failed", failed)
        else:
            if intent["status"] != "succeeded":
                raise SettleError(409, f"{ref} has not succeeded, so there is nothing to refund")
            if _charged_back(extra):
                raise SettleError(409, f"{ref}'s charge is disputed, so it cannot be refunded")
            remaining = intent["amount_received"] - extra["refunded"]
            refund = settle_minor(amount, currency) if amount else remaining
            if not 0 < refund <= remaining:
                raise SettleError(409, f"{ref} has {major(remaining, currency)} {currency} left to refund")
            # A refund made in Stripe's dashboard: the same Refund as the API's, announced by charge.refunded.
            return self._refund_made(intent, refund_object(intent, refund))[0]
        body, headers = signed(stripe_event)
        return Webhook(self.name, stripe_event, body, headers)

    def _dispute_events(self, intent: dict[str, Any], outcome: str, amount: str | None) -> list[dict[str, Any]]:
        """Open, win or lose the dispute of `intent`'s charge; the events Stripe sends for that, in order."""
        ref, currency = intent["id"], intent["currency"]
        extra = self.extra[ref]
        dispute = extra.get("dispute")
        if outcome == "dispute":
            if intent["status"] != "succeeded":
                raise SettleError(409, f"{ref} has not succeeded, so there is nothing to dispute")
            if dispute is not None:  # Stripe: one dispute per charge
                raise SettleError(409, f"{ref}'s charge is already disputed ({dispute['id']})")
            disputed = settle_minor(amount, currency) if amount else intent["amount_received"]
            if disputed > intent["amount_received"]:
                raise SettleError(409, f"{ref} received {major(intent['amount_received'], currency)} {currency} only")
            dispute = dispute_object(intent, disputed)
            self.store("disputes", dispute["id"], dispute, payment_intent=ref)
            extra["dispute"] = dispute  # the same object
            opened = event("charge.dispute.created", dispute)
            dispute["balance_transactions"].append(dispute_funds(dispute, withdrawn=True))
            return [opened, event("charge.dispute.funds_withdrawn", dispute)]
        if dispute is None or dispute["status"] not in _DISPUTE_OPEN:
            raise SettleError(409, f"{ref} has no open dispute to decide")
        if outcome == "dispute_lost":
            dispute.update(status="lost", is_charge_refundable=False)
            return [event("charge.dispute.closed", dispute)]
        dispute["status"] = "won"
        dispute["balance_transactions"].append(dispute_funds(dispute, withdrawn=False))
        return [event("charge.dispute.funds_reinstated", dispute), event("charge.dispute.closed", dispute)]

    def _send_in_order(self, events: list[dict[str, Any]]) -> Webhook:
        """The signed webhook of the first event, for `settle()` to answer; the others are delivered after it, in order,
        outside the simulator's lock (as a refund's are)."""
        first, *rest = [Webhook(self.name, stripe_event, *signed(stripe_event)) for stripe_event in events]
        if rest:
            self._host.later(FOLLOW_UP_WEBHOOK_DELAY_SECONDS, rest)
        return first


_DISPUTE_OPEN = ("warning_needs_response", "warning_under_review", "needs_response", "under_review")


def _charged_back(extra: dict[str, Any]) -> bool:
    """Whether the PaymentIntent's charge has a dispute open or lost: Stripe refunds it no more."""
    dispute = extra.get("dispute")
    return dispute is not None and dispute["status"] not in ("won", "warning_closed")


def _shown(minor: int, currency: str) -> str:
    """An amount as Stripe's refund errors show it: `$12.50`, else `1000 jpy`."""
    sign = _CURRENCY_SIGNS.get(currency)
    return f"{sign}{major(minor, currency)}" if sign else f"{major(minor, currency)} {currency}"


def _luhn_ok(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _card_brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"34", "37"}:
        return "amex"
    if "51" <= number[:2] <= "55" or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number.startswith(("6011", "65")) or "644" <= number[:3] <= "649":
        return "discover"
    if "3528" <= number[:4] <= "3589":
        return "jcb"
    if number.startswith(("36", "38", "39")) or "300" <= number[:3] <= "305":
        return "diners"
    if number.startswith("62"):
        return "unionpay"
    return "unknown"


GATEWAY = Stripe  # what the server loads for this registry entry
