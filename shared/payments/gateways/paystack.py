"""Paystack adapter: Transaction initialize + redirect, webhooks signed with HMAC-SHA512 (docs/gateways.md#paystack).

Paystack references allow only letters, digits and `-` `.` `=`, so our payment id `pay_01J...`
travels as the reference `pay-01J...` (the one `_` becomes `-`, and back), with a `.<attempt>` suffix
when a later attempt has to open another transaction (Paystack can neither dedupe an initialize nor hand
back an earlier one's checkout URL). We choose every reference, so the store binds it to the payment
before the call. The payment and customer ids also travel in `metadata` (hints only). `gateway_ref` is
the reference.

Operators refund through POST /refund, which takes the reference. Paystack takes no idempotency key there: our
refund entry id travels in the refund's `merchant_note` ("refund <id>"), and `find_refund` looks for it among
the transaction's refunds (GET /refund?transaction=<the transaction's numeric id>).

A dispute of the transaction arrives as charge.dispute.* (the dispute, naming the transaction by its reference):
created or reminded, it shows on the payment; resolved, its `resolution` decides (see _RESOLUTIONS). `fetch_dispute`
(GET /dispute/{id}) and `fetch_refund` (GET /refund/{id}) answer one dispute or refund only when it is of our
transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
    RefundAnswer,
    RefundRequest,
    StatusAnswer,
)
from payments.gateways.http import HttpGateway, HttpRejected, call_json
from payments.gateways.payload import read_answer, read_webhook
from payments.gateways.paystack_models import (
    DisputeEvent,
    DisputeFetched,
    ErrorAnswer,
    Event,
    Initialized,
    Metadata,
    Refund,
    RefundCreated,
    RefundFetched,
    Refunds,
    Transaction,
    Verified,
)
from payments.gateways.webhook_body import SHA512, check_hex_hmac, json_object
from payments.ids import PREFIX as PAYMENT_ID_PREFIX
from payments.ids import is_payment_id
from payments.models import DisputeStatus, RefundStatus
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


# Paystack event -> what it means for our payment. It sends no failure event: reconciliation asks. A refund
# Paystack has accepted (refund.pending, refund.processing) debits from then on, as a processed one does.
EVENT_KINDS = {
    "charge.success": EventKind.SUCCESS,
    "refund.pending": EventKind.REFUND,
    "refund.processing": EventKind.REFUND,
    "refund.processed": EventKind.REFUND,
    "refund.failed": EventKind.REFUND_FAILED,
}
# A refund's state at Paystack, as its status (API answers) or its event's name says.
_REFUND_STATUSES = {
    "pending": RefundStatus.PENDING,
    "processing": RefundStatus.PENDING,
    "needs-attention": RefundStatus.PENDING,  # waits for the customer's account details; not failed yet
    "processed": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
}
# Paystack's 400s for a refund it will not make: above the transaction (or what is left of it), nothing left,
# below its minimum. Nothing was refunded.
_REFUSED_REFUND = ("greater than", "fully reversed", "cannot refund less than", "amount")
# Paystack's dispute events: created and reminded (still unresolved), the payment shows an open dispute and no money
# moves; resolved, `resolution` says how.
_DISPUTE_EVENTS = frozenset({"charge.dispute.create", "charge.dispute.remind", "charge.dispute.resolve"})
# A resolved dispute's `resolution`. merchant-accepted: we accepted it, so the payer gets the disputed amount back
# (`refund_amount`) and we lose it: a chargeback. declined: we contested it and it was decided for us: a reversal,
# which takes nothing where nothing was withdrawn. Anything else: still open, as far as we can tell.
_RESOLUTIONS = {
    "merchant-accepted": (EventKind.CHARGEBACK, DisputeStatus.LOST),
    "declined": (EventKind.CHARGEBACK_REVERSAL, DisputeStatus.WON),
}
_UNRESOLVED = (EventKind.DISPUTE, DisputeStatus.OPEN)
_PAGE = 100  # refunds asked for per page of GET /refund
_MOST_PAGES = 50  # a transaction with more refunds than 50 pages hold is not ours


@dataclass(frozen=True, slots=True)
class PaystackSettings(GatewaySettings):
    """paystack's credentials (registry: secret_key), besides the API base every adapter has."""

    secret_key: str = ""


