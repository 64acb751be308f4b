"""The HTTP edge shared by every function: resolver, observability, identity, error mapping.

Each handler module does:

    app, logger, tracer, metrics = api.build("list_payments")
    @app.get("/payments") ...
    lambda_handler = api.entrypoint(app, logger, tracer, metrics)

so routing, validation, correlation ids and error shapes are the same everywhere, written once.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from functools import partial
from typing import Any, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import OpenAPIRequestValidationMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from payments import jsonsafe
from payments.errors import BadRequest, GatewayError, PaymentsError
from payments.identity import Caller, caller_from_event
from payments.models import ErrorOut
from payments.money import MoneyError

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]

# JSON numbers in request bodies become Decimal, never float (docs/api.md#amounts allows numeric amounts).
_json_body = partial(jsonsafe.loads, parse_float=Decimal)

# ---- reading a request body (docs/errors.md) ------------------------------------------------------

JSON_ONLY = "send the body as application/json (Content-Type: application/json)"
NOT_UTF8 = "request body is not valid UTF-8"
NOT_JSON = "request body is not valid JSON"
TOO_DEEP = "request body is nested too deeply (at most {} levels)"


class UnsupportedMediaType(PaymentsError):
    http_status = 415


def is_json_media_type(content_type: str | None) -> bool:
    """application/json or application/<anything>+json, any case, with no charset or charset=utf-8."""
    media, _, parameters = (content_type or "").partition(";")
    media = media.strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        return False
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


def read_json_body(event: BaseProxyEvent) -> Any:
    """The JSON body of a route that takes one, by this service's rules; None if there is no body.

    415 for a body not declared as JSON (a missing Content-Type included: Powertools would read it as a
    form), 400 for bytes that are not UTF-8 (API Gateway passes them base64) or a text that holds lone
    surrogates, 400 for JSON nested deeper than `jsonsafe.MAX_DEPTH` or not JSON at all. Then the route's
    model validates it (422).
    """
    raw = event.body
    if not raw:
        return None
    if not is_json_media_type(event.headers.get("content-type")):
        raise UnsupportedMediaType(JSON_ONLY)
    if event.is_base64_encoded:
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:  # API Gateway never sends this; a test or a proxy might
            raise BadRequest("request body is not valid base64") from exc
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(NOT_UTF8) from exc
    else:
        text = raw
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:  # lone surrogates: not text any client can have sent as UTF-8
                raise BadRequest(NOT_UTF8) from exc
    try:
        return _json_body(text)
    except jsonsafe.JSONTooDeep as exc:
        raise BadRequest(TOO_DEEP.format(exc.max_depth)) from exc
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4,300 digits
        raise BadRequest(NOT_JSON) from exc


class _RequestValidation(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation, reading bodies with `read_json_body`.

    Powertools calls `_get_body` only for routes with a body parameter, so routes without one (the GETs,
    and POST /webhooks/{provider}, which reads the raw bytes it must verify) are not affected. It runs
    before any middleware of ours could, hence the subclass; `_get_body` is Powertools' own (3.x) method,
    and tests/integration/test_input_rules.py fails on every route if a Powertools upgrade stops calling it.
    """

    def _get_body(self, app: Any) -> Any:
        return read_json_body(app.current_event)


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):  # an answer's documented model
        return value.model_dump(mode="json")
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def serialize(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"), default=_default)


# ---- the one error shape (docs/errors.md) ---------------------------------------------------------

# Answers about the request's input: `errors` lists its problems (at least one).
_INPUT_STATUSES = frozenset({400, 415, 422})


def error_body(
    status: int,
    message: str,
    *,
    field: str | None = None,
    errors: Iterable[Mapping[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """`{"message", "errors": [{"field", "message"}], "field"?, ...extra}`.

    Without `errors`, an answer about the input (400/415/422) or naming a `field` has one problem: this
    one; any other answer has none. `field` is repeated at the top only when the first problem names one.
    """
    if errors is not None:
        problems = [{"field": e.get("field"), "message": str(e["message"])} for e in errors]
    elif field is not None or status in _INPUT_STATUSES:
        problems = [{"field": field, "message": message}]
    else:
        problems = []
    body: dict[str, Any] = {"message": message, "errors": problems}
    if problems and problems[0]["field"] is not None:
        body["field"] = problems[0]["field"]
    body.update(extra)
    return body


def error_response(
    status: int,
    message: str,
    *,
    field: str | None = None,
    errors: Iterable[Mapping[str, Any]] | None = None,
    **extra: Any,
) -> Response[str]:
    """Every error answer of every route goes through here (see `error_body`)."""
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=serialize(error_body(status, message, field=field, errors=errors, **extra)),
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


# pydantic tags the errors of each member of a union (`str | Decimal`) with the member's type.
_KINDS = {
    "str": "a string",
    "int": "a whole number",
    "decimal": "a number",
    "float": "a number",
    "bool": "true or false",
}
_SUMMARISED = 3  # problems spelled out in `message`; `errors` has them all


def _field_of(where: Any, path: Sequence[Any]) -> str | None:
    """The dotted path of a body member, a query parameter's name, a header's name as clients write it."""
    if where == "header" and path:
        return "-".join(part.capitalize() for part in str(path[0]).split("-"))
    return ".".join(str(p) for p in path) or None


def _sentence(field: str | None, where: Any, error: Mapping[str, Any]) -> str:
    kind = error.get("type")
    subject = field or ("request body" if where == "body" else "request")
    if kind == "missing":
        return f"{subject} is required"
    if kind == "extra_forbidden":
        return f"{subject} is not an accepted field"
    return f"{subject}: {error.get('msg', 'is invalid')}"


def validation_problems(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """pydantic's errors as [{"field", "message"}]: every one, in order, a union's members as one problem.

    'amount must be a string or a number' rather than 'amount.str: ...' and 'amount.decimal: ...'.
    """
    groups: dict[tuple[Any, ...], list[tuple[str | None, Mapping[str, Any]]]] = {}
    for error in errors:
        loc = tuple(error.get("loc", ()))
        where, path, tag = (loc[0] if loc else "body"), loc[1:], None
        if error.get("type") not in ("missing", "extra_forbidden") and path and str(path[-1]) in _KINDS:
            path, tag = path[:-1], str(path[-1])
        groups.setdefault((where, *path), []).append((tag, error))
    problems: list[dict[str, Any]] = []
    for (where, *at), members in groups.items():
        tags = [tag for tag, _ in members]
        if len(members) > 1 and all(tags):  # a union: each member refused the value
            field = _field_of(where, at)
            kinds = " or ".join(dict.fromkeys(_KINDS[str(tag)] for tag in tags))
            problems.append({"field": field, "message": f"{field or 'request body'} must be {kinds}"})
            continue
        for tag, error in members:  # a lone tag was a member's name after all
            field = _field_of(where, [*at, tag] if tag else at)
            problems.append({"field": field, "message": _sentence(field, where, error)})
    return problems


def summary(problems: Sequence[Mapping[str, Any]]) -> str:
    """The first few problems' messages as one sentence."""
    messages = [str(p["message"]) for p in problems]
    text = "; ".join(messages[:_SUMMARISED]) or "request is invalid"
    if len(messages) > _SUMMARISED:
        text += f"; and {len(messages) - _SUMMARISED} more (see errors)"
    return text


_ERROR_TEXT = {
    400: "Malformed request: body not JSON, not UTF-8 or nested too deeply; bad cursor or filter combination",
    401: "Missing or invalid token",
    402: "Card declined; the payment is recorded as cancelled",
    403: "The token's groups do not allow this route",
    404: "Not found (or another customer's)",
    409: "Conflict: not allowed in the current state, or the same Idempotency-Key is still running",
    415: "The body is not declared as JSON: send Content-Type: application/json",
    422: "Invalid input; every problem listed in `errors`, each naming its field",
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
    app._request_validation_middleware = _RequestValidation()  # type: ignore[no-untyped-call]  # our body rules

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
        return error_response(422, exc.message, errors=[{"field": f, "message": m} for f, m in exc.problems])

    @app.exception_handler(RequestValidationError)
    def _validation_error(exc: RequestValidationError) -> Response[str]:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):  # Powertools' own JSON parse, if ever used
            return error_response(400, NOT_JSON)
        problems = validation_problems(errors)
        return error_response(422, summary(problems), errors=problems)

    @app.exception_handler(RequestUnsupportedContentType)
    def _media_type_error(_: RequestUnsupportedContentType) -> Response[str]:
        return error_response(415, JSON_ONLY)

    @app.exception_handler(ServiceError)
    def _powertools_error(exc: ServiceError) -> Response[str]:
        return error_response(exc.status_code, str(exc.msg))

    @app.not_found
    def _not_found(_: Exception) -> Response[str]:
        return error_response(404, "route not found")

    return app, logger, tracer, metrics


def caller(app: APIGatewayHttpResolver) -> Caller:
    return caller_from_event(app.current_event.raw_event)


_FLUSHING = threading.Lock()


def _models_in(annotation: Any, found: dict[type[BaseModel], None]) -> None:
    """The pydantic models `annotation` names (`X`, `X | None`, `list[X]`, `Response[X]`) and those their fields
    name, innermost first."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation not in found:
            for field in annotation.model_fields.values():
                _models_in(field.annotation, found)
            found[annotation] = None
        return
    for member in typing.get_args(annotation):
        _models_in(member, found)


def route_models(app: APIGatewayHttpResolver) -> list[type[BaseModel]]:
    """The models the app's routes take and answer with (their signatures and documented answers), not the error
    shape (`ErrorOut`, documentation only), innermost first."""
    found: dict[type[BaseModel], None] = {}
    for route in (*app._static_routes, *app._dynamic_routes):
        for annotation in typing.get_type_hints(route.func).values():
            _models_in(annotation, found)
        for answer in (route.responses or {}).values():
            model = answer.get("content", {}).get("application/json", {}).get("model")
            if model is not None and model is not ErrorOut:
                _models_in(model, found)
    return list(found)


def entrypoint(app: APIGatewayHttpResolver, logger: Logger, tracer: Tracer, metrics: Metrics) -> Handler:
    """The Lambda handler: correlation id from the API Gateway request id, tracing, metrics; the models the routes
    use are built (`route_models`).

    Lambda runs one function per process, one request at a time; the local stack runs them all on threads
    of one process. So each request pins its log keys to its own thread (the same values inject_lambda_context
    puts in the formatter the process shares), and publishes metrics only if it has any (Powertools'
    `log_metrics` warns on every request that added none).
    """
    from aws_lambda_powertools.logging.lambda_context import build_lambda_context_model
    from aws_lambda_powertools.metrics.provider import cold_start
    from aws_lambda_powertools.utilities.jmespath_utils import query

    own_keys = {"function": logger.thread_safe_get_current_keys().get("function")}  # build()'s, this thread's
    # The models of `defer_build` (payments.models) this function's routes use are built now, at start, as every
    # other model is: its first request does not wait for them, and those no route of it uses are never built.
    for model in route_models(app):
        if not model.__pydantic_complete__:
            model.model_rebuild()

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
            with _FLUSHING:  # threads of the local stack share one Metrics: check and flush as one step
                if metrics.metric_set:
                    metrics.flush_metrics()
        return answer

    return cast(Handler, lambda_handler)
