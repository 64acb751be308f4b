"""Paystack adapter: operator refunds through POST /refund, found again among GET /refund?transaction=<id>, and the
refund webhooks read with the refund's state.

Against the local gateway simulator (real HTTP on 127.0.0.1, Paystack's shapes and auth), except where an answer
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
from payments.gateways.paystack import PaystackGateway, PaystackSettings, reference_for
from payments.ids import new_payment_id
from payments.models import RefundStatus
from payments.money import Money

CUSTOMER = "acme"
OUR_PAYMENT = "pay_01M89VTGF0B8JJTBVGD7CT73AQ"
OUR_REFERENCE = reference_for(OUR_PAYMENT)


@pytest.fixture(scope="module")
def sim() -> Iterator[GatewaySimulator]:
    simulator = GatewaySimulator("http://127.0.0.1:9")  # webhooks are recorded; nothing listens there
    simulator.start()
    yield simulator
    simulator.stop()


def settings_for(api_base: str) -> PaystackSettings:
    return PaystackSettings(api_base=api_base, secret_key=gateway_credential("PAYSTACK_SECRET_KEY"))


@pytest.fixture(scope="module")
def adapter(sim: GatewaySimulator) -> PaystackGateway:
    return PaystackGateway(settings_for(sim.provider_base("paystack")), session=requests.Session())


def new_id() -> str:
    return new_payment_id(datetime.now(UTC))


def paid_transaction(adapter: PaystackGateway, sim: GatewaySimulator, minor: int = 500000) -> str:
    """A transaction of ours that Paystack charged; answers its reference (our gateway_ref)."""
    created = adapter.create(
        CreateRequest(
            payment_id=new_id(),
            customer_id=CUSTOMER,
            money=Money(minor, "NGN"),
            description="Top-up",
            idempotency_key="idem",
            email="payer@example.com",
        )
    )
    sim.settle("paystack", created.gateway_ref, "success")
    return created.gateway_ref


def refund_request(reference: str, minor: int, *, key: str | None = None, reason: str | None = None) -> RefundRequest:
    return RefundRequest(
        gateway_ref=reference,
        money=Money(minor, "NGN"),
        key=key or new_id(),
        payment_id=OUR_PAYMENT,
        customer_id=CUSTOMER,
        reason=reason,
    )


def transaction_at_sim(sim: GatewaySimulator, reference: str) -> dict[str, Any]:
    [held] = [t for t in sim.objects()["paystack"]["transactions"] if t["reference"] == reference]
    return dict(held)


def refunds_at_sim(sim: GatewaySimulator, reference: str) -> list[dict[str, Any]]:
    """The transaction's refunds as GET /refund lists them, newest first."""
    transaction_id = transaction_at_sim(sim, reference)["id"]
    answer = requests.get(
        f"{sim.base_url}/paystack/refund",
        params={"transaction": transaction_id},
        headers={"Authorization": f"Bearer {gateway_credential('PAYSTACK_SECRET_KEY')}"},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["data"])


