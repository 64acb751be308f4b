"""The input side of "no input yields a 5xx" (docs/errors.md), rule by rule, on every route it applies to.

Routes come from template.yaml; "takes a JSON body" is what the served OpenAPI document says (a
`requestBody` in application/json). Each refusal is checked for its status, its exact message, the one
error shape, and that nothing was stored: the customer's partition, vouchers issued by the test's
operator, and export objects in S3.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from local.template import functions, load_template, routes
from payments.config import settings
from payments.listing import OPENAPI_FILE
from payments.store import PaymentStore
from payments.store.records import AutoTopup
from tests.conftest import aws_client, claims_for, http_event, invoke, load_function
from tests.integration import webhook_events as events
from tests.integration.helpers import post, stored_items, stored_payments

pytestmark = pytest.mark.usefixtures("aws", "gateway_sim")  # the saved-card routes call Stripe (the simulator)
TEMPLATE = load_template()
ROUTES = {route.route_key: route for route in routes(TEMPLATE)}
FUNCTION_DIRS = {name: spec.code_dir.name for name, spec in functions(TEMPLATE).items()}
OPENAPI = json.loads(OPENAPI_FILE.read_text())
WEBHOOK = "POST /webhooks/{provider}"
# Actions on what the path or the caller names: no body is read.
NO_BODY_ACTIONS = {"POST /payment-methods/{id}/default", "POST /auto-topup/authenticate"}


def _takes_json_body(route_key: str) -> bool:
    route = ROUTES[route_key]
    operation = OPENAPI["paths"][route.path][route.method.lower()]
    return "application/json" in operation.get("requestBody", {}).get("content", {})


BODY_ROUTES = sorted(key for key in ROUTES if _takes_json_body(key))
OTHER_ROUTES = sorted(set(ROUTES) - set(BODY_ROUTES))

JSON_ONLY = "send the body as application/json (Content-Type: application/json)"
NOT_UTF8 = "request body is not valid UTF-8"
TOO_DEEP = "request body is nested too deeply (at most 64 levels)"
NOT_JSON = "request body is not valid JSON"


def test_every_post_and_put_route_but_the_webhook_takes_a_json_body() -> None:
    """Guards the parametrisations below: if the document stopped describing bodies they would test nothing."""
    assert set(BODY_ROUTES) == {
        key for key in ROUTES if key.startswith(("POST ", "PUT ")) and key != WEBHOOK and key not in NO_BODY_ACTIONS
    }
    assert WEBHOOK in OTHER_ROUTES and "GET /payments" in OTHER_ROUTES


# ---- the error shape -----------------------------------------------------------------------------


def assert_error(
    body: Any, message: str | None = None, *, field: str | None = None, fields: list[str | None] | None = None
) -> None:
    """The one error shape: {"message", "errors": [{"field", "message"}], "field" (only when about a field)}."""
    assert isinstance(body, dict), body
    assert isinstance(body["message"], str) and body["message"], body
    if message is not None:
        assert body["message"] == message, body
    assert isinstance(body["errors"], list), body
    for error in body["errors"]:
        assert set(error) == {"field", "message"}, body
        assert error["field"] is None or isinstance(error["field"], str), body
        assert isinstance(error["message"], str) and error["message"], body
    first = body["errors"][0]["field"] if body["errors"] else None
    if first is None:
        assert "field" not in body, body
    else:
        assert body["field"] == first, body
    if field is not None:
        assert body.get("field") == field, body
        assert field in body["message"] or any(field in e["message"] for e in body["errors"]), body
    if fields is not None:
        assert [e["field"] for e in body["errors"]] == fields, body
    assert "fields" not in body and "detail" not in body and "statusCode" not in body, body


# ---- one valid request per route, on the customer's own data ------------------------------------


def operator_sub(customer: str) -> str:
    return f"op-{customer}"


@dataclass
class Call:
    route_key: str
    path: str
    body: Any = None
    path_params: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    claims: dict[str, Any] | None = None
    ok: int = 200


def bank_transfer(customer: str) -> dict[str, Any]:
    status, answer = post(
        "make_payment",
        "/payments",
        {"method": "bank_transfer", "amount": "10.00", "currency": "EUR"},
        customer=customer,
    )
    assert status == 201, answer
    return answer["payment"]


def valid_call(route_key: str, customer: str) -> Call:
    payer = claims_for(customer, "finance")
    operator = claims_for(None, "operator", sub=operator_sub(customer))
    key = {"Idempotency-Key": uuid.uuid4().hex}
    admin = f"/admin/customers/{customer}"
    if route_key in ("GET /payments", "GET /payments/summary", "GET /balance", "GET /openapi.json"):
        return Call(route_key, route_key.split()[1], claims=payer)
    if route_key == "GET /payments/{id}":
        payment_id = bank_transfer(customer)["id"]
        return Call(route_key, f"/payments/{payment_id}", path_params={"id": payment_id}, claims=payer)
    if route_key == "GET /payments/{id}/receipt":  # a completed payment's: an operator completes a transfer
        payment_id = bank_transfer(customer)["id"]
        complete = "POST /admin/customers/{customer_id}/payments/{id}/complete"
        done = Call(complete, f"{admin}/payments/{payment_id}/complete", None,
                    path_params={"customer_id": customer, "id": payment_id}, claims=operator)  # fmt: skip
        assert send(done)[0] == 200
        return Call(route_key, f"/payments/{payment_id}/receipt", path_params={"id": payment_id}, claims=payer)
    if route_key == "POST /payments":
        body = {"method": "bank_transfer", "amount": "5.00", "currency": "EUR"}
        return Call(route_key, "/payments", body, headers=key, claims=payer, ok=201)
    if route_key == "POST /payments/exports":
        return Call(route_key, "/payments/exports", {}, claims=payer, ok=201)
    if route_key == "GET /payments/exports/{export_id}":
        status, answer = post("export_csv", "/payments/exports", {}, customer=customer, key=None)
        assert status == 201, answer
        export_id = answer["export_id"]
        return Call(route_key, f"/payments/exports/{export_id}", path_params={"export_id": export_id}, claims=payer)
    if route_key == WEBHOOK:  # unsigned: refused before anything is read
        return Call(route_key, "/webhooks/stripe", {}, path_params={"provider": "stripe"}, ok=400)
    if route_key == "POST /admin/customers/{customer_id}/payments/{id}/refunds":
        payment_id = bank_transfer(customer)["id"]  # completed by an operator, then refunded by hand
        done = Call(route_key, f"{admin}/payments/{payment_id}/complete", None,
                    path_params={"customer_id": customer, "id": payment_id}, claims=operator)  # fmt: skip
        assert send(done)[0] == 200
        return Call(route_key, f"{admin}/payments/{payment_id}/refunds", {"amount": "1.00", "reason": "goodwill"},
                    path_params={"customer_id": customer, "id": payment_id}, headers=key, claims=operator,
                    ok=201)  # fmt: skip
    if route_key.startswith("POST /admin/customers/{customer_id}/payments/{id}/"):
        payment_id = bank_transfer(customer)["id"]
        action = route_key.rsplit("/", 1)[1]
        return Call(route_key, f"{admin}/payments/{payment_id}/{action}", {"note": "paid in"},
                    path_params={"customer_id": customer, "id": payment_id}, claims=operator)  # fmt: skip
    if route_key == "POST /admin/customers/{customer_id}/charges":
        body = {"amount": "3.00", "currency": "EUR", "description": "SIM card"}
        return Call(route_key, f"{admin}/charges", body, path_params={"customer_id": customer}, headers=key,
                    claims=operator, ok=201)  # fmt: skip
    if route_key == "POST /admin/vouchers":
        return Call(route_key, "/admin/vouchers", {"amount": "5.00", "currency": "EUR"}, claims=operator, ok=201)
    if route_key == "GET /payment-options":
        return Call(route_key, "/payment-options", claims=payer)
    if route_key == "GET /admin/customers/{customer_id}/settings":
        return Call(route_key, f"{admin}/settings", path_params={"customer_id": customer}, claims=operator)
    if route_key == "PUT /admin/customers/{customer_id}/settings":
        return Call(route_key, f"{admin}/settings", {"min_payment": "1.00"}, path_params={"customer_id": customer},
                    claims=operator)  # fmt: skip
    if route_key == "GET /alerts/low-balance":
        return Call(route_key, "/alerts/low-balance", claims=payer)
    if route_key == "PUT /alerts/low-balance":
        return Call(route_key, "/alerts/low-balance", {"threshold": "5.00", "emails": ["a@example.com"]}, claims=payer)
    if route_key == "POST /payment-methods":
        return Call(
            route_key, "/payment-methods", {"payment_method": "pm_card_visa"}, headers=key, claims=payer, ok=201
        )
    if route_key == "GET /payment-methods":
        return Call(route_key, "/payment-methods", claims=payer)
    if route_key.startswith(("DELETE /payment-methods/", "POST /payment-methods/")):
        status, card = post("account", "/payment-methods", {"payment_method": "pm_card_visa"}, customer=customer)
        assert status == 201, card
        suffix = "/default" if route_key.endswith("/default") else ""
        return Call(route_key, f"/payment-methods/{card['id']}{suffix}", path_params={"id": card["id"]},
                    claims=payer, ok=204 if route_key.startswith("DELETE") else 200)  # fmt: skip
    if route_key == "GET /auto-topup":
        return Call(route_key, "/auto-topup", claims=payer)
    if route_key == "PUT /auto-topup":  # off: needs no saved card
        return Call(route_key, "/auto-topup", {"enabled": False, "max_per_day": 2}, claims=payer)
    if route_key == "POST /auto-topup/authenticate":  # valid, and nothing waits: 409 names why (its flows: e2e)
        return Call(route_key, "/auto-topup/authenticate", claims=payer, ok=409)
    if route_key == "GET /admin/customers/{customer_id}/auto-topup":
        return Call(route_key, f"{admin}/auto-topup", path_params={"customer_id": customer}, claims=operator)
    if route_key == "POST /admin/customers/{customer_id}/auto-topup/disable":
        PaymentStore().write_auto_topup(customer, AutoTopup(True, "card_1", "EUR", 500, 2000), seen_rev=None)
        return Call(route_key, f"{admin}/auto-topup/disable", {"note": "card reported stolen"},
                    path_params={"customer_id": customer}, claims=operator)  # fmt: skip
    hooks = "/admin/webhook-endpoints"
    endpoint = {"url": "https://8.8.8.8/hooks", "events": ["payment.completed"], "customer_id": customer}
    if route_key == f"POST {hooks}":
        return Call(route_key, hooks, endpoint, claims=operator, ok=201)
    if route_key == f"GET {hooks}":
        return Call(route_key, hooks, claims=operator)
    if route_key.startswith(("DELETE /admin/webhook-endpoints/", "GET /admin/webhook-endpoints/")):
        status, created = send(Call(f"POST {hooks}", hooks, endpoint, claims=operator))
        assert status == 201, created
        path = f"{hooks}/{created['id']}" + ("/deliveries" if route_key.endswith("/deliveries") else "")
        return Call(route_key, path, path_params={"id": created["id"]}, claims=operator,
                    ok=204 if route_key.startswith("DELETE") else 200)  # fmt: skip
    raise AssertionError(f"no request for {route_key}: add one")


_DEFAULT = object()


def send(
    call: Call,
    *,
    raw: object = _DEFAULT,
    content_type: object = _DEFAULT,
    as_base64: bool = False,
    query: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """`call` through its function's handler; `raw` replaces the JSON body (bytes are sent base64)."""
    body: Any = json.dumps(call.body) if raw is _DEFAULT and call.body is not None else None
    if raw is not _DEFAULT:
        body = raw
    if isinstance(body, bytes):
        body, as_base64 = base64.b64encode(body).decode(), True
    elif as_base64 and body is not None:
        body = base64.b64encode(str(body).encode()).decode()
    route = ROUTES[call.route_key]
    event = http_event(
        route.method,
        call.path,
        route=route.path,
        claims=call.claims,
        body=body,
        headers=call.headers,
        path_params=call.path_params,
        query=query,
    )
    if content_type is None:
        del event["headers"]["content-type"]
    elif content_type is not _DEFAULT:
        event["headers"]["content-type"] = content_type
    event["isBase64Encoded"] = as_base64
    return invoke(load_function(FUNCTION_DIRS[route.function]), event)


