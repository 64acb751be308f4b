"""Security checks (issue 6 §3), through the real handlers:

- every route of template.yaml x every kind of caller (docs/api.md#identity-and-access), with exact status
  codes, and a refused call changes nothing;
- cross-tenant: another customer's payment, cursor, Idempotency-Key, operator path -> 404/400/own answer,
  never the other customer's data;
- replayed webhooks, also under a new unsigned event id, change nothing;
- card data stays out of answers, stored items and logs on validation-error paths, and out of exports;
- formulas typed into API fields are neutralised in the export; the link's advertised expiry is its real one.

Already covered elsewhere (not repeated here): forged/tampered/unsigned webhooks and Stripe's replay window
(test_webhooks.py), card data on the success/decline/Luhn paths (test_gateway_methods.py), the CSV formula
rules and the link's X-Amz-Expires (test_csv_format.py, test_exports.py), tokens signed with another secret
or `alg: none` (tests/e2e/test_security_http.py: only the HTTP edge checks signatures).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from local.template import functions, load_template, routes
from payments.config import settings
from payments.models import PaymentStatus
from payments.status import Cause
from payments.store import PaymentStore
from payments.store.records import AutoTopup
from tests.conftest import aws_client, claims_for, http_event, invoke, load_function
from tests.integration import webhook_events as events
from tests.integration.helpers import balances, post, stored_items, stored_payments

pytestmark = pytest.mark.usefixtures("aws", "gateway_sim")
TEMPLATE = load_template()
FUNCTION_DIRS = {name: spec.code_dir.name for name, spec in functions(TEMPLATE).items()}


# ---- callers --------------------------------------------------------------------------------------

CALLERS: dict[str, Callable[[str], dict[str, Any] | None]] = {
    "admin": lambda customer: claims_for(customer, "admin"),
    "finance": lambda customer: claims_for(customer, "finance"),
    "support": lambda customer: claims_for(customer, "support"),
    "operator": lambda customer: claims_for(None, "operator", sub="op-1"),
    "no group": lambda customer: claims_for(customer),
    "no customer claim": lambda customer: claims_for(None, "admin", "finance"),
    "no token": lambda customer: None,
}
OK = "ok"  # the route's success status
READERS = {"admin": OK, "finance": OK, "support": OK, "operator": 403, "no group": 403, "no customer claim": 403}
PAYERS = {**READERS, "support": 403}
OPERATORS = {"admin": 403, "finance": 403, "support": 403, "operator": OK, "no group": 403, "no customer claim": 403}
ANYONE = dict.fromkeys(CALLERS, OK)


# ---- one request per route, built on the customer's own data --------------------------------------


def bank_transfer(customer: str, amount: str = "10.00", description: str | None = None) -> dict[str, Any]:
    body = {"method": "bank_transfer", "amount": amount, "currency": "EUR"}
    if description is not None:
        body["description"] = description
    status, answer = post("make_payment", "/payments", body, customer=customer)
    assert status == 201, answer
    return answer["payment"]


def export(customer: str) -> dict[str, Any]:
    status, answer = post("export_csv", "/payments/exports", {}, customer=customer, key=None)
    assert status == 201, answer
    return answer


def signed_webhook(customer: str) -> tuple[bytes, dict[str, str]]:
    status, answer = post(
        "make_payment", "/payments", {"method": "razorpay", "amount": "499.00", "currency": "INR"}, customer=customer
    )
    assert status == 201, answer
    delivery = events.razorpay("success", PaymentStore().require(customer, answer["payment"]["id"], consistent=True))
    return delivery.body, delivery.headers


Request = dict[str, Any]  # method, path, route, body, headers, path_params, ok


def request_for(route_key: str, customer: str) -> Request:
    """A request the right caller gets a 2xx for, on `customer`'s own data."""
    admin = f"/admin/customers/{customer}"
    if route_key in ("GET /payments", "GET /payments/summary", "GET /balance", "GET /openapi.json"):
        return {"path": route_key.split()[1], "ok": 200}
    if route_key == "GET /payments/{id}/receipt":  # a completed payment's PDF
        payment_id = bank_transfer(customer)["id"]
        PaymentStore().transition(customer, payment_id, PaymentStatus.COMPLETED, Cause.OPERATOR, "operator:o")
        return {"path": f"/payments/{payment_id}/receipt", "path_params": {"id": payment_id}, "ok": 200}
    if route_key == "GET /payments/{id}":
        payment_id = bank_transfer(customer)["id"]
        return {"path": f"/payments/{payment_id}", "path_params": {"id": payment_id}, "ok": 200}
    if route_key == "GET /payments/{id}/receipt":  # a completed payment's
        payment_id = bank_transfer(customer)["id"]
        PaymentStore().transition(customer, payment_id, PaymentStatus.COMPLETED, Cause.OPERATOR, "operator:o")
        return {"path": f"/payments/{payment_id}/receipt", "path_params": {"id": payment_id}, "ok": 200}
    if route_key == "POST /payments":
        body = {"method": "bank_transfer", "amount": "5.00", "currency": "EUR"}
        return {"path": "/payments", "body": body, "headers": {"Idempotency-Key": uuid.uuid4().hex}, "ok": 201}
    if route_key == "POST /payments/exports":
        return {"path": "/payments/exports", "body": {}, "ok": 201}
    if route_key == "GET /payments/exports/{export_id}":
        export_id = export(customer)["export_id"]
        return {"path": f"/payments/exports/{export_id}", "path_params": {"export_id": export_id}, "ok": 200}
    if route_key == "POST /webhooks/{provider}":
        body, headers = signed_webhook(customer)
        return {"path": "/webhooks/razorpay", "path_params": {"provider": "razorpay"}, "raw": body,
                "headers": headers, "ok": 200}  # fmt: skip
    if route_key == "POST /admin/customers/{customer_id}/payments/{id}/refunds":
        payment_id = bank_transfer(customer)["id"]
        PaymentStore().transition(customer, payment_id, PaymentStatus.COMPLETED, Cause.OPERATOR, "operator:o")
        return {"path": f"{admin}/payments/{payment_id}/refunds", "body": {"amount": "1.00"},
                "path_params": {"customer_id": customer, "id": payment_id}, "ok": 201,
                "headers": {"Idempotency-Key": uuid.uuid4().hex}}  # fmt: skip
    if route_key.startswith("POST /admin/customers/{customer_id}/payments/{id}/"):
        payment_id = bank_transfer(customer)["id"]
        action = route_key.rsplit("/", 1)[1]
        return {"path": f"{admin}/payments/{payment_id}/{action}", "body": {"note": "paid in"},
                "path_params": {"customer_id": customer, "id": payment_id}, "ok": 200}  # fmt: skip
    if route_key == "POST /admin/customers/{customer_id}/charges":
        return {"path": f"{admin}/charges", "path_params": {"customer_id": customer}, "ok": 201,
                "body": {"amount": "3.00", "currency": "EUR", "description": "SIM card"},
                "headers": {"Idempotency-Key": uuid.uuid4().hex}}  # fmt: skip
    if route_key == "POST /admin/vouchers":
        return {"path": "/admin/vouchers", "body": {"amount": "5.00", "currency": "EUR"}, "ok": 201}
    if route_key == "GET /payment-options":
        return {"path": "/payment-options", "ok": 200}
    if route_key in ("GET /admin/customers/{customer_id}/settings", "PUT /admin/customers/{customer_id}/settings"):
        body = {"body": {"email_receipts": True}} if route_key.startswith("PUT") else {}
        return {"path": f"{admin}/settings", "path_params": {"customer_id": customer}, "ok": 200, **body}
    if route_key == "GET /alerts/low-balance":
        return {"path": "/alerts/low-balance", "ok": 200}
    if route_key == "PUT /alerts/low-balance":
        return {"path": "/alerts/low-balance", "body": {"threshold": "5.00"}, "ok": 200}
    if route_key == "POST /payment-methods":
        return {"path": "/payment-methods", "body": {"payment_method": "pm_card_visa"}, "ok": 201,
                "headers": {"Idempotency-Key": uuid.uuid4().hex}}  # fmt: skip
    if route_key == "GET /payment-methods":
        return {"path": "/payment-methods", "ok": 200}
    if route_key.startswith(("DELETE /payment-methods/", "POST /payment-methods/")):
        status, card = post("account", "/payment-methods", {"payment_method": "pm_card_visa"}, customer=customer)
        assert status == 201, card
        suffix = "/default" if route_key.endswith("/default") else ""
        return {"path": f"/payment-methods/{card['id']}{suffix}", "path_params": {"id": card["id"]},
                "ok": 204 if route_key.startswith("DELETE") else 200}  # fmt: skip
    if route_key == "GET /auto-topup":
        return {"path": "/auto-topup", "ok": 200}
    if route_key == "PUT /auto-topup":  # off: needs no saved card
        return {"path": "/auto-topup", "body": {"enabled": False}, "ok": 200}
    if route_key == "POST /auto-topup/authenticate":  # the caller's own: nothing waits, 409
        return {"path": "/auto-topup/authenticate", "ok": 409}
    if route_key == "GET /admin/customers/{customer_id}/auto-topup":
        return {"path": f"{admin}/auto-topup", "path_params": {"customer_id": customer}, "ok": 200}
    if route_key == "POST /admin/customers/{customer_id}/auto-topup/disable":
        PaymentStore().write_auto_topup(customer, AutoTopup(True, "card_1", "EUR", 500, 2000), seen_rev=None)
        return {"path": f"{admin}/auto-topup/disable", "path_params": {"customer_id": customer}, "ok": 200}
    hooks = "/admin/webhook-endpoints"
    endpoint = {"url": "https://8.8.8.8/hooks", "events": ["*"], "customer_id": customer}
    if route_key == f"POST {hooks}":
        return {"path": hooks, "body": endpoint, "ok": 201}
    if route_key == f"GET {hooks}":
        return {"path": hooks, "ok": 200}
    if route_key.startswith(("DELETE /admin/webhook-endpoints/", "GET /admin/webhook-endpoints/")):
        status, created = call(f"POST {hooks}", {"path": hooks, "body": endpoint}, claims_for(None, "operator"))
        assert status == 201, created
        path = f"{hooks}/{created['id']}" + ("/deliveries" if route_key.endswith("/deliveries") else "")
        return {
            "path": path,
            "path_params": {"id": created["id"]},
            "ok": 204 if route_key.startswith("DELETE") else 200,
        }
    raise AssertionError(f"no request for {route_key}: add it, and its row in EXPECTED")


