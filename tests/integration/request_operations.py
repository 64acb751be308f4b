"""The operations whose AWS requests tests/integration/test_request_counts.py counts beyond scripts/bench_lib.py's
(which `make bench` also runs): every route family and every event-driven function. Each prepares its data
(uncounted), then makes one request, or hands one event to one handler, counted (bench_lib.counting_requests).

Event-driven functions get what Lambda would give them: the stream's own records of the writes (read from the table's
real stream with the template's filter), or the queue's own messages (received from the template's queue).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from local.queues import lambda_record as sqs_record
from local.streams import StreamPoller, stream_filters
from local.template import load_template
from payments import outbox
from payments.events import EventPublisher
from payments.models import PaymentMethod, PaymentStatus
from payments.store import PaymentStore
from scripts.bench_lib import Counted, call_handler, counting_requests, get_event, post_event, seed_payments
from tests.conftest import FakeContext, aws_client, claims_for, http_event, invoke, load_function
from tests.integration import webhook_events
from tests.integration.helpers import deliver, post
from tests.integration.test_store_contract import payment
from tests.integration.webhook_events import Delivery

OPERATOR = claims_for(None, "operator", sub="op-1")
VISA = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}


@dataclass(frozen=True)
class World:
    customer: str
    sim: Any  # the gateway simulator (tests/conftest.py's `gateway_sim`)


@dataclass(frozen=True)
class Op:
    label: str
    run: Callable[[World], Counted]
    ok: int = 200


# ---- helpers ----------------------------------------------------------------------------------------------------


def call_event(function: str, event: dict[str, Any]) -> Counted:
    """An event-driven handler's one invocation, counted: 200 if it reported no batch item failures."""
    module = load_function(function)
    with counting_requests() as counts:
        answer = module.lambda_handler(event, FakeContext())
    return Counted(500 if answer.get("batchItemFailures") else 200, answer, dict(counts))


def http(
    function: str,
    method: str,
    path: str,
    customer: str | None,
    *,
    route: str | None = None,
    params: dict[str, str] | None = None,
    body: Any = None,
    claims: dict[str, Any] | None = None,
    key: bool = False,
) -> Counted:
    headers = {"Idempotency-Key": uuid.uuid4().hex} if key else None
    event = http_event(
        method,
        path,
        route=route,
        claims=claims or claims_for(customer, "finance", email="payer@example.com"),
        body=json.dumps(body) if body is not None else None,
        headers=headers,
        path_params=params,
    )
    return call_handler(function, event)


def paid_by_card(customer: str, amount: str = "30.00") -> tuple[str, str]:
    """A card payment completed at once (the simulator's pm_card_visa): our id and its PaymentIntent."""
    body = {"method": "credit_card", "amount": amount, "currency": "USD", "payment_method": "pm_card_visa"}
    status, answer = post("make_payment", "/payments", body, customer=customer)
    assert status == 201 and answer["payment"]["status"] == "completed", answer
    ref = PaymentStore().require(customer, answer["payment"]["id"], consistent=True).gateway_ref or ""
    return answer["payment"]["id"], ref


def pay(method: str, amount: str, currency: str, **extra: Any) -> Callable[[World], Counted]:
    def run(world: World) -> Counted:
        body = {"method": method, "amount": amount, "currency": currency, **extra}
        return call_handler("make_payment", post_event("/payments", world.customer, body))

    return run


def played(sim: Any, provider: str, ref: str, outcome: str, kinds: list[str]) -> list[Delivery]:
    """Play `outcome` at the simulator: the signed webhooks of `kinds` it sent about it, in order."""
    seen = len(sim.deliveries())
    sim.settle(provider, ref, outcome)
    deadline = time.monotonic() + 10
    while True:
        sent = [d for d in sim.deliveries()[seen:] if d["event_type"] in kinds]
        if len(sent) >= len(kinds) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [d["event_type"] for d in sent] == kinds
    return [Delivery(d["body"].encode(), dict(d["headers"])) for d in sent]


