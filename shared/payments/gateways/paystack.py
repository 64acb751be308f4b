"""Paystack adapter: Transaction initialize + redirect, webhooks signed with HMAC-SHA512 (docs/gateways.md#paystack).

Paystack references allow only letters, digits and `-` `.` `=`, so our payment id `pay_01J...`
travels as the reference `pay-01J...` (the one `_` becomes `-`, and back), with a `.<attempt>` suffix
when a later attempt has to open another transaction (Paystack can neither dedupe an initialize nor hand
back an earlier one's checkout URL). We choose every reference, so the store binds it to the payment
before the call. The payment and customer ids also travel in `metadata` (hints only). `gateway_ref` is
the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from payments.gateways.base import (
    CreateRequest,
    CreateResult,
    CurrencyNotSupported,
    EventKind,
    GatewayEvent,
    GatewayRejected,
    GatewaySettings,
    StatusAnswer,
)
from payments.gateways.http import HttpGateway, HttpRejected, call_json
from payments.gateways.payload import read_answer, read_webhook
from payments.gateways.paystack_models import ErrorAnswer, Event, Initialized, Metadata, Verified
from payments.gateways.webhook_body import SHA512, check_hex_hmac, json_object
from payments.ids import PREFIX as PAYMENT_ID_PREFIX
from payments.ids import is_payment_id
from payments.money import Money

# Confirmed in Paystack's SDK docs (NGN, GHS, ZAR, USD) and an official sample (KES). Each one also
# depends on the merchant's country and account enablement.
SUPPORTED_CURRENCIES = frozenset({"NGN", "GHS", "ZAR", "KES", "USD"})

_REFERENCE_PREFIX = PAYMENT_ID_PREFIX.replace("_", "-")
# Paystack sends no failure webhook; these verify statuses mean the transaction did not go through.
# `abandoned` is also the state of a transaction whose payer has not finished yet, so reconciliation
# should only ask about payments older than the checkout window.
_FAILED_STATUSES = frozenset({"failed", "abandoned", "reversed"})


def reference_for(payment_id: str, attempt: int = 1) -> str:
    """The Paystack-safe reference of one of our payment ids: `pay_01J...` -> `pay-01J...` (`.2`, `.3`, ...
    for later attempts)."""
    base = payment_id.replace("_", "-")
    return base if attempt <= 1 else f"{base}.{attempt}"


def payment_id_from_reference(reference: str) -> str | None:
    """Our payment id back from a reference we made (`pay-01J...` or `pay-01J....<attempt>`), or None."""
    base = reference.partition(".")[0]
    if not base.startswith(_REFERENCE_PREFIX):
        return None
    candidate = PAYMENT_ID_PREFIX + base.removeprefix(_REFERENCE_PREFIX)
    return candidate if is_payment_id(candidate) else None


# Paystack event -> what it means for our payment. It sends no failure event: reconciliation asks.
EVENT_KINDS = {
    "charge.success": EventKind.SUCCESS,
    "refund.processed": EventKind.REFUND,
    "refund.failed": EventKind.REFUND_FAILED,
}


@dataclass(frozen=True, slots=True)
class PaystackSettings(GatewaySettings):
    """paystack's credentials (registry: secret_key), besides the API base every adapter has."""

    secret_key: str = ""


