"""Gateway webhook events built from the documented payload shapes (GATEWAYS.md), signed as each
gateway signs, independently of the adapters' own code."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from local.defaults import gateway_credential
from payments.models import Payment


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]


def _minor(payment: Payment, amount_minor: int | None) -> int:
    return abs(payment.amount_minor) if amount_minor is None else amount_minor


# ---- Razorpay: HMAC-SHA256 hex of the raw body, X-Razorpay-Signature, event id in a header ----


def razorpay(
    kind: str,
    payment: Payment,
    *,
    amount_minor: int | None = None,
    secret: str | None = None,
    event_id: str | None = None,
) -> Delivery:
    order_id = payment.gateway_ref
    amount = _minor(payment, amount_minor)
    pay_entity = {
        "id": "pay_" + uuid.uuid4().hex[:14],
        "entity": "payment",
        "amount": amount,
        "currency": payment.currency,
        "order_id": order_id,
        "method": "upi",
        "notes": [],
        "status": {"success": "captured", "failure": "failed", "refund": "refunded"}[kind],
    }
    order_entity = {
        "id": order_id,
        "entity": "order",
        "amount": abs(payment.amount_minor),
        "amount_paid": amount,
        "currency": payment.currency,
        "receipt": payment.id,
        "status": "paid",
        "notes": {"payment_id": payment.id, "customer_id": payment.customer_id},
    }
    if kind == "success":
        event = {
            "entity": "event",
            "event": "order.paid",
            "contains": ["payment", "order"],
            "payload": {"payment": {"entity": pay_entity}, "order": {"entity": order_entity}},
        }
    elif kind == "failure":
        pay_entity |= {"error_code": "BAD_REQUEST_ERROR", "error_description": "Payment failed"}
        event = {
            "entity": "event",
            "event": "payment.failed",
            "contains": ["payment"],
            "payload": {"payment": {"entity": pay_entity}},
        }
        event["payload"]["payment"]["entity"]["notes"] = {"payment_id": payment.id, "customer_id": payment.customer_id}
    else:
        refund = {
            "id": "rfnd_" + uuid.uuid4().hex[:14],
            "entity": "refund",
            "amount": amount,
            "currency": payment.currency,
            "payment_id": pay_entity["id"],
            "notes": [],
            "status": "processed",
        }
        pay_entity["notes"] = {"payment_id": payment.id, "customer_id": payment.customer_id}
        event = {
            "entity": "event",
            "event": "refund.processed",
            "contains": ["refund", "payment"],
            "payload": {"refund": {"entity": refund}, "payment": {"entity": pay_entity}},
        }
    event |= {"account_id": "acc_test", "created_at": int(time.time())}
    body = json.dumps(event).encode()
    key = (secret or gateway_credential("RAZORPAY_WEBHOOK_SECRET")).encode()
    return Delivery(
        body,
        {
            "X-Razorpay-Signature": hmac.new(key, body, hashlib.sha256).hexdigest(),
            "X-Razorpay-Event-Id": event_id or "evt_" + uuid.uuid4().hex[:14],
        },
    )


# ---- Paystack: HMAC-SHA512 hex of the raw body with the secret key, x-paystack-signature ----


def paystack(
    kind: str,
    payment: Payment,
    *,
    amount_minor: int | None = None,
    secret: str | None = None,
    event_id: str | None = None,
) -> Delivery:
    amount = _minor(payment, amount_minor)
    reference = payment.gateway_ref
    if kind == "success":
        event = {
            "event": "charge.success",
            "data": {
                "id": int(event_id or uuid.uuid4().int % 10**10),
                "domain": "test",
                "status": "success",
                "reference": reference,
                "amount": amount,
                "currency": payment.currency,
                "gateway_response": "Successful",
                "paid_at": "2026-11-25T10:42:20.000Z",
                "channel": "card",
                "metadata": {"payment_id": payment.id, "customer_id": payment.customer_id},
                "fees": 290,
                "customer": {"email": "payer@example.com", "customer_code": "CUS_x"},
            },
        }
    elif kind == "failure":  # Paystack sends no failure webhook; an unrelated event type is ignored
        event = {"event": "charge.dispute.create", "data": {"id": 1, "reference": reference}}
    else:
        event = {
            "event": "refund.processed",
            "data": {
                "id": int(event_id or uuid.uuid4().int % 10**10),
                "status": "processed",
                "amount": amount,
                "currency": payment.currency,
                "transaction_reference": reference,
                "refund_reference": "RF-" + uuid.uuid4().hex[:8],
                "metadata": "",
            },
        }
    body = json.dumps(event).encode()
    key = (secret or gateway_credential("PAYSTACK_SECRET_KEY")).encode()
    return Delivery(body, {"x-paystack-signature": hmac.new(key, body, hashlib.sha512).hexdigest()})


# ---- NOWPayments: HMAC-SHA512 over the key-sorted compact JSON, x-nowpayments-sig ----


def nowpayments(
    kind: str,
    payment: Payment,
    *,
    amount_minor: int | None = None,
    secret: str | None = None,
    event_id: str | None = None,
) -> Delivery:
    amount = payment.money.__class__(_minor(payment, amount_minor), payment.currency).format()
    status = {"success": "finished", "failure": "expired", "refund": "refunded"}[kind]
    # Numbers as raw JSON tokens, exactly as NOWPayments writes them (never through a float).
    ipn_text = (  # noqa: UP031 - a JSON template reads better with %s than with doubled braces
        '{"payment_id":%s,"parent_payment_id":null,"invoice_id":%s,"payment_status":"%s",'
        '"pay_address":"address","price_amount":%s,"price_currency":"%s","pay_amount":15,'
        '"actually_paid":15,"actually_paid_at_fiat":0,"pay_currency":"trx","order_id":"%s:%s",'
        '"order_description":"Réglement","purchase_id":"1","outcome_amount":14.8106,"outcome_currency":"trx",'
        '"payment_extra_ids":null,"fee":{"currency":"btc","depositFee":0.09853637216235617,"withdrawalFee":0,"serviceFee":0}}'
    ) % (
        event_id or uuid.uuid4().int % 10**9,
        payment.gateway_ref if str(payment.gateway_ref).isdigit() else json.dumps(payment.gateway_ref),
        status,
        amount,
        payment.currency.lower(),
        payment.customer_id,
        payment.id,
    )
    parsed = json.loads(ipn_text, parse_float=lambda t: _Raw(t), parse_int=lambda t: _Raw(t))
    canonical = _canonical(parsed)
    key = (secret or gateway_credential("NOWPAYMENTS_IPN_SECRET")).encode()
    return Delivery(
        ipn_text.encode(), {"x-nowpayments-sig": hmac.new(key, canonical.encode(), hashlib.sha512).hexdigest()}
    )


class _Raw(str):
    """A JSON number kept as its original text."""


def _canonical(value: Any) -> str:
    if isinstance(value, _Raw):
        return str(value)
    if isinstance(value, dict):
        return (
            "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _canonical(value[k]) for k in sorted(value)) + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


SIGNERS = {"razorpay": razorpay, "paystack": paystack, "nowpayments": nowpayments}
SIGNATURE_HEADERS = {
    "razorpay": "X-Razorpay-Signature",
    "paystack": "x-paystack-signature",
    "nowpayments": "x-nowpayments-sig",
}


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
    amount = _minor(payment, amount_minor)
    intent = {
        "id": payment.gateway_ref,
        "object": "payment_intent",
        "amount": abs(payment.amount_minor),
        "amount_received": amount if kind == "success" else 0,
        "currency": payment.currency.lower(),
        "status": "succeeded" if kind == "success" else "requires_payment_method",
        "metadata": {"payment_id": payment.id, "customer_id": payment.customer_id},
        "latest_charge": "ch_test",
        "last_payment_error": None,
        "cancellation_reason": None,
    }
    previous = None
    if kind == "success":
        event_type, obj = "payment_intent.succeeded", intent
    elif kind == "failure":
        intent["last_payment_error"] = {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "generic_decline",
            "message": "Your card was declined.",
        }
        event_type, obj = "payment_intent.payment_failed", intent
    else:
        obj = {
            "id": "ch_" + uuid.uuid4().hex[:14],
            "object": "charge",
            "amount": abs(payment.amount_minor),
            "amount_refunded": amount,
            "currency": payment.currency.lower(),
            "payment_intent": payment.gateway_ref,
            "metadata": {},
            "refunded": amount == abs(payment.amount_minor),
            "refunds": {"object": "list", "data": [{"id": "re_" + uuid.uuid4().hex[:14], "amount": amount}]},
        }
        event_type, previous = "charge.refunded", {"amount_refunded": 0}
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    event = {
        "id": event_id or "evt_" + uuid.uuid4().hex[:20],
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "type": event_type,
        "data": data,
    }
    body = json.dumps(event).encode()
    t = int(time.time()) if timestamp is None else timestamp
    key = (secret or gateway_credential("STRIPE_WEBHOOK_SECRET")).encode()
    signature = hmac.new(key, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return Delivery(body, {"Stripe-Signature": f"t={t},v1={signature}"})


SIGNERS["stripe"] = stripe
SIGNATURE_HEADERS["stripe"] = "Stripe-Signature"


def resign(provider: str, delivery: Delivery, body: bytes) -> Delivery:
    """The same delivery with another body, validly signed (to test what happens after verification)."""
    if provider == "stripe":
        t = int(time.time())
        key = gateway_credential("STRIPE_WEBHOOK_SECRET").encode()
        return Delivery(
            body,
            {"Stripe-Signature": f"t={t},v1=" + hmac.new(key, f"{t}.".encode() + body, hashlib.sha256).hexdigest()},
        )
    if provider == "razorpay":
        key = gateway_credential("RAZORPAY_WEBHOOK_SECRET").encode()
        return Delivery(
            body, {**delivery.headers, "X-Razorpay-Signature": hmac.new(key, body, hashlib.sha256).hexdigest()}
        )
    if provider == "paystack":
        key = gateway_credential("PAYSTACK_SECRET_KEY").encode()
        return Delivery(body, {"x-paystack-signature": hmac.new(key, body, hashlib.sha512).hexdigest()})
    key = gateway_credential("NOWPAYMENTS_IPN_SECRET").encode()
    canonical = _canonical(json.loads(body, parse_float=_Raw, parse_int=_Raw)).encode()
    return Delivery(body, {"x-nowpayments-sig": hmac.new(key, canonical, hashlib.sha512).hexdigest()})