def webhook(provider: str, delivery: Delivery) -> Counted:
    event = http_event(
        "POST",
        f"/webhooks/{provider}",
        route="/webhooks/{provider}",
        body=delivery.body.decode(),
        headers=delivery.headers,
        path_params={"provider": provider},
    )
    return call_handler("webhooks", event)


def save_card(customer: str) -> str:
    status, body = post("account", "/payment-methods", {"card": VISA}, customer=customer)
    assert status == 201 and body["state"] == "active", body
    return str(body["id"])


# ---- POST /payments, per method ---------------------------------------------------------------------------------


def pay_with_saved_card(world: World) -> Counted:
    card_id = save_card(world.customer)
    body = {"method": "credit_card", "amount": "20.00", "currency": "USD", "saved_payment_method": card_id}
    return call_handler("make_payment", post_event("/payments", world.customer, body))


# ---- webhooks, per event kind -----------------------------------------------------------------------------------


def stripe_failed(world: World) -> Counted:
    """payment_intent.payment_failed of a pending card payment: cancelled with its reason."""
    from payments.models import utcnow
    from tests.integration.helpers import with_gateway_object
    from tests.integration.test_store_contract import payment

    store = PaymentStore()
    pending = payment(world.customer, at=utcnow(), amount_minor=4200, currency="EUR", description="Top-up")
    store.add(pending)
    pending = with_gateway_object(pending, "stripe", "pi_" + uuid.uuid4().hex[:20], store)
    return webhook("stripe", webhook_events.stripe("failure", pending))


def stripe_duplicate(world: World) -> Counted:
    payment_id, _ = paid_by_card(world.customer)
    payment_ = PaymentStore().require(world.customer, payment_id, consistent=True)
    delivery = webhook_events.stripe("success", payment_)
    assert deliver("stripe", delivery)[0] == 200
    return webhook("stripe", delivery)


def stripe_refunded(world: World) -> Counted:
    """charge.refunded of a refund made at Stripe (not through our refund route): a refund entry, once."""
    _, ref = paid_by_card(world.customer)
    [refunded] = played(world.sim, "stripe", ref, "refund", ["charge.refunded"])
    return webhook("stripe", refunded)


def stripe_dispute(step: int) -> Callable[[World], Counted]:
    """charge.dispute.created (0) or .funds_withdrawn (1: the chargeback entry takes the money back)."""

    def run(world: World) -> Counted:
        _, ref = paid_by_card(world.customer)
        deliveries = played(
            world.sim, "stripe", ref, "dispute", ["charge.dispute.created", "charge.dispute.funds_withdrawn"]
        )
        for earlier in deliveries[:step]:
            assert deliver("stripe", earlier)[0] == 200
        return webhook("stripe", deliveries[step])

    return run


def razorpay_paid_with_fee(world: World) -> Counted:
    status, body = post(
        "make_payment",
        "/payments",
        {"method": "razorpay", "amount": "300.00", "currency": "INR"},
        customer=world.customer,
    )
    assert status == 201, body
    [order] = [o for o in world.sim.objects()["razorpay"]["orders"] if o["receipt"] == body["payment"]["id"]]
    seen = len(world.sim.deliveries())
    result = world.sim.settle("razorpay", order["id"], "success")
    [record] = [r for r in world.sim.deliveries()[seen:] if r.get("event") == result["event"]] or [
        r for r in world.sim.deliveries()[seen:] if r["provider"] == "razorpay"
    ][:1]
    return webhook("razorpay", Delivery(record["body"].encode(), dict(record["headers"])))


# ---- operator routes --------------------------------------------------------------------------------------------

ADMIN = "/admin/customers/{customer_id}/payments/{id}"


def operator_refund(world: World) -> Counted:
    payment_id, _ = paid_by_card(world.customer)
    path = f"/admin/customers/{world.customer}/payments/{payment_id}/refunds"
    return http(
        "admin",
        "POST",
        path,
        None,
        route=ADMIN + "/refunds",
        claims=OPERATOR,
        key=True,
        params={"customer_id": world.customer, "id": payment_id},
        body={"amount": "9.00", "reason": "goodwill"},
    )


