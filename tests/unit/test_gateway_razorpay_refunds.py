"""Razorpay adapter: operator refunds through POST /v1/payments/{id}/refund, found again by GET .../refunds, and the
refund webhooks read with the refund's state.

Against the local gateway simulator (real HTTP on 127.0.0.1, Razorpay's shapes and auth), except where an answer
the simulator never gives (a 5xx, a timeout, a malformed refund) is faked with `responses`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses

from local.defaults import gateway_credential
from local.gateway_sim import GatewaySimulator
from payments.gateways.base import (
    Capability,
    CreateRequest,
    EventKind,
    GatewayError,
    GatewayEvent,
    GatewayInputRejected,
    GatewayRejected,
    GatewayUnavailable,
    RefundAnswer,
    RefundRequest,
    reading_answers,
)
from payments.gateways.razorpay import RazorpayGateway, RazorpaySettings
from payments.ids import new_payment_id
from payments.models import RefundStatus
from payments.money import Money

CUSTOMER = "acme"


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
        webhook_secret=gateway_credential("RAZORPAY_WEBHOOK_SECRET"),
    )


@pytest.fixture(scope="module")
def adapter(sim: GatewaySimulator) -> RazorpayGateway:
    return RazorpayGateway(settings_for(sim.provider_base("razorpay")), session=requests.Session())


def new_id() -> str:
    return new_payment_id(datetime.now(UTC))


def paid_order(adapter: RazorpayGateway, sim: GatewaySimulator, minor: int = 5000, currency: str = "INR") -> str:
    """An order of ours whose payment Razorpay captured; answers the order id (our gateway_ref)."""
    created = adapter.create(
        CreateRequest(
            payment_id=new_id(),
            customer_id=CUSTOMER,
            money=Money(minor, currency),
            description="Top-up",
            idempotency_key="idem",
        )
    )
    sim.settle("razorpay", created.gateway_ref, "success")
    return created.gateway_ref


def refund_request(order_id: str, minor: int, *, key: str | None = None, reason: str | None = None) -> RefundRequest:
    return RefundRequest(
        gateway_ref=order_id,
        money=Money(minor, "INR"),
        key=key or new_id(),
        payment_id="pay_01M89VTGF0B8JJTBVGD7CT73AQ",
        customer_id=CUSTOMER,
        reason=reason,
    )


def captured_payment(sim: GatewaySimulator, order_id: str) -> dict[str, Any]:
    [held] = [p for p in sim.objects()["razorpay"]["payments"] if p["order_id"] == order_id and p["captured"]]
    return dict(held)


def refunds_at_sim(sim: GatewaySimulator, order_id: str) -> list[dict[str, Any]]:
    payment_id = captured_payment(sim, order_id)["id"]
    return [r for r in sim.objects()["razorpay"]["refunds"] if r["payment_id"] == payment_id]


def webhooks_of(sim: GatewaySimulator, refund_id: str, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The first `count` webhook deliveries about refund `refund_id`, in the order they were sent."""

    def about_it() -> list[dict[str, Any]]:
        found = []
        for delivery in sim.deliveries():
            if delivery["provider"] != "razorpay":
                continue
            entity = json.loads(delivery["body"])["payload"].get("refund", {}).get("entity", {})
            if entity.get("id") == refund_id:
                found.append(delivery)
        return found

    deadline = time.monotonic() + timeout
    while len(found := about_it()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(found) >= count, f"{len(found)} webhooks about {refund_id}, expected {count}"
    return found[:count]


def read(adapter: RazorpayGateway, delivery: dict[str, Any]) -> GatewayEvent:
    """A delivered webhook as the API reads it: signature checked, then parsed."""
    headers = {name.lower(): value for name, value in delivery["headers"].items()}
    body = delivery["body"].encode()
    adapter.verify_webhook(headers, body)
    return adapter.parse_event(headers, body)


def test_razorpay_declares_the_refund_capability(adapter: RazorpayGateway) -> None:
    assert adapter.capabilities == {Capability.CAPTURE, Capability.RECONCILE, Capability.REFUND}


# ---- refund ---------------------------------------------------------------------------------------------------


def test_a_full_refund_refunds_the_captured_payment_with_our_reference(
    adapter: RazorpayGateway, sim: GatewaySimulator
) -> None:
    order_id = paid_order(adapter, sim)
    request = refund_request(order_id, 5000, reason="Customer asked")

    answer = adapter.refund(request)

    assert answer.refund_id.startswith("rfnd_")
    assert (answer.status, answer.money, answer.reason) == (RefundStatus.PENDING, Money(5000, "INR"), None)
    [made] = refunds_at_sim(sim, order_id)
    assert made["id"] == answer.refund_id
    assert (made["amount"], made["currency"], made["receipt"]) == (5000, "INR", request.key)
    assert made["notes"] == {
        "refund_entry": request.key,
        "payment_id": request.payment_id,
        "customer_id": CUSTOMER,
        "reason": "Customer asked",
    }
    held = captured_payment(sim, order_id)
    assert (held["status"], held["amount_refunded"], held["refund_status"]) == ("refunded", 5000, "full")


def test_partial_refunds_several_per_payment_until_nothing_is_left(
    adapter: RazorpayGateway, sim: GatewaySimulator
) -> None:
    order_id = paid_order(adapter, sim, 5000)
    requests_made = [refund_request(order_id, minor) for minor in (1000, 1500, 2500)]
    seen = []
    for request, refunded_so_far in zip(requests_made, (1000, 2500, 5000), strict=True):
        answer = adapter.refund(request)
        seen.append(answer.refund_id)
        assert (answer.status, answer.money) == (RefundStatus.PENDING, request.money)
        held = captured_payment(sim, order_id)
        assert held["amount_refunded"] == refunded_so_far
        assert (held["status"], held["refund_status"]) == (
            ("refunded", "full") if refunded_so_far == 5000 else ("captured", "partial")
        )
    assert len(set(seen)) == 3
    assert sorted(r["amount"] for r in refunds_at_sim(sim, order_id)) == [1000, 1500, 2500]


def test_more_than_is_left_is_refused_and_refunds_nothing(adapter: RazorpayGateway, sim: GatewaySimulator) -> None:
    order_id = paid_order(adapter, sim, 5000)
    adapter.refund(refund_request(order_id, 4000))
    too_much = refund_request(order_id, 1001)

    with pytest.raises(GatewayInputRejected) as refused:
        adapter.refund(too_much)

    assert (refused.value.field, refused.value.http_status) == ("amount", 422)
    assert "greater than amount captured" in refused.value.message
    assert [r["amount"] for r in refunds_at_sim(sim, order_id)] == [4000]
    assert captured_payment(sim, order_id)["amount_refunded"] == 4000
    assert adapter.find_refund(too_much) is None
    adapter.refund(refund_request(order_id, 1000))  # exactly what is left still goes through
    with pytest.raises(GatewayInputRejected, match="fully refunded already") as nothing_left:
        adapter.refund(refund_request(order_id, 1))
    assert nothing_left.value.field == "amount"
    assert [r["amount"] for r in refunds_at_sim(sim, order_id)] == [4000, 1000]


def test_a_repeat_with_the_same_key_is_the_same_refund(adapter: RazorpayGateway, sim: GatewaySimulator) -> None:
    order_id = paid_order(adapter, sim, 5000)
    request = refund_request(order_id, 2000)

    first, again = adapter.refund(request), adapter.refund(request)

    assert again.refund_id == first.refund_id
    assert again.money == Money(2000, "INR")
    assert [r["amount"] for r in refunds_at_sim(sim, order_id)] == [2000]
    assert captured_payment(sim, order_id)["amount_refunded"] == 2000


def test_a_refund_in_another_currency_than_the_payment_is_refused_before_any_refund(
    adapter: RazorpayGateway, sim: GatewaySimulator
) -> None:
    order_id = paid_order(adapter, sim, 5000)
    request = RefundRequest(order_id, Money(1000, "USD"), new_id(), "pay_01M89VTGF0B8JJTBVGD7CT73AQ", CUSTOMER)
    with pytest.raises(GatewayInputRejected, match="INR, not USD") as refused:
        adapter.refund(request)
    assert refused.value.field == "currency"
    assert refunds_at_sim(sim, order_id) == []


def test_an_order_nobody_paid_has_nothing_to_refund_or_find(adapter: RazorpayGateway, sim: GatewaySimulator) -> None:
    created = adapter.create(CreateRequest(new_id(), CUSTOMER, Money(5000, "INR"), "Top-up", "idem"))
    request = refund_request(created.gateway_ref, 1000)
    with pytest.raises(GatewayRejected, match="no captured payment") as rejected:
        adapter.refund(request)
    assert rejected.value.http_status == 502
    assert adapter.find_refund(request) is None


# ---- find_refund ----------------------------------------------------------------------------------------------


def test_find_refund_finds_each_refund_by_its_key_and_none_for_another(
    adapter: RazorpayGateway, sim: GatewaySimulator
) -> None:
    order_id = paid_order(adapter, sim, 5000)
    first, second = refund_request(order_id, 1200), refund_request(order_id, 800)
    made = {request.key: adapter.refund(request).refund_id for request in (first, second)}

    found = [adapter.find_refund(request) for request in (first, second)]

    # The simulator's bank takes a refund at once (refund.processed follows the answer): found, it is processed.
    assert found == [
        RefundAnswer(made[first.key], RefundStatus.SUCCEEDED, Money(1200, "INR")),
        RefundAnswer(made[second.key], RefundStatus.SUCCEEDED, Money(800, "INR")),
    ]
    assert adapter.find_refund(refund_request(order_id, 1200)) is None  # another key: a refund never made
    assert adapter.find_refund(refund_request(paid_order(adapter, sim), 1200, key=first.key)) is None  # another order


def test_a_refund_the_gateway_failed_is_found_failed_and_its_money_can_be_refunded_again(
    adapter: RazorpayGateway, sim: GatewaySimulator
) -> None:
    order_id = paid_order(adapter, sim, 5000)
    adapter.refund(refund_request(order_id, 1000))
    failing = refund_request(order_id, 3000)
    made = adapter.refund(failing)

    settled = sim.settle("razorpay", order_id, "refund_failed")  # fails the latest refund: the API-made one

    assert settled["event"]["payload"]["refund"]["entity"]["id"] == made.refund_id
    assert adapter.find_refund(failing) == RefundAnswer(
        made.refund_id, RefundStatus.FAILED, Money(3000, "INR"), reason="failed"
    )
    held = captured_payment(sim, order_id)
    assert (held["amount_refunded"], held["status"], held["refund_status"]) == (1000, "captured", "partial")
    again = adapter.refund(refund_request(order_id, 4000))  # what the failure returned counts as refundable again
    assert again.money == Money(4000, "INR")
    assert captured_payment(sim, order_id)["amount_refunded"] == 5000
    # Sent at once, so possibly before the refund's own created and processed (which follow its answer).
    [delivered] = [d for d in webhooks_of(sim, made.refund_id, 3) if d["event_type"] == "refund.failed"]
    failure = read(adapter, delivered)
    assert (failure.kind, failure.refund_id, failure.money, failure.refund_status) == (
        EventKind.REFUND_FAILED,
        made.refund_id,
        Money(3000, "INR"),
        None,
    )


@responses.activate
def test_find_refund_reads_past_the_first_page_of_refunds() -> None:
    adapter = RazorpayGateway(settings_for("http://razorpay.test"), session=requests.Session())
    key = new_id()
    responses.get(
        "http://razorpay.test/v1/orders/order_P/payments",
        json={"items": [{"id": "pay_P", "status": "captured", "captured": True, "amount": 90000, "currency": "INR"}]},
    )
    others = [{"id": f"rfnd_{n:04d}", "amount": 1, "currency": "INR", "status": "processed"} for n in range(100)]
    ours = {"id": "rfnd_Ours", "amount": 700, "currency": "", "status": "pending", "notes": {"refund_entry": key}}
    first = responses.get(
        "http://razorpay.test/v1/payments/pay_P/refunds",
        json={"entity": "collection", "count": 100, "items": others},
        match=[responses.matchers.query_param_matcher({"count": "100", "skip": "0"})],
    )
    second = responses.get(
        "http://razorpay.test/v1/payments/pay_P/refunds",
        json={"entity": "collection", "count": 1, "items": [ours]},
        match=[responses.matchers.query_param_matcher({"count": "100", "skip": "100"})],
    )

    found = adapter.find_refund(refund_request("order_P", 700, key=key))

    # Razorpay's listings may leave the currency empty: a refund is in its payment's currency.
    assert found == RefundAnswer("rfnd_Ours", RefundStatus.PENDING, Money(700, "INR"))
    assert (first.call_count, second.call_count) == (1, 1)


def test_every_refund_call_is_one_the_simulator_serves(adapter: RazorpayGateway, sim: GatewaySimulator) -> None:
    before = len(sim.unrouted())
    order_id = paid_order(adapter, sim)
    request = refund_request(order_id, 100)
    adapter.refund(request)
    adapter.find_refund(request)
    adapter.find_refund(refund_request(order_id, 100))
    assert sim.unrouted()[before:] == []


# ---- webhooks of a refund made through the API ----------------------------------------------------------------


def test_an_api_refund_is_followed_by_refund_created_then_refund_processed(
    adapter: RazorpayGateway, sim: GatewaySimulator
) -> None:
    order_id = paid_order(adapter, sim, 5000)
    request = refund_request(order_id, 1500)
    made = adapter.refund(request)

    created, processed = webhooks_of(sim, made.refund_id, 2)

    assert [created["event_type"], processed["event_type"]] == ["refund.created", "refund.processed"]
    secret = gateway_credential("RAZORPAY_WEBHOOK_SECRET").encode()
    for delivery in (created, processed):
        expected = hmac.new(secret, delivery["body"].encode(), hashlib.sha256).hexdigest()
        assert hmac.compare_digest(delivery["headers"]["X-Razorpay-Signature"], expected)
    events = [read(adapter, delivery) for delivery in (created, processed)]
    assert [(e.kind, e.refund_status) for e in events] == [
        (EventKind.REFUND, RefundStatus.PENDING),
        (EventKind.REFUND, RefundStatus.SUCCEEDED),
    ]
    for parsed in events:
        assert (parsed.refund_id, parsed.money, parsed.gateway_ref) == (made.refund_id, Money(1500, "INR"), order_id)
        assert parsed.uncaptured is False
    assert events[0].event_id != events[1].event_id
    entity = json.loads(processed["body"])["payload"]["refund"]["entity"]
    assert (entity["receipt"], entity["notes"]["refund_entry"]) == (request.key, request.key)


# ---- answers the simulator never gives ----------------------------------------------------------------------

BASE = "http://razorpay.test"
CAPTURED = {"items": [{"id": "pay_R", "status": "captured", "captured": True, "amount": 5000, "currency": "INR"}]}


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    """Razorpay faked: order_R has one captured payment, pay_R; each test adds the answers it needs."""
    with responses.RequestsMock() as faked_http:
        faked_http.get(f"{BASE}/v1/orders/order_R/payments", json=CAPTURED)
        yield faked_http


@pytest.fixture
def faked(mock: responses.RequestsMock) -> RazorpayGateway:
    return RazorpayGateway(settings_for(BASE), session=requests.Session())


def test_the_refund_is_sent_once_with_amount_receipt_notes_and_idempotency_key(
    faked: RazorpayGateway, mock: responses.RequestsMock
) -> None:
    key = new_id()
    call = mock.post(
        f"{BASE}/v1/payments/pay_R/refund",
        json={"id": "rfnd_R", "entity": "refund", "amount": 2500, "currency": "INR", "status": "processed"},
    )
    long_reason = "x" * 300

    answer = faked.refund(refund_request("order_R", 2500, key=key, reason=long_reason))

    assert answer == RefundAnswer("rfnd_R", RefundStatus.SUCCEEDED, Money(2500, "INR"))
    sent = call.calls[0].request
    assert json.loads(sent.body) == {
        "amount": 2500,
        "receipt": key,
        "notes": {
            "refund_entry": key,
            "payment_id": "pay_01M89VTGF0B8JJTBVGD7CT73AQ",
            "customer_id": CUSTOMER,
            "reason": "x" * 256,  # Razorpay keeps 256 characters of a note
        },
    }
    assert sent.headers["X-Refund-Idempotency"] == key
    assert call.call_count == 1


def test_a_key_razorpay_would_not_take_as_idempotency_key_is_only_our_reference(
    faked: RazorpayGateway, mock: responses.RequestsMock
) -> None:
    call = mock.post(
        f"{BASE}/v1/payments/pay_R/refund", json={"id": "rfnd_R", "amount": 100, "currency": "INR", "status": "pending"}
    )
    faked.refund(refund_request("order_R", 100, key="rf 1"))
    sent = call.calls[0].request
    assert "X-Refund-Idempotency" not in sent.headers
    assert json.loads(sent.body)["receipt"] == "rf 1"


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500, "json": {"error": {"code": "SERVER_ERROR", "description": "The server encountered an error"}}},
        {"status": 503, "body": "busy"},
        {"status": 429, "json": {"error": {"code": "BAD_REQUEST_ERROR", "description": "Too many requests"}}},
        {"body": requests.exceptions.ReadTimeout("slow")},
        {"body": requests.exceptions.ConnectionError("reset")},
    ],
)
def test_a_5xx_or_timeout_is_unavailable_and_the_refund_is_not_repeated(
    faked: RazorpayGateway, mock: responses.RequestsMock, failure: dict[str, Any]
) -> None:
    call = mock.post(f"{BASE}/v1/payments/pay_R/refund", **failure)
    with pytest.raises(GatewayUnavailable) as unavailable:
        faked.refund(refund_request("order_R", 1000))
    assert unavailable.value.http_status == 503
    assert call.call_count == 1  # outcome unknown: the caller asks find_refund before it tries again


