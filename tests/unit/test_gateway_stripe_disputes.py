"""Stripe disputes: charge.dispute.* webhooks (Stripe's Dispute object, signed as Stripe signs) read by the adapter,
fetch_dispute/fetch_refund against the gateway simulator (real HTTP on 127.0.0.1, faults from a proxy in front of
it), and the simulator's dispute outcomes and the webhooks they send."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from local.gateway_sim import GatewaySimulator, SettleError
from local.gateway_sim import stripe as stripe_sim
from payments.gateways.base import (
    CreateRequest,
    DisputeAnswer,
    EventKind,
    GatewayEvent,
    GatewayInputRejected,
    GatewayRejected,
    GatewayUnavailable,
    RefundAnswer,
    SignatureInvalid,
    reading_answers,
)
from payments.gateways.stripe import DISPUTE_STATUSES, EVENT_KINDS, StripeGateway
from payments.models import DisputeStatus, RefundStatus
from payments.money import Money
from tests.unit.gateway_faults import Fail, Reshape, fault_proxy, with_fields, without
from tests.unit.test_gateway_stripe_refunds import (
    CUSTOMER_ID,
    PAYMENT_ID,
    faulty_gateway,
    paid,
    refund_of,
    settings_for,
)

PAID_USD = Money(1250, "USD")  # what `paid` pays
DISPUTES_PATH = "/stripe/v1/disputes/[^/]+"
REFUNDS_PATH = "/stripe/v1/refunds/[^/]+"


@pytest.fixture
def sim() -> Iterator[GatewaySimulator]:
    simulator = GatewaySimulator("http://127.0.0.1:9")  # webhooks are read from its deliveries, not delivered
    simulator.start()
    yield simulator
    simulator.stop()
    assert simulator.unrouted() == []  # every call the adapter made is one the simulator serves


@pytest.fixture
def gateway(sim: GatewaySimulator) -> StripeGateway:
    return StripeGateway(settings_for(sim.provider_base("stripe")))


def offline() -> StripeGateway:
    """The adapter for reading webhooks (no API call is made)."""
    return StripeGateway(settings_for("http://127.0.0.1:9"))


def succeeded_intent(amount: int = 1250, currency: str = "usd") -> dict[str, Any]:
    intent = stripe_sim.payment_intent(amount, currency, metadata={"payment_id": "pay_01X", "customer_id": "cust-1"})
    stripe_sim.succeed(intent, amount)
    return intent


def read(gateway: StripeGateway, stripe_event: dict[str, Any]) -> GatewayEvent:
    body, headers = stripe_sim.signed(stripe_event)
    lowered = {name.lower(): value for name, value in headers.items()}
    gateway.verify_webhook(lowered, body)
    return gateway.parse_event(lowered, body)


def deliveries_after(sim: GatewaySimulator, seen: int, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The simulator's deliveries after the first `seen`, once there are `count` (the first is settle()'s own, the
    others follow it)."""
    deadline = time.monotonic() + timeout
    while True:
        found = sim.deliveries()[seen:]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def read_delivery(gateway: StripeGateway, delivery: dict[str, Any]) -> GatewayEvent:
    headers = {name.lower(): value for name, value in delivery["headers"].items()}
    body = delivery["body"].encode()
    gateway.verify_webhook(headers, body)  # signed as Stripe signs
    return gateway.parse_event(headers, body)


def settle(
    sim: GatewaySimulator, ref: str, outcome: str, count: int, amount: str | None = None
) -> list[dict[str, Any]]:
    """Play `outcome` and answer the `count` webhooks it sends, in the order sent."""
    seen = len(sim.deliveries())
    result = sim.settle("stripe", ref, outcome, amount)
    sent = deliveries_after(sim, seen, count)
    assert len(sent) == count, [d["event_type"] for d in sent]
    assert json.loads(sent[0]["body"]) == result["event"]  # settle() answers the first
    sim.drain()  # every webhook it scheduled has been sent
    assert len(sim.deliveries()) == seen + count  # and no more follow
    return sent


