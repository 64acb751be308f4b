"""Razorpay adapter: disputes. The payment.dispute.* webhooks read into DISPUTE, CHARGEBACK and CHARGEBACK_REVERSAL
events (real payload shapes, signed as the adapter verifies), fetch_dispute and fetch_refund (the lookups
reconciliation asks) against the simulator, and the simulator's dispute outcomes and their webhooks.

Against the local gateway simulator (real HTTP on 127.0.0.1, Razorpay's shapes and auth), except where an answer
the simulator never gives (a 5xx, a malformed dispute or refund) is faked with `responses`.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses

from local.defaults import gateway_credential
from local.gateway_sim import GatewaySimulator, SettleError
from payments.gateways.base import (
    CreateRequest,
    DisputeAnswer,
    EventKind,
    GatewayError,
    GatewayEvent,
    GatewayRejected,
    GatewayUnavailable,
    RefundAnswer,
    RefundRequest,
    SignatureInvalid,
    reading_answers,
)
from payments.gateways.razorpay import RazorpayGateway, RazorpaySettings
from payments.ids import new_payment_id
from payments.models import DisputeStatus, RefundStatus
from payments.money import Money

CUSTOMER = "acme"
OUR_PAYMENT = "pay_01M89VTGF0B8JJTBVGD7CT73AQ"
SECRET = gateway_credential("RAZORPAY_WEBHOOK_SECRET")


@pytest.fixture(scope="module")
def sim() -> Iterator[GatewaySimulator]:
    simulator = GatewaySimulator("http://127.0.0.1:9")  # webhooks are recorded; nothing listens there
    simulator.start()
    yield simulator
    simulator.stop()


def settings_for(api_base: str) -> RazorpaySettings:
    return RazorpaySettings(
        api_base=api_base,
        key_id=gateway_credential("RAZORPAY_KEY_ID"),
        key_secret=gateway_credential("RAZORPAY_KEY_SECRET"),
        webhook_secret=SECRET,
    )


@pytest.fixture(scope="module")
def adapter(sim: GatewaySimulator) -> RazorpayGateway:
    return RazorpayGateway(settings_for(sim.provider_base("razorpay")), session=requests.Session())


def paid_order(adapter: RazorpayGateway, sim: GatewaySimulator, minor: int = 5000) -> str:
    """An order of ours whose payment Razorpay captured; answers the order id (our gateway_ref)."""
    created = adapter.create(
        CreateRequest(
            payment_id=new_payment_id(datetime.now(UTC)),
            customer_id=CUSTOMER,
            money=Money(minor, "INR"),
            description="Top-up",
            idempotency_key="idem",
        )
    )
    sim.settle("razorpay", created.gateway_ref, "success")
    return created.gateway_ref


def opened_dispute(sim: GatewaySimulator, order_id: str, amount: str | None = None) -> str:
    """Settle `dispute` on the order: the id of the dispute it opened."""
    result = sim.settle("razorpay", order_id, "dispute", amount)
    dispute_id = result["event"]["payload"]["dispute"]["entity"]["id"]
    assert isinstance(dispute_id, str)
    return dispute_id


def delivered(sim: GatewaySimulator, event_type: str, dispute_id: str) -> dict[str, Any]:
    """The (only) delivery of `event_type` about dispute `dispute_id`."""
    [found] = [
        d
        for d in sim.deliveries()
        if d["event_type"] == event_type
        and json.loads(d["body"])["payload"].get("dispute", {}).get("entity", {}).get("id") == dispute_id
    ]
    return found


def read_delivery(adapter: RazorpayGateway, delivery: dict[str, Any]) -> GatewayEvent:
    """A delivered webhook as the API reads it: signature checked, then parsed."""
    headers = {name.lower(): value for name, value in delivery["headers"].items()}
    body = delivery["body"].encode()
    adapter.verify_webhook(headers, body)
    return adapter.parse_event(headers, body)


# ---- webhook mapping, with Razorpay's payload shapes ---------------------------------------------------------

ORDER = "order_DisputeOrder01"
PAYMENT = {
    "id": "pay_EsyWjHrfzb59eR",
    "entity": "payment",
    "amount": 10000,
    "currency": "INR",
    "status": "captured",
    "order_id": ORDER,
    "invoice_id": None,
    "international": False,
    "method": "card",
    "amount_refunded": 0,
    "refund_status": None,
    "captured": True,
    "description": None,
    "card_id": "card_EsyWjRqLTKeW6o",
    "email": "void@razorpay.com",
    "contact": "+919000090000",
    "notes": {"payment_id": OUR_PAYMENT, "customer_id": CUSTOMER},
    "fee": 200,
    "tax": 0,
    "error_code": None,
    "error_description": None,
    "created_at": 1590059000,
}
DISPUTE = {
    "id": "disp_AHfqOvkldwsbqt",
    "entity": "dispute",
    "payment_id": "pay_EsyWjHrfzb59eR",
    "amount": 10000,
    "currency": "INR",
    "amount_deducted": 0,
    "gateway_dispute_id": "4342frf34r",
    "reason_code": "chargeback",
    "reason_description": "The customer's bank raised a chargeback",
    "respond_by": 1590604200,
    "status": "open",
    "phase": "chargeback",
    "comments": None,
    "evidence": {"amount": 10000, "summary": None, "submitted_at": None},
    "created_at": 1590059211,
}


def dispute_webhook(event: str, **dispute_fields: Any) -> bytes:
    dispute = {**copy.deepcopy(DISPUTE), **dispute_fields}
    body = {
        "entity": "event",
        "account_id": "acc_BFQ7uQEaa7j2z7",
        "event": event,
        "contains": ["dispute", "payment"],
        "payload": {"payment": {"entity": copy.deepcopy(PAYMENT)}, "dispute": {"entity": dispute}},
        "created_at": 1590059300,
    }
    return json.dumps(body).encode()


def signed_headers(body: bytes, event_id: str = "JDbvmMyCvJqmQd") -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"x-razorpay-signature": digest, "x-razorpay-event-id": event_id}


@pytest.fixture(scope="module")
def webhooks() -> RazorpayGateway:
    return RazorpayGateway(settings_for("http://razorpay.test"), session=requests.Session())


def read(adapter: RazorpayGateway, body: bytes) -> GatewayEvent:
    headers = signed_headers(body)
    adapter.verify_webhook(headers, body)
    return adapter.parse_event(headers, body)


def test_dispute_events_name_the_order_the_dispute_and_our_ids(webhooks: RazorpayGateway) -> None:
    event = read(webhooks, dispute_webhook("payment.dispute.created"))
    assert event == GatewayEvent(
        provider="razorpay",
        event_id="JDbvmMyCvJqmQd",
        event_type="payment.dispute.created",
        kind=EventKind.DISPUTE,
        payment_id=OUR_PAYMENT,
        customer_id=CUSTOMER,
        gateway_ref=ORDER,
        money=Money(10000, "INR"),
        reason="chargeback",
        dispute_id="disp_AHfqOvkldwsbqt",
        dispute_status=DisputeStatus.OPEN,
    )


@pytest.mark.parametrize(
    ("event_type", "fields", "kind", "status", "minor"),
    [
        ("payment.dispute.created", {"amount": 4000}, EventKind.DISPUTE, DisputeStatus.OPEN, 4000),
        ("payment.dispute.under_review", {"status": "under_review"}, EventKind.DISPUTE, DisputeStatus.OPEN, 10000),
        ("payment.dispute.action_required", {}, EventKind.DISPUTE, DisputeStatus.OPEN, 10000),
        # Lost: what Razorpay deducted, where it says a positive amount; else what was disputed.
        ("payment.dispute.lost", {"status": "lost", "amount_deducted": 10000}, EventKind.CHARGEBACK, "lost", 10000),
        ("payment.dispute.lost", {"status": "lost", "amount_deducted": 2500}, EventKind.CHARGEBACK, "lost", 2500),
        ("payment.dispute.lost", {"status": "lost", "amount_deducted": 0}, EventKind.CHARGEBACK, "lost", 10000),
        ("payment.dispute.won", {"status": "won"}, EventKind.CHARGEBACK_REVERSAL, DisputeStatus.WON, 10000),
        # Closed (a fraud dispute the merchant explained or refunded): decided, and it took nothing.
        ("payment.dispute.closed", {"status": "closed"}, EventKind.DISPUTE, DisputeStatus.WON, 10000),
        ("payment.dispute.closed", {"status": "won"}, EventKind.DISPUTE, DisputeStatus.WON, 10000),
        ("payment.dispute.closed", {"status": "lost"}, EventKind.DISPUTE, DisputeStatus.LOST, 10000),
    ],
)
def test_each_dispute_event_reads_as_its_kind_status_and_amount(
    webhooks: RazorpayGateway,
    event_type: str,
    fields: dict[str, Any],
    kind: EventKind,
    status: DisputeStatus,
    minor: int,
) -> None:
    event = read(webhooks, dispute_webhook(event_type, **fields))
    assert (event.kind, event.dispute_status, event.money) == (kind, DisputeStatus(status), Money(minor, "INR"))
    assert (event.dispute_id, event.gateway_ref, event.reason, event.funds_id) == (
        "disp_AHfqOvkldwsbqt",
        ORDER,
        "chargeback",
        None,  # the funds move under the dispute's own id
    )


def test_a_dispute_event_razorpay_may_add_later_is_ignored(webhooks: RazorpayGateway) -> None:
    event = read(webhooks, dispute_webhook("payment.dispute.reopened"))
    assert (event.kind, event.dispute_id, event.dispute_status) == (EventKind.IGNORED, "disp_AHfqOvkldwsbqt", None)


def test_a_dispute_event_without_its_dispute_is_not_razorpays_shape(webhooks: RazorpayGateway) -> None:
    body = json.loads(dispute_webhook("payment.dispute.lost"))
    del body["payload"]["dispute"]
    with pytest.raises(ValueError, match=r"payment\.dispute\.lost without a dispute entity"):
        read(webhooks, json.dumps(body).encode())


def test_a_dispute_amount_that_is_not_subunits_reads_as_no_amount(webhooks: RazorpayGateway) -> None:
    event = read(webhooks, dispute_webhook("payment.dispute.lost", amount="100.00", amount_deducted="100.00"))
    assert (event.kind, event.money, event.dispute_status) == (EventKind.CHARGEBACK, None, DisputeStatus.LOST)


def test_a_dispute_webhook_signed_with_another_secret_or_altered_is_refused(webhooks: RazorpayGateway) -> None:
    body = dispute_webhook("payment.dispute.lost", status="lost", amount_deducted=10000)
    wrong = {"x-razorpay-signature": hmac.new(b"other", body, hashlib.sha256).hexdigest()}
    with pytest.raises(SignatureInvalid):
        webhooks.verify_webhook(wrong, body)
    with pytest.raises(SignatureInvalid):
        webhooks.verify_webhook(signed_headers(body), body.replace(b"10000", b"99999"))


# ---- fetch_dispute against the simulator --------------------------------------------------------------------


def test_fetch_dispute_follows_the_dispute_from_open_to_lost(adapter: RazorpayGateway, sim: GatewaySimulator) -> None:
    order_id = paid_order(adapter, sim, 5000)
    dispute_id = opened_dispute(sim, order_id, "30.00")

    opened = adapter.fetch_dispute(order_id, dispute_id)
    sim.settle("razorpay", order_id, "dispute_lost")
    lost = adapter.fetch_dispute(order_id, dispute_id)

    assert opened == DisputeAnswer(dispute_id, DisputeStatus.OPEN, Money(3000, "INR"), reason="chargeback")
    assert lost == DisputeAnswer(dispute_id, DisputeStatus.LOST, Money(3000, "INR"), "chargeback", withdrawn=True)


def test_fetch_dispute_of_a_won_dispute_moved_nothing(adapter: RazorpayGateway, sim: GatewaySimulator) -> None:
    order_id = paid_order(adapter, sim, 5000)
    dispute_id = opened_dispute(sim, order_id)
    sim.settle("razorpay", order_id, "dispute_won")

    assert adapter.fetch_dispute(order_id, dispute_id) == DisputeAnswer(
        dispute_id, DisputeStatus.WON, Money(5000, "INR"), "chargeback", withdrawn=False, reinstated=False
    )


def test_fetch_dispute_of_another_orders_payment_or_unknown_is_none(
    adapter: RazorpayGateway, sim: GatewaySimulator
) -> None:
    order_id, other = paid_order(adapter, sim), paid_order(adapter, sim)
    dispute_id = opened_dispute(sim, order_id)

    assert adapter.fetch_dispute(other, dispute_id) is None
    assert adapter.fetch_dispute("order_NoSuchOrder000", dispute_id) is None
    assert adapter.fetch_dispute(order_id, "disp_NoSuchDispute0") is None
    assert adapter.fetch_dispute(order_id, dispute_id) is not None


# ---- fetch_refund against the simulator ---------------------------------------------------------------------


def refund_request(order_id: str, minor: int) -> RefundRequest:
    return RefundRequest(order_id, Money(minor, "INR"), new_payment_id(datetime.now(UTC)), OUR_PAYMENT, CUSTOMER)


def test_fetch_refund_answers_a_refund_of_the_order_as_it_is_now(
    adapter: RazorpayGateway, sim: GatewaySimulator
) -> None:
    order_id = paid_order(adapter, sim, 5000)
    made = adapter.refund(refund_request(order_id, 1200))
    sim.settle("razorpay", order_id, "refund", "8.00")  # one made in the dashboard
    dashboard = sim.objects()["razorpay"]["refunds"][-1]["id"]

    # The simulator's bank takes a refund at once: it is processed by now.
    assert adapter.fetch_refund(order_id, made.refund_id) == RefundAnswer(
        made.refund_id, RefundStatus.SUCCEEDED, Money(1200, "INR")
    )
    assert adapter.fetch_refund(order_id, dashboard) == RefundAnswer(
        dashboard, RefundStatus.SUCCEEDED, Money(800, "INR")
    )
    sim.settle("razorpay", order_id, "refund_failed")  # the latest: the dashboard's
    assert adapter.fetch_refund(order_id, dashboard) == RefundAnswer(
        dashboard, RefundStatus.FAILED, Money(800, "INR"), reason="failed"
    )


def test_fetch_refund_of_another_orders_payment_or_unknown_is_none(
    adapter: RazorpayGateway, sim: GatewaySimulator
) -> None:
    order_id, other = paid_order(adapter, sim), paid_order(adapter, sim)
    made = adapter.refund(refund_request(order_id, 500))

    assert adapter.fetch_refund(other, made.refund_id) is None
    assert adapter.fetch_refund(order_id, "rfnd_NoSuchRefund00") is None
    assert adapter.fetch_refund(order_id, made.refund_id) is not None


def test_every_dispute_and_refund_lookup_is_one_the_simulator_serves(
    adapter: RazorpayGateway, sim: GatewaySimulator
) -> None:
    before = len(sim.unrouted())
    order_id = paid_order(adapter, sim)
    dispute_id = opened_dispute(sim, order_id)
    made = adapter.refund(refund_request(order_id, 100))
    adapter.fetch_dispute(order_id, dispute_id)
    adapter.fetch_dispute(order_id, "disp_NoSuchDispute0")
    adapter.fetch_refund(order_id, made.refund_id)
    adapter.fetch_refund("order_NoSuchOrder000", made.refund_id)
    assert sim.unrouted()[before:] == []


# ---- answers the simulator never gives -----------------------------------------------------------------------

BASE = "http://razorpay.test"
PAYMENTS = {"items": [{"id": "pay_R", "status": "captured", "captured": True, "amount": 5000, "currency": "INR"}]}
A_DISPUTE = {"id": "disp_R", "payment_id": "pay_R", "amount": 5000, "currency": "INR", "status": "open"}
A_REFUND = {"id": "rfnd_R", "payment_id": "pay_R", "amount": 1000, "currency": "INR", "status": "processed"}


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    """Razorpay faked: order_R has one captured payment, pay_R; each test adds the answers it needs."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as faked_http:
        faked_http.get(f"{BASE}/v1/orders/order_R/payments", json=PAYMENTS)
        yield faked_http


