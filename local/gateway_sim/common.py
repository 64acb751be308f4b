"""Small helpers every simulated gateway shares: ids, times, amounts, auth headers, form bodies, credentials."""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
import secrets
import string
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ALNUM = string.ascii_letters + string.digits
UPPER_ALNUM = string.ascii_uppercase + string.digits
LOWER_ALNUM = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"

# ISO 4217 minor digits where they are not 2 (the gateway's own view of amounts; no import from the layer).
_ZERO_DIGIT = frozenset([
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
    "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
])  # fmt: skip
_THREE_DIGIT = frozenset(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"])


def credential(declared: Mapping[str, str], name: str) -> str:
    """A gateway credential as the local stack sees it: the environment, else the local default declared."""
    return os.environ.get(name) or declared[name]


def token(length: int, alphabet: str = ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def number_id(length: int) -> int:
    low: int = 10 ** (length - 1)
    return low + secrets.randbelow(9 * low)


def iso_ms() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def iso_seconds() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def digits(currency: str) -> int:
    code = currency.upper()
    return 0 if code in _ZERO_DIGIT else 3 if code in _THREE_DIGIT else 2


def major(minor: int, currency: str, places: int | None = None) -> str:
    places = digits(currency) if places is None else places
    return f"{Decimal(minor).scaleb(-places):.{places}f}"


def to_minor(amount: str | Decimal, currency: str, places: int | None = None) -> int:
    places = digits(currency) if places is None else places
    scaled = Decimal(amount).scaleb(places)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more decimals than {currency.upper()} allows")
    return int(scaled)


def js_number(value: Decimal) -> int | float:
    """A JSON number as a JavaScript gateway prints it: 100 (not 100.0), 12.5. A float only at the wire."""
    return int(value) if value == value.to_integral_value() else float(value)


def wire(value: Any) -> Any:
    """A copy safe to serialise: Decimals become JSON numbers (NOWPayments sends numbers, not strings)."""
    if isinstance(value, Decimal):
        return js_number(value)
    if isinstance(value, dict):
        return {key: wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [wire(item) for item in value]
    return value


def with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def bearer(header: str | None) -> str | None:
    if not header or not header.lower().startswith("bearer "):
        return None
    return header[7:].strip()


def same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


_BRACKET = re.compile(r"\[([^\[\]]*)\]")


def parse_nested_form(body: bytes) -> dict[str, Any]:
    """A form body with Stripe's nested keys (`metadata[payment_id]=x`, `card[number]=...`, `types[0]=card`)
    as nested dicts and lists. ValueError if the keys contradict each other."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False):
        head, bracket, rest = key.partition("[")
        parts = [head, *_BRACKET.findall(bracket + rest)] if bracket else [head]
        node: Any = root
        for index, part in enumerate(parts):
            if not isinstance(node, dict):
                raise ValueError(f"Invalid form key {key}")
            name = part or str(len(node))  # `key[]=` appends
            if index == len(parts) - 1:
                node[name] = value
            else:
                node = node.setdefault(name, {})
    nested: dict[str, Any] = _dict_lists(root)  # the root's keys are names, never all digits
    return nested


def _dict_lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _dict_lists(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted
