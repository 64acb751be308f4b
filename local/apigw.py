"""A local stand-in for API Gateway HTTP API: HTTP request -> payload 2.0 event -> real handler -> HTTP response.

What it copies from API Gateway, because handlers can tell the difference:
- routes and their auth come from template.yaml; no route, or a method no route declares (TRACE, PROPFIND,
  any token) -> 404 {"message": "Not Found"};
- the JWT authorizer: missing, invalid or expired token -> 401 before any handler runs; claims reach the
  handler as strings, list claims in API Gateway's "[a b]" form;
- the event: lower-case headers (repeats comma-joined), `cookies`, comma-joined repeated query values,
  URL-decoded path parameters, a base64 body unless the content type is text or JSON/XML/JavaScript
  (form posts arrive base64-encoded too, as in AWS) and the body is valid UTF-8 (never altered);
- the response: a dict without `statusCode` is a 200 JSON body; `cookies` become Set-Cookie headers;
  a handler that raises or answers malformed -> 500 {"message": "Internal Server Error"}.
- each function is imported on its first request (a cold start); concurrent requests to one function get
  separate instances, as Lambda gives each concurrent request its own execution environment, and each
  request sees only its own event (Powertools keeps it per process; here, per thread);
- bursts: the server listens with a backlog of 1024 and a thread per connection, so 64+ clients at once
  get answers, not connection resets.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import mimetypes
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from local.template import LOCAL_ACCOUNT_ID, FunctionSpec, Route, find_route

LOCAL_API_ID = "local"
# The documented local default secret (docs/api.md#running-it-locally) is shorter than PyJWT recommends;
# it guards nothing real.
warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)
_TEXT_TYPES = ("application/json", "application/xml", "application/javascript")


# ---- request -> event -----------------------------------------------------------------------------


@dataclass
class HttpRequest:
    method: str
    target: str  # path and query as sent: /payments?limit=2
    headers: list[tuple[str, str]] = field(default_factory=list)  # in order, repeats kept
    body: bytes = b""
    source_ip: str = "127.0.0.1"

    @property
    def path(self) -> str:
        return urlsplit(self.target).path or "/"

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @classmethod
    def of_json(cls, status: int, document: Any, headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
        return cls(status, [("content-type", "application/json"), *headers], json.dumps(document).encode())

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def is_text(content_type: str | None) -> bool:
    """Whether API Gateway passes a body of this type as text (else it base64-encodes it)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in _TEXT_TYPES


def claims_as_api_gateway_passes(claims: Mapping[str, Any]) -> dict[str, str]:
    """Every claim as a string; lists in API Gateway's bracketed form: ["admin", "finance"] -> "[admin finance]"."""

    def text(value: Any) -> str:
        if isinstance(value, list | tuple):
            return "[" + " ".join(text(v) for v in value) + "]"
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, dict):
            return json.dumps(value, separators=(",", ":"))
        return str(value)

    return {name: text(value) for name, value in claims.items()}


