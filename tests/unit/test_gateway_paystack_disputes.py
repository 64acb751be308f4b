"""Paystack adapter: disputes. The charge.dispute.* webhooks read into DISPUTE, CHARGEBACK and CHARGEBACK_REVERSAL
events (Paystack's dispute shape, signed with the secret key as the adapter verifies), fetch_dispute and fetch_refund
(the lookups reconciliation asks) against the simulator, and the simulator's dispute outcomes and their webhooks.

Against the local gateway simulator (real HTTP on 127.0.0.1, Paystack's shapes and auth), except where an answer
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
from payments.gateways.paystack import PaystackGateway, PaystackSettings, reference_for
from payments.ids import new_payment_id
from payments.models import DisputeStatus, RefundStatus
from payments.money import Money

CUSTOMER = "acme"
OUR_PAYMENT = "pay_01M89VTGF0B8JJTBVGD7CT73AQ"
OUR_REFERENCE = reference_for(OUR_PAYMENT)
SECRET = gateway_credential("PAYSTACK_SECRET_KEY")


@pytest.fixture(scope="module")
def sim() -> Iterator[GatewaySimulator]:
    simulator = GatewaySimulator("http://127.0.0.1:9")  # webhooks are recorded; nothing listens there
    simulator.start()
    yield simulator
    simulator.stop()


def settings_for(api_base: str) -> PaystackSettings:
    return PaystackSettings(api_base=api_base, secret_key=SECRET)


@pytest.fixture(scope="module")
def adapter(sim: GatewaySimulator) -> PaystackGateway:
    return PaystackGateway(settings_for(sim.provider_base("paystack")), session=requests.Session())


def paid_transaction(adapter: PaystackGateway, sim: GatewaySimulator, minor: int = 500000) -> str:
    """A transaction of ours that Paystack charged; answers its reference (our gateway_ref)."""
    created = adapter.create(
        CreateRequest(
            payment_id=new_payment_id(datetime.now(UTC)),
            customer_id=CUSTOMER,
            money=Money(minor, "NGN"),
            description="Top-up",
            idempotency_key="idem",
            email="payer@example.com",
        )
    )
    sim.settle("paystack", created.gateway_ref, "success")
    return created.gateway_ref


def opened_dispute(sim: GatewaySimulator, reference: str, amount: str | None = None) -> str:
    """Settle `dispute` on the transaction: the id of the dispute it opened, as text."""
    return str(sim.settle("paystack", reference, "dispute", amount)["event"]["data"]["id"])


def delivered(sim: GatewaySimulator, event_type: str, dispute_id: str) -> dict[str, Any]:
    """The (only) delivery of `event_type` about dispute `dispute_id`."""
    [found] = [
        d
        for d in sim.deliveries()
        if d["event_type"] == event_type and str(json.loads(d["body"])["data"]["id"]) == dispute_id
    ]
    return found


def read_delivery(adapter: PaystackGateway, delivery: dict[str, Any]) -> GatewayEvent:
    """A delivered webhook as the API reads it: signature checked, then parsed."""
    headers = {name.lower(): value for name, value in delivery["headers"].items()}
    body = delivery["body"].encode()
    adapter.verify_webhook(headers, body)
    return adapter.parse_event(headers, body)


# ---- webhook mapping, with Paystack's dispute shape ---------------------------------------------------------

DISPUTE = {
    "id": 358950,
    "refund_amount": 500000,
    "currency": "NGN",
    "status": "awaiting-merchant-feedback",
    "resolution": None,
    "domain": "live",
    "transaction": {
        "id": 896467688,
        "domain": "live",
        "status": "success",
        "reference": OUR_REFERENCE,
        "amount": 500000,
        "message": None,
        "gateway_response": "Approved",
        "paid_at": "2020-11-24T13:45:57.000Z",
        "created_at": "2020-11-24T13:45:57.000Z",
        "channel": "card",
        "currency": "NGN",
        "metadata": {"payment_id": OUR_PAYMENT, "customer_id": CUSTOMER},
        "fees": 7500,
    },
    "transaction_reference": None,
    "category": "chargeback",
    "customer": {"id": 58364469, "first_name": None, "last_name": None, "email": "payer@example.com"},
    "bin": "408408",
    "last4": "4081",
    "dueAt": "2020-11-25T18:00:00.000Z",
    "resolvedAt": None,
    "evidence": None,
    "attachments": None,
    "note": None,
    "history": [{"status": "pending", "by": "payer@example.com", "createdAt": "2020-11-24T15:14:50.000Z"}],
    "messages": [],
    "created_at": "2020-11-24T15:14:50.000Z",
    "updated_at": "2020-11-24T15:14:50.000Z",
}


def dispute_webhook(event: str, transaction: dict[str, Any] | None = None, **fields: Any) -> bytes:
    data = {**copy.deepcopy(DISPUTE), **fields}
    if transaction is not None:
        data["transaction"] = transaction
    return json.dumps({"event": event, "data": data}).encode()


def signed_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"x-paystack-signature": hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()}


@pytest.fixture(scope="module")
def webhooks() -> PaystackGateway:
    return PaystackGateway(settings_for("http://paystack.test"), session=requests.Session())


def read(adapter: PaystackGateway, body: bytes) -> GatewayEvent:
    headers = signed_headers(body)
    adapter.verify_webhook(headers, body)
    return adapter.parse_event(headers, body)


def test_a_dispute_event_names_our_transaction_the_dispute_and_our_ids(webhooks: PaystackGateway) -> None:
    event = read(webhooks, dispute_webhook("charge.dispute.create"))
    assert event == GatewayEvent(
        provider="paystack",
        event_id="charge.dispute.create:358950",
        event_type="charge.dispute.create",
        kind=EventKind.DISPUTE,
        payment_id=OUR_PAYMENT,
        customer_id=CUSTOMER,
        gateway_ref=OUR_REFERENCE,
        money=Money(500000, "NGN"),
        reason="chargeback",
        dispute_id="358950",
        dispute_status=DisputeStatus.OPEN,
    )


@pytest.mark.parametrize(
    ("event_type", "fields", "kind", "status"),
    [
        ("charge.dispute.create", {}, EventKind.DISPUTE, DisputeStatus.OPEN),
        ("charge.dispute.remind", {"status": "awaiting-bank-feedback"}, EventKind.DISPUTE, DisputeStatus.OPEN),
        # merchant-accepted: the payer is refunded, we lose. declined: we contested it and keep the money.
        (
            "charge.dispute.resolve",
            {"status": "resolved", "resolution": "merchant-accepted"},
            EventKind.CHARGEBACK,
            DisputeStatus.LOST,
        ),
        (
            "charge.dispute.resolve",
            {"status": "resolved", "resolution": "declined"},
            EventKind.CHARGEBACK_REVERSAL,
            DisputeStatus.WON,
        ),
        ("charge.dispute.resolve", {"status": "resolved", "resolution": None}, EventKind.DISPUTE, DisputeStatus.OPEN),
        # A resolution only counts on a resolve event.
        ("charge.dispute.remind", {"resolution": "merchant-accepted"}, EventKind.DISPUTE, DisputeStatus.OPEN),
    ],
)
def test_each_dispute_event_reads_as_its_kind_and_status(
    webhooks: PaystackGateway, event_type: str, fields: dict[str, Any], kind: EventKind, status: DisputeStatus
) -> None:
    event = read(webhooks, dispute_webhook(event_type, **fields))
    assert (event.kind, event.dispute_status, event.dispute_id, event.event_id) == (
        kind,
        status,
        "358950",
        f"{event_type}:358950",
    )
    assert (event.money, event.gateway_ref, event.reason, event.funds_id) == (
        Money(500000, "NGN"),
        OUR_REFERENCE,
        "chargeback",
        None,
    )


@pytest.mark.parametrize(
    ("fields", "minor"),
    [
        ({"refund_amount": 120000}, 120000),  # part of it
        ({"refund_amount": "120000"}, 120000),  # as digit text
        ({"refund_amount": None, "currency": None}, 500000),  # not said yet: the transaction's
        ({"refund_amount": 0}, 500000),
        ({"refund_amount": 120000, "currency": None}, 120000),  # in the transaction's currency
    ],
)
def test_the_disputed_amount_is_refund_amount_else_the_transactions(
    webhooks: PaystackGateway, fields: dict[str, Any], minor: int
) -> None:
    body = dispute_webhook("charge.dispute.resolve", status="resolved", resolution="merchant-accepted", **fields)
    event = read(webhooks, body)
    assert (event.kind, event.money) == (EventKind.CHARGEBACK, Money(minor, "NGN"))


def test_a_dispute_naming_the_transaction_by_reference_only_still_binds(webhooks: PaystackGateway) -> None:
    body = dispute_webhook("charge.dispute.create", transaction=896467688, transaction_reference=OUR_REFERENCE)
    event = read(webhooks, body)
    # Our payment id comes back from our reference; the customer is found through it by the store.
    assert (event.gateway_ref, event.payment_id, event.customer_id) == (OUR_REFERENCE, OUR_PAYMENT, None)
    assert event.money == Money(500000, "NGN")


def test_a_dispute_event_without_its_id_is_not_paystacks_shape(webhooks: PaystackGateway) -> None:
    with pytest.raises(ValueError, match=r"paystack charge\.dispute\.create carries no data\.id"):
        read(webhooks, dispute_webhook("charge.dispute.create", id=None))


def test_a_dispute_webhook_signed_with_another_key_or_altered_is_refused(webhooks: PaystackGateway) -> None:
    body = dispute_webhook("charge.dispute.resolve", status="resolved", resolution="merchant-accepted")
    with pytest.raises(SignatureInvalid):
        webhooks.verify_webhook(signed_headers(body, "sk_test_other"), body)
    with pytest.raises(SignatureInvalid):
        webhooks.verify_webhook(signed_headers(body), body.replace(b"merchant-accepted", b"declined"))


# ---- fetch_dispute against the simulator --------------------------------------------------------------------


def test_fetch_dispute_follows_the_dispute_from_open_to_lost(adapter: PaystackGateway, sim: GatewaySimulator) -> None:
    reference = paid_transaction(adapter, sim, 500000)
    dispute_id = opened_dispute(sim, reference, "1200.00")

    opened = adapter.fetch_dispute(reference, dispute_id)
    sim.settle("paystack", reference, "dispute_lost")
    lost = adapter.fetch_dispute(reference, dispute_id)

    assert opened == DisputeAnswer(dispute_id, DisputeStatus.OPEN, Money(120000, "NGN"), reason="chargeback")
    assert lost == DisputeAnswer(dispute_id, DisputeStatus.LOST, Money(120000, "NGN"), "chargeback", withdrawn=True)


def test_fetch_dispute_of_a_declined_dispute_moved_nothing(adapter: PaystackGateway, sim: GatewaySimulator) -> None:
    reference = paid_transaction(adapter, sim, 500000)
    dispute_id = opened_dispute(sim, reference)
    sim.settle("paystack", reference, "dispute_won")

    assert adapter.fetch_dispute(reference, dispute_id) == DisputeAnswer(
        dispute_id, DisputeStatus.WON, Money(500000, "NGN"), "chargeback", withdrawn=False, reinstated=False
    )


def test_fetch_dispute_of_another_transaction_or_unknown_is_none(
    adapter: PaystackGateway, sim: GatewaySimulator
) -> None:
    reference, other = paid_transaction(adapter, sim), paid_transaction(adapter, sim)
    dispute_id = opened_dispute(sim, reference)

    assert adapter.fetch_dispute(other, dispute_id) is None
    assert adapter.fetch_dispute(reference, "1") is None
    assert adapter.fetch_dispute(reference, dispute_id) is not None


# ---- fetch_refund against the simulator ---------------------------------------------------------------------


def refund_request(reference: str, minor: int) -> RefundRequest:
    return RefundRequest(reference, Money(minor, "NGN"), new_payment_id(datetime.now(UTC)), OUR_PAYMENT, CUSTOMER)


def test_fetch_refund_answers_a_refund_of_the_transaction_as_it_is_now(
    adapter: PaystackGateway, sim: GatewaySimulator
) -> None:
    reference = paid_transaction(adapter, sim, 500000)
    made = adapter.refund(refund_request(reference, 100000))

    # The simulator's bank takes a refund at once: processed by now.
    assert adapter.fetch_refund(reference, made.refund_id) == RefundAnswer(
        made.refund_id, RefundStatus.SUCCEEDED, Money(100000, "NGN")
    )
    sim.settle("paystack", reference, "refund_failed")
    assert adapter.fetch_refund(reference, made.refund_id) == RefundAnswer(
        made.refund_id, RefundStatus.FAILED, Money(100000, "NGN"), reason="failed"
    )


def test_fetch_refund_of_another_transaction_or_unknown_is_none(
    adapter: PaystackGateway, sim: GatewaySimulator
) -> None:
    reference, other = paid_transaction(adapter, sim), paid_transaction(adapter, sim)
    made = adapter.refund(refund_request(reference, 5000))

    assert adapter.fetch_refund(other, made.refund_id) is None
    assert adapter.fetch_refund(reference, "1") is None
    assert adapter.fetch_refund(reference, made.refund_id) is not None


def test_every_dispute_and_refund_lookup_is_one_the_simulator_serves(
    adapter: PaystackGateway, sim: GatewaySimulator
) -> None:
    before = len(sim.unrouted())
    reference = paid_transaction(adapter, sim)
    dispute_id = opened_dispute(sim, reference)
    made = adapter.refund(refund_request(reference, 100))
    adapter.fetch_dispute(reference, dispute_id)
    adapter.fetch_dispute(reference, "1")
    adapter.fetch_refund(reference, made.refund_id)
    adapter.fetch_refund(reference, "1")
    assert sim.unrouted()[before:] == []


# ---- answers the simulator never gives -----------------------------------------------------------------------

BASE = "http://paystack.test"
VERIFIED = {
    "status": True,
    "message": "Verification successful",
    "data": {"id": 896467688, "reference": OUR_REFERENCE, "status": "success", "amount": 500000, "currency": "NGN"},
}
A_DISPUTE = {
    "id": 358950,
    "refund_amount": 500000,
    "currency": "NGN",
    "status": "awaiting-merchant-feedback",
    "resolution": None,
    "category": "chargeback",
    "transaction": {"id": 896467688, "reference": OUR_REFERENCE, "amount": 500000, "currency": "NGN"},
}
A_REFUND = {
    "id": 3018284,
    "transaction": 896467688,
    "transaction_reference": OUR_REFERENCE,
    "amount": 10000,
    "currency": "NGN",
    "status": "processed",
}


def retrieved(data: Any) -> dict[str, Any]:
    return {"status": True, "message": "Retrieved", "data": data}


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    """Paystack faked: our transaction verifies; each test adds the answers it needs."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as faked_http:
        faked_http.get(f"{BASE}/transaction/verify/{OUR_REFERENCE}", json=VERIFIED)
        yield faked_http


