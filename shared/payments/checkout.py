"""Make Payment (API.md §4 POST /payments): validate, record, call the gateway, record the outcome.

Order of work, so no failure leaves an ambiguous state (docs/make-payment.md):
1. validate everything (amount, currency, card fields, gateway currency rules): a 4xx stores nothing;
2. put the payment as pending together with an `IDEM#<key>` pointer, in one transaction: a retry
   with the same Idempotency-Key finds the same payment instead of making a second one;
3. call the gateway with an idempotency key derived from ours (Stripe, PayPal honour it; Paystack
   refuses a second use of our reference), so a retry after a timeout never charges twice;
4. record what the gateway said through the status rules (`PaymentStore.transition`).
Powertools' idempotency utility wraps all of it: the same key and body replays the stored answer.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from payments import cards
from payments.config import gateway_settings, settings
from payments.errors import InvalidInput, PaymentRequired, UpstreamError
from payments.gateways.base import CardInput, CreateRequest, CreateResult, CurrencyNotSupported, GatewayError
from payments.identity import Caller
from payments.ids import new_payment_id
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus, utcnow
from payments.money import Money
from payments.status import Cause
from payments.store import PaymentStore, customer_pk

PAYABLE_METHODS = (
    "bank_transfer",
    "paypal",
    "credit_card",
    "razorpay",
    "paystack",
    "nowpayments",
    "voucher",
)
MethodName = Literal["bank_transfer", "paypal", "credit_card", "razorpay", "paystack", "nowpayments", "voucher"]

# Human-typable: no 0/O, no 1/I (API.md §4 bank transfer reference).
REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
METHOD_LABELS = {
    "bank_transfer": "Bank transfer",
    "paypal": "PayPal",
    "credit_card": "Card",
    "razorpay": "Razorpay",
    "paystack": "Paystack",
    "nowpayments": "Crypto (NOWPayments)",
    "voucher": "Voucher",
}


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
    """POST /payments body (API.md §4). Per-method rules are checked in `validate`."""

    model_config = ConfigDict(hide_input_in_errors=True)

    method: MethodName
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

    def as_idempotency_data(self) -> dict[str, str]:
        # Only these reach the idempotency table: no card data, just a digest of the whole request.
        return {"customer_id": self.customer_id, "key": self.idempotency_key, "fingerprint": self.fingerprint}


def validate_key(raw: str | None) -> str:
    if raw is None or raw == "":
        raise InvalidInput("Idempotency-Key", "the Idempotency-Key header is required (1-255 printable characters)")
    if len(raw) > 255 or not raw.isprintable() or not raw.isascii():
        raise InvalidInput("Idempotency-Key", "the Idempotency-Key header must be 1-255 printable ASCII characters")
    return raw


def _fingerprint(body: PaymentBody) -> str:
    data = body.model_dump_json(exclude_none=True).encode()
    return hashlib.sha256(data).hexdigest()


def validate(body: PaymentBody, caller: Caller, customer_id: str, key: str, *, today: date) -> Command:
    """All input checks, before anything is stored or sent. Raises InvalidInput or MoneyError (422) naming
    the field; the amount's and the currency's problems are reported together (MoneyError.problems)."""
    from payments.money import MoneyError, parse_currency, parse_positive

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
        if body.card is None and not body.payment_method:
            raise InvalidInput("card", "credit_card needs card fields or a payment_method token")
        if body.card is not None and body.payment_method:
            raise InvalidInput("payment_method", "send either card or payment_method, not both")
        if body.card is not None:
            c = body.card
            card = cards.validate_card(c.number, c.exp_month, c.exp_year, c.cvc, today=today)
        elif body.payment_method and not body.payment_method.startswith("pm_"):
            raise InvalidInput("payment_method", "payment_method must be a Stripe PaymentMethod id (pm_...)")
    elif body.card is not None or body.payment_method:
        raise InvalidInput("card", f"card fields are only accepted with method credit_card, not {method}")
    if method == "paystack" and not caller.email:
        raise InvalidInput("email", "paystack needs the email claim in the token")
    return Command(
        customer_id=customer_id,
        idempotency_key=key,
        method=method,
        money=money,
        currency=currency,
        description=(body.description or "").strip() or f"Payment by {METHOD_LABELS[method]}",
        email=caller.email,
        actor=caller.actor,
        card=card,
        payment_method=body.payment_method,
        voucher_code=body.voucher_code.strip() if body.voucher_code else None,
        fingerprint=_fingerprint(body),
    )


@dataclass(frozen=True)
class Outcome:
    http_status: int
    body: dict[str, Any]


def bank_reference() -> str:
    """e.g. PAY-7KQ4-M9XT-2HW3: 60 random bits from an alphabet without 0/O/1/I."""
    chars = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(12))
    return f"PAY-{chars[:4]}-{chars[4:8]}-{chars[8:]}"


def _gateway_key(command: Command) -> str:
    """Our idempotency key as the gateway sees it: stable per (customer, key), nothing personal."""
    return hashlib.sha256(f"{command.customer_id}\x1f{command.idempotency_key}".encode()).hexdigest()[:48]


class Checkout:
    """Runs one validated Command. Gateway lookup is injectable for tests."""

    def __init__(self, store: PaymentStore, gateway_for: Any = None) -> None:
        self.store = store
        if gateway_for is None:
            from payments.gateways import gateway as gateway_for
        self.gateway_for = gateway_for

    def run(self, command: Command) -> Outcome:
        if command.method == "voucher":
            from payments.vouchers import redeem

            payment = redeem(self.store, command)
            return Outcome(201, {"payment": payment.to_api().model_dump(), "next_action": None})
        if command.method == "bank_transfer":
            return self._bank_transfer(command)
        return self._gateway_payment(command)

    # -- bank transfer --

    def _bank_transfer(self, command: Command) -> Outcome:
        assert command.money is not None
        payment = self._record_pending(command, reference=bank_reference())
        config = gateway_settings()
        next_action = {
            "type": "bank_transfer_instructions",
            "reference": payment.reference,
            "amount": payment.money.format(),
            "currency": payment.currency,
            "account_name": config.bank_account_name,
            "iban": config.bank_iban,
            "bic": config.bank_bic,
            "bank_name": config.bank_name,
        }
        return Outcome(201, {"payment": payment.to_api().model_dump(), "next_action": next_action})

    # -- gateways --

    def _gateway_payment(self, command: Command) -> Outcome:
        from payments.gateways import PROVIDER_OF_METHOD

        assert command.money is not None
        provider = PROVIDER_OF_METHOD[command.method]
        adapter = self.gateway_for(provider)
        try:
            adapter.check_currency(command.money)
        except CurrencyNotSupported as exc:
            raise InvalidInput(exc.field, exc.message) from exc
        payment = self._record_pending(command)
        request = CreateRequest(
            payment_id=payment.id,
            customer_id=command.customer_id,
            money=command.money,
            description=command.description,
            idempotency_key=_gateway_key(command),
            email=command.email,
            return_url=gateway_settings().portal_return_url,
            cancel_url=gateway_settings().portal_return_url,
            card=command.card,
            payment_method=command.payment_method,
        )
        try:
            result = adapter.create(request)
        except CurrencyNotSupported as exc:
            self.store.note_error(payment, exc.message)
            raise InvalidInput(exc.field, exc.message) from exc
        except GatewayError as exc:
            self.store.note_error(payment, exc.message)
            raise UpstreamError(
                f"{provider} did not answer properly: {exc.message}. The payment {payment.id} is pending; "
                "retry with the same Idempotency-Key",
                http_status=exc.http_status,
                payment_id=payment.id,
            ) from exc
        payment = self._record_result(payment, provider, result)
        body = {"payment": payment.to_api().model_dump(), "next_action": result.next_action}
        if payment.status is PaymentStatus.CANCELLED:
            return Outcome(402, {"message": f"the payment was declined: {payment.failure_reason}", **body})
        return Outcome(201, body)

    def _record_pending(self, command: Command, reference: str | None = None) -> Payment:
        """Put the pending payment and the IDEM pointer in one transaction, or find the earlier one."""
        assert command.money is not None
        now = utcnow()
        payment = Payment(
            id=new_payment_id(now),
            customer_id=command.customer_id,
            created_at=now,
            amount_minor=command.money.minor,
            currency=command.money.currency,
            status=PaymentStatus.PENDING,
            method=PaymentMethod(command.method),
            description=command.description,
            reference=reference,
            card_last4=command.card.number[-4:] if command.card else None,
            history=(HistoryEntry(at=now, status=PaymentStatus.PENDING, by=command.actor, note="created"),),
        )
        pointer = {
            "Put": {
                "TableName": self.store.table,
                "Item": {
                    "PK": {"S": customer_pk(command.customer_id)},
                    "SK": {"S": f"IDEM#{_gateway_key(command)}"},
                    "type": {"S": "idempotency-pointer"},
                    "payment_id": {"S": payment.id},
                },
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }
        extra: list[dict[str, Any]] = [pointer]
        if reference:
            extra.append(
                {
                    "Put": {
                        "TableName": self.store.table,
                        "Item": {"PK": {"S": f"REF#{reference}"}, "SK": {"S": "REF"}, "payment_id": {"S": payment.id}},
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
        try:
            self.store.add(payment, extra=extra)
        except self.store.client.exceptions.TransactionCanceledException:
            earlier = self._earlier_payment(command)
            if earlier is None:
                raise  # a reference collision (1 in 2^60): the client's retry draws a new one
            return earlier
        return payment

    def _earlier_payment(self, command: Command) -> Payment | None:
        item = self.store.client.get_item(
            TableName=self.store.table,
            Key={"PK": {"S": customer_pk(command.customer_id)}, "SK": {"S": f"IDEM#{_gateway_key(command)}"}},
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None
        return self.store.require(command.customer_id, item["payment_id"]["S"], consistent=True)

    def _record_result(self, payment: Payment, provider: str, result: CreateResult) -> Payment:
        """Store the gateway's answer. `payment` was just read or written, so it is not read again."""
        if result.gateway_ref:  # a card refused before Stripe made a PaymentIntent has none
            self.store.attach_gateway_ref(
                payment, provider, result.gateway_ref, card_brand=result.card_brand, card_last4=result.card_last4
            )
            known = {
                "gateway_ref": result.gateway_ref,
                "card_brand": result.card_brand,
                "card_last4": result.card_last4,
            }
            payment = payment.model_copy(update={k: v for k, v in known.items() if v})
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


__all__ = ["Checkout", "Command", "Outcome", "PaymentBody", "PaymentRequired", "validate", "validate_key"]
