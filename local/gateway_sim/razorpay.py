"""Razorpay as the simulator acts it out: Orders (Basic auth with the key id and secret), the payments made
against them, and signed webhooks carrying our references (docs/gateways.md#razorpay).

Endpoints below /razorpay: POST /v1/orders, GET /v1/orders (?receipt=), GET /v1/orders/{id},
GET /v1/orders/{id}/payments, POST /v1/payments/{id}/capture, POST /v1/payments/{id}/refund (`X-Refund-Idempotency`
replays), GET /v1/payments/{id}/refunds (?count=&skip=), GET /v1/refunds/{id} and GET /v1/disputes/{id}. There is no
payer page: Razorpay Checkout runs in the portal. A refund made through the API answers `pending`, then
refund.created and refund.processed follow. The settle outcomes `dispute`, `dispute_lost` and `dispute_won` open a
dispute of the order's captured payment (payment.dispute.created) and decide the latest open one
(payment.dispute.lost, which deducts the disputed amount, or payment.dispute.won).

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
from typing import Any

from local.gateway_sim.base import Answer, Refusal, Request, Route, SettleError, SimGateway, Webhook, settle_minor
from local.gateway_sim.common import basic_auth, credential, digits, major, number_id, parse_nested_form, same, token

CREDENTIALS = {
    "RAZORPAY_KEY_ID": "rzp_test_local",
    "RAZORPAY_KEY_SECRET": "rzp-local-key-secret",
    "RAZORPAY_WEBHOOK_SECRET": "rzp-local-webhook-secret",
}
API_BASE_VAR = "RAZORPAY_API_BASE"
SIGNATURE_HEADER = "X-Razorpay-Signature"


# ----------------------------------------------------------------------------------------------------------
# Objects and webhooks


def order(
    amount: int, currency: str, *, receipt: str | None, notes: dict[str, Any], order_id: str | None = None
) -> dict[str, Any]:
    """An order as Razorpay creates it."""
    return {
        "id": order_id or f"order_{token(14)}",
        "entity": "order",
        "amount": amount,
        "amount_paid": 0,
        "amount_due": amount,
        "currency": currency,
        "receipt": receipt,
        "offer_id": None,
        "status": "created",
        "attempts": 0,
        "notes": notes or [],  # Razorpay serialises empty notes as []
        "created_at": int(time.time()),
    }


def fees(amount: int) -> tuple[int, int]:
    """(`fee`, `tax`) of a captured payment of `amount` subunits, as Razorpay's standard plan prices it: 2% of the
    amount plus 18% GST on that, `fee` including the GST (`tax`), all in whole subunits."""
    base = amount * 2 // 100
    tax = base * 18 // 100
    return base + tax, tax


def payment(of_order: dict[str, Any], amount: int, captured: bool) -> dict[str, Any]:
    """A payment attempt of `amount` against `of_order`, captured or failed (counted in the order's attempts)."""
    fee, tax = fees(amount) if captured else (None, None)
    attempt = {
        "id": f"pay_{token(14)}",
        "entity": "payment",
        "amount": amount,
        "currency": of_order["currency"],
        "status": "captured" if captured else "failed",
        "order_id": of_order["id"],
        "invoice_id": None,
        "international": of_order["currency"] != "INR",
        "method": "card",
        "amount_refunded": 0,
        "refund_status": None,
        "captured": captured,
        "description": None,
        "card_id": f"card_{token(14)}",
        "bank": None,
        "wallet": None,
        "vpa": None,
        "email": "void@razorpay.com",
        "contact": "+919000090000",
        # Checkout-supplied notes: the portal passes the order's notes on to Checkout.
        "notes": copy.deepcopy(of_order["notes"]),
        "fee": fee,
        "tax": tax,
        "error_code": None if captured else "BAD_REQUEST_ERROR",
        "error_description": None if captured else "Payment failed",
        "error_source": None if captured else "customer",
        "error_step": None if captured else "payment_authorization",
        "error_reason": None if captured else "payment_failed",
        "acquirer_data": {"auth_code": f"{number_id(6)}"} if captured else {},
        "created_at": int(time.time()),
    }
    of_order["attempts"] += 1
    return attempt


def authorized(of_order: dict[str, Any], amount: int) -> dict[str, Any]:
    """A payment of `amount` the payer's bank authorized but nobody captured yet (status `authorized`)."""
    held = payment(of_order, amount, captured=False)
    held.update(
        status="authorized",
        error_code=None,
        error_description=None,
        error_source=None,
        error_step=None,
        error_reason=None,
        acquirer_data={"auth_code": number_id(6)},
    )
    return held


def take(of_order: dict[str, Any], held: dict[str, Any]) -> None:
    """Capture authorized `held`: it counts in `of_order` now."""
    fee, tax = fees(held["amount"])
    held.update(status="captured", captured=True, fee=fee, tax=tax)
    of_order["amount_paid"] += held["amount"]
    of_order["amount_due"] = max(of_order["amount"] - of_order["amount_paid"], 0)
    of_order["status"] = "paid" if of_order["amount_due"] == 0 else "attempted"


def capture(of_order: dict[str, Any], paid: int) -> dict[str, Any]:
    """A captured payment of `paid` against `of_order`, which counts it (paid once nothing is due)."""
    captured = payment(of_order, paid, captured=True)
    of_order["amount_paid"] += paid
    of_order["amount_due"] = max(of_order["amount"] - of_order["amount_paid"], 0)
    of_order["status"] = "paid" if of_order["amount_due"] == 0 else "attempted"
    return captured


def refund(
    of_payment: dict[str, Any],
    amount: int,
    *,
    receipt: str | None = None,
    notes: dict[str, Any] | None = None,
    status: str = "processed",
) -> dict[str, Any]:
    """A refund of `amount` of captured `of_payment` (processed unless `status` says otherwise), which counts it."""
    of_payment["amount_refunded"] += amount
    set_refund_state(of_payment)
    return {
        "id": f"rfnd_{token(14)}",
        "entity": "refund",
        "amount": amount,
        "currency": of_payment["currency"],
        "payment_id": of_payment["id"],
        "notes": notes or [],  # Razorpay serialises empty notes as []
        "receipt": receipt,
        "acquirer_data": {"arn": None},
        "created_at": int(time.time()),
        "batch_id": None,
        "status": status,
        "speed_processed": "normal",
        "speed_requested": "normal",
    }


def dispute(of_payment: dict[str, Any], amount: int, *, reason_code: str = "chargeback") -> dict[str, Any]:
    """An open dispute of `amount` of captured `of_payment`, as the payer's bank raises it (nothing deducted yet)."""
    now = int(time.time())
    return {
        "id": f"disp_{token(14)}",
        "entity": "dispute",
        "payment_id": of_payment["id"],
        "amount": amount,
        "currency": of_payment["currency"],
        "amount_deducted": 0,
        "gateway_dispute_id": number_id(10),
        "reason_code": reason_code,
        "reason_description": "The customer's bank raised a chargeback",
        "respond_by": now + 7 * 24 * 3600,
        "status": "open",
        "phase": "chargeback",
        "comments": None,
        "evidence": {
            "amount": amount,
            "summary": None,
            "shipping_proof": None,
            "billing_proof": None,
            "cancellation_proof": None,
            "customer_communication": None,
            "proof_of_service": None,
            "explanation_letter": None,
            "refund_confirmation": None,
            "access_activity_log": None,
            "refund_cancellation_policy": None,
            "term_and_conditions": None,
            "others": None,
            "submitted_at": None,
        },
        "created_at": now,
    }


def decide(held: dict[str, Any], *, won: bool) -> None:
    """Decide open dispute `held`: won (nothing deducted) or lost (Razorpay deducts the disputed amount)."""
    held.update(status="won" if won else "lost", amount_deducted=0 if won else held["amount"])


def set_refund_state(of_payment: dict[str, Any]) -> None:
    """`of_payment`'s refund state from its `amount_refunded`: refunded in full, in part, or not (again)."""
    left = of_payment["amount"] - of_payment["amount_refunded"]
    if of_payment["amount_refunded"] == 0:
        of_payment.update(refund_status=None, status="captured")
    else:
        of_payment.update(refund_status="partial" if left else "full", status="captured" if left else "refunded")


def event(event_name: str, **entities: dict[str, Any]) -> dict[str, Any]:
    """A Razorpay webhook event carrying (copies of) `entities` by name: payment=..., order=..., refund=...,
    dispute=...."""
    payload = {name: {"entity": copy.deepcopy(entity)} for name, entity in entities.items()}
    return {
        "entity": "event",
        "account_id": "acc_SimLocal0000001",
        "event": event_name,
        "contains": list(payload),
        "payload": payload,
        "created_at": int(time.time()),
    }


def signature(body: bytes, *, secret: str | None = None) -> dict[str, str]:
    """X-Razorpay-Signature for `body`: HMAC-SHA256 hex of the raw body under the webhook secret."""
    key = (secret or credential(CREDENTIALS, "RAZORPAY_WEBHOOK_SECRET")).encode()
    return {SIGNATURE_HEADER: hmac.new(key, body, hashlib.sha256).hexdigest()}


def signed(
    razorpay_event: dict[str, Any], *, secret: str | None = None, event_id: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of `razorpay_event`'s delivery; the event id travels in a header, unsigned."""
    body = json.dumps(razorpay_event, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        **signature(body, secret=secret),
        "X-Razorpay-Event-Id": event_id or token(14),
        "User-Agent": "Razorpay-Webhook/v1",
    }
    return body, headers


def order_event(
    kind: str,
    order_id: str,
    amount_minor: int,
    currency: str,
    *,
    receipt: str | None,
    notes: dict[str, Any],
    reported_minor: int | None = None,
    event_id: str | None = None,
    secret: str | None = None,
    captured: bool = True,
) -> tuple[bytes, dict[str, str]]:
    """The signed webhook about order `order_id` for `amount_minor` when `reported_minor` is paid (order.paid,
    which Razorpay sends with the payment and the order), a payment of it fails (payment.failed) or
    `reported_minor` of its payment is refunded (refund.processed); `reported_minor` defaults to the amount.
    `captured=False`: the refund is Razorpay's own, of a payment it authorized and never captured."""
    created = order(amount_minor, currency, receipt=receipt, notes=notes, order_id=order_id)
    reported = amount_minor if reported_minor is None else reported_minor
    if kind == "success":
        paid = capture(created, reported)
        razorpay_event = event("order.paid", payment=paid, order=created)
    elif kind == "failure":
        razorpay_event = event("payment.failed", payment=payment(created, reported, captured=False))
    else:
        if captured:
            paid = capture(created, amount_minor)
        else:
            paid = payment(created, amount_minor, captured=False)
            paid["status"] = "authorized"  # held, never captured: Razorpay returns it by itself after days
        razorpay_event = event("refund.processed", refund=refund(paid, reported), payment=paid)
    return signed(razorpay_event, secret=secret, event_id=event_id)


CAPTURE_WEBHOOK_DELAY_SECONDS = 0.05  # Razorpay sends payment.captured and order.paid after the capture's answer
REFUND_WEBHOOK_DELAY_SECONDS = 0.05  # and refund.created, refund.processed after a refund's answer


# ----------------------------------------------------------------------------------------------------------
# The gateway


class Razorpay(SimGateway):
    outcomes = ("success", "failure", "refund", "refund_failed", "authorize", "dispute", "dispute_won", "dispute_lost")
    name = "razorpay"
    label = "Razorpay"
    api_base_var = API_BASE_VAR
    credentials = CREDENTIALS
    event_type_field = "event"
    kinds = ("orders", "payments", "refunds", "disputes")

    def reset(self) -> None:
        super().reset()
        # X-Refund-Idempotency key -> (the request body it came with, the refund it made)
        self._refund_keys: dict[str, tuple[Any, str]] = {}

    def routes(self) -> list[Route]:
        return [
            ("POST", "/v1/orders", self._create_order),
            ("GET", "/v1/orders", self._list_orders),
            ("GET", "/v1/orders/(?P<id>[^/]+)", self._get_order),
            ("GET", "/v1/orders/(?P<id>[^/]+)/payments", self._order_payments),
            ("POST", "/v1/payments/(?P<id>[^/]+)/capture", self._capture_payment),
            ("POST", "/v1/payments/(?P<id>[^/]+)/refund", self._refund_payment),
            ("GET", "/v1/payments/(?P<id>[^/]+)/refunds", self._payment_refunds),
            ("GET", "/v1/refunds/(?P<id>[^/]+)", self._get_refund),
            ("GET", "/v1/disputes/(?P<id>[^/]+)", self._get_dispute),
        ]

    def _get_refund(self, request: Request) -> Answer:
        """GET /v1/refunds/{id}: one refund, as it is now."""
        self._check_auth(request)
        made = self.find("refunds", request.params["id"])
        if made is None:
            raise self._error(400, "The id provided does not exist", "id")
        return Answer(200, copy.deepcopy(made))

    def _get_dispute(self, request: Request) -> Answer:
        """GET /v1/disputes/{id}: one dispute, as it is now."""
        self._check_auth(request)
        held = self.find("disputes", request.params["id"])
        if held is None:
            raise self._error(400, "The id provided does not exist", "id")
        return Answer(200, copy.deepcopy(held))

    def _refund_payment(self, request: Request) -> Answer:
        """POST /v1/payments/{id}/refund {"amount"?, "receipt"?, "notes"?, "speed"?}: a refund of `amount` (default
        what is left) of a captured payment, never more than is left. It answers the refund `pending`; refund.created
        and refund.processed follow the answer. A repeat with the same X-Refund-Idempotency key and body answers the
        same refund; with another body it is refused."""
        self._check_auth(request)
        paid = self.find("payments", request.params["id"])
        if paid is None:
            raise self._error(400, "The id provided does not exist", "id")
        body = request.json_body(lambda message: self._error(400, message))
        key = request.headers.get("x-refund-idempotency")
        if key is not None:
            if not re.fullmatch(r"[A-Za-z0-9_-]{10,}", key):
                raise self._error(400, "The idempotency key must be at least 10 characters of A-Z, a-z, 0-9, - or _")
            if key in self._refund_keys:
                first_body, refund_id = self._refund_keys[key]
                if first_body != body:
                    raise self._error(400, "The request differs from the first one with this idempotency key")
                return Answer(200, copy.deepcopy(self.objects["refunds"][refund_id]))
        if not paid["captured"]:
            raise self._error(400, "Only captured payments can be refunded")
        left = paid["amount"] - paid["amount_refunded"]
        if left <= 0:
            raise self._error(400, "The payment has been fully refunded already")
        amount = body.get("amount", left)
        if isinstance(amount, str) and amount.isascii() and amount.isdigit():
            amount = int(amount)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise self._error(400, "The amount must be an integer greater than 0.", "amount")
        if amount > left:
            raise self._error(400, "The refund amount provided is greater than amount captured", "amount")
        receipt = body.get("receipt")
        if receipt is not None and (not isinstance(receipt, str) or len(receipt) > 40):
            raise self._error(400, "The receipt may not be greater than 40 characters.", "receipt")
        notes = body.get("notes") or {}
        if not isinstance(notes, dict) or len(notes) > 15:
            raise self._error(400, "The notes may not have more than 15 items.", "notes")
        if any(len(str(value)) > 256 for value in notes.values()):
            raise self._error(400, "The notes values may not be greater than 256 characters.", "notes")
        made = refund(paid, amount, receipt=receipt, notes=notes, status="pending")
        self.objects["refunds"][made["id"]] = made
        if key is not None:
            self._refund_keys[key] = (body, made["id"])
        answer = copy.deepcopy(made)
        created = event("refund.created", refund=made, payment=paid)
        made["status"] = "processed"  # the bank has it at once here; refund_failed can still fail it
        processed = event("refund.processed", refund=made, payment=paid)
        webhooks = [Webhook(self.name, sent, *signed(sent)) for sent in (created, processed)]
        # Sent after the answer, outside the simulator's lock, in order (as the capture's are).
        self._host.later(REFUND_WEBHOOK_DELAY_SECONDS, webhooks)
        return Answer(200, answer)

    def _payment_refunds(self, request: Request) -> Answer:
        """GET /v1/payments/{id}/refunds: the payment's refunds, newest first; `count` (default 10, at most 100) and
        `skip` page through them."""
        self._check_auth(request)
        paid = self.find("payments", request.params["id"])
        if paid is None:
            raise self._error(400, "The id provided does not exist", "id")
        count, skip = request.query.get("count", "10"), request.query.get("skip", "0")
        if not count.isascii() or not count.isdigit() or not 1 <= int(count) <= 100:
            raise self._error(400, "The count must be between 1 and 100.", "count")
        if not skip.isascii() or not skip.isdigit():
            raise self._error(400, "The skip must be an integer.", "skip")
        # Held in the order they were made, so newest first is that order reversed (several share a second).
        made = [r for r in reversed(self.objects["refunds"].values()) if r["payment_id"] == paid["id"]]
        items = copy.deepcopy(made[int(skip) : int(skip) + int(count)])
        return Answer(200, {"entity": "collection", "count": len(items), "items": items})

    def _capture_payment(self, request: Request) -> Answer:
        """POST /v1/payments/{id}/capture {"amount", "currency"}: the authorized payment, captured for exactly its
        amount; Razorpay sends payment.captured and order.paid after answering."""
        self._check_auth(request)
        held = self.find("payments", request.params["id"])
        if held is None:
            raise self._error(400, "The id provided does not exist", "id")
        body = request.json_body(lambda message: self._error(400, message))
        if held["status"] == "captured":
            raise self._error(400, "This payment has already been captured")
        if held["status"] != "authorized":
            raise self._error(400, "Only payments which have been authorized and not yet captured can be captured")
        if body.get("amount") != held["amount"]:
            raise self._error(400, "Capture amount must be equal to the amount authorized", "amount")
        if body.get("currency") != held["currency"]:
            raise self._error(400, "Currency should be same as the payment currency", "currency")
        of_order = self.objects["orders"][held["order_id"]]
        take(of_order, held)
        webhooks = []
        for name, entities in (
            ("payment.captured", {"payment": held}),
            ("order.paid", {"payment": held, "order": of_order}),
        ):
            razorpay_event = event(name, **entities)
            raw, headers = signed(razorpay_event)
            webhooks.append(Webhook(self.name, razorpay_event, raw, headers))
        # Sent after the answer, outside the simulator's lock (as PayPal's capture webhook is).
        self._host.later(CAPTURE_WEBHOOK_DELAY_SECONDS, webhooks)
        return Answer(200, copy.deepcopy(held))

    @staticmethod
    def _error(status: int, description: str, field_name: str | None = None) -> Refusal:
        error: dict[str, Any] = {
            "code": "BAD_REQUEST_ERROR",
            "description": description,
            "source": "business" if field_name else "NA",
            "step": "payment_initiation" if field_name else "NA",
            "reason": "input_validation_failed" if field_name else "NA",
            "metadata": {},
        }
        if field_name:
            error["field"] = field_name
        return Refusal(status, {"error": error})

    def _check_auth(self, request: Request) -> None:
        credentials = basic_auth(request.headers.get("authorization"))
        if credentials is None:
            raise self._error(401, "Please provide your api key for authentication purposes.")
        if not (
            same(credentials[0], self.credential("RAZORPAY_KEY_ID"))
            and same(credentials[1], self.credential("RAZORPAY_KEY_SECRET"))
        ):
            raise self._error(401, "Authentication failed")

    def _create_order(self, request: Request) -> Answer:
        self._check_auth(request)
        if "application/json" in request.headers.get("content-type", ""):
            body = request.json_body(lambda message: self._error(400, message))
        else:
            try:
                body = parse_nested_form(request.body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise self._error(400, f"Invalid request body: {exc}") from exc
        amount = body.get("amount")
        if amount is None or amount == "":
            raise self._error(400, "The amount field is required.", "amount")
        if isinstance(amount, str) and amount.isdigit():
            amount = int(amount)
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise self._error(400, "The amount must be an integer.", "amount")
        currency = body.get("currency")
        if not currency:
            raise self._error(400, "The currency field is required.", "currency")
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
            raise self._error(400, "Currency is not supported", "currency")
        if amount < 100:
            raise self._error(400, "Order amount less than minimum amount allowed", "amount")
        if digits(currency) == 3 and amount % 10:
            raise self._error(400, "The amount must end with 0 for currencies with 3 decimal places", "amount")
        receipt = body.get("receipt")
        if receipt is not None and (not isinstance(receipt, str) or len(receipt) > 40):
            raise self._error(400, "The receipt may not be greater than 40 characters.", "receipt")
        notes = body.get("notes") or {}
        if not isinstance(notes, dict) or len(notes) > 15:
            raise self._error(400, "The notes may not have more than 15 items.", "notes")
        if any(len(str(value)) > 256 for value in notes.values()):
            raise self._error(400, "The notes values may not be greater than 256 characters.", "notes")
        created = order(amount, currency, receipt=receipt, notes=notes)
        return Answer(200, copy.deepcopy(self.store("orders", created["id"], created)))

    def _list_orders(self, request: Request) -> Answer:
        """GET /v1/orders: newest first, filtered by `receipt` when given; `count` (default 10, at most 100)."""
        self._check_auth(request)
        count = request.query.get("count", "10")
        if not count.isascii() or not count.isdigit() or not 1 <= int(count) <= 100:
            raise self._error(400, "The count must be between 1 and 100.", "count")
        orders = [
            held
            for held in self.objects["orders"].values()
            if "receipt" not in request.query or held["receipt"] == request.query["receipt"]
        ]
        orders.sort(key=lambda held: held["created_at"], reverse=True)
        items = copy.deepcopy(orders[: int(count)])
        return Answer(200, {"entity": "collection", "count": len(items), "items": items})

    def _order_or_error(self, request: Request) -> dict[str, Any]:
        self._check_auth(request)
        held = self.find("orders", request.params["id"])
        if held is None:
            raise self._error(400, "The id provided does not exist", "id")
        return held

    def _get_order(self, request: Request) -> Answer:
        return Answer(200, copy.deepcopy(self._order_or_error(request)))

    def _payments_of(self, order_id: str) -> list[dict[str, Any]]:
        payments = [p for p in self.objects["payments"].values() if p["order_id"] == order_id]
        return sorted(payments, key=lambda p: p["created_at"], reverse=True)

    def _order_payments(self, request: Request) -> Answer:
        held = self._order_or_error(request)
        payments = self._payments_of(held["id"])
        return Answer(200, {"entity": "collection", "count": len(payments), "items": copy.deepcopy(payments)})

    # -- settling ---------------------------------------------------------------------------------------------

    def settle(self, ref: str, outcome: str, amount: str | None) -> Webhook:
        held = self.find("orders", ref)
        if held is None:
            raise SettleError(404, f"no Razorpay order {ref}")
        currency = held["currency"]
        if outcome == "success":
            if held["status"] == "paid":
                raise SettleError(409, f"Razorpay order {ref} is already paid")
            paid = capture(held, settle_minor(amount, currency) if amount else held["amount_due"])
            self.objects["payments"][paid["id"]] = paid
            razorpay_event = event("payment.captured", payment=paid)
        elif outcome == "failure":
            failed = payment(held, held["amount_due"] or held["amount"], captured=False)
            self.objects["payments"][failed["id"]] = failed
            if held["status"] == "created":
                held["status"] = "attempted"
            razorpay_event = event("payment.failed", payment=failed)
        elif outcome == "authorize":  # authorized, not captured: payment.authorized; the merchant must capture
            if held["status"] == "paid":
                raise SettleError(409, f"Razorpay order {ref} is already paid")
            waiting = authorized(held, held["amount_due"] or held["amount"])
            self.objects["payments"][waiting["id"]] = waiting
            if held["status"] == "created":
                held["status"] = "attempted"
            razorpay_event = event("payment.authorized", payment=waiting)
        elif outcome == "refund_failed":
            paid_ids = {p["id"] for p in self._payments_of(ref)}
            made = [
                r
                for r in self.objects["refunds"].values()
                if r["payment_id"] in paid_ids and r["status"] == "processed"
            ]
            if not made:
                raise SettleError(409, f"Razorpay order {ref} has no refund that could fail")
            failed = made[-1]  # the latest: refunds are held in the order they were made
            failed["status"] = "failed"
            of_payment = self.objects["payments"][failed["payment_id"]]
            of_payment["amount_refunded"] -= failed["amount"]  # the money was not returned
            set_refund_state(of_payment)
            razorpay_event = event("refund.failed", refund=failed, payment=of_payment)
        elif outcome == "dispute":  # the payer's bank disputes the captured payment (all of it, or `amount`)
            captured = [p for p in self._payments_of(ref) if p["captured"]]
            if not captured:
                raise SettleError(409, f"Razorpay order {ref} has no captured payment to dispute")
            paid = captured[0]
            disputed = settle_minor(amount, currency) if amount else paid["amount"]
            if not 0 < disputed <= paid["amount"]:
                raise SettleError(409, f"{paid['id']} was paid {major(paid['amount'], currency)} {currency}")
            opened = dispute(paid, disputed)
            self.objects["disputes"][opened["id"]] = opened
            razorpay_event = event("payment.dispute.created", payment=paid, dispute=opened)
        elif outcome in ("dispute_won", "dispute_lost"):  # the latest open dispute of the order's payments
            paid_ids = {p["id"] for p in self._payments_of(ref)}
            undecided = [
                d
                for d in self.objects["disputes"].values()
                if d["payment_id"] in paid_ids and d["status"] in ("open", "under_review")
            ]
            if not undecided:
                raise SettleError(409, f"Razorpay order {ref} has no open dispute to decide")
            decided = undecided[-1]  # disputes are held in the order they were opened
            decide(decided, won=outcome == "dispute_won")
            of_payment = self.objects["payments"][decided["payment_id"]]
            razorpay_event = event(f"payment.dispute.{decided['status']}", payment=of_payment, dispute=decided)
        else:
            refundable = [p for p in self._payments_of(ref) if p["captured"] and p["amount_refunded"] < p["amount"]]
            if not refundable:
                raise SettleError(409, f"Razorpay order {ref} has no captured payment to refund")
            paid = refundable[0]
            remaining = paid["amount"] - paid["amount_refunded"]
            refund_amount = settle_minor(amount, currency) if amount else remaining
            if not 0 < refund_amount <= remaining:
                raise SettleError(409, f"{paid['id']} has {major(remaining, currency)} {currency} left to refund")
            refunded = refund(paid, refund_amount)
            self.objects["refunds"][refunded["id"]] = refunded
            razorpay_event = event("refund.processed", refund=refunded, payment=paid)
        body, headers = signed(razorpay_event)
        return Webhook(self.name, razorpay_event, body, headers)


GATEWAY = Razorpay  # what the server loads for this registry entry