EXPECTED = {
    "GET /payments": READERS,
    "GET /payments/{id}": READERS,
    "GET /payments/{id}/receipt": READERS,
    "GET /payments/summary": READERS,
    "GET /balance": READERS,
    "GET /openapi.json": ANYONE,
    "POST /payments": PAYERS,
    "POST /payments/exports": PAYERS,
    "GET /payments/exports/{export_id}": PAYERS,
    "POST /webhooks/{provider}": ANYONE,  # the gateway's signature is the credential; a token adds nothing
    "POST /admin/customers/{customer_id}/payments/{id}/complete": OPERATORS,
    "POST /admin/customers/{customer_id}/payments/{id}/cancel": OPERATORS,
    "POST /admin/customers/{customer_id}/payments/{id}/refunds": OPERATORS,
    "POST /admin/customers/{customer_id}/charges": OPERATORS,
    "POST /admin/vouchers": OPERATORS,
    "GET /payment-options": READERS,
    "GET /admin/customers/{customer_id}/settings": OPERATORS,
    "PUT /admin/customers/{customer_id}/settings": OPERATORS,
    "GET /alerts/low-balance": READERS,  # the caller's own alert: docs/alerts.md
    "PUT /alerts/low-balance": PAYERS,
    "POST /payment-methods": PAYERS,  # saved cards: docs/saved-cards.md
    "GET /payment-methods": READERS,
    "DELETE /payment-methods/{id}": PAYERS,
    "POST /payment-methods/{id}/default": PAYERS,
    "GET /auto-topup": READERS,  # the caller's own: docs/auto-topup.md
    "PUT /auto-topup": PAYERS,
    "POST /auto-topup/authenticate": PAYERS,
    "GET /admin/customers/{customer_id}/auto-topup": OPERATORS,
    "POST /admin/customers/{customer_id}/auto-topup/disable": OPERATORS,
    "POST /admin/webhook-endpoints": OPERATORS,
    "GET /admin/webhook-endpoints": OPERATORS,
    "DELETE /admin/webhook-endpoints/{id}": OPERATORS,
    "GET /admin/webhook-endpoints/{id}/deliveries": OPERATORS,
}
ROUTES = {route.route_key: route for route in routes(TEMPLATE)}


