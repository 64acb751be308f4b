"""The local API Gateway stand-in: routes from a template, the JWT authorizer, payload 2.0 events, responses."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import sys
import threading
import time
import types
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from aws_lambda_powertools.metrics.provider import cold_start

from local.apigw import (
    HttpRequest,
    LocalApi,
    Unauthorized,
    build_event,
    claims_as_api_gateway_passes,
    to_http_response,
    verify_bearer,
)
from local.dev import StartupError, function_environment, lambda_runtime_environment
from local.resources import local_secret_value
from local.template import Resolver, Route, find_route, functions, load_template, routes
from local.token import make_token

SECRET = "unit-test-secret-that-is-long-enough"

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Parameters:
  Origin:
    Type: String
  Limit:
    Type: Number
    Default: 900
  Audience:
    Type: CommaDelimitedList
    Default: "a, b"
Globals:
  Function:
    Handler: app.lambda_handler
    Timeout: 7
    Environment:
      Variables:
        TABLE: !Ref Table
        LIMIT: !Ref Limit
        RETURN_URL: !Sub "${Origin}/back"
        TABLE_ARN: !GetAtt Table.Arn
        REGION_TEXT: !Sub "in ${AWS::Region} of ${AWS::AccountId}"
        AUD: !Ref Audience
        ODD: !FindInMap [A, B, C]
Resources:
  Table:
    Type: AWS::DynamoDB::Table
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/echo/
      MemorySize: 256
      Events:
        Get:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: "/payments/{id}", Method: GET}
        Exports:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: /payments/exports, Method: get}
        Hook:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: "/webhooks/{provider}", Method: POST, Auth: {Authorizer: NONE}}
        Files:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: "/files/{proxy+}", Method: ANY}
        Nightly:
          Type: Schedule
          Properties: {Schedule: rate(1 day)}
  MissingFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/missing/
      Events:
        Gone:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: /gone, Method: GET}
"""

