"""POST /payments: start a payment with any of the seven methods (docs/api.md#making-a-payment); GET /payment-options.

Idempotency: Powertools' idempotency utility, keyed by (customer, Idempotency-Key) and validated on
a digest of the body, wraps the whole use case: the same key and body replays the first answer,
the same key with another body is 422, a request still running is 409.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Header

from payments import account, api, checkout
from payments.config import settings
from payments.idempotency import PERSISTENCE_ERRORS, IdempotentRoute
from payments.identity import PAYERS, READERS
from payments.models import DeclinedOut, MakePaymentOut, utcnow
from payments.store import PaymentStore

app, logger, tracer, metrics = api.build("make_payment", wrapped_aws_errors=PERSISTENCE_ERRORS, calls_gateways=True)
SETTINGS = settings()  # the environment, checked at cold start
DEFAULTS = account.checked_defaults()  # the account settings' defaults, checked at cold start too
store = PaymentStore()
idempotency = IdempotentRoute("make_payment", validate_on="fingerprint", persistence=store.idempotency_records())


def answer(outcome: checkout.Outcome) -> dict[str, Any]:
    """The HTTP answer to what Make Payment did: 201, or 402 with the error shape for a declined card."""
    payment = outcome.payment.to_api()
    if outcome.declined:
        declined = DeclinedOut(message=outcome.declined, payment=payment, next_action=None)
        return {"status": 402, "body": declined.model_dump()}
    return {"status": 201, "body": MakePaymentOut(payment=payment, next_action=outcome.next_action).model_dump()}


@idempotency.wrap
def _make_payment(request: dict[str, Any], command: checkout.Command) -> dict[str, Any]:
    remaining = app.lambda_context.get_remaining_time_in_millis() / 1000
    outcome = checkout.Checkout(store, remaining_seconds=remaining).run(command)
    metrics.add_metric(name=f"PaymentStarted_{command.method}", unit="Count", value=1)
    return answer(outcome)  # stored as the record's answer: a retry with the key replays it, a decline too


@app.post(
    "/payments",
    summary="Make a payment",
    tags=["payments"],
    responses=api.responses(
        {201: ("Payment started (or completed at once)", MakePaymentOut), 402: ("Card declined", DeclinedOut)},
        400,
        401,
        403,
        409,
        429,
        502,
        503,
    ),
)
def make_payment(
    body: Annotated[checkout.PaymentBody, Body()],
    idempotency_key: Annotated[
        str, Header(alias="idempotency-key", min_length=1, max_length=255, description="1-255 printable characters")
    ],
) -> Response[Any]:
    caller = api.caller(app)
    customer = caller.customer_for(PAYERS)
    key = checkout.validate_key(idempotency_key)
    terms = account.for_customer(store, customer)  # one GetItem: the customer's limits and surcharges
    command = checkout.validate(body, caller, customer, key, today=utcnow().date(), terms=terms)
    result = idempotency.call(app, _make_payment, request=command.as_idempotency_data(), command=command)
    answer = result["body"]
    if result["status"] >= 400:  # a decline (402): the error shape, with the cancelled payment
        extra = {k: v for k, v in answer.items() if k not in ("message", "errors", "field")}
        return api.error_response(result["status"], answer["message"], **extra)
    return Response(result["status"], content_types.APPLICATION_JSON, api.serialize(answer))


@app.get(
    "/payment-options",
    summary="What this customer may pay with: methods, currencies, limits, surcharges",
    tags=["payments"],
    responses=api.responses({200: ("The options", account.PaymentOptionsOut)}, 401, 403),
)
def payment_options() -> account.PaymentOptionsOut:
    # Here, beside POST /payments: the page asks right before paying, and the payment then finds this container warm.
    customer = api.caller(app).customer_for(READERS)
    return account.payment_options(account.for_customer(store, customer))


lambda_handler = api.entrypoint(app, logger, tracer, metrics)
