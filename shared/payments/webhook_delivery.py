"""Delivering outbound webhooks (docs/webhooks-outbound.md): the service's events, POSTed signed to the endpoints
that asked for them, retried with exponential backoff and full jitter for 24 hours, then dead-lettered.

One SQS queue carries two kinds of message to the delivery function:

- an event as the EventBridge rule put it there (`detail-type`, `detail`): `fan_out` opens one delivery record
  per matching endpoint (conditional: one per event and endpoint, whatever comes twice) and sends one task per
  endpoint;
- a task (`webhook_delivery`: endpoint, event, attempt number, when the delivery opened, not before when): `attempt`
  claims the attempt on the record, POSTs, records the outcome, and sends the next attempt's task delayed (SQS
  delays at most 15 minutes: a longer wait is several hops of the same task) or, once the window has closed,
  the task to the dead-letter queue, the delivery recorded failed.

Delivery is at least once: an attempt whose answer was lost (a timeout after the receiver took it) is retried,
so receivers dedupe on the event id. A duplicate message never causes a second successful POST: once an attempt
succeeded the record says delivered and nothing further starts (`store.webhook_items`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from payments import outbound_http
from payments.kms import SecretUnreadable
from payments.models import iso_z
from payments.webhook_endpoints import ALL_EVENTS, secret_context

if TYPE_CHECKING:
    from payments.config import WebhookSettings
    from payments.kms import SecretBox
    from payments.queues import Queue
    from payments.store import PaymentStore
    from payments.store.webhook_items import Delivery, WebhookEndpoint

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Payments-Signature"
EVENT_ID_HEADER = "Payments-Event-Id"
TOLERANCE_SECONDS = 300  # what receivers should accept: a signature's time at most 5 minutes old
TASK = "webhook_delivery"
LEASE_MARGIN_SECONDS = 30  # an attempt's claim outlives its request by this much


# ---- signing --------------------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, now: float, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """What a receiver does (README's snippet does the same): the header's HMAC over `t.body`, and t recent."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    expected = signature(secret, timestamp, body).rpartition("v1=")[2]
    return abs(now - timestamp) <= tolerance and hmac.compare_digest(expected, fields.get("v1", ""))


def payload(event: Mapping[str, Any]) -> bytes:
    """The body POSTed: `{"id": event_id, "type": detail-type, "created": occurred_at, "data": detail}`, the same
    bytes on every attempt."""
    detail = event["detail"]
    document = {
        "id": detail["event_id"],
        "type": event["detail-type"],
        "created": detail["occurred_at"],
        "data": detail,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")


# ---- the retry schedule ---------------------------------------------------------------------------


def backoff_ceiling(attempt: int, *, base: float, cap: float) -> float:
    """The longest wait after failed attempt `attempt` (1, 2, ...): base · 2^(attempt-1), at most `cap`."""
    return min(cap, base * 2.0 ** min(attempt - 1, 64))


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: a wait drawn uniformly between 0 and the ceiling."""
    return rng.uniform(0, backoff_ceiling(attempt, base=base, cap=cap))


def next_attempt_at(
    attempt: int, *, opened_at: float, now: float, settings: WebhookSettings, rng: random.Random
) -> float | None:
    """When the attempt after failed attempt `attempt` is due; None once the window (24 h after the delivery
    opened) has closed: the delivery goes to the dead-letter queue. The last attempt is at the window's end."""
    closes = opened_at + settings.retry_window_seconds
    if now >= closes:
        return None
    wait = backoff_delay(attempt, base=settings.retry_base_seconds, cap=settings.retry_cap_seconds, rng=rng)
    return min(now + wait, closes)


# ---- tasks ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Task:
    endpoint_id: str
    event_id: str
    attempt: int
    opened_at: float  # epoch seconds: the window's start
    not_before: float  # epoch seconds
    event: dict[str, Any]  # as the EventBridge rule delivered it

    def message(self, **extra: Any) -> dict[str, Any]:
        meta = {
            "endpoint_id": self.endpoint_id,
            "event_id": self.event_id,
            "attempt": self.attempt,
            "opened_at": self.opened_at,
            "not_before": self.not_before,
        }
        return {TASK: meta, "event": self.event, **extra}

    @classmethod
    def of(cls, message: Mapping[str, Any]) -> Task:
        meta = message[TASK]
        return cls(
            endpoint_id=str(meta["endpoint_id"]),
            event_id=str(meta["event_id"]),
            attempt=int(meta["attempt"]),
            opened_at=float(meta["opened_at"]),
            not_before=float(meta["not_before"]),
            event=dict(message["event"]),
        )


class TryLater(Exception):
    """Another process holds this attempt right now: the message comes back after its visibility timeout."""


def matches(endpoint: WebhookEndpoint, detail_type: str, customer_id: str | None) -> bool:
    wanted = ALL_EVENTS in endpoint.events or detail_type in endpoint.events
    return wanted and (endpoint.customer_id is None or endpoint.customer_id == customer_id)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _iso(epoch: float) -> str:
    return iso_z(datetime.fromtimestamp(epoch, UTC))


class Deliverer:
    """The delivery function's work: `handle` one message of its queue; the word it answers is logged."""

    def __init__(
        self,
        settings: WebhookSettings,
        store: PaymentStore,
        box: SecretBox,
        queue: Queue,
        dead_letters: Queue,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings, self.store, self.box, self.queue, self.dead_letters = settings, store, box, queue, dead_letters
        self.clock = clock
        self.rng = rng or random.SystemRandom()
        self._secrets: dict[str, tuple[str, str]] = {}  # endpoint id -> (ciphertext, secret), this container's

    def handle(self, message: Mapping[str, Any]) -> str:
        if TASK in message:
            return self.attempt(Task.of(message))
        if isinstance(message.get("detail"), Mapping) and "detail-type" in message:
            return self.fan_out(message)
        raise ValueError("neither an event nor a delivery task")  # kept: retried, then the queue's redrive

    # ---- an event: one delivery per matching endpoint ---------------------------------------------

    def fan_out(self, event: Mapping[str, Any]) -> str:
        from payments.store.webhook_items import DELIVERY_TTL_SECONDS, Delivery, DeliveryState

        detail = event["detail"]
        event_id, detail_type = str(detail["event_id"]), str(event["detail-type"])
        customer_id = str(detail["customer_id"]) if detail.get("customer_id") else None
        now = self.clock()
        tasks: list[dict[str, Any]] = []
        for endpoint in self.store.webhook_endpoints():
            if not matches(endpoint, detail_type, customer_id):
                continue
            opened = Delivery(
                endpoint.endpoint_id, event_id, detail_type, customer_id, DeliveryState.PENDING, _iso(now)
            )
            delivery, _ = self.store.open_webhook_delivery(opened, int(now) + DELIVERY_TTL_SECONDS)
            # Only a delivery no attempt has finished gets its first task: an event delivered again finds the
            # others delivered, failed, or retrying already (a duplicate first task is dropped at its claim).
            if delivery.state is DeliveryState.PENDING and delivery.finished == 0:
                task = Task(endpoint.endpoint_id, event_id, 1, _epoch(delivery.opened_at), now, dict(event))
                tasks.append(task.message())
        self.queue.send_all(tasks)
        return f"fanned out to {len(tasks)}"

    # ---- a task: one attempt ----------------------------------------------------------------------

    def attempt(self, task: Task) -> str:
        now = self.clock()
        if task.not_before - now > 1:  # longer than SQS could delay it: one more hop
            self.queue.send(task.message(), delay_seconds=math.ceil(task.not_before - now))
            return "waiting"
        endpoint = self.store.webhook_endpoint(task.endpoint_id)
        if endpoint is None:
            self.store.cancel_webhook_delivery(task.endpoint_id, task.event_id)
            return "cancelled"
        lease_ms = int((self.settings.timeout_seconds + LEASE_MARGIN_SECONDS) * 1000)
        if not self.store.claim_webhook_attempt(
            task.endpoint_id, task.event_id, task.attempt, int(now * 1000), lease_ms
        ):
            return self._not_claimed(task)
        body = payload(task.event)
        try:
            secret = self._secret(endpoint)
        except SecretUnreadable:
            result = outbound_http.PostResult(None, "the endpoint's secret could not be decrypted", 0)
        else:
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "payments-webhooks/1",
                EVENT_ID_HEADER: task.event_id,
                SIGNATURE_HEADER: signature(secret, int(now), body),
                "Payments-Delivery-Attempt": str(task.attempt),
            }
            result = outbound_http.post(
                endpoint.url,
                body,
                headers,
                timeout=self.settings.timeout_seconds,
                max_bytes=self.settings.max_response_bytes,
                allow_loopback=self.settings.allow_loopback,
            )
        return self._record(task, now, result)

    def _secret(self, endpoint: WebhookEndpoint) -> str:
        cached = self._secrets.get(endpoint.endpoint_id)
        if cached is None or cached[0] != endpoint.secret_ciphertext:
            secret = self.box.open(endpoint.secret_ciphertext, secret_context(endpoint.endpoint_id))
            cached = self._secrets[endpoint.endpoint_id] = (endpoint.secret_ciphertext, secret)
        return cached[1]

    def _not_claimed(self, task: Task) -> str:
        """The claim failed: a stale or duplicate task is dropped; an attempt in flight elsewhere comes again."""
        from payments.store.webhook_items import DeliveryState

        delivery: Delivery | None = self.store.webhook_delivery(task.endpoint_id, task.event_id)
        if delivery is None or delivery.state is not DeliveryState.PENDING or delivery.finished >= task.attempt:
            return "duplicate"
        if delivery.attempts > task.attempt:
            return "duplicate"
        raise TryLater(f"attempt {task.attempt} of {task.event_id} to {task.endpoint_id} is not claimable yet")

    def _record(self, task: Task, now: float, result: outbound_http.PostResult) -> str:
        from payments.store.webhook_items import Attempt, DeliveryState

        attempt = Attempt(task.attempt, _iso(now), result.status, result.error, result.duration_ms)
        outcome = {"endpoint_id": task.endpoint_id, "event_id": task.event_id, "attempt": task.attempt}
        logger.info("webhook attempt", extra={**outcome, "status": result.status, "error": result.error})
        if result.ok:
            state, word, delivered_at = DeliveryState.DELIVERED, "delivered", _iso(self.clock())
        else:
            due = next_attempt_at(
                task.attempt, opened_at=task.opened_at, now=self.clock(), settings=self.settings, rng=self.rng
            )
            delivered_at = None
            # The next task (or the dead letter) is sent before the outcome is recorded: if recording fails the
            # message comes again and the attempt is retried; the chain of attempts is never lost.
            if due is None:
                reason = f"no 2xx in {task.attempt} attempts over {self.settings.retry_window_seconds:.0f} s"
                last = result.error or f"HTTP {result.status}"
                self.dead_letters.send(task.message(reason=reason, last_outcome=last))
                state, word = DeliveryState.FAILED, "failed"
            else:
                following = Task(task.endpoint_id, task.event_id, task.attempt + 1, task.opened_at, due, task.event)
                self.queue.send(following.message(), delay_seconds=math.ceil(max(0.0, due - self.clock())))
                state, word = DeliveryState.PENDING, "retrying"
        if not self.store.finish_webhook_attempt(
            task.endpoint_id, task.event_id, attempt, state, delivered_at=delivered_at
        ):
            logger.warning("webhook attempt recorded by another process", extra=outcome)
        return word