def build_event(
    request: HttpRequest,
    route: Route,
    path_parameters: Mapping[str, str],
    claims: Mapping[str, Any] | None,
    *,
    now: datetime | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The API Gateway HTTP API payload format 2.0 event for `request` on `route`."""
    now = now or datetime.now(UTC)
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":  # API Gateway moves cookies out of the headers
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    host = headers.get("host", "127.0.0.1")
    headers.setdefault("x-forwarded-for", request.source_ip)
    headers.setdefault("x-forwarded-proto", "http")
    query: dict[str, str] = {}
    for name, value in parse_qsl(request.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    request_id = request_id or str(uuid.uuid4())
    request_context: dict[str, Any] = {
        "accountId": LOCAL_ACCOUNT_ID,
        "apiId": LOCAL_API_ID,
        "domainName": host,
        "domainPrefix": host.split(".", 1)[0],
        "http": {
            "method": request.method.upper(),
            "path": request.path,
            "protocol": "HTTP/1.1",
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route.route_key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if claims is not None:
        scope = claims.get("scope")
        request_context["authorizer"] = {
            "jwt": {
                "claims": claims_as_api_gateway_passes(claims),
                "scopes": str(scope).split() if scope else None,
            }
        }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": request.path,
        "rawQueryString": request.query,
        "headers": headers,
        "requestContext": request_context,
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if request.body:
        text = _utf8(request.body) if is_text(headers.get("content-type")) else None
        if text is not None:
            event["body"] = text
        else:  # as API Gateway passes what it cannot pass as text: the bytes unchanged, base64-encoded
            event["body"] = base64.b64encode(request.body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def _utf8(body: bytes) -> str | None:
    """`body` as text, or None if it is not valid UTF-8 (replacing bytes would change what the client sent)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


# ---- the JWT authorizer ---------------------------------------------------------------------------


class Unauthorized(Exception):
    """The token was missing or rejected; the message names why."""


def verify_bearer(authorization: str | None, secret: str) -> dict[str, Any]:
    """The claims of a valid local HS256 token from an Authorization header, else Unauthorized."""
    if not authorization or not authorization.strip():
        raise Unauthorized("missing bearer token")
    scheme, _, token = authorization.strip().partition(" ")
    # Like API Gateway's JWT authorizer, accept "Bearer <token>" or the bare token.
    token = token.strip() if scheme.lower() == "bearer" else authorization.strip()
    try:
        return dict(
            jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                options={"require": ["exp"], "verify_aud": False},
            )
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired") from exc
    except jwt.InvalidSignatureError as exc:
        raise Unauthorized("bad token signature") from exc
    except jwt.InvalidAlgorithmError as exc:
        raise Unauthorized("token algorithm not allowed (HS256 only)") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(f"token has no {exc.claim} claim") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token ({exc})") from exc


# ---- handler result -> response ------------------------------------------------------------------


def to_http_response(result: Any) -> HttpResponse:
    """A handler's return value as API Gateway turns it into HTTP (payload format 2.0)."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # 2.0 infers a response: the returned value is the JSON body of a 200.
        body = result if isinstance(result, str) else json.dumps(result)
        return HttpResponse(200, [("content-type", "application/json")], body.encode())
    status = result["statusCode"]
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"statusCode {status!r} is not an HTTP status")
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    headers += [("set-cookie", str(cookie)) for cookie in result.get("cookies") or []]
    text = result.get("body")
    if text is not None and not isinstance(text, str):
        raise ValueError(f"body is a {type(text).__name__}; API Gateway needs a string")
    if not text:
        payload = b""
    elif result.get("isBase64Encoded"):
        payload = base64.b64decode(text)
    else:
        payload = text.encode()
    return HttpResponse(status, headers, payload)


# ---- running handlers -----------------------------------------------------------------------------


class HandlerNotFound(Exception):
    pass


class LambdaContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    function_version = "$LATEST"
    log_stream_name = "local"

    def __init__(self, function_name: str, memory_limit_in_mb: int, timeout_s: int) -> None:
        self.function_name = function_name
        self.memory_limit_in_mb = memory_limit_in_mb
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:{LOCAL_ACCOUNT_ID}:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


Handler = Callable[[dict[str, Any], Any], Any]
_import_lock = threading.Lock()  # imports mutate sys.path and sys.modules


class _PerThread:
    """A data descriptor holding one value per thread. On a metaclass it also catches `Class.name = value`."""

    def __init__(self, values: threading.local, name: str) -> None:
        self._values, self._name = values, name

    def __get__(self, owner: object, owner_type: type | None = None) -> Any:
        try:
            return getattr(self._values, self._name)
        except AttributeError:
            raise AttributeError(self._name) from None

    def __set__(self, owner: object, value: Any) -> None:
        setattr(self._values, self._name, value)


def isolate_powertools_requests() -> None:
    """Keep Powertools' current event and Lambda context per thread (idempotent).

    Every resolver's `resolve()` stores them on the base class, `BaseRouter.current_event = ...`: Lambda gives
    a process one request at a time. Here all functions serve concurrent requests on threads of one process,
    so a handler could read another request's event, its caller's claims included.
    """
    with _import_lock:  # a function may be cold-starting on another thread (the stream poller's publisher)
        from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

    if isinstance(BaseRouter.__dict__.get("current_event"), _PerThread):
        return
    values = threading.local()
    names = ("current_event", "lambda_context")
    for name in names:  # instance reads and writes: resolver.current_event
        type.__setattr__(BaseRouter, name, _PerThread(values, name))
    # Class reads and writes, BaseRouter.current_event, go through the metaclass's descriptors.
    BaseRouter.__class__ = type(  # type: ignore[method-assign]
        "PerThreadRouterMeta", (type(BaseRouter),), {name: _PerThread(values, name) for name in names}
    )


class FunctionPool:
    """Warm instances of one function. A request takes an idle instance or cold-starts a new one."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self._idle: list[Handler] = []
        self._count = 0
        self._lock = threading.Lock()

    def _cold_start(self) -> Handler:
        path = self.spec.handler_file
        if not path.is_file():
            raise HandlerNotFound(f"{path} does not exist")
        with self._lock:
            self._count += 1
            module_name = f"_local_lambda_{self.spec.name}_{self._count}"
        with _import_lock:
            # As in Lambda, the function's own folder is importable while its module loads.
            sys.path.insert(0, str(self.spec.code_dir))
            try:
                module = _load_module(module_name, path)
            finally:
                sys.path.remove(str(self.spec.code_dir))
        handler = getattr(module, self.spec.handler_attribute, None)
        if not callable(handler):
            raise HandlerNotFound(f"{path} has no {self.spec.handler_attribute}")
        return cast(Handler, handler)

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:
            handler = self._idle.pop() if self._idle else None
        if handler is None:
            handler = self._cold_start()
        try:
            context = LambdaContext(self.spec.name, self.spec.memory_mb, self.spec.timeout_s)
            return handler(event, context)
        finally:
            with self._lock:
                self._idle.append(handler)


def _load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise HandlerNotFound(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


# ---- the API --------------------------------------------------------------------------------------

NOT_FOUND = {"message": "Not Found"}


@dataclass
class LocalApi:
    """Routes a request to its function the way API Gateway would. No sockets: the server below adds those."""

    routes: list[Route]
    functions: dict[str, FunctionSpec]
    jwt_secret: str
    web_dir: Path | None = None
    log: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr, flush=True))
    # Local-only helpers of the web page (local/dev.py web_routes), by (method, path); never in AWS.
    web_routes: Mapping[tuple[str, str], Callable[[HttpRequest], HttpResponse]] = field(default_factory=dict)
    _pools: dict[str, FunctionPool] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        isolate_powertools_requests()
        self._pools = {name: FunctionPool(spec) for name, spec in self.functions.items()}

    def handle(self, request: HttpRequest) -> HttpResponse:
        found = find_route(self.routes, request.method, request.path)
        if found is None:
            helper = self.web_routes.get((request.method.upper(), request.path))
            if helper is not None:
                return helper(request)
            return self._static(request) or HttpResponse.of_json(404, NOT_FOUND)
        route, path_parameters = found
        claims = None
        if not route.public:
            try:
                claims = verify_bearer(request.header("authorization"), self.jwt_secret)
            except Unauthorized as exc:
                challenge = f'Bearer error="invalid_token", error_description="{exc}"'
                return HttpResponse.of_json(401, {"message": f"Unauthorized: {exc}"}, [("www-authenticate", challenge)])
        event = build_event(request, route, path_parameters, claims)
        try:
            return to_http_response(self._pools[route.function].invoke(event))
        except HandlerNotFound as exc:
            self.log(f"{route.function}: handler not found: {exc}")
            return HttpResponse.of_json(502, {"message": "handler not found"})
        except Exception:
            self.log(f"{route.function} failed on {route.route_key}:\n{traceback.format_exc()}")
            return HttpResponse.of_json(500, {"message": "Internal Server Error"})

    def _static(self, request: HttpRequest) -> HttpResponse | None:
        """Files of local/web/ at / and /web/..., after every route."""
        if self.web_dir is None or request.method.upper() not in ("GET", "HEAD") or not self.web_dir.is_dir():
            return None
        path = request.path
        if path == "/":
            relative = "index.html"
        elif path.startswith("/web/"):
            relative = path.removeprefix("/web/") or "index.html"
        else:
            return None
        root = self.web_dir.resolve()
        file = (root / relative).resolve()
        if not file.is_relative_to(root) or not file.is_file():
            return None
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return HttpResponse(200, [("content-type", content_type)], file.read_bytes())


