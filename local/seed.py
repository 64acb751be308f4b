"""Demo data for `make dev` (SEED_DEMO=1): a customer "demo" with a mix of payments, and a customer "other".

Written through the service's own PaymentStore, so the balance item is what the API would have made.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from payments.ids import new_payment_id
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus, utcnow
from payments.store import PaymentStore

DEMO_CUSTOMER = "demo"
OTHER_CUSTOMER = "other"

# (customer, days ago, amount in minor units, currency, status, method, description, extra fields)
_DEMO_PAYMENTS: list[tuple[str, int, int, str, PaymentStatus, PaymentMethod, str, dict[str, str]]] = [
    (DEMO_CUSTOMER, 40, 5000, "USD", PaymentStatus.COMPLETED, PaymentMethod.CREDIT_CARD, "Top-up",
     {"card_brand": "visa", "card_last4": "4242", "gateway_ref": "pi_demo_1"}),
    (DEMO_CUSTOMER, 31, -2999, "USD", PaymentStatus.COMPLETED, PaymentMethod.PURCHASE, "Monthly plan, October", {}),
    (DEMO_CUSTOMER, 20, 2500, "USD", PaymentStatus.CANCELLED, PaymentMethod.PAYPAL, "Top-up",
     {"gateway_ref": "PAYID-DEMO-2", "failure_reason": "payer did not approve"}),
    (DEMO_CUSTOMER, 12, 1250, "USD", PaymentStatus.COMPLETED, PaymentMethod.CREDIT_CARD, "Top-up",
     {"card_brand": "mastercard", "card_last4": "4444", "gateway_ref": "pi_demo_3"}),
    (DEMO_CUSTOMER, 7, 2000, "EUR", PaymentStatus.COMPLETED, PaymentMethod.CREDIT_CARD, "Roaming pack",
     {"card_brand": "visa", "card_last4": "1881", "gateway_ref": "pi_demo_4"}),
    (DEMO_CUSTOMER, 2, 10000, "USD", PaymentStatus.PENDING, PaymentMethod.BANK_TRANSFER, "Top-up by bank transfer",
     {"reference": "PAY-DEMO-0005"}),
    (OTHER_CUSTOMER, 15, 9999, "USD", PaymentStatus.COMPLETED, PaymentMethod.CREDIT_CARD, "Top-up",
     {"card_brand": "amex", "card_last4": "0005", "gateway_ref": "pi_other_1"}),
    (OTHER_CUSTOMER, 1, 3000, "USD", PaymentStatus.PENDING, PaymentMethod.BANK_TRANSFER, "Top-up by bank transfer",
     {"reference": "PAY-OTHER-0002"}),
]  # fmt: skip


def demo_payments(now: datetime | None = None) -> list[Payment]:
    now = now or utcnow()
    payments = []
    for customer, days_ago, amount, currency, status, method, description, extra in _DEMO_PAYMENTS:
        created_at = now - timedelta(days=days_ago)
        settled_at = created_at + timedelta(minutes=3)
        history = (
            []
            if method is PaymentMethod.PURCHASE
            else [HistoryEntry(at=created_at, status=PaymentStatus.PENDING, by="system:seed")]
        )
        if status is not PaymentStatus.PENDING:
            history.append(HistoryEntry(at=settled_at, status=status, by="system:seed", note="demo data"))
        payments.append(
            Payment(
                id=new_payment_id(created_at),
                customer_id=customer,
                created_at=created_at,
                completed_at=settled_at if status is PaymentStatus.COMPLETED else None,
                amount_minor=amount,
                currency=currency,
                status=status,
                method=method,
                description=description,
                history=tuple(history),
                **extra,
            )
        )
    return payments


def demo_data_present(store: PaymentStore | None = None) -> bool:
    """Whether customer "demo" already has payments (a restored local state): seeding again would double them."""
    payments, _ = (store or PaymentStore()).page(DEMO_CUSTOMER, limit=1)
    return bool(payments)


def seed_demo(store: PaymentStore | None = None, now: datetime | None = None) -> list[Payment]:
    """Writes the demo payments; returns them."""
    store = store or PaymentStore()
    payments = demo_payments(now)
    for payment in payments:
        store.add(payment)
    return payments