def operator_complete(world: World) -> Counted:
    status, body = post(
        "make_payment",
        "/payments",
        {"method": "bank_transfer", "amount": "25.00", "currency": "EUR"},
        customer=world.customer,
    )
    assert status == 201, body
    payment_id = body["payment"]["id"]
    path = f"/admin/customers/{world.customer}/payments/{payment_id}/complete"
    return http(
        "admin",
        "POST",
        path,
        None,
        route=ADMIN + "/complete",
        claims=OPERATOR,
        key=True,
        params={"customer_id": world.customer, "id": payment_id},
    )


# ---- the customer's account routes ------------------------------------------------------------------------------


def save_card_route(world: World) -> Counted:
    return call_handler("account", post_event("/payment-methods", world.customer, {"card": VISA}))


def list_cards(world: World) -> Counted:
    save_card(world.customer)
    return http("account", "GET", "/payment-methods", world.customer)


def remove_card(world: World) -> Counted:
    card_id = save_card(world.customer)
    return http(
        "account",
        "DELETE",
        f"/payment-methods/{card_id}",
        world.customer,
        route="/payment-methods/{id}",
        params={"id": card_id},
    )


def put_alert(world: World) -> Counted:
    body = {"threshold": "10.00", "currency": "USD", "emails": ["ops@example.com"]}
    return http("account", "PUT", "/alerts/low-balance", world.customer, body=body)


def put_auto_topup(world: World) -> Counted:
    card_id = save_card(world.customer)
    body = {"enabled": True, "payment_method_id": card_id, "threshold": "10.00", "amount": "25.00", "max_per_day": 3}
    return http("account", "PUT", "/auto-topup", world.customer, body=body)


def receipt(world: World) -> Counted:
    payment_id, _ = paid_by_card(world.customer)
    return http(
        "receipts",
        "GET",
        f"/payments/{payment_id}/receipt",
        world.customer,
        route="/payments/{id}/receipt",
        params={"id": payment_id},
    )


# ---- the stream: publish_events ---------------------------------------------------------------------------------


@contextmanager
def stream_records(customer: str) -> Iterator[list[dict[str, Any]]]:
    """The stream records (as Lambda passes them, filtered by the template) of the writes made inside the block about
    `customer`, in stream order, once the block ends."""
    store = PaymentStore()
    found: list[dict[str, Any]] = []

    def keep(event: dict[str, Any]) -> dict[str, Any]:
        for record in event["Records"]:
            image = record["dynamodb"].get("NewImage") or {}
            if customer in (
                record["dynamodb"]["Keys"]["PK"]["S"].removeprefix("CUST#"),
                image.get("customer_id", {}).get("S"),
            ):
                found.append(record)
        return {"batchItemFailures": []}

    poller = StreamPoller(
        store.table,
        keep,
        filters=stream_filters(load_template(), "PublishEventsFunction"),
        start="LATEST",
        log=lambda line: None,
    )
    records: list[dict[str, Any]] = []
    yield records
    poller.drain()
    # moto's own record of an item's creation (keys only, before the first: DynamoDB writes none) is left out
    records.extend(r for r in found if set(r["dynamodb"].get("NewImage") or ()) - {"PK", "SK"})


def publish_batch(count: int) -> Callable[[World], Counted]:
    """One stream batch of `count` payments written completed: `count` outbox records and `count` balance records."""

    def run(world: World) -> Counted:
        store = PaymentStore()
        with stream_records(world.customer) as records:
            for _ in range(count):
                store.add(payment(world.customer, PaymentStatus.COMPLETED, amount_minor=1000))
        assert len(records) == 2 * count, [r["dynamodb"]["Keys"] for r in records]
        return call_event("publish_events", {"Records": records})

    return run