def sim_dispute(sim: GatewaySimulator) -> dict[str, Any]:
    [dispute] = sim.objects()["stripe"]["disputes"]
    return dict(dispute)


# -- the events -----------------------------------------------------------------------------------------------


def test_the_dispute_events_and_statuses_stripe_documents_are_mapped() -> None:
    assert {t: k for t, k in EVENT_KINDS.items() if t.startswith("charge.dispute.")} == {
        "charge.dispute.created": EventKind.DISPUTE,
        "charge.dispute.updated": EventKind.DISPUTE,
        "charge.dispute.closed": EventKind.DISPUTE,
        "charge.dispute.funds_withdrawn": EventKind.CHARGEBACK,
        "charge.dispute.funds_reinstated": EventKind.CHARGEBACK_REVERSAL,
    }
    assert {status for status, ours in DISPUTE_STATUSES.items() if ours is DisputeStatus.OPEN} == {
        "warning_needs_response",
        "warning_under_review",
        "needs_response",
        "under_review",
        "appeal_needs_response",
        "appeal_under_review",
    }
    assert {s for s, ours in DISPUTE_STATUSES.items() if ours is DisputeStatus.WON} == {
        "won",
        "warning_closed",
        "prevented",
    }
    assert {s for s, ours in DISPUTE_STATUSES.items() if ours is DisputeStatus.LOST} == {"lost"}


@pytest.mark.parametrize(
    ("event_type", "status", "kind", "dispute_status"),
    [
        ("charge.dispute.created", "warning_needs_response", EventKind.DISPUTE, DisputeStatus.OPEN),
        ("charge.dispute.created", "needs_response", EventKind.DISPUTE, DisputeStatus.OPEN),
        ("charge.dispute.updated", "under_review", EventKind.DISPUTE, DisputeStatus.OPEN),
        ("charge.dispute.updated", "warning_under_review", EventKind.DISPUTE, DisputeStatus.OPEN),
        ("charge.dispute.updated", "won", EventKind.DISPUTE, DisputeStatus.WON),
        ("charge.dispute.updated", "lost", EventKind.DISPUTE, DisputeStatus.LOST),
        ("charge.dispute.closed", "won", EventKind.DISPUTE, DisputeStatus.WON),
        ("charge.dispute.closed", "warning_closed", EventKind.DISPUTE, DisputeStatus.WON),
        ("charge.dispute.closed", "lost", EventKind.DISPUTE, DisputeStatus.LOST),
        ("charge.dispute.funds_withdrawn", "needs_response", EventKind.CHARGEBACK, DisputeStatus.OPEN),
        ("charge.dispute.funds_reinstated", "won", EventKind.CHARGEBACK_REVERSAL, DisputeStatus.WON),
    ],
)
def test_each_dispute_event_reads_as_the_dispute_of_its_payment_intent(
    event_type: str, status: str, kind: EventKind, dispute_status: DisputeStatus
) -> None:
    intent = succeeded_intent()
    dispute = stripe_sim.dispute_object(intent, 1250, reason="product_not_received")
    dispute["status"] = status
    stripe_event = stripe_sim.event(event_type, dispute, event_id="evt_1DISPUTE")

    event = read(offline(), stripe_event)

    assert event == GatewayEvent(
        provider="stripe",
        event_id="evt_1DISPUTE",
        event_type=event_type,
        kind=kind,
        payment_id=None,  # a Dispute's metadata is its own: the payment is found by its PaymentIntent
        customer_id=None,
        gateway_ref=intent["id"],
        money=Money(1250, "USD"),
        reason="product_not_received",
        dispute_id=dispute["id"],
        dispute_status=dispute_status,
    )


