"""Opaque, signed page cursors for `GET /payments` (docs/data-model.md).

A cursor carries only the last payment id of a page and a digest of the filters it was issued for.
It is signed with HMAC-SHA256 over (customer id, payload), so a cursor replayed by another customer,
edited, or used with other filters fails verification (400). The customer id is not inside it: the
next Query always runs on the caller's own partition.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from payments import jsonsafe
from payments.config import secret, settings
from payments.errors import BadRequest
from payments.ids import is_payment_id

CURSOR_CACHE_SECONDS = 3600


MAX_LENGTH = 512


class CursorError(BadRequest):
    """Any cursor we did not issue to this caller for these filters: 400 naming `cursor`."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="cursor")


def signing_key() -> bytes:
    """The HMAC key: `CURSOR_SECRET` locally, else the Secrets Manager secret `CURSOR_SECRET_ARN`."""
    config = settings()
    if config.cursor_secret:
        return config.cursor_secret.get_secret_value().encode()
    arn = config.cursor_secret_arn
    if not arn:
        raise RuntimeError("neither CURSOR_SECRET nor CURSOR_SECRET_ARN is set")
    return str(secret(arn, max_age=CURSOR_CACHE_SECONDS)).encode()  # cached; dropped before a SnapStart snapshot


def derived_key(purpose: str) -> bytes:
    """A key of its own for `purpose`, derived from the signing key: one secret serves several uses, and a MAC
    made for one use is worthless for another."""
    return hmac.new(signing_key(), purpose.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, customer_id: str, payload: str) -> str:
    message = f"{len(customer_id)}:{customer_id}|{payload}".encode()
    return _b64(hmac.new(key, message, hashlib.sha256).digest()[:20])


def filters_digest(filters: str) -> str:
    return hashlib.sha256(filters.encode()).hexdigest()[:16]


def encode(customer_id: str, last_id: str, filters: str, *, key: bytes | None = None) -> str:
    payload = _b64(json.dumps({"a": last_id, "f": filters_digest(filters)}, separators=(",", ":")).encode())
    return f"{payload}.{_mac(key or signing_key(), customer_id, payload)}"


def decode(customer_id: str, cursor: str, filters: str, *, key: bytes | None = None) -> str:
    """The last payment id the cursor points after. Raises CursorError (400) if it is not ours."""
    payload, _, mac = cursor.partition(".")
    if not payload or not mac or len(cursor) > MAX_LENGTH or not cursor.isascii():  # ours are short ASCII
        raise CursorError("cursor is malformed: pass next_cursor exactly as a previous page returned it")
    if not hmac.compare_digest(mac, _mac(key or signing_key(), customer_id, payload)):
        raise CursorError("cursor is not valid for this account: it was altered or issued to someone else")
    try:
        data = jsonsafe.loads(_unb64(payload))
        last_id, digest = data["a"], data["f"]
    except (ValueError, KeyError, TypeError) as exc:  # signed by us, so only on a key mix-up
        raise CursorError("cursor is malformed") from exc
    if digest != filters_digest(filters):
        raise CursorError("cursor was issued for other filters: repeat status/from/to as on the first page")
    if not isinstance(last_id, str) or not is_payment_id(last_id):
        raise CursorError("cursor is malformed")
    return last_id
