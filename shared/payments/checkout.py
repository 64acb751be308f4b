"""Make Payment (docs/api.md#making-a-payment): validate, record, call the gateway, record the outcome.

Order of work, so no failure leaves an ambiguous state (docs/make-payment.md):
1. validate everything (amount, currency, card fields, gateway currency rules): a 4xx stores nothing;
2. put the payment as pending together with an `IDEM#<key>` pointer, in one transaction: a retry
   with the same Idempotency-Key finds the same payment instead of making a second one;
3. call the gateway with an idempotency key derived from ours (Stripe, PayPal honour it; Paystack
   refuses a second use of our reference), so a retry after a timeout never charges twice;
4. record what the gateway said through the status rules (`Store.transition`).
Powertools' idempotency utility wraps all of it: the same key and body replays the stored answer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from payments import account, cards, registry, vouchers
from payments.config import settings, site_settings
from payments.cursor import derived_key
from payments.declines import payer_message
from payments.errors import InvalidInput, RetryLater, UpstreamError
from payments.gateways.base import (
    CardInput,
    CreateRequest,
    CreateResult,
    Gateway,
    GatewayError,
    GatewayInputRejected,
    reading_answers,
)
from payments.identity import Caller
from payments.ids import new_payment_id
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus, utcnow
from payments.money import Money
from payments.status import Cause

if TYPE_CHECKING:
    from payments.store import Store

logger = logging.getLogger(__name__)

# Human-typable: no 0/O, no 1/I (docs/api.md#bodies-by-method, bank transfer reference).
REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class CardFields(BaseModel):
    """Raw card fields. Never stored or logged; only validated and passed to Stripe."""

    model_config = ConfigDict(hide_input_in_errors=True)

    number: str | int = Field(description="Card number (PAN)")
    exp_month: int | str
    exp_year: int | str
    cvc: str | int

    def __repr__(self) -> str:
        return "CardFields(<redacted>)"


class PaymentBody(BaseModel):
    """POST /payments body (docs/api.md#bodies-by-method). Per-method rules are checked in `validate`."""

    model_config = ConfigDict(hide_input_in_errors=True)

    method: registry.PayableMethod = Field(description="How to pay")
    amount: str | Decimal | None = Field(
        default=None, description='Major units as a string ("12.50") or JSON number; not for vouchers'
    )
    currency: str | None = Field(default=None, max_length=3, description="ISO 4217 code, upper case")
    description: str | None = Field(default=None, max_length=200)
    card: CardFields | None = Field(default=None, description="credit_card: raw card fields")
    payment_method: str | None = Field(
        default=None, max_length=255, description="credit_card: a Stripe PaymentMethod id (pm_...)"
    )
    voucher_code: str | None = Field(default=None, max_length=64, description="voucher: the code")
    saved_payment_method: str | None = Field(
        default=None,
        max_length=64,
        description="credit_card: one of the caller's saved cards (card_..., GET /payment-methods)",
    )


@dataclass(frozen=True)
class Command:
    """A validated request. `fingerprint` is what Powertools compares for same-key/other-body (422)."""

    customer_id: str
    idempotency_key: str
    method: str
    money: Money | None  # None for vouchers: the voucher's value is used
    currency: str
    description: str
    email: str | None
    actor: str
    card: CardInput | None
    payment_method: str | None
    voucher_code: str | None
    fingerprint: str
    described: bool = True  # False: `description` is ours, to be made more telling once a reference is known
    surcharge: Money | None = None  # charged on top of `money` (docs/account-settings.md#surcharges)
    terms: account.AccountSettings | None = dataclasses.field(default=None, compare=False)
    saved_payment_method: str | None = None  # credit_card: our saved card's id (docs/saved-cards.md)
    stripe_customer: str | None = None  # ... and, once resolved (`Checkout.run`), the Customer it is attached to

    @property
    def charged(self) -> Money:
        """What the gateway is asked to charge: the amount plus the surcharge."""
        assert self.money is not None
        return self.money + self.surcharge if self.surcharge else self.money

    def as_idempotency_data(self) -> dict[str, str]:
        # Only these reach the idempotency table: no card data, just a keyed digest of the whole request.
        return {"customer_id": self.customer_id, "key": self.idempotency_key, "fingerprint": self.fingerprint}


def validate_key(raw: str | None) -> str:
    if raw is None or raw == "":
        raise InvalidInput("Idempotency-Key", "the Idempotency-Key header is required (1-255 printable characters)")
    if len(raw) > 255 or not raw.isprintable() or not raw.isascii():
        raise InvalidInput("Idempotency-Key", "the Idempotency-Key header must be 1-255 printable ASCII characters")
    return raw


def _fingerprint(body: PaymentBody) -> str:
    """A keyed digest of the whole request, card fields included, so the same Idempotency-Key with another
    body is told apart (422). Keyed, because an unkeyed hash of a body holding a card number, stored beside its
    last 4 digits, could be brute-forced (PCI DSS requires any hash of a PAN to be keyed)."""
    data = body.model_dump_json(exclude_none=True).encode()
    return hmac.new(derived_key("request-fingerprint"), data, hashlib.sha256).hexdigest()


def validate(
    body: PaymentBody,
    caller: Caller,
    customer_id: str,
    key: str,
    *,
    today: date,
    terms: account.AccountSettings | None = None,
) -> Command:
    """All input checks, before anything is stored or sent. Raises InvalidInput or MoneyError (422) naming
    the field; the amount's and the currency's problems are reported together (MoneyError.problems).

    `terms`: the customer's account settings (docs/account-settings.md): the method must be enabled, the currency
    allowed, the amount within `min_payment`..`max_payment`; the surcharge is worked out here. The balance's own
    limit (`max_balance`) needs the balance: `Checkout.run` checks it."""
    from payments.money import MoneyError, parse_currency, parse_positive

    terms = terms or account.defaults()

    method = body.method
    card = None
    money: Money | None = None
    if method == "voucher":
        problems: list[tuple[str, str]] = []
        if body.amount is not None:
            problems.append(("amount", "amount must not be sent with a voucher: the voucher's value is used"))
        currency = ""
        if not body.currency:
            problems.append(("currency", "currency is required"))
        else:
            try:
                currency = parse_currency(body.currency)
            except MoneyError as exc:
                problems.append((exc.field, exc.message))
        if problems:
            raise MoneyError.of(problems)
        if not body.voucher_code or not body.voucher_code.strip():
            raise InvalidInput("voucher_code", "voucher_code is required for method voucher")
    else:
        money = parse_positive(body.amount, body.currency, limit=settings().max_amount)
        currency = money.currency
    if method == "credit_card":
        if body.saved_payment_method is not None and (body.card is not None or body.payment_method):
            raise InvalidInput("saved_payment_method", "send either a saved_payment_method or card / payment_method")
        if body.card is None and not body.payment_method and not body.saved_payment_method:
            raise InvalidInput(
                "card", "credit_card needs card fields, a payment_method token or a saved_payment_method"
            )
        if body.card is not None and body.payment_method:
            raise InvalidInput("payment_method", "send either card or payment_method, not both")
        if body.card is not None:
            c = body.card
            card = cards.validate_card(c.number, c.exp_month, c.exp_year, c.cvc, today=today)
        elif body.payment_method and not body.payment_method.startswith("pm_"):
            raise InvalidInput("payment_method", "payment_method must be a Stripe PaymentMethod id (pm_...)")
    elif body.card is not None or body.payment_method:
        raise InvalidInput("card", f"card fields are only accepted with method credit_card, not {method}")
    elif body.saved_payment_method is not None:
        raise InvalidInput(
            "saved_payment_method", f"a saved card is only accepted with method credit_card, not {method}"
        )
    entry = registry.GATEWAY_BY_METHOD.get(PaymentMethod(method))
    if entry and entry.needs_payer_email and not caller.email:
        raise InvalidInput("email", f"{entry.provider} needs the email claim in the token")
    account.check_method(terms, method, currency)
    surcharge = None
    if money is not None:
        account.check_amount(terms, money)
        surcharge = terms.surcharge(money, method)
    return Command(
        customer_id=customer_id,
        idempotency_key=key,
        method=method,
        money=money,
        currency=currency,
        description=(body.description or "").strip() or f"{registry.label(method)} payment",
        described=bool((body.description or "").strip()),
        email=caller.email,
        actor=caller.actor,
        card=card,
        payment_method=body.payment_method,
        voucher_code=body.voucher_code.strip() if body.voucher_code else None,
        fingerprint=_fingerprint(body),
        surcharge=surcharge if surcharge is not None and surcharge.minor else None,
        terms=terms,
        saved_payment_method=body.saved_payment_method,
    )


@dataclass(frozen=True)
class Outcome:
    """What Make Payment did, for the HTTP edge to answer (201, or 402 when `declined`)."""

    payment: Payment  # as it now stands
    next_action: dict[str, Any] | None = None  # what the payer does next, while the payment is pending
    declined: str | None = None  # the gateway declined: the payer's sentence (its code is in failure_reason)


def bank_reference() -> str:
    """e.g. PAY-7KQ4-M9XT-2HW3: 60 random bits from an alphabet without 0/O/1/I."""
    chars = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(12))
    return f"PAY-{chars[:4]}-{chars[4:8]}-{chars[8:]}"


