"""PayPal disputes and reversals: CUSTOMER.DISPUTE.* and PAYMENT.CAPTURE.REVERSED (PayPal's dispute and refund-shaped
reversal resources, verified through the simulator's verify-webhook-signature) read by the adapter, which finds the
order through the disputed capture; fetch_dispute/fetch_refund against the gateway simulator (real HTTP on 127.0.0.1,
faults from a proxy in front of it); and the simulator's dispute outcomes and the webhooks they send."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from local.gateway_sim import GatewaySimulator, SettleError
from payments.gateways.base import (
    CreateRequest,
    DisputeAnswer,
    EventKind,
    GatewayEvent,
    GatewayInputRejected,
    GatewayRejected,
    GatewayUnavailable,
    RefundAnswer,
    reading_answers,
)
from payments.gateways.paypal import EVENT_KINDS, RESOLVED_OUTCOMES, PayPalGateway
from payments.models import DisputeStatus, RefundStatus
from payments.money import Money
from tests.unit.gateway_faults import Fail, Reshape, fault_proxy, with_fields, without
from tests.unit.test_gateway_paypal_refunds import (
    CUSTOMER_ID,
    PAYMENT_ID,
    faulty_gateway,
    paid,
    read_webhook,
    refund_of,
    settings_for,
    sim_order,
)

PAID = Money(4000, "USD")
DISPUTE_PATH = "/paypal/v1/customer/disputes/[^/]+"
REFUND_PATH = "/paypal/v2/payments/refunds/[^/]+"
CAPTURE_PATH = "/paypal/v2/payments/captures/[A-Z0-9]+"
REASON = "MERCHANDISE_OR_SERVICE_NOT_RECEIVED"


@pytest.fixture
def sim() -> Iterator[GatewaySimulator]:
    simulator = GatewaySimulator("http://127.0.0.1:9")  # webhooks are read from its deliveries, not delivered
    simulator.start()
    yield simulator
    simulator.stop()
    assert simulator.unrouted() == []  # every call the adapter made is one the simulator serves


@pytest.fixture
def gateway(sim: GatewaySimulator) -> PayPalGateway:
    return PayPalGateway(settings_for(sim.provider_base("paypal")))


def captured(gateway: PayPalGateway, sim: GatewaySimulator, payment_id: str = PAYMENT_ID) -> tuple[str, str]:
    """A PayPal order paid and captured at the simulator, once its PAYMENT.CAPTURE.COMPLETED was sent: the order's id
    and its capture's."""
    order_id = paid(gateway, sim, PAID, payment_id)
    capture_id = capture_of(sim, order_id)
    deadline = time.monotonic() + 5
    while not any(json.loads(d["body"])["resource"].get("id") == capture_id for d in sim.deliveries()):
        assert time.monotonic() < deadline, "the capture's webhook was not sent"
        time.sleep(0.05)
    return order_id, capture_id


def capture_of(sim: GatewaySimulator, order_id: str) -> str:
    return str(sim_order(sim, order_id)["purchase_units"][0]["payments"]["captures"][0]["id"])


def settle(
    sim: GatewaySimulator, ref: str, outcome: str, count: int, amount: str | None = None
) -> list[dict[str, Any]]:
    """Play `outcome` and answer the `count` webhooks it sends, in the order sent (the first is settle()'s own)."""
    seen = len(sim.deliveries())
    result = sim.settle("paypal", ref, outcome, amount)
    deadline = time.monotonic() + 5
    while len(sim.deliveries()) < seen + count and time.monotonic() < deadline:
        time.sleep(0.05)
    sent = sim.deliveries()[seen:]
    assert len(sent) == count, [d["event_type"] for d in sent]
    assert json.loads(sent[0]["body"]) == result["event"]
    sim.drain()  # every webhook it scheduled has been sent
    assert len(sim.deliveries()) == seen + count  # and no more follow
    return sent


def read(gateway: PayPalGateway, delivery: dict[str, Any]) -> GatewayEvent:
    return read_webhook(gateway, delivery["body"].encode(), delivery["headers"])