def call(route_key: str, request: Request, claims: dict[str, Any] | None) -> tuple[int, Any]:
    route = ROUTES[route_key]
    raw = request.get("raw")
    body = raw.decode() if raw is not None else (json.dumps(request["body"]) if "body" in request else None)
    event = http_event(
        route.method,
        request["path"],
        route=route.path,
        claims=claims,
        body=body,
        headers=request.get("headers"),
        path_params=request.get("path_params"),
    )
    return invoke(load_function(FUNCTION_DIRS[route.function]), event)


def test_the_matrix_names_every_route_of_the_template() -> None:
    assert set(EXPECTED) == set(ROUTES)


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("route_key", sorted(EXPECTED))
def test_every_caller_on_every_route(customer: str, route_key: str, caller: str) -> None:
    request = request_for(route_key, customer)
    public = ROUTES[route_key].public
    expected = EXPECTED[route_key].get(caller, 401)  # "no token": API Gateway's authorizer, and the handler too
    if expected == OK or (caller == "no token" and public):
        expected = request["ok"]
    before = stored_items(customer)
    status, body = call(route_key, request, CALLERS[caller](customer))
    assert status == expected, body
    if status >= 400:
        assert isinstance(body["message"], str) and body["message"], body
        assert stored_items(customer) == before  # a refused call changes nothing


