"""Outbound webhook endpoints (docs/webhooks-outbound.md#the-routes): operators register a URL for some event
types (and optionally one customer), list them, delete them, and read each one's deliveries.

Registration checks the URL by the SSRF rules (`payments.outbound_http`), makes the endpoint's signing secret,
stores only its KMS ciphertext (`payments.kms`), and hands the secret back this once.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from payments import outbox
from payments.errors import InvalidInput, NotFound
from payments.models import iso_z, utcnow
from payments.outbound_http import UrlRefused, check_url

if TYPE_CHECKING:
    from payments.kms import SecretBox
    from payments.store import PaymentStore
    from payments.store.webhook_items import Delivery, WebhookEndpoint

ENDPOINT_PREFIX = "whe_"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
ALL_EVENTS = "*"
# What an endpoint may ask for: the events the service publishes (balance.low among them), and the auto top-up ones.
EVENT_TYPES = outbox.DETAIL_TYPES
MAX_EVENTS = 20
DELIVERIES_LIMIT = 100


class EndpointBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, description="https:// URL the events are POSTed to")
    events: list[str] = Field(min_length=1, max_length=MAX_EVENTS, description=f"detail-types, or {ALL_EVENTS!r}")
    customer_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="only this customer's events (default: every one)"
    )


class EndpointOut(BaseModel):
    id: str
    url: str
    events: list[str]
    customer_id: str | None = None
    created_at: str


class EndpointCreatedOut(EndpointOut):
    secret: str = Field(description="The signing secret: shown this once, never again")


class EndpointsOut(BaseModel):
    endpoints: list[EndpointOut]


class AttemptOut(BaseModel):
    attempt: int
    at: str
    status: int | None = Field(None, description="The HTTP status the endpoint answered")
    error: str | None = Field(None, description="What went wrong without an answer: timeout, connection failed")
    duration_ms: int


class DeliveryOut(BaseModel):
    event_id: str
    type: str
    customer_id: str | None = None
    state: str = Field(description="pending, delivered, failed (sent to the dead-letter queue) or cancelled")
    opened_at: str
    delivered_at: str | None = None
    attempts: list[AttemptOut]


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut]


def endpoint_out(endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut(
        id=endpoint.endpoint_id,
        url=endpoint.url,
        events=list(endpoint.events),
        customer_id=endpoint.customer_id,
        created_at=endpoint.created_at,
    )


def delivery_out(delivery: Delivery) -> DeliveryOut:
    return DeliveryOut(
        event_id=delivery.event_id,
        type=delivery.detail_type,
        customer_id=delivery.customer_id,
        state=delivery.state.value,
        opened_at=delivery.opened_at,
        delivered_at=delivery.delivered_at,
        attempts=[
            AttemptOut(attempt=a.number, at=a.at, status=a.status, error=a.error, duration_ms=a.duration_ms)
            for a in delivery.log
        ],
    )


def secret_context(endpoint_id: str) -> dict[str, str]:
    """The KMS encryption context of an endpoint's secret: its ciphertext decrypts for this endpoint only."""
    return {"purpose": "webhook-signing-secret", "endpoint_id": endpoint_id}


def validate(body: EndpointBody, *, allow_loopback: bool) -> tuple[str, tuple[str, ...]]:
    """The URL and the event types, or InvalidInput naming every field that is wrong (nothing is stored)."""
    problems: list[tuple[str, str]] = []
    try:
        check_url(body.url, allow_loopback=allow_loopback)
    except UrlRefused as exc:
        problems.append(("url", f"url {exc}"))
    unknown = [name for name in body.events if name != ALL_EVENTS and name not in EVENT_TYPES]
    if unknown:
        problems.append(
            ("events", f"events: unknown event type {unknown[0]!r}; one of {', '.join(EVENT_TYPES)} or {ALL_EVENTS!r}")
        )
    if body.customer_id is not None and not body.customer_id.strip():
        problems.append(("customer_id", "customer_id must not be blank"))
    if problems:
        raise InvalidInput.of(problems)
    return body.url, tuple(dict.fromkeys(body.events))


def register(
    store: PaymentStore, box: SecretBox, body: EndpointBody, actor: str, *, allow_loopback: bool
) -> EndpointCreatedOut:
    """Store a new endpoint; its answer holds the secret, which is never shown again."""
    from payments.store.webhook_items import WebhookEndpoint

    url, events = validate(body, allow_loopback=allow_loopback)
    endpoint_id = ENDPOINT_PREFIX + secrets.token_hex(12)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint(
        endpoint_id=endpoint_id,
        url=url,
        events=events,
        customer_id=body.customer_id,
        secret_ciphertext=box.seal(secret, secret_context(endpoint_id)),
        created_at=iso_z(utcnow()),
        created_by=actor,
    )
    store.put_webhook_endpoint(endpoint)
    return EndpointCreatedOut(**endpoint_out(endpoint).model_dump(), secret=secret)


def list_all(store: PaymentStore) -> EndpointsOut:
    return EndpointsOut(endpoints=[endpoint_out(e) for e in store.webhook_endpoints()])


def delete(store: PaymentStore, endpoint_id: str) -> None:
    """NotFound if there is no such endpoint. Deliveries not yet made stop at their next attempt."""
    if not store.delete_webhook_endpoint(endpoint_id):
        raise NotFound(f"no webhook endpoint {endpoint_id!r}")


def deliveries(store: PaymentStore, endpoint_id: str, *, limit: int = DELIVERIES_LIMIT) -> DeliveriesOut:
    if store.webhook_endpoint(endpoint_id) is None:
        raise NotFound(f"no webhook endpoint {endpoint_id!r}")
    found = store.webhook_deliveries(endpoint_id, limit=limit)
    return DeliveriesOut(deliveries=[delivery_out(d) for d in found])
