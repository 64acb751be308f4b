"""Stripe refunds: the adapter's refund/find_refund against the gateway simulator (real HTTP on 127.0.0.1), and the
refund webhooks the simulator sends for them read back by the adapter. Faults come from a proxy in front of it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from local.defaults import gateway_credential
from local.gateway_sim import GatewaySimulator
from local.gateway_sim import stripe as stripe_sim
from payments.gateways.base import (
    Capability,
    CreateRequest,
    EventKind,
    GatewayInputRejected,
    GatewayRejected,
    GatewayUnavailable,
    RefundAnswer,
    RefundRequest,
    reading_answers,
)
from payments.gateways.stripe import StripeGateway, StripeSettings
from payments.models import RefundStatus
from payments.money import Money
from tests.unit.gateway_faults import Fail, FaultProxy, Late, Reshape, fault_proxy, with_fields, without

PAYMENT_ID = "pay_01JD0000000000000000000000"
CUSTOMER_ID = "cust-42"
SECRET_KEY = gateway_credential("STRIPE_SECRET_KEY")


@pytest.fixture
def sim() -> Iterator[GatewaySimulator]:
    simulator = GatewaySimulator("http://127.0.0.1:9")  # webhooks are read from its deliveries, not delivered
    simulator.start()
    yield simulator
    simulator.stop()
    assert simulator.unrouted() == []  # every call the adapter made is one the simulator serves


def settings_for(api_base: str) -> StripeSettings:
    return StripeSettings(
        api_base=api_base, secret_key=SECRET_KEY, webhook_secret=gateway_credential("STRIPE_WEBHOOK_SECRET")
    )


@pytest.fixture
def gateway(sim: GatewaySimulator) -> StripeGateway:
    return StripeGateway(settings_for(sim.provider_base("stripe")))


PAID = Money(1250, "USD")


def paid(gateway: StripeGateway, money: Money = PAID) -> str:
    """A PaymentIntent paid by card at the simulator: its id."""
    result = gateway.create(
        CreateRequest(
            payment_id=PAYMENT_ID,
            customer_id=CUSTOMER_ID,
            money=money,
            description="Mobile plan top-up",
            idempotency_key=uuid.uuid4().hex,
            payment_method="pm_card_visa",
        )
    )
    assert result.gateway_ref.startswith("pi_")
    return result.gateway_ref


def refund_of(
    intent_id: str, minor: int, key: str = "pay_01REFUND0", currency: str = "USD", **extra: Any
) -> RefundRequest:
    return RefundRequest(
        gateway_ref=intent_id,
        money=Money(minor, currency),
        key=key,
        payment_id=PAYMENT_ID,
        customer_id=CUSTOMER_ID,
        **extra,
    )


def sim_refunds(sim: GatewaySimulator) -> list[dict[str, Any]]:
    refunds: list[dict[str, Any]] = sim.objects()["stripe"]["refunds"]
    return refunds


def deliveries_of(sim: GatewaySimulator, event_type: str, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The simulator's deliveries of `event_type` once there are `count` of them (sent after the answers)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [d for d in sim.deliveries() if d["event_type"] == event_type]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def read_delivery(gateway: StripeGateway, delivery: dict[str, Any]) -> Any:
    headers = {name.lower(): value for name, value in delivery["headers"].items()}
    body = delivery["body"].encode()
    gateway.verify_webhook(headers, body)  # signed as Stripe signs
    return gateway.parse_event(headers, body)


def faulty_gateway(proxy: FaultProxy, read_timeout: float = 5.0) -> StripeGateway:
    """The adapter through `proxy`, without the SDK's own retries, waiting at most `read_timeout` for an answer."""
    client = stripe.StripeClient(
        SECRET_KEY,
        base_addresses={"api": f"{proxy.url}/stripe"},
        http_client=stripe.RequestsClient(timeout=(1.0, read_timeout)),
        max_network_retries=0,
    )
    return StripeGateway(settings_for(f"{proxy.url}/stripe"), client=client)


# -- refund ---------------------------------------------------------------------------------------------------


