"""The read paths import only what they need: every module-level import is paid on each cold start
(docs/cold-start.md, docs/benchmarks.md). Each function is imported in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from payments.registry import PROVIDERS

ROOT = Path(__file__).resolve().parents[2]

# What a read function must never import at start: gateway SDKs and HTTP clients, the adapters, the
# write-path libraries (idempotency), and what those pull in.
NEVER_ON_READ_PATHS = (
    "stripe",
    "requests",
    "payments.gateways",
    "payments.checkout",
    "payments.settlement",
    "aws_lambda_powertools.utilities.idempotency",
    "payments.store.writes",  # the store's write side (docs/cold-start.md): payments, claims, events
    "payments.store.gateway_items",
    "payments.store.voucher_items",
    "ulid",  # python-ulid: payments.ids is our own codec
    "fpdf",  # receipts: their own function (functions/receipts), ~0.4 s of imports
    "PIL",
    "payments.receipts",
)


def imported_modules(function: str, then: str = "") -> set[str]:
    """The modules loaded in a fresh interpreter by `import app` in `function`'s folder, then by `then`."""
    return set(in_function(function, f"{then}\nprint(json.dumps(sorted(sys.modules)))"))


def in_function(function: str, code: str) -> Any:
    """What `code` prints last, as JSON, run after `import app` in a fresh interpreter in `function`'s folder."""
    code = f"import json, sys\nimport app\n{code}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "_X_AMZN"))}
    env |= {
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / function), str(ROOT / "shared")]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),  # tracing on, as deployed
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
        "POWERTOOLS_METRICS_NAMESPACE": "Payments",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT / "functions" / function, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("function", "its_module"), [("list_payments", "payments.listing"), ("export_csv", "payments.exports")]
)
def test_read_functions_import_no_gateway_code_or_write_path_library(function: str, its_module: str) -> None:
    modules = imported_modules(function)

    assert its_module in modules  # the function's own domain module was imported
    offending = [m for m in sorted(modules) if any(m == p or m.startswith(p + ".") for p in NEVER_ON_READ_PATHS)]
    assert offending == []


def test_the_guard_sees_what_a_write_function_imports() -> None:
    modules = imported_modules("make_payment")

    assert "payments.gateways" in modules
    assert "aws_lambda_powertools.utilities.idempotency" in modules


def test_the_guard_sees_the_pdf_library_of_the_receipts_function() -> None:
    modules = imported_modules("receipts")

    assert "payments.receipts" in modules
    assert "payments.gateways" not in modules  # and no gateway code either


# One webhook, unsigned: the adapter of its provider is loaded to verify it (and refuses it), nothing else.
WEBHOOK = """
event = {
    "version": "2.0", "routeKey": "POST /webhooks/{provider}", "rawPath": "/webhooks/PROVIDER", "body": "{}",
    "headers": {"content-type": "application/json"}, "pathParameters": {"provider": "PROVIDER"},
    "isBase64Encoded": False,
    "requestContext": {"http": {"method": "POST", "path": "/webhooks/PROVIDER"}, "requestId": "r", "stage": "$default"},
}
class Context:
    function_name, memory_limit_in_mb, aws_request_id = "webhooks", 512, "test"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:webhooks"
answer = app.lambda_handler(event, Context())
assert answer["statusCode"] in (400, 401), answer
"""


def adapter_modules(provider: str) -> set[str]:
    """The modules of `provider`'s adapter: payments.gateways.<provider> and payments.gateways.<provider>_models."""
    return {f"payments.gateways.{provider}", f"payments.gateways.{provider}_models"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_webhooks_function_imports_only_the_adapter_of_the_provider_it_is_called_for(provider: str) -> None:
    before = imported_modules("webhooks")
    modules = imported_modules("webhooks", WEBHOOK.replace("PROVIDER", provider))

    assert not any(m.startswith("payments.gateways.") for m in before - {"payments.gateways.base"})  # none at start
    assert f"payments.gateways.{provider}" in modules  # its adapter verified the signature
    others = set().union(*(adapter_modules(p) for p in PROVIDERS if p != provider))
    assert sorted(modules & others) == []
    if provider != "stripe":
        assert not any(m == "stripe" or m.startswith("stripe.") for m in modules)  # nor Stripe's SDK


BUILT = """
from payments import models
print(json.dumps({name: getattr(models, name).__pydantic_complete__ for name in NAMES}))
"""


@pytest.mark.parametrize(
    ("function", "its_answers", "not_its"),
    [
        ("list_payments", ["PaymentPage", "PaymentsSummary", "BalancesOut"], ["MakePaymentOut", "DeclinedOut"]),
        ("make_payment", ["MakePaymentOut", "DeclinedOut"], ["PaymentPage", "BalancesOut"]),
        ("webhooks", [], ["PaymentPage", "MakePaymentOut", "BalancesOut"]),
    ],
)
def test_a_function_builds_at_start_the_answer_models_of_its_routes_and_no_others(
    function: str, its_answers: list[str], not_its: list[str]
) -> None:
    names = [*its_answers, *not_its, "ErrorOut", "Payment", "PaymentOut"]
    built = in_function(function, BUILT.replace("NAMES", repr(names)))

    assert built == {name: name not in not_its and name != "ErrorOut" for name in names}
