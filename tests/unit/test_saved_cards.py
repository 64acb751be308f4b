"""The saved-card use case (docs/saved-cards.md) against MemoryStore and a fake Stripe: validation, the Customer
created once under concurrency, default rules, removal, setup events bound only through our pointer."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pytest

from payments import saved_cards
from payments.errors import InvalidInput, NotFound
from payments.gateways.base import EventKind, GatewayEvent, SetupResult
from payments.identity import Caller
from payments.settlement import Outcome, apply_event
from payments.store.memory import MemoryStore

TODAY = date(2026, 12, 1)
CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}


class FakeStripe:
    """Counts Customers; a Stripe that replays a Customer per idempotency key, as Stripe does."""

    def __init__(self, status: str = "succeeded") -> None:
        self.lock = threading.Lock()
        self.customers: dict[str, str] = {}
        self.created = 0
        self.status = status
        self.detached: list[str] = []
        self.setups = 0

    def ensure_customer(self, customer_id: str, email: str | None) -> str:
        with self.lock:
            key = f"{customer_id}|{email}"
            if key not in self.customers:
                self.created += 1
                self.customers[key] = f"cus_{self.created}"
            return self.customers[key]

    def setup_card(self, stripe_customer: str, **kw: Any) -> SetupResult:
        with self.lock:
            self.setups += 1
            n = self.setups
        return SetupResult(
            setup_intent=f"seti_{n}",
            status=self.status,
            payment_method=f"pm_{n}",
            brand="visa",
            last4="4242",
            exp_month=12,
            exp_year=2031,
            client_secret="seti_secret" if self.status == "requires_action" else None,
            failure_reason="card_declined: generic_decline" if self.status == "failed" else None,
        )

    def detach(self, payment_method: str) -> None:
        self.detached.append(payment_method)


@pytest.fixture(autouse=True)
def _signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(saved_cards, "derived_key", lambda purpose: purpose.encode() * 2)


def caller(customer: str = "cust-1") -> Caller:
    return Caller(sub="u1", email="a@example.com", customer_id=customer, groups=frozenset())


def command(customer: str = "cust-1", key: str = "k1", **body: Any) -> saved_cards.SaveCommand:
    return saved_cards.validate(
        saved_cards.SaveCardBody.model_validate(body or {"card": CARD}), caller(customer), customer, key, today=TODAY
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "card"),
        ({"card": CARD, "payment_method": "pm_x"}, "payment_method"),
        ({"payment_method": "tok_visa"}, "payment_method"),
        ({"card": {**CARD, "number": "4242424242424241"}}, "card.number"),
        ({"card": {**CARD, "cvc": "1"}}, "card.cvc"),
        ({"card": {**CARD, "exp_year": 2020}}, "card.exp_year"),
    ],
)
def test_validation_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        saved_cards.validate(saved_cards.SaveCardBody.model_validate(body), caller(), "cust-1", "k", today=TODAY)
    assert caught.value.field == field
    assert "4242" not in caught.value.message


def test_the_command_holds_no_unkeyed_card_data() -> None:
    made = command()
    assert "4242424242424242" not in repr(made) and "4242424242424242" not in str(made.as_idempotency_data())


def test_one_stripe_customer_however_many_race() -> None:
    store, stripe = MemoryStore(), FakeStripe()
    with ThreadPoolExecutor(10) as pool:
        found = list(
            pool.map(lambda i: saved_cards.ensure_stripe_customer(store, stripe, "cust-1", f"u{i}@x"), range(10))
        )
    assert len(set(found)) == 1 and stripe.created == 1
    assert store.stripe_customer("cust-1") == found[0]


def test_first_active_card_is_default_and_removal_passes_it_on() -> None:
    store, stripe = MemoryStore(), FakeStripe()
    first = saved_cards.save(store, command(key="a"), lambda: stripe)["body"]  # type: ignore[arg-type,return-value]
    second = saved_cards.save(store, command(key="b"), lambda: stripe)["body"]  # type: ignore[arg-type,return-value]
    assert first["default"] and not second["default"]
    assert saved_cards.make_default(store, "cust-1", second["id"])["default"]
    shown = {c["id"]: c["default"] for c in saved_cards.listing(store, "cust-1")["items"]}
    assert shown == {second["id"]: True, first["id"]: False}
    saved_cards.remove(store, "cust-1", second["id"], lambda: stripe)  # type: ignore[arg-type,return-value]
    assert stripe.detached == ["pm_2"]
    [left] = saved_cards.listing(store, "cust-1")["items"]
    assert left["id"] == first["id"] and left["default"]
    with pytest.raises(NotFound):
        saved_cards.remove(store, "cust-2", first["id"], lambda: stripe)  # type: ignore[arg-type,return-value]
    with pytest.raises(NotFound):
        saved_cards.remove(store, "cust-1", second["id"], lambda: stripe)  # type: ignore[arg-type,return-value]


def test_a_retry_gets_the_same_card() -> None:
    store, stripe = MemoryStore(), FakeStripe()
    stripe.setup_card = lambda *a, **k: SetupResult("seti_same", "succeeded", "pm_same", "visa", "4242", 12, 2031)  # type: ignore[method-assign]
    one = saved_cards.save(store, command(key="a"), lambda: stripe)  # type: ignore[arg-type,return-value]
    two = saved_cards.save(store, command(key="a"), lambda: stripe)  # type: ignore[arg-type,return-value]
    assert one["body"]["id"] == two["body"]["id"] and len(store.saved_cards("cust-1")) == 1


def _setup_event(kind: EventKind, ref: str, event_id: str = "evt_1", pm: str | None = None) -> GatewayEvent:
    return GatewayEvent("stripe", event_id, "setup_intent.x", kind, None, "cust-1", gateway_ref=ref, payment_method=pm)


def test_3ds_on_setup_then_the_webhook_activates_the_card_once() -> None:
    store, stripe = MemoryStore(), FakeStripe("requires_action")
    saved = saved_cards.save(store, command(), lambda: stripe)  # type: ignore[arg-type,return-value]
    assert saved["status"] == 201 and saved["body"]["state"] == "pending"
    assert saved["body"]["next_action"] == {"type": "stripe_sdk", "client_secret": "seti_secret"}
    assert not saved["body"]["default"]
    with pytest.raises(InvalidInput) as caught:
        saved_cards.usable_card(store, "cust-1", saved["body"]["id"])
    assert caught.value.field == "saved_payment_method"
    assert (
        apply_event(store, None, _setup_event(EventKind.SETUP_SUCCEEDED, "seti_other")).outcome
        is Outcome.UNKNOWN_PAYMENT
    )  # type: ignore[arg-type]
    assert (
        apply_event(store, None, _setup_event(EventKind.SETUP_SUCCEEDED, "seti_1", pm="pm_9", event_id="e0")).outcome
        is Outcome.MISMATCH
    )  # type: ignore[arg-type]
    assert apply_event(store, None, _setup_event(EventKind.SETUP_SUCCEEDED, "seti_1")).outcome is Outcome.CARD_ACTIVE  # type: ignore[arg-type]
    assert apply_event(store, None, _setup_event(EventKind.SETUP_SUCCEEDED, "seti_1")).outcome is Outcome.DUPLICATE  # type: ignore[arg-type]
    card, customer = saved_cards.usable_card(store, "cust-1", saved["body"]["id"])
    assert card.default and card.payment_method == "pm_1" and customer == "cus_1"


def test_setup_failed_marks_the_card_failed_and_unlisted() -> None:
    store, stripe = MemoryStore(), FakeStripe("requires_action")
    saved_cards.save(store, command(), lambda: stripe)  # type: ignore[arg-type,return-value]
    assert apply_event(store, None, _setup_event(EventKind.SETUP_FAILED, "seti_1")).outcome is Outcome.CARD_FAILED  # type: ignore[arg-type]
    assert saved_cards.listing(store, "cust-1") == {"items": []}
    [card] = store.saved_cards("cust-1")
    assert card.state == "failed"


def test_a_declined_card_is_402_and_not_listed() -> None:
    store, stripe = MemoryStore(), FakeStripe("failed")
    answer = saved_cards.save(store, command(), lambda: stripe)  # type: ignore[arg-type,return-value]
    assert answer["status"] == 402 and answer["body"]["field"] == "card"
    assert saved_cards.listing(store, "cust-1") == {"items": []}


def test_unknown_or_other_customers_card_is_422_for_payments() -> None:
    store, stripe = MemoryStore(), FakeStripe()
    saved = saved_cards.save(store, command(), lambda: stripe)["body"]  # type: ignore[arg-type,return-value]
    for customer, card_id in (("cust-2", saved["id"]), ("cust-1", "card_nope"), ("cust-1", "pm_1")):
        with pytest.raises(InvalidInput) as caught:
            saved_cards.usable_card(store, customer, card_id)
        assert caught.value.field == "saved_payment_method"
