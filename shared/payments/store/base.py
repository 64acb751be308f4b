"""`StoreBase`: what `PaymentStore` and `MemoryStore` share: reading before a status change, asking
`status.apply`, trying again after a lost race. The contract both keep is `interface.Store`."""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, TypeVar

from payments import status as rules
from payments.errors import NotFound, RetryLater
from payments.models import Payment, PaymentStatus, utcnow
from payments.status import Cause, Change
from payments.store.records import Dedupe, TransitionOutcome

if TYPE_CHECKING:
    from payments.store.export_rows import ExportRow

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


T = TypeVar("T")


def paged(fetch: Callable[[str | None], tuple[list[T], str | None]]) -> Iterator[T]:
    """Each item of the pages `fetch(after)` answers, from the first page (`after` None) until one names no next."""
    after: str | None = None
    while True:
        items, after = fetch(after)
        yield from items
        if after is None:
            return


class StoreBase(ABC):
    """The part of the store that is the same whatever keeps the items."""

    @abstractmethod
    def get(self, customer_id: str, payment_id: str, *, consistent: bool = False) -> Payment | None: ...

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
    ) -> tuple[list[Payment], str | None]: ...

    @abstractmethod
    def _write_change(self, change: Change, dedupe: Dedupe | None) -> Written:
        """Write `change` (if it changes anything), its balance delta and `dedupe`, all or nothing, conditioned
        on the payment still having `change.before`'s status and on `dedupe` being new."""

    def require(self, customer_id: str, payment_id: str, *, consistent: bool = False) -> Payment:
        payment = self.get(customer_id, payment_id, consistent=consistent)
        if payment is None:
            raise NotFound(f"payment {payment_id[:64]} not found")
        return payment

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
        return paged(
            lambda after: self.page(
                customer_id,
                limit=page_size,
                after=after,
                status=status,
                created_from=created_from,
                created_to=created_to,
                search=search,
            )
        )

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
        """`stream`'s payments as the rows an export writes (the DynamoDB store reads them without models)."""
        from payments.store.export_rows import row_of_payment

        payments = self.stream(
            customer_id,
            page_size=page_size,
            status=status,
            created_from=created_from,
            created_to=created_to,
            search=search,
        )
        return map(row_of_payment, payments)

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
        """Move a payment to `target` if the status rules allow it, exactly once.

        Reads the payment (consistently), asks `status.apply`, and writes the `Change` with the dedupe marker at
        once, conditioned on the status it read. A lost race reads and applies again; one lost race after
        another ends in RetryLater (503), never in a wrong answer. Raises NotFound or TransitionRefused.
        `current` saves the first read when the caller has just read the payment; `fee_minor` is the gateway's fee
        a completion records (`status.apply`).
        """
        return self._change(
            customer_id,
            payment_id,
            lambda payment: rules.apply(
                payment,
                target,
                cause,
                by=by,
                note=note,
                now=utcnow(),
                failure_field=failure_field,
                fee_minor=fee_minor,
            ),
            dedupe=dedupe,
            current=current,
        )

    def hold(
        self, customer_id: str, payment_id: str, reason: str, by: str, *, dedupe: Dedupe | None = None
    ) -> TransitionOutcome:
        """Record that the gateway holds a pending payment, and why (`status.hold`), exactly once; a settled
        payment is left as it is. Raises NotFound."""
        return self._change(
            customer_id, payment_id, lambda payment: rules.hold(payment, reason, by=by, now=utcnow()), dedupe=dedupe
        )

    def apply_change(
        self,
        customer_id: str,
        payment_id: str,
        compute: Callable[[Payment], Change],
        *,
        dedupe: Dedupe | None = None,
        current: Payment | None = None,
    ) -> TransitionOutcome:
        """Write the `Change` a status rule other than `transition` computes (`status.accept_refund`,
        `status.refund_progress`) from a consistent read, exactly once, conditioned on the status it read."""
        return self._change(customer_id, payment_id, compute, dedupe=dedupe, current=current)

    def _change(
        self,
        customer_id: str,
        payment_id: str,
        compute: Callable[[Payment], Change],
        *,
        dedupe: Dedupe | None,
        current: Payment | None = None,
    ) -> TransitionOutcome:
        """Read, compute the `Change` (the status rules'), write it conditioned on the status read; again on a
        lost race, then RetryLater."""
        for attempt in range(MAX_TRANSITION_ATTEMPTS):
            # `current`: the caller's fresh read, used once; a lost race reads again.
            payment, current = current or self.require(customer_id, payment_id, consistent=True), None
            change = compute(payment)
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

    @staticmethod
    def claim_until(hold_seconds: float) -> int:
        """The epoch-ms end of a claim held for `hold_seconds` from now."""
        return int((time.time() + hold_seconds) * 1000)
