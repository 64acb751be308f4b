"""Faults (issue 6 §2): a throttled or racing DynamoDB, a gateway that times out, answers 500 or garbage, and a
Lambda that dies between the gateway call and its DynamoDB write.

Each test checks the three things a fault must not break: no payment lost (the customer's retry with the same
Idempotency-Key ends in the right final state), none doubled (one stored payment, one gateway charge in the
simulator, the balance moved once), and every answer on the way tells the client what to do.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from payments import checkout
from payments.config import settings
from payments.errors import PaymentsError
from payments.identity import caller_from_event
from payments.models import PaymentStatus, utcnow
from payments.status import Cause
from payments.store import PaymentStore
from tests.conftest import FakeContext, aws_client, claims_for, http_event, invoke, load_function
from tests.integration.helpers import balances, post, settle_at_sim, stored_payments

pytestmark = pytest.mark.usefixtures("aws", "gateway_sim")
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "737"}
CARD_PAYMENT = {"method": "credit_card", "amount": "42.00", "currency": "USD", "card": CARD}
RETRY_ADVICE = "retry with the same Idempotency-Key"


# ---- DynamoDB faults ------------------------------------------------------------------------------


def throttled(operation: str, code: str = "ProvisionedThroughputExceededException") -> ClientError:
    """What botocore raises once its own retries of a throttled call are used up."""
    return ClientError(
        {"Error": {"Code": code, "Message": "Rate of requests exceeds the allowed throughput."}}, operation
    )


def cancelled(operation: str, *reasons: str) -> ClientError:
    """A TransactWriteItems cancelled for `reasons` (one per item: ConditionalCheckFailed, ThrottlingError, None)."""
    error = aws_client("dynamodb").exceptions.TransactionCanceledException
    return error(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
            "CancellationReasons": [{"Code": r} for r in reasons],
        },
        operation,
    )


class LambdaKilled(BaseException):
    """The function's process ends here (timeout, out of memory): no handler, no `finally` of Powertools runs."""


Fault = BaseException | Callable[[], None]


class FaultyClient:
    """A real DynamoDB client whose chosen operations fail on chosen calls.

    `faults = {"transact_write_items": {2: error}}` fails the 2nd TransactWriteItems; a callable fault runs
    (to play a concurrent writer) and the call then proceeds... unless it raises.
    """

    def __init__(self, real: Any, faults: dict[str, dict[int, Fault]]) -> None:
        self._real = real
        self._faults = faults
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._real, name)
        if name not in self._faults:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            fault = self._faults[name].pop(self.calls[name], None)
            if isinstance(fault, BaseException):
                raise fault
            if fault is not None:
                fault()
            return attribute(*args, **kwargs)

        return call


@pytest.fixture
def inject(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FaultyClient]:
    """inject(module, faults, layer="store"|"idempotency"): fail that function's DynamoDB calls."""

    def apply(module: Any, faults: dict[str, dict[int, Fault]], layer: str = "store") -> FaultyClient:
        if layer == "store":
            faulty = FaultyClient(module.store.client, faults)
            monkeypatch.setattr(module.store, "_client", faulty)
        else:
            faulty = FaultyClient(module.idempotency.persistence.client, faults)
            monkeypatch.setattr(module.idempotency.persistence, "client", faulty)
        return faulty

    return apply


def pay(customer: str, body: dict[str, Any], key: str) -> tuple[int, Any]:
    return post("make_payment", "/payments", body, customer=customer, key=key)


def sim_intents(gateway_sim: Any, customer: str) -> list[dict[str, Any]]:
    intents = gateway_sim.objects()["stripe"]["payment_intents"]
    return [pi for pi in intents if pi.get("metadata", {}).get("customer_id") == customer]


def sim_objects(gateway_sim: Any, provider: str, customer: str) -> list[dict[str, Any]]:
    """The gateway's objects (orders, transactions, invoices) that carry this customer's id."""
    held = gateway_sim.objects()[provider]
    return [o for kind in held.values() for o in kind if customer in json.dumps(o)]