# ---- cross-tenant ---------------------------------------------------------------------------------


def _text_of(answer: Any) -> str:
    return json.dumps(answer)


def test_another_customers_payment_is_404_with_nothing_of_it(customer: str) -> None:
    theirs = bank_transfer(customer, "77.70", description="Alice's secret top-up")
    intruder = f"{customer}-b"
    for group in ("admin", "finance", "support"):
        event = http_event(
            "GET",
            f"/payments/{theirs['id']}",
            route="/payments/{id}",
            claims=claims_for(intruder, group),
            path_params={"id": theirs["id"]},
        )
        status, body = invoke(load_function("list_payments"), event)
        assert status == 404, body
        text = _text_of(body)
        for secret in ("77.70", "Alice", theirs["reference"], customer):
            assert secret not in text
    listing = http_event("GET", "/payments", claims=claims_for(intruder, "finance"))
    status, body = invoke(load_function("list_payments"), listing)
    assert (status, body) == (200, {"items": [], "next_cursor": None})
    assert balances(intruder) == {}


def test_another_customers_cursor_is_400_with_nothing_of_theirs(customer: str) -> None:
    for _ in range(3):
        bank_transfer(customer, description="Alice only")
    handler = load_function("list_payments")
    first = http_event("GET", "/payments", claims=claims_for(customer, "support"), query={"limit": "1"})
    status, page = invoke(handler, first)
    assert status == 200 and page["next_cursor"]
    intruder = f"{customer}-b"
    bank_transfer(intruder, description="Bob's own")
    event = http_event(
        "GET", "/payments", claims=claims_for(intruder, "support"), query={"limit": "1", "cursor": page["next_cursor"]}
    )
    status, body = invoke(handler, event)
    assert status == 400, body
    assert "Alice" not in _text_of(body) and customer not in _text_of(body)


