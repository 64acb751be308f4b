"""Issue #16's newcomer path through `make dev`'s local stack over HTTP (docs/auto-topup.md): save a card, set an
auto top-up, record a purchase as an operator that takes the balance under the threshold, and watch the top-up
complete: the table's stream, the publisher, the bus, the auto top-up queue and function, the Stripe simulator's
off-session PaymentIntent and its webhook, all real."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from typing import Any

JSON = {"Content-Type": "application/json"}


def _call(stack: Any, method: str, path: str, token: str, body: Any = None, key: bool = False) -> Any:
    headers = {**JSON, **({"Idempotency-Key": uuid.uuid4().hex} if key else {})}
    answer = stack.call(method, path, token=token, headers=headers, body=None if body is None else json.dumps(body))
    assert answer.status < 300, (method, path, answer.status, answer.body)
    return answer.json() if answer.body else None


def test_a_purchase_below_the_threshold_tops_the_balance_up_once_with_the_saved_card(stack: Any) -> None:
    customer = f"topup-{uuid.uuid4().hex[:8]}"
    payer = stack.token(customer, ("finance",))
    operator = stack.token(None, ("operator",))
    card = _call(stack, "POST", "/payment-methods", payer, {"payment_method": "pm_card_visa"}, key=True)
    assert (card["brand"], card["last4"], card["default"]) == ("visa", "4242", True)
    _call(stack, "POST", "/payments", payer, {"method": "credit_card", "amount": "60.00", "currency": "USD",
                                               "saved_payment_method": card["id"]}, key=True)  # fmt: skip
    terms = {"enabled": True, "payment_method_id": card["id"], "currency": "USD", "threshold": "50.00",
             "amount": "25.00", "max_per_day": 3}  # fmt: skip
    saved = _call(stack, "PUT", "/auto-topup", payer, terms)
    assert saved["state"] == "active" and saved["mandate_id"], saved

    _call(stack, "POST", f"/admin/customers/{customer}/charges", operator,
          {"amount": "15.00", "currency": "USD", "description": "Calls"}, key=True)  # fmt: skip

    deadline, topups = time.monotonic() + 60, []
    while time.monotonic() < deadline:
        items = _call(stack, "GET", "/payments?limit=50", payer)["items"]
        topups = [p for p in items if p.get("auto_topup")]
        if topups and topups[0]["status"] != "pending":
            break
        time.sleep(0.3)
    assert [(p["status"], p["amount"], p["method"]) for p in topups] == [("completed", "25.00", "credit_card")]
    balances = _call(stack, "GET", "/balance", payer)["balances"]
    assert balances == [{"currency": "USD", "amount": "70.00"}]  # 60 - 15 + 25
    state = _call(stack, "GET", "/auto-topup", payer)
    assert (state["state"], state["failures"], state["last_attempt"]["id"]) == ("active", 0, topups[0]["id"])
    # The simulator made exactly one PaymentIntent for it.
    with urllib.request.urlopen(f"{stack.sim_url}/_sim/objects", timeout=10) as answer:  # noqa: S310 - local
        objects = json.loads(answer.read())
    intents = [
        i for i in objects["stripe"]["payment_intents"] if i.get("metadata", {}).get("payment_id") == topups[0]["id"]
    ]
    assert len(intents) == 1, intents
