"""Export routes: POST /payments/exports, GET /payments/exports/{export_id} (docs/api.md#csv-exports, docs/exports.md).

The same function also runs the background half of a large export: it invokes itself asynchronously
with `{"export_job": {...}}`, an event API Gateway can never send.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import api, exports, listing
from payments.config import ExportSettings, load
from payments.exports import ExportFilters, ExportOut, ExportRequest, ExportStatus
from payments.identity import PAYERS
from payments.store import PaymentStore

app, logger, tracer, metrics = api.build("export_csv")
SETTINGS = load(ExportSettings)  # the environment, checked at cold start (each export reads it again)
exporter = exports.Exporter(PaymentStore())


@app.post(
    "/payments/exports",
    summary="Export the caller's payments as CSV to a presigned link",
    description="201 with the link; for accounts above the row threshold 202, then poll the export.",
    tags=["exports"],
    responses=api.responses(
        {
            201: ("Written: `url`, `expires_at`, `row_count`", ExportOut),
            202: ("Large account: running in the background", ExportOut),
        },
        400,
        401,
        403,
        503,
    ),
)
def start_export(request: Annotated[ExportRequest | None, Body()] = None) -> Response[dict[str, Any]]:
    caller = api.caller(app)
    customer = caller.customer_for(PAYERS)
    wanted = request or ExportRequest()
    query = listing.PageQuery.of(1, None, wanted.status, wanted.created_from, wanted.created_to, wanted.q)  # as GET
    filters = ExportFilters(query.status, query.created_from, query.created_to, query.search, wanted.bom)
    answer = exporter.start(customer, filters, requested_by=caller.actor)
    return Response(
        status_code=201 if answer.status is ExportStatus.DONE else 202,
        content_type=content_types.APPLICATION_JSON,
        body=answer.model_dump(mode="json"),
        headers={"Location": f"/payments/exports/{answer.export_id}"},
    )


@app.get(
    "/payments/exports/<export_id>",
    summary="An export's status and, once done, its link",
    tags=["exports"],
    responses=api.responses({200: ("The export", ExportOut)}, 401, 403, 404),
)
def get_export(export_id: Annotated[str, Path(max_length=64)]) -> ExportOut:
    customer = api.caller(app).customer_for(PAYERS)
    return exporter.describe(customer, export_id)


_http_handler = api.entrypoint(app, logger, tracer, metrics)


@logger.inject_lambda_context
def _run_export_job(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job = event["export_job"]
    status = exporter.run(str(job["customer_id"]), str(job["export_id"]))
    return {"export_id": job["export_id"], "status": status}


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "export_job" in event:  # only an IAM principal allowed to invoke this function can send one
        return _run_export_job(event, context)
    return _http_handler(event, context)
