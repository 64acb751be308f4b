"""PayPal refunds: the adapter's refund/find_refund against the gateway simulator (real HTTP on 127.0.0.1), and the
PAYMENT.CAPTURE.REFUNDED webhooks it sends for them read back by the adapter. Faults come from a proxy in front."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from local.defaults import gateway_credential
from local.gateway_sim import GatewaySimulator
from payments.gateways.base import (
    Capability,
    CreateRequest,
    CurrencyNotSupported,
    EventKind,
    GatewayEvent,
    GatewayInputRejected,
    GatewayRejected,
    GatewayUnavailable,
    RefundAnswer,
    RefundRequest,
    reading_answers,
)
from payments.gateways.http import new_session
from payments.gateways.paypal import PayPalGateway, PayPalSettings
from payments.models import RefundStatus
from payments.money import Money
from tests.unit.gateway_faults import Fail, FaultProxy, Late, Reshape, fault_proxy, with_fields, without

PAYMENT_ID = "pay_01JD0000000000000000000000"
CUSTOMER_ID = "cust-42"
PAID = Money(1250, "USD")
ORDER_PATH = "/paypal/v2/checkout/orders/[A-Z0-9]+"
REFUND_PATH = "/paypal/v2/payments/captures/[A-Z0-9]+/refund"


@pytest.fixture
def sim() -> Iterator[GatewaySimulator]:
    simulator = GatewaySimulator("http://127.0.0.1:9")  # webhooks are read from its deliveries, not delivered
    simulator.start()
    yield simulator
    simulator.stop()
    assert simulator.unrouted() == []  # every call the adapter made is one the simulator serves


def settings_for(api_base: str) -> PayPalSettings:
    return PayPalSettings(
        api_base=api_base,
        client_id=gateway_credential("PAYPAL_CLIENT_ID"),
        client_secret=gateway_credential("PAYPAL_CLIENT_SECRET"),
        webhook_id=gateway_credential("PAYPAL_WEBHOOK_ID"),
    )


@pytest.fixture
def gateway(sim: GatewaySimulator) -> PayPalGateway:
    return PayPalGateway(settings_for(sim.provider_base("paypal")))


def order_of(gateway: PayPalGateway, money: Money, payment_id: str = PAYMENT_ID) -> str:
    result = gateway.create(
        CreateRequest(
            payment_id=payment_id,
            customer_id=CUSTOMER_ID,
            money=money,
            description="Mobile plan top-up",
            idempotency_key=uuid.uuid4().hex,
        )
    )
    return result.gateway_ref


def paid(gateway: PayPalGateway, sim: GatewaySimulator, money: Money = PAID, payment_id: str = PAYMENT_ID) -> str:
    """A PayPal order the payer approved and we captured at the simulator: its id (our gateway_ref). Each payment
    has its own id: PayPal refuses a second capture of one invoice_id."""
    order_id = order_of(gateway, money, payment_id)
    sim.settle("paypal", order_id, "success")
    assert gateway.capture(order_id, uuid.uuid4().hex).kind is EventKind.SUCCESS
    return order_id


def refund_of(
    order_id: str, minor: int, key: str = "pay_01REFUND0", currency: str = "USD", **extra: Any
) -> RefundRequest:
    return RefundRequest(
        gateway_ref=order_id,
        money=Money(minor, currency),
        key=key,
        payment_id=PAYMENT_ID,
        customer_id=CUSTOMER_ID,
        **extra,
    )


def sim_order(sim: GatewaySimulator, order_id: str) -> dict[str, Any]:
    [order] = [o for o in sim.objects()["paypal"]["orders"] if o["id"] == order_id]
    return order


def sim_refunds(sim: GatewaySimulator, order_id: str) -> list[dict[str, Any]]:
    refunds: list[dict[str, Any]] = sim_order(sim, order_id)["purchase_units"][0].get("payments", {}).get("refunds", [])
    return refunds


def capture_status(sim: GatewaySimulator, order_id: str) -> str:
    return str(sim_order(sim, order_id)["purchase_units"][0]["payments"]["captures"][0]["status"])


def refunded_deliveries(sim: GatewaySimulator, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The simulator's PAYMENT.CAPTURE.REFUNDED deliveries once there are `count` (sent after the answers)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [d for d in sim.deliveries() if d["event_type"] == "PAYMENT.CAPTURE.REFUNDED"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def read_webhook(gateway: PayPalGateway, body: bytes, headers: dict[str, str]) -> GatewayEvent:
    lowered = {name.lower(): value for name, value in headers.items()}
    gateway.verify_webhook(lowered, body)  # PayPal's postback: the simulator says SUCCESS for what it sent
    return gateway.parse_event(lowered, body)


class QuickSession(requests.Session):
    """No retries, and at most `read_timeout` s for an answer (the adapter's own wait is 10 s)."""

    def __init__(self, read_timeout: float) -> None:
        super().__init__()
        self.read_timeout = read_timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs["timeout"] = (1.0, self.read_timeout)
        return super().request(method, url, *args, **kwargs)


def faulty_gateway(proxy: FaultProxy, read_timeout: float = 5.0) -> PayPalGateway:
    return PayPalGateway(settings_for(f"{proxy.url}/paypal"), session=QuickSession(read_timeout))


# -- refund ---------------------------------------------------------------------------------------------------


def test_paypal_declares_refunds() -> None:
    assert PayPalGateway.capabilities == {Capability.CAPTURE, Capability.RECONCILE, Capability.REFUND}


def test_full_refund_refunds_the_orders_capture_with_our_refund_entry_as_custom_id(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    order_id = paid(gateway, sim)

    answer = gateway.refund(refund_of(order_id, 1250, key="pay_01REFUNDFULL"))

    assert answer.status is RefundStatus.SUCCEEDED
    assert answer.money == Money(1250, "USD")
    assert answer.reason is None
    [held] = sim_refunds(sim, order_id)
    assert held["id"] == answer.refund_id
    assert (held["custom_id"], held["amount"], held["status"]) == (
        "pay_01REFUNDFULL",
        {"currency_code": "USD", "value": "12.50"},
        "COMPLETED",
    )
    assert "note_to_payer" not in held
    assert capture_status(sim, order_id) == "REFUNDED"


def test_several_partial_refunds_until_nothing_is_left(gateway: PayPalGateway, sim: GatewaySimulator) -> None:
    order_id = paid(gateway, sim)

    answers = [gateway.refund(refund_of(order_id, minor, key=f"pay_01PART{minor}")) for minor in (500, 300)]
    assert capture_status(sim, order_id) == "PARTIALLY_REFUNDED"
    answers.append(gateway.refund(refund_of(order_id, 450, key="pay_01PART450")))

    assert [a.money for a in answers] == [Money(500, "USD"), Money(300, "USD"), Money(450, "USD")]
    assert [a.status for a in answers] == [RefundStatus.SUCCEEDED] * 3
    assert len({a.refund_id for a in answers}) == 3
    assert [r["amount"]["value"] for r in sim_refunds(sim, order_id)] == ["5.00", "3.00", "4.50"]
    assert capture_status(sim, order_id) == "REFUNDED"
    with pytest.raises(GatewayInputRejected) as nothing_left:
        gateway.refund(refund_of(order_id, 1, key="pay_01PARTMORE"))
    assert (nothing_left.value.field, nothing_left.value.http_status) == ("amount", 422)
    assert str(nothing_left.value) == "PayPal says this payment is already fully refunded"
    assert len(sim_refunds(sim, order_id)) == 3


def test_the_same_key_answers_the_same_refund_and_refunds_once(gateway: PayPalGateway, sim: GatewaySimulator) -> None:
    order_id = paid(gateway, sim)
    request = refund_of(order_id, 500, key="pay_01SAMEKEY")

    first = gateway.refund(request)
    again = gateway.refund(request)

    assert again == first
    assert [(r["id"], r["amount"]["value"]) for r in sim_refunds(sim, order_id)] == [(first.refund_id, "5.00")]
    assert len(refunded_deliveries(sim, 1)) == 1
    sim.drain()  # everything scheduled is sent: a replay sends no webhook of its own
    assert len(refunded_deliveries(sim, 2, timeout=0)) == 1
    assert gateway.refund(refund_of(order_id, 750, key="pay_01OTHERKEY")).money == Money(750, "USD")


def test_an_amount_above_what_is_left_is_rejected_and_refunds_nothing(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    order_id = paid(gateway, sim)
    gateway.refund(refund_of(order_id, 1000, key="pay_01FIRST"))

    with pytest.raises(GatewayInputRejected) as too_much:
        gateway.refund(refund_of(order_id, 251, key="pay_01SECOND"))

    assert (too_much.value.field, too_much.value.http_status) == ("amount", 422)
    assert str(too_much.value) == "PayPal refused the refund: REFUND_AMOUNT_EXCEEDED"
    assert [r["amount"]["value"] for r in sim_refunds(sim, order_id)] == ["10.00"]
    assert capture_status(sim, order_id) == "PARTIALLY_REFUNDED"
    assert gateway.refund(refund_of(order_id, 250, key="pay_01THIRD")).money == Money(250, "USD")


def test_the_reason_is_the_note_to_the_payer(gateway: PayPalGateway, sim: GatewaySimulator) -> None:
    order_id = paid(gateway, sim)

    gateway.refund(refund_of(order_id, 100, key="pay_01R1", reason="Line was down for a day"))
    gateway.refund(refund_of(order_id, 100, key="pay_01R2", reason="x" * 300))

    notes = {r["custom_id"]: r["note_to_payer"] for r in sim_refunds(sim, order_id)}
    assert notes == {"pay_01R1": "Line was down for a day", "pay_01R2": "x" * 255}  # PayPal keeps 255


def test_whole_unit_currencies_refund_in_whole_units(gateway: PayPalGateway, sim: GatewaySimulator) -> None:
    yen = paid(gateway, sim, Money(1000, "JPY"))
    forint = paid(gateway, sim, Money.parse("1000", "HUF"), payment_id="pay_01JD0000000000000000000HUF")

    answer = gateway.refund(refund_of(yen, 400, currency="JPY"))
    with pytest.raises(CurrencyNotSupported) as fractional:  # PayPal takes no forint decimals: refused before a call
        gateway.refund(refund_of(forint, Money.parse("250.50", "HUF").minor, currency="HUF"))

    assert answer.money == Money(400, "JPY")
    assert [r["amount"] for r in sim_refunds(sim, yen)] == [{"currency_code": "JPY", "value": "400"}]
    assert fractional.value.field == "amount"
    assert sim_refunds(sim, forint) == []
    assert gateway.refund(refund_of(forint, Money.parse("250", "HUF").minor, currency="HUF")).money == Money.parse(
        "250", "HUF"
    )
    assert [r["amount"]["value"] for r in sim_refunds(sim, forint)] == ["250"]


def test_an_order_without_a_completed_capture_is_not_refunded(gateway: PayPalGateway, sim: GatewaySimulator) -> None:
    approved = order_of(gateway, PAID)
    sim.settle("paypal", approved, "success")  # approved, never captured

    with pytest.raises(GatewayRejected, match="no completed capture"):
        gateway.refund(refund_of(approved, 500))
    with pytest.raises(GatewayRejected, match="without its capture"):
        gateway.find_refund(refund_of(approved, 500))
    assert sim_refunds(sim, approved) == []


def test_an_id_that_is_not_a_paypal_id_never_reaches_paypal(gateway: PayPalGateway, sim: GatewaySimulator) -> None:
    for ref in ("", "order/../../v1", "5o190127tn364715t"):
        with pytest.raises(GatewayRejected, match="not a PayPal order"):
            gateway.refund(refund_of(ref, 100))
        with pytest.raises(GatewayRejected, match="not a PayPal order"):
            gateway.find_refund(refund_of(ref, 100))
    assert sim.objects()["paypal"]["orders"] == []


def test_a_refund_settled_at_the_simulator_and_one_through_the_api_share_one_total(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    order_id = paid(gateway, sim)
    sim.settle("paypal", order_id, "refund", amount="5.00")

    with pytest.raises(GatewayInputRejected):
        gateway.refund(refund_of(order_id, 751, key="pay_01API1"))
    assert gateway.refund(refund_of(order_id, 750, key="pay_01API2")).money == Money(750, "USD")
    assert [r["amount"]["value"] for r in sim_refunds(sim, order_id)] == ["5.00", "7.50"]
    assert capture_status(sim, order_id) == "REFUNDED"


# -- find_refund ----------------------------------------------------------------------------------------------


def test_find_refund_finds_each_refund_by_its_key_and_none_for_another(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    order_id = paid(gateway, sim)
    first = gateway.refund(refund_of(order_id, 300, key="pay_01FINDA"))
    second = gateway.refund(refund_of(order_id, 200, key="pay_01FINDB"))
    sim.settle("paypal", order_id, "refund", amount="1.00")  # made in PayPal's dashboard: no key of ours
    other_order = paid(gateway, sim, payment_id="pay_01JD00000000000000000OTHER")
    gateway.refund(refund_of(other_order, 100, key="pay_01FINDC"))

    assert gateway.find_refund(refund_of(order_id, 300, key="pay_01FINDA")) == first
    assert gateway.find_refund(refund_of(order_id, 200, key="pay_01FINDB")) == second
    assert gateway.find_refund(refund_of(order_id, 100, key="pay_01FINDC")) is None  # another payment's refund
    assert gateway.find_refund(refund_of(order_id, 300, key="pay_01NEVERMADE")) is None
    assert second == RefundAnswer(second.refund_id, RefundStatus.SUCCEEDED, Money(200, "USD"))


def test_find_refund_of_a_payment_never_refunded_is_none(gateway: PayPalGateway, sim: GatewaySimulator) -> None:
    assert gateway.find_refund(refund_of(paid(gateway, sim), 100)) is None


# -- faults ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_from_paypal_is_unavailable_and_refunds_nothing(
    gateway: PayPalGateway, sim: GatewaySimulator, status: int
) -> None:
    order_id = paid(gateway, sim)
    with fault_proxy(sim.base_url) as proxy:
        proxy.add("POST", REFUND_PATH, Fail(status, {"name": "INTERNAL_SERVER_ERROR"}))
        with pytest.raises(GatewayUnavailable) as made:
            faulty_gateway(proxy).refund(refund_of(order_id, 500))
        proxy.clear()
        proxy.add("GET", ORDER_PATH, Fail(status, {"name": "INTERNAL_SERVER_ERROR"}))
        with pytest.raises(GatewayUnavailable) as found:
            faulty_gateway(proxy).find_refund(refund_of(order_id, 500))

    assert made.value.http_status == found.value.http_status == 503
    assert str(made.value).startswith(f"paypal answered {status} (POST /paypal/v2/payments/captures/")
    assert str(made.value).endswith("/refund)")
    assert sim_refunds(sim, order_id) == []


def test_a_timeout_then_a_retry_with_the_same_request_id_refunds_once(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    order_id = paid(gateway, sim)
    request = refund_of(order_id, 500, key="pay_01RETRIED")
    with fault_proxy(sim.base_url) as proxy:
        proxy.add("POST", REFUND_PATH, Late(1.5))  # PayPal refunds; the answer comes too late
        with pytest.raises(GatewayUnavailable, match="did not answer in time"):
            faulty_gateway(proxy, read_timeout=0.3).refund(request)

    retried = gateway.refund(request)  # the same PayPal-Request-Id: PayPal answers the first refund

    [held] = sim_refunds(sim, order_id)
    assert retried == RefundAnswer(held["id"], RefundStatus.SUCCEEDED, Money(500, "USD"))
    assert gateway.find_refund(request) == retried


def test_a_timeout_is_unavailable_and_find_refund_then_finds_what_paypal_made(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    order_id = paid(gateway, sim)
    request = refund_of(order_id, 400, key="pay_01LATE")
    with fault_proxy(sim.base_url) as proxy:
        proxy.add("POST", REFUND_PATH, Late(1.5))
        with pytest.raises(GatewayUnavailable) as caught:
            faulty_gateway(proxy, read_timeout=0.3).refund(request)

    assert caught.value.http_status == 503
    [held] = sim_refunds(sim, order_id)
    assert gateway.find_refund(request) == RefundAnswer(held["id"], RefundStatus.SUCCEEDED, Money(400, "USD"))


def test_a_retrying_session_asks_again_after_a_5xx_and_refunds_once(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    order_id = paid(gateway, sim)
    with fault_proxy(sim.base_url) as proxy:
        proxy.add("POST", REFUND_PATH, Fail(503, {"name": "SERVICE_UNAVAILABLE"}))
        retrying = PayPalGateway(settings_for(f"{proxy.url}/paypal"), session=new_session(retries=2, backoff=0))
        with pytest.raises(GatewayUnavailable):
            retrying.refund(refund_of(order_id, 500))

    # PayPal-Request-Id (our refund entry's id) makes the POST safe to repeat: the first try and two retries
    sent = [h for seen, h in zip(proxy.seen, proxy.headers_seen, strict=True) if seen.endswith("/refund")]
    assert [(h["paypal-request-id"], h["prefer"]) for h in sent] == [("pay_01REFUND0", "return=representation")] * 3
    assert sim_refunds(sim, order_id) == []


@pytest.mark.parametrize(
    "change",
    [without("status"), without("id"), without("amount"), with_fields(status="REVERSED"), with_fields(amount="5")],
    ids=["no status", "no id", "no amount", "unknown status", "amount not an object"],
)
def test_a_refund_answer_missing_what_we_read_is_a_502_never_a_500(
    gateway: PayPalGateway, sim: GatewaySimulator, change: Any
) -> None:
    order_id = paid(gateway, sim)
    with fault_proxy(sim.base_url) as proxy:
        proxy.add("POST", REFUND_PATH, Reshape(change))
        with pytest.raises(GatewayRejected) as caught, reading_answers("paypal", "refund the payment"):
            faulty_gateway(proxy).refund(refund_of(order_id, 500))

    assert caught.value.http_status == 502
    assert len(sim_refunds(sim, order_id)) == 1  # PayPal did refund: the caller asks find_refund before anything else


def test_a_refund_amount_we_cannot_read_exactly_is_a_502_through_reading_answers(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    order_id = paid(gateway, sim)
    with fault_proxy(sim.base_url) as proxy:
        proxy.add("POST", REFUND_PATH, Reshape(with_fields(amount={"currency_code": "USD", "value": "5.001"})))
        with pytest.raises(GatewayRejected) as caught, reading_answers("paypal", "refund the payment"):
            faulty_gateway(proxy).refund(refund_of(order_id, 500))

    assert str(caught.value) == "paypal answered in a form we could not read while we tried to refund the payment"


def test_an_order_answer_without_its_purchase_units_finds_nothing_rather_than_none(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    order_id = paid(gateway, sim)
    gateway.refund(refund_of(order_id, 500, key="pay_01HIDDEN"))
    with fault_proxy(sim.base_url) as proxy:
        proxy.add("GET", ORDER_PATH, Reshape(without("purchase_units")))
        with pytest.raises(GatewayRejected) as caught, reading_answers("paypal", "find the refund"):
            faulty_gateway(proxy).find_refund(refund_of(order_id, 500, key="pay_01HIDDEN"))

    assert caught.value.http_status == 502


# -- webhooks -------------------------------------------------------------------------------------------------


def test_a_refund_sends_payment_capture_refunded_which_reads_as_that_refund_of_our_payment(
    gateway: PayPalGateway, sim: GatewaySimulator
) -> None:
    order_id = paid(gateway, sim)
    first = gateway.refund(refund_of(order_id, 500, key="pay_01HOOK1"))
    second = gateway.refund(refund_of(order_id, 300, key="pay_01HOOK2"))

    events = [read_webhook(gateway, d["body"].encode(), d["headers"]) for d in refunded_deliveries(sim, 2)]

    by_refund = {event.refund_id: event for event in events}
    assert set(by_refund) == {first.refund_id, second.refund_id}
    for answer in (first, second):
        event = by_refund[answer.refund_id]
        assert event.kind is EventKind.REFUND
        assert event.money == answer.money
        assert event.gateway_ref == order_id
        # the payment the capture names, not the refund entry the refund's custom_id names
        assert (event.payment_id, event.customer_id) == (PAYMENT_ID, CUSTOMER_ID)
        assert event.refund_status is RefundStatus.SUCCEEDED
        assert event.reason is None


@pytest.mark.parametrize(
    ("status", "details", "kind", "refund_status", "reason"),
    [
        ("COMPLETED", None, EventKind.REFUND, RefundStatus.SUCCEEDED, None),
        ("PENDING", "ECHECK", EventKind.REFUND, RefundStatus.PENDING, None),
        ("FAILED", None, EventKind.REFUND_FAILED, RefundStatus.FAILED, "FAILED"),
        ("CANCELLED", "ECHECK", EventKind.REFUND_FAILED, RefundStatus.FAILED, "ECHECK"),
        (None, None, EventKind.REFUND, None, None),
    ],
)
def test_payment_capture_refunded_carries_the_refunds_status(
    gateway: PayPalGateway,
    sim: GatewaySimulator,
    status: str | None,
    details: str | None,
    kind: EventKind,
    refund_status: RefundStatus | None,
    reason: str | None,
) -> None:
    order_id = paid(gateway, sim)
    capture = sim_order(sim, order_id)["purchase_units"][0]["payments"]["captures"][0]
    resource: dict[str, Any] = {
        "id": "7RF12345AB6789012",
        "amount": {"currency_code": "USD", "value": "4.00"},
        "custom_id": "pay_01ENTRY",
        "links": [{"href": capture["links"][0]["href"], "rel": "up", "method": "GET"}],
    }
    if status is not None:
        resource["status"] = status
    if details is not None:
        resource["status_details"] = {"reason": details}

    event = read_webhook(gateway, *sim.signed_paypal_event("PAYMENT.CAPTURE.REFUNDED", "refund", resource))

    assert (event.kind, event.refund_status, event.reason) == (kind, refund_status, reason)
    assert (event.refund_id, event.money, event.gateway_ref) == ("7RF12345AB6789012", Money(400, "USD"), order_id)
    assert (event.payment_id, event.customer_id) == (PAYMENT_ID, CUSTOMER_ID)
