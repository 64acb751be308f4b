"""The items of the payments table: one table of their types, their keys and attributes.

docs/data-model.md's items table is checked against it, and so is every item the store builds and every key
builder of `keys` (tests/unit/test_item_types.py). Plain data: the store does not need it at run time, so the
read functions do not import it.
"""

from __future__ import annotations

from typing import NamedTuple


class ItemType(NamedTuple):
    """One kind of item. Keys are patterns: `<...>` stands for a value."""

    name: str  # as docs/data-model.md names it
    pk: str
    sk: str
    attributes: tuple[str, ...]  # every other attribute it may hold
    index_keys: tuple[tuple[str, str], ...] = ()  # (attribute, pattern) of the secondary indexes it is in


ITEM_TYPES: tuple[ItemType, ...] = (
    ItemType(
        "payment",
        "CUST#<customer>",
        "PAY#<payment id>",
        (
            "type",
            "id",
            "customer_id",
            "amount_minor",
            "currency",
            "status",
            "method",
            "description",
            "created_at",
            "completed_at",
            "history",
            "reference",
            "card_brand",
            "card_last4",
            "gateway_ref",
            "gateway_refs",
            "next_action",
            "gw_attempts",
            "gw_claim_until",
            "failure_reason",
            "failure_field",
            "pending_reason",
            "last_error",
            "refund_of",
            "refund_status",
            "refunded_minor",
            "charged_back_minor",
            "refund_ids",
            "dispute_id",
            "dispute_status",
            "dispute_minor",
            "dispute_reason",
            "dispute_opened_at",
            "requested_minor",
            "surcharge_minor",
            "gateway_fee_minor",
            "payer_email",
            "balance_after_minor",
            "auto_topup",
            "search_text",
        ),
        (
            ("GSI1PK", "CUST#<customer>#<status>"),
            ("GSI1SK", "PAY#<payment id>"),
            ("GSI2PK", "<PENDING or WATCH>#<method, or dispute or refund>"),
            ("GSI2SK", "PAY#<payment id>"),
        ),
    ),
    ItemType(
        "balance", "CUST#<customer>", "BALANCE", ("bal_<CUR>", "updated_at", "last_payment", "last_currency", "version")
    ),
    ItemType(
        "low-balance alert",
        "CUST#<customer>",
        "ALERT#low_balance",
        ("type", "currency", "threshold_minor", "reset_minor", "emails", "armed", "seen_version", "rev", "updated_at"),
    ),
    ItemType(
        "auto top-up",
        "CUST#<customer>",
        "AUTOTOPUP",
        (
            "type",
            "enabled",
            "card_id",
            "currency",
            "threshold_minor",
            "amount_minor",
            "max_per_day",
            "state",
            "failures",
            "in_flight",
            "day",
            "day_count",
            "last_payment",
            "mandate_id",
            "mandate_at",
            "reason",
            "changed_by",
            "seen_version",
            "rev",
            "updated_at",
        ),
    ),
    ItemType(
        "mandate",
        "CUST#<customer>",
        "MANDATE#<mandate id>",
        (
            "type",
            "id",
            "accepted_at",
            "sub",
            "email",
            "card_id",
            "card_brand",
            "card_last4",
            "currency",
            "threshold_minor",
            "amount_minor",
            "max_per_day",
        ),
    ),
    ItemType("account settings", "CUST#<customer>", "SETTINGS", ("type", "document", "updated_at", "updated_by")),
    ItemType("idempotency pointer", "CUST#<customer>", "IDEM#<hash of customer+key>", ("type", "payment_id")),
    ItemType("gateway pointer", "GWREF#<provider>#<gateway ref>", "GWREF", ("type", "customer_id", "payment_id")),
    ItemType("bank reference", "REF#<reference>", "REF", ("payment_id",)),
    ItemType(
        "event dedupe",
        "EVENT#<source>#<hash of id>",
        "EVENT",
        ("type", "payment_id", "recorded_at", "expires_at", "event_type", "outcome", "withdrawn", "reinstated"),
    ),
    ItemType(
        "outbox event",
        "OUTBOX#<event id>",
        "OUTBOX",
        ("type", "event_id", "detail_type", "customer_id", "subject_id", "occurred_at", "detail", "expires_at"),
    ),
    ItemType(
        "voucher",
        "VOUCHER#<sha256 of code>",
        "VOUCHER",
        (
            "type",
            "state",
            "amount_minor",
            "currency",
            "expires_epoch",
            "issued_at",
            "issued_by",
            "redeemed_by",
            "redeemed_at",
            "payment_id",
        ),
    ),
    ItemType(
        "e-mail marker",
        "EMAIL#<e-mail key>",
        "EMAIL",
        ("type", "state", "claim_until", "claims", "customer_id", "sent_at", "message_id", "expires_at"),
    ),
    ItemType("voucher attempts", "CUST#<customer>", "VOUCHER_FAILURES", ("count", "window_end", "expires_at")),
    ItemType(
        "export",
        "CUST#<customer>",
        "EXPORT#<export id>",
        (
            "type",
            "export_id",
            "customer_id",
            "status",
            "filter_status",
            "filter_from",
            "filter_to",
            "filter_q",
            "bom",
            "requested_by",
            "created_at",
            "finished_at",
            "row_count",
            "failure",
            "s3_key",
            "expires_at",
        ),
    ),
    ItemType(
        "webhook endpoint",
        "WEBHOOKS",
        "ENDPOINT#<endpoint id>",
        ("type", "endpoint_id", "url", "events", "customer_id", "secret_ciphertext", "created_at", "created_by"),
    ),
    ItemType(
        "webhook delivery",
        "WEBHOOK#<endpoint id>",
        "DELIVERY#<event id>",
        (
            "type",
            "endpoint_id",
            "event_id",
            "detail_type",
            "customer_id",
            "state",
            "opened_at",
            "attempts",
            "finished",
            "lease_until",
            "attempt_log",
            "delivered_at",
            "expires_at",
        ),
    ),
)