def assert_retry_advice(status: int, body: dict[str, Any], *codes: int) -> None:
    assert status in codes, body
    assert "retry" in body["message"].lower(), body


@pytest.mark.parametrize(
    ("path", "route", "operation"),
    [
        ("/payments", "/payments", "query"),
        ("/balance", "/balance", "batch_get_item"),
        ("/payments/pay_01JDQ4W6S8X7C3M2K9V5T0R1AB", "/payments/{id}", "get_item"),
    ],
)
@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException"])
def test_a_throttled_read_is_503_with_retry_advice(customer: str, inject, path, route, operation, code) -> None:
    module = load_function("list_payments")
    inject(module, {operation: {1: throttled(operation, code)}})
    event = http_event("GET", path, route=route, claims=claims_for(customer, "support"))
    status, body = invoke(module, event)
    assert_retry_advice(status, body, 503)
    assert invoke(module, event)[0] in (200, 404)  # the next try, unthrottled, is answered


@pytest.mark.parametrize(
    ("layer", "operation", "call"),
    [
        ("idempotency", "put_item", 1),  # Powertools cannot record the request as in progress
        ("store", "transact_write_items", 1),  # the pending payment cannot be recorded
    ],
)
def test_throttled_before_the_gateway_call_stores_and_charges_nothing_then_the_retry_pays_once(
    customer: str, gateway_sim, inject, layer: str, operation: str, call: int
) -> None:
    module = load_function("make_payment")
    inject(module, {operation: {call: throttled(operation)}}, layer=layer)
    key = uuid.uuid4().hex
    status, body = pay(customer, CARD_PAYMENT, key)
    assert_retry_advice(status, body, 503)
    assert stored_payments(customer) == [] and sim_intents(gateway_sim, customer) == []

    status, body = pay(customer, CARD_PAYMENT, key)
    assert status == 201, body
    assert body["payment"]["status"] == "completed"
    assert len(stored_payments(customer)) == 1 and len(sim_intents(gateway_sim, customer)) == 1
    assert balances(customer) == {"USD": "42.00"}


@pytest.mark.parametrize(
    ("write", "fault"),
    [
        (2, throttled("TransactWriteItems")),  # attach the gateway's id
        (2, cancelled("TransactWriteItems", "ThrottlingError", "None")),
        (3, cancelled("TransactWriteItems", "None", "ThrottlingError")),  # completed + balance
    ],
    ids=["attach-throttled", "attach-cancelled-by-throttling", "complete-cancelled-by-throttling"],
)
def test_throttled_after_the_gateway_charged_answers_503_and_the_retry_completes_it_once(
    customer: str, gateway_sim, inject, write: int, fault: ClientError
) -> None:
    """The card is charged, then our write fails: the client must retry, and the retry must not charge again."""
    module = load_function("make_payment")
    inject(module, {"transact_write_items": {write: fault}})
    key = uuid.uuid4().hex
    status, body = pay(customer, CARD_PAYMENT, key)
    assert_retry_advice(status, body, 503)
    [pending] = stored_payments(customer)
    assert pending["status"]["S"] == "pending"  # recorded before the gateway call: not lost
    assert balances(customer) == {}
    assert len(sim_intents(gateway_sim, customer)) == 1

    status, body = pay(customer, CARD_PAYMENT, key)
    assert status == 201, body
    assert body["payment"]["id"] == pending["id"]["S"] and body["payment"]["status"] == "completed"
    assert len(stored_payments(customer)) == 1
    [intent] = sim_intents(gateway_sim, customer)
    assert intent["status"] == "succeeded" and intent["metadata"]["payment_id"] == pending["id"]["S"]
    assert balances(customer) == {"USD": "42.00"}


