"""Gateway webhook events about a stored Payment, built and signed by the gateway simulator's own builders
(local/gateway_sim/<gateway>.py), so the tests send exactly the shapes and signatures the simulator sends. The
adapters' unit tests (tests/unit/test_gateway_*.py) keep their own signing, independent of both."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from local.gateway_sim import nowpayments as nowpayments_sim
from local.gateway_sim import paystack as paystack_sim
from local.gateway_sim import razorpay as razorpay_sim
from local.gateway_sim import stripe as stripe_sim
from payments.models import Payment


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]


def _minor(payment: Payment, amount_minor: int | None) -> int:
    return abs(payment.amount_minor) if amount_minor is None else amount_minor


def _ours(payment: Payment) -> dict[str, str]:
    """Our ids, as Make Payment writes them into a gateway object's metadata or notes."""
    return {"payment_id": payment.id, "customer_id": payment.customer_id}


# ---- Razorpay: HMAC-SHA256 hex of the raw body, X-Razorpay-Signature, event id in a header ----


def razorpay(
    kind: str,
    payment: Payment,
    *,
    amount_minor: int | None = None,
    secret: str | None = None,
    event_id: str | None = None,
    captured: bool = True,
) -> Delivery:
    """order.paid (success), payment.failed (failure) or refund.processed (refund) about the payment's order;
    `captured=False`: Razorpay's automatic refund of a payment it never captured."""
    body, headers = razorpay_sim.order_event(
        kind,
        str(payment.gateway_ref),
        abs(payment.amount_minor),
        payment.currency,
        receipt=payment.id,
        notes=_ours(payment),
        reported_minor=_minor(payment, amount_minor),
        event_id=event_id,
        secret=secret,
        captured=captured,
    )
    return Delivery(body, headers)


# ---- Paystack: HMAC-SHA512 hex of the raw body with the secret key, x-paystack-signature ----


def paystack(
    kind: str,
    payment: Payment,
    *,
    amount_minor: int | None = None,
    secret: str | None = None,
    event_id: str | None = None,
) -> Delivery:
    """charge.success (success), refund.processed (refund) or charge.dispute.create (dispute) about the payment's
    transaction. Paystack sends no failure webhook, so "failure" is an event type the API ignores
    (invoice.payment_failed)."""
    body, headers = paystack_sim.transaction_event(
        kind,
        str(payment.gateway_ref),
        abs(payment.amount_minor),
        payment.currency,
        _ours(payment),
        email="payer@example.com",
        reported_minor=_minor(payment, amount_minor),
        event_id=int(event_id) if event_id else None,
        secret=secret,
    )
    return Delivery(body, headers)


# ---- NOWPayments: HMAC-SHA512 over the key-sorted compact JSON, x-nowpayments-sig ----


def nowpayments(
    kind: str,
    payment: Payment,
    *,
    amount_minor: int | None = None,
    secret: str | None = None,
    event_id: str | None = None,
) -> Delivery:
    """The IPN of a payment of the payment's invoice, priced at the amount reported: finished (success), expired
    (failure) or refunded (refund)."""
    reference = str(payment.gateway_ref)
    price = payment.money.__class__(_minor(payment, amount_minor), payment.currency).format()
    body, headers = nowpayments_sim.payment_ipn(
        {"success": "finished", "failure": "expired", "refund": "refunded"}[kind],
        int(reference) if reference.isdigit() else reference,
        Decimal(price),
        payment.currency,
        order_id=f"{payment.customer_id}:{payment.id}",  # as Make Payment sends it: both of our ids
        order_description="Réglement",  # not ASCII: the signature covers raw UTF-8
        payment_id=int(event_id) if event_id else None,
        secret=secret,
    )
    return Delivery(body, headers)


# ---- Stripe: Stripe-Signature t=<ts>,v1=HMAC-SHA256(f"{t}.{body}") with the endpoint secret ----


def stripe(
    kind: str,
    payment: Payment,
    *,
    amount_minor: int | None = None,
    secret: str | None = None,
    event_id: str | None = None,
    timestamp: int | None = None,
) -> Delivery:
    """payment_intent.succeeded (success), payment_intent.payment_failed (failure) or charge.refunded (refund)
    about the payment's PaymentIntent."""
    body, headers = stripe_sim.payment_intent_event(
        kind,
        str(payment.gateway_ref),
        abs(payment.amount_minor),
        payment.currency,
        {} if kind == "refund" else _ours(payment),  # the refunded charge carries no ids of ours
        reported_minor=_minor(payment, amount_minor),
        event_id=event_id,
        secret=secret,
        timestamp=timestamp,
    )
    return Delivery(body, headers)


SIGNERS = {"razorpay": razorpay, "paystack": paystack, "nowpayments": nowpayments, "stripe": stripe}
SIGNATURE_HEADERS = {
    "razorpay": razorpay_sim.SIGNATURE_HEADER,
    "paystack": paystack_sim.SIGNATURE_HEADER,
    "nowpayments": nowpayments_sim.SIGNATURE_HEADER,
    "stripe": stripe_sim.SIGNATURE_HEADER,
}


def resign(provider: str, delivery: Delivery, body: bytes) -> Delivery:
    """The same delivery with another body, validly signed (to test what happens after verification)."""
    if provider == "stripe":
        return Delivery(body, stripe_sim.signature(body))
    if provider == "razorpay":
        return Delivery(body, {**delivery.headers, **razorpay_sim.signature(body)})
    if provider == "paystack":
        return Delivery(body, paystack_sim.signature(body))
    return Delivery(body, nowpayments_sim.signature(body))