ECHO_HANDLER = """\
import json
import os

COLD_STARTS = int(os.environ.get("UNIT_COLD_STARTS", "0")) + 1
os.environ["UNIT_COLD_STARTS"] = str(COLD_STARTS)
invocations = 0


def lambda_handler(event, context):
    global invocations
    invocations += 1
    path = event["rawPath"]
    if path.endswith("/boom"):
        raise RuntimeError("handler bug")
    if path.endswith("/plain"):
        return {"answer": 42}
    if path.endswith("/bad-status"):
        return {"statusCode": "teapot", "body": ""}
    if path.endswith("/wait"):
        import _unit_apigw_sync
        _unit_apigw_sync.barrier.wait(timeout=10)
        return {"statusCode": 200, "body": json.dumps({"instance": id(globals())})}
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-function": context.function_name},
        "cookies": ["a=1; Path=/", "b=2"],
        "body": json.dumps({
            "event": event,
            "invocations": invocations,
            "memory": context.memory_limit_in_mb,
            "remaining_ms": context.get_remaining_time_in_millis(),
        }),
    }
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    (tmp_path / "functions" / "echo").mkdir(parents=True)
    (tmp_path / "functions" / "echo" / "app.py").write_text(ECHO_HANDLER)
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "index.html").write_text("<h1>portal</h1>")
    (tmp_path / "secret.txt").write_text("outside web")
    return tmp_path


@pytest.fixture
def template(project: Path) -> dict:
    return load_template(project / "template.yaml")


@pytest.fixture
def api(project: Path, template: dict, monkeypatch: pytest.MonkeyPatch) -> LocalApi:
    monkeypatch.setenv("UNIT_COLD_STARTS", "0")  # the handler counts its imports here
    logged: list[str] = []
    local_api = LocalApi(routes(template), functions(template, project), SECRET, project / "web", logged.append)
    local_api.logged = logged  # type: ignore[attr-defined]
    return local_api


def bearer(**claims: object) -> tuple[str, str]:
    groups = claims.pop("groups", ["admin", "finance"])
    return ("Authorization", f"Bearer {make_token('acme', groups, secret=SECRET, **claims)}")  # type: ignore[arg-type]


def body_of(response) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(response.body)


# ---- template: routes and intrinsics --------------------------------------------------------------


def test_routes_come_from_the_templates_http_api_events(template: dict) -> None:
    found = {(r.route_key, r.function, r.public) for r in routes(template)}
    assert found == {
        ("GET /payments/{id}", "EchoFunction", False),
        ("GET /payments/exports", "EchoFunction", False),
        ("POST /webhooks/{provider}", "EchoFunction", True),
        ("ANY /files/{proxy+}", "EchoFunction", False),
        ("GET /gone", "MissingFunction", False),
    }


def test_routes_without_any_authorizer_are_public() -> None:
    template = {
        "Resources": {
            "F": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Events": {"E": {"Type": "HttpApi", "Properties": {"Path": "/x", "Method": "GET"}}}},
            }
        }
    }
    assert routes(template) == [Route("GET", "/x", "F", public=True)]


def test_a_literal_segment_beats_a_path_parameter_and_parameters_are_decoded(template: dict) -> None:
    all_routes = routes(template)
    route, params = find_route(all_routes, "GET", "/payments/exports")  # type: ignore[misc]
    assert (route.path, params) == ("/payments/exports", {})
    route, params = find_route(all_routes, "GET", "/payments/pay%2001")  # type: ignore[misc]
    assert (route.path, params) == ("/payments/{id}", {"id": "pay 01"})
    route, params = find_route(all_routes, "DELETE", "/files/a/b%2Fc.csv")  # type: ignore[misc]
    assert (route.route_key, params) == ("ANY /files/{proxy+}", {"proxy": "a/b/c.csv"})


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/payments/p1"), ("GET", "/payments"), ("GET", "/payments/p1/extra"), ("GET", "/files"), ("GET", "/")],
)
def test_no_route_for_other_methods_or_paths(template: dict, method: str, path: str) -> None:
    assert find_route(routes(template), method, path) is None


def test_functions_merge_globals_with_their_own_properties(project: Path, template: dict) -> None:
    echo = functions(template, project)["EchoFunction"]
    assert echo.handler_file == project / "functions" / "echo" / "app.py"
    assert (echo.handler_attribute, echo.memory_mb, echo.timeout_s) == ("lambda_handler", 256, 7)
    assert echo.environment["TABLE"] == {"Ref": "Table"}


def test_intrinsics_resolve_to_local_values_and_unknown_ones_to_a_placeholder(template: dict) -> None:
    resolver = Resolver(
        template,
        refs={"Table": "payments-local-Table"},
        attributes={("Table", "Arn"): "arn:aws:dynamodb:us-east-1:123456789012:table/payments-local-Table"},
        parameters={"Origin": "http://127.0.0.1:3000"},
    )
    env = function_environment(functions(template), resolver)
    assert env == {
        "TABLE": "payments-local-Table",
        "LIMIT": "900",
        "RETURN_URL": "http://127.0.0.1:3000/back",
        "TABLE_ARN": "arn:aws:dynamodb:us-east-1:123456789012:table/payments-local-Table",
        "REGION_TEXT": "in us-east-1 of 123456789012",
        "AUD": "a,b",
        "ODD": "local-unresolved-FindInMap",
    }


def test_one_variable_with_two_values_across_functions_stops_the_stack(template: dict) -> None:
    template["Resources"]["MissingFunction"]["Properties"]["Environment"] = {"Variables": {"LIMIT": "5"}}
    with pytest.raises(StartupError, match=r"LIMIT is '900' in EchoFunction but '5' in MissingFunction"):
        function_environment(functions(template), Resolver(template))


def test_only_lambda_runtime_variables_every_function_shares_are_set_in_the_one_process() -> None:
    # Name and memory differ per function; the process's environment is shared by concurrent requests.
    assert lambda_runtime_environment(load_template()) == {
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    }
    mixed = load_template()
    mixed["Resources"]["ReconcileFunction"]["Properties"]["Runtime"] = "python3.13"
    assert lambda_runtime_environment(mixed) == {"AWS_LAMBDA_FUNCTION_VERSION": "$LATEST"}


def test_a_json_secret_naming_gateway_credentials_gets_the_local_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_from_shell")
    value = json.loads(local_secret_value({"SecretString": '{"stripe_secret_key": "", "other": "kept"}'}))
    assert value == {"stripe_secret_key": "sk_test_from_shell", "other": "kept"}
    generated = local_secret_value({"GenerateSecretString": {"PasswordLength": 64}})
    assert len(generated) >= 32
    assert generated != local_secret_value({"GenerateSecretString": {"PasswordLength": 64}})


# ---- the event ------------------------------------------------------------------------------------


def test_event_is_api_gateway_payload_2_0(template: dict) -> None:
    route, params = find_route(routes(template), "GET", "/payments/pay_1")  # type: ignore[misc]
    request = HttpRequest(
        "GET",
        "/payments/pay_1?status=pending&tag=a&tag=b&empty=",
        headers=[
            ("Host", "127.0.0.1:3000"),
            ("User-Agent", "curl/8"),
            ("X-Trace", "one"),
            ("x-trace", "two"),
            ("Cookie", "session=abc; theme=dark"),
        ],
        source_ip="10.0.0.7",
    )
    now = datetime(2026, 11, 25, 17, 5, 9, 123000, tzinfo=UTC)
    claims = {"sub": "u1", "exp": 1795600000, "cognito:groups": ["admin", "finance"], "email_verified": True}
    event = build_event(request, route, params, claims, now=now, request_id="req-1")

    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /payments/{id}"
    assert event["rawPath"] == "/payments/pay_1"
    assert event["rawQueryString"] == "status=pending&tag=a&tag=b&empty="
    assert event["queryStringParameters"] == {"status": "pending", "tag": "a,b", "empty": ""}
    assert event["pathParameters"] == {"id": "pay_1"}
    assert event["cookies"] == ["session=abc", "theme=dark"]
    assert event["headers"]["x-trace"] == "one,two"
    assert "cookie" not in event["headers"]
    assert event["headers"]["user-agent"] == "curl/8"
    assert event["isBase64Encoded"] is False
    assert "body" not in event
    context = event["requestContext"]
    assert context["routeKey"] == "GET /payments/{id}"
    assert context["stage"] == "$default"
    assert context["requestId"] == "req-1"
    assert context["domainName"] == "127.0.0.1:3000"
    assert context["http"] == {
        "method": "GET",
        "path": "/payments/pay_1",
        "protocol": "HTTP/1.1",
        "sourceIp": "10.0.0.7",
        "userAgent": "curl/8",
    }
    assert context["time"] == "25/Nov/2026:17:05:09 +0000"
    assert context["timeEpoch"] == 1795626309123
    assert context["authorizer"]["jwt"] == {
        "claims": {"sub": "u1", "exp": "1795600000", "cognito:groups": "[admin finance]", "email_verified": "true"},
        "scopes": None,
    }


def test_public_route_events_carry_no_authorizer_and_text_bodies_stay_text(template: dict) -> None:
    route, params = find_route(routes(template), "POST", "/webhooks/stripe")  # type: ignore[misc]
    body = '{"type": "payment_intent.succeeded", "amount": "12.50 €"}'.encode()
    request = HttpRequest("POST", "/webhooks/stripe", [("Content-Type", "application/json; charset=utf-8")], body)
    event = build_event(request, route, params, None)
    assert "authorizer" not in event["requestContext"]
    assert event["body"] == body.decode()
    assert event["isBase64Encoded"] is False
    assert "queryStringParameters" not in event


@pytest.mark.parametrize("content_type", ["application/octet-stream", "application/x-www-form-urlencoded", None])
def test_non_text_bodies_arrive_base64_encoded(template: dict, content_type: str | None) -> None:
    route, params = find_route(routes(template), "POST", "/webhooks/paypal")  # type: ignore[misc]
    body = b"\x00\xffa=1&b=2"
    headers = [("Content-Type", content_type)] if content_type else []
    event = build_event(HttpRequest("POST", "/webhooks/paypal", headers, body), route, params, None)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


@pytest.mark.parametrize("body", [b'{"amount": "12.50 \xff"}', b'{"note": "\xed\xa0\x80"}', b"\xc3"])
def test_a_text_body_that_is_not_utf8_arrives_base64_encoded_byte_for_byte(template: dict, body: bytes) -> None:
    route, params = find_route(routes(template), "POST", "/webhooks/stripe")  # type: ignore[misc]
    request = HttpRequest("POST", "/webhooks/stripe", [("Content-Type", "application/json")], body)
    event = build_event(request, route, params, None)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_claims_are_strings_with_lists_in_bracket_form() -> None:
    assert claims_as_api_gateway_passes({"cognito:groups": ["operator"], "n": 3, "m": {"k": 1}}) == {
        "cognito:groups": "[operator]",
        "n": "3",
        "m": '{"k":1}',
    }


# ---- the JWT authorizer ---------------------------------------------------------------------------


def test_a_valid_token_gives_its_claims() -> None:
    token = make_token("acme", ["finance"], sub="u-7", email="u7@acme.test", secret=SECRET)
    claims = verify_bearer(f"Bearer {token}", SECRET)
    assert claims["sub"] == "u-7"
    assert claims["email"] == "u7@acme.test"
    assert claims["custom:customer_id"] == "acme"
    assert claims["cognito:groups"] == ["finance"]
    assert verify_bearer(token, SECRET)["sub"] == "u-7"  # API Gateway also accepts the bare token


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing bearer token"),
        ("", "missing bearer token"),
        ("Bearer not-a-jwt", "invalid token"),
        ("Bearer " + make_token("acme", ["finance"], secret="another-secret-of-sufficient-length"), "signature"),
        ("Bearer " + make_token("acme", ["finance"], secret=SECRET, ttl=-60), "token expired"),
        ("Bearer " + jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, None, algorithm="none"), "algorithm"),
        ("Bearer " + jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, SECRET, algorithm="HS512"), "algorithm"),
        ("Bearer " + jwt.encode({"sub": "x"}, SECRET, algorithm="HS256"), "no exp claim"),
    ],
    # Fixed ids: the tokens hold the time they were made, and every test process must collect the same names.
    ids=["none", "empty", "not-a-jwt", "other-secret", "expired", "alg-none", "alg-hs512", "no-exp"],
)
def test_bad_tokens_are_rejected_with_the_reason(header: str | None, reason: str) -> None:
    with pytest.raises(Unauthorized, match=reason):
        verify_bearer(header, SECRET)


# ---- responses ------------------------------------------------------------------------------------


def test_a_full_response_becomes_http_with_cookies_as_set_cookie_headers() -> None:
    response = to_http_response(
        {
            "statusCode": 201,
            "headers": {"content-type": "application/json", "location": "/payments/p1"},
            "cookies": ["a=1", "b=2; Secure"],
            "body": '{"id": "p1"}',
        }
    )
    assert response.status == 201
    assert response.headers == [
        ("content-type", "application/json"),
        ("location", "/payments/p1"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2; Secure"),
    ]
    assert json.loads(response.body) == {"id": "p1"}


def test_base64_bodies_are_decoded_and_a_missing_body_is_empty() -> None:
    raw = b"\xef\xbb\xbfDate/Time,Total\r\n"
    response = to_http_response({"statusCode": 200, "body": base64.b64encode(raw).decode(), "isBase64Encoded": True})
    assert response.body == raw
    assert to_http_response({"statusCode": 204}).body == b""


@pytest.mark.parametrize("result", [{"items": []}, [1, 2], '"just text"'])
def test_a_result_without_status_code_is_a_200_json_body(result: object) -> None:
    response = to_http_response(result)
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert json.loads(response.body) == (json.loads(result) if isinstance(result, str) else result)


def test_a_malformed_status_code_is_an_error() -> None:
    with pytest.raises(ValueError, match="teapot"):
        to_http_response({"statusCode": "teapot"})


# ---- the whole path, without sockets --------------------------------------------------------------


def test_a_protected_route_passes_the_callers_claims_to_the_real_handler(api: LocalApi) -> None:
    response = api.handle(HttpRequest("GET", "/payments/pay_9?limit=2", [bearer(sub="alice", groups=["support"])]))
    assert response.status == 200
    assert response.header("x-function") == "EchoFunction"
    assert [v for k, v in response.headers if k == "set-cookie"] == ["a=1; Path=/", "b=2"]
    answer = body_of(response)
    claims = answer["event"]["requestContext"]["authorizer"]["jwt"]["claims"]
    assert (claims["sub"], claims["custom:customer_id"], claims["cognito:groups"]) == ("alice", "acme", "[support]")
    assert answer["event"]["pathParameters"] == {"id": "pay_9"}
    assert answer["memory"] == 256
    assert 0 < answer["remaining_ms"] <= 7000


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ([], "Unauthorized: missing bearer token"),
        ([("Authorization", "Bearer " + make_token("acme", ["admin"], secret="some-other-secret-0123456789abcdef"))],
         "Unauthorized: bad token signature"),
        ([("Authorization", "Bearer " + make_token("acme", ["admin"], secret=SECRET, ttl=-1))],
         "Unauthorized: token expired"),
    ],
)  # fmt: skip
def test_no_handler_runs_without_a_valid_token(api: LocalApi, headers: list[tuple[str, str]], message: str) -> None:
    response = api.handle(HttpRequest("GET", "/payments/pay_9", headers))
    assert response.status == 401
    assert body_of(response) == {"message": message}
    assert os.environ["UNIT_COLD_STARTS"] == "0"  # the handler was never even imported


def test_public_routes_need_no_token(api: LocalApi) -> None:
    response = api.handle(HttpRequest("POST", "/webhooks/stripe", [("content-type", "application/json")], b"{}"))
    assert response.status == 200
    assert body_of(response)["event"]["body"] == "{}"


def test_unknown_routes_are_404_like_api_gateway(api: LocalApi) -> None:
    for method, path in [("GET", "/nowhere"), ("DELETE", "/payments/pay_1"), ("GET", "/payments")]:
        response = api.handle(HttpRequest(method, path, [bearer()]))
        assert (response.status, body_of(response)) == (404, {"message": "Not Found"})


def test_a_function_is_imported_once_and_stays_warm(api: LocalApi) -> None:
    first = body_of(api.handle(HttpRequest("GET", "/payments/a", [bearer()])))
    second = body_of(api.handle(HttpRequest("GET", "/payments/b", [bearer()])))
    assert (first["invocations"], second["invocations"]) == (1, 2)
    assert os.environ["UNIT_COLD_STARTS"] == "1"


def test_concurrent_requests_get_separate_instances(api: LocalApi, monkeypatch: pytest.MonkeyPatch) -> None:
    # Both requests must be inside the handler at once to pass the barrier; an instance serves one at a time.
    monkeypatch.setitem(sys.modules, "_unit_apigw_sync", types.SimpleNamespace(barrier=threading.Barrier(2)))
    assert api.handle(HttpRequest("GET", "/files/plain", [bearer()])).status == 200  # one warm instance
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: api.handle(HttpRequest("GET", "/files/wait", [bearer()])), range(2)))
    assert [a.status for a in answers] == [200, 200]
    assert len({body_of(a)["instance"] for a in answers}) == 2
    assert os.environ["UNIT_COLD_STARTS"] == "2"  # the warm one was reused, one more was started


def test_a_dict_without_status_code_is_answered_as_200_json(api: LocalApi) -> None:
    response = api.handle(HttpRequest("GET", "/files/plain", [bearer()]))
    assert (response.status, body_of(response)) == (200, {"answer": 42})


@pytest.mark.parametrize("path", ["/files/boom", "/files/bad-status"])
def test_handler_failures_are_500_with_the_cause_on_the_console(api: LocalApi, path: str) -> None:
    response = api.handle(HttpRequest("GET", path, [bearer()]))
    assert (response.status, body_of(response)) == (500, {"message": "Internal Server Error"})
    assert "Traceback" in api.logged[-1]  # type: ignore[attr-defined]


def test_a_handler_file_that_does_not_exist_yet_is_502(api: LocalApi) -> None:
    response = api.handle(HttpRequest("GET", "/gone", [bearer()]))
    assert (response.status, body_of(response)) == (502, {"message": "handler not found"})


def test_web_files_are_served_after_routes_and_never_outside_the_folder(api: LocalApi) -> None:
    for path in ("/", "/web/index.html"):
        response = api.handle(HttpRequest("GET", path))
        assert (response.status, response.body, response.header("content-type")) == (
            200,
            b"<h1>portal</h1>",
            "text/html",
        )
    for path in ("/web/../secret.txt", "/web/%2e%2e/secret.txt", "/web/missing.js"):
        assert api.handle(HttpRequest("GET", path)).status == 404


def test_a_body_that_is_not_a_string_is_an_error_as_in_api_gateway() -> None:
    with pytest.raises(ValueError, match="needs a string"):
        to_http_response({"statusCode": 200, "body": {"items": []}})


# ---- real Powertools handlers sharing the one local process -----------------------------------------

POWERTOOLS_TEMPLATE = """\
Globals:
  Function:
    Handler: app.lambda_handler
    Timeout: 10
