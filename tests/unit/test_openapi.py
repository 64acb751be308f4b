"""The served OpenAPI document is generated from the handlers and describes every route of template.yaml."""

import json

from local.template import load_template, routes
from payments.listing import OPENAPI_FILE
from scripts.gen_openapi import render


def test_committed_document_is_current() -> None:
    assert OPENAPI_FILE.read_text() == render(), "run `make openapi` and commit shared/payments/openapi.json"


def test_every_template_route_is_documented_and_nothing_else() -> None:
    document = json.loads(OPENAPI_FILE.read_text())
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    declared = {(r.method, r.path) for r in routes(load_template())}
    assert documented == declared


def test_public_routes_need_no_token_and_others_do() -> None:
    document = json.loads(OPENAPI_FILE.read_text())
    assert document["security"] == [{"bearerJwt": []}]
    for path, operations in document["paths"].items():
        for operation in operations.values():
            public = path in {"/openapi.json", "/webhooks/{provider}"}
            assert (operation.get("security") == []) is public, path
