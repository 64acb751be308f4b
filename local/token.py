"""Local tokens (docs/api.md#identity-and-access): one HS256 JWT per call.

`python -m local.token --customer acme --groups finance` prints one.

The claims are the ones a Cognito ID token carries and the handlers read: `sub`, `email`,
`custom:customer_id`, `cognito:groups` (a list). Signed with LOCAL_JWT_SECRET, which the local API checks.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Iterable
from typing import Any

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from local.defaults import jwt_secret

DEFAULT_TTL_SECONDS = 3600

# The documented local default secret (docs/api.md#running-it-locally) is shorter than PyJWT recommends;
# it signs nothing real.
warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)


def make_token(
    customer: str | None,
    groups: Iterable[str],
    *,
    sub: str | None = None,
    email: str | None = None,
    ttl: int = DEFAULT_TTL_SECONDS,
    secret: str | None = None,
    **claims: Any,
) -> str:
    """A signed local token. `customer` None or "" leaves out custom:customer_id (an operator may have none)."""
    now = int(time.time())
    sub = sub or f"local-{customer or 'user'}-{'-'.join(sorted(groups)) or 'nogroup'}"
    payload: dict[str, Any] = {
        "sub": sub,
        "email": email or f"{sub}@example.com",
        "cognito:groups": list(groups),
        "token_use": "id",
        "iss": "local",
        "iat": now,
        "exp": now + ttl,
    }
    if customer:
        payload["custom:customer_id"] = customer
    payload.update(claims)
    return jwt.encode(payload, secret or jwt_secret(), algorithm="HS256")


def split_groups(text: str) -> list[str]:
    """ "finance,support" or "finance support" -> ["finance", "support"]."""
    return [g for g in text.replace(",", " ").split() if g]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m local.token", description="Print a local JWT (docs/api.md#identity-and-access)."
    )
    parser.add_argument("--customer", required=True, help='custom:customer_id; "" for none')
    parser.add_argument("--groups", default="finance", help="comma separated: admin, finance, support, operator")
    parser.add_argument("--sub", help="subject (default derived from customer and groups)")
    parser.add_argument("--email", help="email claim (default <sub>@example.com)")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL_SECONDS, help="seconds until it expires")
    args = parser.parse_args(argv)
    print(make_token(args.customer, split_groups(args.groups), sub=args.sub, email=args.email, ttl=args.ttl))


if __name__ == "__main__":
    main()
