"""`Store`: what the use cases may ask of the payments table, whatever keeps it.

Two implementations: `PaymentStore` (DynamoDB, `dynamodb.py`) and `MemoryStore` (dicts, for unit tests,
`memory.py`); mypy checks both against this protocol (bottom). Only type checks import this module: the
use cases name `Store` in annotations alone, so the functions never load it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from payments.models import Payment, PaymentMethod, PaymentStatus
from payments.money import Money
from payments.outbox import OutboxEvent
from payments.status import Cause, Change
from payments.store.base import Written
from payments.store.export_records import ExportRecord, ExportStatus
from payments.store.export_rows import ExportRow
from payments.store.records import (
    AutoTopup,
    Dedupe,
    DisputeWritten,
    LowBalanceAlert,
    Mandate,
    RefundWritten,
    SavedCard,
    TransitionOutcome,
    Voucher,
)


class Store(Protocol):
    """The payments table: payments and balances, event markers, the gateway objects of payments, idempotency
    pointers, bank references, vouchers and attempt counters, export records."""

    # ---- payments and balances: reads --------------------------------------------------------------

    def get(self, customer_id: str, payment_id: str, *, consistent: bool = False) -> Payment | None:
        """The customer's payment: another customer's id is simply not found."""
        ...

    def require(self, customer_id: str, payment_id: str, *, consistent: bool = False) -> Payment:
        """The customer's payment, or NotFound (404)."""
        ...

    def page(
        self,
        customer_id: str,
        *,
        limit: int,
        after: str | None = None,
        status: PaymentStatus | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        search: str | None = None,
    ) -> tuple[list[Payment], str | None]:
        """Newest first: the payments and the id to go on after, if more may follow. `search`: lower-case text
        found in the id, description, references or card's last 4 digits."""
        ...

    def summary(
        self,
        customer_id: str,
        *,
        status: PaymentStatus | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        search: str | None = None,
    ) -> tuple[dict[PaymentStatus, int], list[Money]]:
        """How many payments a listing holds per status, and the sum of its completed ones per currency."""
        ...

    def count(
        self,
        customer_id: str,
        *,
        cap: int,
        status: PaymentStatus | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> int:
        """How many payments a listing would return, counting no further than `cap`."""
        ...

    def stream(
        self,
        customer_id: str,
        *,
        page_size: int = 500,
        status: PaymentStatus | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        search: str | None = None,
    ) -> Iterator[Payment]:
        """Every matching payment, newest first, one page at a time (constant memory)."""
        ...

    def stream_rows(
        self,
        customer_id: str,
        *,
        page_size: int = 500,
        status: PaymentStatus | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        search: str | None = None,
    ) -> Iterator[ExportRow]:
        """`stream`'s payments as the rows an export writes (`payments.store.export_rows`)."""
        ...

    def balances(self, customer_id: str) -> list[Money]:
        """The customer's balance in each currency (the sum of its completed amounts), by currency."""
        ...

    def balances_and_settings(self, customer_id: str) -> tuple[list[Money], dict[str, Any] | None]:
        """`balances` and `account_settings` in one request."""
        ...

    def account_settings(self, customer_id: str) -> dict[str, Any] | None:
        """The settings document an operator saved for the customer (`payments.account`); None if none was."""
        ...

    def pending_before(self, method: PaymentMethod, before: datetime, *, limit: int) -> list[Payment]:
        """Pending payments of `method` created before `before`, oldest first."""
        ...

    def watched(self, kind: str, *, limit: int, after: str | None = None) -> list[Payment]:
        """Settled payments reconciliation watches: `dispute` (its dispute open) or `refund` (a gateway refund
        still pending at its gateway), oldest first, after payment id `after`."""
        ...

    def find_by_gateway_ref(self, provider: str, gateway_ref: str) -> Payment | None:
        """The payment we stored gateway object `gateway_ref` of `provider` for."""
        ...

    def find_by_request(self, customer_id: str, request_key: str) -> Payment | None:
        """The payment the Make Payment request `request_key` put (`put_pending`)."""
        ...

    # ---- payments and balances: writes -------------------------------------------------------------

    def add(self, payment: Payment, *, dedupe: Dedupe | None = None) -> bool:
        """Record a new payment; a completed one moves the balance with it. False (nothing written) if `dedupe`
        was recorded before."""
        ...

    def put_pending(
        self,
        payment: Payment,
        request_key: str,
        *,
        reference: str | None = None,
        gateway_ref: tuple[str, str] | None = None,
    ) -> tuple[Payment, bool]:
        """Put a new pending payment with the idempotency pointer of the request that makes it, at once; or find
        the payment an earlier request with the same `request_key` put. True if put.

        `reference`: its bank reference, unique. `gateway_ref` (provider, reference): the pointer of the gateway
        object its first attempt will create, where we choose the reference (Paystack)."""
        ...

    def record_refund(self, refund: Payment, original: Payment, dedupe: Dedupe) -> RefundWritten:
        """Record `refund` (a completed negative payment) and count it against `original`, once: only a
        refundable payment (`status.refundable`), never by more than it was for."""
        ...

    def record_dispute_funds(self, entry: Payment, original: Payment, marker: Dedupe) -> DisputeWritten:
        """Funds withdrawn for a dispute of `original` (a CHARGEBACK entry) or reinstated (a CHARGEBACK_REVERSAL
        entry), once per dispute (`marker`) and direction: the entry, its balance delta and its count on the
        original, all or nothing. Withdrawn: only from a completed payment, within what is not taken back yet;
        reinstated: only what a withdrawal took. The opposite direction first: OFFSET, nothing moves."""
        ...

    def dispute_funds(self, marker: Dedupe) -> tuple[str | None, str | None]:
        """(withdrawn, reinstated) of a dispute: the entry ids, "offset", or None where nothing moved yet."""
        ...

    def transition(
        self,
        customer_id: str,
        payment_id: str,
        target: PaymentStatus,
        cause: Cause,
        by: str,
        *,
        note: str | None = None,
        dedupe: Dedupe | None = None,
        current: Payment | None = None,
        failure_field: str | None = None,
        fee_minor: int | None = None,
    ) -> TransitionOutcome:
        """Move a payment to `target` if the status rules allow it (`status.apply`), exactly once, with its
        balance delta and `dedupe`. Raises NotFound, TransitionRefused, or RetryLater after lost races.
        `current` saves the first read when the caller has just read the payment; `fee_minor` is the gateway's
        fee a completion records (in the payment's currency)."""
        ...

    def apply_change(
        self,
        customer_id: str,
        payment_id: str,
        compute: Callable[[Payment], Change],
        *,
        dedupe: Dedupe | None = None,
        current: Payment | None = None,
    ) -> TransitionOutcome:
        """Write the `Change` `compute` (a status rule: `status.accept_refund`, `status.refund_progress`) makes of a
        consistent read, exactly once, with its balance delta and `dedupe`; again after a lost race. Raises
        NotFound, TransitionRefused, or RetryLater."""
        ...

    def hold(
        self, customer_id: str, payment_id: str, reason: str, by: str, *, dedupe: Dedupe | None = None
    ) -> TransitionOutcome:
        """Record that the gateway holds a pending payment, and why (`status.hold`), exactly once; a settled
        payment is left as it is. Raises NotFound, or RetryLater after lost races."""
        ...

    def put_account_settings(self, customer_id: str, document: dict[str, Any], by: str) -> None:
        """Replace the customer's settings document."""
        ...

    # ---- e-mail markers (docs/receipts.md#once-per-event) -------------------------------------------

    def claim_email(self, email_key: str, customer_id: str, *, hold_seconds: float) -> bool:
        """Claim the e-mail `email_key` for `hold_seconds`: True if the caller may send it now; False if it was
        sent, or another sender's claim has not expired."""
        ...

    def mark_email_sent(self, email_key: str, message_id: str) -> None:
        """SES took the e-mail: it is never sent again."""
        ...

    def release_email(self, email_key: str) -> None:
        """Sending failed: end the claim now, so the next delivery may send (a sent marker stays sent)."""
        ...

    def email_marker(self, email_key: str) -> dict[str, object] | None:
        """The marker's attributes (state, claims, sent_at, message_id); None if never claimed."""
        ...

    # ---- event markers -----------------------------------------------------------------------------

    def record_event(self, marker: Dedupe, payment_id: str | None = None, *, event_type: str = "") -> bool:
        """Record an event acted on no further; False if it was recorded before."""
        ...

    def event_payment_id(self, marker: Dedupe) -> str | None:
        """The payment an event marker names; None if it is not recorded or names none."""
        ...

    # ---- the outbox (docs/events.md): written by the writes above, read by the stream's publisher ------

    def outbox_event(self, event_id: str) -> OutboxEvent | None:
        """The outbound event a change wrote, by its id (a consistent read); None if none was written."""
        ...

    # ---- low-balance alerts (docs/alerts.md): the account routes and the stream's balance records ----

    def low_balance_alert(self, customer_id: str) -> LowBalanceAlert | None:
        """The customer's low-balance alert (a consistent read); None if none is set."""
        ...

    def balance_state(self, customer_id: str, currency: str) -> tuple[int, int]:
        """(the completed balance in `currency` in minor units, the balance item's version), consistently read."""
        ...

    def put_low_balance_alert(self, customer_id: str, alert: LowBalanceAlert) -> LowBalanceAlert | None:
        """Replace the customer's alert (a new save: its own `rev`), only while the balance item's version is still
        `alert.seen_version` (its `armed` was judged at it); the alert as stored, None if the balance moved since."""
        ...

    def delete_low_balance_alert(self, customer_id: str) -> None:
        """Turn the customer's alert off."""
        ...

    def disarm_low_balance(
        self, customer_id: str, alert: LowBalanceAlert, version: int, event: OutboxEvent
    ) -> bool | None:
        """A crossing down, once: the alert armed -> not armed and `event` (balance.low) in the outbox, at once, only
        if the alert is still `alert` (same save, armed) and has seen no version >= `version`. True if written, None
        if the event was written before (a redelivery), False if the alert changed (read it again)."""
        ...

    def rearm_low_balance(self, customer_id: str, alert: LowBalanceAlert, version: int) -> bool:
        """A rise above the reset threshold: not armed -> armed, under the same conditions. False if it changed."""
        ...

    def set_balance_after(self, customer_id: str, payment_id: str, minor: int) -> bool:
        """The balance right after the payment's change, on the payment, if it exists and has none yet."""
        ...

    # ---- the auto top-up (docs/auto-topup.md) ----------------------------------------------------------

    def auto_topup(self, customer_id: str) -> AutoTopup | None:
        """The customer's auto top-up (a consistent read); None if never set."""
        ...

    def mandate(self, customer_id: str, mandate_id: str) -> Mandate | None:
        """One of the customer's mandates (consents to off-session charges)."""
        ...

    def write_auto_topup(
        self,
        customer_id: str,
        topup: AutoTopup,
        *,
        seen_rev: str | None,
        mandate: Mandate | None = None,
        payment: Payment | None = None,
        event: OutboxEvent | None = None,
    ) -> tuple[Written, AutoTopup | None]:
        """Replace the auto top-up if it is still at `seen_rev` (None: none yet), with a new mandate, a new pending
        payment and an outbox event, all or nothing: WRITTEN and the stored one; DUPLICATE if the payment or event
        exists; LOST if the auto top-up changed since it was read."""
        ...

    # ---- the gateway object of a payment: claimed, then recorded once ------------------------------

    # ---- saved cards and the Stripe Customer (docs/saved-cards.md) ----------------------------------

    def stripe_customer(self, customer_id: str) -> str | None:
        """The customer's Stripe Customer (cus_...), once recorded; None before."""
        ...

    def claim_stripe_customer(self, customer_id: str, email: str | None) -> tuple[str | None, str | None]:
        """Claim creating the Stripe Customer (the first claim's e-mail is kept): (the Customer if recorded already,
        the e-mail every caller creates it with)."""
        ...

    def record_stripe_customer(self, customer_id: str, stripe_customer: str) -> str:
        """Record the Stripe Customer unless another is recorded; the one recorded."""
        ...

    def saved_card(self, customer_id: str, card_id: str) -> SavedCard | None:
        """One of the customer's cards, whatever its state (removed too); another customer's id is not found. Only
        `state == "active"` may be charged."""
        ...

    def saved_cards(self, customer_id: str) -> list[SavedCard]:
        """The customer's cards that are not removed (pending, active, failed), newest first."""
        ...

    def card_by_setup(self, provider: str, setup_intent: str) -> SavedCard | None:
        """The card whose SetupIntent this is, through the pointer stored when it was created."""
        ...

    def put_saved_card(self, card: SavedCard, provider: str) -> tuple[SavedCard, bool]:
        """Put a new card and its SetupIntent pointer (active: the default if none); (stored card, True), or the
        card a request before stored for the same SetupIntent (or id) and False."""
        ...

    def settle_saved_card(
        self,
        customer_id: str,
        card_id: str,
        state: str,
        *,
        payment_method: str | None = None,
        details: Mapping[str, object] | None = None,
    ) -> bool:
        """A pending card becomes `state` (active or failed); False if it is not pending."""
        ...

    def set_default_card(self, customer_id: str, card_id: str) -> bool:
        """Make an active card the default; False if it is not active."""
        ...

    def remove_saved_card(self, customer_id: str, card_id: str, *, was_default: bool, new_default: str | None) -> bool:
        """Mark the card removed (and off for the auto top-up); where it was the default, `new_default` in its place.
        False if it was removed before or the default changed meanwhile."""
        ...

    def mark_card_detached(self, customer_id: str, card_id: str) -> None:
        """The removed card's PaymentMethod is detached at Stripe."""
        ...

    def card_detached(self, customer_id: str, card_id: str) -> bool: ...

    def claim_until(self, hold_seconds: float) -> int:
        """The epoch-ms end of a claim held for `hold_seconds` from now."""
        ...

    def claim_gateway_object(
        self, payment: Payment, *, provider: str, hold_seconds: float, ref: Callable[[int], str | None]
    ) -> Payment | None:
        """Claim the creation of `payment`'s gateway object for `hold_seconds`: only if it is pending, has no
        gateway object, nobody holds a live claim and its attempt counter is what we read. `ref(attempt)`: the
        reference this attempt will create, where we choose it; stored with its pointer before the call. The
        payment as claimed, or None."""
        ...

    def record_gateway_object(
        self,
        payment: Payment,
        *,
        provider: str,
        gateway_ref: str,
        next_action: Mapping[str, Any] | None,
        card_brand: str | None,
        card_last4: str | None,
        description: str | None = None,
    ) -> Payment | None:
        """Store the gateway object `payment`'s claim created, and its pointer: only if the payment has none yet
        and our claim is still the latest. The payment as stored, or None."""
        ...

    def release_gateway_claim(self, payment: Payment, problem: str) -> None:
        """End our own claim at once (a later attempt's is left alone), keeping what went wrong for operators."""
        ...

    # ---- vouchers ----------------------------------------------------------------------------------

    def issue_voucher(self, code_hash: str, money: Money, expires_at: datetime | None, by: str) -> bool:
        """Put a new unused voucher; False if one with this code hash exists."""
        ...

    def voucher(self, code_hash: str) -> Voucher | None:
        """The voucher of this code hash (a consistent read)."""
        ...

    def count_voucher_attempt(self, customer_id: str, *, now: int, limit: int, window_seconds: int) -> int | None:
        """Count a redemption attempt in the customer's current window (opening one if there is none or it is
        over); None once counted, or, when `limit` attempts are counted already, the epoch second it ends."""
        ...

    def give_back_voucher_attempt(self, customer_id: str) -> None:
        """Uncount one counted attempt of the customer (never below zero): the code was real and a limit refused it."""
        ...

    def redeem_voucher(self, code_hash: str, payment: Payment, *, now: int, balance_at_most: int | None = None) -> bool:
        """Redeem the voucher for `payment` (new, completed, of its value) at once: the voucher unused ->
        redeemed (if still of the payment's currency and not expired at `now`), the payment, the balance (never
        above `balance_at_most`: else BalanceCeiling, nothing written), the customer's attempt given back. False
        if the voucher could not be redeemed."""
        ...

    # ---- export records ----------------------------------------------------------------------------

    def put_export(self, record: ExportRecord, requested_by: str) -> None:
        """Record an export that starts."""
        ...

    def finish_export(
        self, customer_id: str, export_id: str, status: ExportStatus, *, rows: int | None = None, failure: str = ""
    ) -> None:
        """Set an export's final status, and its row count or what failed."""
        ...

    def get_export(self, customer_id: str, export_id: str) -> ExportRecord | None:
        """The customer's export record; UnreadableRecord if the stored one cannot be read."""
        ...


if TYPE_CHECKING:  # both stores keep the whole contract
    from payments.store.dynamodb import PaymentStore
    from payments.store.memory import MemoryStore

    def _dynamodb(store: PaymentStore) -> Store:
        return store

    def _memory(store: MemoryStore) -> Store:
        return store
