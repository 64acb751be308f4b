"""Local-only tools a newcomer uses with `make dev` (issue 12 §11): lifting a voucher lockout."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

from tests.e2e.conftest import ROOT, stack_env


def voucher(stack: Any, token: str, code: str) -> tuple[int, Any]:
    answer = stack.call(
        "POST",
        "/payments",
        token=token,
        headers={"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
        body=json.dumps({"method": "voucher", "voucher_code": code, "currency": "USD"}),
    )
    return answer.status, answer.json()


def test_make_unlock_vouchers_lifts_a_lockout_at_once(stack: Any) -> None:
    customer = f"locked-{uuid.uuid4().hex[:8]}"
    token = stack.token(customer, ("finance",))
    for _ in range(5):
        assert voucher(stack, token, "WRONG-CODE")[0] == 422
    status, locked = voucher(stack, token, "WRONG-CODE")
    assert status == 429 and locked["locked_until"], locked

    env = stack_env(AWS_PORT=str(stack.ports["AWS_PORT"]))
    done = subprocess.run(
        [sys.executable, "-m", "local.unlock", "--customer", customer],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"customer {customer!r}: voucher lockout lifted"
    assert voucher(stack, token, "WRONG-CODE")[0] == 422  # counted again from zero, not 429

    again = subprocess.run(
        [sys.executable, "-m", "local.unlock", "--customer", "never-locked"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0 and "was not locked out" in again.stdout
