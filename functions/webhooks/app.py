"""POST /webhooks/{provider}: gateway events, verified as each gateway signs, applied exactly once.

Answers 2xx once an event is recorded (duplicates and unknown payments too), so gateways stop
retrying; 400/401 for a bad or missing signature, with nothing changed; 404 for an unknown provider.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path

from payments import api, settlement
from payments.config import settings
from payments.errors import BadRequest, NotFound
from payments.gateways import gateway
from payments.gateways.base import SignatureInvalid
from payments.registry import PROVIDERS
from payments.settlement import Outcome, WebhookOut
from payments.store import PaymentStore

app, logger, tracer, metrics = api.build("webhooks", calls_gateways=True)
SETTINGS = settings()  # the environment, checked at cold start
store = PaymentStore()


@app.post(
    "/webhooks/<provider>",
    summary=f"Gateway webhook ({', '.join(PROVIDERS)})",
    tags=["webhooks"],
    responses=api.responses(
        {200: ("Recorded, including duplicates and unknown payments", WebhookOut)}, 400, 401, 404, 409, 502, 503
    ),
)
def receive(provider: Annotated[str, Path(max_length=32)]) -> Response[Any]:
    if provider not in PROVIDERS:
        raise NotFound(f"no webhook endpoint for provider {provider!r}")
    event = app.current_event
    # The raw bytes as the gateway signed them; `decoded_body` would fail (500) on a non-UTF-8 base64 body.
    body = base64.b64decode(event.body or "") if event.is_base64_encoded else (event.body or "").encode()
    headers = {k.lower(): v for k, v in (event.headers or {}).items()}
    adapter = gateway(provider)
    try:
        adapter.verify_webhook(headers, body)
    except SignatureInvalid as exc:
        metrics.add_metric(name="WebhookSignatureRejected", unit="Count", value=1)
        logger.warning("webhook signature rejected", extra={"provider": provider, "reason": exc.message})
        return api.error_response(exc.http_status, exc.message)
    try:
        gateway_event = adapter.parse_event(headers, body)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:  # signed, but not its shape
        raise BadRequest(f"the body is not a {provider} event: {exc}") from exc
    result = settlement.apply_event(store, adapter, gateway_event)
    metrics.add_metric(name=f"Webhook_{result.outcome}", unit="Count", value=1)
    if result.outcome is Outcome.MISMATCH:  # an event that named a payment it may not touch, or a wrong amount
        metrics.add_metric(name="WebhookMismatch", unit="Count", value=1)
    logger.info(
        "webhook applied",
        extra={
            "provider": provider,
            "type": gateway_event.event_type,
            "outcome": result.outcome,
            "payment_id": result.payment_id,
        },
    )
    if result.outcome is Outcome.DEFERRED:  # nothing recorded: the gateway's own retry brings it back later
        return api.error_response(
            409, f"payment {result.payment_id} is not settled yet, so its refund cannot count; deliver it again later"
        )
    answer = WebhookOut(received=True, outcome=result.outcome)
    return Response(200, content_types.APPLICATION_JSON, api.serialize(answer))


lambda_handler = api.entrypoint(app, logger, tracer, metrics)