class PaystackGateway(HttpGateway):
    """`Gateway` for Paystack. Settings and the HTTP session are created on first use if not given."""

    name = "paystack"
    capabilities = frozenset({Capability.RECONCILE, Capability.REFUND})  # REFUND: POST /refund
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
        body = json_object(raw_body, "paystack webhook body")
        event = read_webhook(Event, body, "paystack event")
        if event.event in _DISPUTE_EVENTS:
            return self._dispute_event(read_webhook(DisputeEvent, body, "paystack dispute event"))
        data = event.data
        # No top-level event id: the event name plus the object's id is unique per event.
        object_id = data.id or data.refund_reference or data.reference
        if object_id is None:
            raise ValueError(f"paystack {event.event} carries no data.id")

        kind = EVENT_KINDS.get(event.event, EventKind.IGNORED)
        if data.dispute is not None and kind in (EventKind.REFUND, EventKind.REFUND_FAILED):
            # Paystack refunds the customer of a dispute the merchant accepted: charge.dispute.resolve already took
            # that money back as a chargeback, so the refund is not a second debit.
            kind = EventKind.IGNORED
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
            refund_status=_REFUND_STATUSES[event.event.removeprefix("refund.")] if kind is EventKind.REFUND else None,
            fee=data.fee if kind is EventKind.SUCCESS else None,
        )

    def _dispute_event(self, event: DisputeEvent) -> GatewayEvent:
        """charge.dispute.*: the dispute (its id is the event's object), of the transaction it names by reference."""
        dispute = event.data
        if dispute.id is None:
            raise ValueError(f"paystack {event.event} carries no data.id")
        kind, status = _UNRESOLVED
        if event.event == "charge.dispute.resolve":
            kind, status = _RESOLUTIONS.get(dispute.resolution or "", _UNRESOLVED)
        reference = dispute.reference
        payment_id, customer_id = _our_ids(dispute.transaction.metadata, reference)
        return GatewayEvent(
            provider=self.name,
            event_id=f"{event.event}:{dispute.id}",
            event_type=event.event,
            kind=kind,
            payment_id=payment_id,
            customer_id=customer_id,
            gateway_ref=reference,
            money=dispute.money,
            reason=dispute.category,
            dispute_id=dispute.id,
            dispute_status=status,
        )

    # ---- reconciliation -------------------------------------------------------------------------

    def fetch_status(self, gateway_ref: str, payment_id: str) -> StatusAnswer:
        transaction = self._verified(gateway_ref or reference_for(payment_id))
        if transaction is None:
            return StatusAnswer(EventKind.IGNORED, reason="paystack does not know this reference")
        if transaction.status == "success":
            return StatusAnswer(EventKind.SUCCESS, money=transaction.money, fee=transaction.fee)
        if transaction.status in _FAILED_STATUSES:
            return StatusAnswer(EventKind.FAILURE, reason=transaction.gateway_response or transaction.status)
        return StatusAnswer(EventKind.IGNORED)  # ongoing, pending, queued, ...

    def _verified(self, reference: str) -> Transaction | None:
        """The transaction `reference` as GET /transaction/verify shows it; None if Paystack knows no such one."""
        try:
            answer = self._call("GET", f"/transaction/verify/{reference}")
        except HttpRejected as exc:
            if _not_found(exc):
                return None
            raise
        return read_answer(Verified, answer, self.name, "the verification").data

    def _of_our_transaction(self, reference: str | None, transaction_id: str | None, gateway_ref: str) -> bool:
        """Whether a dispute or refund naming a transaction by `reference` (else by its numeric id) names ours."""
        if reference is not None:
            return reference == gateway_ref
        if transaction_id is None:
            raise GatewayRejected("paystack answered without naming the transaction")
        ours = self._verified(gateway_ref)
        return ours is not None and ours.id == transaction_id

    # ---- refunds --------------------------------------------------------------------------------

    def refund(self, request: RefundRequest) -> RefundAnswer:
        """Refund `request.money` of the transaction `request.gateway_ref`. Sent once (no idempotency key): after
        an unknown outcome the caller asks `find_refund`, which finds the refund by the key in its merchant note."""
        body: dict[str, Any] = {
            "transaction": request.gateway_ref,
            "amount": request.money.minor,
            "currency": request.money.currency,
            "merchant_note": _merchant_note(request.key),
        }
        if request.reason:
            body["customer_note"] = request.reason
        try:
            answer = self._call("POST", "/refund", json=body)
        except HttpRejected as exc:
            message = _message(exc.body).lower()
            if exc.status == 400 and any(phrase in message for phrase in _REFUSED_REFUND):
                raise GatewayInputRejected(exc.message, field="amount") from exc
            raise
        made = read_answer(RefundCreated, answer, self.name, "the refund it queued").data
        if made.reference not in (None, request.gateway_ref):
            raise GatewayRejected("paystack answered a refund of another transaction than the one we named")
        return _refund_answer(made, request.money.currency)

    def find_refund(self, request: RefundRequest) -> RefundAnswer | None:
        """The refund whose merchant note carries `request.key`, among the transaction's refunds; None if there is
        none. GET /refund filters by the transaction's numeric id, which verify gives for our reference."""
        transaction = self._verified(request.gateway_ref)
        if transaction is None:
            return None  # no such transaction: nothing was refunded of it
        if transaction.id is None:
            raise GatewayRejected("paystack verified the transaction without its id, which lists its refunds")
        page = 1
        while page <= _MOST_PAGES:
            params = {"transaction": transaction.id, "perPage": _PAGE, "page": page}
            listed = read_answer(Refunds, self._call("GET", "/refund", params=params), self.name, "the refunds")
            for made in listed.data:
                # The filter is Paystack's; a refund that names another transaction is never ours.
                this_transaction = made.transaction.id in (None, transaction.id)
                if this_transaction and made.reference in (None, request.gateway_ref) and _carries(made, request.key):
                    return _refund_answer(made, request.money.currency)
            if page >= listed.meta.pageCount or not listed.data:
                return None
            page += 1
        return None

    def fetch_refund(self, gateway_ref: str, refund_id: str) -> RefundAnswer | None:
        """Refund `refund_id` (GET /refund/{id}) as Paystack has it now, if it refunds our transaction `gateway_ref`;
        None if Paystack knows no such refund, or it refunds another transaction."""
        try:
            answer = self._call("GET", f"/refund/{refund_id}")
        except HttpRejected as exc:
            if _not_found(exc):
                return None
            raise
        made = read_answer(RefundFetched, answer, self.name, "the refund").data
        if made.id != refund_id:
            raise GatewayRejected(f"paystack answered another refund than {refund_id}")
        if not self._of_our_transaction(made.reference, made.transaction.id, gateway_ref):
            return None
        currency = made.currency
        if currency is None:  # in the transaction's currency, which verify shows
            transaction = self._verified(gateway_ref)
            currency = transaction.currency if transaction is not None else None
        if currency is None:
            raise GatewayRejected(f"paystack answered refund {refund_id} without a currency")
        return _refund_answer(made, currency.upper())

    # ---- disputes --------------------------------------------------------------------------------

    def fetch_dispute(self, gateway_ref: str, dispute_id: str) -> DisputeAnswer | None:
        """Dispute `dispute_id` (GET /dispute/{id}) as Paystack has it now, if it disputes our transaction
        `gateway_ref`; None if Paystack knows no such dispute, or it disputes another transaction. Resolved as
        merchant-accepted, the payer got the amount back (withdrawn); declined, nothing moved."""
        try:
            answer = self._call("GET", f"/dispute/{dispute_id}")
        except HttpRejected as exc:
            if _not_found(exc):
                return None
            raise
        dispute = read_answer(DisputeFetched, answer, self.name, "the dispute").data
        if dispute.id != dispute_id:
            raise GatewayRejected(f"paystack answered another dispute than {dispute_id}")
        if not self._of_our_transaction(dispute.reference, dispute.transaction.id, gateway_ref):
            return None
        money = dispute.money
        if money is None:
            raise GatewayRejected(f"paystack answered dispute {dispute_id} without an amount we can read")
        _kind, status = _RESOLUTIONS.get(dispute.resolution or "", _UNRESOLVED)
        return DisputeAnswer(
            dispute_id=dispute_id,
            status=status,
            money=money,
            reason=dispute.category,
            withdrawn=status is DisputeStatus.LOST,
        )

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