def sim_dispute(sim: GatewaySimulator) -> dict[str, Any]:
    [dispute] = sim.objects()["paypal"]["disputes"]
    return dict(dispute)


def dispute_resource(capture_id: str | None, **fields: Any) -> dict[str, Any]:
    """A dispute as PayPal's CUSTOMER.DISPUTE.* webhooks carry it (developer.paypal.com's CREATED sample's shape)."""
    transactions = [
        {
            "seller_transaction_id": capture_id,
            "seller": {"merchant_id": "RD465XN5VS364", "name": "Test Store"},
            "items": [],
            "seller_protection_eligible": True,
        }
    ]
    return {
        "disputed_transactions": transactions if capture_id else [],
        "reason": REASON,
        "dispute_channel": "INTERNAL",
        "update_time": "2018-06-21T13:35:44.000Z",
        "create_time": "2018-06-21T13:35:44.000Z",
        "messages": [{"posted_by": "BUYER", "time_posted": "2018-06-21T13:35:52.000Z", "content": "qwqwqwq"}],
        "links": [{"href": "https://api.sandbox.paypal.com/v1/customer/disputes/PP-000-042-663-135", "rel": "self"}],
        "dispute_amount": {"currency_code": "USD", "value": "40.00"},
        "dispute_id": "PP-000-042-663-135",
        "dispute_life_cycle_stage": "INQUIRY",
        "status": "OPEN",
    } | fields


# -- the events -----------------------------------------------------------------------------------------------


def test_the_dispute_and_reversal_events_paypal_documents_are_mapped() -> None:
    assert {
        t: k for t, k in EVENT_KINDS.items() if t.startswith(("CUSTOMER.DISPUTE.", "PAYMENT.CAPTURE.REVERSED"))
    } == {
        "PAYMENT.CAPTURE.REVERSED": EventKind.CHARGEBACK,
        "CUSTOMER.DISPUTE.CREATED": EventKind.DISPUTE,
        "CUSTOMER.DISPUTE.UPDATED": EventKind.DISPUTE,
        "CUSTOMER.DISPUTE.RESOLVED": EventKind.DISPUTE,  # or money, as its outcome says
    }
    assert RESOLVED_OUTCOMES == {
        "RESOLVED_BUYER_FAVOUR": DisputeStatus.LOST,
        "RESOLVED_SELLER_FAVOUR": DisputeStatus.WON,
        "ACCEPTED": DisputeStatus.LOST,
        "RESOLVED_WITH_PAYOUT": DisputeStatus.WON,
        "CANCELED_BY_BUYER": DisputeStatus.WON,
        "DENIED": DisputeStatus.WON,
    }


@pytest.mark.parametrize("event_type", ["CUSTOMER.DISPUTE.CREATED", "CUSTOMER.DISPUTE.UPDATED"])
def test_a_dispute_opened_or_changed_is_an_open_dispute_of_the_captures_order(
    gateway: PayPalGateway, sim: GatewaySimulator, event_type: str
) -> None:
    order_id, capture_id = captured(gateway, sim)

    event = read_webhook(gateway, *sim.signed_paypal_event(event_type, "dispute", dispute_resource(capture_id)))

    assert event == GatewayEvent(
        provider="paypal",
        event_id=event.event_id,
        event_type=event_type,
        kind=EventKind.DISPUTE,
        payment_id=PAYMENT_ID,  # the capture's, which PayPal was asked about
        customer_id=CUSTOMER_ID,
        gateway_ref=order_id,
        money=PAID,
        reason=REASON,
        dispute_id="PP-000-042-663-135",
        dispute_status=DisputeStatus.OPEN,
    )
    assert event.event_id.startswith("WH-")


