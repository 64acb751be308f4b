"""What every adapter does with a webhook: check a hex HMAC in constant time, read the body as a JSON object.

Reading its fields is each gateway's models' job (`payments.gateways.payload`); ValueError for anything not shaped
as the gateway sends it, which the webhook route answers with 400.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from payments import jsonsafe
from payments.gateways.base import SignatureInvalid


def check_hex_hmac(
    *,
    secret: str,
    received: str,
    message: bytes,
    digest: Callable[[], Any],
    header: str,
    what: str,
) -> None:
    """SignatureInvalid unless `received` is the hex HMAC of `message` under `secret` (compared in constant time).

    `what` names the secret for the error message; an empty secret refuses everything, since an empty key
    would accept anyone's signature."""
    if not secret:
        raise SignatureInvalid(f"{what} is not configured", http_status=401)
    received = received.strip()
    if not received:
        raise SignatureInvalid(f"missing {header} header")
    expected = hmac.new(secret.encode(), message, digest).hexdigest()
    if not hmac.compare_digest(expected.encode(), received.lower().encode("utf-8", "replace")):
        raise SignatureInvalid(f"{header} does not match the body", http_status=401)


SHA256 = hashlib.sha256
SHA512 = hashlib.sha512


def json_object(
    raw_body: bytes, what: str = "webhook body", *, loads: Callable[[bytes], Any] = jsonsafe.loads
) -> dict[str, Any]:
    """The JSON object a body holds (`loads` parses it: NOWPayments keeps its numbers exact), before its gateway's
    models read it. ValueError naming `what` for anything else; the parser's own message says where it failed."""
    try:
        value = loads(raw_body)
    except ValueError as exc:  # UnicodeDecodeError and JSONTooDeep too
        raise ValueError(f"{what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a JSON object")
    return value
