"""The store is the only code that knows DynamoDB (docs/architecture.md): no module of the layer outside
`payments.store`, and no function, builds a key or an item, writes a request parameter, or calls or hands out a
DynamoDB client. (Who may import the store is import-linter's: tests/unit/test_architecture.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "shared" / "payments"
OUTSIDE_THE_STORE = sorted(p for p in LAYER.rglob("*.py") if "store" not in p.relative_to(LAYER).parts)
OUTSIDE_THE_STORE += sorted((ROOT / "functions").glob("*/app.py"))  # the handlers, too

# What DynamoDB code looks like: attribute values, key attributes, request parameters, client calls.
DYNAMODB = re.compile(
    r"""\{\s*["'](S|N|SS|L|M|BOOL)["']\s*:"""
    r"""|["'](PK|SK|GSI[12](PK|SK))["']"""
    r"""|\b(TransactItems|ExpressionAttribute(Names|Values)|(Key)?ConditionExpression|UpdateExpression|TableName)\b"""
    r"""|\.(get_item|put_item|update_item|delete_item|query|scan|transact_write_items|batch_write_item)\("""
    r"""|\bstore\.(client|table)\b|boto3\.dynamodb|["']dynamodb["']"""
)


@pytest.mark.parametrize("module", OUTSIDE_THE_STORE, ids=[str(p.relative_to(ROOT)) for p in OUTSIDE_THE_STORE])
def test_no_module_outside_the_store_speaks_dynamodb(module: Path) -> None:
    found = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(module.read_text().splitlines(), 1)
        if DYNAMODB.search(line)
    ]
    assert found == []