def _expire_in_progress_record(customer: str, key: str) -> None:
    """What the passing of the function's timeout does to the Powertools record of a killed invocation, and to
    its claim on creating the payment's gateway object."""
    for item in stored_payments(customer):
        if "gw_claim_until" in item:
            aws_client("dynamodb").update_item(
                TableName=settings().payments_table,
                Key={"PK": item["PK"], "SK": item["SK"]},
                UpdateExpression="SET gw_claim_until = :past",
                ExpressionAttributeValues={":past": {"N": "1"}},
            )
    persistence = load_function("make_payment").idempotency.persistence
    record_id = persistence._get_hashed_idempotency_key({"customer_id": customer, "key": key})
    aws_client("dynamodb").update_item(
        TableName=settings().idempotency_table,
        Key={"id": {"S": record_id}},
        UpdateExpression="SET in_progress_expiration = :past",
        ExpressionAttributeValues={":past": {"N": "1"}, ":inprogress": {"S": "INPROGRESS"}},
        ConditionExpression="#s = :inprogress",
        ExpressionAttributeNames={"#s": "status"},
    )


@pytest.mark.parametrize(
    ("step", "operation", "call", "layer"),
    [
        ("before recording the gateway's id", "transact_write_items", 2, "store"),
        ("before recording the completion", "transact_write_items", 3, "store"),
        ("before saving the idempotent answer", "update_item", 1, "idempotency"),
    ],
)
def test_a_lambda_killed_between_gateway_call_and_write_leaves_one_payment_and_one_charge(
    customer: str, gateway_sim, inject, step: str, operation: str, call: int, layer: str
) -> None:
    module = load_function("make_payment")
    inject(module, {operation: {call: LambdaKilled(step)}}, layer=layer)
    key = uuid.uuid4().hex
    with pytest.raises(LambdaKilled):  # API Gateway answers the client 500/503 without a body of ours
        pay(customer, CARD_PAYMENT, key)
    [payment] = stored_payments(customer)
    assert len(sim_intents(gateway_sim, customer)) == 1  # the gateway did charge

    # Retried while the killed invocation could still be running: told to wait, nothing new happens.
    status, body = pay(customer, CARD_PAYMENT, key)
    assert status == 409 and "retry" in body["message"], body
    assert len(stored_payments(customer)) == 1 and len(sim_intents(gateway_sim, customer)) == 1

    _expire_in_progress_record(customer, key)
    status, body = pay(customer, CARD_PAYMENT, key)
    assert status == 201, body
    assert body["payment"]["id"] == payment["id"]["S"] and body["payment"]["status"] == "completed"
    assert len(stored_payments(customer)) == 1 and len(sim_intents(gateway_sim, customer)) == 1
    assert balances(customer) == {"USD": "42.00"}
    assert pay(customer, CARD_PAYMENT, key) == (status, body)  # and from now on the stored answer


def test_a_transition_that_loses_a_race_to_a_webhook_credits_the_balance_once(customer: str, gateway_sim, inject):
    """The gateway's success webhook completes the payment between our read and our conditional write."""
    module = load_function("make_payment")

    def webhook_completes_it_first() -> None:
        [item] = stored_payments(customer)
        PaymentStore().transition(
            customer, item["id"]["S"], PaymentStatus.COMPLETED, Cause.GATEWAY_SUCCESS, "gateway:stripe:evt_1"
        )

    inject(module, {"transact_write_items": {3: webhook_completes_it_first}})
    status, body = pay(customer, CARD_PAYMENT, uuid.uuid4().hex)
    assert status == 201 and body["payment"]["status"] == "completed", body
    [item] = stored_payments(customer)
    assert [h["M"]["by"]["S"] for h in item["history"]["L"]][1:] == ["gateway:stripe:evt_1"]  # one completion
    assert balances(customer) == {"USD": "42.00"}


def test_a_conditional_check_lost_once_is_decided_again_on_fresh_data(customer: str, gateway_sim, inject) -> None:
    module = load_function("make_payment")
    faulty = inject(module, {"transact_write_items": {3: cancelled("TransactWriteItems", "ConditionalCheckFailed")}})
    status, body = pay(customer, CARD_PAYMENT, uuid.uuid4().hex)
    assert status == 201 and body["payment"]["status"] == "completed", body
    assert faulty.calls["transact_write_items"] == 4  # pending, attach, lost race, the re-decided write
    assert balances(customer) == {"USD": "42.00"}