def low_balance_crossing(world: World) -> Counted:
    """A purchase takes the balance under the alert's threshold: the balance record fires it (balance.low written to
    the outbox), then the publisher is handed that record alone."""
    store = PaymentStore()
    store.add(payment(world.customer, PaymentStatus.COMPLETED, amount_minor=2000, method=PaymentMethod.VOUCHER))
    assert put_alert(world).status == 200
    with stream_records(world.customer) as records:
        store.add(payment(world.customer, PaymentStatus.COMPLETED, amount_minor=-1500, method=PaymentMethod.PURCHASE))
    balance = [r for r in records if r["dynamodb"]["Keys"]["SK"]["S"] == "BALANCE"]
    return call_event("publish_events", {"Records": balance})


def autotopup_crossing(world: World) -> Counted:
    """A purchase takes the balance under the auto top-up's threshold: the balance record starts one charge."""
    store = PaymentStore()
    store.add(payment(world.customer, PaymentStatus.COMPLETED, amount_minor=2000, method=PaymentMethod.VOUCHER))
    assert put_auto_topup(world).status == 200
    with stream_records(world.customer) as records:
        store.add(payment(world.customer, PaymentStatus.COMPLETED, amount_minor=-1500, method=PaymentMethod.PURCHASE))
    balance = [r for r in records if r["dynamodb"]["Keys"]["SK"]["S"] == "BALANCE"]
    counted = call_event("publish_events", {"Records": balance})
    assert any(p.auto_topup for p in store.stream(world.customer)), "no auto top-up started"
    return counted


# ---- the queues: notify, deliver_webhooks, autotopup ------------------------------------------------------------


