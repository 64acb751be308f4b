"""Operator routes of outbound webhooks (docs/webhooks-outbound.md#the-routes): register an endpoint (its signing
secret shown once), list them (never a secret), delete one, read one's deliveries.

Only the `operator` group may call them.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from payments import api, webhook_endpoints
from payments.config import WebhookSettings, load
from payments.identity import OPERATORS
from payments.kms import SecretBox
from payments.store import PaymentStore
from payments.webhook_endpoints import DeliveriesOut, EndpointBody, EndpointCreatedOut, EndpointsOut

app, logger, tracer, metrics = api.build("webhook_endpoints")
SETTINGS = load(WebhookSettings)  # the environment, checked at cold start
store = PaymentStore()
box = SecretBox(SETTINGS.key_id)
EndpointId = Annotated[str, Path(min_length=1, max_length=64)]


def _operator() -> str:
    caller = api.caller(app)
    caller.require(OPERATORS)
    return caller.actor


@app.post(
    "/admin/webhook-endpoints",
    tags=["admin"],
    summary="Register an outbound webhook endpoint",
    responses=api.responses(
        {201: ("The endpoint and its signing secret: shown this once, never again", EndpointCreatedOut)}, 401, 403
    ),
)
def register(body: Annotated[EndpointBody, Body()]) -> Response[Any]:
    actor = _operator()
    created = webhook_endpoints.register(store, box, body, actor, allow_loopback=SETTINGS.allow_loopback)
    metrics.add_metric(name="WebhookEndpointsRegistered", unit="Count", value=1)
    logger.info("webhook endpoint registered", extra={"endpoint_id": created.id, "by": actor})  # never the secret
    return Response(201, content_types.APPLICATION_JSON, api.serialize(created))


@app.get(
    "/admin/webhook-endpoints",
    tags=["admin"],
    summary="List the outbound webhook endpoints (no secrets)",
    responses=api.responses({200: ("The endpoints", EndpointsOut)}, 401, 403),
)
def list_endpoints() -> EndpointsOut:
    _operator()
    return webhook_endpoints.list_all(store)


@app.delete(
    "/admin/webhook-endpoints/<id>",
    tags=["admin"],
    summary="Delete an outbound webhook endpoint: its pending deliveries stop",
    responses={204: {"description": "Deleted"}, **api.responses({}, 401, 403, 404)},
)
def delete_endpoint(id: EndpointId) -> Response[Any]:
    actor = _operator()
    webhook_endpoints.delete(store, id)
    logger.info("webhook endpoint deleted", extra={"endpoint_id": id, "by": actor})
    return Response(204, None, "")


@app.get(
    "/admin/webhook-endpoints/<id>/deliveries",
    tags=["admin"],
    summary="An endpoint's deliveries, newest first, each with its attempts",
    responses=api.responses({200: ("The deliveries (kept 30 days)", DeliveriesOut)}, 401, 403, 404),
)
def list_deliveries(id: EndpointId) -> DeliveriesOut:
    _operator()
    return webhook_endpoints.deliveries(store, id)


lambda_handler = api.entrypoint(app, logger, tracer, metrics)
