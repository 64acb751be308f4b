"""Paystack as the simulator acts it out: transactions initialised with the secret key, verified by reference,
the checkout page, and webhooks signed with the same secret key (docs/gateways.md#paystack).

Endpoints below /paystack: POST /transaction/initialize, GET /transaction/verify/{reference}, POST /refund,
GET /refund (?transaction=<id>&perPage=&page=), GET /refund/{id}, GET /dispute/{id}; payer page
GET /checkout/{access_code}. Paystack has no failure webhook: a failure only marks the transaction failed, which
`verify` then reports. A refund made through the API is queued (`pending`), then refund.pending and refund.processed
follow. The settle outcomes `dispute`, `dispute_lost` and `dispute_won` open a dispute of a paid transaction
(charge.dispute.create) and resolve its latest unresolved one (charge.dispute.resolve, `resolution`
merchant-accepted or declined).

The module-level functions build the objects and the signed webhooks; the routes, `settle()` and the tests'
events (tests/integration/webhook_events.py) all use them, so they send one shape.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import hmac
import json
import re
from typing import Any

from local.gateway_sim import pages
from local.gateway_sim.base import Answer, Refusal, Request, Route, SettleError, SimGateway, Webhook, settle_minor
from local.gateway_sim.common import (
    LOWER_ALNUM,
    bearer,
    credential,
    iso_ms,
    major,
    number_id,
    same,
    token,
    with_query,
)

CREDENTIALS = {"PAYSTACK_SECRET_KEY": "sk_test_paystack_local"}
API_BASE_VAR = "PAYSTACK_API_BASE"
SIGNATURE_HEADER = "x-paystack-signature"

_CURRENCIES = frozenset({"NGN", "GHS", "ZAR", "KES", "USD", "XOF", "EGP"})
_REFERENCE = re.compile(r"^[A-Za-z0-9.=-]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Fields of a transaction that verify shows and its charge.success webhook does not.
_NOT_IN_WEBHOOKS = ("transaction_date", "plan_object")


# ----------------------------------------------------------------------------------------------------------
# Objects and webhooks


def transaction(reference: str, amount: int, currency: str, *, email: str, metadata: Any) -> dict[str, Any]:
    """A transaction as Paystack initialises it (`abandoned` until paid)."""
    created = iso_ms()
    return {
        "id": number_id(10),
        "domain": "test",
        "status": "abandoned",  # Paystack's word for "initialized, not paid (yet)"
        "reference": reference,
        "receipt_number": None,
        "amount": amount,
        "message": None,
        "gateway_response": "The transaction was not completed",
        "paid_at": None,
        "created_at": created,
        "channel": "card",
        "currency": currency,
        "ip_address": None,
        "metadata": metadata if metadata is not None else "",
        "log": None,
        "fees": None,
        "fees_split": None,
        "authorization": {},
        "customer": {
            "id": number_id(9),
            "first_name": None,
            "last_name": None,
            "email": email,
            "customer_code": f"CUS_{token(15, LOWER_ALNUM)}",
            "phone": None,
            "metadata": None,
            "risk_action": "default",
            "international_format_phone": None,
        },
        "plan": None,
        "split": {},
        "order_id": None,
        "paidAt": None,
        "createdAt": created,
        "requested_amount": amount,
        "pos_transaction_data": None,
        "source": None,
        "fees_breakdown": None,
        "transaction_date": created,
        "plan_object": {},
        "subaccount": {},
    }


LOCAL_FEE_CAP_KOBO = 200_000  # Paystack caps its Nigerian local card fee at NGN 2,000


def fees(paid: int, currency: str) -> int:
    """Paystack's fee on `paid` subunits: 1.5% plus NGN 100 (the 100 waived under NGN 2,500), capped at NGN 2,000,
    for NGN; 1.5% elsewhere (a simplification of its per-country pricing), in whole subunits."""
    percent = paid * 15 // 1000
    if currency != "NGN":
        return percent
    flat = 10_000 if paid >= 250_000 else 0
    return min(percent + flat, LOCAL_FEE_CAP_KOBO)


def charge(of_transaction: dict[str, Any], paid: int) -> None:
    """Mark `of_transaction` paid `paid` (minor units) by card, as a successful charge does."""
    now = iso_ms()
    of_transaction.update(
        status="success",
        amount=paid,
        gateway_response="Successful",
        message=None,
        paid_at=now,
        paidAt=now,
        ip_address="127.0.0.1",
        fees=fees(paid, of_transaction["currency"]),
        authorization={
            "authorization_code": f"AUTH_{token(10, LOWER_ALNUM)}",
            "bin": "408408",
            "last4": "4081",
            "exp_month": "12",
            "exp_year": "2030",
            "channel": "card",
            "card_type": "visa ",
            "bank": "TEST BANK",
            "country_code": "NG",
            "brand": "visa",
            "reusable": True,
            "signature": f"SIG_{token(20)}",
            "account_name": None,
        },
    )


def charge_success_event(of_transaction: dict[str, Any]) -> dict[str, Any]:
    data = {key: value for key, value in of_transaction.items() if key not in _NOT_IN_WEBHOOKS}
    return {"event": "charge.success", "data": copy.deepcopy(data)}


def refund_record(
    of_transaction: dict[str, Any],
    amount: int,
    *,
    status: str = "processed",
    merchant_note: str | None = None,
    customer_note: str | None = None,
) -> dict[str, Any]:
    """A refund of `amount` of `of_transaction` as GET /refund lists it (the transaction by its id)."""
    now = iso_ms()
    customer = of_transaction["customer"]
    return {
        "integration": 463433,
        "transaction": of_transaction["id"],
        "dispute": None,
        "settlement": None,
        "id": number_id(7),
        "domain": "test",
        "currency": of_transaction["currency"],
        "amount": amount,
        "status": status,
        "refunded_at": None,
        "refunded_by": "merchant@example.com",
        "customer_note": customer_note or f"Refund for transaction {of_transaction['reference']}",
        "merchant_note": merchant_note or f"Refund for transaction {of_transaction['reference']}",
        "deducted_amount": 0,
        "fully_deducted": 0,
        "createdAt": now,
        "bank_reference": None,
        "transaction_reference": of_transaction["reference"],
        "reason": customer_note or "",
        "customer": {key: customer[key] for key in ("id", "first_name", "last_name", "email", "customer_code")},
        "refund_type": "full" if amount == of_transaction["amount"] else "partial",
        "transaction_amount": of_transaction["amount"],
        "initiated_by": "api",
        "refund_channel": of_transaction["channel"],
        "session_id": None,
        "collect_account_number": False,
    }


def refund_created(of_transaction: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """POST /refund's `data` for `record`: the refund with its transaction as an object."""
    keys = ("id", "domain", "reference", "amount", "paid_at", "channel", "currency", "authorization", "customer")
    transaction_part = {key: copy.deepcopy(of_transaction[key]) for key in keys}
    transaction_part.update(
        plan={}, subaccount={"currency": None}, split={}, order_id=None, paidAt=of_transaction["paidAt"]
    )
    return {
        "transaction": transaction_part,
        "integration": record["integration"],
        "deducted_amount": 0,
        "channel": None,
        "merchant_note": record["merchant_note"],
        "customer_note": record["customer_note"],
        "status": record["status"],
        "refunded_by": record["refunded_by"],
        "expected_at": record["createdAt"],
        "currency": record["currency"],
        "domain": record["domain"],
        "amount": record["amount"],
        "fully_deducted": False,
        "id": record["id"],
        "createdAt": record["createdAt"],
        "updatedAt": record["createdAt"],
    }


