"""Vouchers: issued by operators, redeemed by customers, exactly once (docs/api.md#bodies-by-method).

A code is 20 characters from a 32-letter alphabet (100 random bits), shown once at issue and stored
only as its SHA-256. Redemption is one transaction: voucher unused -> redeemed, payment put as
completed, balance added; so 20 concurrent redemptions of one code give one success.
Unknown, used, expired or other-currency codes all get the same 422, and a customer who keeps
guessing gets 429 for a while.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from payments.errors import InvalidInput, TooManyRequests
from payments.ids import new_payment_id
from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus, iso_z, utcnow
from payments.money import Money

if TYPE_CHECKING:
    from payments.account import AccountSettings
    from payments.store import Store

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 letters: 5 bits each, no 0/O/1/I
CODE_LENGTH = 20  # 100 bits
MAX_FAILURES = 5
FAILURE_WINDOW_SECONDS = 15 * 60
INVALID_VOUCHER = "the voucher code is not valid for this account and currency"


def new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def normalise(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def code_hash(code: str) -> str:
    return hashlib.sha256(normalise(code).encode()).hexdigest()


@dataclass(frozen=True)
class IssuedVoucher:
    code: str
    money: Money
    expires_at: datetime | None


def issue(store: Store, money: Money, count: int, expires_at: datetime | None, by: str) -> list[IssuedVoucher]:
    """Create `count` vouchers. Each put is conditional, so a (vanishingly unlikely) hash clash is redrawn."""
    issued: list[IssuedVoucher] = []
    while len(issued) < count:
        code = new_code()
        if store.issue_voucher(code_hash(code), money, expires_at, by):
            issued.append(IssuedVoucher(code, money, expires_at))
    return issued


def _count_attempt(store: Store, customer_id: str, now: int) -> None:
    """Count this redemption attempt before its code is checked, or refuse it (429).

    Counting first, with a conditional increment, is what makes the limit hold under concurrency: of 30
    parallel guesses at most MAX_FAILURES get past here within a window. A redemption that succeeds gives its
    attempt back in its own transaction (`Store.redeem_voucher`), and one of a real code that an account limit
    refuses gives it back before answering (`Store.give_back_voucher_attempt`): only wrong codes use it up.
    """
    locked_until = store.count_voucher_attempt(
        customer_id, now=now, limit=MAX_FAILURES, window_seconds=FAILURE_WINDOW_SECONDS
    )
    if locked_until is not None:
        raise _locked_out(locked_until, now)


def _locked_out(window_end: int, now: int) -> TooManyRequests:
    """429 saying until when: `locked_until` (ISO 8601) and Retry-After, so a page can show the end."""
    wait = max(window_end - now, 1)
    until = iso_z(datetime.fromtimestamp(window_end, UTC))
    refused = TooManyRequests(
        f"too many invalid voucher codes; try again in {wait // 60 + 1} minutes (at {until})", locked_until=until
    )
    refused.headers = {"Retry-After": str(wait)}
    return refused


def redeem(
    store: Store,
    customer_id: str,
    code: str,
    currency: str,
    *,
    actor: str,
    description: str | None = None,
    terms: AccountSettings | None = None,
    payer_email: str | None = None,
) -> Payment:
    """Redeem voucher `code` for the customer in `currency`, in one transaction. Raises InvalidInput (422) or 429.
    `description`: the customer's own; by default the payment names the code's last 4 characters.

    `terms`: the account's limits hold for vouchers too (docs/account-settings.md#limits): its value within
    `min_payment`..`max_payment`, and the balance never above `max_balance` (a condition of the transaction, so
    concurrent redemptions cannot pass it together)."""
    from payments import account
    from payments.store.records import BalanceCeiling

    terms = terms or account.defaults()
    now = int(time.time())
    _count_attempt(store, customer_id, now)
    hashed = code_hash(code)
    voucher = store.voucher(hashed)
    usable = (
        voucher is not None
        and voucher.state == "unused"
        and voucher.money.currency == currency
        and (voucher.expires_epoch is None or voucher.expires_epoch > now)
    )
    if not usable or voucher is None:
        raise InvalidInput("voucher_code", INVALID_VOUCHER)
    try:
        account.check_amount(terms, voucher.money, field="voucher_code")
    except InvalidInput:
        store.give_back_voucher_attempt(customer_id)  # a real code: not a guess, so not a failure either
        raise
    ceiling = account.balance_room(terms, currency)
    moment = utcnow()
    ending = normalise(code)[-4:]
    payment = Payment(
        id=new_payment_id(moment),
        customer_id=customer_id,
        created_at=moment,
        completed_at=moment,
        amount_minor=voucher.money.minor,
        currency=currency,
        status=PaymentStatus.COMPLETED,
        method=PaymentMethod.VOUCHER,
        description=description or f"Voucher ending {ending}",
        reference=f"VOUCHER-{ending}",
        payer_email=payer_email,
        history=(HistoryEntry(at=moment, status=PaymentStatus.COMPLETED, by=actor, note="voucher redeemed"),),
    )
    try:
        redeemed = store.redeem_voucher(hashed, payment, now=now, balance_at_most=ceiling)
    except BalanceCeiling:
        store.give_back_voucher_attempt(customer_id)
        balance = next((m.minor for m in store.balances(customer_id) if m.currency == currency), 0)
        raise account.over_max_balance(terms, voucher.money, balance, field="voucher_code") from None
    if not redeemed:
        raise InvalidInput("voucher_code", INVALID_VOUCHER)
    return payment


def parse_expiry(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput("expires_at", "expires_at must be an ISO 8601 time such as 2027-01-31T00:00:00Z") from exc
    if moment.tzinfo is None:
        raise InvalidInput("expires_at", "expires_at must include a time zone (Z)")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:00:00-05:00 is in the year 10000 in UTC
        raise InvalidInput(
            "expires_at", "expires_at is out of range: in UTC it must fall within the years 0001 to 9999"
        ) from exc
    if moment <= datetime.now(UTC):
        raise InvalidInput("expires_at", "expires_at must be in the future")
    return moment