@pytest.fixture
def faked(mock: responses.RequestsMock) -> PaystackGateway:
    return PaystackGateway(settings_for(BASE), session=requests.Session())


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": "awaiting-bank-feedback"}, (DisputeStatus.OPEN, False)),
        (
            {"status": "resolved", "resolution": "merchant-accepted", "refund_amount": 200000},
            (DisputeStatus.LOST, True),
        ),
        ({"status": "resolved", "resolution": "declined"}, (DisputeStatus.WON, False)),
        ({"status": "archived"}, (DisputeStatus.OPEN, False)),
    ],
)
def test_fetch_dispute_reads_each_resolution(
    faked: PaystackGateway, mock: responses.RequestsMock, fields: dict[str, Any], expected: tuple[DisputeStatus, bool]
) -> None:
    mock.get(f"{BASE}/dispute/358950", json=retrieved({**A_DISPUTE, **fields}))
    answer = faked.fetch_dispute(OUR_REFERENCE, "358950")
    minor = fields.get("refund_amount", 500000)
    assert answer == DisputeAnswer(
        "358950", expected[0], Money(minor, "NGN"), "chargeback", withdrawn=expected[1], reinstated=False
    )


def test_a_dispute_or_refund_naming_the_transaction_by_its_id_only_is_checked_against_ours(
    faked: PaystackGateway, mock: responses.RequestsMock
) -> None:
    by_id = {**A_DISPUTE, "transaction": 896467688}
    mock.get(f"{BASE}/dispute/358950", json=retrieved(by_id))
    mock.get(f"{BASE}/dispute/358951", json=retrieved({**by_id, "id": 358951, "transaction": 1}))
    refund = {**A_REFUND, "transaction_reference": None, "currency": None}  # in the transaction's currency
    mock.get(f"{BASE}/refund/3018284", json=retrieved(refund))
    mock.get(f"{BASE}/refund/3018285", json=retrieved({**refund, "id": 3018285, "transaction": 1}))

    assert faked.fetch_dispute(OUR_REFERENCE, "358950") == DisputeAnswer(
        "358950", DisputeStatus.OPEN, Money(500000, "NGN"), "chargeback"
    )
    assert faked.fetch_dispute(OUR_REFERENCE, "358951") is None
    assert faked.fetch_refund(OUR_REFERENCE, "3018284") == RefundAnswer(
        "3018284", RefundStatus.SUCCEEDED, Money(10000, "NGN")
    )
    assert faked.fetch_refund(OUR_REFERENCE, "3018285") is None