def refund_processed_event(of_transaction: dict[str, Any], amount: int, refund_id: int | None = None) -> dict[str, Any]:
    """refund.processed for `amount` of `of_transaction`: it names the transaction by its reference only."""
    return refund_event(of_transaction, amount, refund_id, status="processed")


def refund_event(
    of_transaction: dict[str, Any], amount: int, refund_id: int | None = None, *, status: str
) -> dict[str, Any]:
    """refund.<status> (pending, processing, processed, failed) for `amount` of `of_transaction`, by the
    transaction's reference."""
    customer = of_transaction["customer"]
    return {
        "event": f"refund.{status}",
        "data": {
            "status": status,
            "transaction_reference": of_transaction["reference"],
            "refund_reference": None,
            "amount": amount,
            "currency": of_transaction["currency"],
            "processor": "mpgs_zen",
            "customer": {key: customer[key] for key in ("first_name", "last_name", "email")},
            "integration": 463433,
            "domain": "test",
            "id": number_id(7) if refund_id is None else refund_id,
        },
    }


def dispute_record(
    of_transaction: dict[str, Any], amount: int | None = None, *, dispute_id: int | None = None
) -> dict[str, Any]:
    """A chargeback of `amount` (default all) of paid `of_transaction`, awaiting our feedback, as GET /dispute/{id}
    and the charge.dispute.* webhooks show it (the transaction as an object, with its reference)."""
    now = iso_ms()
    customer = of_transaction["customer"]
    return {
        "id": number_id(8) if dispute_id is None else dispute_id,
        "refund_amount": of_transaction["amount"] if amount is None else amount,
        "currency": of_transaction["currency"],
        "status": "awaiting-merchant-feedback",
        "resolution": None,
        "domain": "test",
        "transaction": {
            key: copy.deepcopy(of_transaction[key])
            for key in ("id", "domain", "status", "reference", "amount", "currency", "paid_at", "channel", "metadata")
        },
        "transaction_reference": None,
        "category": "chargeback",
        "customer": {key: customer[key] for key in ("id", "first_name", "last_name", "email", "customer_code")},
        "bin": of_transaction["authorization"].get("bin"),
        "last4": of_transaction["authorization"].get("last4"),
        "dueAt": None,
        "resolvedAt": None,
        "evidence": None,
        "attachments": None,
        "note": None,
        "history": [{"status": "pending", "by": customer["email"], "createdAt": now}],
        "messages": [],
        "created_at": now,
        "updated_at": now,
    }


