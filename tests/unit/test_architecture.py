"""The import rules of docs/architecture.md: the layer's (import-linter's contracts in pyproject.toml) and the
functions' (each handler is a door into the layer: it imports the layer, Powertools and pydantic, never boto3,
a gateway SDK, another function, the local stack or the tests)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))
ALLOWED_IN_FUNCTIONS = {"payments", "aws_lambda_powertools", "pydantic"}


def top_level_imports(module: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." if node.level else (node.module or "").partition(".")[0])
    return names


@pytest.mark.parametrize("handler", HANDLERS, ids=[p.parent.name for p in HANDLERS])
def test_a_function_imports_only_the_layer_powertools_pydantic_and_the_standard_library(handler: Path) -> None:
    foreign = {
        name for name in top_level_imports(handler) - ALLOWED_IN_FUNCTIONS if name not in sys.stdlib_module_names
    }
    assert foreign == set()


def test_the_functions_are_all_found() -> None:
    assert [p.parent.name for p in HANDLERS] == [
        "account", "admin", "autotopup", "deliver_webhooks", "export_csv", "list_payments", "make_payment", "notify",
        "publish_events", "receipts", "reconcile", "webhook_endpoints", "webhooks",
    ]  # fmt: skip


def test_the_layer_keeps_every_import_contract() -> None:
    # In a process of its own: import-linter configures logging, which would silence other tests' loggers.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(ROOT)])}
    lint = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]
    run = subprocess.run(lint, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "6 kept, 0 broken" in run.stdout


def test_only_the_settings_read_the_environment() -> None:
    """payments.config owns the environment (docs/architecture.md): a variable read anywhere else would escape
    the cold-start check. The one exception is the Stripe SDK's own STRIPE_LOG switch."""
    sources = [*(ROOT / "shared" / "payments").rglob("*.py"), *HANDLERS]
    reads = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in sources
        if path.name != "config.py"
        for line in path.read_text().splitlines()
        if ("os.environ" in line or "getenv(" in line) and '"STRIPE_LOG"' not in line
    ]
    assert reads == []


def test_test_modules_have_unique_basenames() -> None:
    """pytest imports test files by basename (rootdir-relative, no packages): two `test_x.py` in different folders
    stop the collection of the whole suite on a clean clone."""
    root = Path(__file__).resolve().parents[1]
    names = [p.name for p in root.rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
