"""GET /payments, /payments/{id}, /balance through the real handler against the embedded DynamoDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from payments.ids import new_payment_id
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus
from payments.status import Cause
from payments.store import PaymentStore
from tests.conftest import claims_for, http_event, invoke, load_function

pytestmark = pytest.mark.usefixtures("aws")
BASE = datetime(2026, 3, 1, tzinfo=UTC)
STATUSES = [PaymentStatus.COMPLETED, PaymentStatus.PENDING, PaymentStatus.CANCELLED]


def seed(customer: str, count: int, currency: str = "USD") -> list[Payment]:
    """`count` payments, one per hour, cycling completed/pending/cancelled; every 4th is a purchase."""
    store = PaymentStore()
    made = []
    for i in range(count):
        at = BASE + timedelta(hours=i)
        status = STATUSES[i % 3]
        purchase = i % 4 == 3 and status is PaymentStatus.COMPLETED
        payment = Payment(
            id=new_payment_id(at),
            customer_id=customer,
            created_at=at,
            completed_at=at + timedelta(minutes=5) if status is PaymentStatus.COMPLETED else None,
            amount_minor=-(100 + i) if purchase else 1000 + i,
            currency=currency,
            status=status,
            method=PaymentMethod.PURCHASE if purchase else PaymentMethod.CREDIT_CARD,
            description=f"{customer} #{i}",
            history=(HistoryEntry(at=at, status=status, by="seed"),),
        )
        assert store.add(payment)
        made.append(payment)
    return made


@pytest.fixture(scope="module")
def handler():
    return load_function("list_payments")


def get(handler, path: str, customer: str | None, *groups: str, route: str | None = None, **query: str):
    params = {"id": path.rsplit("/", 1)[-1]} if route else None
    claims = claims_for(customer, *(groups or ("finance",)))
    return invoke(handler, http_event("GET", path, route=route, claims=claims, query=query, path_params=params))


def test_pages_through_every_item_once_newest_first(handler, customer: str) -> None:
    mine = seed(customer, 23)
    seed(customer + "-other", 5)
    seen, cursor = [], None
    while True:
        query = {"limit": "5", **({"cursor": cursor} if cursor else {})}
        status, body = get(handler, "/payments", customer, **query)
        assert status == 200
        assert len(body["items"]) <= 5
        seen.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [p["id"] for p in seen] == [p.id for p in reversed(mine)]
    assert all(p["description"].startswith(customer + " #") for p in seen)
    newest = seen[0]
    assert newest["amount"] == "10.22" and newest["currency"] == "USD" and newest["status"] == "pending"
    assert newest["completed_at"] is None and newest["created_at"] == "2026-03-01T22:00:00.000Z"
    purchase = next(p for p in seen if p["method"] == "purchase")
    assert purchase["amount"].startswith("-")
    assert seen[1]["status"] == "completed" and seen[1]["completed_at"] == "2026-03-01T21:05:00.000Z"


def test_status_and_date_filters(handler, customer: str) -> None:
    mine = seed(customer, 12)
    status, body = get(handler, "/payments", customer, status="cancelled")
    assert status == 200
    assert [p["id"] for p in body["items"]] == [p.id for p in reversed(mine) if p.status is PaymentStatus.CANCELLED]
    start, end = BASE + timedelta(hours=3), BASE + timedelta(hours=6)
    status, body = get(handler, "/payments", customer, **{"from": start.isoformat(), "to": end.isoformat()})
    assert status == 200
    assert [p["description"] for p in body["items"]] == [f"{customer} #{i}" for i in (6, 5, 4, 3)]
    status, body = get(handler, "/payments", customer, status="completed", limit="1", **{"from": start.isoformat()})
    assert [p["description"] for p in body["items"]] == [f"{customer} #9"]
    status, second = get(
        handler,
        "/payments",
        customer,
        status="completed",
        limit="5",
        cursor=body["next_cursor"],
        **{"from": start.isoformat()},
    )
    assert [p["description"] for p in second["items"]] == [f"{customer} #{i}" for i in (6, 3)]
    assert second["next_cursor"] is None


def test_balance_counts_only_completed(handler, customer: str) -> None:
    mine = seed(customer, 10) + seed(customer, 2, currency="JPY")
    expected = sum(p.amount_minor for p in mine if p.currency == "USD" and p.status is PaymentStatus.COMPLETED)
    status, body = get(handler, "/balance", customer)
    assert status == 200
    usd = next(b for b in body["balances"] if b["currency"] == "USD")
    assert usd["amount"] == f"{expected / 100:.2f}"
    assert {"currency": "JPY", "amount": "1000"} in body["balances"]


def test_balance_follows_a_transition_once(handler, customer: str) -> None:
    pending = seed(customer, 2)[1]
    store = PaymentStore()
    for _ in range(3):
        store.transition(customer, pending.id, PaymentStatus.COMPLETED, Cause.OPERATOR, "operator:op-1")
    _, body = get(handler, "/balance", customer)
    assert body["balances"] == [{"currency": "USD", "amount": f"{(1000 + 1001) / 100:.2f}"}]
    status, detail = get(handler, f"/payments/{pending.id}", customer, route="/payments/{id}")
    assert status == 200 and detail["status"] == "completed" and detail["completed_at"]
    assert [h["status"] for h in detail["history"]] == ["pending", "completed"]
    assert detail["history"][-1]["by"] == "operator:op-1"


def test_get_one_and_other_customers_get_404(handler, customer: str) -> None:
    payment = seed(customer, 1)[0]
    status, body = get(handler, f"/payments/{payment.id}", customer, route="/payments/{id}")
    assert status == 200 and body["id"] == payment.id and body["amount"] == "10.00"
    status, body = get(handler, f"/payments/{payment.id}", "intruder", route="/payments/{id}")
    assert status == 404 and "not found" in body["message"] and "amount" not in body
    status, body = get(handler, "/payments/pay_nope", customer, route="/payments/{id}")
    assert status == 404


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1000"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"status": "refunded"}, "status"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "from must not be after to"),
        ({"from": "2026-03-02T00:00:00"}, "time zone"),
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": "eyJhIjoiIn0.AAAA"}, "cursor"),
    ],
)
def test_bad_queries_are_4xx_naming_the_problem(handler, customer: str, query, fragment: str) -> None:
    status, body = get(handler, "/payments", customer, **query)
    assert 400 <= status < 500
    assert fragment in body["message"]


def test_cursor_of_another_customer_is_refused(handler, customer: str) -> None:
    seed(customer, 4)
    _, body = get(handler, "/payments", customer, limit="2")
    status, answer = get(handler, "/payments", "someone-else", limit="2", cursor=body["next_cursor"])
    assert status == 400 and "not valid for this account" in answer["message"]


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        (None, 401),
        ({"sub": "u", "cognito:groups": "[finance]"}, 403),  # no custom:customer_id
        ({"sub": "u", "custom:customer_id": "c", "cognito:groups": "[operator]"}, 403),
        ({"sub": "u", "custom:customer_id": "c", "cognito:groups": "[]"}, 403),
        ({"sub": "u", "custom:customer_id": "c", "cognito:groups": "[support]"}, 200),
        ({"sub": "u", "custom:customer_id": "c", "cognito:groups": ["admin"]}, 200),
    ],
)
def test_identity_and_groups(handler, claims, status: int) -> None:
    for path in ("/payments", "/balance"):
        code, body = invoke(handler, http_event("GET", path, claims=claims))
        assert code == status, body
        if status >= 400:
            assert body["message"]