def test_stripe_declares_refunds() -> None:
    assert StripeGateway.capabilities == {Capability.RECONCILE, Capability.REFUND}


def test_full_refund_is_one_succeeded_refund_carrying_our_references(
    gateway: StripeGateway, sim: GatewaySimulator
) -> None:
    intent_id = paid(gateway)

    answer = gateway.refund(refund_of(intent_id, 1250, key="pay_01REFUNDFULL"))

    assert answer.status is RefundStatus.SUCCEEDED
    assert answer.money == Money(1250, "USD")
    assert answer.reason is None
    assert answer.refund_id.startswith("re_")
    [held] = sim_refunds(sim)
    assert held["id"] == answer.refund_id
    assert (held["amount"], held["currency"], held["payment_intent"], held["status"]) == (
        1250,
        "usd",
        intent_id,
        "succeeded",
    )
    assert held["metadata"] == {
        "refund_entry": "pay_01REFUNDFULL",
        "payment_id": PAYMENT_ID,
        "customer_id": CUSTOMER_ID,
    }
    assert held["reason"] is None


def test_several_partial_refunds_until_nothing_is_left(gateway: StripeGateway, sim: GatewaySimulator) -> None:
    intent_id = paid(gateway)

    answers = [gateway.refund(refund_of(intent_id, minor, key=f"pay_01PART{minor}")) for minor in (500, 300, 450)]

    assert [a.money for a in answers] == [Money(500, "USD"), Money(300, "USD"), Money(450, "USD")]
    assert [a.status for a in answers] == [RefundStatus.SUCCEEDED] * 3
    assert len({a.refund_id for a in answers}) == 3
    assert sorted(r["amount"] for r in sim_refunds(sim)) == [300, 450, 500]
    with pytest.raises(GatewayInputRejected) as nothing_left:
        gateway.refund(refund_of(intent_id, 1, key="pay_01PARTMORE"))
    assert nothing_left.value.field == "amount"
    assert nothing_left.value.http_status == 422
    assert str(nothing_left.value) == "Stripe refused the refund: charge_already_refunded"
    assert len(sim_refunds(sim)) == 3


def test_the_same_key_answers_the_same_refund_and_refunds_once(gateway: StripeGateway, sim: GatewaySimulator) -> None:
    intent_id = paid(gateway)
    request = refund_of(intent_id, 500, key="pay_01SAMEKEY")

    first = gateway.refund(request)
    again = gateway.refund(request)

    assert again == first
    assert [(r["id"], r["amount"]) for r in sim_refunds(sim)] == [(first.refund_id, 500)]
    assert len(deliveries_of(sim, "refund.created", 1)) == 1
    sim.drain()  # everything scheduled is sent: a replay sends no webhooks of its own
    assert len([d for d in sim.deliveries() if d["event_type"] == "refund.created"]) == 1
    assert gateway.refund(refund_of(intent_id, 750, key="pay_01OTHERKEY")).money == Money(750, "USD")


def test_an_amount_above_what_is_left_is_rejected_and_refunds_nothing(
    gateway: StripeGateway, sim: GatewaySimulator
) -> None:
    intent_id = paid(gateway)
    gateway.refund(refund_of(intent_id, 1000, key="pay_01FIRST"))

    with pytest.raises(GatewayInputRejected) as too_much:
        gateway.refund(refund_of(intent_id, 251, key="pay_01SECOND"))

    assert too_much.value.field == "amount"
    assert too_much.value.http_status == 422
    assert str(too_much.value) == "Stripe refused the refund: amount_too_large"
    assert [r["amount"] for r in sim_refunds(sim)] == [1000]
    assert gateway.refund(refund_of(intent_id, 250, key="pay_01THIRD")).money == Money(250, "USD")  # what is left


