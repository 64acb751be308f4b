"""`Store`: what the use cases may ask of the payments table, whatever keeps it.

Two implementations: `PaymentStore` (DynamoDB, `dynamodb.py`) and `MemoryStore` (a dict, for unit tests,
`memory.py`). What is the same for both is here: reading before a status change, asking `status.apply`, and
trying again after a lost race.
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from payments import status as rules
from payments.errors import NotFound, RetryLater
from payments.models import Payment, PaymentMethod, PaymentStatus, utcnow
from payments.money import Money
from payments.status import Cause, Change
from payments.store.records import Dedupe, RefundWritten, TransitionOutcome, Voucher

if TYPE_CHECKING:
    from payments.store.export_records import ExportRecord, ExportStatus

BUSY_MESSAGE = "the service is busy; retry in a moment, with the same Idempotency-Key if any"
MAX_TRANSITION_ATTEMPTS = 4
BACKOFF_SECONDS = 0.05


def backoff(attempt: int) -> None:
    """A jittered pause before attempt `attempt` + 1, so racing writers spread out."""
    time.sleep(random.uniform(0, BACKOFF_SECONDS * 2**attempt))  # noqa: S311 - jitter only


class Written(StrEnum):
    """What writing a `Change` did."""

    WRITTEN = "written"
    DUPLICATE = "duplicate"  # its dedupe marker exists: nothing written
    LOST = "lost"  # the payment's status is no longer the one the change was computed from: nothing written


class Store(ABC):
    """The payments table: payments and balances, the gateway objects of payments, idempotency pointers, bank
    references, vouchers and attempt counters, event markers, export records."""

    # ---- payments and balances: reads --------------------------------------------------------------

    @abstractmethod
    def get(self, customer_id: str, payment_id: str, *, consistent: bool = False) -> Payment | None:
        """The customer's payment: another customer's id is simply not found."""

    def require(self, customer_id: str, payment_id: str, *, consistent: bool = False) -> Payment:
        payment = self.get(customer_id, payment_id, consistent=consistent)
        if payment is None:
            raise NotFound(f"payment {payment_id[:64]} not found")
        return payment

    @abstractmethod
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
        """Newest first: the payments and the id to go on after, if more may follow."""

    @abstractmethod
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

    @abstractmethod
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
        after: str | None = None
        while True:
            payments, after = self.page(
                customer_id,
                limit=page_size,
                after=after,
                status=status,
                created_from=created_from,
                created_to=created_to,
                search=search,
            )
            yield from payments
            if after is None:
                return

    @abstractmethod
    def balances(self, customer_id: str) -> list[Money]:
        """The customer's balance per currency (the sum of completed amounts), by currency."""

    @abstractmethod
    def pending_before(self, method: PaymentMethod, before: datetime, *, limit: int) -> list[Payment]:
        """Pending payments of `method` created before `before`, oldest first."""

    @abstractmethod
    def find_by_gateway_ref(self, provider: str, gateway_ref: str) -> Payment | None:
        """The payment we stored gateway object `gateway_ref` of `provider` for."""

    @abstractmethod
    def find_by_request(self, customer_id: str, request_key: str) -> Payment | None:
        """The payment the Make Payment request `request_key` put (`put_pending`)."""

    # ---- payments and balances: writes -------------------------------------------------------------

    @abstractmethod
    def add(self, payment: Payment, *, dedupe: Dedupe | None = None) -> bool:
        """Record a new payment; a completed one moves the balance with it. False (nothing written) if `dedupe`
        was recorded before."""

    @abstractmethod
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

    @abstractmethod
    def record_refund(self, refund: Payment, original: Payment, dedupe: Dedupe) -> RefundWritten:
        """Record `refund` (a completed negative payment) and count it against `original`, once: only a
        refundable payment (`status.refundable`), never by more than it was for."""

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
    ) -> TransitionOutcome:
        """Move a payment to `target` if the status rules allow it, exactly once.

        Reads the payment (consistently), asks `status.apply`, and writes the `Change` with the dedupe marker at
        once, conditioned on the status it read. A lost race reads and applies again; one lost race after
        another ends in RetryLater (503), never in a wrong answer. Raises NotFound or TransitionRefused.
        `current` saves the first read when the caller has just read the payment.
        """
        for attempt in range(MAX_TRANSITION_ATTEMPTS):
            # `current`: the caller's fresh read, used once; a lost race reads again.
            payment, current = current or self.require(customer_id, payment_id, consistent=True), None
            change = rules.apply(payment, target, cause, by=by, note=note, now=utcnow(), failure_field=failure_field)
            if not change.changed and dedupe is None:
                return TransitionOutcome(payment, changed=False)
            written = self._write_change(change, dedupe)
            if written is Written.DUPLICATE:
                return TransitionOutcome(payment, changed=False, duplicate=True)
            if written is Written.LOST:
                # Someone changed the status meanwhile: apply again on fresh data, after a short pause from the
                # second loss on, so racing writers spread out.
                if attempt:
                    backoff(attempt)
                continue
            # The condition held, so the payment is what we read plus this change: no need to read it again.
            return TransitionOutcome(change.after, changed=change.changed)
        raise RetryLater(BUSY_MESSAGE, http_status=503)

    @abstractmethod
    def _write_change(self, change: Change, dedupe: Dedupe | None) -> Written:
        """Write `change` (if it changes anything), its balance delta and `dedupe`, all or nothing, conditioned
        on the payment still having `change.before`'s status and on `dedupe` being new."""

    # ---- the gateway object of a payment: claimed, then recorded once ------------------------------

    @staticmethod
    def claim_until(hold_seconds: float) -> int:
        """The epoch-ms end of a claim held for `hold_seconds` from now."""
        return int((time.time() + hold_seconds) * 1000)

    @abstractmethod
    def claim_gateway_object(
        self, payment: Payment, *, provider: str, hold_seconds: float, ref: Callable[[int], str | None]
    ) -> Payment | None:
        """Claim the creation of `payment`'s gateway object for `hold_seconds`: only if it is pending, has no
        gateway object, nobody holds a live claim and its attempt counter is what we read. `ref(attempt)`: the
        reference this attempt will create, where we choose it; stored with its pointer before the call. The
        payment as claimed, or None."""

    @abstractmethod
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

    @abstractmethod
    def release_gateway_claim(self, payment: Payment, problem: str) -> None:
        """End our own claim at once (a later attempt's is left alone), keeping what went wrong for operators."""

    # ---- event markers -----------------------------------------------------------------------------

    @abstractmethod
    def record_event(self, marker: Dedupe, payment_id: str | None = None, *, event_type: str = "") -> bool:
        """Record an event acted on no further; False if it was recorded before."""

    @abstractmethod
    def event_payment_id(self, marker: Dedupe) -> str | None:
        """The payment an event marker names; None if it is not recorded or names none."""

    # ---- vouchers ----------------------------------------------------------------------------------

    @abstractmethod
    def issue_voucher(self, code_hash: str, money: Money, expires_at: datetime | None, by: str) -> bool:
        """Put a new unused voucher; False if one with this code hash exists."""

    @abstractmethod
    def voucher(self, code_hash: str) -> Voucher | None:
        """The voucher of this code hash (a consistent read)."""

    @abstractmethod
    def count_voucher_attempt(self, customer_id: str, *, now: int, limit: int, window_seconds: int) -> int | None:
        """Count a redemption attempt in the customer's current window (opening one if there is none or it is
        over); None once counted, or, when `limit` attempts are counted already, the epoch second it ends."""

    @abstractmethod
    def redeem_voucher(self, code_hash: str, payment: Payment, *, now: int) -> bool:
        """Redeem the voucher for `payment` (new, completed, of its value) at once: the voucher unused ->
        redeemed (if still of the payment's currency and not expired at `now`), the payment, the balance, the
        customer's attempt given back. False if the voucher could not be redeemed."""

    # ---- export records ----------------------------------------------------------------------------

    @abstractmethod
    def put_export(self, record: ExportRecord, requested_by: str) -> None:
        """Record an export that starts."""

    @abstractmethod
    def finish_export(
        self, customer_id: str, export_id: str, status: ExportStatus, *, rows: int | None = None, failure: str = ""
    ) -> None:
        """Set an export's final status, and its row count or what failed."""

    @abstractmethod
    def get_export(self, customer_id: str, export_id: str) -> ExportRecord | None:
        """The customer's export record; UnreadableRecord if the stored one cannot be read."""
