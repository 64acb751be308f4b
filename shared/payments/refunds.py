"""Operator refunds (docs/refunds.md): `POST /admin/customers/{customer_id}/payments/{id}/refunds`.

A refund moves money back to the payer through the gateway that took it, so it is made in three steps, each safe
to repeat and to interrupt:

1. **Reserve.** One transaction puts a *pending* refund entry (a negative payment, `refund_of` the original),
   adds its amount to the original's `refunded_minor` on the condition that the total stays within what was paid
   and the original is completed, and records the request's marker (customer, payment, Idempotency-Key) naming
   the entry. Twenty concurrent requests of 30% each: three reserve, the others find nothing left (422) and
   never reach the gateway.
2. **Ask the gateway**, keyed by the entry's id (Stripe's Idempotency-Key, PayPal-Request-Id; Razorpay and
   Paystack keep it as the refund's receipt or note, and a retry first looks the refund up: `find_refund`).
3. **Bind.** The entry becomes completed (it debits the balance from now on), names the gateway's refund, and the
   refund's marker (the same one a webhook about that refund writes) is recorded, in one transaction. A webhook
   that reported the refund first already counted it: the entry is cancelled (`superseded`) and the answer is
   the webhook's entry. A refusal cancels the entry and releases its reservation.

A retry with the same key, after any crash or a 502/503, finds the entry and goes on from where it is; the
reconciliation job (`reconcile_refunds`) does the same for entries left pending, so no reservation is kept for
ever and no refund is made twice. A bank transfer has no gateway: its refund is recorded at once, completed, for
the operator to pay out by hand.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from payments import registry, status
from payments.errors import Conflict, InvalidInput, PaymentsError, UpstreamError
from payments.gateways.base import (
    Capability,
    Gateway,
    GatewayError,
    GatewayInputRejected,
    GatewayUnavailable,
    RefundAnswer,
    RefundRequest,
    reading_answers,
)
from payments.ids import new_payment_id
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus, RefundStatus, utcnow
from payments.money import Money, MoneyError
from payments.settlement import refund_marker
from payments.status import Cause, TransitionRefused
from payments.store import Dedupe, RefundWritten

if TYPE_CHECKING:
    from payments.store import Store

logger = logging.getLogger(__name__)

# What an operator cannot refund here, and what to do instead.
_NOT_REFUNDABLE = {
    PaymentMethod.VOUCHER: "a voucher redemption cannot be refunded: issue the customer a new voucher instead",
    PaymentMethod.PURCHASE: "a purchase is not a payment: record a credit (a voucher) instead",
    PaymentMethod.REFUND: "a refund cannot be refunded",
    PaymentMethod.CHARGEBACK: "a chargeback is the gateway's: it is reversed when the dispute is won",
    PaymentMethod.CHARGEBACK_REVERSAL: "a chargeback reversal gives back what a dispute took; it is not a payment",
}
_MANUAL = (PaymentMethod.BANK_TRANSFER,)  # refunded by the operator by hand; recorded here


class RefundBody(BaseModel):
    amount: str | Decimal | None = Field(
        default=None,
        description="Positive, major units of the payment's currency; default: all that is still refundable",
    )
    reason: str | None = Field(default=None, max_length=200, description="Why; kept in the refund's history")


Gateways = Callable[[str], Gateway]  # provider -> its adapter (payments.gateways.gateway)


def request_marker(customer_id: str, payment_id: str, key: str) -> Dedupe:
    """The marker of one refund request (its Idempotency-Key): it names the refund entry the request made."""
    return Dedupe("refund-request", hashlib.sha256(f"{customer_id}\x1f{payment_id}\x1f{key}".encode()).hexdigest())


def refund(
    store: Store, gateways: Gateways, customer_id: str, payment_id: str, body: RefundBody, key: str, actor: str
) -> Payment:
    """Refund (part of) a completed payment, once per (customer, payment, Idempotency-Key). The refund entry:
    completed (the gateway accepted or made it; a bank transfer's, for the operator to pay out). NotFound (404),
    Conflict (409: not refundable), InvalidInput (422: the amount), UpstreamError (502/503: the entry stays
    pending for a retry with the same key or for reconciliation)."""
    original = store.require(customer_id, payment_id, consistent=True)
    marker = request_marker(customer_id, payment_id, key)
    earlier = store.event_payment_id(marker)
    if earlier is not None:  # a retry of a request that reserved its refund before
        return _resume(store, gateways, original, store.require(customer_id, earlier, consistent=True))
    provider = _refundable(original, gateways)
    money = _amount(original, body.amount)
    manual = original.method in _MANUAL
    entry = _entry(original, money, actor, body.reason, manual=manual)
    written = store.record_refund(entry, original, marker)
    if written is RefundWritten.DUPLICATE:  # the same request, a moment ago
        earlier = store.event_payment_id(marker)
        if earlier is None:
            raise LookupError("a refund request's marker names no refund")
        return _resume(store, gateways, original, store.require(customer_id, earlier, consistent=True))
    if written is RefundWritten.REFUSED:  # a concurrent refund took what was left, or the payment changed
        current = store.require(customer_id, payment_id, consistent=True)
        _refundable(current, gateways)
        raise _too_much(current, money)
    if manual or provider is None:
        return entry
    return _through_gateway(store, gateways(provider), original, entry, body.reason)


def _refundable(payment: Payment, gateways: Gateways) -> str | None:
    """The provider that refunds `payment` (None: by hand). Conflict (409) if it cannot be refunded here."""
    if payment.method in _NOT_REFUNDABLE or payment.amount_minor <= 0 or payment.refund_of:
        raise Conflict(
            f"payment {payment.id} is not refundable: {_NOT_REFUNDABLE.get(payment.method, 'not a payment')}"
        )
    if payment.status is not PaymentStatus.COMPLETED:
        raise Conflict(f"payment {payment.id} is {payment.status.value}: only a completed payment can be refunded")
    provider = registry.provider_of(payment.method)
    if payment.method in _MANUAL or provider is None:
        return None
    if Capability.REFUND not in gateways(provider).capabilities:
        label = registry.GATEWAY_BY_PROVIDER[provider].label
        raise Conflict(
            f"{label} has no refund API: refund the payer in the {label} dashboard; "
            "its notification records the refund here"
        )
    if not payment.gateway_ref:
        raise Conflict(f"payment {payment.id} has no {provider} object to refund: refund it at {provider} by hand")
    return provider


def _remaining(payment: Payment) -> Money:
    return Money(abs(payment.amount_minor) - payment.refunded_minor, payment.currency)


def _too_much(payment: Payment, asked: Money) -> InvalidInput:
    left = _remaining(payment)
    if left.minor <= 0:
        return InvalidInput("amount", f"payment {payment.id} is refunded in full: nothing is left to refund")
    return InvalidInput(
        "amount",
        f"amount {asked.format()} {asked.currency} exceeds what is refundable: {left.format()} {left.currency} "
        f"of {Money(abs(payment.amount_minor), payment.currency).format()}",
        refundable=left.format(),
    )


def _amount(original: Payment, amount: object) -> Money:
    """The amount to refund in the original's currency: given (positive, exact digits), or all that is left."""
    left = _remaining(original)
    if amount is None or amount == "":
        if left.minor <= 0:
            raise _too_much(original, left)
        return left
    try:
        money = Money.parse(amount, original.currency)
    except MoneyError as exc:
        raise InvalidInput("amount", exc.message) from exc
    if money.minor <= 0:
        raise InvalidInput("amount", "amount must be greater than zero")
    if money.minor > left.minor:
        raise _too_much(original, money)
    return money


def _entry(original: Payment, money: Money, actor: str, reason: str | None, *, manual: bool) -> Payment:
    now = utcnow()
    note = "refund to be paid out by hand" if manual else "refund requested"
    if reason:
        note = f"{note}: {reason.strip()}"[:200]
    state = PaymentStatus.COMPLETED if manual else PaymentStatus.PENDING
    return Payment(
        id=new_payment_id(now),
        customer_id=original.customer_id,
        created_at=now,
        completed_at=now if manual else None,
        amount_minor=-money.minor,
        currency=money.currency,
        status=state,
        method=PaymentMethod.REFUND,
        description=f"Refund of {original.description}"[:200],
        gateway_ref=None if manual else original.gateway_ref,
        refund_of=original.id,
        refund_status=RefundStatus.PENDING if manual else None,
        history=(HistoryEntry(at=now, status=state, by=actor, note=note),),
    )


def _request(original: Payment, entry: Payment, reason: str | None = None) -> RefundRequest:
    return RefundRequest(
        gateway_ref=original.gateway_ref or "",
        money=Money(abs(entry.amount_minor), entry.currency),
        key=entry.id,
        payment_id=original.id,
        customer_id=original.customer_id,
        reason=reason,
    )


def _resume(store: Store, gateways: Gateways, original: Payment, entry: Payment) -> Payment:
    """A request seen before: its refund as it is now, finishing a pending one (it asks the gateway first)."""
    if entry.status is PaymentStatus.CANCELLED:
        raise _refused(entry)
    if entry.status is PaymentStatus.COMPLETED:
        return entry
    provider = registry.provider_of(original.method)
    if provider is None:  # cannot be: a by-hand refund is recorded completed
        return entry
    adapter = gateways(provider)
    with _gateway_call(entry, provider, "look up the refund"):
        found = adapter.find_refund(_request(original, entry))
    if found is not None:
        return _bind(store, entry, provider, found)
    return _through_gateway(store, adapter, original, entry)


def _through_gateway(
    store: Store, adapter: Gateway, original: Payment, entry: Payment, reason: str | None = None
) -> Payment:
    provider = adapter.name
    request = _request(original, entry, reason)
    try:
        with _gateway_call(entry, provider, "refund the payment"):
            answer = adapter.refund(request)
    except GatewayInputRejected as exc:  # the gateway refuses it: nothing was refunded
        cancelled = _cancel(store, entry, Cause.GATEWAY_FAILURE, f"the gateway refused the refund: {exc.message}")
        raise _refused(cancelled) from exc
    return _bind(store, entry, provider, answer)


@contextmanager
def _gateway_call(entry: Payment, provider: str, doing: str) -> Iterator[None]:
    """Around a gateway call for a pending entry: an unknown outcome is a 503, an answer we cannot use a 502; the
    entry stays pending for the retry (same Idempotency-Key) or for reconciliation. A refusal passes through."""
    try:
        with reading_answers(provider, doing):
            yield
    except GatewayInputRejected:
        raise
    except GatewayError as exc:
        logger.warning(
            "refund left pending: the gateway's answer is unknown",
            extra={"refund_id": entry.id, "gateway": provider, "error": exc.message},
        )
        raise UpstreamError(
            f"refund {entry.id} is recorded as pending, but {provider} could not be asked ({exc.message}); "
            "retry with the same Idempotency-Key, or leave it to reconciliation",
            http_status=503 if isinstance(exc, GatewayUnavailable) else 502,
            payment_id=entry.id,
        ) from exc


def _bind(store: Store, entry: Payment, provider: str, answer: RefundAnswer) -> Payment:
    """The gateway's answer about the entry's refund: completed with the gateway's refund id and its marker, or
    cancelled; the webhook's entry when a webhook counted the refund first."""
    if answer.money != Money(abs(entry.amount_minor), entry.currency):
        raise UpstreamError(
            f"{provider} answered a refund of {answer.money} for one of {abs(entry.amount_minor)} minor units: "
            "the refund is left pending for reconciliation",
            payment_id=entry.id,
        )
    if answer.status is RefundStatus.FAILED:
        cancelled = _cancel(store, entry, Cause.GATEWAY_FAILURE, f"the gateway refused the refund: {answer.reason}")
        raise _refused(cancelled)
    marker = refund_marker(provider, answer.refund_id)
    now = utcnow()
    try:
        outcome = store.apply_change(
            entry.customer_id,
            entry.id,
            lambda current: status.accept_refund(
                current, answer.refund_id, answer.status, by=f"gateway:{provider}:{answer.refund_id}", now=now
            ),
            dedupe=marker,
        )
    except TransitionRefused:  # cancelled meanwhile (an operator, reconciliation): that stands
        current = store.require(entry.customer_id, entry.id, consistent=True)
        if current.status is PaymentStatus.COMPLETED:
            return current
        raise _refused(current) from None
    if not outcome.duplicate:
        return outcome.payment
    counted = store.event_payment_id(marker)
    if counted == entry.id:  # bound by an earlier attempt
        return store.require(entry.customer_id, entry.id, consistent=True)
    # A webhook reported this refund first: its entry counts it (or, naming none, it was reported failed).
    note = f"the gateway reported this refund first: {counted}" if counted else "the gateway reported it failed"
    cancelled = _cancel(store, entry, Cause.SUPERSEDED if counted else Cause.GATEWAY_FAILURE, note)
    if counted is None:
        raise _refused(cancelled)
    return store.require(entry.customer_id, counted, consistent=True)


def _cancel(store: Store, entry: Payment, cause: Cause, note: str) -> Payment:
    """Cancel a pending refund entry: its reservation is released, once. Settled meanwhile: as it is."""
    try:
        return store.transition(
            entry.customer_id, entry.id, PaymentStatus.CANCELLED, cause, f"system:refunds:{entry.id}", note=note[:200]
        ).payment
    except TransitionRefused:
        return store.require(entry.customer_id, entry.id, consistent=True)


def _refused(entry: Payment) -> PaymentsError:
    if entry.status is PaymentStatus.COMPLETED:  # not refused after all (settled by someone else)
        return Conflict(f"refund {entry.id} was made meanwhile")
    return InvalidInput("amount", entry.failure_reason or "the gateway refused the refund", refund_id=entry.id)


# ---- reconciliation ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefundsReport:
    checked: int = 0
    bound: int = 0  # the gateway made them: completed, debiting from now on
    released: int = 0  # the gateway made none and they are too old: cancelled, their reservation released
    still_pending: int = 0
    errors: int = 0


def reconcile_refunds(
    store: Store,
    adapters: Mapping[str, Gateway],
    *,
    now: datetime,
    ask_after: timedelta,
    give_up_after: timedelta,
    limit: int = 200,
) -> RefundsReport:
    """Refund entries left pending (a crash, or an unknown answer, between the reservation and the bind): the
    gateway is asked for the refund by its key; found, it is bound; not made and older than `give_up_after`,
    its reservation is released. Never makes a refund itself."""
    checked = bound = released = still = errors = 0
    for entry in store.pending_before(PaymentMethod.REFUND, now - ask_after, limit=limit):
        checked += 1
        try:
            word = _reconcile_refund(store, adapters, entry, now - give_up_after)
        except (PaymentsError, GatewayError) as exc:
            logger.warning("reconciliation could not settle a refund", extra={"refund_id": entry.id, "error": str(exc)})
            errors += 1
            continue
        bound += word == "bound"
        released += word == "released"
        still += word == "still_pending"
    return RefundsReport(checked, bound, released, still, errors)


def _reconcile_refund(store: Store, adapters: Mapping[str, Gateway], entry: Payment, give_up: datetime) -> str:
    original = store.require(entry.customer_id, entry.refund_of or "", consistent=True)
    provider = registry.provider_of(original.method)
    adapter = adapters.get(provider or "")
    if adapter is None:
        return "still_pending"
    with reading_answers(adapter.name, "look up the refund"):
        found = adapter.find_refund(_request(original, entry))
    if found is not None:
        try:
            _bind(store, entry, adapter.name, found)
        except InvalidInput:
            return "released"  # the gateway reports it failed: cancelled, released
        return "bound"
    if entry.created_at > give_up:
        return "still_pending"
    _cancel(store, entry, Cause.TIMEOUT, "the gateway made no such refund before the final timeout")
    return "released"