def test_a_reason_in_stripes_list_is_its_reason_and_other_text_goes_in_metadata(
    gateway: StripeGateway, sim: GatewaySimulator
) -> None:
    intent_id = paid(gateway)

    gateway.refund(refund_of(intent_id, 100, key="pay_01R1", reason="Requested by customer"))
    gateway.refund(refund_of(intent_id, 200, key="pay_01R2", reason="goodwill: the line was down for a day"))

    by_entry = {r["metadata"]["refund_entry"]: r for r in sim_refunds(sim)}
    assert by_entry["pay_01R1"]["reason"] == "requested_by_customer"
    assert "reason" not in by_entry["pay_01R1"]["metadata"]
    assert by_entry["pay_01R2"]["reason"] is None
    assert by_entry["pay_01R2"]["metadata"]["reason"] == "goodwill: the line was down for a day"


@pytest.mark.parametrize(
    ("paid_amount", "refunded", "currency", "stripe_amount"),
    [
        ("1000", "400", "JPY", 400),  # zero-decimal: whole yen
        ("500", "200", "ISK", 20000),  # ISO has no decimals, Stripe keeps two
        ("12.340", "1.230", "KWD", 1230),  # three-decimal
    ],
)
def test_amounts_go_in_stripes_unit_and_come_back_in_ours(
    gateway: StripeGateway, sim: GatewaySimulator, paid_amount: str, refunded: str, currency: str, stripe_amount: int
) -> None:
    intent_id = paid(gateway, Money.parse(paid_amount, currency))
    money = Money.parse(refunded, currency)

    answer = gateway.refund(refund_of(intent_id, money.minor, currency=currency))

    assert answer.money == money
    assert [(r["amount"], r["currency"]) for r in sim_refunds(sim)] == [(stripe_amount, currency.lower())]


def test_an_id_that_is_not_a_payment_intent_never_reaches_stripe(gateway: StripeGateway, sim: GatewaySimulator) -> None:
    for ref in ("", "ch_123", "../v1/charges"):
        with pytest.raises(GatewayRejected):
            gateway.refund(refund_of(ref, 100))
        with pytest.raises(GatewayRejected):
            gateway.find_refund(refund_of(ref, 100))
    assert sim_refunds(sim) == []


def test_a_failed_refund_gives_its_amount_back_to_refund_again(gateway: StripeGateway, sim: GatewaySimulator) -> None:
    intent_id = paid(gateway)
    made = gateway.refund(refund_of(intent_id, 1250, key="pay_01WILLFAIL"))

    sim.settle("stripe", intent_id, "refund_failed")  # the card was closed: the money could not be returned

    assert gateway.find_refund(refund_of(intent_id, 1250, key="pay_01WILLFAIL")) == RefundAnswer(
        made.refund_id, RefundStatus.FAILED, Money(1250, "USD"), "expired_or_canceled_card"
    )
    again = gateway.refund(refund_of(intent_id, 1250, key="pay_01RETRY"))
    assert again.status is RefundStatus.SUCCEEDED and again.refund_id != made.refund_id


def test_a_refund_settled_at_the_simulator_and_one_through_the_api_share_one_total(
    gateway: StripeGateway, sim: GatewaySimulator
) -> None:
    intent_id = paid(gateway)
    sim.settle("stripe", intent_id, "refund", amount="5.00")

    with pytest.raises(GatewayInputRejected):
        gateway.refund(refund_of(intent_id, 751, key="pay_01API1"))
    assert gateway.refund(refund_of(intent_id, 750, key="pay_01API2")).money == Money(750, "USD")
    assert sorted(r["amount"] for r in sim_refunds(sim)) == [500, 750]


# -- find_refund ----------------------------------------------------------------------------------------------


def test_find_refund_finds_each_refund_by_its_key_and_none_for_another(gateway: StripeGateway) -> None:
    intent_id = paid(gateway)
    first = gateway.refund(refund_of(intent_id, 300, key="pay_01FINDA"))
    second = gateway.refund(refund_of(intent_id, 200, key="pay_01FINDB"))
    other_intent = paid(gateway)
    gateway.refund(refund_of(other_intent, 100, key="pay_01FINDC"))

    assert gateway.find_refund(refund_of(intent_id, 300, key="pay_01FINDA")) == first
    assert gateway.find_refund(refund_of(intent_id, 200, key="pay_01FINDB")) == second
    assert gateway.find_refund(refund_of(intent_id, 100, key="pay_01FINDC")) is None  # another payment's refund
    assert gateway.find_refund(refund_of(intent_id, 300, key="pay_01NEVERMADE")) is None
    assert second == RefundAnswer(second.refund_id, RefundStatus.SUCCEEDED, Money(200, "USD"))