# ---- gateway faults -------------------------------------------------------------------------------


class FaultyGateway(ThreadingHTTPServer):
    """A 127.0.0.1 proxy in front of the gateway simulator that breaks the calls matching `path_part`.

    modes: "forward" (pass through), "hang" (never answer), "lose_answer" (the gateway does the work, the
    answer never arrives), "error_500", "garbage" (200 with an HTML page, after the gateway did the work),
    "hollow" (200 with JSON that lacks what the adapter reads, after the gateway did the work).
    """

    daemon_threads = True

    def __init__(self, upstream: str, path_part: str, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream, self.path_part, self.mode = upstream, path_part, mode
        self.release = threading.Event()
        self.broken_calls = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


# Stripe's error shape; the other gateways' adapters read only the status of a 5xx.
_ERROR_500 = b'{"error": {"type": "api_error", "message": "An unknown error occurred"}, "message": "internal"}'


_HOLLOW = b'{"object": "payment_intent", "status": "succeeded", "data": {"status": true}, "links": []}'


class _ProxyHandler(BaseHTTPRequestHandler):
    server: FaultyGateway

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        mode = self.server.mode if self.server.path_part in self.path else "forward"
        if mode != "forward":
            self.server.broken_calls += 1
        upstream = None
        if mode in ("forward", "lose_answer", "garbage", "hollow"):
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            upstream = requests.request(
                self.command, self.server.upstream + self.path, headers=headers, data=body, timeout=30
            )
        if mode in ("hang", "lose_answer"):
            self.server.release.wait(10)
            self.close_connection = True
            return
        if mode == "error_500":
            status, payload, content_type = 500, _ERROR_500, "application/json"
        elif mode == "garbage":
            status, payload, content_type = 200, b"<html><body>502 Bad Gateway</body></html>", "text/html"
        elif mode == "hollow":  # the object's kind and status, nothing else (no id, no link, no amount)
            status, payload, content_type = 200, _HOLLOW, "application/json"
        else:
            assert upstream is not None
            status, payload = upstream.status_code, upstream.content
            content_type = upstream.headers.get("content-type", "application/json")
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def faulty_gateway(gateway_sim, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str, str], FaultyGateway]]:
    """faulty_gateway(provider, path_part, mode): points that adapter's API base at a breaking proxy."""
    import payments.gateways.stripe as stripe_adapter
    from payments.gateways import http

    # Short client timeouts, so a hanging gateway costs the test about a second, not the production 10-20 s.
    monkeypatch.setattr(stripe_adapter, "TIMEOUT", (1.0, 0.4))
    monkeypatch.setitem(http.call_json.__kwdefaults__, "timeout", (1.0, 0.4))
    started: list[FaultyGateway] = []

    def start(provider: str, path_part: str, mode: str) -> FaultyGateway:
        server = FaultyGateway(gateway_sim.base_url, path_part, mode)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        started.append(server)
        monkeypatch.setenv(f"{provider.upper()}_API_BASE", f"{server.url}/{provider}")
        return server

    yield start
    for server in started:
        server.release.set()
        server.shutdown()
        server.server_close()