def test_a_refund_of_a_transaction_paystack_no_longer_knows_is_none(
    faked: PaystackGateway, mock: responses.RequestsMock
) -> None:
    mock.get(f"{BASE}/refund/3018284", json=retrieved({**A_REFUND, "transaction_reference": None}))
    not_found = {"status": False, "message": "Transaction reference not found"}
    mock.get(f"{BASE}/transaction/verify/pay-01M89VTGF0B8JJTBVGD7CT73AR", status=400, json=not_found)
    assert faked.fetch_refund("pay-01M89VTGF0B8JJTBVGD7CT73AR", "3018284") is None


@pytest.mark.parametrize("path", ["/dispute/358950", "/refund/3018284"])
@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500, "json": {"status": False, "message": "An error occurred"}},
        {"status": 503, "body": "busy"},
        {"body": requests.exceptions.ConnectionError("reset")},
    ],
)
def test_a_lookup_when_paystack_is_down_is_unavailable(
    faked: PaystackGateway, mock: responses.RequestsMock, path: str, failure: dict[str, Any]
) -> None:
    mock.get(f"{BASE}{path}", **failure)
    lookup = faked.fetch_dispute if path.startswith("/dispute") else faked.fetch_refund
    with pytest.raises(GatewayUnavailable) as unavailable:
        lookup(OUR_REFERENCE, path.rsplit("/", 1)[1])
    assert unavailable.value.http_status == 503