def test_a_partial_dispute_in_a_zero_decimal_currency_reads_its_own_amount() -> None:
    intent = succeeded_intent(5000, "jpy")
    dispute = stripe_sim.dispute_object(intent, 1200)
    dispute["balance_transactions"].append(stripe_sim.dispute_funds(dispute, withdrawn=True))

    event = read(offline(), stripe_sim.event("charge.dispute.funds_withdrawn", dispute))

    assert (event.kind, event.money, event.reason) == (EventKind.CHARGEBACK, Money(1200, "JPY"), "fraudulent")
    assert (event.funds_id, event.refund_id) == (None, None)  # the funds move under the dispute's own id


def test_a_dispute_naming_no_payment_intent_is_about_no_payment_of_ours() -> None:
    dispute = stripe_sim.dispute_object(succeeded_intent(), 1250)
    dispute["payment_intent"] = None  # a charge made without a PaymentIntent: only the charge id, which we never store

    event = read(offline(), stripe_sim.event("charge.dispute.created", dispute))

    assert (event.kind, event.gateway_ref, event.dispute_id) == (EventKind.DISPUTE, None, dispute["id"])


def test_a_dispute_status_stripe_adds_later_reads_as_no_status() -> None:
    dispute = stripe_sim.dispute_object(succeeded_intent(), 1250)
    dispute["status"] = "escalated_somehow"

    event = read(offline(), stripe_sim.event("charge.dispute.updated", dispute))

    assert (event.kind, event.dispute_status, event.money) == (EventKind.DISPUTE, None, Money(1250, "USD"))


NOT_READABLE = "stripe charge.dispute.created event is not readable: "


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("amount"), NOT_READABLE + "data.object.amount: Field required"),
        (lambda d: d.update(amount="12.50"), NOT_READABLE + "data.object.amount: Input should be a valid integer"),
        (lambda d: d.pop("id"), NOT_READABLE + "data.object.id: Field required"),
        (lambda d: d.update(currency="zzz"), "unknown currency 'zzz'"),
    ],
    ids=["no amount", "amount not an integer", "no id", "unknown currency"],
)
def test_a_dispute_event_not_of_stripes_shape_is_a_value_error(change: Any, message: str) -> None:
    dispute = stripe_sim.dispute_object(succeeded_intent(), 1250)
    change(dispute)

    with pytest.raises(ValueError) as caught:
        read(offline(), stripe_sim.event("charge.dispute.created", dispute))

    assert str(caught.value) == message


def test_a_dispute_event_signed_with_another_secret_is_refused() -> None:
    stripe_event = stripe_sim.event("charge.dispute.funds_withdrawn", stripe_sim.dispute_object(succeeded_intent(), 1))
    body, headers = stripe_sim.signed(stripe_event, secret="whsec_someone_else")

    with pytest.raises(SignatureInvalid, match="bad Stripe-Signature"):
        offline().verify_webhook({"stripe-signature": headers["Stripe-Signature"]}, body)


# -- the simulator's outcomes ---------------------------------------------------------------------------------


def test_dispute_sends_created_then_funds_withdrawn_of_the_whole_charge(
    gateway: StripeGateway, sim: GatewaySimulator
) -> None:
    intent_id = paid(gateway)

    created, withdrawn = settle(sim, intent_id, "dispute", 2)

    assert [created["event_type"], withdrawn["event_type"]] == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
    ]
    held = sim_dispute(sim)
    assert (held["amount"], held["currency"], held["payment_intent"], held["status"]) == (
        1250,
        "usd",
        intent_id,
        "needs_response",
    )
    opened, taken = read_delivery(gateway, created), read_delivery(gateway, withdrawn)
    assert (opened.kind, opened.dispute_status, opened.money) == (EventKind.DISPUTE, DisputeStatus.OPEN, PAID_USD)
    assert (taken.kind, taken.dispute_status, taken.money) == (EventKind.CHARGEBACK, DisputeStatus.OPEN, PAID_USD)
    assert opened.dispute_id == taken.dispute_id == held["id"]
    assert opened.gateway_ref == taken.gateway_ref == intent_id
    assert json.loads(created["body"])["data"]["object"]["balance_transactions"] == []
    [transaction] = json.loads(withdrawn["body"])["data"]["object"]["balance_transactions"]
    assert (transaction["amount"], transaction["fee"], transaction["net"], transaction["reporting_category"]) == (
        -1250,
        1500,
        -2750,
        "dispute",
    )


