"""The builder of every key of the payments table (their patterns: `items.ITEM_TYPES`). Pure, stdlib only."""

from __future__ import annotations

from payments.models import PaymentMethod, PaymentStatus


def customer_pk(customer_id: str) -> str:
    return f"CUST#{customer_id}"


def customer_of_pk(pk: str) -> str | None:
    """The customer a `CUST#<customer>` partition key names; None for any other key."""
    return pk.removeprefix("CUST#") if pk.startswith("CUST#") and len(pk) > 5 else None


def payment_sk(payment_id: str) -> str:
    return f"PAY#{payment_id}"


def status_pk(customer_id: str, status: PaymentStatus) -> str:
    """GSI1's partition: a customer's payments of one status."""
    return f"CUST#{customer_id}#{status.value}"


def pending_pk(method: PaymentMethod) -> str:
    """GSI2's partition (sparse): the pending payments of one method."""
    return f"PENDING#{method.value}"


def watch_pk(kind: str) -> str:
    """GSI2's partition (sparse) of what reconciliation watches besides pending payments: `dispute` (a payment
    whose dispute is open) and `refund` (a gateway refund its gateway has not reported made)."""
    return f"WATCH#{kind}"


BALANCE_SK = "BALANCE"
SETTINGS_SK = "SETTINGS"  # the customer's account settings (docs/account-settings.md)
LOW_BALANCE_ALERT_SK = "ALERT#low_balance"  # the customer's low-balance alert (docs/alerts.md)
STRIPE_CUSTOMER_SK = "STRIPE_CUSTOMER"  # the customer's Stripe Customer, claimed once (docs/saved-cards.md)
CARD_SK_PREFIX = "CARD#"


def card_sk(card_id: str) -> str:
    """A card the customer saved (docs/saved-cards.md)."""
    return f"{CARD_SK_PREFIX}{card_id}"


AUTOTOPUP_SK = "AUTOTOPUP"  # the customer's auto top-up (docs/auto-topup.md)


def mandate_sk(mandate_id: str) -> str:
    """One consent to off-session charges (docs/auto-topup.md#consent)."""
    return f"MANDATE#{mandate_id}"


def idempotency_sk(request_key: str) -> str:
    """The pointer from a Make Payment request (`request_key`: a hash of customer and Idempotency-Key)."""
    return f"IDEM#{request_key}"


def gateway_ref_pk(provider: str, gateway_ref: str) -> str:
    return f"GWREF#{provider}#{gateway_ref}"


GATEWAY_REF_SK = "GWREF"


def reference_pk(reference: str) -> str:
    return f"REF#{reference}"


REFERENCE_SK = "REF"


def event_pk(source: str, key: str) -> str:
    return f"EVENT#{source}#{key}"


EVENT_SK = "EVENT"


def voucher_pk(code_hash: str) -> str:
    return f"VOUCHER#{code_hash}"


VOUCHER_SK = "VOUCHER"
VOUCHER_ATTEMPTS_SK = "VOUCHER_FAILURES"


def export_sk(export_id: str) -> str:
    return f"EXPORT#{export_id}"


def outbox_pk(event_id: str) -> str:
    """An outbound event waiting for the stream's publisher (docs/events.md)."""
    return f"OUTBOX#{event_id}"


OUTBOX_SK = "OUTBOX"


def email_pk(key: str) -> str:
    """The marker of one e-mail (its `Email.key`: the event it tells of), claimed before it is sent
    (docs/receipts.md)."""
    return f"EMAIL#{key}"


EMAIL_SK = "EMAIL"
WEBHOOKS_PK = "WEBHOOKS"  # every outbound webhook endpoint, in one partition: operators register a few


def endpoint_sk(endpoint_id: str) -> str:
    """An outbound webhook endpoint (docs/webhooks-outbound.md)."""
    return f"ENDPOINT#{endpoint_id}"


def webhook_pk(endpoint_id: str) -> str:
    """The partition of an endpoint's deliveries."""
    return f"WEBHOOK#{endpoint_id}"


def delivery_sk(event_id: str) -> str:
    """The one delivery of an event to an endpoint."""
    return f"DELIVERY#{event_id}"