PAYPAL = {"method": "paypal", "amount": "23.99", "currency": "USD"}
RAZORPAY = {"method": "razorpay", "amount": "499.00", "currency": "INR"}
PAYSTACK = {"method": "paystack", "amount": "5000.00", "currency": "NGN"}
NOWPAYMENTS = {"method": "nowpayments", "amount": "120.00", "currency": "EUR"}
GATEWAY_CASES = [
    # provider, body, the call to break, how, what the client gets, gateway objects after the retry
    ("stripe", CARD_PAYMENT, "/v1/payment_intents", "lose_answer", 503, 1),  # the retry's key finds the first
    ("stripe", CARD_PAYMENT, "/v1/payment_intents", "error_500", 503, 1),
    ("stripe", CARD_PAYMENT, "/v1/payment_intents", "garbage", 502, 1),
    ("paypal", PAYPAL, "/v2/checkout/orders", "hang", 503, 1),
    ("paypal", PAYPAL, "/v2/checkout/orders", "error_500", 503, 1),
    ("nowpayments", NOWPAYMENTS, "/v1/invoice", "error_500", 503, 1),
    # Paystack takes no idempotency key and cannot look an earlier transaction up: the retry opens a second
    # one under its own reference; both are bound to the payment, only the second is offered.
    ("paystack", PAYSTACK, "/transaction/initialize", "garbage", 502, 2),
    # Razorpay neither, but it lists orders by receipt: the retry finds the order the lost answer was about.
    ("razorpay", RAZORPAY, "/v1/orders", "lose_answer", 503, 1),
]


@pytest.mark.parametrize(("provider", "body", "path_part", "mode", "code", "objects"), GATEWAY_CASES)
def test_a_failing_gateway_leaves_a_pending_payment_and_the_retry_finishes_it_once(
    customer: str, gateway_sim, faulty_gateway, provider, body, path_part, mode, code, objects
) -> None:
    gateway = faulty_gateway(provider, path_part, mode)
    key = uuid.uuid4().hex
    status, answer = pay(customer, body, key)
    assert status == code, answer
    assert RETRY_ADVICE in answer["message"] and answer["payment_id"], answer
    assert gateway.broken_calls >= 1
    [pending] = stored_payments(customer)
    assert pending["id"]["S"] == answer["payment_id"]
    assert pending["status"]["S"] == "pending" and pending["last_error"]["S"]  # for operators and reconciliation
    assert balances(customer) == {}

    gateway.mode = "forward"  # the gateway recovers; the client retries as told
    status, answer = pay(customer, body, key)
    assert status == 201, answer
    assert answer["payment"]["id"] == pending["id"]["S"]
    [payment] = stored_payments(customer)
    assert len(sim_objects(gateway_sim, provider, customer)) == objects
    if provider == "stripe":  # the only one that charges at once: one PaymentIntent, succeeded, credited once
        assert answer["payment"]["status"] == "completed"
        assert [pi["status"] for pi in sim_intents(gateway_sim, customer)] == ["succeeded"]
        assert balances(customer) == {"USD": "42.00"}
        return
    # A pending payment with the gateway's object the payer is sent to; nothing credited before the gateway says so.
    assert answer["payment"]["status"] == "pending" and "last_error" not in payment
    ref = payment["gateway_ref"]["S"]
    assert any(ref in json.dumps(o) for o in sim_objects(gateway_sim, provider, customer)), ref
    assert answer["next_action"].get("order_id", ref) == ref  # Razorpay's checkout names the order
    assert balances(customer) == {}