@pytest.fixture
def faked(mock: responses.RequestsMock) -> RazorpayGateway:
    return RazorpayGateway(settings_for(BASE), session=requests.Session())


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": "under_review"}, (DisputeStatus.OPEN, 5000, False, False)),
        ({"status": "closed"}, (DisputeStatus.WON, 5000, False, False)),
        ({"status": "lost", "amount_deducted": 4500}, (DisputeStatus.LOST, 4500, True, False)),
        # Won after Razorpay deducted it (at the onset): the win gave it back.
        ({"status": "won", "amount_deducted": 5000}, (DisputeStatus.WON, 5000, True, True)),
        ({"status": "something_new"}, (DisputeStatus.OPEN, 5000, False, False)),
    ],
)
def test_fetch_dispute_reads_each_status(
    faked: RazorpayGateway,
    mock: responses.RequestsMock,
    fields: dict[str, Any],
    expected: tuple[DisputeStatus, int, bool, bool],
) -> None:
    mock.get(f"{BASE}/v1/disputes/disp_R", json={**A_DISPUTE, **fields})
    answer = faked.fetch_dispute("order_R", "disp_R")
    assert answer is not None
    assert (answer.status, answer.money.minor, answer.withdrawn, answer.reinstated) == expected
    assert (answer.money.currency, answer.reason, answer.funds_id) == ("INR", None, None)


