"""NOWPayments as the simulator acts it out: invoices priced in fiat (x-api-key), the payments made against
them in crypto, the invoice page, and IPNs signed over the key-sorted body (docs/gateways.md#nowpayments).

Endpoints below /nowpayments: POST /v1/invoice, GET /v1/payment/{payment_id}, GET /v1/payment/ (?invoiceId=);
payer page GET /payment/?iid=. Amounts go out as JSON numbers, as NOWPayments' JavaScript writes them.

The module-level functions build the objects and the signed IPNs; the routes, `settle()` and the tests'
events (tests/integration/webhook_events.py) all use them, so they send one shape.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from local.gateway_sim import pages
from local.gateway_sim.base import Answer, Refusal, Request, Route, SettleError, SimGateway, Webhook, settle_decimal
from local.gateway_sim.common import credential, iso_ms, number_id, same, token, wire

CREDENTIALS = {"NOWPAYMENTS_API_KEY": "nowpayments-local-key", "NOWPAYMENTS_IPN_SECRET": "nowpayments-local-ipn-secret"}
API_BASE_VAR = "NOWPAYMENTS_API_BASE"
SIGNATURE_HEADER = "x-nowpayments-sig"

# The coin every simulated NOWPayments payer "pays" with, at a fixed rate per unit of the price currency.
_COIN = "trx"
_RATE = Decimal("8.123456")


# ----------------------------------------------------------------------------------------------------------
# Objects and webhooks


def payment(
    invoice_id: int | str,
    price: Decimal,
    price_currency: str,
    *,
    order_id: str | None,
    order_description: str | None,
    payment_id: int | None = None,
) -> dict[str, Any]:
    """The payment NOWPayments opens under an invoice once the payer picks a coin (`waiting` for it)."""
    pay_amount = (price * _RATE).quantize(Decimal("0.000001"))
    now = iso_ms()
    return {
        "payment_id": number_id(10) if payment_id is None else payment_id,
        "invoice_id": invoice_id,
        "payment_status": "waiting",
        "pay_address": f"T{token(33)}",
        "payin_extra_id": None,
        "price_amount": price,
        "price_currency": price_currency.lower(),
        "pay_amount": pay_amount,
        "actually_paid": Decimal(0),
        "actually_paid_at_fiat": Decimal(0),
        "pay_currency": _COIN,
        "order_id": order_id,
        "order_description": order_description,
        "purchase_id": str(number_id(10)),
        "outcome_amount": Decimal(0),
        "outcome_currency": _COIN,
        "payout_hash": None,
        "payin_hash": None,
        "created_at": now,
        "updated_at": now,
        "burning_percent": None,
        "type": "crypto2crypto",
        "payment_extra_ids": None,
        "parent_payment_id": None,
    }


def pay(of_payment: dict[str, Any], paid_fiat: Decimal) -> None:
    """The payer sends coins worth `paid_fiat` more: finished once all sent covers the price, else partially_paid."""
    paid_fiat += of_payment["actually_paid_at_fiat"]
    paid = (paid_fiat * _RATE).quantize(Decimal("0.000001"))
    of_payment.update(
        payment_status="finished" if paid_fiat >= of_payment["price_amount"] else "partially_paid",
        actually_paid=paid,
        actually_paid_at_fiat=paid_fiat,
        outcome_amount=(paid * Decimal("0.995")).quantize(Decimal("0.0001")),
        payin_hash=secrets.token_hex(32),
    )


def ipn(of_payment: dict[str, Any]) -> dict[str, Any]:
    """The IPN NOWPayments sends about `of_payment` in its current status (numbers ready for the wire)."""
    sent: dict[str, Any] = wire(
        {
            "payment_id": of_payment["payment_id"],
            "parent_payment_id": None,
            "invoice_id": of_payment["invoice_id"],
            "payment_status": of_payment["payment_status"],
            "pay_address": of_payment["pay_address"],
            "payin_extra_id": None,
            "price_amount": of_payment["price_amount"],
            "price_currency": of_payment["price_currency"],
            "pay_amount": of_payment["pay_amount"],
            "actually_paid": of_payment["actually_paid"],
            "actually_paid_at_fiat": of_payment["actually_paid_at_fiat"],
            "pay_currency": of_payment["pay_currency"],
            "order_id": of_payment["order_id"],
            "order_description": of_payment["order_description"],
            "purchase_id": of_payment["purchase_id"],
            "outcome_amount": of_payment["outcome_amount"],
            "outcome_currency": of_payment["outcome_currency"],
            "payment_extra_ids": None,
            "fee": {
                "currency": _COIN,
                "depositFee": Decimal("0.09853637216235617"),
                "withdrawalFee": 0,
                "serviceFee": 0,
            },
            "updated_at": int(time.time() * 1000),
        }
    )
    return sent


class _Number(str):
    """A JSON number kept as the text it was written with."""


def _canonical(value: Any) -> str:
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, dict):
        items = (json.dumps(key, ensure_ascii=False) + ":" + _canonical(value[key]) for key in sorted(value))
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_canonical(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def signature(body: bytes, *, secret: str | None = None) -> dict[str, str]:
    """x-nowpayments-sig for `body`: HMAC-SHA512 hex, under the IPN secret, of the body re-serialised with keys
    sorted at every depth, no spaces and raw UTF-8 (docs/gateways.md#nowpayments), its numbers written as sent."""
    canonical = _canonical(json.loads(body, parse_float=_Number, parse_int=_Number))
    key = (secret or credential(CREDENTIALS, "NOWPAYMENTS_IPN_SECRET")).encode()
    return {SIGNATURE_HEADER: hmac.new(key, canonical.encode(), hashlib.sha512).hexdigest()}


def signed(sent: dict[str, Any], *, secret: str | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers of IPN `sent`'s delivery. The body keeps NOWPayments' own key order, so a verifier
    that skips the sorting fails here too."""
    body = json.dumps(sent, separators=(",", ":"), ensure_ascii=False).encode()
    return body, {"Content-Type": "application/json", **signature(body, secret=secret)}


def payment_ipn(
    status: str,
    invoice_id: int | str,
    price_amount: Decimal,
    price_currency: str,
    *,
    order_id: str | None,
    order_description: str | None,
    payment_id: int | None = None,
    secret: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The signed IPN about the payment of invoice `invoice_id`, priced `price_amount`, once it is in NOWPayments'
    `status` (a finished or refunded one was paid the price; any other was paid nothing)."""
    made = payment(
        invoice_id,
        price_amount,
        price_currency,
        order_id=order_id,
        order_description=order_description,
        payment_id=payment_id,
    )
    if status in ("finished", "refunded"):
        pay(made, price_amount)
    made["payment_status"] = status
    return signed(ipn(made), secret=secret)


# ----------------------------------------------------------------------------------------------------------
# The gateway


class NowPayments(SimGateway):
    name = "nowpayments"
    label = "NOWPayments"
    api_base_var = API_BASE_VAR
    credentials = CREDENTIALS
    event_type_field = "payment_status"
    kinds = ("invoices", "payments")

    def routes(self) -> list[Route]:
        return [
            ("POST", "/v1/invoice", self._create_invoice),
            ("GET", "/v1/payment/(?P<id>[^/]+)", self._get_payment),
            ("GET", "/v1/payment", self._list_payments),
            ("GET", "/payment", self._page),
        ]

    def return_url(self, ref: str, outcome: str) -> str | None:
        invoice = self.objects["invoices"].get(ref, {})
        url = invoice.get("success_url" if outcome == "success" else "cancel_url")
        return str(url) if url else None

    @staticmethod
    def _error(status: int, code: str, message: str) -> Refusal:
        return Refusal(status, {"status": False, "statusCode": status, "code": code, "message": message})

    def _check_auth(self, request: Request) -> None:
        if not same(request.headers.get("x-api-key"), self.credential("NOWPAYMENTS_API_KEY")):
            raise self._error(403, "INVALID_API_KEY", "Invalid api key")

    def _create_invoice(self, request: Request) -> Answer:
        self._check_auth(request)
        body = request.json_body(lambda message: self._error(400, "INVALID_REQUEST_PARAMS", message))

        def invalid(message: str) -> Refusal:
            return self._error(400, "INVALID_REQUEST_PARAMS", message)

        raw_price = body.get("price_amount")
        if raw_price is None:
            raise invalid('"price_amount" is required')
        try:
            if isinstance(raw_price, bool):
                raise InvalidOperation
            price = Decimal(str(raw_price))
        except InvalidOperation:
            raise invalid('"price_amount" must be a number') from None
        if not price.is_finite() or price <= 0:
            raise invalid('"price_amount" must be a positive number')
        currency = body.get("price_currency")
        if not currency:
            raise invalid('"price_currency" is required')
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z0-9]{3,10}", currency):
            raise invalid('"price_currency" must be a valid currency')
        for name in ("order_id", "order_description", "ipn_callback_url", "success_url", "cancel_url"):
            if body.get(name) is not None and not isinstance(body[name], str):
                raise invalid(f'"{name}" must be a string')
        invoice_id = str(number_id(10))
        now = iso_ms()
        invoice = {
            "id": invoice_id,
            "token_id": token(9),
            "order_id": body.get("order_id"),
            "order_description": body.get("order_description"),
            "price_amount": format(price.normalize(), "f"),  # numbers come back as strings here
            "price_currency": currency.lower(),
            "pay_currency": None,
            "ipn_callback_url": body.get("ipn_callback_url"),
            "invoice_url": f"{self.base_url}/nowpayments/payment/?iid={invoice_id}",
            "success_url": body.get("success_url"),
            "cancel_url": body.get("cancel_url"),
            "partially_paid_url": body.get("partially_paid_url"),
            "payout_currency": None,
            "created_at": now,
            "updated_at": now,
            "is_fixed_rate": bool(body.get("is_fixed_rate", False)),
            "is_fee_paid_by_user": bool(body.get("is_fee_paid_by_user", False)),
        }
        self.store("invoices", invoice_id, invoice, price=price, payment_id=None)
        return Answer(201, copy.deepcopy(invoice))

    def _get_payment(self, request: Request) -> Answer:
        self._check_auth(request)
        held = self.find("payments", request.params["id"])
        if held is None:
            raise self._error(404, "PAYMENT_NOT_FOUND", f"Payment {request.params['id']} not found")
        return Answer(200, wire(copy.deepcopy(held)))

    def _list_payments(self, request: Request) -> Answer:
        """GET /v1/payment/: the account's payments, `invoiceId` filtering to one invoice's, paged by
        `limit` (1-500) and `page`, sorted by `sortBy` (created_at) in `orderBy` (asc, desc) order."""
        self._check_auth(request)
        query = request.query
        limit, page = query.get("limit", "10"), query.get("page", "0")
        if not (limit.isascii() and limit.isdigit() and 1 <= int(limit) <= 500):
            raise self._error(400, "INVALID_REQUEST_PARAMS", '"limit" must be between 1 and 500')
        if not (page.isascii() and page.isdigit()):
            raise self._error(400, "INVALID_REQUEST_PARAMS", '"page" must be a number')
        payments = [
            held
            for held in self.objects["payments"].values()
            if "invoiceId" not in query or str(held["invoice_id"]) == query["invoiceId"]
        ]
        payments.sort(key=lambda held: held["created_at"], reverse=query.get("orderBy") == "desc")
        size, start = int(limit), int(page) * int(limit)
        data = [wire(copy.deepcopy(held)) for held in payments[start : start + size]]
        page_count = -(-len(payments) // size)
        return Answer(
            200, {"data": data, "limit": size, "page": int(page), "pagesCount": page_count, "total": len(payments)}
        )

    def _page(self, request: Request) -> Answer:
        invoice = self.find("invoices", request.query.get("iid", ""))
        if invoice is None:
            return Answer(404, pages.missing_page(gateway="NOWPayments", what="No such invoice."))
        payment_id = self.extra[invoice["id"]]["payment_id"]
        held = self.find("payments", payment_id) if payment_id else None
        page = pages.checkout_page(
            gateway="NOWPayments",
            provider="nowpayments",
            ref=invoice["id"],
            amount=invoice["price_amount"],
            currency=invoice["price_currency"],
            description=invoice["order_description"],
            payable=held is None or held["payment_status"] in ("waiting", "partially_paid", "failed"),
        )
        return Answer(200, page)

    # -- settling ---------------------------------------------------------------------------------------------

    def settle(self, ref: str, outcome: str, amount: str | None) -> Webhook:
        invoice = self.find("invoices", ref)
        if invoice is None:
            raise SettleError(404, f"no NOWPayments invoice {ref}")
        extra = self.extra[ref]
        price: Decimal = extra["price"]
        held = self.find("payments", extra["payment_id"]) if extra["payment_id"] else None
        if held is None:  # the payer picked a coin: NOWPayments creates the payment under the invoice
            held = payment(
                int(invoice["id"]),
                price,
                invoice["price_currency"],
                order_id=invoice["order_id"],
                order_description=invoice["order_description"],
            )
            self.objects["payments"][str(held["payment_id"])] = held
            extra["payment_id"] = str(held["payment_id"])
        status = held["payment_status"]
        if outcome == "success":
            if status in ("finished", "refunded"):
                raise SettleError(409, f"NOWPayments invoice {ref} is {status}")
            # `amount`: what the payer sends now (less than what is left: partially_paid); else all that is left.
            pay(held, settle_decimal(amount) if amount else price - held["actually_paid_at_fiat"])
        elif outcome == "failure":
            if status in ("finished", "refunded"):
                raise SettleError(409, f"NOWPayments invoice {ref} is {status}; settle a refund instead")
            held["payment_status"] = "failed"
        else:
            if status not in ("finished", "partially_paid"):
                raise SettleError(409, f"NOWPayments invoice {ref} is {status}, so there is nothing to refund")
            held["payment_status"] = "refunded"
        held["updated_at"] = iso_ms()
        sent = ipn(held)
        body, headers = signed(sent)
        return Webhook(self.name, sent, body, headers)


GATEWAY = NowPayments  # what the server loads for this registry entry
