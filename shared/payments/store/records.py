"""What the store takes and gives back besides payments: plain values, no DynamoDB in them.

NamedTuples rather than dataclasses: these are created when the read functions start, and a dataclass costs
about 3 ms of cold start to create. The export records, which only the export path needs, are dataclasses in
`export_records`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from payments.models import Payment
from payments.money import Money


class Dedupe(NamedTuple):
    """A once-only marker (the `EVENT#` item) written in the same transaction as the change it guards."""

    source: str  # e.g. "stripe" or "charge"
    key: str  # e.g. the gateway's event id or an idempotency key, hashed


class TransitionOutcome(NamedTuple):
    payment: Payment
    changed: bool  # False: it was already in the target status, or the event was a duplicate
    duplicate: bool = False


class RefundWritten(StrEnum):
    """What `record_refund` did."""

    RECORDED = "recorded"
    DUPLICATE = "duplicate"  # its dedupe marker exists: counted before
    REFUSED = "refused"  # the original is not refundable now, or its refunds would pass what it was for


class DisputeWritten(StrEnum):
    """What `record_dispute_funds` did with funds a gateway withdrew for a dispute, or reinstated."""

    RECORDED = "recorded"  # the entry is written and counted
    DUPLICATE = "duplicate"  # this dispute's funds moved this way before
    OFFSET = "offset"  # reinstated before they were reported withdrawn (or the reverse): nothing moves, once
    REFUSED = "refused"  # the original cannot take it now (not completed, or taken back in full)


class Voucher(NamedTuple):
    """A voucher as stored, found by the hash of its code (the code itself is never stored)."""

    state: str  # "unused" or "redeemed"
    money: Money
    expires_epoch: int | None = None  # it cannot be redeemed from this second on


class BalanceCeiling(Exception):
    """A completed top-up was not written: it would have taken the balance above the ceiling it was given."""


class LowBalanceAlert(NamedTuple):
    """A customer's low-balance alert as stored (docs/alerts.md): one per customer, in one currency.

    `armed`: the next fall below the threshold alerts. `seen_version`: the balance item's version (one per change
    of the balance) the alert was last set for, by a save or a crossing; a stream record of that version or an
    older one is already accounted for and changes nothing (a redelivery). `rev`: which save this is, so a
    crossing judged by an earlier save's settings is refused."""

    currency: str
    threshold_minor: int
    reset_minor: int
    emails: tuple[str, ...]
    armed: bool
    seen_version: int = 0
    rev: str = ""
    updated_at: str = ""


class BalanceRecord(NamedTuple):
    """One stream record of a customer's balance item (docs/alerts.md): the change one payment made to one currency."""

    customer_id: str
    currency: str  # the balance item's `last_currency`
    old_minor: int  # the OldImage's balance in it (0 if it had none)
    new_minor: int  # the NewImage's
    payment_id: str  # `last_payment`: the payment whose change this is
    version: int  # the NewImage's version: one more with each change of the item
    sequence: str  # the record's stream SequenceNumber
    updated_at: str = ""  # the NewImage's `updated_at`: when the change was made


class SavedCard(NamedTuple):
    """A card a customer saved for later, off-session use (the saved cards): what Stripe said about it, never
    more than brand, last 4 and expiry. `id` is ours (`card_...`); `payment_method` Stripe's (`pm_...`);
    `setup_intent` the SetupIntent we created for it (the only object whose webhook may change it)."""

    id: str
    customer_id: str
    payment_method: str | None  # None until the SetupIntent made one (a card saved from raw fields)
    setup_intent: str
    state: str  # "pending" (the bank wants 3-D Secure on setup), "active", "failed", "removed"
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    default: bool
    created_at: str  # ISO 8601 UTC


class AutoTopup(NamedTuple):
    """A customer's auto top-up as stored (docs/auto-topup.md): one per customer, the item `CUST#<c>`/`AUTOTOPUP`.

    `state`: active, disabled or requires_action. `in_flight`: the id of the auto top-up payment whose outcome is
    not handled yet (never two). `day`/`day_count`: how many charges were started on that UTC day
    (`max_per_day`). `seen_version`: the balance item's version the auto top-up was last judged at (a save or a
    charge); a stream record of that version or older is accounted for. `rev`: changed by every write, and every
    write is conditioned on the `rev` it read, so two writers never both act on one state."""

    enabled: bool
    card_id: str
    currency: str
    threshold_minor: int
    amount_minor: int
    max_per_day: int = 3
    state: str = "active"  # active | disabled | requires_action
    failures: int = 0  # declines in a row
    in_flight: str | None = None
    day: str = ""
    day_count: int = 0
    last_payment: str | None = None
    mandate_id: str | None = None
    mandate_at: str = ""
    reason: str | None = None  # why it was disabled (declined, card_removed, card_expired, operator, customer)
    changed_by: str = ""
    seen_version: int = 0
    rev: str = ""
    updated_at: str = ""


class Mandate(NamedTuple):
    """The customer's consent to off-session charges on these terms (docs/auto-topup.md#consent): kept, one item
    per mandate (`CUST#<c>`/`MANDATE#<id>`), never changed."""

    id: str
    customer_id: str
    accepted_at: str  # ISO 8601 UTC
    sub: str  # the token's subject
    email: str | None
    card_id: str
    card_brand: str | None
    card_last4: str | None
    currency: str
    threshold_minor: int
    amount_minor: int
    max_per_day: int
