"""The store is the only code that knows DynamoDB (docs/architecture.md): no module of the layer outside
`payments.store` builds a key or an item, writes a request parameter, or calls a DynamoDB client; the pure
modules import no store."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

LAYER = Path(__file__).resolve().parents[2] / "shared" / "payments"
OUTSIDE_THE_STORE = sorted(p for p in LAYER.rglob("*.py") if "store" not in p.relative_to(LAYER).parts)

# What DynamoDB code looks like: attribute values, key attributes, request parameters, client calls.
DYNAMODB = re.compile(
    r"""\{\s*["'](S|N|SS|L|M|BOOL)["']\s*:"""
    r"""|["'](PK|SK|GSI[12](PK|SK))["']"""
    r"""|\b(TransactItems|ExpressionAttribute(Names|Values)|(Key)?ConditionExpression|UpdateExpression|TableName)\b"""
    r"""|\.(get_item|put_item|update_item|delete_item|query|scan|transact_write_items|batch_write_item)\("""
    r"""|\bstore\.(client|table)\b|boto3\.dynamodb|["']dynamodb["']"""
)


@pytest.mark.parametrize("module", OUTSIDE_THE_STORE, ids=[str(p.relative_to(LAYER)) for p in OUTSIDE_THE_STORE])
def test_no_module_outside_the_store_speaks_dynamodb(module: Path) -> None:
    found = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(module.read_text().splitlines(), 1)
        if DYNAMODB.search(line)
    ]
    assert found == []


def imported(module: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("pure", ["status.py", "money.py", "declines.py"])
def test_the_pure_modules_import_no_store_gateway_or_aws_library(pure: str) -> None:
    forbidden = ("payments.store", "payments.gateways", "boto3", "botocore")
    assert [m for m in imported(LAYER / pure) if m.startswith(forbidden)] == []


def test_the_store_imports_no_use_case_and_no_gateway() -> None:
    use_cases = ("payments.checkout", "payments.vouchers", "payments.operations", "payments.settlement")
    forbidden = (*use_cases, "payments.listing", "payments.exports", "payments.gateways", "payments.api")
    for module in sorted((LAYER / "store").glob("*.py")):
        assert [m for m in imported(module) if m.startswith(forbidden)] == [], module.name


def test_vouchers_and_checkout_do_not_import_each_other_both_ways() -> None:
    assert not any(m.startswith("payments.checkout") for m in imported(LAYER / "vouchers.py"))
