"""Tokens at the HTTP edge of the local stack (issue 6 §3): only an HS256 token signed with the stack's secret
gets in. `alg: none`, another algorithm, another secret, an edited payload: 401 on every protected route,
before any handler runs; and a valid token of one customer never reaches another customer's data.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest

from local.template import load_template, routes

# The stack's test secret is shorter than PyJWT recommends for HS512; the HS512 token is a forgery anyway.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
PROTECTED = [r for r in routes(load_template()) if not r.public]
PUBLIC = [r for r in routes(load_template()) if r.public]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(customer: str, groups: list[str]) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "mallory", "custom:customer_id": customer, "cognito:groups": groups, "iat": now, "exp": now + 600}


FORGERIES = [
    "alg none",
    "alg None, real signature kept",
    "another secret",
    "HS512 with the right secret",
    "payload edited after signing",
    "no exp",
    "not a JWT",
]


def forged_tokens(stack: Any, customer: str) -> dict[str, str]:
    """Tokens that name `customer` with every group, none of which the stack may accept."""
    claims = _claims(customer, ["admin", "finance", "operator"])
    header, payload, signature = stack.token("someone-else", ["support"]).split(".")
    edited = {**json.loads(base64.urlsafe_b64decode(payload + "==")), **claims}
    tokens = {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "alg None, real signature kept": f"{_b64({'alg': 'None', 'typ': 'JWT'})}.{payload}.{signature}",
        "another secret": jwt.encode(claims, "not-the-stack-secret-0123456789abcdef", algorithm="HS256"),
        "HS512 with the right secret": jwt.encode(claims, stack.jwt_secret, algorithm="HS512"),
        "payload edited after signing": f"{header}.{_b64(edited)}.{signature}",
        "no exp": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, stack.jwt_secret, algorithm="HS256"),
        "not a JWT": "Bearer-garbage.abc",
    }
    assert set(tokens) == set(FORGERIES)
    return tokens


def _path(route: Any, customer: str) -> str:
    values = {"id": "pay_01JDQ4W6S8X7C3M2K9V5T0R1AB", "customer_id": customer, "export_id": "x", "provider": "stripe"}
    path = route.path
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


@pytest.mark.parametrize("forgery", FORGERIES)
def test_a_forged_token_is_401_on_every_protected_route(stack: Any, forgery: str) -> None:
    victim = f"victim-{uuid.uuid4().hex[:8]}"
    token = forged_tokens(stack, victim)[forgery]
    for route in PROTECTED:
        answer = stack.call(
            route.method,
            _path(route, victim),
            token=token,
            headers={"content-type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
            body="{}" if route.method == "POST" else None,
        )
        assert answer.status == 401, (route.route_key, answer.body)
        assert answer.json()["message"].startswith("Unauthorized"), answer.body
        assert answer.headers.get("WWW-Authenticate", answer.headers.get("www-authenticate", "")).startswith("Bearer")


def test_public_routes_need_no_token_and_ignore_a_forged_one(stack: Any) -> None:
    forged = forged_tokens(stack, "victim")["alg none"]
    for token in (None, forged):
        assert stack.call("GET", "/openapi.json", token=token).status == 200
        unsigned = stack.call(
            "POST", "/webhooks/stripe", token=token, body="{}", headers={"content-type": "application/json"}
        )
        assert unsigned.status == 400 and "Stripe-Signature" in unsigned.json()["message"]
    assert {r.route_key for r in PUBLIC} == {"GET /openapi.json", "POST /webhooks/{provider}"}


def test_a_valid_token_reaches_only_its_own_customers_data(stack: Any) -> None:
    alice, bob = f"alice-{uuid.uuid4().hex[:8]}", f"bob-{uuid.uuid4().hex[:8]}"
    paid = stack.call(
        "POST",
        "/payments",
        token=stack.token(alice, ["finance"]),
        headers={"content-type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
        body=json.dumps({"method": "bank_transfer", "amount": "66.60", "currency": "EUR", "description": "Alice"}),
    )
    assert paid.status == 201, paid.body
    payment_id = paid.json()["payment"]["id"]
    bob_token = stack.token(bob, ["admin", "finance"])
    for path in (f"/payments/{payment_id}", "/payments", "/balance"):
        answer = stack.call("GET", path, token=bob_token)
        assert answer.status in (200, 404), answer.body
        assert b"66.60" not in answer.body and b"Alice" not in answer.body and alice.encode() not in answer.body
    assert stack.call("GET", f"/payments/{payment_id}", token=bob_token).status == 404
    assert stack.call("GET", f"/payments/{payment_id}", token=stack.token(alice, ["support"])).status == 200
