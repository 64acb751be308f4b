"""GET /payments/{id}/receipt (docs/receipts.md): the PDF receipt of one of the caller's completed payments.

Its own function so the PDF library (fpdf2, ~0.4 s to import) is never loaded by the read path (`list_payments`),
whose cold start is measured. Read only by IAM: GetItem and Query on the payments table.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from payments import account, api
from payments.config import settings
from payments.errors import NotFound
from payments.identity import READERS
from payments.models import PaymentStatus
from payments.receipts import receipt_pdf
from payments.store import PaymentStore

app, logger, tracer, metrics = api.build("receipts")
SETTINGS = settings()  # the environment, checked at cold start
store = PaymentStore()
PDF = "application/pdf"


def binary(route: Callable[..., Any]) -> Callable[..., Any]:
    """Powertools validates a route's answer against its return annotation and serialises it as JSON, which a PDF's
    bytes are not (it would decode them as UTF-8): as Powertools reads the route, it declares no return type. The
    200 is documented in `responses`, and Powertools base64-encodes a bytes body (`isBase64Encoded`)."""
    route.__signature__ = inspect.signature(route).replace(  # type: ignore[attr-defined]
        return_annotation=inspect.Signature.empty
    )
    return route


@app.get(
    "/payments/<id>/receipt",
    summary="The PDF receipt of a completed payment",
    tags=["payments"],
    responses={
        200: {
            "description": "The receipt (application/pdf), shown inline",
            "content": {PDF: {"schema": {"type": "string", "format": "binary"}}},
        },
        **api.responses({}, 401, 403, 404),
    },
)
@binary
def get_receipt(id: Annotated[str, Path(max_length=64, description="Payment id")]) -> Response[bytes]:
    customer = api.caller(app).customer_for(READERS)
    payment = store.get(customer, id)
    # Pending, cancelled, another customer's or unknown: the same 404 as GET /payments/{id}, and nothing of theirs.
    if payment is None or payment.status is not PaymentStatus.COMPLETED:
        raise NotFound(f"payment {id} not found")
    body = receipt_pdf(payment, account.for_customer(store, customer))
    return Response(
        200,
        PDF,
        body,
        headers={
            "Content-Disposition": f'inline; filename="receipt-{payment.id}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )


lambda_handler = api.entrypoint(app, logger, tracer, metrics)