def test_find_refund_when_razorpay_is_down_is_unavailable(faked: RazorpayGateway, mock: responses.RequestsMock) -> None:
    mock.get(f"{BASE}/v1/payments/pay_R/refunds", status=502, json={"error": {"code": "GATEWAY_ERROR"}})
    with pytest.raises(GatewayUnavailable):
        faked.find_refund(refund_request("order_R", 1000))


@pytest.mark.parametrize(
    ("description", "field"),
    [
        ("The refund amount provided is greater than amount captured", "amount"),
        ("The payment has been fully refunded already", None),
        ("The amount must be at least INR 1.00", "amount"),
    ],
)
def test_razorpays_refusals_of_the_refund_are_input_rejected(
    faked: RazorpayGateway, mock: responses.RequestsMock, description: str, field: str | None
) -> None:
    error: dict[str, Any] = {"code": "BAD_REQUEST_ERROR", "description": description, "source": "business"}
    if field:
        error["field"] = field
    mock.post(f"{BASE}/v1/payments/pay_R/refund", status=400, json={"error": error})
    with pytest.raises(GatewayInputRejected) as refused:
        faked.refund(refund_request("order_R", 1000))
    assert (refused.value.field, refused.value.http_status) == ("amount", 422)
    assert description in refused.value.message


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, {"code": "BAD_REQUEST_ERROR", "description": "The id provided does not exist", "field": "id"}),
        (401, {"code": "BAD_REQUEST_ERROR", "description": "Authentication failed"}),
        (400, {"code": "BAD_REQUEST_ERROR"}),
    ],
)
def test_other_refusals_are_our_side_and_rejected(
    faked: RazorpayGateway, mock: responses.RequestsMock, status: int, error: dict[str, Any]
) -> None:
    mock.post(f"{BASE}/v1/payments/pay_R/refund", status=status, json={"error": error})
    with pytest.raises(GatewayRejected) as rejected:
        faked.refund(refund_request("order_R", 1000))
    assert not isinstance(rejected.value, GatewayInputRejected)
    assert rejected.value.http_status == 502