# ---- HTTP server ----------------------------------------------------------------------------------


class _RequestHandler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"
    # The headers and the body go out in two writes; with Nagle's algorithm the body waited for the client's
    # delayed ACK of the headers: ~40 ms on every answer of a kept-alive connection.
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        started = time.monotonic()
        length = int(self.headers.get("content-length") or 0)
        request = HttpRequest(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=self.rfile.read(length) if length else b"",
            source_ip=self.client_address[0],
        )
        response = self.server.api.handle(request)
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("content-length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client left early
                self.wfile.write(response.body)
        millis = (time.monotonic() - started) * 1000
        self.server.api.log(f"{self.command} {self.path} -> {response.status} ({millis:.0f} ms)")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def __getattr__(self, name: str) -> Any:
        # http.server answers a method without a do_ attribute with its HTML 501; API Gateway answers every
        # method, with the JSON 404 where no route declares it, so every method goes to the API.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # _serve logs one line per request instead


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's listen backlog is 5: a burst of clients got connection resets. API Gateway takes any
    # burst, so take hundreds (one thread per connection serves them; the kernel caps it at somaxconn).
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], api: LocalApi) -> None:
        self.api = api
        super().__init__(address, _RequestHandler)


def make_server(api: LocalApi, port: int, host: str = "127.0.0.1") -> ApiServer:
    return ApiServer((host, port), api)
