"""Read routes: GET /payments, /payments/summary, /payments/{id}, /balance, /openapi.json (docs/api.md#routes).

Read-only by design and by IAM: no gateway SDK is imported here, so cold starts stay near the floor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from payments import api, listing
from payments.config import settings
from payments.identity import READERS
from payments.models import BalancesOut, PaymentOut, PaymentPage, PaymentsSummary, PaymentStatus
from payments.store import PaymentStore

app, logger, tracer, metrics = api.build("list_payments")
SEARCH_HELP = "Text found in the id, description, reference, gateway reference or card's last 4 digits (any case)"
SETTINGS = settings()  # the environment, checked at cold start
store = PaymentStore()


@app.get(
    "/payments",
    summary="List the caller's payments, newest first",
    tags=["payments"],
    responses=api.responses({200: ("A page of payments", PaymentPage)}, 400, 401, 403),
)
def list_payments(
    limit: Annotated[int, Query(ge=1, le=200, description="Page size")] = 50,
    # No max_length here: pydantic would answer 422; any bad cursor, too long included, is 400 (cursor.py).
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page, as it was given")] = None,
    status: Annotated[PaymentStatus | None, Query()] = None,
    created_from: Annotated[datetime | None, Query(alias="from", description="created_at >= (ISO 8601)")] = None,
    created_to: Annotated[datetime | None, Query(alias="to", description="created_at <= (ISO 8601)")] = None,
    q: Annotated[str | None, Query(description=SEARCH_HELP)] = None,
) -> PaymentPage:
    customer = api.caller(app).customer_for(READERS)
    query = listing.PageQuery.of(limit, cursor, status, created_from, created_to, q)
    return listing.list_page(store, customer, query)


@app.get(
    "/payments/summary",
    summary="How many payments match the filters, and their completed total per currency",
    tags=["payments"],
    responses=api.responses({200: ("The count and totals", PaymentsSummary)}, 400, 401, 403),
)
def payments_summary(
    status: Annotated[PaymentStatus | None, Query()] = None,
    created_from: Annotated[datetime | None, Query(alias="from", description="created_at >= (ISO 8601)")] = None,
    created_to: Annotated[datetime | None, Query(alias="to", description="created_at <= (ISO 8601)")] = None,
    q: Annotated[str | None, Query(description=SEARCH_HELP)] = None,
) -> PaymentsSummary:
    customer = api.caller(app).customer_for(READERS)
    query = listing.PageQuery.of(1, None, status, created_from, created_to, q)
    return listing.summary(store, customer, query)


@app.get(
    "/payments/<id>",
    summary="One payment with its status history",
    tags=["payments"],
    responses=api.responses({200: ("The payment", PaymentOut)}, 401, 403, 404),
)
def get_payment(id: Annotated[str, Path(max_length=64, description="Payment id")]) -> PaymentOut:
    customer = api.caller(app).customer_for(READERS)
    return store.require(customer, id).to_api(with_history=True)


@app.get(
    "/balance",
    summary="Balance per currency: completed payments only",
    tags=["payments"],
    responses=api.responses({200: ("Balances", BalancesOut)}, 401, 403),
)
def get_balance() -> BalancesOut:
    customer = api.caller(app).customer_for(READERS)
    return listing.balances(store, customer)


@app.get(
    "/openapi.json",
    summary="This API's OpenAPI 3 document",
    tags=["meta"],
    responses={
        200: {"description": "The OpenAPI document", "content": {"application/json": {"schema": {"type": "object"}}}}
    },
)
def openapi_document() -> Response[str]:
    return Response(200, content_types.APPLICATION_JSON, listing.openapi_text())


lambda_handler = api.entrypoint(app, logger, tracer, metrics)