@pytest.mark.parametrize(
    ("outcome", "kind", "status", "moves"),
    [
        ("RESOLVED_BUYER_FAVOUR", EventKind.CHARGEBACK, DisputeStatus.LOST, True),
        ("RESOLVED_SELLER_FAVOUR", EventKind.CHARGEBACK_REVERSAL, DisputeStatus.WON, True),
        ("CANCELED_BY_BUYER", EventKind.DISPUTE, DisputeStatus.WON, False),
        ("DENIED", EventKind.DISPUTE, DisputeStatus.WON, False),
        ("RESOLVED_WITH_PAYOUT", EventKind.DISPUTE, DisputeStatus.WON, False),
        ("ACCEPTED", EventKind.DISPUTE, DisputeStatus.LOST, False),
        ("NONE", EventKind.DISPUTE, DisputeStatus.WON, False),
    ],
)
def test_a_resolved_dispute_moves_money_as_its_outcome_says_under_the_captures_id(
    gateway: PayPalGateway,
    sim: GatewaySimulator,
    outcome: str,
    kind: EventKind,
    status: DisputeStatus,
    moves: bool,
) -> None:
    order_id, capture_id = captured(gateway, sim)
    resource = dispute_resource(
        capture_id,
        status="RESOLVED",
        dispute_amount={"currency_code": "USD", "value": "25.00"},
        dispute_outcome={"outcome_code": outcome, "amount_refunded": {"currency_code": "USD", "value": "25.00"}},
    )

    event = read_webhook(gateway, *sim.signed_paypal_event("CUSTOMER.DISPUTE.RESOLVED", "dispute", resource))

    assert (event.kind, event.dispute_status, event.money) == (kind, status, Money(2500, "USD"))
    assert (event.gateway_ref, event.dispute_id, event.reason) == (order_id, "PP-000-042-663-135", REASON)
    assert event.funds_id == (capture_id if moves else None)