def test_dispute_of_part_of_the_charge_disputes_that_amount(gateway: StripeGateway, sim: GatewaySimulator) -> None:
    intent_id = paid(gateway)

    created, withdrawn = settle(sim, intent_id, "dispute", 2, amount="4.50")

    assert [read_delivery(gateway, d).money for d in (created, withdrawn)] == [Money(450, "USD")] * 2
    assert sim_dispute(sim)["amount"] == 450


def test_dispute_won_sends_funds_reinstated_then_closed_won(gateway: StripeGateway, sim: GatewaySimulator) -> None:
    intent_id = paid(gateway)
    settle(sim, intent_id, "dispute", 2)

    reinstated, closed = settle(sim, intent_id, "dispute_won", 2)

    back, decided = read_delivery(gateway, reinstated), read_delivery(gateway, closed)
    assert (reinstated["event_type"], closed["event_type"]) == (
        "charge.dispute.funds_reinstated",
        "charge.dispute.closed",
    )
    assert (back.kind, back.dispute_status, back.money) == (EventKind.CHARGEBACK_REVERSAL, DisputeStatus.WON, PAID_USD)
    assert (decided.kind, decided.dispute_status, decided.money) == (EventKind.DISPUTE, DisputeStatus.WON, PAID_USD)
    categories = [t["reporting_category"] for t in sim_dispute(sim)["balance_transactions"]]
    assert categories == ["dispute", "dispute_reversal"]
    assert sim_dispute(sim)["balance_transactions"][1]["amount"] == 1250


def test_dispute_lost_sends_closed_lost_and_nothing_comes_back(gateway: StripeGateway, sim: GatewaySimulator) -> None:
    intent_id = paid(gateway)
    settle(sim, intent_id, "dispute", 2)

    [closed] = settle(sim, intent_id, "dispute_lost", 1)

    decided = read_delivery(gateway, closed)
    assert (closed["event_type"], decided.kind, decided.dispute_status) == (
        "charge.dispute.closed",
        EventKind.DISPUTE,
        DisputeStatus.LOST,
    )
    assert [t["reporting_category"] for t in sim_dispute(sim)["balance_transactions"]] == ["dispute"]


def test_the_simulator_refuses_dispute_outcomes_that_cannot_happen(
    gateway: StripeGateway, sim: GatewaySimulator
) -> None:
    waiting = CreateRequest(
        payment_id=PAYMENT_ID,
        customer_id=CUSTOMER_ID,
        money=PAID_USD,
        description="Mobile plan top-up",
        idempotency_key="key-unpaid",
        payment_method="pm_card_authenticationRequired",  # waits for 3-D Secure
    )
    unpaid = gateway.create(waiting).gateway_ref
    intent_id = paid(gateway)
    refusals = []
    for ref, outcome, amount in [
        (unpaid, "dispute", None),  # nothing paid
        (intent_id, "dispute_won", None),  # no dispute yet
        (intent_id, "dispute", "12.51"),  # more than was paid
    ]:
        with pytest.raises(SettleError) as refused:
            sim.settle("stripe", ref, outcome, amount)
        refusals.append((refused.value.status, refused.value.message))
    settle(sim, intent_id, "dispute", 2)
    with pytest.raises(SettleError) as twice:
        sim.settle("stripe", intent_id, "dispute")
    settle(sim, intent_id, "dispute_lost", 1)
    with pytest.raises(SettleError) as decided:
        sim.settle("stripe", intent_id, "dispute_won")

    assert refusals == [
        (409, f"{unpaid} has not succeeded, so there is nothing to dispute"),
        (409, f"{intent_id} has no open dispute to decide"),
        (409, f"{intent_id} received 12.50 usd only"),
    ]
    assert (twice.value.status, twice.value.message) == (
        409,
        f"{intent_id}'s charge is already disputed ({sim_dispute(sim)['id']})",
    )
    assert (decided.value.status, decided.value.message) == (409, f"{intent_id} has no open dispute to decide")