def dispute_event(of_transaction: dict[str, Any], dispute_id: int | None = None) -> dict[str, Any]:
    """charge.dispute.create: a chargeback of all of paid `of_transaction` opened."""
    return dispute_webhook("charge.dispute.create", dispute_record(of_transaction, dispute_id=dispute_id))


def dispute_webhook(event_name: str, record: dict[str, Any]) -> dict[str, Any]:
    """charge.dispute.create, .remind or .resolve about dispute `record` (a copy of it, as it is now)."""
    return {"event": event_name, "data": copy.deepcopy(record)}


def resolve(record: dict[str, Any], *, won: bool) -> None:
    """Resolve dispute `record`: declined (we contested it and keep the money) or merchant-accepted (the payer gets
    `refund_amount` back)."""
    now = iso_ms()
    record.update(
        status="resolved",
        resolution="declined" if won else "merchant-accepted",
        resolvedAt=now,
        updated_at=now,
    )
    record["history"].append({"status": "resolved", "by": "merchant@example.com", "createdAt": now})


def invoice_failed_event(of_transaction: dict[str, Any]) -> dict[str, Any]:
    """invoice.payment_failed: the charge of a subscription's invoice failed. The nearest Paystack has to a failure
    webhook, and about no transaction of ours (the API ignores it)."""
    now = iso_ms()
    customer = of_transaction["customer"]
    return {
        "event": "invoice.payment_failed",
        "data": {
            "id": number_id(7),
            "domain": "test",
            "invoice_code": f"INV_{token(15, LOWER_ALNUM)}",
            "amount": of_transaction["amount"],
            "period_start": now,
            "period_end": now,
            "status": "pending",
            "paid": False,
            "paid_at": None,
            "description": None,
            "authorization": {},
            "subscription": {"status": "attention", "subscription_code": f"SUB_{token(15, LOWER_ALNUM)}"},
            "customer": {key: customer[key] for key in ("id", "first_name", "last_name", "email", "customer_code")},
            "transaction": {},
            "created_at": now,
        },
    }


