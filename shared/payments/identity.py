"""Who is calling (docs/api.md#identity-and-access): the JWT claims API Gateway's authorizer put in the event.

API Gateway has already verified the token; we read `requestContext.authorizer.jwt.claims`.
Groups arrive as a JSON list or in API Gateway's string form "[admin finance]".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from payments import jsonsafe
from payments.errors import Forbidden, Unauthenticated


class Group(StrEnum):
    ADMIN = "admin"
    FINANCE = "finance"
    SUPPORT = "support"
    OPERATOR = "operator"


READERS = frozenset({Group.ADMIN, Group.FINANCE, Group.SUPPORT})
PAYERS = frozenset({Group.ADMIN, Group.FINANCE})  # make payments, export
OPERATORS = frozenset({Group.OPERATOR})


def parse_groups(value: Any) -> frozenset[str]:
    """`["a","b"]`, `"[a b]"`, `"a,b"` or `"a"` -> {"a", "b"}."""
    if value is None:
        return frozenset()
    if isinstance(value, list | tuple | set | frozenset):
        return frozenset(str(v).strip() for v in value if str(v).strip())
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = jsonsafe.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return parse_groups(parsed)
        text = text[1:-1]
    return frozenset(part for part in text.replace(",", " ").split() if part)


@dataclass(frozen=True, slots=True)
class Caller:
    sub: str
    email: str | None
    customer_id: str | None
    groups: frozenset[str]

    @property
    def actor(self) -> str:
        """How history records this caller."""
        return f"operator:{self.sub}" if Group.OPERATOR in self.groups else f"customer:{self.sub}"

    def customer_for(self, allowed: Iterable[Group]) -> str:
        """The caller's own customer id, if one of `allowed` groups; else Forbidden."""
        self.require(allowed)
        if not self.customer_id:
            raise Forbidden("the token has no custom:customer_id claim, so it names no customer account")
        return self.customer_id

    def require(self, allowed: Iterable[Group]) -> None:
        allowed_names = sorted(str(g) for g in allowed)
        if not self.groups.intersection(allowed_names):
            raise Forbidden(f"this route needs one of the groups: {', '.join(allowed_names)}")


def caller_from_event(event: Mapping[str, Any]) -> Caller:
    """The caller of an API Gateway HTTP API (payload 2.0) event with a JWT authorizer."""
    claims = (((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt") or {}).get("claims")
    if not isinstance(claims, Mapping) or not claims.get("sub"):
        raise Unauthenticated("a valid bearer token is required")
    customer = claims.get("custom:customer_id")
    return Caller(
        sub=str(claims["sub"]),
        email=str(claims["email"]) if claims.get("email") else None,
        customer_id=str(customer).strip() or None if customer is not None else None,
        groups=parse_groups(claims.get("cognito:groups")),
    )