def webhooks_of(sim: GatewaySimulator, refund_id: str, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The first `count` webhook deliveries about refund `refund_id`, in the order they were sent."""

    def about_it() -> list[dict[str, Any]]:
        return [
            delivery
            for delivery in sim.deliveries()
            if delivery["provider"] == "paystack"
            and str(delivery["event_type"]).startswith("refund.")
            and str(json.loads(delivery["body"])["data"]["id"]) == refund_id
        ]

    deadline = time.monotonic() + timeout
    while len(found := about_it()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(found) >= count, f"{len(found)} webhooks about {refund_id}, expected {count}"
    return found[:count]


def read(adapter: PaystackGateway, delivery: dict[str, Any]) -> GatewayEvent:
    """A delivered webhook as the API reads it: signature checked, then parsed."""
    headers = {name.lower(): value for name, value in delivery["headers"].items()}
    body = delivery["body"].encode()
    adapter.verify_webhook(headers, body)
    return adapter.parse_event(headers, body)


def test_paystack_declares_the_refund_capability(adapter: PaystackGateway) -> None:
    assert adapter.capabilities == {Capability.RECONCILE, Capability.REFUND}


# ---- refund ---------------------------------------------------------------------------------------------------


def test_a_full_refund_is_queued_with_our_reference_in_the_merchant_note(
    adapter: PaystackGateway, sim: GatewaySimulator
) -> None:
    reference = paid_transaction(adapter, sim, 500000)
    request = refund_request(reference, 500000, reason="Customer asked")

    answer = adapter.refund(request)

    assert answer.refund_id.isdigit()
    assert (answer.status, answer.money, answer.reason) == (RefundStatus.PENDING, Money(500000, "NGN"), None)
    [made] = refunds_at_sim(sim, reference)
    assert str(made["id"]) == answer.refund_id
    assert (made["amount"], made["currency"], made["transaction_reference"]) == (500000, "NGN", reference)
    assert (made["merchant_note"], made["customer_note"]) == (f"refund {request.key}", "Customer asked")
    assert transaction_at_sim(sim, reference)["status"] == "reversed"  # refunded in full


def test_partial_refunds_several_per_transaction_until_nothing_is_left(
    adapter: PaystackGateway, sim: GatewaySimulator
) -> None:
    reference = paid_transaction(adapter, sim, 500000)
    answers = [adapter.refund(refund_request(reference, minor)) for minor in (100000, 150000)]
    assert transaction_at_sim(sim, reference)["status"] == "success"  # part of it is still paid
    answers.append(adapter.refund(refund_request(reference, 250000)))

    assert [(a.status, a.money) for a in answers] == [
        (RefundStatus.PENDING, Money(100000, "NGN")),
        (RefundStatus.PENDING, Money(150000, "NGN")),
        (RefundStatus.PENDING, Money(250000, "NGN")),
    ]
    assert len({a.refund_id for a in answers}) == 3
    assert [(str(r["id"]), r["amount"]) for r in refunds_at_sim(sim, reference)] == [
        (answers[2].refund_id, 250000),
        (answers[1].refund_id, 150000),
        (answers[0].refund_id, 100000),
    ]
    assert transaction_at_sim(sim, reference)["status"] == "reversed"


def test_more_than_is_left_is_refused_and_refunds_nothing(adapter: PaystackGateway, sim: GatewaySimulator) -> None:
    reference = paid_transaction(adapter, sim, 500000)
    adapter.refund(refund_request(reference, 400000))
    too_much = refund_request(reference, 100001)

    with pytest.raises(GatewayInputRejected) as refused:
        adapter.refund(too_much)

    assert (refused.value.field, refused.value.http_status) == ("amount", 422)
    assert "Refund amount cannot be greater than transaction amount" in refused.value.message
    assert [r["amount"] for r in refunds_at_sim(sim, reference)] == [400000]
    assert adapter.find_refund(too_much) is None
    adapter.refund(refund_request(reference, 100000))  # exactly what is left still goes through
    with pytest.raises(GatewayInputRejected, match="Transaction has been fully reversed") as nothing_left:
        adapter.refund(refund_request(reference, 1))
    assert nothing_left.value.field == "amount"
    assert [r["amount"] for r in refunds_at_sim(sim, reference)] == [100000, 400000]


def test_a_transaction_paystack_does_not_know_is_rejected_and_has_no_refund(
    adapter: PaystackGateway, sim: GatewaySimulator
) -> None:
    request = refund_request("pay-unknown", 1000)
    with pytest.raises(GatewayRejected, match="Transaction not found") as rejected:
        adapter.refund(request)
    assert not isinstance(rejected.value, GatewayInputRejected)
    assert adapter.find_refund(request) is None


# ---- find_refund ----------------------------------------------------------------------------------------------


def test_find_refund_finds_each_refund_by_its_key_and_none_for_another(
    adapter: PaystackGateway, sim: GatewaySimulator
) -> None:
    reference = paid_transaction(adapter, sim, 500000)
    first, second = refund_request(reference, 120000), refund_request(reference, 80000)
    made = {request.key: adapter.refund(request).refund_id for request in (first, second)}

    found = [adapter.find_refund(request) for request in (first, second)]

    # The simulator's bank takes a refund at once (refund.processed follows the answer): found, it is processed.
    assert found == [
        RefundAnswer(made[first.key], RefundStatus.SUCCEEDED, Money(120000, "NGN")),
        RefundAnswer(made[second.key], RefundStatus.SUCCEEDED, Money(80000, "NGN")),
    ]
    assert adapter.find_refund(refund_request(reference, 120000)) is None  # another key: a refund never made
    other = paid_transaction(adapter, sim)
    assert adapter.find_refund(refund_request(other, 120000, key=first.key)) is None  # another transaction


def test_a_refund_paystack_failed_is_found_failed_and_its_money_can_be_refunded_again(
    adapter: PaystackGateway, sim: GatewaySimulator
) -> None:
    reference = paid_transaction(adapter, sim, 500000)
    adapter.refund(refund_request(reference, 100000))
    failing = refund_request(reference, 400000)
    made = adapter.refund(failing)  # the transaction is reversed in full now

    settled = sim.settle("paystack", reference, "refund_failed")  # fails the latest refund: this one

    assert (settled["event"]["event"], str(settled["event"]["data"]["id"])) == ("refund.failed", made.refund_id)
    assert adapter.find_refund(failing) == RefundAnswer(
        made.refund_id, RefundStatus.FAILED, Money(400000, "NGN"), reason="failed"
    )
    assert transaction_at_sim(sim, reference)["status"] == "success"
    again = adapter.refund(refund_request(reference, 400000))  # what the failure returned counts as refundable
    assert again.money == Money(400000, "NGN")
    # Sent at once, so possibly before the refund's own pending and processed (which follow its answer).
    [delivered] = [d for d in webhooks_of(sim, made.refund_id, 3) if d["event_type"] == "refund.failed"]
    failure = read(adapter, delivered)
    assert (failure.kind, failure.refund_id, failure.money, failure.refund_status, failure.gateway_ref) == (
        EventKind.REFUND_FAILED,
        made.refund_id,
        Money(400000, "NGN"),
        None,
        reference,
    )


def test_every_refund_call_is_one_the_simulator_serves(adapter: PaystackGateway, sim: GatewaySimulator) -> None:
    before = len(sim.unrouted())
    reference = paid_transaction(adapter, sim)
    request = refund_request(reference, 100)
    adapter.refund(request)
    adapter.find_refund(request)
    adapter.find_refund(refund_request(reference, 100))
    assert sim.unrouted()[before:] == []


# ---- webhooks of a refund made through the API ----------------------------------------------------------------


def test_an_api_refund_is_followed_by_refund_pending_then_refund_processed(
    adapter: PaystackGateway, sim: GatewaySimulator
) -> None:
    reference = paid_transaction(adapter, sim, 500000)
    made = adapter.refund(refund_request(reference, 150000))

    pending, processed = webhooks_of(sim, made.refund_id, 2)

    assert [pending["event_type"], processed["event_type"]] == ["refund.pending", "refund.processed"]
    secret = gateway_credential("PAYSTACK_SECRET_KEY").encode()
    for delivery in (pending, processed):
        expected = hmac.new(secret, delivery["body"].encode(), hashlib.sha512).hexdigest()
        assert hmac.compare_digest(delivery["headers"]["x-paystack-signature"], expected)
    events = [read(adapter, delivery) for delivery in (pending, processed)]
    assert [(e.kind, e.refund_status, e.event_id) for e in events] == [
        (EventKind.REFUND, RefundStatus.PENDING, f"refund.pending:{made.refund_id}"),
        (EventKind.REFUND, RefundStatus.SUCCEEDED, f"refund.processed:{made.refund_id}"),
    ]
    for parsed in events:
        assert (parsed.refund_id, parsed.money, parsed.gateway_ref) == (made.refund_id, Money(150000, "NGN"), reference)


# ---- answers the simulator never gives ----------------------------------------------------------------------

BASE = "http://paystack.test"
VERIFIED = {"status": True, "message": "Verification successful", "data": {"id": 4099260516, "status": "success"}}


def queued(**data: Any) -> dict[str, Any]:
    refund = {
        "transaction": {"id": 4099260516, "reference": OUR_REFERENCE, "amount": 500000},
        "merchant_note": "refund KEY",
        "status": "pending",
        "currency": "NGN",
        "amount": 100000,
        "id": 3018284,
    } | data
    return {"status": True, "message": "Refund has been queued for processing", "data": refund}


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as faked_http:
        yield faked_http


@pytest.fixture
def faked(mock: responses.RequestsMock) -> PaystackGateway:
    return PaystackGateway(settings_for(BASE), session=requests.Session())


def test_the_refund_is_sent_once_naming_the_transaction_amount_currency_and_notes(
    faked: PaystackGateway, mock: responses.RequestsMock
) -> None:
    call = mock.post(f"{BASE}/refund", json=queued(status="processing"))

    answer = faked.refund(refund_request(OUR_REFERENCE, 100000, key="KEY", reason="Duplicate charge"))

    assert answer == RefundAnswer("3018284", RefundStatus.PENDING, Money(100000, "NGN"))
    sent = call.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {gateway_credential('PAYSTACK_SECRET_KEY')}"
    assert json.loads(sent.body) == {
        "transaction": OUR_REFERENCE,
        "amount": 100000,
        "currency": "NGN",
        "merchant_note": "refund KEY",
        "customer_note": "Duplicate charge",
    }
    assert call.call_count == 1


def test_without_a_reason_no_customer_note_is_sent(faked: PaystackGateway, mock: responses.RequestsMock) -> None:
    call = mock.post(f"{BASE}/refund", json=queued())
    faked.refund(refund_request(OUR_REFERENCE, 100000, key="KEY"))
    assert "customer_note" not in json.loads(call.calls[0].request.body)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("pending", RefundStatus.PENDING),
        ("processing", RefundStatus.PENDING),
        ("needs-attention", RefundStatus.PENDING),
        ("processed", RefundStatus.SUCCEEDED),
        ("failed", RefundStatus.FAILED),
        ("something-new", RefundStatus.PENDING),  # accepted, so it debits until Paystack says it failed
    ],
)
def test_the_refunds_status_in_neutral_terms(
    faked: PaystackGateway, mock: responses.RequestsMock, status: str, expected: RefundStatus
) -> None:
    mock.post(f"{BASE}/refund", json=queued(status=status))
    answer = faked.refund(refund_request(OUR_REFERENCE, 100000, key="KEY"))
    assert (answer.status, answer.reason) == (expected, "failed" if expected is RefundStatus.FAILED else None)


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500, "json": {"status": False, "message": "An error occurred"}},
        {"status": 503, "body": "busy"},
        {"status": 429, "json": {"status": False, "message": "Please wait a few minutes and try again."}},
        {"body": requests.exceptions.ReadTimeout("slow")},
        {"body": requests.exceptions.ConnectionError("reset")},
    ],
)
def test_a_5xx_or_timeout_is_unavailable_and_the_refund_is_not_repeated(
    faked: PaystackGateway, mock: responses.RequestsMock, failure: dict[str, Any]
) -> None:
    call = mock.post(f"{BASE}/refund", **failure)
    with pytest.raises(GatewayUnavailable) as unavailable:
        faked.refund(refund_request(OUR_REFERENCE, 1000))
    assert unavailable.value.http_status == 503
    assert call.call_count == 1  # outcome unknown: the caller asks find_refund before it tries again


@pytest.mark.parametrize("where", ["verify", "list"])
def test_find_refund_when_paystack_is_down_is_unavailable(
    faked: PaystackGateway, mock: responses.RequestsMock, where: str
) -> None:
    if where == "verify":
        mock.get(f"{BASE}/transaction/verify/{OUR_REFERENCE}", body=requests.exceptions.ConnectTimeout("slow"))
    else:
        mock.get(f"{BASE}/transaction/verify/{OUR_REFERENCE}", json=VERIFIED)
        mock.get(f"{BASE}/refund", status=502, body="bad gateway")
    with pytest.raises(GatewayUnavailable):
        faked.find_refund(refund_request(OUR_REFERENCE, 1000))


@pytest.mark.parametrize(
    "message",
    [
        "Refund amount cannot be greater than transaction amount",
        "Transaction has been fully reversed",
        "Cannot refund less than USD 1",
        "Invalid Amount Sent",
    ],
)
def test_paystacks_refusals_of_the_refund_are_input_rejected(
    faked: PaystackGateway, mock: responses.RequestsMock, message: str
) -> None:
    mock.post(f"{BASE}/refund", status=400, json={"status": False, "message": message})
    with pytest.raises(GatewayInputRejected) as refused:
        faked.refund(refund_request(OUR_REFERENCE, 1000))
    assert (refused.value.field, refused.value.http_status) == ("amount", 422)
    assert message in refused.value.message


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "Insufficient balance to fulfill this refund. Please top up."),  # a later try may pass: not a 422
        (401, "Invalid key"),
        (404, "Transaction not found"),
        (400, None),
    ],
)
def test_other_refusals_are_rejected(
    faked: PaystackGateway, mock: responses.RequestsMock, status: int, message: str | None
) -> None:
    mock.post(f"{BASE}/refund", status=status, json={"status": False, "message": message})
    with pytest.raises(GatewayRejected) as rejected:
        faked.refund(refund_request(OUR_REFERENCE, 1000))
    assert not isinstance(rejected.value, GatewayInputRejected)
    assert rejected.value.http_status == 502


@pytest.mark.parametrize(
    "answer",
    [
        {"json": {"status": True, "message": "Refund has been queued for processing"}},  # no data
        {"json": queued(id=None)},
        {"json": queued(amount=None)},
        {"json": queued(amount=10.5)},  # not subunits
        {"json": queued(status=None)},
        {"json": queued(currency="GHS")},  # another currency than the transaction's
        {"json": queued(currency="NG1")},  # no currency at all
        {"json": queued(transaction={"id": 1, "reference": "T685312322670591"})},  # another transaction
        {"json": [queued()]},  # not an object
        {"body": "<html>gateway</html>"},
    ],
)
def test_a_refund_answer_we_cannot_read_is_a_502_never_a_500(
    faked: PaystackGateway, mock: responses.RequestsMock, answer: dict[str, Any]
) -> None:
    mock.post(f"{BASE}/refund", **answer)
    with pytest.raises(GatewayError) as caught, reading_answers("paystack", "refund a payment"):
        faked.refund(refund_request(OUR_REFERENCE, 1000, key="KEY"))
    assert isinstance(caught.value, GatewayRejected)  # GatewayInputRejected is not one: this is no refusal
    assert caught.value.http_status == 502


def test_a_refund_answer_without_a_currency_is_in_the_transactions(
    faked: PaystackGateway, mock: responses.RequestsMock
) -> None:
    mock.post(f"{BASE}/refund", json=queued(currency=None, amount="100000"))  # amounts may come as digit strings
    answer = faked.refund(refund_request(OUR_REFERENCE, 100000, key="KEY"))
    assert answer == RefundAnswer("3018284", RefundStatus.PENDING, Money(100000, "NGN"))


def listed(*refunds: dict[str, Any], page: int = 1, pages: int = 1) -> dict[str, Any]:
    meta = {"total": len(refunds), "skipped": 0, "perPage": "100", "page": page, "pageCount": pages}
    return {"status": True, "message": "Refunds retrieved", "data": list(refunds), "meta": meta}


def listed_refund(**fields: Any) -> dict[str, Any]:
    return {
        "transaction": 4099260516,
        "transaction_reference": OUR_REFERENCE,
        "id": 3018284,
        "currency": "NGN",
        "amount": 100000,
        "status": "processed",
        "merchant_note": "refund KEY",
    } | fields


def test_find_refund_asks_by_the_transactions_id_and_reads_every_page(
    faked: PaystackGateway, mock: responses.RequestsMock
) -> None:
    verify = mock.get(f"{BASE}/transaction/verify/{OUR_REFERENCE}", json=VERIFIED)
    others = [listed_refund(id=n, merchant_note=f"refund OTHER{n}") for n in range(100)]
    first = mock.get(
        f"{BASE}/refund",
        json=listed(*others, page=1, pages=2),
        match=[responses.matchers.query_param_matcher({"transaction": "4099260516", "perPage": "100", "page": "1"})],
    )
    second = mock.get(
        f"{BASE}/refund",
        json=listed(listed_refund(), page=2, pages=2),
        match=[responses.matchers.query_param_matcher({"transaction": "4099260516", "perPage": "100", "page": "2"})],
    )

    found = faked.find_refund(refund_request(OUR_REFERENCE, 100000, key="KEY"))

    assert found == RefundAnswer("3018284", RefundStatus.SUCCEEDED, Money(100000, "NGN"))
    assert (verify.call_count, first.call_count, second.call_count) == (1, 1, 1)


@pytest.mark.parametrize(
    "refund",
    [
        listed_refund(merchant_note="refund KEYS"),  # another key that starts like ours
        listed_refund(merchant_note=None),
        listed_refund(transaction=1, transaction_reference="T685312322670591"),  # another transaction's
        listed_refund(transaction_reference="T685312322670591"),
    ],
)
def test_find_refund_takes_only_a_refund_of_this_transaction_with_our_key(
    faked: PaystackGateway, mock: responses.RequestsMock, refund: dict[str, Any]
) -> None:
    mock.get(f"{BASE}/transaction/verify/{OUR_REFERENCE}", json=VERIFIED)
    mock.get(f"{BASE}/refund", json=listed(refund, "not a refund"))
    assert faked.find_refund(refund_request(OUR_REFERENCE, 100000, key="KEY")) is None


@pytest.mark.parametrize(
    ("verified", "refunds"),
    [
        ({"status": True, "data": {"status": "success"}}, None),  # no transaction id to list by
        (VERIFIED, listed(listed_refund(id=None))),
        (VERIFIED, listed(listed_refund(amount="1e5"))),
        (VERIFIED, listed(listed_refund(status=None))),
    ],
)
def test_an_answer_find_refund_cannot_read_is_a_502_never_a_500(
    faked: PaystackGateway, mock: responses.RequestsMock, verified: dict[str, Any], refunds: dict[str, Any] | None
) -> None:
    mock.get(f"{BASE}/transaction/verify/{OUR_REFERENCE}", json=verified)
    if refunds is not None:
        mock.get(f"{BASE}/refund", json=refunds)
    with pytest.raises(GatewayError) as caught, reading_answers("paystack", "find a refund"):
        faked.find_refund(refund_request(OUR_REFERENCE, 100000, key="KEY"))
    assert isinstance(caught.value, GatewayRejected)
    assert caught.value.http_status == 502


# ---- webhook mapping ------------------------------------------------------------------------------------------


def refund_webhook(event: str, **data: Any) -> bytes:
    refund = {
        "status": event.removeprefix("refund."),
        "transaction_reference": OUR_REFERENCE,
        "refund_reference": None,
        "amount": 2500,
        "currency": "NGN",
        "processor": "mpgs_zen",
        "customer": {"first_name": None, "last_name": None, "email": "payer@example.com"},
        "integration": 463433,
        "domain": "test",
        "id": 1234567,
    } | data
    return json.dumps({"event": event, "data": refund}).encode()


@pytest.mark.parametrize(
    ("event", "kind", "refund_status"),
    [
        ("refund.pending", EventKind.REFUND, RefundStatus.PENDING),
        ("refund.processing", EventKind.REFUND, RefundStatus.PENDING),
        ("refund.processed", EventKind.REFUND, RefundStatus.SUCCEEDED),
        ("refund.failed", EventKind.REFUND_FAILED, None),
    ],
)
def test_refund_webhooks_carry_the_refunds_state(
    event: str, kind: EventKind, refund_status: RefundStatus | None
) -> None:
    adapter = PaystackGateway(settings_for(BASE))
    parsed = adapter.parse_event({}, refund_webhook(event))
    assert (parsed.kind, parsed.refund_status, parsed.event_type, parsed.event_id) == (
        kind,
        refund_status,
        event,
        f"{event}:1234567",
    )
    assert (parsed.refund_id, parsed.money, parsed.gateway_ref, parsed.payment_id) == (
        "1234567",
        Money(2500, "NGN"),
        OUR_REFERENCE,
        OUR_PAYMENT,
    )
    assert parsed.reason == ("failed" if kind is EventKind.REFUND_FAILED else None)


def test_other_refund_like_events_are_ignored_without_a_state() -> None:
    adapter = PaystackGateway(settings_for(BASE))
    parsed = adapter.parse_event({}, refund_webhook("refund.needs-attention"))
    assert (parsed.kind, parsed.refund_status, parsed.money, parsed.refund_id) == (EventKind.IGNORED, None, None, None)


@pytest.mark.parametrize("name", ["refund.pending", "refund.processed", "refund.failed"])
def test_a_refund_paying_out_an_accepted_dispute_is_not_a_second_debit(adapter: PaystackGateway, name: str) -> None:
    """charge.dispute.resolve (merchant-accepted) is the chargeback; the refund Paystack then makes names the
    dispute, and is ignored so the money is taken once."""
    from local.gateway_sim.paystack import signed

    data = {"id": 9911, "amount": 50000, "currency": "NGN", "transaction_reference": "pay-x.1", "dispute": 4455}
    body, headers = signed({"event": name, "data": data}, secret=adapter._settings.secret_key)
    event = adapter.parse_event(headers, body)
    assert (event.kind, event.refund_id, event.money) == (EventKind.IGNORED, None, None)
    data["dispute"] = None
    body, headers = signed({"event": name, "data": data}, secret=adapter._settings.secret_key)
    assert adapter.parse_event(headers, body).kind in (EventKind.REFUND, EventKind.REFUND_FAILED)