def test_find_refund_of_a_payment_never_refunded_is_none(gateway: StripeGateway) -> None:
    assert gateway.find_refund(refund_of(paid(gateway), 100)) is None


def test_find_refund_reads_past_the_first_page_of_refunds(gateway: StripeGateway, sim: GatewaySimulator) -> None:
    intent_id = paid(gateway)
    oldest = gateway.refund(refund_of(intent_id, 1, key="pay_01OLDEST"))
    for _ in range(100):  # newer ones (made in the dashboard): the oldest is on the second page of 100
        sim.settle("stripe", intent_id, "refund", amount="0.01")

    assert len(sim_refunds(sim)) == 101
    assert gateway.find_refund(refund_of(intent_id, 1, key="pay_01OLDEST")) == oldest
    assert gateway.find_refund(refund_of(intent_id, 1, key="pay_01NEVERMADE")) is None


# -- faults ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_from_stripe_is_unavailable_and_refunds_nothing(
    gateway: StripeGateway, sim: GatewaySimulator, status: int
) -> None:
    intent_id = paid(gateway)
    with fault_proxy(sim.base_url) as proxy:
        proxy.add("POST", "/stripe/v1/refunds", Fail(status, {"error": {"type": "api_error", "message": "down"}}))
        proxy.add("GET", "/stripe/v1/refunds", Fail(status, {"error": {"type": "api_error", "message": "down"}}))
        faulty = faulty_gateway(proxy)

        with pytest.raises(GatewayUnavailable) as made:
            faulty.refund(refund_of(intent_id, 500))
        with pytest.raises(GatewayUnavailable) as found:
            faulty.find_refund(refund_of(intent_id, 500))

    assert made.value.http_status == found.value.http_status == 503
    assert str(made.value) == f"Stripe could not refund the payment now ({status})"
    [posted] = [h for seen, h in zip(proxy.seen, proxy.headers_seen, strict=True) if seen.startswith("POST")]
    assert posted["idempotency-key"] == "pay_01REFUND0"  # our refund entry's id
    assert sim_refunds(sim) == []


def test_a_timeout_is_unavailable_and_find_refund_then_finds_what_stripe_made(
    gateway: StripeGateway, sim: GatewaySimulator
) -> None:
    intent_id = paid(gateway)
    request = refund_of(intent_id, 400, key="pay_01LATE")
    with fault_proxy(sim.base_url) as proxy:
        proxy.add("POST", "/stripe/v1/refunds", Late(1.5))  # Stripe refunds, the answer never comes in time
        with pytest.raises(GatewayUnavailable) as caught:
            faulty_gateway(proxy, read_timeout=0.3).refund(request)

    assert caught.value.http_status == 503
    [held] = sim_refunds(sim)
    assert gateway.find_refund(request) == RefundAnswer(held["id"], RefundStatus.SUCCEEDED, Money(400, "USD"))


def test_a_connection_refused_is_unavailable() -> None:
    client = stripe.StripeClient(
        SECRET_KEY,
        base_addresses={"api": "http://127.0.0.1:9"},
        http_client=stripe.RequestsClient(),
        max_network_retries=0,
    )
    gateway = StripeGateway(settings_for("http://127.0.0.1:9"), client=client)

    with pytest.raises(GatewayUnavailable, match="no answer"):
        gateway.refund(refund_of("pi_123", 100))


@pytest.mark.parametrize(
    "change",
    [without("status"), without("id"), without("amount"), without("currency"), with_fields(status="reversed")],
    ids=["no status", "no id", "no amount", "no currency", "unknown status"],
)
def test_a_refund_answer_missing_what_we_read_is_a_502_never_a_500(
    gateway: StripeGateway, sim: GatewaySimulator, change: Any
) -> None:
    intent_id = paid(gateway)
    with fault_proxy(sim.base_url) as proxy:
        proxy.add("POST", "/stripe/v1/refunds", Reshape(change))
        with pytest.raises(GatewayRejected) as caught, reading_answers("stripe", "refund the payment"):
            faulty_gateway(proxy).refund(refund_of(intent_id, 500))

    assert caught.value.http_status == 502
    assert str(caught.value) == "stripe answered in a form we could not read while we tried to refund the payment"
    assert len(sim_refunds(sim)) == 1  # Stripe did refund: the caller asks find_refund before anything else


