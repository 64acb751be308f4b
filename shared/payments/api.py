"""The HTTP edge shared by every function: resolver, observability, identity, error mapping.

Each handler module does:

    app, logger, tracer, metrics = api.build("list_payments")
    @app.get("/payments") ...
    lambda_handler = api.entrypoint(app, logger, tracer, metrics)

so routing, validation, correlation ids and error shapes are the same everywhere, written once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from payments.errors import GatewayError, PaymentsError
from payments.identity import Caller, caller_from_event
from payments.models import ErrorOut
from payments.money import MoneyError

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]

# JSON numbers in request bodies become Decimal, never float (API.md §3 allows numeric amounts).
_json_body = partial(json.loads, parse_float=Decimal)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def serialize(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"), default=_default)


def error_response(status: int, message: str, **extra: Any) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=serialize({"message": message, **extra}),
    )


# AWS answers meaning "busy, try again" once botocore's own retries are spent (also as transaction cancel reasons).
_BUSY_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "ThrottlingError", "RequestLimitExceeded",
     "TransactionConflictException", "TransactionConflict", "InternalServerError", "ServiceUnavailable", "SlowDown"}
)  # fmt: skip


def aws_busy(exc: BaseException | None) -> bool:
    """A throttled or briefly unreachable DynamoDB/S3, however wrapped (Powertools idempotency wraps its own)."""
    while exc is not None:
        if isinstance(exc, ClientError):
            answer: dict[str, Any] = dict(exc.response)
            reasons = answer.get("CancellationReasons", [])
            return bool(({answer.get("Error", {}).get("Code")} | {r.get("Code") for r in reasons}) & _BUSY_CODES)
        if isinstance(exc, BotoCoreError):  # connection refused, read timeout
            return True
        exc = exc.__cause__
    return False


def _describe(error: dict[str, Any]) -> str:
    """'limit: Input should be less than or equal to 200' from a pydantic error."""
    if error.get("type") == "json_invalid":
        return "request body is not valid JSON"
    field = ".".join(str(p) for p in error.get("loc", ())[1:]) or "request"
    if error.get("type") == "missing":
        return f"{field} is required"
    return f"{field}: {error.get('msg', 'is invalid')}"


_ERROR_TEXT = {
    400: "Malformed request (bad cursor, bad filter combination, not JSON)",
    401: "Missing or invalid token",
    402: "Card declined; the payment is recorded as cancelled",
    403: "The token's groups do not allow this route",
    404: "Not found (or another customer's)",
    409: "Conflict: not allowed in the current state, or the same Idempotency-Key is still running",
    422: "Invalid input; the message names the field",
    429: "Too many attempts; retry later",
    502: "The gateway failed; retry with the same Idempotency-Key",
    503: "A gateway or the database is briefly unavailable; retry with the same Idempotency-Key",
}


def responses(ok: dict[int, tuple[str, type[BaseModel]]], *errors: int) -> dict[int, Any]:
    """OpenAPI `responses` for a route: its success models and the error codes it can answer."""
    documented: dict[int, Any] = {
        code: {"description": text, "content": {"application/json": {"model": model}}}
        for code, (text, model) in ok.items()
    }
    for code in (422, *errors):
        documented.setdefault(
            code, {"description": _ERROR_TEXT[code], "content": {"application/json": {"model": ErrorOut}}}
        )
    return documented


def build(
    function: str, *, wrapped_aws_errors: tuple[type[Exception], ...] = (), calls_gateways: bool = False
) -> tuple[APIGatewayHttpResolver, Logger, Tracer, Metrics]:
    """The resolver and observability of one function; `function` labels its log lines.

    `wrapped_aws_errors`: exception types of libraries that wrap AWS errors (Powertools idempotency),
    passed only by the functions that use them so the read paths never import those libraries.
    `calls_gateways`: also trace `requests`. X-Ray's default patches every library it knows, which
    imports `requests` (about 30 ms) into functions that never call a gateway.
    """
    logger = Logger()
    # Per thread: Powertools' own keys live in one formatter that every Logger of a process shares.
    logger.thread_safe_append_keys(function=function)
    tracer = Tracer(patch_modules=["botocore", "requests"] if calls_gateways else ["botocore"])
    metrics = Metrics()
    app = APIGatewayHttpResolver(
        enable_validation=True,
        serializer=serialize,
        json_body_deserializer=_json_body,
    )

    @app.exception_handler(PaymentsError)
    def _domain_error(exc: PaymentsError) -> Response[str]:
        if exc.http_status >= 500:
            logger.warning("upstream failure", extra={"error": exc.message})
        answer = error_response(exc.http_status, exc.message, **exc.extra)
        answer.headers.update(exc.headers)
        return answer

    @app.exception_handler(GatewayError)
    def _gateway_error(exc: GatewayError) -> Response[str]:
        # A gateway we had to ask (PayPal verify/capture) failed: a non-2xx makes the sender retry later.
        logger.warning("gateway failure", extra={"error": exc.message})
        return error_response(exc.http_status, f"{exc.message}; retry later")

    @app.exception_handler([ClientError, BotoCoreError, *wrapped_aws_errors])
    def _aws_error(exc: Exception) -> Response[str]:
        if not aws_busy(exc):
            raise exc  # a bug or a misconfiguration: fail loudly (500) rather than ask clients to retry
        logger.warning("AWS busy", extra={"error": str(exc)[:300]})
        answer = error_response(503, "the service is busy; retry in a moment, with the same Idempotency-Key if any")
        answer.headers["Retry-After"] = "1"
        return answer

    @app.exception_handler(MoneyError)
    def _money_error(exc: MoneyError) -> Response[str]:
        return error_response(422, exc.message, field=exc.field)

    @app.exception_handler(RequestValidationError)
    def _validation_error(exc: RequestValidationError) -> Response[str]:
        errors = list(exc.errors())
        message = "; ".join(_describe(e) for e in errors[:3]) or "request is invalid"
        fields = [".".join(str(p) for p in e.get("loc", ())[1:]) for e in errors]
        return error_response(422, message, fields=fields)

    @app.not_found
    def _not_found(_: Exception) -> Response[str]:
        return error_response(404, "route not found")

    return app, logger, tracer, metrics


def caller(app: APIGatewayHttpResolver) -> Caller:
    return caller_from_event(app.current_event.raw_event)


def entrypoint(app: APIGatewayHttpResolver, logger: Logger, tracer: Tracer, metrics: Metrics) -> Handler:
    """The Lambda handler: correlation id from the API Gateway request id, tracing, metrics.

    Lambda runs one function per process, one request at a time; the local stack runs them all on threads
    of one process. So each request pins its log keys to its own thread (the same values inject_lambda_context
    puts in the formatter the process shares), and publishes metrics only if it has any (Powertools'
    `log_metrics` warns on every request that added none).
    """
    from aws_lambda_powertools.logging.lambda_context import build_lambda_context_model
    from aws_lambda_powertools.metrics.provider import cold_start
    from aws_lambda_powertools.utilities.jmespath_utils import query

    own_keys = {"function": logger.thread_safe_get_current_keys().get("function")}  # build()'s, this thread's

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    @tracer.capture_lambda_handler(capture_response=False)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        correlation_id = query(envelope=correlation_paths.API_GATEWAY_HTTP, data=event)
        context_keys = vars(build_lambda_context_model(context))
        logger.thread_safe_append_keys(**own_keys, **context_keys, correlation_id=correlation_id)
        try:
            answer = app.resolve(event, context)
            if cold_start.is_cold_start:  # as log_metrics(capture_cold_start_metric=True): once, on success
                metrics.provider.add_cold_start_metric(context)
                cold_start.is_cold_start = False
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()
        return answer

    return cast(Handler, lambda_handler)
