"""The read paths import only what they need: every module-level import is paid on each cold start
(docs/cold-start.md, docs/benchmarks.md). Each function is imported in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def imported_modules(function: str) -> set[str]:
    code = "import json, sys\nimport app\nprint(json.dumps(sorted(sys.modules)))"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "_X_AMZN"))}
    env |= {
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / function), str(ROOT / "shared")]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),  # tracing on, as deployed
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT / "functions" / function, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


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