def test_a_listed_refund_missing_its_status_is_a_502(gateway: StripeGateway, sim: GatewaySimulator) -> None:
    intent_id = paid(gateway)
    gateway.refund(refund_of(intent_id, 500, key="pay_01LISTED"))

    def strip_status(listing: Any) -> Any:
        return {**listing, "data": [without("status")(item) for item in listing["data"]]}

    with fault_proxy(sim.base_url) as proxy:
        proxy.add("GET", "/stripe/v1/refunds", Reshape(strip_status))
        with pytest.raises(GatewayRejected) as caught, reading_answers("stripe", "find the refund"):
            faulty_gateway(proxy).find_refund(refund_of(intent_id, 500, key="pay_01LISTED"))

    assert caught.value.http_status == 502


# -- webhooks -------------------------------------------------------------------------------------------------


def test_a_refund_sends_charge_refunded_and_refund_created_which_read_as_that_refund(
    gateway: StripeGateway, sim: GatewaySimulator
) -> None:
    intent_id = paid(gateway)
    first = gateway.refund(refund_of(intent_id, 500, key="pay_01HOOK1"))
    second = gateway.refund(refund_of(intent_id, 300, key="pay_01HOOK2"))

    charges = [read_delivery(gateway, d) for d in deliveries_of(sim, "charge.refunded", 2)]
    created = [read_delivery(gateway, d) for d in deliveries_of(sim, "refund.created", 2)]

    by_refund = {event.refund_id: event for event in created}
    assert set(by_refund) == {first.refund_id, second.refund_id}
    for answer in (first, second):
        event = by_refund[answer.refund_id]
        assert event.kind is EventKind.REFUND
        assert event.event_type == "refund.created"
        assert event.money == answer.money
        assert event.gateway_ref == intent_id
        assert (event.payment_id, event.customer_id) == (PAYMENT_ID, CUSTOMER_ID)  # the refund's metadata
        assert event.refund_status is RefundStatus.SUCCEEDED
        assert event.reason is None
    # charge.refunded reports each refund alone (the growth of the charge's total), naming the same refund
    assert sorted((e.refund_id, e.money.minor if e.money else 0) for e in charges) == sorted(
        [(first.refund_id, 500), (second.refund_id, 300)]
    )
    assert {(e.kind, e.gateway_ref, e.refund_status) for e in charges} == {
        (EventKind.REFUND, intent_id, RefundStatus.SUCCEEDED)
    }


def test_refund_failed_outcome_sends_refund_failed_read_as_refund_failed(
    gateway: StripeGateway, sim: GatewaySimulator
) -> None:
    intent_id = paid(gateway)
    made = gateway.refund(refund_of(intent_id, 700, key="pay_01HOOKFAIL"))

    sim.settle("stripe", intent_id, "refund_failed")

    event = read_delivery(gateway, deliveries_of(sim, "refund.failed", 1)[0])
    assert event.kind is EventKind.REFUND_FAILED
    assert (event.refund_id, event.money, event.gateway_ref) == (made.refund_id, Money(700, "USD"), intent_id)
    assert event.refund_status is RefundStatus.FAILED
    assert event.reason == "expired_or_canceled_card"
    assert (event.payment_id, event.customer_id) == (PAYMENT_ID, CUSTOMER_ID)


def a_refund(status: str, **fields: Any) -> dict[str, Any]:
    intent = stripe_sim.payment_intent(
        2000, "eur", metadata={"payment_id": PAYMENT_ID, "customer_id": CUSTOMER_ID}, intent_id="pi_3HOOK"
    )
    stripe_sim.succeed(intent, 2000)
    refund = stripe_sim.refund_object(
        intent, 800, metadata={"refund_entry": "pay_01E", "payment_id": PAYMENT_ID, "customer_id": CUSTOMER_ID}
    )
    refund.update(status=status, **fields)
    return refund