Resources:
  AlphaFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/alpha/
      Events:
        Any:
          Type: HttpApi
          Properties: {Path: "/alpha/{action}", Method: GET}
  BetaFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/beta/
      Events:
        Any:
          Type: HttpApi
          Properties: {Path: "/beta/{action}", Method: GET}
"""

# What every function of the service does (shared/payments/api.py), labelled by its folder.
POWERTOOLS_HANDLER = """\
from pathlib import Path

import _unit_apigw_sync
from payments import api

NAME = Path(__file__).parent.name
app, logger, tracer, metrics = api.build(NAME)


@app.get(f"/{NAME}/together")
def together():
    _unit_apigw_sync.barrier.wait(timeout=10)  # the other function's request is inside its handler too
    logger.info("inside", extra={"step": "after the barrier"})
    return {"path": app.current_event.path, "request_id": app.current_event.request_context.request_id}


@app.get(f"/{NAME}/counted")
def counted():
    metrics.add_metric(name=f"{NAME}_counted", unit="Count", value=1)
    return {}


@app.get(f"/{NAME}/quiet")
def quiet():
    return {}


lambda_handler = api.entrypoint(app, logger, tracer, metrics)
"""


@pytest.fixture
def powertools_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalApi:
    (tmp_path / "template.yaml").write_text(POWERTOOLS_TEMPLATE)
    for name in ("alpha", "beta"):
        (tmp_path / "functions" / name).mkdir(parents=True)
        (tmp_path / "functions" / name / "app.py").write_text(POWERTOOLS_HANDLER)
    monkeypatch.setitem(sys.modules, "_unit_apigw_sync", types.SimpleNamespace(barrier=threading.Barrier(2)))
    template = load_template(tmp_path / "template.yaml")
    return LocalApi(routes(template), functions(template, tmp_path), SECRET, None, lambda line: None)


def _log_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def test_concurrent_requests_to_two_functions_each_see_their_own_event_and_log_their_own_labels(
    powertools_api: LocalApi,
) -> None:
    for name in ("alpha", "beta"):  # one warm instance each, and the layer's Powertools logger exists
        assert powertools_api.handle(HttpRequest("GET", f"/{name}/quiet")).status == 200
    handler = logging.getLogger(os.environ["POWERTOOLS_SERVICE_NAME"]).powertools_handler  # type: ignore[attr-defined]
    logged = io.StringIO()
    previous = handler.setStream(logged)
    try:
        with ThreadPoolExecutor(2) as pool:
            paths = ["/alpha/together", "/beta/together"]
            answers = list(pool.map(lambda path: powertools_api.handle(HttpRequest("GET", path)), paths))
    finally:
        handler.setStream(previous)

    assert [(a.status, body_of(a)["path"]) for a in answers] == [(200, "/alpha/together"), (200, "/beta/together")]
    request_ids = {body_of(a)["path"].split("/")[1]: body_of(a)["request_id"] for a in answers}
    lines = [line for line in _log_lines(logged) if line.get("step") == "after the barrier"]
    labels = {(line["function"], line["function_name"], line["correlation_id"]) for line in lines}
    assert labels == {
        ("alpha", "AlphaFunction", request_ids["alpha"]),
        ("beta", "BetaFunction", request_ids["beta"]),
    }


def test_only_metrics_that_exist_are_published_and_the_cold_start_one_is_kept(
    powertools_api: LocalApi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.setattr(cold_start, "is_cold_start", True)  # this process's first invocation

    def published(path: str) -> list[list[str]]:
        """The metric names of each EMF document a request printed; fails on any warning."""
        capsys.readouterr()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert powertools_api.handle(HttpRequest("GET", path)).status == 200
        assert [str(w.message) for w in caught] == []
        documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
        return [[m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]] for doc in documents]

    assert published("/alpha/quiet") == [["ColdStart"]]
    assert published("/alpha/quiet") == []
    assert published("/alpha/counted") == [["alpha_counted"]]
    assert published("/beta/quiet") == []