@pytest.mark.parametrize(
    "answer",
    [
        {"json": {}},
        {"json": {"entity": "refund", "amount": 1000, "currency": "INR", "status": "pending"}},  # no id
        {"json": {"id": "rfnd_R", "currency": "INR", "status": "pending"}},  # no amount
        {"json": {"id": "rfnd_R", "amount": "1000", "currency": "INR", "status": "pending"}},  # not subunits
        {"json": {"id": "rfnd_R", "amount": 1000, "currency": "INR"}},  # no status
        {"json": {"id": "rfnd_R", "amount": 1000, "currency": "USD", "status": "pending"}},  # another currency
        {"json": {"id": "rfnd_R", "amount": 1000, "currency": "XX1", "status": "pending"}},  # no currency at all
        {"json": [{"id": "rfnd_R"}]},  # not an object
        {"body": "<html>gateway</html>"},
    ],
)
def test_a_refund_answer_we_cannot_read_is_a_502_never_a_500(
    faked: RazorpayGateway, mock: responses.RequestsMock, answer: dict[str, Any]
) -> None:
    mock.post(f"{BASE}/v1/payments/pay_R/refund", **answer)
    with pytest.raises(GatewayError) as caught, reading_answers("razorpay", "refund a payment"):
        faked.refund(refund_request("order_R", 1000))
    assert isinstance(caught.value, GatewayRejected)  # GatewayInputRejected is not one: this is no refusal
    assert caught.value.http_status == 502