def export_objects(customer: str) -> list[str]:
    answer = aws_client("s3").list_objects_v2(Bucket=settings().exports_bucket, Prefix=f"exports/{customer}/")
    return [o["Key"] for o in answer.get("Contents", [])]


def issued_vouchers(customer: str) -> list[dict[str, Any]]:
    return aws_client("dynamodb").scan(  # a test may Scan
        TableName=settings().payments_table,
        FilterExpression="issued_by = :by",
        ExpressionAttributeValues={":by": {"S": f"operator:{operator_sub(customer)}"}},
    )["Items"]


def state(customer: str) -> dict[str, Any]:
    """Everything a request on `customer`'s behalf (or by the test's operator) could have stored."""
    return {"items": stored_items(customer), "vouchers": issued_vouchers(customer), "objects": export_objects(customer)}


def refused(call: Call, customer: str, **send_args: Any) -> tuple[int, Any]:
    """Send; assert that nothing was stored, whatever the answer."""
    before = state(customer)
    status, body = send(call, **send_args)
    assert state(customer) == before, body
    return status, body


def test_the_valid_requests_succeed(customer: str) -> None:
    """The baseline every refusal below is a variation of."""
    for route_key in sorted(ROUTES):
        call = valid_call(route_key, customer)
        status, body = send(call)
        assert status == call.ok, (route_key, body)