class PaystackGateway(HttpGateway):
    """`Gateway` for Paystack. Settings and the HTTP session are created on first use if not given."""

    name = "paystack"
    object_name = "Paystack payment {ref}"
    signature_headers = ("x-paystack-signature",)
    currencies = SUPPORTED_CURRENCIES
    settings_class = PaystackSettings
    _settings: PaystackSettings

    # ---- creating a payment -------------------------------------------------------------------

    def check_currency(self, money: Money) -> None:
        self.check_listed_currency(money)

    def reference_for_attempt(self, payment_id: str, attempt: int) -> str | None:
        return reference_for(payment_id, attempt)

    def create(self, request: CreateRequest) -> CreateResult:
        self.check_currency(request.money)
        if not request.email:  # Paystack requires the payer's email; ours comes from the token
            raise CurrencyNotSupported("paystack needs the payer's email, and the token carries none", field="email")
        reference = reference_for(request.payment_id, request.attempt)
        body = {
            "email": request.email,
            "amount": request.money.minor,  # subunits: kobo, pesewas, cents
            "currency": request.money.currency,
            "reference": reference,
            "callback_url": request.return_url or self._settings.portal_return_url,
            "metadata": {"payment_id": request.payment_id, "customer_id": request.customer_id},
        }
        # Sent once: no idempotency header, so the session does not repeat it. Each attempt has its own
        # reference, so "Duplicate Transaction Reference" means someone else used ours: a 502, nothing opened.
        answer = self._call("POST", "/transaction/initialize", json=body)
        data = read_answer(Initialized, answer, self.name, "the transaction it initialized").data
        if data.reference not in (None, reference):
            raise GatewayRejected("paystack answered with another reference than the one we sent")
        return CreateResult(gateway_ref=reference, next_action={"type": "redirect", "url": data.authorization_url})

    # ---- webhooks -------------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        check_hex_hmac(
            secret=self._settings.secret_key,
            received=headers.get("x-paystack-signature", ""),
            message=raw_body,
            digest=SHA512,
            header="x-paystack-signature",
            what="paystack secret key",
        )

    def parse_event(self, headers: Mapping[str, str], raw_body: bytes) -> GatewayEvent:
        event = read_webhook(Event, json_object(raw_body, "paystack webhook body"), "paystack event")
        data = event.data
        # No top-level event id: the event name plus the object's id is unique per event.
        object_id = data.id or data.refund_reference or data.reference
        if object_id is None:
            raise ValueError(f"paystack {event.event} carries no data.id")

        kind = EVENT_KINDS.get(event.event, EventKind.IGNORED)
        refund_id = None
        if kind is EventKind.REFUND or kind is EventKind.REFUND_FAILED:
            # The refund names the refunded transaction by its reference (ours), not its metadata.
            reference = data.transaction_reference or data.transaction.reference
            refund_id = data.id or data.refund_reference
        else:
            reference = data.reference
        payment_id, customer_id = _our_ids(data.metadata, reference)
        return GatewayEvent(
            provider=self.name,
            event_id=f"{event.event}:{object_id}",
            event_type=event.event,
            kind=kind,
            payment_id=payment_id,
            customer_id=customer_id,
            gateway_ref=reference,
            money=None if kind is EventKind.IGNORED else data.money,
            reason="failed" if kind is EventKind.REFUND_FAILED else None,
            refund_id=refund_id,
        )

    # ---- reconciliation -------------------------------------------------------------------------

    def fetch_status(self, gateway_ref: str, payment_id: str) -> StatusAnswer:
        reference = gateway_ref or reference_for(payment_id)
        try:
            answer = self._call("GET", f"/transaction/verify/{reference}")
        except HttpRejected as exc:
            if exc.status in (400, 404) and "not found" in _message(exc.body).lower():
                return StatusAnswer(EventKind.IGNORED, reason="paystack does not know this reference")
            raise
        transaction = read_answer(Verified, answer, self.name, "the verification").data
        if transaction.status == "success":
            return StatusAnswer(EventKind.SUCCESS, money=transaction.money)
        if transaction.status in _FAILED_STATUSES:
            return StatusAnswer(EventKind.FAILURE, reason=transaction.gateway_response or transaction.status)
        return StatusAnswer(EventKind.IGNORED)  # ongoing, pending, queued, ...

    # ---- plumbing -------------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        settings = self._settings
        if not settings.secret_key:
            raise GatewayRejected("paystack is not configured (PAYSTACK_SECRET_KEY is empty)")
        url = settings.api_base.rstrip("/") + path
        headers = {"Authorization": f"Bearer {settings.secret_key}"}
        try:
            return call_json(self.session, method, url, gateway=self.name, headers=headers, **kwargs)
        except HttpRejected as exc:
            detail = _message(exc.body)
            if detail:  # e.g. "Duplicate Transaction Reference": helps whoever reads the 502
                raise HttpRejected(f"{exc.message}: {detail[:200]}", exc.status, exc.body) from exc
            raise


def _message(body: dict[str, Any] | None) -> str:
    return ErrorAnswer.model_validate(body or {}).message


def _our_ids(metadata: Metadata, reference: str | None) -> tuple[str | None, str | None]:
    """Our ids from `metadata`, else the payment id from the reference (ours, unless a payer chose it)."""
    payment_id = metadata.payment_id
    if payment_id is None or not is_payment_id(payment_id):
        payment_id = payment_id_from_reference(reference) if reference else None
    return payment_id, metadata.customer_id