@pytest.mark.parametrize(
    "path",
    ["/v1/disputes/disp_R", "/v1/orders/order_R/payments"],
)
@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500, "json": {"error": {"code": "SERVER_ERROR", "description": "The server encountered an error"}}},
        {"status": 503, "body": "busy"},
        {"body": requests.exceptions.ConnectionError("reset")},
    ],
)
def test_fetch_dispute_when_razorpay_is_down_is_unavailable(
    faked: RazorpayGateway, mock: responses.RequestsMock, path: str, failure: dict[str, Any]
) -> None:
    mock.get(f"{BASE}/v1/disputes/disp_R", json=A_DISPUTE)
    mock.replace(responses.GET, f"{BASE}{path}", **failure)
    with pytest.raises(GatewayUnavailable) as unavailable:
        faked.fetch_dispute("order_R", "disp_R")
    assert unavailable.value.http_status == 503


@pytest.mark.parametrize("path", ["/v1/refunds/rfnd_R", "/v1/orders/order_R/payments"])
def test_fetch_refund_when_razorpay_is_down_is_unavailable(
    faked: RazorpayGateway, mock: responses.RequestsMock, path: str
) -> None:
    mock.get(f"{BASE}/v1/refunds/rfnd_R", json=A_REFUND)
    mock.replace(responses.GET, f"{BASE}{path}", status=502, json={"error": {"code": "GATEWAY_ERROR"}})
    with pytest.raises(GatewayUnavailable) as unavailable:
        faked.fetch_refund("order_R", "rfnd_R")
    assert unavailable.value.http_status == 503


