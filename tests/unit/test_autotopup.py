"""The auto top-up's rules over the in-memory store (docs/auto-topup.md): the crossing that starts a charge, the
outcomes of its payment, settings validation, consent and mandates, cards removed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from payments import account, autotopup, outbox
from payments.errors import InvalidInput
from payments.gateways.base import CreateRequest, CreateResult
from payments.identity import Caller, Group
from payments.models import PaymentStatus
from payments.store.memory import MemoryStore
from payments.store.records import AutoTopup, BalanceRecord, SavedCard

CUSTOMER = "cust-auto"
CALLER = Caller(sub="u1", email="payer@example.com", customer_id=CUSTOMER, groups=frozenset({Group.ADMIN}))
MOMENT = "2026-12-02T10:00:00.000Z"


def card(card_id: str = "card_1", state: str = "active", exp_year: int = 2030) -> SavedCard:
    return SavedCard(card_id, CUSTOMER, "pm_card_visa", "seti_1", state, "visa", "4242", 12, exp_year, True, MOMENT)


class FakeCards:
    """The saved cards' store methods (payments.autotopup.Cards), as the saved-cards module keeps them."""

    def __init__(self, *cards: SavedCard) -> None:
        self.cards = {c.id: c for c in cards}

    def saved_card(self, customer_id: str, card_id: str) -> SavedCard | None:
        found = self.cards.get(card_id)
        return found if found and found.customer_id == customer_id else None

    def stripe_customer(self, customer_id: str) -> str | None:
        return "cus_test"