# ---- 1. nesting ----------------------------------------------------------------------------------


def nested(depth: int) -> str:
    """`depth` levels: arrays, with one object in the middle so both kinds count."""
    half = depth // 2
    return "[" * half + '{"a":' + "[" * (depth - half - 1) + "]" * (depth - half - 1) + "}" + "]" * half


@pytest.mark.parametrize("route_key", sorted(ROUTES))
@pytest.mark.parametrize("depth", [65, 100_000])
def test_deeply_nested_json_is_400_on_body_routes_and_never_a_5xx(customer: str, route_key: str, depth: int) -> None:
    call = valid_call(route_key, customer)
    if route_key.startswith("DELETE /payment-methods/"):  # the body is not read: the card is removed as asked
        assert send(call, raw=nested(depth))[0] == call.ok
        return
    status, body = refused(call, customer, raw=nested(depth))
    if route_key in BODY_ROUTES:
        assert status == 400, body
        assert_error(body, TOO_DEEP, fields=[None])
        assert body["errors"][0]["message"] == TOO_DEEP
    elif route_key == WEBHOOK:
        assert 400 <= status < 500, body  # unsigned: refused before the body is read
        assert_error(body)
    else:  # a GET: the body is not read at all
        assert status == call.ok, body


@pytest.mark.parametrize("route_key", BODY_ROUTES)
def test_json_at_the_nesting_limit_is_read_and_validated(customer: str, route_key: str) -> None:
    call = valid_call(route_key, customer)
    status, body = refused(call, customer, raw=nested(64))
    assert status == 422, body  # read, then refused by the schema: a nested array is no body of ours
    assert_error(body)
    assert "nested" not in body["message"]


