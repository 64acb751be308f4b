"""Build shared/payments/openapi.json: the OpenAPI 3 document of every function's routes, merged.

Each function's Powertools resolver describes its own routes; GET /openapi.json serves the merged
document from the layer, so a cold start never builds it. `make openapi` regenerates it and
tests/unit/test_openapi.py fails if the committed file is stale.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "shared" / "payments" / "openapi.json"
FUNCTIONS = (
    "list_payments",
    "make_payment",
    "export_csv",
    "webhooks",
    "admin",
    "account",
    "receipts",
    "webhook_endpoints",
)
PUBLIC_PATHS = {"/openapi.json", "/webhooks/{provider}"}
BUSY_RESPONSE = {
    "description": "Busy (DynamoDB/S3 throttled) or a gateway timed out; retry with the same Idempotency-Key",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
}
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
# Any route that takes a JSON body reads it by the same rules (payments.api.read_json_body, docs/errors.md).
BODY_RESPONSES = {
    "400": {"description": "The body is not JSON, not UTF-8, or nested too deeply", "content": _ERROR_CONTENT},
    "415": {"description": "The body is not declared as JSON: send Content-Type: application/json",
            "content": _ERROR_CONTENT},
}  # fmt: skip
# Answers API Gateway gives itself, before or instead of a function (docs/errors.md): the JWT authorizer's
# 401, 404 for a path no route matches, 429 when throttled, 503 when Lambda is. AWS's shape, not ours.
GATEWAY_CODES = ("401", "404", "429", "503")
GATEWAY_ERROR = {
    "title": "ApiGatewayError",
    "description": "An answer of API Gateway itself (401 authorizer, 404 no such route, 429/503 throttled): "
    "AWS's shape, a message only",
    "type": "object",
    "properties": {"message": {"title": "Message", "type": "string"}},
    "required": ["message"],
}
TITLE = "Payments service"
DESCRIPTION = (
    "Payments page of the telecom customer portal: list payments, balance, make payments with seven methods, "
    "CSV export for finance, gateway webhooks and operator routes. Reference: docs/api.md."
)


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"openapi_fn_{name}", ROOT / "functions" / name / "app.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load functions/{name}/app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


def build() -> dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    sys.path.insert(0, str(ROOT / "shared"))
    document: dict[str, Any] = {}
    for name in FUNCTIONS:
        part = json.loads(_load(name).get_openapi_json_schema(title=TITLE, version="1.0.0", description=DESCRIPTION))
        if not document:
            document = part
            document.setdefault("components", {}).setdefault("schemas", {})
            continue
        for path, operations in part.get("paths", {}).items():
            document["paths"].setdefault(path, {}).update(operations)
        document["components"]["schemas"].update(part.get("components", {}).get("schemas", {}))
    document["components"]["securitySchemes"] = {
        "bearerJwt": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "Cognito token with custom:customer_id and cognito:groups (docs/api.md#identity-and-access)",
        }
    }
    document["security"] = [{"bearerJwt": []}]
    for path, operations in document["paths"].items():
        for operation in operations.values():
            if path != "/openapi.json":  # any route reading DynamoDB answers 503 while it is throttled
                operation.setdefault("responses", {}).setdefault("503", json.loads(json.dumps(BUSY_RESPONSE)))
            if "requestBody" in operation:
                for code, response in BODY_RESPONSES.items():
                    operation["responses"].setdefault(code, json.loads(json.dumps(response)))
            if path in PUBLIC_PATHS:
                operation["security"] = []
            else:
                operation.setdefault("responses", {}).setdefault("401", {"description": "Missing or invalid token"})
                operation["responses"].setdefault("403", {"description": "The token's groups do not allow this route"})
            _ours_not_powertools(operation["responses"])
            for code in GATEWAY_CODES:
                _or_gateway_error(operation["responses"].get(code))
    schemas = document["components"]["schemas"]
    schemas["ApiGatewayError"] = GATEWAY_ERROR
    for unused in ("HTTPValidationError", "ValidationError"):  # Powertools' shape; api.build answers ErrorOut
        schemas.pop(unused, None)
    document["paths"] = dict(sorted(document["paths"].items()))
    return document


def _ours_not_powertools(responses: dict[str, Any]) -> None:
    """Powertools documents a 422 `HTTPValidationError` for routes without one of their own; ours is ErrorOut."""
    for response in responses.values():
        content = response.get("content", {}).get("application/json", {})
        if content.get("schema") == {"$ref": "#/components/schemas/HTTPValidationError"}:
            content["schema"] = {"$ref": "#/components/schemas/ErrorOut"}


def _or_gateway_error(response: dict[str, Any] | None) -> None:
    """A response documented as ErrorOut may also be API Gateway's own answer."""
    content = (response or {}).get("content", {}).get("application/json")
    if content and content.get("schema") == {"$ref": "#/components/schemas/ErrorOut"}:
        content["schema"] = {
            "anyOf": [{"$ref": "#/components/schemas/ErrorOut"}, {"$ref": "#/components/schemas/ApiGatewayError"}]
        }


def render() -> str:
    return json.dumps(build(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render())
    print(f"wrote {TARGET}")
