"""PayPal as the simulator acts it out: OAuth tokens, Orders v2 with `PayPal-Request-Id` replays, captures, the
approval page, and webhooks that only its own verify-webhook-signature answers SUCCESS for (docs/gateways.md#paypal).

Endpoints below /paypal: POST /v1/oauth2/token, POST /v2/checkout/orders, GET /v2/checkout/orders/{id},
POST /v2/checkout/orders/{id}/capture, GET /v2/payments/captures/{id}, POST /v2/payments/captures/{id}/refund,
GET /v2/payments/refunds/{id}, GET /v1/customer/disputes/{id}, POST /v1/notifications/verify-webhook-signature; payer
page GET /checkoutnow?token=.

Settling success sends CHECKOUT.ORDER.APPROVED; when the API then captures, PAYMENT.CAPTURE.COMPLETED follows
shortly after the capture answer, as with PayPal. A refund (the API's, or the `refund` outcome's: one running
total per order) is listed in the order's `purchase_units[0].payments.refunds`, and PAYMENT.CAPTURE.REFUNDED
follows it. Access tokens survive a reset, as adapters cache them.

Disputes (the control outcomes): `dispute` opens one of the order's capture (for `amount`, or all of it) and sends
CUSTOMER.DISPUTE.CREATED; `dispute_won` resolves it in the seller's favour (CUSTOMER.DISPUTE.RESOLVED); `dispute_lost`
in the buyer's: CUSTOMER.DISPUTE.RESOLVED, then PAYMENT.CAPTURE.REVERSED for the reversal that takes the disputed
amount back from the capture (refund-shaped, under its own id; GET /v2/payments/refunds/{id} shows it). The first
webhook is `settle()`'s answer, the next follows it shortly after.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from local.gateway_sim import pages
from local.gateway_sim.base import Answer, Host, Refusal, Request, Route, SettleError, SimGateway, Webhook, settle_minor
from local.gateway_sim.common import (
    ALNUM,
    HEX,
    UPPER_ALNUM,
    basic_auth,
    bearer,
    iso_ms,
    iso_seconds,
    major,
    number_id,
    same,
    to_minor,
    token,
    with_query,
)

CREDENTIALS = {
    "PAYPAL_CLIENT_ID": "paypal-local-client",
    "PAYPAL_CLIENT_SECRET": "paypal-local-secret",
    "PAYPAL_WEBHOOK_ID": "WH-LOCAL-WEBHOOK-ID",
}
API_BASE_VAR = "PAYPAL_API_BASE"
# PayPal sends PAYMENT.CAPTURE.COMPLETED after answering the capture; a short pause keeps the common order
# (capture answer first) without promising it, as PayPal does not either.
CAPTURE_WEBHOOK_DELAY_SECONDS = 0.3
# A settle outcome that makes PayPal send several webhooks answers the first; the others follow after this pause.
FOLLOW_UP_WEBHOOK_DELAY_SECONDS = 0.3
DISPUTE_REASON = "MERCHANDISE_OR_SERVICE_NOT_RECEIVED"  # what the simulated buyer says

_CURRENCY_DIGITS = {
    **dict.fromkeys([
        "AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "ILS", "MYR", "MXN",
        "NZD", "NOK", "PHP", "PLN", "GBP", "SGD", "SEK", "CHF", "THB", "USD",
    ], 2),
    **dict.fromkeys(["HUF", "JPY", "TWD"], 0),
}  # fmt: skip
# PayPal's fixed fee per transaction (its standard checkout pricing: 3.49% plus this), in minor units; other
# currencies take 49 minor units (whole-unit currencies: 40).
_FIXED_FEE = {"USD": 49, "EUR": 39, "GBP": 29, "CAD": 59, "AUD": 59, "JPY": 40, "HUF": 149, "TWD": 14}


def paypal_fee(gross: int, code: str, digits: int) -> int:
    """PayPal's fee on a capture of `gross` minor units: 3.49% (rounded half up) plus the fixed fee, at most `gross`."""
    fixed = _FIXED_FEE.get(code, 49 if digits else 40)
    return min((gross * 349 + 5_000) // 10_000 + fixed, gross)


_ERROR_MESSAGES = {
    "INVALID_REQUEST": "Request is not well-formed, syntactically incorrect, or violates schema.",
    "UNPROCESSABLE_ENTITY": (
        "The requested action could not be performed, semantically incorrect, or failed business validation."
    ),
    "RESOURCE_NOT_FOUND": "The specified resource does not exist.",
}
_AMOUNT = re.compile(r"^\d{1,10}(\.\d+)?$")


HOLD_REASON = "RECEIVING_PREFERENCE_MANDATES_MANUAL_ACTION"  # what "hold" makes PayPal say of the capture


class PayPal(SimGateway):
    outcomes = ("success", "failure", "refund", "hold", "dispute", "dispute_won", "dispute_lost")
    name = "paypal"
    label = "PayPal"
    api_base_var = API_BASE_VAR
    credentials = CREDENTIALS
    event_type_field = "event_type"
    kinds = ("orders", "disputes")

    def __init__(self, host: Host) -> None:
        self._tokens: set[str] = set()  # not forgotten by reset(): adapters cache their access token
        super().__init__(host)

    def reset(self) -> None:
        super().reset()
        self._requests: dict[tuple[str, str], Answer] = {}
        self._transmissions: dict[str, dict[str, Any]] = {}

    def routes(self) -> list[Route]:
        return [
            ("POST", "/v1/oauth2/token", self._issue_token),
            ("POST", "/v2/checkout/orders", self._create_order),
            ("GET", "/v2/checkout/orders/(?P<id>[^/]+)", self._get_order),
            ("POST", "/v2/checkout/orders/(?P<id>[^/]+)/capture", self._capture),
            ("GET", "/v2/payments/captures/(?P<id>[^/]+)", self._get_capture),
            ("POST", "/v2/payments/captures/(?P<id>[^/]+)/refund", self._refund_capture),
            ("GET", "/v2/payments/refunds/(?P<id>[^/]+)", self._get_refund),
            ("GET", "/v1/customer/disputes/(?P<id>[^/]+)", self._get_dispute),
            ("POST", "/v1/notifications/verify-webhook-signature", self._verify_signature),
            ("GET", "/checkoutnow", self._page),
        ]

    def return_url(self, ref: str, outcome: str) -> str | None:
        extra = self.extra.get(ref, {})
        if outcome == "success" and extra.get("return_url"):
            payer = self.objects["orders"][ref].get("payer", {})
            return with_query(extra["return_url"], {"token": ref, "PayerID": payer.get("payer_id", "")})
        return with_query(extra["cancel_url"], {"token": ref}) if extra.get("cancel_url") else None

    @staticmethod
    def _error(status: int, name: str, issue: str, description: str, **detail: Any) -> Refusal:
        body: dict[str, Any] = {
            "name": name,
            "details": [{**detail, "issue": issue, "description": description}],
            "message": _ERROR_MESSAGES.get(name, description),
            "debug_id": token(13, HEX),
            "links": [
                {
                    "href": f"https://developer.paypal.com/docs/api/orders/v2/#error-{issue}",
                    "rel": "information_link",
                    "method": "GET",
                }
            ],
        }
        return Refusal(status, body, {"Paypal-Debug-Id": str(body["debug_id"])})

    def _issue_token(self, request: Request) -> Answer:
        credentials = basic_auth(request.headers.get("authorization"))
        if credentials is None or not (
            same(credentials[0], self.credential("PAYPAL_CLIENT_ID"))
            and same(credentials[1], self.credential("PAYPAL_CLIENT_SECRET"))
        ):
            raise Refusal(401, {"error": "invalid_client", "error_description": "Client Authentication failed"})
        grant = dict(parse_qsl(request.body.decode("utf-8", "replace"))).get("grant_type")
        if grant != "client_credentials":
            description = "Grant Type is NULL" if not grant else f"Grant Type is not supported: {grant}"
            raise Refusal(400, {"error": "unsupported_grant_type", "error_description": description})
        access_token = "A21AA" + token(92, ALNUM + "-_")
        self._tokens.add(access_token)
        return Answer(
            200,
            {
                "scope": "https://uri.paypal.com/services/payments/payment https://uri.paypal.com/services/payments/refund",
                "access_token": access_token,
                "token_type": "Bearer",
                "app_id": "APP-80W284485P519543T",
                "expires_in": 32400,
                "nonce": f"{iso_seconds()}{token(43)}",
            },
        )

    def _check_bearer(self, request: Request) -> None:
        given = bearer(request.headers.get("authorization"))
        if given is None or given not in self._tokens:
            raise Refusal(
                401,
                {
                    "name": "AUTHENTICATION_FAILURE",
                    "message": "Authentication failed due to invalid authentication credentials or a missing "
                    "Authorization header.",
                    "links": [
                        {"href": "https://developer.paypal.com/docs/api/overview/#error", "rel": "information_link"}
                    ],
                },
            )
        if "application/json" not in request.headers.get("content-type", "") and request.method == "POST":
            raise Refusal(
                415,
                {
                    "name": "UNSUPPORTED_MEDIA_TYPE",
                    "message": "The request payload is not supported.",
                    "details": [
                        {"issue": "UNSUPPORTED_MEDIA_TYPE", "description": "Content-Type must be application/json."}
                    ],
                    "debug_id": token(13, HEX),
                },
            )

    def _json(self, request: Request) -> dict[str, Any]:
        def refuse(message: str) -> Refusal:
            return self._error(400, "INVALID_REQUEST", "MALFORMED_REQUEST_JSON", message, location="body")

        return request.json_body(refuse)

    def _idempotent(self, request: Request, run: Callable[[], Answer]) -> Answer:
        """PayPal-Request-Id: the same id on the same endpoint answers the first successful result again."""
        key = request.headers.get("paypal-request-id")
        if not key:
            return run()
        saved = self._requests.get((request.path, key))
        if saved is not None:
            return Answer(saved.status, copy.deepcopy(saved.body), dict(saved.headers))
        answer = run()
        self._requests[(request.path, key)] = Answer(answer.status, copy.deepcopy(answer.body), answer.headers)
        return answer

    def _create_order(self, request: Request) -> Answer:
        self._check_bearer(request)
        body = self._json(request)
        return self._idempotent(request, lambda: self._new_order(body, request.headers.get("prefer", "")))

    def _new_order(self, body: dict[str, Any], prefer: str) -> Answer:
        intent = body.get("intent")
        if intent not in ("CAPTURE", "AUTHORIZE"):
            issue = "MISSING_REQUIRED_PARAMETER" if intent is None else "INVALID_PARAMETER_VALUE"
            raise self._error(
                400, "INVALID_REQUEST", issue, "intent must be CAPTURE or AUTHORIZE.", field="/intent", location="body"
            )
        units = body.get("purchase_units")
        if not isinstance(units, list) or not units:
            raise self._error(
                400,
                "INVALID_REQUEST",
                "MISSING_REQUIRED_PARAMETER",
                "A required field / parameter is missing.",
                field="/purchase_units",
                location="body",
            )
        purchase_units = [self._purchase_unit(unit, index) for index, unit in enumerate(units)]
        context = body.get("application_context") or {}
        source = body.get("payment_source")
        if isinstance(source, dict) and isinstance(source.get("paypal"), dict):
            context = {**context, **(source["paypal"].get("experience_context") or {})}
        order_id = token(17, UPPER_ALNUM)
        order_url = f"{self.base_url}/paypal/v2/checkout/orders/{order_id}"
        approve = {
            "href": f"{self.base_url}/paypal/checkoutnow?token={order_id}",
            "rel": "payer-action" if source else "approve",
            "method": "GET",
        }
        links = [{"href": order_url, "rel": "self", "method": "GET"}, approve]
        if not source:
            links += [
                {"href": order_url, "rel": "update", "method": "PATCH"},
                {"href": f"{order_url}/capture", "rel": "capture", "method": "POST"},
            ]
        order: dict[str, Any] = {
            "id": order_id,
            "intent": intent,
            "status": "PAYER_ACTION_REQUIRED" if source else "CREATED",
            "purchase_units": purchase_units,
            "create_time": iso_seconds(),
            "links": links,
        }
        if source:
            order["payment_source"] = {"paypal": {}}
        self.store(
            "orders",
            order_id,
            order,
            return_url=context.get("return_url"),
            cancel_url=context.get("cancel_url"),
            capture_value=None,
            refunded=0,
        )
        if "return=representation" in prefer:
            return Answer(201, copy.deepcopy(order))
        minimal = {key: order[key] for key in ("id", "status", "payment_source", "links") if key in order}
        return Answer(201, copy.deepcopy(minimal))

    def _purchase_unit(self, unit: Any, index: int) -> dict[str, Any]:
        where = f"/purchase_units/{index}"

        def invalid(status: int, name: str, issue: str, description: str, path: str, value: Any = None) -> Refusal:
            detail = {"field": f"{where}{path}", "location": "body"}
            if value is not None:
                detail["value"] = str(value)
            return self._error(status, name, issue, description, **detail)

        missing = "A required field / parameter is missing."
        amount = unit.get("amount") if isinstance(unit, dict) else None
        if not isinstance(amount, dict):
            raise invalid(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", missing, "/amount")
        code, value = amount.get("currency_code"), amount.get("value")
        if not code:
            raise invalid(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", missing, "/amount/currency_code")
        if value is None:
            raise invalid(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", missing, "/amount/value")
        if code not in _CURRENCY_DIGITS:
            raise invalid(
                422,
                "UNPROCESSABLE_ENTITY",
                "CURRENCY_NOT_SUPPORTED",
                "Currency code is not currently supported. Please refer "
                "https://developer.paypal.com/api/rest/reference/currency-codes/ for list of supported currency codes.",
                "/amount/currency_code",
                code,
            )
        if not isinstance(value, str) or not _AMOUNT.match(value):
            raise invalid(
                400,
                "INVALID_REQUEST",
                "INVALID_PARAMETER_SYNTAX",
                "The value of a field does not conform to the expected format.",
                "/amount/value",
                value,
            )
        decimals = len(value.partition(".")[2])
        if decimals > _CURRENCY_DIGITS[code]:
            raise invalid(
                422,
                "UNPROCESSABLE_ENTITY",
                "DECIMAL_PRECISION",
                "If the currency supports decimals, only two decimal place precision is supported.",
                "/amount/value",
                value,
            )
        if Decimal(value) <= 0:
            raise invalid(
                422,
                "UNPROCESSABLE_ENTITY",
                "CANNOT_BE_ZERO_OR_NEGATIVE",
                "Must be greater than zero.",
                "/amount/value",
                value,
            )
        for name in ("custom_id", "invoice_id"):
            if name in unit and (not isinstance(unit[name], str) or not 1 <= len(unit[name]) <= 127):
                raise invalid(
                    400,
                    "INVALID_REQUEST",
                    "INVALID_STRING_LENGTH",
                    "The value of a field is either too short or too long.",
                    f"/{name}",
                )
        kept = {key: unit[key] for key in ("description", "custom_id", "invoice_id", "soft_descriptor") if key in unit}
        return {
            "reference_id": unit.get("reference_id", "default"),
            "amount": {"currency_code": code, "value": value},
            "payee": {"email_address": "merchant@example.com", "merchant_id": "SIMMERCHANT01"},
            **kept,
        }

    def _order_or_404(self, order_id: str) -> dict[str, Any]:
        order = self.find("orders", order_id)
        if order is None:
            raise self._error(
                404,
                "RESOURCE_NOT_FOUND",
                "INVALID_RESOURCE_ID",
                "Specified resource ID does not exist. Please check the resource ID and try again.",
                field="order_id",
                value=order_id,
                location="path",
            )
        return order

    def _get_order(self, request: Request) -> Answer:
        self._check_bearer(request)
        return Answer(200, copy.deepcopy(self._order_or_404(request.params["id"])))

    def _capture(self, request: Request) -> Answer:
        self._check_bearer(request)
        self._json(request)  # an empty body or {} is what PayPal expects
        return self._idempotent(request, lambda: self._capture_order(request.params["id"]))

    def _get_capture(self, request: Request) -> Answer:
        """GET /v2/payments/captures/{id}: a capture with the order id in supplementary_data."""
        self._check_bearer(request)
        order, capture = self._capture_or_404(request.params["id"])
        return Answer(200, self._capture_resource(order, capture))

    def _capture_or_404(self, capture_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        for order in self.objects["orders"].values():
            for capture in order["purchase_units"][0].get("payments", {}).get("captures", []):
                if capture["id"] == capture_id:
                    return order, capture
        raise self._error(
            404,
            "RESOURCE_NOT_FOUND",
            "INVALID_RESOURCE_ID",
            "Specified resource ID does not exist.",
            field="capture_id",
            value=capture_id,
            location="path",
        )

    def _get_refund(self, request: Request) -> Answer:
        """GET /v2/payments/refunds/{id}: a refund (the API's or a dashboard's) or a reversal of a capture."""
        self._check_bearer(request)
        refund_id = request.params["id"]
        for order in self.objects["orders"].values():
            made = order["purchase_units"][0].get("payments", {}).get("refunds", [])
            for refund in [*made, *self.extra[order["id"]].get("reversals", [])]:
                if refund["id"] == refund_id:
                    return Answer(200, copy.deepcopy(refund))
        raise self._not_found_error("refund_id", refund_id)

    def _get_dispute(self, request: Request) -> Answer:
        """GET /v1/customer/disputes/{id} (Disputes API v1)."""
        self._check_bearer(request)
        dispute = self.find("disputes", request.params["id"])
        if dispute is None:
            raise self._not_found_error("dispute_id", request.params["id"])
        return Answer(200, copy.deepcopy(dispute))

    def _not_found_error(self, field: str, value: str) -> Refusal:
        return self._error(
            404,
            "RESOURCE_NOT_FOUND",
            "INVALID_RESOURCE_ID",
            "Specified resource ID does not exist. Please check the resource ID and try again.",
            field=field,
            value=value,
            location="path",
        )

    # -- refunds ----------------------------------------------------------------------------------------------

    def _refund_capture(self, request: Request) -> Answer:
        """POST /v2/payments/captures/{id}/refund {"amount"?, "custom_id"?, "invoice_id"?, "note_to_payer"?}: what
        is left unless `amount` says less, refused with PayPal's 422s past it; replayed per PayPal-Request-Id."""
        self._check_bearer(request)
        body = self._json(request)
        prefer = request.headers.get("prefer", "")
        return self._idempotent(request, lambda: self._new_refund(request.params["id"], body, prefer))

    def _new_refund(self, capture_id: str, body: dict[str, Any], prefer: str) -> Answer:
        order, capture = self._capture_or_404(capture_id)
        extra = self.extra[order["id"]]
        code = capture["amount"]["currency_code"]
        digits = _CURRENCY_DIGITS[code]
        if capture["status"] == "REFUNDED":
            raise self._error(
                422,
                "UNPROCESSABLE_ENTITY",
                "CAPTURE_FULLY_REFUNDED",
                "The capture has already been fully refunded",
            )
        if capture["status"] not in ("COMPLETED", "PARTIALLY_REFUNDED"):
            raise self._error(
                422,
                "UNPROCESSABLE_ENTITY",
                "REFUND_NOT_ALLOWED",
                "Refund cannot be processed for this capture.",
            )
        remaining = to_minor(capture["amount"]["value"], code, digits) - extra["refunded"]
        refund = remaining if body.get("amount") is None else self._refund_minor(body["amount"], code, digits)
        if refund > remaining:
            raise self._error(
                422,
                "UNPROCESSABLE_ENTITY",
                "REFUND_AMOUNT_EXCEEDED",
                "The refund amount must be less than or equal to the capture amount that has not yet been refunded.",
            )
        for name, longest in (("custom_id", 127), ("invoice_id", 127), ("note_to_payer", 255)):
            if name in body and (not isinstance(body[name], str) or not 1 <= len(body[name]) <= longest):
                raise self._error(
                    400,
                    "INVALID_REQUEST",
                    "INVALID_STRING_LENGTH",
                    "The value of a field is either too short or too long.",
                    field=f"/{name}",
                    location="body",
                )
        ours: dict[str, Any] = {
            name: body[name] for name in ("custom_id", "invoice_id", "note_to_payer") if name in body
        }
        resource, webhook = self._refund_made(order, capture, refund, ours)
        self._host.later(CAPTURE_WEBHOOK_DELAY_SECONDS, [webhook])
        if "return=representation" in prefer:
            return Answer(201, copy.deepcopy(resource))
        return Answer(201, {key: copy.deepcopy(resource[key]) for key in ("id", "status", "links")})

    def _refund_minor(self, amount: Any, code: str, digits: int) -> int:
        """A refund's `amount` object in minor units of the capture's currency, checked as PayPal checks it."""

        def invalid(status: int, name: str, issue: str, description: str, path: str) -> Refusal:
            return self._error(status, name, issue, description, field=f"/amount{path}", location="body")

        if not isinstance(amount, dict):
            raise invalid(400, "INVALID_REQUEST", "INVALID_PARAMETER_SYNTAX", "The value of a field is invalid.", "")
        value = amount.get("value")
        if amount.get("currency_code") != code:
            raise invalid(
                422,
                "UNPROCESSABLE_ENTITY",
                "CURRENCY_MISMATCH",
                "The currency of the refund must be the same as the currency of the capture.",
                "/currency_code",
            )
        if not isinstance(value, str) or not _AMOUNT.match(value):
            raise invalid(
                400,
                "INVALID_REQUEST",
                "INVALID_PARAMETER_SYNTAX",
                "The value of a field does not conform to the expected format.",
                "/value",
            )
        if len(value.partition(".")[2]) > digits:
            raise invalid(
                422,
                "UNPROCESSABLE_ENTITY",
                "DECIMAL_PRECISION",
                "If the currency supports decimals, only two decimal place precision is supported.",
                "/value",
            )
        minor = to_minor(value, code, digits)
        if minor <= 0:
            raise invalid(
                422, "UNPROCESSABLE_ENTITY", "CANNOT_BE_ZERO_OR_NEGATIVE", "Must be greater than zero.", "/value"
            )
        return minor

    def _refund_made(
        self, order: dict[str, Any], capture: dict[str, Any], refund: int, ours: dict[str, Any]
    ) -> tuple[dict[str, Any], Webhook]:
        """Count `refund` (minor units) against the order's capture and list it in the order's refunds; answers
        the refund and the PAYMENT.CAPTURE.REFUNDED PayPal sends about it. `ours`: the caller's custom_id,
        invoice_id and note_to_payer (a refund made in PayPal's dashboard copies the capture's ids instead)."""
        extra = self.extra[order["id"]]
        code = capture["amount"]["currency_code"]
        digits = _CURRENCY_DIGITS[code]
        extra["refunded"] += refund
        gross = to_minor(capture["amount"]["value"], code, digits)
        capture.update(
            status="REFUNDED" if extra["refunded"] == gross else "PARTIALLY_REFUNDED", update_time=iso_seconds()
        )
        value = major(refund, code, digits)
        refund_id = token(17, UPPER_ALNUM)
        resource = {
            "id": refund_id,
            "amount": {"currency_code": code, "value": value},
            "seller_payable_breakdown": {
                "gross_amount": {"currency_code": code, "value": value},
                "paypal_fee": {"currency_code": code, "value": major(0, code, digits)},
                "net_amount": {"currency_code": code, "value": value},
                "total_refunded_amount": {"currency_code": code, "value": major(extra["refunded"], code, digits)},
            },
            **ours,
            "status": "COMPLETED",
            "create_time": iso_seconds(),
            "update_time": iso_seconds(),
            "links": [
                {"href": f"{self.base_url}/paypal/v2/payments/refunds/{refund_id}", "rel": "self", "method": "GET"},
                {"href": capture["links"][0]["href"], "rel": "up", "method": "GET"},
            ],
        }
        order["purchase_units"][0]["payments"].setdefault("refunds", []).append(copy.deepcopy(resource))
        webhook = self._webhook(
            "PAYMENT.CAPTURE.REFUNDED",
            "refund",
            copy.deepcopy(resource),
            f"A {value} {code} capture payment was refunded",
        )
        return resource, webhook

    def _capture_order(self, order_id: str) -> Answer:
        order = self._order_or_404(order_id)
        if order["status"] == "COMPLETED":
            raise self._error(
                422,
                "UNPROCESSABLE_ENTITY",
                "ORDER_ALREADY_CAPTURED",
                "Order already captured.If 'intent=CAPTURE' only one capture per order is allowed.",
            )
        if order["status"] != "APPROVED":
            raise self._error(
                422,
                "UNPROCESSABLE_ENTITY",
                "ORDER_NOT_APPROVED",
                "Payer has not yet approved the Order for payment. Please redirect the payer to the 'rel':'approve' "
                "url returned as part of the HATEOAS links within the Create Order call or provide a valid "
                "payment_source in the request.",
            )
        unit = order["purchase_units"][0]
        invoice_id = unit.get("invoice_id")
        if invoice_id and any(
            other is not order
            and other["status"] == "COMPLETED"
            and other["purchase_units"][0].get("invoice_id") == invoice_id
            for other in self.objects["orders"].values()
        ):
            raise self._error(
                422,
                "UNPROCESSABLE_ENTITY",
                "DUPLICATE_INVOICE_ID",
                "Duplicate Invoice ID detected. To avoid a potential duplicate transaction your account setting "
                "requires that Invoice Id be unique for each transaction.",
            )
        extra = self.extra[order_id]
        held = extra.get("hold_reason")
        status = "PENDING" if held else "COMPLETED"
        capture = self._capture_object(order, status, extra["capture_value"] or unit["amount"]["value"])
        if held:
            capture["status_details"] = {"reason": held}
        unit["payments"] = {"captures": [capture]}
        order.update(status="COMPLETED", update_time=iso_seconds())
        order["links"] = [link for link in order["links"] if link["rel"] == "self"]
        value = f"{capture['amount']['value']} {capture['amount']['currency_code']}"
        webhook = self._webhook(
            f"PAYMENT.CAPTURE.{status}",
            "capture",
            self._capture_resource(order, capture),
            f"Payment pending for {value}" if held else f"Payment completed for {value}",
        )
        self._host.later(CAPTURE_WEBHOOK_DELAY_SECONDS, [webhook])
        return Answer(201, copy.deepcopy(order))

    def _capture_object(self, order: dict[str, Any], status: str, value: str) -> dict[str, Any]:
        unit = order["purchase_units"][0]
        code = unit["amount"]["currency_code"]
        digits = _CURRENCY_DIGITS[code]
        gross = to_minor(value, code, digits)
        fee = paypal_fee(gross, code, digits)
        capture_id = token(17, UPPER_ALNUM)
        capture_url = f"{self.base_url}/paypal/v2/payments/captures/{capture_id}"
        capture = {
            "id": capture_id,
            "status": status,
            "amount": {"currency_code": code, "value": value},
            "final_capture": True,
            "seller_protection": {
                "status": "ELIGIBLE",
                "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"],
            },
            "seller_receivable_breakdown": {
                "gross_amount": {"currency_code": code, "value": value},
                "paypal_fee": {"currency_code": code, "value": major(fee, code, digits)},
                "net_amount": {"currency_code": code, "value": major(gross - fee, code, digits)},
            },
            **{key: unit[key] for key in ("custom_id", "invoice_id") if key in unit},
            "links": [
                {"href": capture_url, "rel": "self", "method": "GET"},
                {"href": f"{capture_url}/refund", "rel": "refund", "method": "POST"},
                {"href": f"{self.base_url}/paypal/v2/checkout/orders/{order['id']}", "rel": "up", "method": "GET"},
            ],
            "create_time": iso_seconds(),
            "update_time": iso_seconds(),
        }
        return capture

    @staticmethod
    def _capture_resource(order: dict[str, Any], capture: dict[str, Any]) -> dict[str, Any]:
        """A capture as webhooks carry it: plus the payee and the order id in supplementary_data."""
        return {
            **copy.deepcopy(capture),
            "payee": copy.deepcopy(order["purchase_units"][0]["payee"]),
            "supplementary_data": {"related_ids": {"order_id": order["id"]}},
        }

    def _verify_signature(self, request: Request) -> Answer:
        self._check_bearer(request)
        body = self._json(request)
        fields = ("auth_algo", "cert_url", "transmission_id", "transmission_sig", "transmission_time", "webhook_id")
        missing = [name for name in (*fields, "webhook_event") if body.get(name) in (None, "")]
        if missing or not isinstance(body["webhook_event"], dict):
            details = [
                {"field": name, "location": "body", "issue": "MISSING_REQUIRED_PARAMETER"} for name in missing
            ] or [{"field": "webhook_event", "location": "body", "issue": "INVALID_PARAMETER_SYNTAX"}]
            raise Refusal(
                400,
                {
                    "name": "VALIDATION_ERROR",
                    "message": "Invalid request - see details",
                    "details": details,
                    "debug_id": token(13, HEX),
                },
            )
        given = {name: str(body[name]) for name in fields}
        sent = self._transmissions.get(given["transmission_id"])
        webhook_id = self.credential("PAYPAL_WEBHOOK_ID")
        verified = (
            sent is not None
            and all(given[name] == sent[name] for name in ("transmission_time", "cert_url", "auth_algo"))
            and same(given["webhook_id"], webhook_id)
            and same(given["transmission_sig"], self._signature(given, sent["body"]))
            and body["webhook_event"] == sent["event"]
        )
        return Answer(200, {"verification_status": "SUCCESS" if verified else "FAILURE"})

    def _signature(self, transmission: dict[str, str], body: bytes) -> str:
        """Stands in for PayPal's RSA signature over the same message (docs/gateways.md#paypal)."""
        crc = binascii.crc32(body) & 0xFFFFFFFF
        fields = (transmission["transmission_id"], transmission["transmission_time"], transmission["webhook_id"])
        message = f"{fields[0]}|{fields[1]}|{fields[2]}|{crc}".encode()
        return base64.b64encode(hmac.new(self._host.secret, message, hashlib.sha256).digest()).decode()

    def _webhook(self, event_type: str, resource_type: str, resource: dict[str, Any], summary: str) -> Webhook:
        event_id = f"WH-{token(17, UPPER_ALNUM)}-{token(17, UPPER_ALNUM)}"
        event_url = f"{self.base_url}/paypal/v1/notifications/webhooks-events/{event_id}"
        event = {
            "id": event_id,
            "event_version": "1.0",
            "create_time": iso_ms(),
            "resource_type": resource_type,
            "resource_version": "2.0",
            "event_type": event_type,
            "summary": summary,
            "resource": resource,
            "links": [
                {"href": event_url, "rel": "self", "method": "GET"},
                {"href": f"{event_url}/resend", "rel": "resend", "method": "POST"},
            ],
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        cert_url = f"{self.base_url}/paypal/v1/notifications/certs/CERT-360caa42-fca2a594-{self._host.secret.hex()[:8]}"
        transmission = {
            "transmission_id": str(uuid.uuid1()),
            "transmission_time": iso_seconds(),
            "webhook_id": self.credential("PAYPAL_WEBHOOK_ID"),
        }
        signature = self._signature(transmission, body)
        # Remembered for verify-webhook-signature, which answers SUCCESS only for what was sent here.
        self._transmissions[transmission["transmission_id"]] = {
            "transmission_time": transmission["transmission_time"],
            "cert_url": cert_url,
            "auth_algo": "SHA256withRSA",
            "body": body,
            "event": json.loads(body),
        }
        headers = {
            "Content-Type": "application/json",
            "PAYPAL-TRANSMISSION-ID": transmission["transmission_id"],
            "PAYPAL-TRANSMISSION-TIME": transmission["transmission_time"],
            "PAYPAL-TRANSMISSION-SIG": signature,
            "PAYPAL-CERT-URL": cert_url,
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
            "User-Agent": "PayPal/AUHD-214.0-58192442",
        }
        return Webhook(self.name, event, body, headers)

    def signed_event(
        self, event_type: str, resource_type: str, resource: dict[str, Any]
    ) -> tuple[bytes, dict[str, str]]:
        """A PayPal webhook with this resource, signed so that verify-webhook-signature answers SUCCESS for it:
        what PayPal would send about objects it holds (tests build events about any object with it)."""
        webhook = self._webhook(event_type, resource_type, copy.deepcopy(resource), event_type)
        return webhook.body, dict(webhook.headers)

    def _page(self, request: Request) -> Answer:
        order = self.find("orders", request.query.get("token", ""))
        if order is None:
            return Answer(404, pages.missing_page(gateway="PayPal", what="No such order."))
        unit = order["purchase_units"][0]
        page = pages.checkout_page(
            gateway="PayPal",
            provider="paypal",
            ref=order["id"],
            amount=unit["amount"]["value"],
            currency=unit["amount"]["currency_code"],
            description=unit.get("description"),
            payable=order["status"] in ("CREATED", "PAYER_ACTION_REQUIRED"),
        )
        return Answer(200, page)

    def settle(self, ref: str, outcome: str, amount: str | None) -> Webhook:
        order = self.find("orders", ref)
        if order is None:
            raise SettleError(404, f"no PayPal order {ref}")
        extra = self.extra[ref]
        unit = order["purchase_units"][0]
        code = unit["amount"]["currency_code"]
        digits = _CURRENCY_DIGITS[code]
        captures = unit.get("payments", {}).get("captures", [])
        captured = bool(captures) and captures[0]["status"] in ("COMPLETED", "PARTIALLY_REFUNDED")
        if outcome == "success" and captures and captures[0]["status"] == "PENDING":  # the hold is lifted
            capture = captures[0]
            capture.pop("status_details", None)
            capture.update(status="COMPLETED", update_time=iso_seconds())
            return self._webhook(
                "PAYMENT.CAPTURE.COMPLETED",
                "capture",
                self._capture_resource(order, capture),
                f"Payment completed for {capture['amount']['value']} {code}",
            )
        if outcome in ("success", "hold"):
            if order["status"] not in ("CREATED", "PAYER_ACTION_REQUIRED"):
                raise SettleError(409, f"PayPal order {ref} is {order['status']}, not awaiting the payer")
            if amount:
                extra["capture_value"] = major(settle_minor(amount, code, digits), code, digits)
            # "hold": approved, but the capture will stay PENDING (a currency the account must accept by hand).
            extra["hold_reason"] = HOLD_REASON if outcome == "hold" else None
            order_url = f"{self.base_url}/paypal/v2/checkout/orders/{ref}"
            order.update(
                status="APPROVED",
                payer={
                    "name": {"given_name": "Sim", "surname": "Buyer"},
                    "email_address": "sim-buyer@example.com",
                    "payer_id": token(13, UPPER_ALNUM),
                    "address": {"country_code": "US"},
                },
                links=[
                    {"href": order_url, "rel": "self", "method": "GET"},
                    {"href": order_url, "rel": "update", "method": "PATCH"},
                    {"href": f"{order_url}/capture", "rel": "capture", "method": "POST"},
                ],
                update_time=iso_seconds(),
            )
            return self._webhook(
                "CHECKOUT.ORDER.APPROVED", "checkout-order", copy.deepcopy(order), "An order has been approved by buyer"
            )
        if outcome == "failure":
            if captured:
                raise SettleError(409, f"PayPal order {ref} is already captured; settle a refund instead")
            capture = self._capture_object(order, "DECLINED", unit["amount"]["value"])
            unit["payments"] = {"captures": [capture]}
            order.update(status="COMPLETED", update_time=iso_seconds())
            return self._webhook(
                "PAYMENT.CAPTURE.DENIED",
                "capture",
                self._capture_resource(order, capture),
                f"A payment capture for {unit['amount']['value']} {code} was denied",
            )
        if outcome in ("dispute", "dispute_won", "dispute_lost"):
            return self._send_in_order(self._dispute_webhooks(order, outcome, amount))
        if not captured:
            raise SettleError(409, f"PayPal order {ref} has no completed capture to refund")
        capture = captures[0]
        remaining = to_minor(capture["amount"]["value"], code, digits) - extra["refunded"]
        refund = settle_minor(amount, code, digits) if amount else remaining
        if not 0 < refund <= remaining:
            raise SettleError(409, f"PayPal order {ref} has {major(remaining, code, digits)} {code} left to refund")
        copied = {key: capture[key] for key in ("custom_id", "invoice_id") if key in capture}
        return self._refund_made(order, capture, refund, copied)[1]

    # -- disputes ---------------------------------------------------------------------------------------------

    def _dispute_webhooks(self, order: dict[str, Any], outcome: str, amount: str | None) -> list[Webhook]:
        """Open, win or lose the dispute of the order's capture; the webhooks PayPal sends for that, in order."""
        ref = order["id"]
        extra = self.extra[ref]
        captures = order["purchase_units"][0].get("payments", {}).get("captures", [])
        dispute = extra.get("dispute")
        if outcome == "dispute":
            if not captures or captures[0]["status"] not in ("COMPLETED", "PARTIALLY_REFUNDED"):
                raise SettleError(409, f"PayPal order {ref} has no completed capture to dispute")
            if dispute is not None and dispute["status"] != "RESOLVED":
                raise SettleError(409, f"PayPal order {ref} is already disputed ({dispute['dispute_id']})")
            capture = captures[0]
            code = capture["amount"]["currency_code"]
            digits = _CURRENCY_DIGITS[code]
            gross = to_minor(capture["amount"]["value"], code, digits)
            disputed = settle_minor(amount, code, digits) if amount else gross
            if disputed > gross:
                raise SettleError(409, f"PayPal order {ref} was captured for {capture['amount']['value']} {code} only")
            dispute = self._dispute_object(capture, major(disputed, code, digits))
            self.store("disputes", dispute["dispute_id"], dispute, order_id=ref, capture_id=capture["id"])
            extra["dispute"] = dispute  # the same object
            summary = f"A new dispute opened with Case # {dispute['dispute_id']}"
            return [self._webhook("CUSTOMER.DISPUTE.CREATED", "dispute", copy.deepcopy(dispute), summary)]
        if dispute is None or dispute["status"] == "RESOLVED":
            raise SettleError(409, f"PayPal order {ref} has no open dispute to decide")
        buyer = outcome == "dispute_lost"
        resolved: dict[str, Any] = {"outcome_code": "RESOLVED_BUYER_FAVOUR" if buyer else "RESOLVED_SELLER_FAVOUR"}
        if buyer:
            resolved["amount_refunded"] = copy.deepcopy(dispute["dispute_amount"])
        dispute.update(status="RESOLVED", dispute_outcome=resolved, update_time=iso_ms())
        dispute.pop("seller_response_due_date", None)
        summary = f"A dispute was resolved with case # {dispute['dispute_id']}"
        webhooks = [self._webhook("CUSTOMER.DISPUTE.RESOLVED", "dispute", copy.deepcopy(dispute), summary)]
        if buyer:
            reversal = self._reversal(order, captures[0], dispute)
            if reversal is not None:
                webhooks.append(reversal)
        return webhooks

    def _dispute_object(self, capture: dict[str, Any], value: str) -> dict[str, Any]:
        """A claim the buyer opened about `capture`, for `value` of its currency, waiting for the seller."""
        dispute_id = f"PP-D-{number_id(6)}"
        now = iso_ms()
        code = capture["amount"]["currency_code"]
        transaction: dict[str, Any] = {
            "buyer_transaction_id": token(17, UPPER_ALNUM),
            "seller_transaction_id": capture["id"],
            "create_time": capture["create_time"],
            "transaction_status": "COMPLETED",
            "gross_amount": copy.deepcopy(capture["amount"]),
            "buyer": {"name": "Sim Buyer"},
            "seller": {"email": "merchant@example.com", "merchant_id": "SIMMERCHANT01", "name": "Sim Store"},
            "items": [],
            "seller_protection_eligible": True,
        }
        if capture.get("invoice_id"):
            transaction["invoice_number"] = capture["invoice_id"]
        if capture.get("custom_id"):
            transaction["custom"] = capture["custom_id"]
        return {
            "dispute_id": dispute_id,
            "create_time": now,
            "update_time": now,
            "disputed_transactions": [transaction],
            "reason": DISPUTE_REASON,
            "status": "WAITING_FOR_SELLER_RESPONSE",
            "dispute_amount": {"currency_code": code, "value": value},
            "dispute_life_cycle_stage": "CHARGEBACK",
            "dispute_channel": "INTERNAL",
            "seller_response_due_date": iso_seconds(),
            "messages": [{"posted_by": "BUYER", "time_posted": now, "content": "I never received it."}],
            "links": [
                {"href": f"{self.base_url}/paypal/v1/customer/disputes/{dispute_id}", "rel": "self", "method": "GET"}
            ],
        }

    def _reversal(self, order: dict[str, Any], capture: dict[str, Any], dispute: dict[str, Any]) -> Webhook | None:
        """PayPal takes the disputed amount (what is left of it after refunds) back from the capture: a reversal, kept
        with the order and counted as refunds are, and the PAYMENT.CAPTURE.REVERSED it sends (None: nothing left)."""
        extra = self.extra[order["id"]]
        code = capture["amount"]["currency_code"]
        digits = _CURRENCY_DIGITS[code]
        gross = to_minor(capture["amount"]["value"], code, digits)
        taken = min(to_minor(dispute["dispute_amount"]["value"], code, digits), gross - extra["refunded"])
        if taken <= 0:
            return None
        extra["refunded"] += taken
        capture.update(
            status="REFUNDED" if extra["refunded"] == gross else "PARTIALLY_REFUNDED", update_time=iso_seconds()
        )
        value = major(taken, code, digits)
        reversal_id = token(17, UPPER_ALNUM)
        reversal = {
            "id": reversal_id,
            "amount": {"currency_code": code, "value": value},
            "seller_payable_breakdown": {
                "gross_amount": {"currency_code": code, "value": value},
                "paypal_fee": {"currency_code": code, "value": major(0, code, digits)},
                "net_amount": {"currency_code": code, "value": value},
                "total_refunded_amount": {"currency_code": code, "value": major(extra["refunded"], code, digits)},
            },
            "note_to_payer": "Payment reversed",
            "status": "COMPLETED",
            "create_time": iso_seconds(),
            "update_time": iso_seconds(),
            "links": [
                {"href": f"{self.base_url}/paypal/v2/payments/refunds/{reversal_id}", "rel": "self", "method": "GET"},
                {"href": capture["links"][0]["href"], "rel": "up", "method": "GET"},
            ],
        }
        extra.setdefault("reversals", []).append(reversal)
        summary = f"A {value} {code} capture payment was reversed"
        return self._webhook("PAYMENT.CAPTURE.REVERSED", "refund", copy.deepcopy(reversal), summary)

    def _send_in_order(self, webhooks: list[Webhook]) -> Webhook:
        """The first webhook, for `settle()` to answer; the others are delivered after it, in order, outside the
        simulator's lock (as the capture's and a refund's are)."""
        first, *rest = webhooks
        if rest:
            self._host.later(FOLLOW_UP_WEBHOOK_DELAY_SECONDS, rest)
        return first


GATEWAY = PayPal  # what the server loads for this registry entry