def _gateway_key(command: Command) -> str:
    """Our idempotency key as the gateway sees it: stable per (customer, key), nothing personal."""
    return hashlib.sha256(f"{command.customer_id}\x1f{command.idempotency_key}".encode()).hexdigest()[:48]


# A claim on creating a payment's gateway object outlives its holder's remaining run time by this much, so
# a clock a little off never lets a retry take over from a request that is still working.
CLAIM_MARGIN_SECONDS = 5.0


class Checkout:
    """Runs one validated Command. Gateway lookup is injectable for tests.

    `remaining_seconds` is how long the calling Lambda invocation may still run: a claim on creating a gateway
    object is held that long, so a retry can take over only from a request that can no longer be running.
    """

    def __init__(self, store: Store, gateway_for: Any = None, remaining_seconds: float = 30.0) -> None:
        self.store = store
        if gateway_for is None:
            from payments.gateways import gateway as gateway_for
        self.gateway_for = gateway_for
        self.remaining_seconds = remaining_seconds

    def run(self, command: Command) -> Outcome:
        terms = command.terms or account.defaults()
        if command.method == "voucher":
            assert command.voucher_code is not None
            payment = vouchers.redeem(
                self.store,
                command.customer_id,
                command.voucher_code,
                command.currency,
                actor=command.actor,
                description=command.description if command.described else None,
                terms=terms,
                payer_email=command.email,
            )
            return Outcome(payment)
        if command.saved_payment_method is not None:
            command = self._with_saved_card(command)
        self._check_balance(command, terms)
        if command.method == "bank_transfer":
            return self._bank_transfer(command)
        return self._gateway_payment(command)

    def _with_saved_card(self, command: Command) -> Command:
        """A saved card (docs/saved-cards.md): its PaymentMethod and Customer, or 422 naming saved_payment_method."""
        from payments import saved_cards

        assert command.saved_payment_method is not None
        card, customer = saved_cards.usable_card(self.store, command.customer_id, command.saved_payment_method)
        return dataclasses.replace(command, payment_method=card.payment_method, stripe_customer=customer)

    def _check_balance(self, command: Command, terms: account.AccountSettings) -> None:
        """A top-up may not take the completed balance above `max_balance`. Pending top-ups are not counted: one
        that completes later is credited in full, as its money has been taken (docs/account-settings.md#limits).
        A retry of a request whose payment exists is not refused: it answers with that payment."""
        assert command.money is not None
        if account.balance_room(terms, command.money.currency) is None:
            return
        balance = next((m.minor for m in self.store.balances(command.customer_id) if m.currency == command.currency), 0)
        try:
            account.check_balance(terms, command.money, balance)
        except InvalidInput:
            if self.store.find_by_request(command.customer_id, _gateway_key(command)) is None:
                raise

    # -- bank transfer --

    def _bank_transfer(self, command: Command) -> Outcome:
        assert command.money is not None
        reference = bank_reference()
        if not command.described:  # what the customer will see on their bank statement too
            command = dataclasses.replace(command, description=f"Bank transfer {reference}")
        payment, _ = self._record_pending(command, reference=reference)
        config = site_settings()
        next_action = {
            "type": "bank_transfer_instructions",
            "reference": payment.reference,
            "amount": Money(payment.charged_minor, payment.currency).format(),
            "currency": payment.currency,
            "account_name": config.bank_account_name,
            "iban": config.bank_iban,
            "bic": config.bank_bic,
            "bank_name": config.bank_name,
        }
        return Outcome(payment, next_action)

    # -- gateways: one gateway object per payment, whatever retries happen --

    def _gateway_payment(self, command: Command) -> Outcome:
        assert command.money is not None
        provider = registry.GATEWAY_BY_METHOD[PaymentMethod(command.method)].provider
        adapter = self.gateway_for(provider)
        try:
            adapter.check_currency(command.charged)
        except GatewayInputRejected as exc:
            raise InvalidInput(exc.field, exc.message) from exc
        # A new payment is put with its claim on creating the gateway object already held (one write less).
        hold = self.remaining_seconds + CLAIM_MARGIN_SECONDS
        payment, created = self._record_pending(command, claim=(provider, adapter, hold))
        if created:
            return self._create(command, payment, provider, adapter)
        if payment.gateway_ref is None and payment.status is PaymentStatus.PENDING:
            claimed = self.store.claim_gateway_object(
                payment,
                provider=provider,
                hold_seconds=hold,
                ref=lambda attempt: adapter.reference_for_attempt(payment.id, attempt),
            )
            if claimed is not None:
                return self._create(command, claimed, provider, adapter)
            # Another request holds the claim, or has just recorded the object: read what it left.
            payment = self.store.require(command.customer_id, payment.id, consistent=True)
            if payment.gateway_ref is None and payment.status is PaymentStatus.PENDING:
                raise RetryLater(
                    f"payment {payment.id} is still being created at {provider}; retry shortly with the same "
                    "Idempotency-Key",
                    retry_after=2,
                    payment_id=payment.id,
                )
        return self._existing(payment, provider, adapter)

    def _create(self, command: Command, payment: Payment, provider: str, adapter: Gateway) -> Outcome:
        """Create (or, on a later attempt, find) the payment's gateway object under our claim, and record it."""
        assert command.money is not None
        request = CreateRequest(
            payment_id=payment.id,
            customer_id=command.customer_id,
            money=command.charged,
            description=command.description,
            idempotency_key=_gateway_key(command),
            email=command.email,
            return_url=site_settings().portal_return_url,
            cancel_url=site_settings().portal_return_url,
            card=command.card,
            payment_method=command.payment_method,
            attempt=payment.gateway_attempts,
            stripe_customer=command.stripe_customer,
        )
        try:
            with reading_answers(provider, "create the payment"):
                result = (adapter.recover(request) if request.attempt > 1 else None) or adapter.create(request)
        except GatewayInputRejected as exc:  # the same request can never succeed: say which field, close it
            self.store.transition(
                payment.customer_id,
                payment.id,
                PaymentStatus.CANCELLED,
                Cause.GATEWAY_FAILURE,
                f"gateway:{provider}:create",
                note=exc.message,
                current=payment,
                failure_field=exc.field,
            )
            raise InvalidInput(exc.field, exc.message, payment_id=payment.id) from exc
        except GatewayError as exc:
            self.store.release_gateway_claim(payment, exc.message)
            raise _upstream(provider, exc, payment) from exc
        try:
            ours = None if command.described else described(command, result, adapter)
            recorded = self._record(payment, provider, result, ours)
        except Exception:
            # Our write failed after the gateway answered: let the retry go ahead at once (it gets the same object
            # back) rather than wait for the claim to lapse. Best effort: the claim lapses by itself anyway.
            with contextlib.suppress(Exception):
                self.store.release_gateway_claim(payment, "the gateway answered, recording it failed")
            raise
        if recorded is None:  # another attempt's object was recorded first: answer with that one, ours is unused
            logger.error(
                "a gateway object was created for a payment that already had one",
                extra={"payment_id": payment.id, "provider": provider, "unused": result.gateway_ref},
            )
            return self._existing(
                self.store.require(payment.customer_id, payment.id, consistent=True), provider, adapter
            )
        return self._answer(recorded, next_action=result.next_action)

    def _record_pending(
        self, command: Command, reference: str | None = None, claim: tuple[str, Gateway, float] | None = None
    ) -> tuple[Payment, bool]:
        """Put the pending payment and its idempotency pointer in one transaction, or find the one an earlier
        request with the same key put; True if put.

        `claim` (provider, adapter, seconds): the new payment holds the claim on creating its gateway object
        from the start, with the first attempt's reference and its pointer where we choose it (Paystack).
        """
        assert command.money is not None
        now = utcnow()
        payment_id = new_payment_id(now)
        first_ref = claim[1].reference_for_attempt(payment_id, 1) if claim else None
        payment = Payment(
            id=payment_id,
            customer_id=command.customer_id,
            created_at=now,
            amount_minor=command.money.minor,
            currency=command.money.currency,
            status=PaymentStatus.PENDING,
            method=PaymentMethod(command.method),
            description=command.description,
            reference=reference,
            card_last4=command.card.number[-4:] if command.card else None,
            surcharge_minor=command.surcharge.minor if command.surcharge else 0,
            payer_email=command.email,
            gateway_attempts=1 if claim else 0,
            gateway_claim_until=self.store.claim_until(claim[2]) if claim else None,
            gateway_refs=frozenset({first_ref}) if first_ref else frozenset(),
            history=(HistoryEntry(at=now, status=PaymentStatus.PENDING, by=command.actor, note="created"),),
        )
        gateway_ref = (claim[0], first_ref) if claim and first_ref else None
        return self.store.put_pending(payment, _gateway_key(command), reference=reference, gateway_ref=gateway_ref)

    def _record(self, payment: Payment, provider: str, result: CreateResult, description: str | None) -> Payment | None:
        """Store the gateway's answer (and `description`, ours, now that the object is known), then what it means
        for the status. `payment` was just written under our claim, so it is not read again. None if another
        attempt recorded its object first."""
        if result.gateway_ref:  # a card refused before Stripe made a PaymentIntent has none
            recorded = self.store.record_gateway_object(
                payment,
                provider=provider,
                gateway_ref=result.gateway_ref,
                next_action=result.next_action if result.storable_next_action else None,
                card_brand=result.card_brand,
                card_last4=result.card_last4,
                description=description,
            )
            if recorded is None:
                return None
            payment = recorded
        return self._settle(payment, provider, result)

    def _settle(self, payment: Payment, provider: str, result: CreateResult) -> Payment:
        """The status the gateway's answer gives the payment, through the status rules."""
        if result.status is PaymentStatus.PENDING:
            return payment
        succeeded = result.status is PaymentStatus.COMPLETED
        return self.store.transition(
            payment.customer_id,
            payment.id,
            result.status,
            Cause.GATEWAY_SUCCESS if succeeded else Cause.GATEWAY_FAILURE,
            f"gateway:{provider}:create",
            note=None if succeeded else result.failure_reason or "declined",
            current=payment,
        ).payment

    def _existing(self, payment: Payment, provider: str, adapter: Gateway) -> Outcome:
        """The answer to a retry of a payment whose gateway object exists: the same object, as it now stands."""
        if payment.status is not PaymentStatus.PENDING or not payment.gateway_ref:
            return self._answer(payment)
        try:
            with reading_answers(provider, "read the payment"):
                result = adapter.resume(payment.gateway_ref, payment.next_action)
        except GatewayError as exc:
            raise _upstream(provider, exc, payment) from exc
        return self._answer(self._settle(payment, provider, result), next_action=result.next_action)

    @staticmethod
    def _answer(payment: Payment, *, next_action: dict[str, Any] | None = None) -> Outcome:
        """The answer for `payment` as it now stands: the first request's answer, and every retry's."""
        if payment.status is PaymentStatus.CANCELLED:
            if payment.failure_field:  # the gateway refused a value the caller sent
                raise InvalidInput(payment.failure_field, payment.failure_reason or "refused", payment_id=payment.id)
            # The payer's sentence; the gateway's code stays in payment.failure_reason.
            return Outcome(payment, declined=payer_message(payment.failure_reason) or "the payment was declined")
        return Outcome(payment, next_action if payment.status is PaymentStatus.PENDING else None)


def described(command: Command, result: CreateResult, adapter: Gateway) -> str:
    """A description that says something: the method and the reference a payer or support can look up."""
    if result.card_last4:
        return f"{(result.card_brand or 'card').title()} card ending {result.card_last4}"
    if adapter.object_name and result.gateway_ref:
        return adapter.object_name.format(ref=result.gateway_ref)
    return command.description


def _upstream(provider: str, exc: GatewayError, payment: Payment) -> UpstreamError:
    return UpstreamError(
        f"{provider} did not answer properly: {exc.message}. The payment {payment.id} is pending; "
        "retry with the same Idempotency-Key",
        http_status=exc.http_status,
        payment_id=payment.id,
    )


__all__ = ["Checkout", "Command", "Outcome", "PaymentBody", "validate", "validate_key"]