def signature(body: bytes, *, secret: str | None = None) -> dict[str, str]:
    """x-paystack-signature for `body`: HMAC-SHA512 hex of the raw body under the secret key."""
    key = (secret or credential(CREDENTIALS, "PAYSTACK_SECRET_KEY")).encode()
    return {SIGNATURE_HEADER: hmac.new(key, body, hashlib.sha512).hexdigest()}


def signed(paystack_event: dict[str, Any], *, secret: str | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers of `paystack_event`'s delivery."""
    body = json.dumps(paystack_event, separators=(",", ":")).encode()
    return body, {"Content-Type": "application/json", **signature(body, secret=secret)}


def transaction_event(
    kind: str,
    reference: str,
    amount_minor: int,
    currency: str,
    metadata: Any,
    *,
    email: str,
    reported_minor: int | None = None,
    event_id: int | None = None,
    secret: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The signed webhook about transaction `reference` for `amount_minor` when `reported_minor` is paid
    (charge.success; `event_id` is the transaction's id), `reported_minor` of it is refunded (refund.processed;
    `event_id` is the refund's id) or, for "dispute", a chargeback of all of it is opened (charge.dispute.create;
    `event_id` is the dispute's id). Paystack sends no webhook for a failed charge: "failure" is the nearest it has,
    invoice.payment_failed, which is about no transaction of ours. `reported_minor` defaults to the amount."""
    created = transaction(reference, amount_minor, currency, email=email, metadata=metadata)
    reported = amount_minor if reported_minor is None else reported_minor
    if kind == "success":
        if event_id is not None:
            created["id"] = event_id
        charge(created, reported)
        paystack_event = charge_success_event(created)
    elif kind == "dispute":
        charge(created, amount_minor)
        paystack_event = dispute_event(created, event_id)
    elif kind == "failure":
        paystack_event = invoice_failed_event(created)
    else:
        charge(created, amount_minor)
        paystack_event = refund_processed_event(created, reported, event_id)
    return signed(paystack_event, secret=secret)


REFUND_WEBHOOK_DELAY_SECONDS = 0.05  # Paystack sends refund.pending and refund.processed after the refund's answer


# ----------------------------------------------------------------------------------------------------------
# The gateway


class Paystack(SimGateway):
    outcomes = ("success", "failure", "refund", "refund_failed", "dispute", "dispute_won", "dispute_lost")
    name = "paystack"
    label = "Paystack"
    api_base_var = API_BASE_VAR
    credentials = CREDENTIALS
    event_type_field = "event"
    kinds = ("transactions", "disputes")
    no_webhook_note = "Paystack sends no webhook for a failed charge; transaction/verify now reports it failed"
    no_webhook_detail = "The payment failed. Paystack sends no webhook for this; the API learns it by verifying."

    def reset(self) -> None:
        super().reset()
        self._access_codes: dict[str, str] = {}
        self._refunds: list[dict[str, Any]] = []  # every refund record, in the order made (GET /refund lists them)

    def _keep_refund(self, reference: str, record: dict[str, Any]) -> None:
        """Hold `record`, a refund of transaction `reference` (its extra's `refunds` are what refund_failed fails)."""
        self.extra[reference].setdefault("refunds", []).append(record)
        self._refunds.append(record)

    def routes(self) -> list[Route]:
        return [
            ("POST", "/transaction/initialize", self._initialize),
            ("GET", "/transaction/verify/(?P<id>[^/]+)", self._verify),
            ("POST", "/refund", self._refund),
            ("GET", "/refund", self._list_refunds),
            ("GET", "/refund/(?P<id>[^/]+)", self._get_refund),
            ("GET", "/dispute/(?P<id>[^/]+)", self._get_dispute),
            ("GET", "/checkout/(?P<id>[^/]+)", self._page),
        ]

    def _get_refund(self, request: Request) -> Answer:
        """GET /refund/{id}: one refund as GET /refund lists it (the transaction by its id and reference)."""
        self._check_auth(request)
        made = next((record for record in self._refunds if str(record["id"]) == request.params["id"]), None)
        if made is None:
            raise self._error(404, "Refund not found")
        return Answer(200, {"status": True, "message": "Refund retrieved", "data": copy.deepcopy(made)})

    def _get_dispute(self, request: Request) -> Answer:
        """GET /dispute/{id}: one dispute, as it is now."""
        self._check_auth(request)
        held = self.find("disputes", request.params["id"])
        if held is None:
            raise self._error(404, "Dispute not found")
        return Answer(200, {"status": True, "message": "Dispute retrieved", "data": copy.deepcopy(held)})

    def _transaction(self, named: object) -> dict[str, Any] | None:
        """The transaction a refund names: by its reference, or by its numeric id."""
        if isinstance(named, int) and not isinstance(named, bool):
            named = str(named)
        if not isinstance(named, str) or not named:
            return None
        held = self.find("transactions", named)
        if held is None and named.isdigit():
            held = next((t for t in self.objects["transactions"].values() if str(t["id"]) == named), None)
        return held

    def _refund(self, request: Request) -> Answer:
        """POST /refund {"transaction" (reference or id), "amount"? (default what is left), "currency"?,
        "customer_note"?, "merchant_note"?}: queues a refund of a successful transaction, never more than is left.
        Answers it `pending`; refund.pending and refund.processed follow the answer."""
        self._check_auth(request)
        body = request.json_body(lambda message: self._error(400, message))
        if body.get("transaction") in (None, ""):
            raise self._error(400, "Transaction reference or id is required")
        held = self._transaction(body["transaction"])
        if held is None:
            raise self._error(404, "Transaction not found")
        extra = self.extra[held["reference"]]
        if held["status"] == "reversed":
            raise self._error(400, "Transaction has been fully reversed")
        if held["status"] != "success":
            raise self._error(400, "Transaction has not been completed, so it cannot be refunded")
        left = held["amount"] - extra["refunded"]
        amount = body.get("amount", left)
        if isinstance(amount, str) and amount.isascii() and amount.isdigit():
            amount = int(amount)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise self._error(400, "Invalid Amount Sent")
        if amount > left:
            raise self._error(400, "Refund amount cannot be greater than transaction amount")
        currency = body.get("currency")
        if currency is not None and currency != held["currency"]:
            raise self._error(400, "Currency does not match the transaction's currency")
        merchant_note, customer_note = body.get("merchant_note"), body.get("customer_note")
        record = refund_record(
            held,
            amount,
            status="pending",
            merchant_note=merchant_note if isinstance(merchant_note, str) else None,
            customer_note=customer_note if isinstance(customer_note, str) else None,
        )
        extra["refunded"] += amount
        if extra["refunded"] == held["amount"]:
            held["status"] = "reversed"
        self._keep_refund(held["reference"], record)
        data = refund_created(held, record)
        record["status"] = "processed"  # the bank has it at once here; refund_failed can still fail it
        webhooks = []
        for status in ("pending", "processed"):
            paystack_event = refund_event(held, amount, record["id"], status=status)
            webhooks.append(Webhook(self.name, paystack_event, *signed(paystack_event)))
        # Sent after the answer, outside the simulator's lock, in order.
        self._host.later(REFUND_WEBHOOK_DELAY_SECONDS, webhooks)
        return Answer(200, {"status": True, "message": "Refund has been queued for processing", "data": data})

    def _list_refunds(self, request: Request) -> Answer:
        """GET /refund: the refunds made, newest first, of one transaction (`transaction`, its numeric id) or all;
        `perPage` (default 50) and `page` (from 1) page through them."""
        self._check_auth(request)
        named = request.query.get("transaction")
        if named is not None and not named.isdigit():
            raise self._error(400, "Transaction ID should be numeric.")
        per_page, page = request.query.get("perPage", "50"), request.query.get("page", "1")
        if not (per_page.isascii() and per_page.isdigit() and int(per_page) > 0):
            raise self._error(400, "perPage must be a positive integer")
        if not (page.isascii() and page.isdigit() and int(page) > 0):
            raise self._error(400, "page must be a positive integer")
        made = [record for record in reversed(self._refunds) if named is None or str(record["transaction"]) == named]
        size, number = int(per_page), int(page)
        shown = copy.deepcopy(made[(number - 1) * size : number * size])
        meta = {
            "total": len(made),
            "skipped": (number - 1) * size,
            "perPage": per_page,
            "page": number,
            "pageCount": max(1, -(-len(made) // size)),
            "failedRefundCount": sum(1 for record in made if record["status"] == "failed"),
        }
        return Answer(200, {"status": True, "message": "Refunds retrieved", "data": shown, "meta": meta})

    def return_url(self, ref: str, outcome: str) -> str | None:
        callback = self.extra.get(ref, {}).get("callback_url")
        return with_query(callback, {"trxref": ref, "reference": ref}) if callback else None

    @staticmethod
    def _error(status: int, message: str) -> Refusal:
        return Refusal(status, {"status": False, "message": message})

    def _check_auth(self, request: Request) -> None:
        header = request.headers.get("authorization")
        if not header:
            raise self._error(401, "No Authorization Header was found")
        if not same(bearer(header), self.credential("PAYSTACK_SECRET_KEY")):
            raise self._error(401, "Invalid key")

    def _initialize(self, request: Request) -> Answer:
        self._check_auth(request)
        body = request.json_body(lambda message: self._error(400, message))
        email = body.get("email")
        if not isinstance(email, str) or not _EMAIL.match(email):
            raise self._error(400, "Invalid Email Address Passed")
        amount = body.get("amount")
        if isinstance(amount, str) and amount.isdigit():
            amount = int(amount)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise self._error(400, "Invalid Amount Sent")
        currency = body.get("currency") or "NGN"
        if currency not in _CURRENCIES:
            raise self._error(400, "Currency not supported by merchant")
        reference = body.get("reference") or token(10, LOWER_ALNUM)
        if not isinstance(reference, str) or not _REFERENCE.match(reference):
            raise self._error(400, "Invalid transaction reference: only -, ., = and alphanumerics allowed")
        if reference in self.objects["transactions"]:
            raise self._error(400, "Duplicate Transaction Reference")
        metadata = body.get("metadata")
        if isinstance(metadata, str):  # Paystack takes metadata as an object or as stringified JSON
            with contextlib.suppress(ValueError):
                metadata = json.loads(metadata)
        access_code = token(15, LOWER_ALNUM)
        initialised = transaction(reference, amount, currency, email=email, metadata=metadata)
        self.store(
            "transactions",
            reference,
            initialised,
            callback_url=body.get("callback_url"),
            access_code=access_code,
            refunded=0,
        )
        self._access_codes[access_code] = reference
        data = {
            "authorization_url": f"{self.base_url}/paystack/checkout/{access_code}",
            "access_code": access_code,
            "reference": reference,
        }
        return Answer(200, {"status": True, "message": "Authorization URL created", "data": data})

    def _verify(self, request: Request) -> Answer:
        self._check_auth(request)
        held = self.find("transactions", request.params["id"])
        if held is None:
            raise self._error(400, "Transaction reference not found")
        return Answer(200, {"status": True, "message": "Verification successful", "data": copy.deepcopy(held)})

    def _page(self, request: Request) -> Answer:
        reference = self._access_codes.get(request.params["id"], "")
        held = self.find("transactions", reference)
        if held is None:
            return Answer(404, pages.missing_page(gateway="Paystack", what="No such transaction."))
        page = pages.checkout_page(
            gateway="Paystack",
            provider="paystack",
            ref=reference,
            amount=major(held["amount"], held["currency"]),
            currency=held["currency"],
            description=None,
            payable=held["status"] in ("abandoned", "ongoing"),
        )
        return Answer(200, page)

    # -- settling ---------------------------------------------------------------------------------------------

    def settle(self, ref: str, outcome: str, amount: str | None) -> Webhook | None:
        held = self.find("transactions", ref)
        if held is None:
            raise SettleError(404, f"no Paystack transaction {ref}")
        currency = held["currency"]
        if outcome == "success":
            if held["status"] not in ("abandoned", "ongoing", "failed"):
                raise SettleError(409, f"Paystack transaction {ref} is {held['status']}")
            charge(held, settle_minor(amount, currency) if amount else held["requested_amount"])
            paystack_event = charge_success_event(held)
        elif outcome == "failure":
            if held["status"] == "success":
                raise SettleError(409, f"Paystack transaction {ref} already succeeded; settle a refund instead")
            held.update(status="failed", gateway_response="Declined", message="Declined")
            return None  # Paystack sends no webhook for a failed charge: `verify` reports it
        elif outcome == "refund_failed":
            extra = self.extra[ref]
            made = [r for r in extra.get("refunds", []) if r["status"] == "processed"]
            if not made:
                raise SettleError(409, f"Paystack transaction {ref} has no refund that could fail")
            failed = made[-1]
            failed["status"] = "failed"
            extra["refunded"] -= failed["amount"]  # the money was not returned
            if held["status"] == "reversed":
                held["status"] = "success"
            paystack_event = refund_event(held, failed["amount"], failed["id"], status="failed")
        elif outcome == "dispute":  # the payer's bank disputes the paid transaction (all of it, or `amount`)
            if held["status"] not in ("success", "reversed"):
                raise SettleError(409, f"Paystack transaction {ref} has not succeeded, so there is nothing to dispute")
            disputed = settle_minor(amount, currency) if amount else held["amount"]
            if not 0 < disputed <= held["amount"]:
                raise SettleError(
                    409, f"Paystack transaction {ref} was paid {major(held['amount'], currency)} {currency}"
                )
            dispute_id = number_id(8)
            while str(dispute_id) in self.objects["disputes"]:
                dispute_id = number_id(8)
            record = dispute_record(held, disputed, dispute_id=dispute_id)
            self.objects["disputes"][str(dispute_id)] = record
            self.extra[ref].setdefault("disputes", []).append(record)
            paystack_event = dispute_webhook("charge.dispute.create", record)
        elif outcome in ("dispute_won", "dispute_lost"):  # the latest unresolved dispute of the transaction
            undecided = [d for d in self.extra[ref].get("disputes", []) if d["status"] != "resolved"]
            if not undecided:
                raise SettleError(409, f"Paystack transaction {ref} has no unresolved dispute")
            record = undecided[-1]
            resolve(record, won=outcome == "dispute_won")
            paystack_event = dispute_webhook("charge.dispute.resolve", record)
        else:
            if held["status"] != "success":
                raise SettleError(409, f"Paystack transaction {ref} has not succeeded, so there is nothing to refund")
            extra = self.extra[ref]
            remaining = held["amount"] - extra["refunded"]
            refund = settle_minor(amount, currency) if amount else remaining
            if not 0 < refund <= remaining:
                raise SettleError(409, f"Paystack transaction {ref} has {major(remaining, currency)} {currency} left")
            extra["refunded"] += refund
            if extra["refunded"] == held["amount"]:
                held["status"] = "reversed"
            record = refund_record(held, refund)
            self._keep_refund(ref, record)
            paystack_event = refund_processed_event(held, refund, record["id"])
        body, headers = signed(paystack_event)
        return Webhook(self.name, paystack_event, body, headers)


GATEWAY = Paystack  # what the server loads for this registry entry
