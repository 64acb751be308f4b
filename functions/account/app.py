"""The customer's account routes: the low-balance alert (docs/api.md#low-balance-alert, docs/alerts.md: GET and PUT
/alerts/low-balance) and saved cards (docs/saved-cards.md: GET and POST /payment-methods, DELETE
/payment-methods/{id}, POST /payment-methods/{id}/default) and the auto top-up (docs/auto-topup.md: GET and PUT
/auto-topup, POST /auto-topup/authenticate).
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, cast

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path

from payments import alerts, api, autotopup, saved_cards
from payments.config import settings
from payments.idempotency import PERSISTENCE_ERRORS, IdempotentRoute
from payments.identity import PAYERS, READERS
from payments.models import MakePaymentOut
from payments.store import PaymentStore

app, logger, tracer, metrics = api.build("account", wrapped_aws_errors=PERSISTENCE_ERRORS)
SETTINGS = settings()  # the environment, checked at cold start
store = PaymentStore()


@app.get(
    "/alerts/low-balance",
    summary="The caller's low-balance alert (nulls when none is set)",
    tags=["account"],
    responses=api.responses({200: ("The alert", alerts.AlertOut)}, 401, 403),
)
def get_low_balance_alert() -> dict[str, Any]:
    customer = api.caller(app).customer_for(READERS)
    return alerts.get(store, customer)


@app.put(
    "/alerts/low-balance",
    summary='Set the caller\'s low-balance alert; "threshold": null turns it off',
    tags=["account"],
    responses=api.responses({200: ("The alert as saved", alerts.AlertOut)}, 401, 403),
)
def put_low_balance_alert(body: Annotated[alerts.AlertIn, Body()]) -> dict[str, Any]:
    customer = api.caller(app).customer_for(PAYERS)
    saved = alerts.save(store, customer, body)
    metrics.add_metric(name="LowBalanceAlertSaved", unit="Count", value=1)
    return saved


# ---- saved cards (docs/saved-cards.md) ---------------------------------------------------------------------


@cache
def _save_card_route() -> Any:
    """POST /payment-methods under its Idempotency-Key (Powertools' record, keyed `payment_methods#...`), built at
    the first card request."""
    idempotency = IdempotentRoute("payment_methods", validate_on="fingerprint", persistence=store.idempotency_records())

    @idempotency.wrap
    def save(request: dict[str, Any], command: saved_cards.SaveCommand) -> dict[str, Any]:
        answer = saved_cards.save(store, command)
        metrics.add_metric(name="CardSaved" if answer["status"] == 201 else "CardRefused", unit="Count", value=1)
        return answer

    return idempotency, save


@app.post(
    "/payment-methods",
    summary="Save a card for later, off-session use (Stripe SetupIntent)",
    tags=["account"],
    responses=api.responses(
        {201: ("The card, active or pending 3-D Secure (next_action)", saved_cards.SavedCardCreatedOut)},
        401,
        402,
        403,
        409,
        502,
        503,
    ),
)
def save_card(
    body: Annotated[saved_cards.SaveCardBody, Body()],
    idempotency_key: Annotated[
        str, Header(alias="idempotency-key", min_length=1, max_length=255, description="1-255 printable characters")
    ],
) -> Response[Any]:
    from payments import checkout
    from payments.models import utcnow

    caller = api.caller(app)
    customer = caller.customer_for(PAYERS)
    key = checkout.validate_key(idempotency_key)
    command = saved_cards.validate(body, caller, customer, key, today=utcnow().date())
    idempotency, save = _save_card_route()
    result = idempotency.call(app, save, request=command.as_idempotency_data(), command=command)
    answer = result["body"]
    if result["status"] >= 400:
        extra = {k: v for k, v in answer.items() if k not in ("message", "errors", "field")}
        return api.error_response(result["status"], answer["message"], field=answer.get("field"), **extra)
    return Response(result["status"], content_types.APPLICATION_JSON, api.serialize(answer))


@app.get(
    "/payment-methods",
    summary="The caller's saved cards (active and pending 3-D Secure)",
    tags=["account"],
    responses=api.responses({200: ("The cards", saved_cards.SavedCardsOut)}, 401, 403),
)
def list_cards() -> dict[str, Any]:
    customer = api.caller(app).customer_for(READERS)
    return saved_cards.listing(store, customer)


@app.delete(
    "/payment-methods/<id>",
    summary="Remove a saved card (detached at Stripe; an auto top-up that used it is turned off)",
    tags=["account"],
    responses={204: {"description": "Removed"}, **api.responses({}, 401, 403, 404, 502, 503)},
)
def remove_card(id: Annotated[str, Path(max_length=64)]) -> Response[Any]:
    customer = api.caller(app).customer_for(PAYERS)
    saved_cards.remove(store, customer, id)
    metrics.add_metric(name="CardRemoved", unit="Count", value=1)
    return Response(204, None, "")


@app.post(
    "/payment-methods/<id>/default",
    summary="Make a saved card the default",
    tags=["account"],
    responses=api.responses({200: ("The card", saved_cards.SavedCardOut)}, 401, 403, 404, 409),
)
def make_default_card(id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    customer = api.caller(app).customer_for(PAYERS)
    return saved_cards.make_default(store, customer, id)


# ---- auto top-up (docs/auto-topup.md) ----------------------------------------------------------------------------


def _cards() -> autotopup.Cards:
    """The saved cards, as the store keeps them (payments.saved_cards)."""
    return cast(autotopup.Cards, store)


def _confirmer() -> autotopup.Confirmer:
    """Stripe's on-session confirmation (the adapter, built on first use)."""
    return autotopup.stripe_confirmer()


@app.get(
    "/auto-topup",
    summary="The caller's auto top-up (off, with nulls, when none is set)",
    tags=["account"],
    responses=api.responses({200: ("The auto top-up", autotopup.AutoTopupOut)}, 401, 403),
)
def get_auto_topup() -> dict[str, Any]:
    customer = api.caller(app).customer_for(READERS)
    return autotopup.get(store, customer)


@app.put(
    "/auto-topup",
    summary="Set the caller's auto top-up; turning it on or changing its terms records the caller's consent",
    tags=["account"],
    responses=api.responses({200: ("The auto top-up as saved", autotopup.AutoTopupOut)}, 401, 403),
)
def put_auto_topup(body: Annotated[autotopup.AutoTopupIn, Body()]) -> dict[str, Any]:
    caller = api.caller(app)
    customer = caller.customer_for(PAYERS)
    saved = autotopup.save(store, _cards(), customer, body, caller)
    metrics.add_metric(name="AutoTopupSaved", unit="Count", value=1)
    return saved


@app.post(
    "/auto-topup/authenticate",
    summary="Confirm, on-session, the auto top-up the bank held (state requires_action): 3-D Secure if it asks",
    tags=["account"],
    responses=api.responses({200: ("The pending top-up and its next_action", MakePaymentOut)}, 401, 403, 409, 502),
)  # fmt: skip
def authenticate_auto_topup() -> dict[str, Any]:
    customer = api.caller(app).customer_for(PAYERS)
    payment, next_action = autotopup.authenticate(store, _cards(), customer, _confirmer())
    metrics.add_metric(name="AutoTopupAuthenticate", unit="Count", value=1)
    return {"payment": payment.to_api().model_dump(mode="json"), "next_action": next_action}


lambda_handler = api.entrypoint(app, logger, tracer, metrics)
