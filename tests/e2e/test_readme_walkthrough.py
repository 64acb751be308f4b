"""The README's curl walk-through, run as written against the local stack (issue 12 §10): a newcomer who
follows it pays with every method and settles and refunds a payment at each of the five gateways.

The shell blocks of "A walk through with curl" are taken from README.md as they are; only what differs on a
test stack changes: its ports, and tokens minted with its secret instead of `make token`.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def walkthrough_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## A walk through with curl", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.DOTALL)


def json_documents(text: str) -> list[Any]:
    """Every JSON document the commands printed (curl prints no newline after an answer)."""
    decoder, found, index = json.JSONDecoder(), [], 0
    while (index := text.find("{", index)) != -1:
        try:
            document, index = decoder.raw_decode(text, index)
        except ValueError:
            index += 1
            continue
        found.append(document)
    return found


def test_the_walkthrough_pays_settles_and_refunds_at_every_gateway(stack: Any) -> None:
    blocks = walkthrough_blocks()
    assert len(blocks) >= 4, "the walk-through's shell blocks moved"
    customer = "walkthrough"
    # Lines with a placeholder (<id>, <url>) are the reader's to fill in.
    blocks = ["\n".join(line for line in block.splitlines() if not re.search(r"<(id|url)>", line)) for block in blocks]
    script = "\n".join(
        block.replace("make dev ", "# make dev ")
        .replace(
            "$(make -s token CUSTOMER=demo GROUPS=finance)", stack.token(customer, ("finance",), email="w@example.com")
        )
        .replace("$(make -s token CUSTOMER=provider GROUPS=operator)", stack.token(None, ("operator",)))
        .replace("export CUSTOMER=demo", f"export CUSTOMER={customer}")
        .replace("http://127.0.0.1:3000", stack.api_url)
        .replace("http://127.0.0.1:12111", stack.sim_url)
        for block in blocks
        if "/payments/exports" not in block and "/admin/customers/demo" not in block
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json_documents(done.stdout)
    assert len(answers) >= 20, done.stdout[-2000:]
    failed = [a for a in answers if isinstance(a, dict) and "errors" in a and "payment" not in a]
    assert not failed, failed  # no error answer, but for the walk-through's declined card (it has a payment)

    token = stack.token(customer, ("finance",))
    listed = stack.call("GET", "/payments?limit=200", token=token).json()["items"]
    refunds = [p for p in listed if p["method"] == "refund"]
    refunded = {p["original_payment_id"] for p in refunds}
    by_id = {p["id"]: p for p in listed}
    assert {by_id[i]["method"] for i in refunded} == {"paypal", "razorpay", "paystack", "nowpayments", "credit_card"}
    assert all(by_id[i]["status"] == "completed" for i in refunded)
    # A failed refund is a cancelled entry; a held payment said why while it was held, and then completed.
    assert any(p["status"] == "cancelled" and p.get("refund_status") == "failed" for p in refunds), refunds
    held = [a for a in answers if isinstance(a, dict) and str(a.get("pending_reason", "")).startswith("PayPal holds")]
    assert held and by_id[held[0]["id"]]["status"] == "completed", held
    # An operator's refunds through Stripe's refund API, a dispute won, and a partial crypto payment made whole.
    made_here = [p for p in refunds if p.get("reference", "") and p["reference"].startswith("re_")]
    assert {"-15.00", "-25.00"} <= {p["amount"] for p in made_here}, refunds
    assert {"chargeback", "chargeback_reversal"} <= {p["method"] for p in listed}
    disputed = [p for p in listed if p["method"] == "chargeback"]
    answer = stack.call("GET", f"/payments/{disputed[0]['original_payment_id']}", token=token)
    assert answer.status == 200 and answer.json()["dispute"]["status"] == "won", answer.body
    partial = [a for a in answers if isinstance(a, dict) and a.get("requested_amount") == "50.00"]
    assert partial and partial[0]["amount"] == "20.00" and by_id[partial[0]["id"]]["amount"] == "50.00", partial
    methods = {p["method"] for p in listed}
    assert methods >= {"bank_transfer", "paypal", "credit_card", "razorpay", "paystack", "nowpayments", "voucher"}
    # The prepaid account: the operator's settings, the options, a surcharge charged at PayPal and not credited.
    offered = [a for a in answers if isinstance(a, dict) and "account_currency" in a and "methods" in a]
    assert offered and isinstance(offered[-1]["methods"], list), offered
    surcharged = [p for p in listed if p.get("surcharge") == "0.59"]
    assert [(p["amount"], p["charged_amount"], p["status"]) for p in surcharged] == [("10.00", "10.59", "completed")]
    assert "%PDF-" in done.stdout
    usd = [b for b in stack.call("GET", "/balance", token=token).json()["balances"] if b["currency"] == "USD"]
    assert usd and usd[0]["credit_limit"] == "20.00", usd