class Charger:
    """A counting Stripe stand-in: one answer per idempotency key, as Stripe replays them."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.by_key: dict[str, CreateResult] = {}
        self.calls = 0

    def __call__(self, request: CreateRequest, stripe_customer: str) -> CreateResult:
        self.calls += 1
        if request.idempotency_key not in self.by_key:
            kind = self.answers.pop(0) if self.answers else "succeeded"
            ref = f"pi_{len(self.by_key) + 1}"
            self.by_key[request.idempotency_key] = {
                "succeeded": CreateResult(ref, PaymentStatus.COMPLETED, card_brand="visa", card_last4="4242"),
                "authentication_required": CreateResult(
                    ref,
                    PaymentStatus.PENDING,
                    next_action={"type": "stripe_sdk", "client_secret": f"{ref}_secret"},
                    failure_reason="authentication_required",
                    storable_next_action=False,
                ),
                "declined": CreateResult(
                    ref, PaymentStatus.CANCELLED, failure_reason="card_declined: insufficient_funds"
                ),
            }[kind]
        return self.by_key[request.idempotency_key]


def topup(**fields: Any) -> AutoTopup:
    base = AutoTopup(True, "card_1", "USD", 1000, 2500, 3)
    return base._replace(**fields)


def record(old: int, new: int, version: int, currency: str = "USD", at: str = MOMENT) -> BalanceRecord:
    return BalanceRecord(CUSTOMER, currency, old, new, f"pay_x{version}", version, str(version), at)


# ---- the crossing ---------------------------------------------------------------------------------------------------

DAY = "2026-12-02"
CROSSINGS = [
    # (the auto top-up, currency, old, new, starts a charge)
    (topup(), "USD", 1000, 999, True),  # at the threshold -> below
    (topup(), "USD", 1500, 200, True),
    (topup(), "USD", 999, 500, False),  # already below
    (topup(), "USD", 1000, 1000, False),  # at it is not below it
    (topup(), "USD", 500, 1500, False),  # rising
    (topup(), "EUR", 1500, 200, False),  # another currency
    (topup(in_flight="pay_1"), "USD", 1500, 200, False),  # never two in flight
    (topup(state="requires_action"), "USD", 1500, 200, False),
    (topup(state="disabled", enabled=False), "USD", 1500, 200, False),
    (topup(day=DAY, day_count=3), "USD", 1500, 200, False),  # max_per_day reached today
    (topup(day=DAY, day_count=2), "USD", 1500, 200, True),
    (topup(day="2026-12-01", day_count=3), "USD", 1500, 200, True),  # yesterday's count
    (topup(threshold_minor=-500), "USD", -500, -501, True),  # a credit limit: the same rule
]


@pytest.mark.parametrize(("setting", "currency", "old", "new", "starts"), CROSSINGS)
def test_the_crossing_rule(setting: AutoTopup, currency: str, old: int, new: int, starts: bool) -> None:
    assert autotopup.crosses(setting, currency, old, new, DAY) is starts


def _armed(store: MemoryStore, **fields: Any) -> AutoTopup:
    _, saved = store.write_auto_topup(CUSTOMER, topup(**fields), seen_rev=None)
    assert saved is not None
    return saved


def test_a_crossing_starts_one_charge_and_a_redelivered_record_none() -> None:
    store = MemoryStore()
    _armed(store)
    crossing = record(1500, 900, 7)

    assert autotopup.on_balance_change(store, crossing) is autotopup.Started.STARTED
    assert autotopup.on_balance_change(store, crossing) is autotopup.Started.SEEN
    held = store.auto_topup(CUSTOMER)
    assert held is not None and held.in_flight == autotopup.payment_id_of(crossing)
    assert (held.day, held.day_count, held.seen_version) == (DAY, 1, 7)
    payment = store.require(CUSTOMER, held.in_flight)
    assert payment.auto_topup and payment.status is PaymentStatus.PENDING and payment.amount_minor == 2500
    assert payment.method.value == "credit_card" and payment.payer_email is None
    assert payment.to_api().model_dump(mode="json", exclude_none=True)["auto_topup"] is True
    [charge] = [e for e in store.tables.outbox.values() if e.detail_type == outbox.AUTOTOPUP_CHARGE]
    assert charge.detail()["payment_id"] == payment.id and charge.detail()["card_id"] == "card_1"
    # Another crossing while it is in flight: nothing.
    assert autotopup.on_balance_change(store, record(1200, 800, 8)) is autotopup.Started.NONE


def test_the_payment_id_is_derived_from_the_crossing() -> None:
    first = autotopup.payment_id_of(record(1500, 900, 7))
    assert first == autotopup.payment_id_of(record(1500, 900, 7))
    assert first != autotopup.payment_id_of(record(1500, 900, 8))
    assert first.startswith("pay_") and len(first) == 30


def test_max_per_day_caps_the_charges_of_a_day() -> None:
    store = MemoryStore()
    _armed(store, max_per_day=2)
    started = []
    for version in range(1, 8, 2):
        started.append(autotopup.on_balance_change(store, record(1500, 900, version)))
        held = store.auto_topup(CUSTOMER)
        assert held is not None
        if held.in_flight:  # its outcome recorded: another may start
            store.write_auto_topup(CUSTOMER, held._replace(in_flight=None), seen_rev=held.rev)
    assert started.count(autotopup.Started.STARTED) == 2
    # The next day counts again.
    assert autotopup.on_balance_change(store, record(1500, 900, 20, at="2026-12-03T01:00:00Z")) is (
        autotopup.Started.STARTED
    )


# ---- the charge and its outcomes ----------------------------------------------------------------------------------


def _start(store: MemoryStore, version: int = 1) -> str:
    assert autotopup.on_balance_change(store, record(1500, 900, version)) is autotopup.Started.STARTED
    held = store.auto_topup(CUSTOMER)
    assert held is not None and held.in_flight is not None
    return held.in_flight


def _charge(store: MemoryStore, payment_id: str, charger: Charger, cards: FakeCards | None = None) -> Any:
    detail = {"customer_id": CUSTOMER, "payment_id": payment_id, "card_id": "card_1"}
    return autotopup.charge(store, cards or FakeCards(card()), detail, charger)


def _events(store: MemoryStore, kind: str) -> list[dict[str, Any]]:
    return [e.detail() for e in store.tables.outbox.values() if e.detail_type == kind]


def test_succeeded_completes_the_payment_and_the_auto_top_up_stays_active_with_no_failures() -> None:
    store = MemoryStore()
    _armed(store, failures=2)
    payment_id = _start(store)
    charger = Charger("succeeded")

    assert _charge(store, payment_id, charger) is autotopup.Charged.SETTLED
    assert _charge(store, payment_id, charger) is autotopup.Charged.SETTLED  # a retry: nothing more
    payment = store.require(CUSTOMER, payment_id)
    assert payment.status is PaymentStatus.COMPLETED and payment.gateway_ref == "pi_1" and charger.calls == 1
    assert autotopup.on_payment(store, CUSTOMER, payment_id) is autotopup.Handled.SUCCEEDED
    assert autotopup.on_payment(store, CUSTOMER, payment_id) is autotopup.Handled.SEEN  # redelivered
    held = store.auto_topup(CUSTOMER)
    assert held is not None and (held.state, held.failures, held.in_flight) == ("active", 0, None)
    [event] = _events(store, outbox.AUTOTOPUP_SUCCEEDED)
    assert event["payment"]["id"] == payment_id and event["payment"]["auto_topup"] is True


def test_authentication_required_leaves_it_pending_and_the_auto_top_up_requires_action() -> None:
    store = MemoryStore()
    _armed(store)
    payment_id = _start(store)
    charger = Charger("authentication_required")

    assert _charge(store, payment_id, charger) is autotopup.Charged.REQUIRES_ACTION
    assert _charge(store, payment_id, charger) is autotopup.Charged.REQUIRES_ACTION  # a retry: the same PI
    assert len(charger.by_key) == 1
    payment = store.require(CUSTOMER, payment_id)
    assert payment.status is PaymentStatus.PENDING and payment.gateway_ref == "pi_1" and payment.next_action is None
    held = store.auto_topup(CUSTOMER)
    assert held is not None and (held.state, held.in_flight) == ("requires_action", payment_id)
    assert len(_events(store, outbox.AUTOTOPUP_REQUIRES_ACTION)) == 1
    # No charge while it waits.
    assert autotopup.on_balance_change(store, record(1200, 800, 5)) is autotopup.Started.NONE
    # The customer authenticates on the page: the payment completes, the auto top-up is active again.
    store.transition(CUSTOMER, payment_id, PaymentStatus.COMPLETED, autotopup.Cause.GATEWAY_SUCCESS, "gateway:stripe")
    assert autotopup.on_payment(store, CUSTOMER, payment_id) is autotopup.Handled.SUCCEEDED
    held = store.auto_topup(CUSTOMER)
    assert held is not None and (held.state, held.failures, held.in_flight) == ("active", 0, None)


def test_three_declines_in_a_row_disable_it_with_one_failed_event_each() -> None:
    store = MemoryStore()
    _armed(store)
    handled = []
    for version in (1, 3, 5):
        payment_id = _start(store, version)
        assert _charge(store, payment_id, Charger("declined")) is autotopup.Charged.SETTLED
        assert store.require(CUSTOMER, payment_id).status is PaymentStatus.CANCELLED
        handled.append(autotopup.on_payment(store, CUSTOMER, payment_id))
    assert handled == [autotopup.Handled.FAILED, autotopup.Handled.FAILED, autotopup.Handled.DISABLED]
    held = store.auto_topup(CUSTOMER)
    assert held is not None and (held.state, held.failures, held.enabled, held.reason) == (
        "disabled",
        3,
        False,
        "declined",
    )
    failed = _events(store, outbox.AUTOTOPUP_FAILED)
    assert [e["disabled"] for e in failed] == [False, False, True]
    assert autotopup.on_balance_change(store, record(1500, 900, 9)) is autotopup.Started.NONE
    store.tables.mandates.clear()
    emails = [autotopup.disabled_email(store, {**e, "customer_id": CUSTOMER}) for e in failed]
    assert emails[:2] == [None, None]  # a failure that leaves it on sends nothing


def test_a_decline_between_successes_does_not_accumulate() -> None:
    store = MemoryStore()
    _armed(store, max_per_day=5)
    for version, answer in ((1, "declined"), (3, "declined"), (5, "succeeded"), (7, "declined")):
        payment_id = _start(store, version)
        _charge(store, payment_id, Charger(answer))
        autotopup.on_payment(store, CUSTOMER, payment_id)
    held = store.auto_topup(CUSTOMER)
    assert held is not None and (held.state, held.failures) == ("active", 1)


def test_a_removed_card_cancels_the_charge_and_turns_it_off() -> None:
    store = MemoryStore()
    _armed(store)
    payment_id = _start(store)
    assert _charge(store, payment_id, Charger(), FakeCards(card(state="removed"))) is autotopup.Charged.SETTLED
    assert store.require(CUSTOMER, payment_id).failure_reason == "card_unavailable"
    held = store.auto_topup(CUSTOMER)
    assert held is not None and (held.state, held.reason) == ("disabled", "card_removed")
    [event] = _events(store, outbox.AUTOTOPUP_DISABLED)
    assert event["disabled"] is True and event["reason"] == "card_removed"
    assert autotopup.on_payment(store, CUSTOMER, payment_id) is autotopup.Handled.FAILED  # in flight no more
    held = store.auto_topup(CUSTOMER)
    assert held is not None and (held.in_flight, held.state, held.failures) == (None, "disabled", 1)


def test_the_saved_cards_removing_a_card_turn_off_only_the_auto_top_up_that_charges_it() -> None:
    store = MemoryStore()
    _armed(store)
    assert autotopup.card_removed(store, CUSTOMER, "card_other") is False
    assert autotopup.card_removed(store, CUSTOMER, "card_1") is True
    assert autotopup.card_removed(store, CUSTOMER, "card_1") is False  # off already
    held = store.auto_topup(CUSTOMER)
    assert held is not None and (held.state, held.reason, held.enabled) == ("disabled", "card_removed", False)
    [event] = _events(store, outbox.AUTOTOPUP_DISABLED)
    assert event["reason"] == "card_removed"


def test_an_expired_card_at_charge_time_turns_it_off() -> None:
    store = MemoryStore()
    _armed(store)
    payment_id = _start(store)
    _charge(store, payment_id, Charger(), FakeCards(card(exp_year=2020)))
    held = store.auto_topup(CUSTOMER)
    assert held is not None and (held.state, held.reason) == ("disabled", "card_expired")


# ---- settings, consent, mandates ------------------------------------------------------------------------------------


def _save(store: MemoryStore, cards: FakeCards | None = None, **fields: Any) -> dict[str, Any]:
    body = {"enabled": True, "payment_method_id": "card_1", "threshold": "10.00", "amount": "25.00", **fields}
    return autotopup.save(store, cards or FakeCards(card()), CUSTOMER, autotopup.AutoTopupIn(**body), CALLER)


REFUSED = [
    ({"currency": "EUR"}, "currency"),  # not allowed for the account below
    ({"currency": "XXQ"}, "currency"),
    ({"threshold": None}, "threshold"),
    ({"threshold": "1.001"}, "threshold"),
    ({"amount": "0"}, "amount"),
    ({"amount": "1.00"}, "amount"),  # below min_payment
    ({"amount": "600.00"}, "amount"),  # above max_payment
    ({"threshold": "900.00", "amount": "200.00"}, "amount"),  # could pass max_balance (1000.00)
    ({"payment_method_id": "card_nope"}, "payment_method_id"),
    ({"payment_method_id": "card_pending"}, "payment_method_id"),
    ({"payment_method_id": "card_removed"}, "payment_method_id"),
    ({"payment_method_id": "card_expired"}, "payment_method_id"),
    ({"payment_method_id": None}, "payment_method_id"),
]


@pytest.mark.parametrize(("fields", "field"), REFUSED)
def test_settings_are_refused_naming_the_field_and_nothing_is_stored(fields: dict[str, Any], field: str) -> None:
    store = MemoryStore()
    account.save(
        store,
        CUSTOMER,
        account.SettingsIn(
            account_currency="USD", allowed_currencies=["USD"], min_payment="5.00", max_payment="500.00",
            max_balance="1000.00",
        ),
        "operator:o",
    )  # fmt: skip
    cards = FakeCards(
        card(), card("card_pending", "pending"), card("card_removed", "removed"), card("card_expired", exp_year=2020)
    )
    with pytest.raises(InvalidInput) as refused:
        _save(store, cards, **fields)
    assert refused.value.field == field
    assert store.auto_topup(CUSTOMER) is None and store.tables.mandates == {}


def test_threshold_plus_amount_exactly_at_max_balance_is_allowed() -> None:
    store = MemoryStore()
    account.save(store, CUSTOMER, account.SettingsIn(account_currency="USD", max_balance="35.00"), "operator:o")
    assert _save(store)["state"] == "active"


def test_turning_it_on_records_the_consent_and_changed_terms_a_new_mandate() -> None:
    store = MemoryStore()
    first = _save(store)
    assert (first["enabled"], first["state"], first["failures"], first["last_attempt"]) == (True, "active", 0, None)
    [mandate] = store.tables.mandates.values()
    assert (mandate.sub, mandate.email, mandate.card_brand, mandate.card_last4) == (
        "u1",
        "payer@example.com",
        "visa",
        "4242",
    )
    assert (mandate.threshold_minor, mandate.amount_minor, mandate.max_per_day) == (1000, 2500, 3)
    assert first["mandate_id"] == mandate.id

    assert _save(store)["mandate_id"] == mandate.id  # the same terms: the same mandate
    changed = _save(store, amount="30.00")
    assert changed["mandate_id"] != mandate.id and len(store.tables.mandates) == 2  # both kept
    assert store.mandate(CUSTOMER, mandate.id) == mandate

    off = _save(store, enabled=False)
    assert (off["enabled"], off["state"]) == (False, "disabled")
    again = _save(store, amount="30.00")
    assert again["state"] == "active" and again["mandate_id"] not in (mandate.id, changed["mandate_id"])
    assert autotopup.get(store, CUSTOMER) == again


def test_with_none_set_get_answers_off_in_the_account_currency() -> None:
    answer = autotopup.get(MemoryStore(), CUSTOMER)
    assert (answer["enabled"], answer["state"], answer["threshold"], answer["last_attempt"]) == (
        False,
        "disabled",
        None,
        None,
    )


def test_an_operator_disables_it() -> None:
    store = MemoryStore()
    _save(store)
    answer = autotopup.disable(store, CUSTOMER, "operator", "operator:o1")
    assert (answer["state"], answer["reason"]) == ("disabled", "operator")
    assert answer["mandate"]["accepted_by"] == "u1"
    held = store.auto_topup(CUSTOMER)
    assert held is not None and held.changed_by == "operator:o1"


def test_the_emails() -> None:
    store = MemoryStore()
    _save(store)
    detail = {"event_id": "evt_1", "customer_id": CUSTOMER, "payment": {"id": "pay_1", "amount": "25.00",
              "currency": "USD"}}  # fmt: skip
    email = autotopup.requires_action_email(store, detail)
    assert email is not None and email.to == ("payer@example.com",) and email.key == "evt_1"
    assert "http" in email.text
    off = autotopup.disabled_email(store, {**detail, "disabled": True, "reason": "declined", "currency": "USD"})
    assert off is not None and "declined 3 times" in off.text
    assert json.dumps(off.to)