def test_the_same_idempotency_key_in_two_accounts_makes_two_payments(customer: str) -> None:
    """Keys are per customer: B reusing A's key must get B's own payment, never A's stored answer."""
    key = "order-42"
    body = {"method": "bank_transfer", "amount": "10.00", "currency": "EUR"}
    status_a, answer_a = post("make_payment", "/payments", body, customer=customer, key=key)
    status_b, answer_b = post("make_payment", "/payments", body, customer=f"{customer}-b", key=key)
    assert (status_a, status_b) == (201, 201)
    assert answer_a["payment"]["id"] != answer_b["payment"]["id"]
    assert answer_a["next_action"]["reference"] != answer_b["next_action"]["reference"]
    assert [p["id"]["S"] for p in stored_payments(f"{customer}-b")] == [answer_b["payment"]["id"]]

    charge = {"amount": "3.00", "currency": "EUR", "description": "SIM card"}
    for owner in (customer, f"{customer}-b"):
        status, answer = post(
            "admin",
            f"/admin/customers/{owner}/charges",
            charge,
            customer=None,
            groups=("operator",),
            key=key,
            route="/admin/customers/{customer_id}/charges",
            path_params={"customer_id": owner},
        )
        assert status == 201, answer
    assert balances(customer) == balances(f"{customer}-b") == {"EUR": "-3.00"}


@pytest.mark.parametrize("action", ["complete", "cancel"])
def test_an_operator_naming_the_wrong_customer_finds_nothing(customer: str, action: str) -> None:
    theirs = bank_transfer(customer)
    other = f"{customer}-b"
    status, body = post(
        "admin",
        f"/admin/customers/{other}/payments/{theirs['id']}/{action}",
        None,
        customer=None,
        groups=("operator",),
        key=None,
        route=f"/admin/customers/{{customer_id}}/payments/{{id}}/{action}",
        path_params={"customer_id": other, "id": theirs["id"]},
    )
    assert status == 404, body
    assert [p["status"]["S"] for p in stored_payments(customer)] == ["pending"]
    assert balances(customer) == {} and balances(other) == {}


# ---- replayed webhooks ----------------------------------------------------------------------------


def _deliver(provider: str, delivery: events.Delivery) -> tuple[int, Any]:
    event = http_event(
        "POST",
        f"/webhooks/{provider}",
        route="/webhooks/{provider}",
        body=delivery.body.decode(),
        headers=delivery.headers,
        path_params={"provider": provider},
    )
    return invoke(load_function("webhooks"), event)


GATEWAY_PAYMENTS = {
    "stripe": {"method": "credit_card", "amount": "100.00", "currency": "EUR",
               "payment_method": "pm_card_authenticationRequired"},  # pending until Stripe's webhook
    "razorpay": {"method": "razorpay", "amount": "100.00", "currency": "INR"},
    "paystack": {"method": "paystack", "amount": "100.00", "currency": "NGN"},
    "nowpayments": {"method": "nowpayments", "amount": "100.00", "currency": "USD"},
}  # fmt: skip