@pytest.mark.parametrize(
    "listing",
    [
        {"items": [{"id": "rfnd_R", "amount": None, "status": "processed", "notes": {"refund_entry": "KEY"}}]},
        {"items": [{"receipt": "KEY", "amount": 1000, "status": "processed"}]},  # no id
        {"items": [{"id": "rfnd_R", "receipt": "KEY", "amount": 1000}]},  # no status
    ],
)
def test_a_listed_refund_we_cannot_read_is_a_502_never_a_500(
    faked: RazorpayGateway, mock: responses.RequestsMock, listing: dict[str, Any]
) -> None:
    mock.get(f"{BASE}/v1/payments/pay_R/refunds", json=listing)
    with pytest.raises(GatewayError) as caught, reading_answers("razorpay", "find a refund"):
        faked.find_refund(refund_request("order_R", 1000, key="KEY"))
    assert isinstance(caught.value, GatewayRejected)


def test_listings_without_a_readable_refund_of_ours_find_none(
    faked: RazorpayGateway, mock: responses.RequestsMock
) -> None:
    mock.get(
        f"{BASE}/v1/payments/pay_R/refunds",
        json={"items": ["x", 5, {"id": "rfnd_Other", "amount": 1, "currency": "INR", "status": "processed"}]},
    )
    assert faked.find_refund(refund_request("order_R", 1000, key="KEY")) is None