@pytest.mark.parametrize(
    "answer",
    [
        {"json": {}},
        {"json": retrieved({**A_DISPUTE, "id": 358951})},  # another dispute than the one asked about
        {"json": retrieved({**A_DISPUTE, "refund_amount": "5.00", "transaction": {"reference": OUR_REFERENCE}})},
        {"json": retrieved({**A_DISPUTE, "currency": "XX1"})},
        {"json": retrieved({**A_DISPUTE, "transaction": None})},  # names no transaction at all
        {"json": retrieved([A_DISPUTE])},
        {"body": "<html>gateway</html>"},
        {"status": 401, "json": {"status": False, "message": "Invalid key"}},
    ],
)
def test_a_dispute_answer_we_cannot_read_is_a_502_never_a_500(
    faked: PaystackGateway, mock: responses.RequestsMock, answer: dict[str, Any]
) -> None:
    mock.get(f"{BASE}/dispute/358950", **answer)
    with pytest.raises(GatewayError) as caught, reading_answers("paystack", "look a dispute up"):
        faked.fetch_dispute(OUR_REFERENCE, "358950")
    assert isinstance(caught.value, GatewayRejected)
    assert caught.value.http_status == 502


@pytest.mark.parametrize(
    "answer",
    [
        {"json": {}},
        {"json": retrieved({**A_REFUND, "id": 3018285})},  # another refund than the one asked about
        {"json": retrieved({**A_REFUND, "amount": None})},
        {"json": retrieved({**A_REFUND, "status": None})},
        {"json": retrieved({**A_REFUND, "amount": "10.00"})},
        {"json": retrieved({**A_REFUND, "transaction": None, "transaction_reference": None})},
        {"json": retrieved(["3018284"])},
        {"body": "<html>gateway</html>"},
    ],
)
def test_a_refund_answer_we_cannot_read_is_a_502_never_a_500(
    faked: PaystackGateway, mock: responses.RequestsMock, answer: dict[str, Any]
) -> None:
    mock.get(f"{BASE}/refund/3018284", **answer)
    with pytest.raises(GatewayError) as caught, reading_answers("paystack", "look a refund up"):
        faked.fetch_refund(OUR_REFERENCE, "3018284")
    assert isinstance(caught.value, GatewayRejected)
    assert caught.value.http_status == 502


