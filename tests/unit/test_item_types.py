"""The store's one table of item types (`payments.store.ITEM_TYPES`) against docs/data-model.md, and every item
the store builds against the table: keys of the documented shape, no attribute that is not documented."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus
from payments.money import Money
from payments.outbox import OutboxEvent
from payments.store import Dedupe, card_items, keys, to_item, writes
from payments.store import voucher_items as vouchers
from payments.store.alert_items import alert_item
from payments.store.autotopup_items import auto_topup_item, mandate_item
from payments.store.export_records import ExportFilters, ExportRecord, ExportStatus, export_item
from payments.store.items import ITEM_TYPES, ItemType
from payments.store.outbox_items import outbox_item
from payments.store.records import AutoTopup, LowBalanceAlert, Mandate, SavedCard
from payments.store.webhook_items import Delivery, DeliveryState, WebhookEndpoint, delivery_item, endpoint_item

DATA_MODEL = Path(__file__).resolve().parents[2] / "docs" / "data-model.md"
MOMENT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ISSUED = "2026-03-01T12:00:00.000Z"


def documented_items() -> dict[str, tuple[str, str, set[str], dict[str, str]]]:
    """The rows of the "Items" table: name -> (PK, SK, attributes, index keys)."""
    text = DATA_MODEL.read_text()
    section = text.split("## Items", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, str, set[str], dict[str, str]]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("item", "") or set(cells[0]) <= {"-"}:
            continue
        name, pk, sk, other = cells
        attributes: set[str] = set()
        index_keys: dict[str, str] = {}
        for quoted in re.findall(r"`([^`]+)`", other):
            attribute, _, pattern = quoted.partition("=")
            if pattern:
                index_keys[attribute] = pattern
            else:
                attributes.add(attribute)
        rows[name] = (pk.strip("`"), sk.strip("`"), attributes, index_keys)
    return rows


def test_every_item_type_is_documented_and_every_documented_item_exists() -> None:
    assert sorted(documented_items()) == sorted(t.name for t in ITEM_TYPES)


@pytest.mark.parametrize("item_type", ITEM_TYPES, ids=[t.name for t in ITEM_TYPES])
def test_the_documented_keys_and_attributes_are_the_stores(item_type: ItemType) -> None:
    pk, sk, attributes, index_keys = documented_items()[item_type.name]

    assert (pk, sk) == (item_type.pk, item_type.sk)
    assert index_keys == dict(item_type.index_keys)
    assert attributes == set(item_type.attributes)


def test_item_types_are_told_apart_by_their_keys() -> None:
    keys = [(t.pk, t.sk) for t in ITEM_TYPES]
    assert len(set(keys)) == len(keys)
    assert len({t.name for t in ITEM_TYPES}) == len(ITEM_TYPES)


def shape(pattern: str) -> re.Pattern[str]:
    """A key pattern as a regular expression: each `<...>` is any non-empty value."""
    return re.compile(
        "".join(".+" if part.startswith("<") else re.escape(part) for part in re.split(r"(<[^>]+>)", pattern) if part)
    )


def _payment(**extra: Any) -> Payment:
    values: dict[str, Any] = {
        "id": "pay_01JDQ4W6S8X7C3M2K9V5T0R1AB",
        "customer_id": "cust-1",
        "created_at": MOMENT,
        "completed_at": MOMENT,
        "amount_minor": 1250,
        "currency": "USD",
        "status": PaymentStatus.PENDING,
        "method": PaymentMethod.PAYSTACK,
        "description": "Paystack payment pay-1.1",
        "reference": "REF-1",
        "gateway_ref": "pay-1.1",
        "gateway_refs": frozenset({"pay-1.1", "pay-1.2"}),
        "next_action": {"type": "redirect", "url": "https://checkout.example/x"},
        "failure_reason": "declined",
        "failure_field": "payment_method",
        "gateway_attempts": 2,
        "gateway_claim_until": 1_900_000_000_000,
        "card_brand": "visa",
        "card_last4": "4242",
        "refund_of": "pay_01JDQ4W6S8X7C3M2K9V5T0R1AC",
        "history": (HistoryEntry(at=MOMENT, status=PaymentStatus.PENDING, by="customer:c", note="created"),),
    }
    return Payment.model_validate(values | extra)


BUILT = {
    "payment": to_item(_payment()),
    "idempotency pointer": writes.idempotency_pointer("cust-1", "ab12", "pay_1"),
    "gateway pointer": writes.gateway_pointer("paystack", "pay-1.1", "cust-1", "pay_1"),
    "bank reference": writes.bank_reference("PAY-7KQ4-M9XT-2HW3", "pay_1"),
    "event dedupe": writes.event_item(
        Dedupe("stripe", "e1"), "pay_1", ISSUED, 1, event_type="t", outcome="recorded"
    ),
    "outbox event": outbox_item(
        OutboxEvent("evt_1", "payment.completed", "cust-1", "pay_1", ISSUED, "{}"), 1_900_000_000
    ),
    "low-balance alert": alert_item(
        "cust-1", LowBalanceAlert("USD", 500, 1000, ("a@example.com",), True, 3, "r1", ISSUED)
    ),
    "auto top-up": auto_topup_item(
        "cust-1",
        AutoTopup(
            True, "card_1", "USD", 1000, 2500, 3, "active", 1, "pay_1", "2026-03-01", 1, "pay_1", "mdt_1", ISSUED,
            "declined", "customer:c", 4, "r1", ISSUED,
        ),
    ),
    "mandate": mandate_item(
        Mandate("mdt_1", "cust-1", ISSUED, "sub-1", "a@example.com", "card_1", "visa", "4242", "USD", 1000, 2500, 3)
    ),
    "voucher": vouchers.voucher_item("f00d", Money(500, "EUR"), 1_900_000_000, ISSUED, "operator:o"),
    "voucher attempts": vouchers.voucher_attempts("cust-1", 1, 1_900_000_000, 1_900_003_600),
    "export": export_item(
        ExportRecord(
            "e1", "cust-1", ExportStatus.RUNNING, ExportFilters(PaymentStatus.COMPLETED, MOMENT, MOMENT, "q", True),
            "exports/cust-1/e1.csv", MOMENT, 1_900_000_000,
        ),
        "customer:c",
    ),
    "webhook endpoint": endpoint_item(
        WebhookEndpoint("whe_1", "https://example.com/h", ("payment.completed",), "cust-1", "Y2lwaGVy", ISSUED, "o")
    ),
    "saved card": card_items._card_item(
        SavedCard("card_1", "cust-1", "pm_1", "seti_1", "active", "visa", "4242", 12, 2031, True, ISSUED), ISSUED
    ),
    "webhook delivery": delivery_item(
        Delivery("whe_1", "evt_1", "payment.completed", "cust-1", DeliveryState.PENDING, ISSUED), 1_900_000_000
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BUILT))
def test_each_item_the_store_builds_has_its_types_keys_and_only_its_attributes(name: str) -> None:
    [item_type] = [t for t in ITEM_TYPES if t.name == name]
    item = BUILT[name]

    assert shape(item_type.pk).fullmatch(item["PK"]["S"])
    assert shape(item_type.sk).fullmatch(item["SK"]["S"])
    index_keys = dict(item_type.index_keys)
    for attribute, pattern in index_keys.items():
        if attribute in item:
            assert shape(pattern).fullmatch(item[attribute]["S"]), attribute
    assert set(item) - {"PK", "SK"} - set(index_keys) <= set(item_type.attributes)


def test_a_pending_payment_is_in_both_indexes_and_a_settled_one_only_in_the_status_index() -> None:
    pending, completed = to_item(_payment()), to_item(_payment(status=PaymentStatus.COMPLETED))
    assert {"GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK"} <= set(pending)
    assert pending["GSI1PK"]["S"] == "CUST#cust-1#pending"
    assert {"GSI1PK", "GSI1SK"} <= set(completed) and not {"GSI2PK", "GSI2SK"} & set(completed)


def test_every_key_builder_makes_its_documented_shape() -> None:
    by_name = {t.name: t for t in ITEM_TYPES}
    built = {
        ("payment", "PK"): keys.customer_pk("c"),
        ("payment", "SK"): keys.payment_sk("pay_1"),
        ("payment", "GSI1PK"): keys.status_pk("c", PaymentStatus.CANCELLED),
        ("payment", "GSI2PK"): keys.pending_pk(PaymentMethod.PAYPAL),
        ("balance", "SK"): keys.BALANCE_SK,
        ("low-balance alert", "SK"): keys.LOW_BALANCE_ALERT_SK,
        ("auto top-up", "SK"): keys.AUTOTOPUP_SK,
        ("mandate", "SK"): keys.mandate_sk("mdt_1"),
        ("idempotency pointer", "SK"): keys.idempotency_sk("ab"),
        ("gateway pointer", "PK"): keys.gateway_ref_pk("stripe", "pi_1"),
        ("gateway pointer", "SK"): keys.GATEWAY_REF_SK,
        ("bank reference", "PK"): keys.reference_pk("PAY-1"),
        ("bank reference", "SK"): keys.REFERENCE_SK,
        ("event dedupe", "PK"): keys.event_pk("charge", "ab"),
        ("event dedupe", "SK"): keys.EVENT_SK,
        ("outbox event", "PK"): keys.outbox_pk("evt_1"),
        ("outbox event", "SK"): keys.OUTBOX_SK,
        ("voucher", "PK"): keys.voucher_pk("f00d"),
        ("voucher", "SK"): keys.VOUCHER_SK,
        ("voucher attempts", "SK"): keys.VOUCHER_ATTEMPTS_SK,
        ("export", "SK"): keys.export_sk("e1"),
        ("webhook endpoint", "PK"): keys.WEBHOOKS_PK,
        ("webhook endpoint", "SK"): keys.endpoint_sk("whe_1"),
        ("webhook delivery", "PK"): keys.webhook_pk("whe_1"),
        ("webhook delivery", "SK"): keys.delivery_sk("evt_1"),
        ("stripe customer", "SK"): keys.STRIPE_CUSTOMER_SK,
        ("saved card", "SK"): keys.card_sk("card_1"),
    }
    for (name, attribute), built_key in built.items():
        item_type = by_name[name]
        pattern = {"PK": item_type.pk, "SK": item_type.sk, **dict(item_type.index_keys)}[attribute]
        assert shape(pattern).fullmatch(built_key), (name, attribute, built_key)
