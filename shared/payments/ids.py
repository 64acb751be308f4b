"""Payment ids: `pay_` + a ULID (github.com/ulid/spec): 48 bits of Unix time in milliseconds, then 80
random bits, in Crockford's base32, so ids sort by creation time as text.

Encoded here rather than imported: the `python-ulid` package imports `importlib.metadata` at start,
about 35 ms on every cold start of every function. tests/unit/test_ids.py checks this codec against it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

PREFIX = "pay_"
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUES = {char: index for index, char in enumerate(_ALPHABET)}
_LENGTH = 26
MAX_MILLIS = 2**48 - 1


def _encode(value: int) -> str:
    return "".join(_ALPHABET[(value >> shift) & 31] for shift in range(5 * (_LENGTH - 1), -1, -5))


def _decode(text: str) -> int:
    """The 128-bit value of a ULID; ValueError if `text` is not one."""
    if len(text) != _LENGTH or text[0] > "7":
        raise ValueError("not a ULID")
    value = 0
    for char in text:
        digit = _VALUES.get(char)
        if digit is None:
            raise ValueError("not a ULID")
        value = value << 5 | digit
    return value


def _millis(moment: datetime) -> int:
    return min(max(int(moment.timestamp() * 1000), 0), MAX_MILLIS)


def new_payment_id(created_at: datetime) -> str:
    """A fresh id whose sort position is `created_at` (millisecond precision)."""
    return PREFIX + _encode(_millis(created_at) << 80 | secrets.randbits(80))


def id_bound(moment: datetime, *, upper: bool) -> str:
    """The smallest (or largest) id created in `moment`'s millisecond. Clamped to the ULID time range."""
    return PREFIX + _encode(_millis(moment) << 80 | ((1 << 80) - 1 if upper else 0))


def created_at_of(payment_id: str) -> datetime:
    """The creation time an id carries (millisecond precision). ValueError if it is not a payment id."""
    if not payment_id.startswith(PREFIX):
        raise ValueError("not a payment id")
    return datetime.fromtimestamp((_decode(payment_id[len(PREFIX) :]) >> 80) / 1000, UTC)


def is_payment_id(value: str) -> bool:
    try:
        created_at_of(value)
    except ValueError:
        return False
    return True


def derived_payment_id(created_at: datetime, seed: str) -> str:
    """The id of a payment something made deterministically (an auto top-up's crossing, docs/auto-topup.md): its
    sort position is `created_at`, its 80 other bits a hash of `seed`, so the same seed and time make the same id."""
    import hashlib

    bits = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:10], "big")
    return PREFIX + _encode(_millis(created_at) << 80 | bits)