@pytest.mark.parametrize("mode", ["lose_answer", "error_500", "garbage"])
def test_card_data_stays_out_of_answers_logs_and_items_when_the_gateway_fails(
    customer: str, faulty_gateway, mode: str, capfd, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    faulty_gateway("stripe", "/v1/payment_intents", mode)
    card = {**CARD, "number": "4000056655665556", "cvc": "8642"}
    status, answer = pay(customer, {**CARD_PAYMENT, "card": card}, uuid.uuid4().hex)
    assert status in (502, 503), answer
    out, err = capfd.readouterr()
    logged = out + err + "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    for where in (json.dumps(answer), logged, json.dumps(stored_payments(customer))):
        assert "4000056655665556" not in where and "56655665556" not in where
        assert not re.search(r"cvc\W{0,12}8642", where)


# ---- one gateway object per payment, whatever dies (issue 11 §2) ------------------------------------------

METHOD_BODIES = {
    "stripe": CARD_PAYMENT,
    "paypal": PAYPAL,
    "razorpay": RAZORPAY,
    "paystack": PAYSTACK,
    "nowpayments": {"method": "nowpayments", "amount": "120.00", "currency": "USD"},
}
# After a create whose answer died with the Lambda, the retry gets the same object back from Stripe and PayPal
# (same idempotency key) and from Razorpay (its orders are listed by our receipt). Paystack and NOWPayments can
# neither dedupe a create nor look one up, so the retry opens another; the lost one was never shown to anyone.
OBJECTS_AFTER_A_LOST_ANSWER = {"stripe": 1, "paypal": 1, "razorpay": 1, "paystack": 2, "nowpayments": 2}
KILL_POINTS = [
    ("before recording the gateway's object", "transact_write_items", 2, "store"),
    ("before saving the idempotent answer", "update_item", 1, "idempotency"),
]


def gateway_objects(sim: Any, provider: str, customer: str) -> list[dict[str, Any]]:
    """The objects a create made at the gateway for this customer (not payments made inside them)."""
    kind = {
        "stripe": "payment_intents",
        "paypal": "orders",
        "razorpay": "orders",
        "paystack": "transactions",
        "nowpayments": "invoices",
    }[provider]
    return [o for o in sim.objects()[provider][kind] if customer in json.dumps(o)]


def object_ref(provider: str, obj: dict[str, Any]) -> str:
    return str(obj["reference"] if provider == "paystack" else obj["id"])


@pytest.mark.parametrize(("step", "operation", "call", "layer"), KILL_POINTS, ids=[k[0] for k in KILL_POINTS])
@pytest.mark.parametrize("provider", sorted(METHOD_BODIES))
def test_a_lambda_killed_after_the_gateway_call_then_retried_keeps_the_payment_payable_once(
    customer: str, gateway_sim, inject, provider: str, step: str, operation: str, call: int, layer: str
) -> None:
    body = METHOD_BODIES[provider]
    module = load_function("make_payment")
    inject(module, {operation: {call: LambdaKilled(step)}}, layer=layer)
    key = uuid.uuid4().hex
    with pytest.raises(LambdaKilled):
        pay(customer, body, key)
    [item] = stored_payments(customer)
    assert len(gateway_objects(gateway_sim, provider, customer)) == 1

    _expire_in_progress_record(customer, key)  # the killed invocation's timeout has passed
    status, answer = pay(customer, body, key)
    assert status == 201, answer
    assert answer["payment"]["id"] == item["id"]["S"]
    assert pay(customer, body, key) == (status, answer)  # from now on the stored answer
    expected = 1 if step.endswith("answer") else OBJECTS_AFTER_A_LOST_ANSWER[provider]
    made = gateway_objects(gateway_sim, provider, customer)
    assert len(made) == expected and len(stored_payments(customer)) == 1
    if provider == "stripe":
        assert answer["payment"]["status"] == "completed" and balances(customer) == {"USD": "42.00"}
        return
    assert answer["payment"]["status"] == "pending" and answer["next_action"]

    # Paying the object first made completes the payment, whichever object the retry handed out ...
    stored = PaymentStore().require(customer, item["id"]["S"], consistent=True)
    first, *others = sorted(made, key=lambda o: str(o.get("created_at") or o.get("createdAt")))
    if provider == "nowpayments" and others:
        # ... except NOWPayments': its invoice id comes only with the answer that was lost, so nothing of ours
        # names it, and money paid into it would be a mismatch for an operator. The one handed out is paid.
        assert object_ref(provider, first) not in stored.known_gateway_refs
        first = others[0]
    assert object_ref(provider, first) in stored.known_gateway_refs
    settled_status, settled = settle_at_sim(gateway_sim, provider, object_ref(provider, first))
    assert settled_status == 200 and settled["outcome"] == "completed", settled
    paid = PaymentStore().require(customer, item["id"]["S"], consistent=True)
    assert paid.status is PaymentStatus.COMPLETED
    assert balances(customer) == {paid.currency: paid.money.format()}


@pytest.mark.parametrize("provider", sorted(METHOD_BODIES))
def test_concurrent_retries_make_one_gateway_object_or_wait(customer: str, gateway_sim, provider: str) -> None:
    """Requests that pass Powertools' idempotency record (it expired, or failed) meet at the store's claim."""
    body, key = METHOD_BODIES[provider], uuid.uuid4().hex
    module = load_function("make_payment")
    command_for = module.checkout.validate

    event = http_event("POST", "/payments", claims=claims_for(customer, "finance"), body=json.dumps(body))
    caller = caller_from_event(event)
    command = command_for(
        module.checkout.PaymentBody.model_validate(body), caller, customer, key, today=utcnow().date()
    )

    def run() -> tuple[int, Any]:
        try:
            outcome = checkout.Checkout(PaymentStore()).run(command)
        except PaymentsError as exc:
            return exc.http_status, exc.message
        http = module.answer(outcome)  # as the handler answers it
        return http["status"], http["body"]

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda _: run(), range(12)))
    assert len(stored_payments(customer)) == 1
    assert len(gateway_objects(gateway_sim, provider, customer)) == 1
    answers = [b for s, b in results if s in (201, 402)]
    assert answers, results
    assert {s for s, _ in results} <= {201, 409}, results
    assert len({b["payment"]["id"] for b in answers}) == 1
    assert len({json.dumps(b["next_action"], sort_keys=True) for b in answers}) == 1