@pytest.mark.parametrize("decision", [None, "dispute_lost"])
def test_a_charge_disputed_or_charged_back_is_not_refunded(
    gateway: StripeGateway, sim: GatewaySimulator, decision: str | None
) -> None:
    intent_id = paid(gateway)
    settle(sim, intent_id, "dispute", 2)
    if decision:
        settle(sim, intent_id, decision, 1)

    with pytest.raises(GatewayInputRejected) as refused:
        gateway.refund(refund_of(intent_id, 100))
    with pytest.raises(SettleError) as refused_at_sim:
        sim.settle("stripe", intent_id, "refund")

    assert (str(refused.value), refused.value.field) == ("Stripe refused the refund: charge_disputed", "amount")
    assert refused_at_sim.value.status == 409
    assert sim.objects()["stripe"]["refunds"] == []


def test_a_charge_whose_dispute_was_won_can_be_refunded_again(gateway: StripeGateway, sim: GatewaySimulator) -> None:
    intent_id = paid(gateway)
    settle(sim, intent_id, "dispute", 2)
    settle(sim, intent_id, "dispute_won", 2)

    assert gateway.refund(refund_of(intent_id, 100)).money == Money(100, "USD")


# -- fetch_dispute --------------------------------------------------------------------------------------------


def test_fetch_dispute_answers_the_dispute_as_stripe_has_it_now(gateway: StripeGateway, sim: GatewaySimulator) -> None:
    intent_id = paid(gateway)
    settle(sim, intent_id, "dispute", 2, amount="10.00")
    dispute_id = sim_dispute(sim)["id"]
    opened = gateway.fetch_dispute(intent_id, dispute_id)
    settle(sim, intent_id, "dispute_won", 2)
    won = gateway.fetch_dispute(intent_id, dispute_id)

    assert opened == DisputeAnswer(
        dispute_id, DisputeStatus.OPEN, Money(1000, "USD"), "fraudulent", withdrawn=True, reinstated=False
    )
    assert won == DisputeAnswer(
        dispute_id, DisputeStatus.WON, Money(1000, "USD"), "fraudulent", withdrawn=True, reinstated=True
    )


def test_fetch_dispute_of_a_lost_dispute_says_withdrawn_and_not_reinstated(
    gateway: StripeGateway, sim: GatewaySimulator
) -> None:
    intent_id = paid(gateway)
    settle(sim, intent_id, "dispute", 2)
    settle(sim, intent_id, "dispute_lost", 1)

    answer = gateway.fetch_dispute(intent_id, sim_dispute(sim)["id"])

    assert answer == DisputeAnswer(sim_dispute(sim)["id"], DisputeStatus.LOST, PAID_USD, "fraudulent", True, False)


def test_fetch_dispute_of_another_payments_dispute_or_an_unknown_one_is_none(
    gateway: StripeGateway, sim: GatewaySimulator
) -> None:
    intent_id, other = paid(gateway), paid(gateway)
    settle(sim, other, "dispute", 2)

    assert gateway.fetch_dispute(intent_id, sim_dispute(sim)["id"]) is None
    assert gateway.fetch_dispute(intent_id, "dp_1NoSuchDispute000000000") is None


def test_fetch_dispute_with_an_id_that_is_not_stripes_never_reaches_stripe(gateway: StripeGateway) -> None:
    with pytest.raises(GatewayRejected, match="not a Stripe dispute id"):
        gateway.fetch_dispute("pi_123", "../refunds")
    with pytest.raises(GatewayRejected, match="not a Stripe PaymentIntent id"):
        gateway.fetch_dispute("", "dp_123")


