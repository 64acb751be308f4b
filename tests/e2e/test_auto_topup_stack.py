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


# ---- each outcome against the simulator's off-session test cards ---------------------------------------------------


def sim(stack: Any, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{stack.sim_url}{path}", data=data, headers=JSON)  # noqa: S310 - local
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - local
        return json.loads(answer.read())


def until(what: str, check: Any, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{what} within {seconds} s")


def _topups(stack: Any, payer: str) -> list[dict[str, Any]]:
    return [p for p in _call(stack, "GET", "/payments?limit=100", payer)["items"] if p.get("auto_topup")]


def customer_with_card(stack: Any, test_card: str, funds: str) -> tuple[str, str, dict[str, Any]]:
    """A new customer with `test_card` saved (3-D Secure on setup confirmed at the simulator when the bank asks) and
    `funds` paid with Stripe's plain test card."""
    customer = f"topup-{uuid.uuid4().hex[:8]}"
    payer = stack.token(customer, ("finance",))
    card = _call(stack, "POST", "/payment-methods", payer, {"payment_method": test_card}, key=True)
    if card.get("next_action"):
        setup = card["next_action"]["client_secret"].split("_secret_")[0]
        sim(stack, "/_sim/settle", {"provider": "stripe", "ref": setup, "outcome": "success"})
        until("the card confirmed", lambda: any(
            c["id"] == card["id"] and c["state"] == "active"
            for c in _call(stack, "GET", "/payment-methods", payer)["items"]))  # fmt: skip
    _call(stack, "POST", "/payments", payer, {"method": "credit_card", "amount": funds, "currency": "USD",
                                               "payment_method": "pm_card_visa"}, key=True)  # fmt: skip
    return customer, payer, card


def test_a_top_up_the_bank_holds_waits_for_the_customer_who_confirms_it_on_session(stack: Any) -> None:
    customer, payer, card = customer_with_card(stack, "pm_card_authenticationRequired", "60.00")
    operator = stack.token(None, ("operator",))
    _call(stack, "PUT", "/auto-topup", payer, {"enabled": True, "payment_method_id": card["id"], "currency": "USD",
                                               "threshold": "50.00", "amount": "25.00"})  # fmt: skip
    _call(stack, "POST", f"/admin/customers/{customer}/charges", operator,
          {"amount": "15.00", "currency": "USD", "description": "Calls"}, key=True)  # fmt: skip

    held = until("requires_action", lambda: (s := _call(stack, "GET", "/auto-topup", payer))["state"]
                  == "requires_action" and s)  # fmt: skip
    [waiting] = _topups(stack, payer)
    # Stripe also sends payment_intent.payment_failed (authentication_required): the payment must stay pending.
    until("the payment_failed webhook delivered", lambda: any(
        d["event_type"] == "payment_intent.payment_failed" and waiting["gateway_reference"] in d["body"]
        and d["delivered"] for d in sim(stack, "/_sim/objects")["deliveries"]))  # fmt: skip
    [still] = _topups(stack, payer)
    assert (still["status"], held["last_attempt"]["id"]) == ("pending", waiting["id"])
    assert "authentication_required" in (still.get("pending_reason") or ""), still
    emails = _call(stack, "GET", "/_local/outbox", payer)["emails"]
    assert any(e["subject"] == "Confirm your automatic top-up" for e in emails), [e["subject"] for e in emails]

    # The customer is back: confirming on-session makes the bank ask for 3-D Secure, passed at the simulator.
    asked = _call(stack, "POST", "/auto-topup/authenticate", payer)
    intent = waiting["gateway_reference"]
    assert asked["next_action"]["type"] == "stripe_sdk" and asked["next_action"]["client_secret"].startswith(intent)
    sim(stack, "/_sim/settle", {"provider": "stripe", "ref": intent, "outcome": "success"})

    done = until("the top-up completed", lambda: [p for p in _topups(stack, payer) if p["status"] == "completed"])
    assert [(p["id"], p["amount"]) for p in done] == [(waiting["id"], "25.00")]
    assert _call(stack, "GET", "/balance", payer)["balances"] == [{"currency": "USD", "amount": "70.00"}]
    state = until("active again", lambda: (s := _call(stack, "GET", "/auto-topup", payer))["state"] == "active" and s)
    assert (state["failures"], state["last_attempt"]["status"]) == (0, "completed")
    intents = [i for i in sim(stack, "/_sim/objects")["stripe"]["payment_intents"]
               if i.get("metadata", {}).get("payment_id") == waiting["id"]]  # fmt: skip
    assert [(i["id"], i["status"]) for i in intents] == [(intent, "succeeded")]


def test_three_declined_top_ups_in_a_row_turn_it_off_with_an_email_and_no_more_charges(stack: Any) -> None:
    customer, payer, card = customer_with_card(stack, "pm_card_chargeCustomerFail", "100.00")
    operator = stack.token(None, ("operator",))
    _call(stack, "PUT", "/auto-topup", payer, {"enabled": True, "payment_method_id": card["id"], "currency": "USD",
                                               "threshold": "50.00", "amount": "10.00", "max_per_day": 10})  # fmt: skip
    for round_ in range(1, 4):
        _call(stack, "POST", f"/admin/customers/{customer}/charges", operator,
              {"amount": "60.00", "currency": "USD", "description": f"Calls {round_}"}, key=True)  # fmt: skip
        until(f"decline {round_} counted", lambda n=round_: _call(stack, "GET", "/auto-topup", payer)["failures"] == n)
        # Money back above the threshold (the customer pays 60.00 by hand), for the next crossing.
        _call(stack, "POST", "/payments", payer, {"method": "credit_card", "amount": "60.00", "currency": "USD",
                                                   "payment_method": "pm_card_visa"}, key=True)  # fmt: skip
    state = _call(stack, "GET", "/auto-topup", payer)
    assert (state["enabled"], state["state"], state["reason"], state["failures"]) == (False, "disabled", "declined", 3)
    topups = _topups(stack, payer)
    assert [p["status"] for p in topups] == ["cancelled"] * 3
    assert all((p.get("failure_reason") or "").startswith("card_declined") for p in topups), topups
    until(
        "the e-mail saying it is off",
        lambda: any(
            e["subject"] == "Automatic top-up is off" for e in _call(stack, "GET", "/_local/outbox", payer)["emails"]
        ),
    )
    fourth = _call(stack, "POST", f"/admin/customers/{customer}/charges", operator,
                   {"amount": "60.00", "currency": "USD", "description": "Calls 4"}, key=True)  # fmt: skip
    # The publisher has judged the crossing once its event about the charge is out; a top-up would start with it.
    until("the fourth charge published", lambda: fourth["id"] in json.dumps(
        _call(stack, "GET", "/_local/outbox", payer)["events"]))  # fmt: skip
    time.sleep(1)  # and its charge would be queued at once: give that queue's poller a round
    assert len(_topups(stack, payer)) == 3
    assert _call(stack, "GET", "/balance", payer)["balances"] == [{"currency": "USD", "amount": "40.00"}]