def queue_message(queue: str, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The message of `queue` (a template queue's logical name) whose JSON body matches, as Lambda passes it; what
    else is there is deleted."""
    url = _queue_url(queue)
    sqs = aws_client("sqs")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for _ in range(100):
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0)
        for message in answer.get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            if match(json.loads(message["Body"])):
                return sqs_record(message, arn, "us-east-1")
        time.sleep(0.02)
    raise AssertionError(f"nothing matching reached {queue}")


def _queue_url(queue: str) -> str:
    import os

    names = {"WebhookDeliveries": os.environ["WEBHOOK_QUEUE_URL"]}
    if queue in names:
        return names[queue]
    return str(aws_client("sqs").get_queue_url(QueueName=_physical(queue))["QueueUrl"])


def _physical(queue: str) -> str:
    urls = aws_client("sqs").list_queues().get("QueueUrls", [])
    [url] = [u for u in urls if u.rsplit("/", 1)[1].startswith(queue) or queue in u.rsplit("/", 1)[1]]
    return url.rsplit("/", 1)[1]


def published(event: outbox.OutboxEvent) -> None:
    import os

    assert EventPublisher(os.environ["EVENT_BUS_NAME"], aws_client("events")).publish([event]) == (1, None)


def notify_receipt(world: World) -> Counted:
    """payment.completed of a top-up whose customer has receipts on: the receipt PDF e-mailed, once."""
    from tests.integration.test_receipt_route_and_emails import save_settings

    store = PaymentStore()
    save_settings(store, world.customer, email_receipts=True, receipt_emails=("books@example.com",))
    paid = payment(world.customer, PaymentStatus.COMPLETED, payer_email="payer@example.com", balance_after_minor=5000)
    store.add(paid)
    event = store.outbox_event(outbox.event_id(paid))
    assert event is not None
    published(event)
    record = queue_message("NotifyQueue", lambda body: body["detail"].get("event_id") == event.event_id)
    return call_event("notify", {"Records": [record]})


def notify_low_balance(world: World) -> Counted:
    store = PaymentStore()
    store.add(payment(world.customer, PaymentStatus.COMPLETED, amount_minor=2000, method=PaymentMethod.VOUCHER))
    assert put_alert(world).status == 200
    with stream_records(world.customer) as records:
        store.add(payment(world.customer, PaymentStatus.COMPLETED, amount_minor=-1500, method=PaymentMethod.PURCHASE))
    balance = [r for r in records if r["dynamodb"]["Keys"]["SK"]["S"] == "BALANCE"]
    with stream_records(world.customer) as written:
        assert call_event("publish_events", {"Records": balance}).status == 200
    [low] = [e for r in written if (e := _event_of(r)) is not None and e.detail_type == outbox.BALANCE_LOW]
    published(low)
    record = queue_message("NotifyQueue", lambda body: body["detail"].get("event_id") == low.event_id)
    return call_event("notify", {"Records": [record]})


def _event_of(record: dict[str, Any]) -> outbox.OutboxEvent | None:
    from payments.store.outbox_items import event_of_image

    image = record["dynamodb"].get("NewImage") or {}
    return event_of_image(image) if image.get("type") == {"S": "outbox-event"} else None


@contextmanager
def endpoint(customer: str) -> Iterator[dict[str, Any]]:
    """An outbound webhook endpoint of `customer` at a local receiver answering 200, deleted afterwards."""
    from tests.webhook_receiver import receiver

    routes = load_function("webhook_endpoints")
    with receiver() as hooks:
        body = {"url": hooks.url, "events": ["*"], "customer_id": customer}
        status, created = invoke(
            routes, http_event("POST", "/admin/webhook-endpoints", claims=OPERATOR, body=json.dumps(body))
        )
        assert status == 201, created
        try:
            yield {"endpoint": created, "receiver": hooks}
        finally:
            path = f"/admin/webhook-endpoints/{created['id']}"
            invoke(
                routes,
                http_event(
                    "DELETE",
                    path,
                    route="/admin/webhook-endpoints/{id}",
                    claims=OPERATOR,
                    path_params={"id": created["id"]},
                ),
            )


def _an_event(customer: str) -> outbox.OutboxEvent:
    payment_id = f"pay_{uuid.uuid4().hex[:20]}"
    body = json.dumps({"id": payment_id, "status": "completed", "amount": "10.00", "currency": "EUR"})
    return outbox.OutboxEvent(
        f"evt_{uuid.uuid4().hex}", outbox.COMPLETED, customer, payment_id, "2026-03-01T12:00:00.000Z", body
    )


def webhook_fan_out(world: World) -> Counted:
    """The bus's event on the delivery queue, for a customer with one endpoint: one delivery record, one task.
    The fan-out reads every endpoint (one partition), so an endpoint an earlier test on this process left would
    be read too: none is left when this is counted."""
    from payments.store import PaymentStore
    from payments.store.webhook_items import delete_endpoint, list_endpoints

    table = PaymentStore()
    for left in list_endpoints(table):
        delete_endpoint(table, left.endpoint_id)
    with endpoint(world.customer):
        event = _an_event(world.customer)
        published(event)
        record = queue_message(
            "WebhookDeliveries", lambda body: (body.get("detail") or {}).get("event_id") == event.event_id
        )
        return call_event("deliver_webhooks", {"Records": [record]})


def webhook_attempt(world: World) -> Counted:
    """One attempt that the endpoint answers 200: claimed, the secret decrypted, POSTed, recorded."""
    with endpoint(world.customer) as made:
        event = _an_event(world.customer)
        published(event)
        fan_out = queue_message(
            "WebhookDeliveries", lambda body: (body.get("detail") or {}).get("event_id") == event.event_id
        )
        assert call_event("deliver_webhooks", {"Records": [fan_out]}).status == 200
        task = queue_message(
            "WebhookDeliveries", lambda body: event.event_id in json.dumps(body) and "detail" not in body
        )
        counted = call_event("deliver_webhooks", {"Records": [task]})
        assert len(made["receiver"].received) == 1
        return counted


def publish_new_events(customer: str, kind: str, run: Callable[[], Any]) -> outbox.OutboxEvent:
    """What `run` writes to the outbox of `kind` (of an auto top-up, for a payment's event), put on the bus as the
    publisher would."""
    with stream_records(customer) as written:
        run()
    events = [e for r in written if (e := _event_of(r)) is not None and e.detail_type == kind]
    if kind != outbox.AUTOTOPUP_CHARGE:
        events = [e for e in events if json.loads(e.body).get("auto_topup")]
    [event] = events
    published(event)
    return event


def autotopup_charge(world: World) -> Counted:
    """The autotopup.charge message a crossing started: the saved card charged off-session at the simulator."""
    publish_new_events(world.customer, outbox.AUTOTOPUP_CHARGE, lambda: autotopup_crossing(world))
    record = queue_message(
        "AutoTopupQueue",
        lambda body: (
            body.get("detail-type") == outbox.AUTOTOPUP_CHARGE and body["detail"].get("customer_id") == world.customer
        ),
    )
    return call_event("autotopup", {"Records": [record]})


def autotopup_outcome(world: World) -> Counted:
    """The auto top-up payment's payment.completed: its outcome recorded on the auto top-up, once."""
    publish_new_events(world.customer, outbox.COMPLETED, lambda: autotopup_charge(world))
    [topup] = [p for p in PaymentStore().stream(world.customer) if p.auto_topup]
    record = queue_message(
        "AutoTopupQueue",
        lambda body: (
            body.get("detail-type") == outbox.COMPLETED and (body["detail"].get("payment") or {}).get("id") == topup.id
        ),
    )
    return call_event("autotopup", {"Records": [record]})


def summary(world: World) -> Counted:
    seed_payments(world.customer, 60)
    return call_handler("list_payments", get_event("/payments/summary", world.customer))


OPERATIONS: tuple[Op, ...] = (
    Op("GET /payment-options", lambda w: call_handler("make_payment", get_event("/payment-options", w.customer))),
    Op("GET /payments/summary, 60 payments", summary),
    Op(
        "POST /payments, card by payment method (pm_card_visa)",
        pay("credit_card", "42.00", "USD", payment_method="pm_card_visa"),
        201,
    ),
    Op("POST /payments, saved card", pay_with_saved_card, 201),
    Op("POST /payments, PayPal (order, redirect)", pay("paypal", "23.99", "USD"), 201),
    Op("POST /payments, Razorpay (order)", pay("razorpay", "499.00", "INR"), 201),
    Op("POST /payments, Paystack (redirect)", pay("paystack", "5000.00", "NGN"), 201),
    Op("POST /payments, NOWPayments (invoice)", pay("nowpayments", "120.00", "EUR"), 201),
    Op("POST /webhooks/stripe, payment failed", stripe_failed),
    Op("POST /webhooks/stripe, duplicate delivery", stripe_duplicate),
    Op("POST /webhooks/stripe, charge refunded at Stripe", stripe_refunded),
    Op("POST /webhooks/stripe, dispute opened", stripe_dispute(0)),
    Op("POST /webhooks/stripe, dispute funds withdrawn (chargeback)", stripe_dispute(1)),
    Op("POST /webhooks/razorpay, order paid (fee recorded)", razorpay_paid_with_fee),
    Op("POST /admin/.../refunds, operator refund (Stripe)", operator_refund, 201),
    Op("POST /admin/.../complete, bank transfer received", operator_complete),
    Op("POST /payment-methods, save a card", save_card_route, 201),
    Op("GET /payment-methods", list_cards),
    Op("DELETE /payment-methods/{id}", remove_card, 204),
    Op("PUT /alerts/low-balance", put_alert),
    Op("PUT /auto-topup", put_auto_topup),
    Op("GET /payments/{id}/receipt", receipt),
    Op("publish_events, stream batch of 10 completed payments (per payment)", publish_batch(10)),
    Op("publish_events, low-balance crossing", low_balance_crossing),
    Op("publish_events, auto top-up crossing", autotopup_crossing),
    Op("notify, receipt e-mail", notify_receipt),
    Op("notify, low-balance e-mail", notify_low_balance),
    Op("deliver_webhooks, event to 1 endpoint (fan-out)", webhook_fan_out),
    Op("deliver_webhooks, one attempt delivered", webhook_attempt),
    Op("autotopup, off-session charge", autotopup_charge),
    Op("autotopup, outcome of the payment", autotopup_outcome),
)