@pytest.mark.parametrize(
    "answer",
    [
        {"json": {}},
        {"json": {**A_DISPUTE, "id": "disp_Other"}},  # another dispute than the one asked about
        {"json": {**A_DISPUTE, "amount": "5000"}},  # not subunits
        {"json": {**A_DISPUTE, "currency": "XX1"}},  # no currency at all
        {"json": [A_DISPUTE]},  # not an object
        {"body": "<html>gateway</html>"},
        {"status": 401, "json": {"error": {"code": "BAD_REQUEST_ERROR", "description": "Authentication failed"}}},
    ],
)
def test_a_dispute_answer_we_cannot_read_is_a_502_never_a_500(
    faked: RazorpayGateway, mock: responses.RequestsMock, answer: dict[str, Any]
) -> None:
    mock.get(f"{BASE}/v1/disputes/disp_R", **answer)
    with pytest.raises(GatewayError) as caught, reading_answers("razorpay", "look a dispute up"):
        faked.fetch_dispute("order_R", "disp_R")
    assert isinstance(caught.value, GatewayRejected)
    assert caught.value.http_status == 502


@pytest.mark.parametrize(
    "answer",
    [
        {"json": {}},
        {"json": {**A_REFUND, "id": "rfnd_Other"}},  # another refund than the one asked about
        {"json": {**A_REFUND, "amount": None}},
        {"json": {**A_REFUND, "status": None}},
        {"json": {**A_REFUND, "currency": "USD"}},  # not the payment's currency
        {"json": ["rfnd_R"]},
        {"body": "<html>gateway</html>"},
    ],
)
def test_a_refund_answer_we_cannot_read_is_a_502_never_a_500(
    faked: RazorpayGateway, mock: responses.RequestsMock, answer: dict[str, Any]
) -> None:
    mock.get(f"{BASE}/v1/refunds/rfnd_R", **answer)
    with pytest.raises(GatewayError) as caught, reading_answers("razorpay", "look a refund up"):
        faked.fetch_refund("order_R", "rfnd_R")
    assert isinstance(caught.value, GatewayRejected)
    assert caught.value.http_status == 502


