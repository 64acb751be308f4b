"""Listing use cases: a page of payments with a signed cursor, balances, the OpenAPI document."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from payments import cursor as cursors
from payments.errors import BadRequest, InvalidInput
from payments.models import BalanceOut, BalancesOut, PaymentPage, PaymentsSummary, PaymentStatus, iso_z
from payments.money import Money

if TYPE_CHECKING:
    from payments.store import Store

OPENAPI_FILE = Path(__file__).with_name("openapi.json")


def _utc(moment: datetime | None, name: str) -> datetime | None:
    """`from`/`to` in UTC. Any instant of the years 1-9999 in UTC is accepted (and stored with 4-digit
    years, docs/errors.md); one whose UTC time falls outside them (9999-12-31T23:00:00-05:00) is 422."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise BadRequest(f"{name} must include a time zone, e.g. 2026-01-31T00:00:00Z", field=name)
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidInput(name, f"{name} is out of range: in UTC it must fall within the years 0001 to 9999") from exc


SEARCH_MAX_LENGTH = 100


def search_terms(text: str | None) -> str | None:
    """`q` as the store searches for it: trimmed, lower case; None for nothing to search."""
    if text is None or not text.strip():
        return None
    if len(text) > SEARCH_MAX_LENGTH:
        raise InvalidInput("q", f"q must be at most {SEARCH_MAX_LENGTH} characters")
    return " ".join(text.split()).lower()


@dataclass(frozen=True, slots=True)
class PageQuery:
    limit: int
    cursor: str | None
    status: PaymentStatus | None
    created_from: datetime | None
    created_to: datetime | None
    search: str | None = None

    @classmethod
    def of(
        cls,
        limit: int,
        cursor: str | None,
        status: PaymentStatus | None,
        created_from: datetime | None,
        created_to: datetime | None,
        search: str | None = None,
    ) -> PageQuery:
        start, end = _utc(created_from, "from"), _utc(created_to, "to")
        if start and end and start > end:
            raise BadRequest("from must not be after to", field="from")
        return cls(limit, cursor or None, status, start, end, search_terms(search))

    @property
    def filters(self) -> str:
        """What a cursor is bound to, besides the customer."""
        parts = [
            self.status.value if self.status else "",
            iso_z(self.created_from) if self.created_from else "",
            iso_z(self.created_to) if self.created_to else "",
        ]
        if self.search:  # appended only when set, so cursors issued before search existed stay valid
            parts.append(self.search)
        return "|".join(parts)


def list_page(store: Store, customer_id: str, query: PageQuery) -> PaymentPage:
    after = cursors.decode(customer_id, query.cursor, query.filters) if query.cursor else None
    payments, last_id = store.page(
        customer_id,
        limit=query.limit,
        after=after,
        status=query.status,
        created_from=query.created_from,
        created_to=query.created_to,
        search=query.search,
    )
    next_cursor = cursors.encode(customer_id, last_id, query.filters) if last_id else None
    return PaymentPage(items=[p.to_api() for p in payments], next_cursor=next_cursor)


def summary(store: Store, customer_id: str, query: PageQuery) -> PaymentsSummary:
    """The count of what a listing with these filters holds, by status, and its completed total per currency."""
    counts, totals = store.summary(
        customer_id,
        status=query.status,
        created_from=query.created_from,
        created_to=query.created_to,
        search=query.search,
    )
    return PaymentsSummary(
        count=sum(counts.values()),
        statuses={status.value: number for status, number in counts.items()},
        completed=[BalanceOut(currency=money.currency, amount=money.format()) for money in totals],
    )


def balances(store: Store, customer_id: str) -> BalancesOut:
    """The balance per currency; with a credit limit, the account currency's entry (there even before any payment)
    adds `credit_limit` and `available` (docs/account-settings.md). One BatchGetItem."""
    from payments import account

    found, document = store.balances_and_settings(customer_id)
    terms = account.of_document(document) if document is not None else account.defaults()
    if terms.credit_limit_minor and all(m.currency != terms.account_currency for m in found):
        found = sorted([*found, Money(0, terms.account_currency)], key=lambda m: m.currency)
    limit = Money(terms.credit_limit_minor, terms.account_currency)
    out = [
        BalanceOut(currency=m.currency, amount=m.format())
        if not limit.minor or m.currency != limit.currency
        else BalanceOut(
            currency=m.currency, amount=m.format(), credit_limit=limit.format(), available=(m + limit).format()
        )
        for m in found
    ]
    return BalancesOut(balances=out)


@cache
def openapi_text() -> str:
    """The OpenAPI document of every function's routes, generated by `make openapi` and checked by a test."""
    return OPENAPI_FILE.read_text()