def _not_found(exc: HttpRejected) -> bool:
    """Paystack's answer about a reference or id it does not know: 400 or 404, "... not found"."""
    return exc.status in (400, 404) and "not found" in _message(exc.body).lower()


def _merchant_note(key: str) -> str:
    """The merchant note of the refund for our refund entry `key`: how `find_refund` knows it again."""
    return f"refund {key}"


def _carries(refund: Refund, key: str) -> bool:
    """Whether `refund` is the one made for our refund entry `key` (its merchant note names it)."""
    return key in (refund.merchant_note or "").split()


def _refund_answer(refund: Refund, currency: str) -> RefundAnswer:
    """A refund Paystack made or queued of a transaction in `currency`, in neutral terms. One without a currency is
    in the transaction's; a status we do not know is a refund it accepted (pending): it debits, as the rules say."""
    if refund.id is None or refund.amount is None or refund.status is None:
        raise GatewayRejected("paystack answered a refund without its id, amount or status")
    money = refund.money_or(currency)
    if money is None or money.currency != currency:
        raise GatewayRejected(f"paystack answered refund {refund.id} in a currency we cannot read")
    status = _REFUND_STATUSES.get(refund.status, RefundStatus.PENDING)
    return RefundAnswer(
        refund_id=refund.id,
        status=status,
        money=money,
        reason="failed" if status is RefundStatus.FAILED else None,
    )


def _our_ids(metadata: Metadata, reference: str | None) -> tuple[str | None, str | None]:
    """Our ids from `metadata`, else the payment id from the reference (ours, unless a payer chose it)."""
    payment_id = metadata.payment_id
    if payment_id is None or not is_payment_id(payment_id):
        payment_id = payment_id_from_reference(reference) if reference else None
    return payment_id, metadata.customer_id