def test_a_refund_razorpay_shows_without_a_currency_is_in_its_payments(
    faked: RazorpayGateway, mock: responses.RequestsMock
) -> None:
    mock.get(f"{BASE}/v1/refunds/rfnd_R", json={**A_REFUND, "currency": "", "status": "pending"})
    assert faked.fetch_refund("order_R", "rfnd_R") == RefundAnswer("rfnd_R", RefundStatus.PENDING, Money(1000, "INR"))


# ---- the simulator's dispute outcomes ----------------------------------------------------------------------


def test_settle_dispute_sends_a_signed_payment_dispute_created_of_the_captured_payment(
    adapter: RazorpayGateway, sim: GatewaySimulator
) -> None:
    order_id = paid_order(adapter, sim, 5000)
    dispute_id = opened_dispute(sim, order_id, "20.00")

    delivery = delivered(sim, "payment.dispute.created", dispute_id)
    event = read_delivery(adapter, delivery)

    assert (event.kind, event.dispute_status, event.money, event.gateway_ref, event.reason) == (
        EventKind.DISPUTE,
        DisputeStatus.OPEN,
        Money(2000, "INR"),
        order_id,
        "chargeback",
    )
    assert event.event_id == delivery["headers"]["X-Razorpay-Event-Id"]
    payload = json.loads(delivery["body"])["payload"]
    held = [p for p in sim.objects()["razorpay"]["payments"] if p["order_id"] == order_id]
    assert payload["payment"]["entity"]["id"] == payload["dispute"]["entity"]["payment_id"] == held[0]["id"]
    assert (payload["dispute"]["entity"]["status"], payload["dispute"]["entity"]["amount_deducted"]) == ("open", 0)
    assert payload["payment"]["entity"]["order_id"] == order_id