@pytest.mark.parametrize("provider", sorted(GATEWAY_PAYMENTS))
def test_replayed_webhooks_change_nothing_even_under_a_new_unsigned_event_id(customer: str, provider: str) -> None:
    status, answer = post("make_payment", "/payments", GATEWAY_PAYMENTS[provider], customer=customer)
    assert status == 201 and answer["payment"]["status"] == "pending", answer
    payment = PaymentStore().require(customer, answer["payment"]["id"], consistent=True)
    currency = payment.currency
    success = events.SIGNERS[provider]("success", payment)
    refund = events.SIGNERS[provider]("refund", payment, amount_minor=2500)
    assert _deliver(provider, success)[1]["outcome"] == "completed"
    assert _deliver(provider, refund)[1]["outcome"] == "refunded"
    settled = (balances(customer), len(stored_payments(customer)), stored_items(customer))
    assert settled[0] == {currency: "75.00"}

    replays = [success, refund, success]
    if provider == "razorpay":  # its event id travels in a header the signature does not cover
        for delivery in (success, refund):
            replays.append(events.Delivery(delivery.body, {**delivery.headers, "X-Razorpay-Event-Id": "evt_replay1"}))
    for delivery in replays:
        status, body = _deliver(provider, delivery)
        assert status == 200 and body["outcome"] in ("duplicate", "unchanged"), body
    assert balances(customer) == {currency: "75.00"}
    assert len(stored_payments(customer)) == settled[1] == 2  # the payment and one refund
    history = PaymentStore().require(customer, payment.id, consistent=True).history
    assert [h.status.value for h in history] == ["pending", "completed"]


# ---- card data on the error paths -----------------------------------------------------------------

PAN, CVC = "4242424242424242", "9731"
BAD_CARD_BODIES = [
    {"exp_month": "13"},  # domain check
    {"exp_month": ["12"]},  # schema check (Powertools/pydantic validation)
    {"cvc": {"nested": CVC}, "number": [PAN]},
    {"exp_year": "20x1", "number": PAN[:-1] + "1"},  # and a Luhn failure
]


@pytest.mark.parametrize("change", BAD_CARD_BODIES)
def test_card_data_is_not_echoed_stored_or_logged_when_a_request_is_refused(
    customer: str, change: dict[str, Any], capfd, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    card = {"number": PAN, "exp_month": 12, "exp_year": 2031, "cvc": CVC, **change}
    body = {"method": "credit_card", "amount": "10.00", "currency": "USD", "card": card}
    status, answer = post("make_payment", "/payments", body, customer=customer)
    assert status == 422, answer
    out, err = capfd.readouterr()
    logged = out + err + "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    numbers = {PAN, str(card["number"][0] if isinstance(card["number"], list) else card["number"])}
    for where in (json.dumps(answer), logged, json.dumps(stored_items(customer))):
        assert not any(number in where or number[-8:] in where for number in numbers)
        assert not re.search(r"cvc\W{0,12}" + CVC, where)


def test_card_numbers_never_reach_an_export(customer: str) -> None:
    card = {"number": PAN, "exp_month": 12, "exp_year": 2031, "cvc": CVC}
    status, answer = post(
        "make_payment", "/payments", {"method": "credit_card", "amount": "10.00", "currency": "USD", "card": card},
        customer=customer,
    )  # fmt: skip
    assert status == 201, answer
    text = requests.get(export(customer)["url"], timeout=30).text
    assert answer["payment"]["id"] in text  # the right file
    assert PAN not in text and CVC not in text


# ---- exports --------------------------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1", " =1+1", "＝1+1"]


def test_formulas_typed_into_api_fields_are_neutralised_in_the_export(customer: str) -> None:
    for text in FORMULAS:
        bank_transfer(customer, description=text)
        status, body = post(
            "admin",
            f"/admin/customers/{customer}/charges",
            {"amount": "1.00", "currency": "EUR", "description": text},
            customer=None,
            groups=("operator",),
            route="/admin/customers/{customer_id}/charges",
            path_params={"customer_id": customer},
        )
        assert status == 201, body
    rows = list(csv.reader(io.StringIO(requests.get(export(customer)["url"], timeout=30).text, newline="")))
    descriptions = [row[4] for row in rows[1:]]
    assert len(descriptions) == 2 * len(FORMULAS)
    for cell in descriptions:
        assert cell.startswith("'"), cell  # a spreadsheet shows it as text
        assert cell.lstrip("'").strip() in {f.strip() for f in FORMULAS}


def _link_expiry(url: str) -> datetime:
    """When a SigV4 presigned URL stops working: its signing time plus X-Amz-Expires."""
    query = parse_qs(urlsplit(url).query)
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return signed_at + timedelta(seconds=int(query["X-Amz-Expires"][0]))


def test_the_advertised_expiry_is_the_links_real_one_and_at_most_15_minutes(customer: str) -> None:
    bank_transfer(customer)
    started = export(customer)
    event = http_event(
        "GET",
        f"/payments/exports/{started['export_id']}",
        route="/payments/exports/{export_id}",
        claims=claims_for(customer, "finance"),
        path_params={"export_id": started["export_id"]},
    )
    status, described = invoke(load_function("export_csv"), event)
    assert status == 200, described
    for answer in (started, described):
        query = parse_qs(urlsplit(answer["url"]).query)
        assert int(query["X-Amz-Expires"][0]) <= settings().export_url_seconds == 900
        advertised = datetime.fromisoformat(answer["expires_at"].replace("Z", "+00:00"))
        assert abs((advertised - _link_expiry(answer["url"])).total_seconds()) <= 1, answer


# ---- nothing derived from card data at rest (issue 11 §3) ------------------------------------------

DIGESTS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "blake2b", "blake2s", "sha3_256")