# ---- the simulator's dispute outcomes ----------------------------------------------------------------------


def test_settle_dispute_sends_a_signed_charge_dispute_create_of_the_transaction(
    adapter: PaystackGateway, sim: GatewaySimulator
) -> None:
    reference = paid_transaction(adapter, sim, 500000)
    dispute_id = opened_dispute(sim, reference, "1500.00")

    delivery = delivered(sim, "charge.dispute.create", dispute_id)
    event = read_delivery(adapter, delivery)

    assert (event.kind, event.dispute_status, event.money, event.gateway_ref, event.reason) == (
        EventKind.DISPUTE,
        DisputeStatus.OPEN,
        Money(150000, "NGN"),
        reference,
        "chargeback",
    )
    assert event.event_id == f"charge.dispute.create:{dispute_id}"
    data = json.loads(delivery["body"])["data"]
    assert (data["status"], data["resolution"], data["refund_amount"], data["currency"]) == (
        "awaiting-merchant-feedback",
        None,
        150000,
        "NGN",
    )
    assert data["transaction"]["reference"] == reference
    assert data["transaction"]["metadata"]["payment_id"] == event.payment_id


@pytest.mark.parametrize(
    ("outcome", "resolution", "kind", "status"),
    [
        ("dispute_lost", "merchant-accepted", EventKind.CHARGEBACK, DisputeStatus.LOST),
        ("dispute_won", "declined", EventKind.CHARGEBACK_REVERSAL, DisputeStatus.WON),
    ],
)
def test_settle_dispute_lost_or_won_resolves_the_open_dispute(
    adapter: PaystackGateway,
    sim: GatewaySimulator,
    outcome: str,
    resolution: str,
    kind: EventKind,
    status: DisputeStatus,
) -> None:
    reference = paid_transaction(adapter, sim, 500000)
    dispute_id = opened_dispute(sim, reference)

    result = sim.settle("paystack", reference, outcome)
    event = read_delivery(adapter, delivered(sim, "charge.dispute.resolve", dispute_id))

    data = result["event"]["data"]
    assert (str(data["id"]), data["status"], data["resolution"]) == (dispute_id, "resolved", resolution)
    assert (event.kind, event.dispute_status, event.dispute_id, event.money, event.event_id) == (
        kind,
        status,
        dispute_id,
        Money(500000, "NGN"),
        f"charge.dispute.resolve:{dispute_id}",
    )
    with pytest.raises(SettleError, match="no unresolved dispute") as resolved:  # resolved once
        sim.settle("paystack", reference, outcome)
    assert resolved.value.status == 409


