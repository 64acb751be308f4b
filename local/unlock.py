"""`make unlock-vouchers CUSTOMER=demo`: lift a customer's voucher lockout on the running local stack.

Five wrong voucher codes lock a customer out of voucher redemption for 15 minutes (docs/make-payment.md), which
someone trying the walk-through hits at once. This deletes the customer's attempt counter in the embedded
AWS of `make dev` (127.0.0.1:$AWS_PORT). Local only: in AWS the lockout is lifted by its window passing.
"""

from __future__ import annotations

import argparse
import os
import sys

import boto3

from local.defaults import DEFAULT_PORTS, LOCAL_REGION
from local.resources import TABLE, physical_name


def unlock(customer: str, endpoint: str) -> bool:
    """True if the customer had an attempt counter (now gone)."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=LOCAL_REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the embedded AWS takes any credentials
    )
    answer = client.delete_item(
        TableName=physical_name("PaymentsTable", TABLE),
        Key={"PK": {"S": f"CUST#{customer}"}, "SK": {"S": "VOUCHER_FAILURES"}},
        ReturnValues="ALL_OLD",
    )
    return "Attributes" in answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.unlock", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customer", default="demo")
    args = parser.parse_args(argv)
    endpoint = f"http://127.0.0.1:{os.environ.get('AWS_PORT') or DEFAULT_PORTS['AWS_PORT']}"
    try:
        had = unlock(args.customer, endpoint)
    except Exception as exc:  # the usual one: make dev is not running
        print(
            f"error: could not reach the local stack's embedded AWS at {endpoint} ({type(exc).__name__})",
            file=sys.stderr,
        )
        return 1
    print(f"customer {args.customer!r}: " + ("voucher lockout lifted" if had else "was not locked out"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