def unkeyed_digests(secret: bytes) -> set[str]:
    """Every common unkeyed digest of `secret`, as hex and base64, and those hashed once more as text (a digest
    of a JSON-quoted digest is what Powertools stores as `validation` for a payload of one digest)."""
    import base64
    import hashlib

    found: set[str] = set()
    for name in DIGESTS:
        raw = hashlib.new(name, secret).digest()
        hexed = raw.hex()
        found |= {hexed, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("=")}
        for wrapped in (hexed, json.dumps(hexed), json.dumps([hexed])):
            found |= {hashlib.new(again, wrapped.encode()).hexdigest() for again in DIGESTS}
    return found


def every_item_of_every_table() -> str:
    client = aws_client("dynamodb")
    text = []
    for table in client.list_tables()["TableNames"]:
        for page in client.get_paginator("scan").paginate(TableName=table):  # a test may Scan; the service never does
            text.append(json.dumps(page["Items"]))
    return "\n".join(text)


@pytest.mark.parametrize(
    ("number", "cvc", "outcome"),
    [("4242424242424242", "737", 201), ("4000000000000002", "3141", 402), ("4000002500003155", "4321", 201)],
    ids=["succeeds", "declined", "needs-3ds"],
)
@pytest.mark.parametrize("route", ["POST /payments", "POST /payment-methods"])
def test_no_unkeyed_digest_of_card_data_is_stored_or_logged(
    customer: str, number: str, cvc: str, outcome: int, route: str, capfd, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    card = {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": cvc}
    if route == "POST /payment-methods":  # saving the card (docs/saved-cards.md)
        from payments.saved_cards import SaveCardBody as Body

        body: dict[str, Any] = {"card": card}
        status, answer = post("account", "/payment-methods", json.dumps(body), customer=customer)
    else:
        from payments.checkout import PaymentBody as Body  # type: ignore[assignment]

        body = {"method": "credit_card", "amount": "12.34", "currency": "USD", "card": card}
        status, answer = post("make_payment", "/payments", json.dumps(body), customer=customer)
    exact = json.dumps(body).encode()
    assert status == outcome, answer
    canonical = Body.model_validate(body).model_dump_json(exclude_none=True).encode()
    secrets_ = {
        "PAN": number.encode(),
        "PAN+CVC": (number + cvc).encode(),
        "CVC-PAN": f"{cvc}{number}".encode(),
        "request body": exact,
        "request body as parsed": canonical,
    }
    out, err = capfd.readouterr()
    logged = out + err + "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    for where, text in (("stored", every_item_of_every_table()), ("logged", logged)):
        assert number not in text and f'"{cvc}"' not in text, where
        for what, secret in secrets_.items():
            leaked = [d for d in unkeyed_digests(secret) if d in text]
            assert not leaked, f"an unkeyed digest of the {what} is {where}: {leaked[:2]}"
