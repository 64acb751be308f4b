"""Low-balance alerts (docs/alerts.md) without AWS: the crossing rule with its hysteresis, table-driven; the stream's
balance records judged against `MemoryStore` (one event per crossing, none for a redelivery); the routes' 422s,
each naming its field, and nothing stored; the e-mail of a `balance.low` event."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from payments import alerts, outbox
from payments.alerts import AlertIn, Crossing, Outcome, judge
from payments.ids import new_payment_id
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus
from payments.store.memory import MemoryStore
from payments.store.records import BalanceRecord, LowBalanceAlert
from tests.conftest import claims_for, http_event, invoke, load_function

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def alert(threshold: int, reset: int | None = None, *, armed: bool = True) -> LowBalanceAlert:
    return LowBalanceAlert("USD", threshold, threshold if reset is None else reset, ("a@example.com",), armed)


@pytest.mark.parametrize(
    ("threshold", "reset", "armed", "old", "new", "expected"),
    [
        (1000, None, True, 1500, 500, Crossing.FIRE),  # above -> below fires
        (1000, None, True, 1000, 999, Crossing.FIRE),  # from exactly the threshold: it was not below
        (1000, None, True, 1500, 1000, None),  # down to exactly the threshold is not below
        (1000, None, True, 1500, 1200, None),  # above -> above
        (1000, None, True, 900, 800, None),  # armed while below (saved below, never re-armed): no crossing
        (1000, None, False, 900, 500, None),  # below -> below: once only
        (1000, 2000, False, 500, 1500, None),  # rises between threshold and reset: not re-armed
        (1000, 2000, False, 500, 2000, None),  # to exactly the reset: not above it
        (1000, 2000, False, 500, 2001, Crossing.REARM),  # above the reset: armed again
        (1000, None, False, 500, 1001, Crossing.REARM),  # reset = threshold: above the threshold re-arms
        (1000, None, False, 500, 1000, None),
        (1000, 2000, True, 2500, 1500, None),  # falling below the reset threshold alone is nothing
        (-5000, None, True, 0, -5001, Crossing.FIRE),  # a credit limit: negative thresholds
        (-5000, None, True, -4000, -5000, None),
        (-5000, -1000, False, -6000, -2000, None),
        (-5000, -1000, False, -6000, -999, Crossing.REARM),
        (0, None, True, 1, -1, Crossing.FIRE),  # zero: going negative
        (0, None, True, 0, -1, Crossing.FIRE),
    ],
)
def test_the_crossing_rule_with_its_hysteresis(
    threshold: int, reset: int | None, armed: bool, old: int, new: int, expected: Crossing | None
) -> None:
    assert judge(alert(threshold, reset, armed=armed), old, new) is expected


def paid(store: MemoryStore, customer: str, minor: int, currency: str = "USD") -> Payment:
    made = Payment(
        id=new_payment_id(AT),
        customer_id=customer,
        created_at=AT,
        completed_at=AT,
        amount_minor=minor,
        currency=currency,
        status=PaymentStatus.COMPLETED,
        method=PaymentMethod.VOUCHER if minor > 0 else PaymentMethod.PURCHASE,
        description="test",
        history=(HistoryEntry(at=AT, status=PaymentStatus.COMPLETED, by="customer:c", note="created"),),
    )
    store.add(made)
    return made


class Stream:
    """The balance records `MemoryStore` would put on a stream: one per payment, with its images and a sequence."""

    def __init__(self, store: MemoryStore, customer: str) -> None:
        self.store, self.customer, self.records, self.held = store, customer, [], {}  # type: ignore[var-annotated]

    def pay(self, minor: int, currency: str = "USD") -> BalanceRecord:
        made = paid(self.store, self.customer, minor, currency)
        old = self.held.get(currency, 0)
        self.held[currency] = old + minor
        _, version = self.store.balance_state(self.customer, currency)
        record = BalanceRecord(
            self.customer,
            currency,
            old,
            old + minor,
            made.id,
            version,
            f"{1000 + version:021d}",
            "2026-03-01T12:00:00Z",
        )
        self.records.append(record)
        return record


def saved(store: MemoryStore, customer: str, **body: Any) -> dict[str, Any]:
    return alerts.save(store, customer, AlertIn(**body))


def low_events(store: MemoryStore) -> list[outbox.OutboxEvent]:
    return [e for e in store.tables.outbox.values() if e.detail_type == outbox.BALANCE_LOW]


def test_balance_records_fire_once_per_crossing_and_a_redelivery_changes_nothing() -> None:
    store, customer = MemoryStore(), "cust-a"
    stream = Stream(store, customer)
    stream.pay(2000)
    saved(store, customer, threshold="10.00", reset_threshold="15.00", emails=["a@example.com"])
    moves = [-1500, -100, 800, 600, -1200, 300, 2000, -100, -3000, 5000, 700]  # balances after each below
    # 500 (fire), 400, 1200 (between), 1800 (re-arm), 600 (fire), 900, 2900 (re-arm), 2800, -200 (fire), ...
    outcomes = []
    for move in moves:
        outcomes.append(alerts.on_balance_change(store, stream.pay(move)))
    assert outcomes.count(Outcome.FIRED) == 3 and outcomes.count(Outcome.REARMED) == 3
    events = low_events(store)
    assert len(events) == 3 and len({e.event_id for e in events}) == 3

    again = [alerts.on_balance_change(store, record) for record in stream.records[1:]]  # redelivered, all of it

    assert set(again) == {Outcome.SEEN, Outcome.NONE} and len(low_events(store)) == 3
    first = events[0].detail()
    assert first == {
        "event_id": alerts.event_id(customer, "USD", stream.records[1].sequence),
        "customer_id": customer,
        "occurred_at": "2026-03-01T12:00:00Z",
        "balance": {"currency": "USD", "amount": "5.00"},
        "threshold": "10.00",
        "reset_threshold": "15.00",
        "payment_id": stream.records[1].payment_id,
    }
    # every payment whose record was judged knows the balance right after it
    for record in stream.records[1:]:
        assert store.require(customer, record.payment_id).balance_after_minor == record.new_minor


def test_the_same_record_makes_the_same_event_id_and_another_currency_is_ignored() -> None:
    assert alerts.event_id("c", "USD", "17") == alerts.event_id("c", "USD", "17")
    assert (
        len({alerts.event_id("c", "USD", "17"), alerts.event_id("c", "EUR", "17"), alerts.event_id("d", "USD", "17")})
        == 3
    )
    store, customer = MemoryStore(), "cust-b"
    stream = Stream(store, customer)
    stream.pay(2000, "USD")
    stream.pay(2000, "EUR")
    saved(store, customer, currency="USD", threshold="10.00")
    assert alerts.on_balance_change(store, stream.pay(-1500, "EUR")) is Outcome.NONE
    assert low_events(store) == []
    assert alerts.on_balance_change(store, stream.pay(-1500, "USD")) is Outcome.FIRED


def test_saved_below_the_threshold_it_waits_for_a_rise_above_the_reset() -> None:
    store, customer = MemoryStore(), "cust-c"
    stream = Stream(store, customer)
    stream.pay(500)
    answer = saved(store, customer, threshold="10.00", reset_threshold="20.00")
    assert answer["state"] == "below"
    assert [alerts.on_balance_change(store, stream.pay(m)) for m in (1000, -1000, 1600, -2000)] == [
        Outcome.NONE,  # 15.00: between threshold and reset
        Outcome.NONE,  # 5.00: not alerted, it was never armed
        Outcome.REARMED,  # 21.00
        Outcome.FIRED,  # 1.00
    ]


def test_a_record_judged_by_an_earlier_save_is_judged_again() -> None:
    store, customer = MemoryStore(), "cust-d"
    stream = Stream(store, customer)
    stream.pay(2000)
    saved(store, customer, threshold="10.00")
    record = stream.pay(-1500)
    stale = store.low_balance_alert(customer)
    assert stale is not None
    saved(store, customer, threshold="1.00")  # a save after the change: judged at its version, 5.00 >= 1.00
    assert store.disarm_low_balance(customer, stale, record.version, alerts.low_event(record, stale)) is False
    assert alerts.on_balance_change(store, record) is Outcome.SEEN
    assert low_events(store) == []


def test_a_save_while_the_balance_moves_is_refused_and_judged_again() -> None:
    store, customer = MemoryStore(), "cust-e"
    paid(store, customer, 2000)
    late = LowBalanceAlert("USD", 1000, 1000, (), True, seen_version=0)
    assert store.put_low_balance_alert(customer, late) is None  # the balance is at version 1 now
    assert saved(store, customer, threshold="10.00")["state"] == "armed"


# ---- the routes -------------------------------------------------------------------------------------------------


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Any:
    module = load_function("account")
    monkeypatch.setattr(module, "store", MemoryStore())
    return module


def put(module: Any, body: Any, *groups: str, customer: str = "cust-r") -> tuple[int, Any]:
    claims = claims_for(customer, *(groups or ("finance",)))
    return invoke(module, http_event("PUT", "/alerts/low-balance", claims=claims, body=json.dumps(body)))


def get(module: Any, customer: str = "cust-r", group: str = "support") -> tuple[int, Any]:
    return invoke(module, http_event("GET", "/alerts/low-balance", claims=claims_for(customer, group)))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"currency": "XYZ", "threshold": "1.00"}, "currency"),
        ({"currency": "usd", "threshold": "1.00"}, "currency"),
        ({"threshold": "1.005"}, "threshold"),
        ({"currency": "JPY", "threshold": "1.5"}, "threshold"),
        ({"currency": "KWD", "threshold": "1.2500"}, "threshold"),
        ({"threshold": "abc"}, "threshold"),
        ({"currency": "JPY", "threshold": 1.5}, "threshold"),  # a JSON number: read as a Decimal, never a float
        ({"threshold": "10.00", "reset_threshold": "9.99"}, "reset_threshold"),
        ({"threshold": "10.00", "reset_threshold": "10.001"}, "reset_threshold"),
        ({"threshold": "1.00", "emails": [f"u{i}@example.com" for i in range(11)]}, "emails"),
        ({"threshold": "1.00", "emails": ["a@example.com", "not an address"]}, "emails.1"),
        ({"threshold": "1.00", "emails": ["a@example"]}, "emails.0"),
    ],
)
def test_a_bad_field_is_a_422_naming_it_and_nothing_is_stored(account: Any, body: dict[str, Any], field: str) -> None:
    status, answer = put(account, body)

    assert status == 422, answer
    assert answer["field"] == field
    assert field.split(".")[0] in answer["message"]
    assert account.store.tables.alerts == {}


def test_get_put_and_turning_off(account: Any) -> None:
    assert get(account) == (200, {"currency": "USD", "threshold": None, "reset_threshold": None, "emails": []})
    status, answer = put(account, {"threshold": "-12.50", "emails": ["ops@example.com"]}, "admin")
    assert status == 200 and answer == {
        "currency": "USD",
        "threshold": "-12.50",
        "reset_threshold": "-12.50",
        "emails": ["ops@example.com"],
        "state": "armed",
    }
    assert get(account) == (200, answer)
    assert put(account, {"currency": "KWD", "threshold": "1.250", "reset_threshold": "2"})[1]["reset_threshold"] == (
        "2.000"
    )
    assert put(account, {"threshold": "1.00"}, "support")[0] == 403
    assert get(account, customer="someone-else")[1]["threshold"] is None  # only the caller's own
    status, off = put(account, {"threshold": None})
    assert status == 200 and off == {"currency": "USD", "threshold": None, "reset_threshold": None, "emails": []}
    assert get(account)[1] == off and account.store.tables.alerts == {}


# ---- the e-mail -------------------------------------------------------------------------------------------------


def test_the_low_balance_email() -> None:
    store, customer = MemoryStore(), "cust-m"
    stream = Stream(store, customer)
    stream.pay(2000)
    saved(store, customer, threshold="10.00", reset_threshold="15.00", emails=["a@example.com", "b@example.com"])
    alerts.on_balance_change(store, stream.pay(-1550))
    [event] = low_events(store)
    detail = event.detail()

    email = alerts.low_balance_email(store, detail)

    assert email is not None
    assert email.to == ("a@example.com", "b@example.com") and email.key == detail["event_id"]
    assert email.subject == "Your balance is low: 4.50 USD"
    assert "threshold of 10.00 USD" in email.text and "above 15.00 USD" in email.text
    saved(store, customer, threshold="10.00", emails=[])
    assert alerts.low_balance_email(store, detail) is None  # nobody to tell
    saved(store, customer, threshold=None)
    assert alerts.low_balance_email(store, detail) is None  # turned off