@pytest.mark.parametrize(
    ("outcome", "event_type", "kind", "status", "deducted"),
    [
        ("dispute_lost", "payment.dispute.lost", EventKind.CHARGEBACK, DisputeStatus.LOST, 5000),
        ("dispute_won", "payment.dispute.won", EventKind.CHARGEBACK_REVERSAL, DisputeStatus.WON, 0),
    ],
)
def test_settle_dispute_lost_or_won_decides_the_open_dispute(
    adapter: RazorpayGateway,
    sim: GatewaySimulator,
    outcome: str,
    event_type: str,
    kind: EventKind,
    status: DisputeStatus,
    deducted: int,
) -> None:
    order_id = paid_order(adapter, sim, 5000)
    dispute_id = opened_dispute(sim, order_id)

    result = sim.settle("razorpay", order_id, outcome)
    event = read_delivery(adapter, delivered(sim, event_type, dispute_id))

    entity = result["event"]["payload"]["dispute"]["entity"]
    assert (entity["id"], entity["status"], entity["amount_deducted"]) == (dispute_id, status.value, deducted)
    assert (event.kind, event.dispute_status, event.dispute_id, event.money) == (
        kind,
        status,
        dispute_id,
        Money(5000, "INR"),
    )
    with pytest.raises(SettleError, match="no open dispute") as decided:  # decided once
        sim.settle("razorpay", order_id, outcome)
    assert decided.value.status == 409


def test_settle_decides_the_latest_open_dispute(adapter: RazorpayGateway, sim: GatewaySimulator) -> None:
    order_id = paid_order(adapter, sim, 5000)
    first, second = opened_dispute(sim, order_id, "10.00"), opened_dispute(sim, order_id, "15.00")

    sim.settle("razorpay", order_id, "dispute_won")
    sim.settle("razorpay", order_id, "dispute_lost")

    assert adapter.fetch_dispute(order_id, second) == DisputeAnswer(
        second, DisputeStatus.WON, Money(1500, "INR"), "chargeback"
    )
    assert adapter.fetch_dispute(order_id, first) == DisputeAnswer(
        first, DisputeStatus.LOST, Money(1000, "INR"), "chargeback", withdrawn=True
    )


def test_settle_refuses_a_dispute_the_order_cannot_have(adapter: RazorpayGateway, sim: GatewaySimulator) -> None:
    unpaid = adapter.create(
        CreateRequest(new_payment_id(datetime.now(UTC)), CUSTOMER, Money(5000, "INR"), "Top-up", "idem")
    ).gateway_ref
    paid = paid_order(adapter, sim, 5000)
    [captured] = [p["id"] for p in sim.objects()["razorpay"]["payments"] if p["order_id"] == paid]
    refusals = []
    for ref, outcome, amount in [
        (unpaid, "dispute", None),
        (paid, "dispute", "50.01"),
        (paid, "dispute_lost", None),
        (paid, "dispute_won", None),
        ("order_NoSuchOrder000", "dispute", None),
    ]:
        with pytest.raises(SettleError) as refused:
            sim.settle("razorpay", ref, outcome, amount)
        refusals.append((refused.value.status, refused.value.message))
    assert refusals == [
        (409, f"Razorpay order {unpaid} has no captured payment to dispute"),
        (409, f"{captured} was paid 50.00 INR"),
        (409, f"Razorpay order {paid} has no open dispute to decide"),
        (409, f"Razorpay order {paid} has no open dispute to decide"),
        (404, "no Razorpay order order_NoSuchOrder000"),
    ]
    assert [d for d in sim.objects()["razorpay"]["disputes"] if d["payment_id"] == captured] == []
