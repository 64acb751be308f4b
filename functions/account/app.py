"""The customer's account routes (docs/api.md#low-balance-alert): GET and PUT /alerts/low-balance, the caller's own
low-balance alert (docs/alerts.md); GET and PUT /auto-topup, the caller's auto top-up (docs/auto-topup.md).

Each customer sees and sets only their own: the route names no customer, the token does.
"""

from __future__ import annotations

from typing import Annotated, Any, cast

from aws_lambda_powertools.event_handler.openapi.params import Body

from payments import alerts, api, autotopup
from payments.config import settings
from payments.identity import PAYERS, READERS
from payments.store import PaymentStore

app, logger, tracer, metrics = api.build("account")
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


# ---- auto top-up (docs/auto-topup.md) ----------------------------------------------------------------------------


def _cards() -> autotopup.Cards:
    """The saved cards, as the store keeps them (payments.saved_cards)."""
    return cast(autotopup.Cards, store)


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


lambda_handler = api.entrypoint(app, logger, tracer, metrics)