@pytest.mark.parametrize("status", [500, 503])
def test_fetch_dispute_and_fetch_refund_when_stripe_fails_are_unavailable(
    gateway: StripeGateway, sim: GatewaySimulator, status: int
) -> None:
    intent_id = paid(gateway)
    with fault_proxy(sim.base_url) as proxy:
        proxy.add("GET", DISPUTES_PATH, Fail(status, {"error": {"type": "api_error", "message": "down"}}))
        proxy.add("GET", REFUNDS_PATH, Fail(status, {"error": {"type": "api_error", "message": "down"}}))
        faulty = faulty_gateway(proxy)
        with pytest.raises(GatewayUnavailable) as dispute:
            faulty.fetch_dispute(intent_id, "dp_1Any")
        with pytest.raises(GatewayUnavailable) as refund:
            faulty.fetch_refund(intent_id, "re_1Any")

    assert dispute.value.http_status == refund.value.http_status == 503
    assert str(dispute.value) == f"Stripe could not read the dispute now ({status})"
    assert str(refund.value) == f"Stripe could not read the refund now ({status})"


@pytest.mark.parametrize(
    "change",
    [without("amount"), without("currency"), without("id"), with_fields(status="mystery"), with_fields(amount="10")],
    ids=["no amount", "no currency", "no id", "unknown status", "amount not an integer"],
)
def test_a_dispute_answer_we_cannot_read_is_a_502_never_a_500(
    gateway: StripeGateway, sim: GatewaySimulator, change: Any
) -> None:
    intent_id = paid(gateway)
    settle(sim, intent_id, "dispute", 2)
    with fault_proxy(sim.base_url) as proxy:
        proxy.add("GET", DISPUTES_PATH, Reshape(change))
        with pytest.raises(GatewayRejected) as caught, reading_answers("stripe", "read the dispute"):
            faulty_gateway(proxy).fetch_dispute(intent_id, sim_dispute(sim)["id"])

    assert caught.value.http_status == 502


# -- fetch_refund ---------------------------------------------------------------------------------------------


def test_fetch_refund_answers_the_refund_as_stripe_has_it_now(gateway: StripeGateway, sim: GatewaySimulator) -> None:
    intent_id = paid(gateway)
    made = gateway.refund(refund_of(intent_id, 400, key="pay_01FETCHED"))

    assert gateway.fetch_refund(intent_id, made.refund_id) == RefundAnswer(
        made.refund_id, RefundStatus.SUCCEEDED, Money(400, "USD")
    )
    sim.settle("stripe", intent_id, "refund_failed")
    assert gateway.fetch_refund(intent_id, made.refund_id) == RefundAnswer(
        made.refund_id, RefundStatus.FAILED, Money(400, "USD"), "expired_or_canceled_card"
    )


def test_fetch_refund_of_another_payments_refund_or_an_unknown_one_is_none(
    gateway: StripeGateway, sim: GatewaySimulator
) -> None:
    intent_id, other = paid(gateway), paid(gateway)
    theirs = gateway.refund(refund_of(other, 100, key="pay_01THEIRS"))

    assert gateway.fetch_refund(intent_id, theirs.refund_id) is None
    assert gateway.fetch_refund(intent_id, "re_3NoSuchRefund0000000000") is None
    assert gateway.fetch_refund(other, theirs.refund_id) == RefundAnswer(
        theirs.refund_id, RefundStatus.SUCCEEDED, Money(100, "USD")
    )


@pytest.mark.parametrize(
    "change",
    [without("status"), without("amount"), with_fields(status="reversed")],
    ids=["no status", "no amount", "unknown status"],
)
def test_a_refund_answer_we_cannot_read_is_a_502_never_a_500(
    gateway: StripeGateway, sim: GatewaySimulator, change: Any
) -> None:
    intent_id = paid(gateway)
    made = gateway.refund(refund_of(intent_id, 400))
    with fault_proxy(sim.base_url) as proxy:
        proxy.add("GET", REFUNDS_PATH, Reshape(change))
        with pytest.raises(GatewayRejected) as caught, reading_answers("stripe", "read the refund"):
            faulty_gateway(proxy).fetch_refund(intent_id, made.refund_id)

    assert caught.value.http_status == 502
    assert str(caught.value) == "stripe answered in a form we could not read while we tried to read the refund"
