"""GET /payments filters and GET /balance over HTTP on the real local stack, data seeded with real boto3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from payments.ids import new_payment_id
from payments.models import Payment, PaymentMethod, PaymentStatus
from payments.money import Money
from payments.store import PaymentStore

START = datetime(2026, 2, 1, tzinfo=UTC)
CYCLE = [PaymentStatus.COMPLETED, PaymentStatus.PENDING, PaymentStatus.CANCELLED, PaymentStatus.COMPLETED]


def seed(stack: Any, customer: str, count: int) -> list[Payment]:
    store = PaymentStore(table_name=stack.resource_name("PaymentsTable"), client=stack.aws("dynamodb"))
    made = []
    for i in range(count):
        at = START + timedelta(days=i)
        status = CYCLE[i % 4]
        purchase = i % 4 == 3
        payment = Payment(
            id=new_payment_id(at),
            customer_id=customer,
            created_at=at,
            completed_at=at if status is PaymentStatus.COMPLETED else None,
            amount_minor=-(250 + i) if purchase else 1000 + i,
            currency="EUR",
            status=status,
            method=PaymentMethod.PURCHASE if purchase else PaymentMethod.BANK_TRANSFER,
            description=f"#{i}",
        )
        store.add(payment)
        made.append(payment)
    return made


def get(stack: Any, token: str, query: str) -> tuple[int, Any]:
    answer = stack.call("GET", f"/payments?{query}", token=token)
    return answer.status, answer.json()


def test_balance_counts_only_completed_and_filters_select_on_the_server(stack: Any) -> None:
    mine = seed(stack, "e2e-filters-a", 12)
    seed(stack, "e2e-filters-b", 4)
    token = stack.token("e2e-filters-a", ["finance"])
    completed = [p for p in mine if p.status is PaymentStatus.COMPLETED]
    balance = stack.call("GET", "/balance", token=token).json()
    assert balance == {
        "balances": [{"currency": "EUR", "amount": Money(sum(p.amount_minor for p in completed), "EUR").format()}]
    }
    assert any(p.amount_minor < 0 for p in completed)  # purchases are in it, negative

    status, page = get(stack, token, "status=pending")
    assert status == 200
    assert [p["description"] for p in page["items"]] == [
        p.description for p in reversed(mine) if p.status is PaymentStatus.PENDING
    ]

    since, until = quote((START + timedelta(days=2)).isoformat()), quote((START + timedelta(days=5)).isoformat())
    status, page = get(stack, token, f"from={since}&to={until}")
    assert [p["description"] for p in page["items"]] == ["#5", "#4", "#3", "#2"]
    assert page["items"][2]["amount"] == "-2.53" and page["items"][2]["method"] == "purchase"

    status, page = get(stack, token, f"status=completed&from={since}&limit=2")
    assert [p["description"] for p in page["items"]] == ["#11", "#8"]
    other = stack.token("e2e-filters-b", ["finance"])
    status, refused = get(stack, other, f"status=completed&from={since}&limit=2&cursor={page['next_cursor']}")
    assert status == 400 and "cursor" in refused["message"]
    status, rest = get(stack, token, f"status=completed&from={since}&limit=2&cursor={page['next_cursor']}")
    assert [p["description"] for p in rest["items"]] == ["#7", "#4"]
    status, last = get(stack, token, f"status=completed&from={since}&limit=2&cursor={rest['next_cursor']}")
    assert [p["description"] for p in last["items"]] == ["#3"] and last["next_cursor"] is None


def test_bad_queries_are_4xx_over_http(stack: Any) -> None:
    token = stack.token("e2e-filters-c", ["support"])
    for query in (
        "limit=0",
        "limit=1000",
        "status=refunded",
        "from=yesterday",
        "cursor=forged.x",
        "from=2026-02-02T00:00:00Z&to=2026-02-01T00:00:00Z",
    ):
        status, body = get(stack, token, query)
        assert 400 <= status < 500, query
        assert body["message"], query