# ---- webhook mapping ------------------------------------------------------------------------------------------

OUR_PAYMENT = "pay_01M89VTGF0B8JJTBVGD7CT73AQ"


def refund_webhook(event: str, *, status: str, captured: bool = True, **refund_fields: Any) -> bytes:
    refund = {
        "id": "rfnd_FS8TWyPrCsa0OB",
        "entity": "refund",
        "amount": 2000,
        "currency": "INR",
        "payment_id": "pay_FPoJKWQQ8lK13n",
        "notes": {"refund_entry": "pay_01M8A0000000000000000000RF", "payment_id": OUR_PAYMENT, "customer_id": "acme"},
        "receipt": "pay_01M8A0000000000000000000RF",
        "status": status,
    } | refund_fields
    payment = {
        "id": "pay_FPoJKWQQ8lK13n",
        "entity": "payment",
        "amount": 5000,
        "currency": "INR",
        "status": "captured" if captured else "refunded",
        "order_id": "order_FPoIeimWki9j8A",
        "captured": captured,
        "notes": [],
    }
    body = {
        "entity": "event",
        "event": event,
        "contains": ["refund", "payment"],
        "payload": {"refund": {"entity": refund}, "payment": {"entity": payment}},
    }
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("event", "entity_status", "kind", "refund_status"),
    [
        ("refund.created", "pending", EventKind.REFUND, RefundStatus.PENDING),
        ("refund.created", "processed", EventKind.REFUND, RefundStatus.SUCCEEDED),  # Razorpay's own sample
        ("refund.processed", "processed", EventKind.REFUND, RefundStatus.SUCCEEDED),
        ("refund.failed", "failed", EventKind.REFUND_FAILED, None),
        ("refund.speed_changed", "pending", EventKind.IGNORED, None),
    ],
)
def test_refund_webhooks_carry_the_refunds_state(
    event: str, entity_status: str, kind: EventKind, refund_status: RefundStatus | None
) -> None:
    adapter = RazorpayGateway(settings_for(BASE))
    parsed = adapter.parse_event({"x-razorpay-event-id": "evt_1"}, refund_webhook(event, status=entity_status))
    assert (parsed.kind, parsed.refund_status, parsed.event_type) == (kind, refund_status, event)
    if kind is not EventKind.IGNORED:
        assert (parsed.refund_id, parsed.money) == ("rfnd_FS8TWyPrCsa0OB", Money(2000, "INR"))
        assert (parsed.payment_id, parsed.customer_id, parsed.gateway_ref) == (
            OUR_PAYMENT,
            "acme",
            "order_FPoIeimWki9j8A",
        )
        assert parsed.uncaptured is False