HOLLOW = [
    ("stripe", "/v1/payment_intents"),
    ("paypal", "/v2/checkout/orders"),
    ("razorpay", "/v1/orders"),
    ("paystack", "/transaction/initialize"),
    ("nowpayments", "/v1/invoice"),
]


@pytest.mark.parametrize(("provider", "path_part"), HOLLOW)
def test_a_gateway_answer_missing_what_the_adapter_reads_is_a_502_and_the_payment_waits(
    customer: str, gateway_sim, faulty_gateway, provider: str, path_part: str
) -> None:
    gateway = faulty_gateway(provider, path_part, "hollow")
    key = uuid.uuid4().hex
    status, answer = pay(customer, METHOD_BODIES[provider], key)
    assert status == 502, answer
    assert RETRY_ADVICE in answer["message"] and answer["payment_id"], answer
    assert gateway.broken_calls >= 1
    [pending] = stored_payments(customer)
    assert pending["status"]["S"] == "pending" and pending["last_error"]["S"]
    gateway.mode = "forward"
    status, answer = pay(customer, METHOD_BODIES[provider], key)
    assert status == 201 and answer["payment"]["id"] == pending["id"]["S"], answer


def conflict(operation: str) -> ClientError:
    return cancelled(operation, "None", "TransactionConflict")


def test_a_transaction_conflict_is_retried_then_answered_503_with_retry_after(customer, gateway_sim, inject) -> None:
    module = load_function("make_payment")
    faulty = inject(module, {"transact_write_items": {n: conflict("TransactWriteItems") for n in range(1, 6)}})
    key = uuid.uuid4().hex
    event = http_event(
        "POST",
        "/payments",
        claims=claims_for(customer, "finance"),
        body=json.dumps(CARD_PAYMENT),
        headers={"Idempotency-Key": key},
    )
    answer = module.lambda_handler(event, FakeContext())
    assert answer["statusCode"] == 503 and answer["headers"]["Retry-After"] == "1", answer
    assert "retry" in json.loads(answer["body"])["message"]
    assert faulty.calls["transact_write_items"] == 5  # the first try and four more, then it gave up
    assert stored_payments(customer) == [] and sim_intents(gateway_sim, customer) == []

    inject(module, {"transact_write_items": {1: conflict("TransactWriteItems")}})  # one conflict: absorbed
    status, body = pay(customer, CARD_PAYMENT, key)
    assert status == 201 and body["payment"]["status"] == "completed", body
    assert balances(customer) == {"USD": "42.00"}