def test_a_dispute_of_a_capture_paypal_does_not_have_is_about_no_payment_of_ours(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    body, headers = sim.signed_paypal_event(
        "CUSTOMER.DISPUTE.CREATED", "dispute", dispute_resource("9XX00000000000000")
    )

    event = read_webhook(gateway, body, headers)

    assert (event.kind, event.gateway_ref, event.payment_id, event.customer_id) == (
        EventKind.DISPUTE,
        "9XX00000000000000",  # no order of ours is found by it
        None,
        None,
    )


def test_a_dispute_naming_no_transaction_asks_paypal_nothing_more(sim: GatewaySimulator) -> None:
    body, headers = sim.signed_paypal_event("CUSTOMER.DISPUTE.CREATED", "dispute", dispute_resource(None))

    with fault_proxy(sim.base_url) as proxy:
        event = read_webhook(faulty_gateway(proxy), body, headers)

    assert (event.kind, event.gateway_ref, event.dispute_id, event.money) == (
        EventKind.DISPUTE,
        None,
        "PP-000-042-663-135",
        PAID,
    )
    assert proxy.seen == ["POST /paypal/v1/oauth2/token", "POST /paypal/v1/notifications/verify-webhook-signature"]


def test_a_reversal_is_a_chargeback_under_the_captures_id(gateway: PayPalGateway, sim: GatewaySimulator) -> None:
    order_id, capture_id = captured(gateway, sim)
    capture_url = sim_order(sim, order_id)["purchase_units"][0]["payments"]["captures"][0]["links"][0]["href"]
    reversal = {  # PayPal's PAYMENT.CAPTURE.REVERSED sample: a refund-shaped resource under its own id
        "seller_payable_breakdown": {"gross_amount": {"currency_code": "USD", "value": "2.51"}},
        "amount": {"currency_code": "USD", "value": "2.51"},
        "update_time": "2018-08-15T14:30:10-07:00",
        "create_time": "2018-08-15T14:30:10-07:00",
        "links": [
            {"href": "https://api.paypal.com/v2/payments/refunds/09E71677NS257044M", "rel": "self", "method": "GET"},
            {"href": capture_url, "rel": "up", "method": "GET"},
        ],
        "id": "09E71677NS257044M",
        "note_to_payer": "Payment reversed",
        "status": "COMPLETED",
    }

    event = read_webhook(gateway, *sim.signed_paypal_event("PAYMENT.CAPTURE.REVERSED", "refund", reversal))

    assert event == GatewayEvent(
        provider="paypal",
        event_id=event.event_id,
        event_type="PAYMENT.CAPTURE.REVERSED",
        kind=EventKind.CHARGEBACK,
        payment_id=PAYMENT_ID,
        customer_id=CUSTOMER_ID,
        gateway_ref=order_id,
        money=Money(251, "USD"),
        reason="Payment reversed",
        dispute_id="09E71677NS257044M",
        dispute_status=DisputeStatus.LOST,
        funds_id=capture_id,
    )


def test_a_reversal_reported_as_the_capture_itself_names_its_order(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    capture = {
        "id": "2GG279541U471931P",
        "status": "REVERSED",
        "amount": {"currency_code": "USD", "value": "40.00"},
        "custom_id": f"{CUSTOMER_ID}:{PAYMENT_ID}",
        "status_details": {"reason": "CHARGEBACK"},
        "supplementary_data": {"related_ids": {"order_id": "5O190127TN364715T"}},
        "links": [{"href": "https://api.paypal.com/v2/checkout/orders/5O190127TN364715T", "rel": "up"}],
    }

    event = read_webhook(gateway, *sim.signed_paypal_event("PAYMENT.CAPTURE.REVERSED", "capture", capture))

    assert (event.kind, event.gateway_ref, event.money, event.reason) == (
        EventKind.CHARGEBACK,
        "5O190127TN364715T",
        PAID,
        "CHARGEBACK",
    )
    assert (event.dispute_id, event.funds_id, event.payment_id) == (
        "2GG279541U471931P",
        "2GG279541U471931P",
        PAYMENT_ID,
    )


@pytest.mark.parametrize(
    ("event_type", "resource", "message"),
    [
        (
            "CUSTOMER.DISPUTE.CREATED",
            {k: v for k, v in dispute_resource(None).items() if k != "dispute_id"},
            "paypal CUSTOMER.DISPUTE.CREATED event is not readable: resource.dispute_id: Field required",
        ),
        (
            "CUSTOMER.DISPUTE.RESOLVED",
            dispute_resource(None, dispute_amount={"currency_code": "USD", "value": "4.001"}),
            "amount has 3 decimal places but USD allows 2",
        ),
        (
            "PAYMENT.CAPTURE.REVERSED",
            {"amount": {"currency_code": "USD", "value": "1.00"}},
            "paypal reversal without its id",
        ),
        ("PAYMENT.CAPTURE.REVERSED", {"id": "09E71677NS257044M"}, "paypal capture or refund without an amount"),
    ],
    ids=["dispute without its id", "amount with too many decimals", "reversal without its id", "no amount"],
)
def test_an_event_not_of_paypals_shape_is_a_value_error(
    gateway: PayPalGateway, sim: GatewaySimulator, event_type: str, resource: dict[str, Any], message: str
) -> None:
    body, headers = sim.signed_paypal_event(event_type, "dispute", resource)

    with pytest.raises(ValueError) as caught:
        read_webhook(gateway, body, headers)

    assert str(caught.value) == message


# -- the simulator's outcomes ---------------------------------------------------------------------------------


def test_dispute_sends_customer_dispute_created_for_the_whole_capture(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    order_id, capture_id = captured(gateway, sim)

    [created] = settle(sim, order_id, "dispute", 1)

    held = sim_dispute(sim)
    assert (held["status"], held["dispute_amount"], held["disputed_transactions"][0]["seller_transaction_id"]) == (
        "WAITING_FOR_SELLER_RESPONSE",
        {"currency_code": "USD", "value": "40.00"},
        capture_id,
    )
    event = read(gateway, created)
    assert (created["event_type"], json.loads(created["body"])["resource_type"]) == (
        "CUSTOMER.DISPUTE.CREATED",
        "dispute",
    )
    assert (event.kind, event.dispute_status, event.money, event.gateway_ref) == (
        EventKind.DISPUTE,
        DisputeStatus.OPEN,
        PAID,
        order_id,
    )
    assert (event.dispute_id, event.reason, event.funds_id) == (held["dispute_id"], REASON, None)
    assert held["dispute_id"].startswith("PP-D-")


def test_dispute_of_part_of_the_capture_disputes_that_amount(gateway: PayPalGateway, sim: GatewaySimulator) -> None:
    order_id, _ = captured(gateway, sim)

    [created] = settle(sim, order_id, "dispute", 1, amount="12.34")

    assert read(gateway, created).money == Money(1234, "USD")


def test_dispute_won_sends_resolved_in_the_sellers_favour(gateway: PayPalGateway, sim: GatewaySimulator) -> None:
    order_id, capture_id = captured(gateway, sim)
    settle(sim, order_id, "dispute", 1)

    [resolved] = settle(sim, order_id, "dispute_won", 1)

    event = read(gateway, resolved)
    assert resolved["event_type"] == "CUSTOMER.DISPUTE.RESOLVED"
    assert (event.kind, event.dispute_status, event.money, event.funds_id) == (
        EventKind.CHARGEBACK_REVERSAL,
        DisputeStatus.WON,
        PAID,
        capture_id,
    )
    assert sim_dispute(sim)["dispute_outcome"] == {"outcome_code": "RESOLVED_SELLER_FAVOUR"}
    assert sim_order(sim, order_id)["purchase_units"][0]["payments"]["captures"][0]["status"] == "COMPLETED"


def test_dispute_lost_sends_resolved_for_the_buyer_then_the_captures_reversal(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    order_id, capture_id = captured(gateway, sim)
    settle(sim, order_id, "dispute", 1, amount="30.00")

    resolved, reversed_ = settle(sim, order_id, "dispute_lost", 2)

    lost, taken = read(gateway, resolved), read(gateway, reversed_)
    assert (resolved["event_type"], reversed_["event_type"]) == (
        "CUSTOMER.DISPUTE.RESOLVED",
        "PAYMENT.CAPTURE.REVERSED",
    )
    assert (lost.kind, lost.dispute_status, lost.money) == (
        EventKind.CHARGEBACK,
        DisputeStatus.LOST,
        Money(3000, "USD"),
    )
    assert (taken.kind, taken.dispute_status, taken.money) == (
        EventKind.CHARGEBACK,
        DisputeStatus.LOST,
        Money(3000, "USD"),
    )
    assert lost.funds_id == taken.funds_id == capture_id  # the money moves once for both
    assert lost.dispute_id == sim_dispute(sim)["dispute_id"]
    assert taken.dispute_id == json.loads(reversed_["body"])["resource"]["id"] != lost.dispute_id
    assert lost.gateway_ref == taken.gateway_ref == order_id
    assert sim_order(sim, order_id)["purchase_units"][0]["payments"]["captures"][0]["status"] == "PARTIALLY_REFUNDED"


def test_after_a_lost_dispute_only_what_the_reversal_left_can_be_refunded(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    order_id, _ = captured(gateway, sim)
    settle(sim, order_id, "dispute", 1, amount="30.00")
    settle(sim, order_id, "dispute_lost", 2)

    with pytest.raises(GatewayInputRejected) as too_much:
        gateway.refund(refund_of(order_id, 1001, key="pay_01TOOMUCH"))
    left = gateway.refund(refund_of(order_id, 1000, key="pay_01LEFT"))

    assert str(too_much.value) == "PayPal refused the refund: REFUND_AMOUNT_EXCEEDED"
    assert (left.money, left.status) == (Money(1000, "USD"), RefundStatus.SUCCEEDED)


def test_the_simulator_refuses_dispute_outcomes_that_cannot_happen(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    unpaid = gateway.create(
        CreateRequest(
            payment_id="pay_01UNPAID",
            customer_id=CUSTOMER_ID,
            money=PAID,
            description="Mobile plan top-up",
            idempotency_key="key-unpaid",
        )
    ).gateway_ref
    order_id, _ = captured(gateway, sim)
    refusals = []
    for ref, outcome, amount in [
        (unpaid, "dispute", None),
        (order_id, "dispute_lost", None),
        (order_id, "dispute", "40.01"),
    ]:
        with pytest.raises(SettleError) as refused:
            sim.settle("paypal", ref, outcome, amount)
        refusals.append((refused.value.status, refused.value.message))
    settle(sim, order_id, "dispute", 1)
    with pytest.raises(SettleError) as twice:
        sim.settle("paypal", order_id, "dispute")
    settle(sim, order_id, "dispute_won", 1)
    with pytest.raises(SettleError) as decided:
        sim.settle("paypal", order_id, "dispute_lost")

    assert refusals == [
        (409, f"PayPal order {unpaid} has no completed capture to dispute"),
        (409, f"PayPal order {order_id} has no open dispute to decide"),
        (409, f"PayPal order {order_id} was captured for 40.00 USD only"),
    ]
    assert (twice.value.status, twice.value.message) == (
        409,
        f"PayPal order {order_id} is already disputed ({sim_dispute(sim)['dispute_id']})",
    )
    assert (decided.value.status, decided.value.message) == (
        409,
        f"PayPal order {order_id} has no open dispute to decide",
    )


# -- fetch_dispute --------------------------------------------------------------------------------------------


def test_fetch_dispute_answers_the_dispute_as_paypal_has_it_now(gateway: PayPalGateway, sim: GatewaySimulator) -> None:
    order_id, capture_id = captured(gateway, sim)
    settle(sim, order_id, "dispute", 1, amount="25.00")
    dispute_id = sim_dispute(sim)["dispute_id"]
    opened = gateway.fetch_dispute(order_id, dispute_id)
    settle(sim, order_id, "dispute_lost", 2)
    lost = gateway.fetch_dispute(order_id, dispute_id)

    disputed = Money(2500, "USD")
    assert opened == DisputeAnswer(dispute_id, DisputeStatus.OPEN, disputed, REASON, False, False, capture_id)
    assert lost == DisputeAnswer(dispute_id, DisputeStatus.LOST, disputed, REASON, True, False, capture_id)


def test_fetch_dispute_of_a_dispute_won_withdrew_nothing(gateway: PayPalGateway, sim: GatewaySimulator) -> None:
    order_id, capture_id = captured(gateway, sim)
    settle(sim, order_id, "dispute", 1)
    settle(sim, order_id, "dispute_won", 1)
    dispute_id = sim_dispute(sim)["dispute_id"]

    assert gateway.fetch_dispute(order_id, dispute_id) == DisputeAnswer(
        dispute_id, DisputeStatus.WON, PAID, REASON, withdrawn=False, reinstated=False, funds_id=capture_id
    )


def test_fetch_dispute_of_another_orders_dispute_or_an_unknown_one_is_none(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    order_id, _ = captured(gateway, sim)
    other, _ = captured(gateway, sim, payment_id="pay_01OTHER")
    settle(sim, other, "dispute", 1)

    assert gateway.fetch_dispute(order_id, sim_dispute(sim)["dispute_id"]) is None
    assert gateway.fetch_dispute(order_id, "PP-D-000000") is None
    assert gateway.fetch_dispute(other, sim_dispute(sim)["dispute_id"]) is not None


def test_fetch_dispute_naming_a_capture_paypal_does_not_have_is_none(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    order_id, _ = captured(gateway, sim)
    settle(sim, order_id, "dispute", 1)

    def elsewhere(dispute: Any) -> Any:
        return {**dispute, "disputed_transactions": [{"seller_transaction_id": "9XX00000000000000"}]}

    with fault_proxy(sim.base_url) as proxy:
        proxy.add("GET", DISPUTE_PATH, Reshape(elsewhere))
        assert faulty_gateway(proxy).fetch_dispute(order_id, sim_dispute(sim)["dispute_id"]) is None
    assert "GET /paypal/v2/payments/captures/9XX00000000000000" in proxy.seen


def test_fetch_dispute_with_an_id_that_is_not_paypals_never_reaches_paypal(gateway: PayPalGateway) -> None:
    with pytest.raises(GatewayRejected, match="not a PayPal order or capture id"):
        gateway.fetch_dispute("5O190127TN364715T", "../refunds")


@pytest.mark.parametrize("status", [500, 503])
def test_fetch_dispute_and_fetch_refund_when_paypal_fails_are_unavailable(
    gateway: PayPalGateway, sim: GatewaySimulator, status: int
) -> None:
    order_id, _ = captured(gateway, sim)
    with fault_proxy(sim.base_url) as proxy:
        proxy.add("GET", DISPUTE_PATH, Fail(status, {"name": "INTERNAL_SERVER_ERROR"}))
        proxy.add("GET", REFUND_PATH, Fail(status, {"name": "INTERNAL_SERVER_ERROR"}))
        with pytest.raises(GatewayUnavailable) as dispute:
            faulty_gateway(proxy).fetch_dispute(order_id, "PP-D-123456")
        with pytest.raises(GatewayUnavailable) as refund:
            faulty_gateway(proxy).fetch_refund(order_id, "1Y107995YT783435V")

    assert dispute.value.http_status == refund.value.http_status == 503
    assert str(dispute.value) == f"paypal answered {status} (GET /paypal/v1/customer/disputes/PP-D-123456)"
    assert str(refund.value) == f"paypal answered {status} (GET /paypal/v2/payments/refunds/1Y107995YT783435V)"


@pytest.mark.parametrize(
    "change",
    [
        without("dispute_amount"),
        without("dispute_id"),
        with_fields(dispute_amount={"currency_code": "USD", "value": "4.001"}),
        with_fields(dispute_amount="40.00"),
    ],
    ids=["no amount", "no id", "amount with too many decimals", "amount not an object"],
)
def test_a_dispute_answer_we_cannot_read_is_a_502_never_a_500(
    gateway: PayPalGateway, sim: GatewaySimulator, change: Any
) -> None:
    order_id, _ = captured(gateway, sim)
    settle(sim, order_id, "dispute", 1)
    with fault_proxy(sim.base_url) as proxy:
        proxy.add("GET", DISPUTE_PATH, Reshape(change))
        with pytest.raises(GatewayRejected) as caught, reading_answers("paypal", "read the dispute"):
            faulty_gateway(proxy).fetch_dispute(order_id, sim_dispute(sim)["dispute_id"])

    assert caught.value.http_status == 502


# -- fetch_refund ---------------------------------------------------------------------------------------------


def test_fetch_refund_answers_a_refund_or_a_reversal_of_the_orders_capture(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    order_id, _ = captured(gateway, sim)
    made = gateway.refund(refund_of(order_id, 500, key="pay_01FETCHED"))
    sim.wait_for_delivery("PAYMENT.CAPTURE.REFUNDED")  # sent after the refund's answer
    settle(sim, order_id, "dispute", 1, amount="10.00")
    _, reversed_ = settle(sim, order_id, "dispute_lost", 2)
    reversal_id = json.loads(reversed_["body"])["resource"]["id"]

    assert gateway.fetch_refund(order_id, made.refund_id) == made
    assert made == RefundAnswer(made.refund_id, RefundStatus.SUCCEEDED, Money(500, "USD"))
    assert gateway.fetch_refund(order_id, reversal_id) == RefundAnswer(
        reversal_id, RefundStatus.SUCCEEDED, Money(1000, "USD")
    )


def test_fetch_refund_of_another_orders_refund_or_an_unknown_one_is_none(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    order_id, _ = captured(gateway, sim)
    other, _ = captured(gateway, sim, payment_id="pay_01OTHER")
    theirs = gateway.refund(refund_of(other, 100, key="pay_01THEIRS"))

    assert gateway.fetch_refund(order_id, theirs.refund_id) is None
    assert gateway.fetch_refund(order_id, "1Y107995YT783435V") is None
    assert gateway.fetch_refund(other, theirs.refund_id) == theirs


@pytest.mark.parametrize(
    "change",
    [without("status"), without("amount"), with_fields(status="REVERSED")],
    ids=["no status", "no amount", "unknown status"],
)
def test_a_refund_answer_we_cannot_read_is_a_502_never_a_500(
    gateway: PayPalGateway, sim: GatewaySimulator, change: Any
) -> None:
    order_id, _ = captured(gateway, sim)
    made = gateway.refund(refund_of(order_id, 500))
    with fault_proxy(sim.base_url) as proxy:
        proxy.add("GET", REFUND_PATH, Reshape(change))
        with pytest.raises(GatewayRejected) as caught, reading_answers("paypal", "read the refund"):
            faulty_gateway(proxy).fetch_refund(order_id, made.refund_id)

    assert caught.value.http_status == 502