@pytest.mark.parametrize("event", ["refund.created", "refund.processed"])
def test_razorpays_automatic_refund_of_an_uncaptured_payment_is_flagged(event: str) -> None:
    adapter = RazorpayGateway(settings_for(BASE))
    parsed = adapter.parse_event({}, refund_webhook(event, status="processed", captured=False, notes=[]))
    assert (parsed.kind, parsed.uncaptured, parsed.refund_status) == (
        EventKind.REFUND,
        True,
        RefundStatus.SUCCEEDED,
    )
    assert parsed.payment_id is None  # nothing of ours in it: the receipt names our refund entry, not the payment


def test_a_refunds_receipt_is_never_taken_for_our_payment_id() -> None:
    adapter = RazorpayGateway(settings_for(BASE))
    body = refund_webhook("refund.processed", status="processed", notes={"refund_entry": "x"})
    parsed = adapter.parse_event({}, body)
    assert (parsed.payment_id, parsed.customer_id, parsed.refund_status) == (None, None, RefundStatus.SUCCEEDED)


def test_a_refund_event_without_a_refund_is_not_razorpays_shape() -> None:
    adapter = RazorpayGateway(settings_for(BASE))
    body = json.dumps({"event": "refund.created", "payload": {"payment": {"entity": {"id": "pay_X"}}}}).encode()
    with pytest.raises(ValueError, match=r"refund\.created without a refund entity"):
        adapter.parse_event({}, body)