@pytest.mark.parametrize("route_key", BODY_ROUTES)
@pytest.mark.parametrize("raw", ["{not json", "[1,", '{"a": 1}}', "\ufeff{}", '{"amount": ' + "9" * 5000 + "}"])
def test_a_body_that_is_not_json_is_400(customer: str, route_key: str, raw: str) -> None:
    status, body = refused(valid_call(route_key, customer), customer, raw=raw)
    assert status == 400, body
    assert_error(body, NOT_JSON, fields=[None])


# ---- 3. media type -------------------------------------------------------------------------------

NOT_JSON_TYPES = [
    None,  # no Content-Type at all
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/xml",
    "application/jsonp",
    "application/json; charset=latin-1",
    "",
]


@pytest.mark.parametrize(
    ("route_key", "content_type"),
    [(key, kind) for key in BODY_ROUTES for kind in NOT_JSON_TYPES[:4]]
    + [("POST /payments", kind) for kind in NOT_JSON_TYPES[4:]],
)
def test_a_body_that_is_not_declared_json_is_415(customer: str, route_key: str, content_type: str | None) -> None:
    call = valid_call(route_key, customer)
    status, body = refused(call, customer, content_type=content_type)  # the valid JSON body, mislabelled
    assert status == 415, body
    assert_error(body, JSON_ONLY, fields=[None])


@pytest.mark.parametrize("route_key", BODY_ROUTES)
def test_a_form_body_is_refused_not_echoed(customer: str, route_key: str) -> None:
    call = valid_call(route_key, customer)
    raw = "method=bank_transfer&amount=5.00&currency=EUR&note=hello-from-a-form"
    status, body = refused(call, customer, raw=raw, content_type="application/x-www-form-urlencoded")
    assert status == 415, body
    assert_error(body, JSON_ONLY)
    assert "hello-from-a-form" not in json.dumps(body)