def test_settle_resolves_the_latest_unresolved_dispute(adapter: PaystackGateway, sim: GatewaySimulator) -> None:
    reference = paid_transaction(adapter, sim, 500000)
    first, second = opened_dispute(sim, reference, "100.00"), opened_dispute(sim, reference, "200.00")

    sim.settle("paystack", reference, "dispute_won")
    sim.settle("paystack", reference, "dispute_lost")

    assert adapter.fetch_dispute(reference, second) == DisputeAnswer(
        second, DisputeStatus.WON, Money(20000, "NGN"), "chargeback"
    )
    assert adapter.fetch_dispute(reference, first) == DisputeAnswer(
        first, DisputeStatus.LOST, Money(10000, "NGN"), "chargeback", withdrawn=True
    )


def test_settle_refuses_a_dispute_the_transaction_cannot_have(adapter: PaystackGateway, sim: GatewaySimulator) -> None:
    unpaid = adapter.create(
        CreateRequest(
            new_payment_id(datetime.now(UTC)), CUSTOMER, Money(500000, "NGN"), "Top-up", "idem", "payer@example.com"
        )
    ).gateway_ref
    paid = paid_transaction(adapter, sim, 500000)
    refusals = []
    for ref, outcome, amount in [
        (unpaid, "dispute", None),
        (paid, "dispute", "5000.01"),
        (paid, "dispute_lost", None),
        (paid, "dispute_won", None),
        ("pay-nosuch", "dispute", None),
    ]:
        with pytest.raises(SettleError) as refused:
            sim.settle("paystack", ref, outcome, amount)
        refusals.append((refused.value.status, refused.value.message))
    assert refusals == [
        (409, f"Paystack transaction {unpaid} has not succeeded, so there is nothing to dispute"),
        (409, f"Paystack transaction {paid} was paid 5000.00 NGN"),
        (409, f"Paystack transaction {paid} has no unresolved dispute"),
        (409, f"Paystack transaction {paid} has no unresolved dispute"),
        (404, "no Paystack transaction pay-nosuch"),
    ]
    assert [d for d in sim.objects()["paystack"]["disputes"] if d["transaction"]["reference"] == paid] == []