def parsed(gateway: StripeGateway, event_type: str, obj: dict[str, Any], **extra: Any) -> Any:
    body, headers = stripe_sim.signed(stripe_sim.event(event_type, obj, **extra))
    lowered = {name.lower(): value for name, value in headers.items()}
    gateway.verify_webhook(lowered, body)
    return gateway.parse_event(lowered, body)


@pytest.mark.parametrize(
    ("event_type", "status", "fields", "kind", "refund_status", "reason"),
    [
        ("refund.created", "succeeded", {}, EventKind.REFUND, RefundStatus.SUCCEEDED, None),
        ("refund.created", "pending", {}, EventKind.REFUND, RefundStatus.PENDING, None),
        ("refund.updated", "requires_action", {}, EventKind.REFUND, RefundStatus.PENDING, None),
        ("refund.updated", "succeeded", {}, EventKind.REFUND, RefundStatus.SUCCEEDED, None),
        (
            "refund.updated",
            "failed",
            {"failure_reason": "lost_or_stolen_card"},
            EventKind.REFUND_FAILED,
            RefundStatus.FAILED,
            "lost_or_stolen_card",
        ),
        ("refund.updated", "canceled", {}, EventKind.REFUND_FAILED, RefundStatus.FAILED, "canceled"),
        (
            "refund.failed",
            "failed",
            {"failure_reason": "unknown"},
            EventKind.REFUND_FAILED,
            RefundStatus.FAILED,
            "unknown",
        ),
        ("refund.updated", "some_new_state", {}, EventKind.REFUND, None, None),
    ],
)
def test_refund_events_read_as_the_refund_and_its_status(
    gateway: StripeGateway,
    event_type: str,
    status: str,
    fields: dict[str, Any],
    kind: EventKind,
    refund_status: RefundStatus | None,
    reason: str | None,
) -> None:
    refund = a_refund(status, **fields)

    event = parsed(gateway, event_type, refund)

    assert (event.event_type, event.kind, event.refund_status, event.reason) == (
        event_type,
        kind,
        refund_status,
        reason,
    )
    assert (event.refund_id, event.money, event.gateway_ref) == (refund["id"], Money(800, "EUR"), "pi_3HOOK")
    assert (event.payment_id, event.customer_id) == (PAYMENT_ID, CUSTOMER_ID)


def test_a_refund_event_of_another_shape_is_a_value_error(gateway: StripeGateway) -> None:
    refund = a_refund("succeeded")
    del refund["amount"]

    with pytest.raises(ValueError, match=r"stripe refund\.created event is not readable: data\.object\.amount"):
        parsed(gateway, "refund.created", refund)


def test_charge_refunded_carries_its_newest_refunds_status_where_it_lists_it(gateway: StripeGateway) -> None:
    intent = stripe_sim.payment_intent(2000, "eur", metadata={}, intent_id="pi_3CHARGE")
    stripe_sim.succeed(intent, 2000)
    pending = stripe_sim.refund_object(intent, 600)
    pending["status"] = "pending"
    listed = stripe_sim.refunded_charge(intent, 600, 1100, made=pending)
    unlisted = {key: value for key, value in listed.items() if key != "refunds"}  # newer API versions

    with_list = parsed(gateway, "charge.refunded", listed, previous_attributes={"amount_refunded": 500})
    without_list = parsed(
        gateway, "charge.refunded", unlisted, previous_attributes={"amount_refunded": 500}, event_id="evt_3UNLISTED"
    )

    assert (with_list.kind, with_list.refund_id, with_list.money) == (
        EventKind.REFUND,
        pending["id"],
        Money(600, "EUR"),
    )
    assert with_list.refund_status is RefundStatus.PENDING
    assert (without_list.kind, without_list.money, without_list.refund_status) == (
        EventKind.REFUND,
        Money(600, "EUR"),
        None,
    )
    assert without_list.refund_id == "evt_3UNLISTED"  # no refund named: the event's id stands for it