@pytest.mark.parametrize("route_key", BODY_ROUTES)
@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON;charset=UTF-8", "application/vnd.api+json"]
)
def test_json_media_types_are_read(customer: str, route_key: str, content_type: str) -> None:
    call = valid_call(route_key, customer)
    status, body = send(call, content_type=content_type)
    assert status == call.ok, body


@pytest.mark.parametrize(
    "route_key",
    [
        "POST /payments/exports",
        "POST /admin/customers/{customer_id}/payments/{id}/complete",
        "POST /admin/customers/{customer_id}/payments/{id}/cancel",
        "POST /admin/customers/{customer_id}/payments/{id}/refunds",
    ],
)
@pytest.mark.parametrize("content_type", [None, "text/plain"])
def test_an_optional_body_may_be_left_out_whatever_the_content_type(
    customer: str, route_key: str, content_type: str | None
) -> None:
    call = valid_call(route_key, customer)
    status, body = send(call, raw=None, content_type=content_type)
    assert status == call.ok, body


@pytest.mark.usefixtures("gateway_sim")
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_the_webhook_route_reads_raw_bytes_whatever_the_content_type(customer: str, content_type: str | None) -> None:
    status, answer = post(
        "make_payment", "/payments", {"method": "razorpay", "amount": "499.00", "currency": "INR"}, customer=customer
    )
    assert status == 201, answer
    payment = PaymentStore().require(customer, answer["payment"]["id"], consistent=True)
    delivery = events.razorpay("success", payment)
    call = Call(WEBHOOK, "/webhooks/razorpay", path_params={"provider": "razorpay"}, headers=delivery.headers)
    status, body = send(call, raw=delivery.body.decode(), content_type=content_type)
    assert status == 200, body
    [item] = stored_payments(customer)
    assert item["status"]["S"] == "completed"


# ---- 5. encoding ---------------------------------------------------------------------------------


def with_member(body: dict[str, Any], member: Any) -> Any:
    """The JSON text of `body` with one more member, given as raw text (str) or bytes."""
    text = json.dumps(body)[1:-1]
    if isinstance(member, bytes):
        return b"{" + (text.encode() + b", " if text else b"") + member + b"}"
    return "{" + (text + ", " if text else "") + member + "}"


# Each inside an otherwise valid body of the route, as a further member.
BAD_UTF8 = [
    b'"x": "caf\xe9"',  # Latin-1
    b'"x": "\xff\xfe"',
    b'"x": "\xed\xa0\x80"',  # an encoded surrogate
    b'"x": "\xc0\xaf"',  # overlong
    b'"x": "\xe2\x82"',  # truncated
]


@pytest.mark.parametrize("route_key", BODY_ROUTES)
@pytest.mark.parametrize("member", BAD_UTF8)
def test_a_body_that_is_not_utf8_is_400(customer: str, route_key: str, member: bytes) -> None:
    call = valid_call(route_key, customer)
    status, answer = refused(call, customer, raw=with_member(call.body, member))  # bytes: sent as base64
    assert status == 400, answer
    assert_error(answer, NOT_UTF8, fields=[None])


@pytest.mark.parametrize("route_key", BODY_ROUTES)
def test_a_text_body_with_a_lone_surrogate_is_400(customer: str, route_key: str) -> None:
    call = valid_call(route_key, customer)
    status, answer = refused(call, customer, raw=with_member(call.body, '"x": "a\ud800b"'))
    assert status == 400, answer
    assert_error(answer, NOT_UTF8)


@pytest.mark.parametrize("route_key", BODY_ROUTES)
def test_a_base64_body_in_utf8_is_read(customer: str, route_key: str) -> None:
    call = valid_call(route_key, customer)
    status, body = send(call, as_base64=True)
    assert status == call.ok, body


def test_utf8_text_is_stored_as_sent(customer: str) -> None:
    call = valid_call("POST /payments", customer)
    call.body["description"] = "Café ☕ 東京 \U0001f4b3"
    status, body = send(call, raw=json.dumps(call.body, ensure_ascii=False).encode())
    assert status == 201, body
    [item] = stored_payments(customer)
    assert item["description"]["S"] == "Café ☕ 東京 \U0001f4b3"
