"""Shared fixtures: one embedded AWS (moto in server mode) per test session, real boto3 clients.

Tests talk to moto over HTTP exactly as the handlers do in `make dev`; resources are created from
template.yaml by the same code the local stack uses, so tests and template cannot drift.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from local.defaults import LOCAL_GATEWAY_ENV
from local.ports import free_ports

ROOT = Path(__file__).resolve().parents[1]

# Set before any handler module is imported: handlers read configuration at import and first use.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_NAMESPACE="PaymentsTest",
    POWERTOOLS_SERVICE_NAME="payments",
    CURSOR_SECRET="test-cursor-key",
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("GATEWAY_SECRET_ARN", None)
os.environ.pop("CURSOR_SECRET_ARN", None)
for _name, _value in LOCAL_GATEWAY_ENV.items():  # the gateway simulator's credentials (local/defaults.py)
    os.environ.setdefault(_name, _value)


def free_port() -> int:
    return free_ports(1)[0]


_CLIENTS: dict[tuple[str, str | None], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def aws_client(service: str) -> Any:
    """A boto3 client for `service` at the current endpoint (AWS_ENDPOINT_URL), made once and then shared: making
    one costs ~15 ms, more than most requests to the embedded AWS, and tests read stored state thousands of times.
    boto3 clients are thread-safe; only their creation is not, hence the lock."""
    import boto3

    key = (service, os.environ.get("AWS_ENDPOINT_URL"))
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = boto3.client(service)
        return _CLIENTS[key]


# The embedded AWS of local/embedded_aws.py (moto, with its patches), served by a process of its own until its
# standard input closes: when the session ends, or if it dies.
_EMBEDDED_AWS = """
import logging, os, sys
from local import embedded_aws
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
embedded_aws.start(int(sys.argv[1]))
print("ready", flush=True)
sys.stdin.read()
os._exit(0)
"""


def start_embedded_aws(port: int, log_path: Path) -> subprocess.Popen[str]:
    """moto in a process of its own, not a thread of the test session's: the session's coverage tracer slows down
    every Python line it runs (about half the handler tests' time went to moto under `--cov`; moto is no code of
    ours to measure), and on two cores it runs beside the tests. Same server, same patches, same HTTP."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("COVERAGE_")}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _EMBEDDED_AWS, str(port)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise RuntimeError(f"the embedded AWS did not start:\n{log_path.read_text(errors='replace')}")
    return process


@pytest.fixture(scope="session")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The embedded AWS for in-process tests: endpoint and the physical resource names."""
    from local.resources import create_resources
    from local.template import load_template

    port = free_port()
    server = start_embedded_aws(port, tmp_path_factory.mktemp("embedded-aws") / "output.log")
    endpoint = f"http://127.0.0.1:{port}"
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    names = create_resources(load_template(), region="us-east-1").refs
    os.environ.update(
        PAYMENTS_TABLE_NAME=names["PaymentsTable"],
        IDEMPOTENCY_TABLE_NAME=names["IdempotencyTable"],
        EXPORTS_BUCKET_NAME=names["ExportsBucket"],
        EVENT_BUS_NAME=names["EventBus"],
        # Outbound webhooks (docs/webhooks-outbound.md): as the local stack sets them, receivers on 127.0.0.1.
        WEBHOOK_KEY_ID=names["WebhookSecretsKey"],
        WEBHOOK_QUEUE_URL=names["WebhookDeliveries"],
        WEBHOOK_DLQ_URL=names["WebhookDeliveriesDLQ"],
        WEBHOOK_ALLOW_LOOPBACK="1",
    )
    from payments.config import settings

    settings.cache_clear()
    yield {"endpoint": endpoint, **names}
    assert server.stdin is not None
    server.stdin.close()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.fixture
def customer() -> str:
    """A fresh customer id per test: tests share the table but never each other's partition."""
    return f"cust-{uuid.uuid4().hex[:12]}"


_LOADING = threading.Lock()


class _ContextPerThread:
    """A resolver's `context` (Powertools keeps the route being resolved and its arguments there, and clears it when
    `resolve()` ends), one per thread and resolver."""

    def __init__(self) -> None:
        self._values = threading.local()

    def _mine(self) -> dict[int, dict[str, Any]]:
        if not hasattr(self._values, "by_resolver"):
            self._values.by_resolver = {}
        return self._values.by_resolver  # type: ignore[no-any-return]

    def __get__(self, resolver: object, owner: type | None = None) -> Any:
        if resolver is None:
            return self
        return self._mine().setdefault(id(resolver), {})

    def __set__(self, resolver: object, value: dict[str, Any]) -> None:
        self._mine()[id(resolver)] = value


def _one_event_per_thread() -> None:
    """In-process tests call handlers from several threads at once, as the local stack does; Powertools keeps
    the current event per process (Lambda's one request at a time), so keep it per thread here too. Unlike the
    local stack, which gives each concurrent request a warm instance of its own, these threads share one module
    and so one resolver: its `context` is per thread too, or one request's end clears the route another request
    is validating (KeyError: '_route')."""
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver

    from local.apigw import isolate_powertools_requests

    isolate_powertools_requests()
    if not isinstance(ApiGatewayResolver.__dict__.get("context"), _ContextPerThread):
        ApiGatewayResolver.context = _ContextPerThread()  # type: ignore[assignment]


_one_event_per_thread()


def load_function(name: str) -> ModuleType:
    """Import functions/<name>/app.py as Lambda would (the layer is already on sys.path). Thread-safe: a test's
    parallel callers may be the first to need it."""
    module_name = f"fn_{name}"
    with _LOADING:
        if module_name in sys.modules:
            return sys.modules[module_name]
        spec = importlib.util.spec_from_file_location(module_name, ROOT / "functions" / name / "app.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
        return module


class FakeContext:
    function_name = "test-function"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id = "test-request"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def http_event(
    method: str,
    path: str,
    *,
    route: str | None = None,
    claims: dict[str, Any] | None = None,
    query: dict[str, str] | None = None,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    path_params: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, as the JWT authorizer would pass it."""
    from urllib.parse import urlencode

    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "local",
        "domainName": "localhost",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
        "requestId": uuid.uuid4().hex,
        "routeKey": f"{method} {route or path}",
        "stage": "$default",
        "time": "25/Nov/2026:12:00:00 +0000",
        "timeEpoch": 1795608000000,
    }
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return {
        "version": "2.0",
        "routeKey": context["routeKey"],
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": {"content-type": "application/json", **{k.lower(): v for k, v in (headers or {}).items()}},
        "queryStringParameters": query or None,
        "pathParameters": path_params or None,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": False,
    }


def claims_for(customer: str | None, *groups: str, sub: str = "user-1", email: str = "user@example.com") -> dict:
    claims: dict[str, Any] = {"sub": sub, "email": email, "cognito:groups": "[" + " ".join(groups) + "]"}
    if customer is not None:
        claims["custom:customer_id"] = customer
    return claims


def invoke(module: ModuleType, event: dict[str, Any]) -> tuple[int, Any]:
    """Call a handler and decode its JSON answer."""
    import json

    answer = module.lambda_handler(event, FakeContext())
    body = answer.get("body") or "null"
    return answer["statusCode"], json.loads(body) if body.lstrip()[:1] in "{[n" else body


@pytest.fixture(scope="session")
def gateway_sim(aws: dict[str, str]) -> Iterator[Any]:
    """The local gateway simulator, with every adapter's API base pointed at it (as `make dev` does)."""
    from local.gateway_sim import GatewaySimulator

    sim = GatewaySimulator("http://127.0.0.1:9")  # webhooks are sent by the tests themselves here
    sim.start()
    os.environ.update(sim.api_base_env())
    yield sim
    sim.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """No simulator webhook outlives the test that caused it. Gateways send some webhooks a moment after their
    answer (a Razorpay refund's refund.processed, PayPal's capture); on a simulator shared by the session, one
    still due would reach the next test, whose `responses` mock or request count would record it as its own."""
    yield
    server = sys.modules.get("local.gateway_sim.server")
    if server is not None:
        server.GatewaySimulator.quiesce_all()


# ---- how long the run took (make bench reports the last full run's: docs/benchmarks.md) ----------------------------

RUN_RECORD = Path(__file__).resolve().parents[1] / ".local" / "test-run.json"
_STARTED = pytest.StashKey[float]()


def pytest_sessionstart(session: pytest.Session) -> None:
    import time

    session.config.stash[_STARTED] = time.monotonic()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The run's wall time, written by the controlling process of a run of the whole suite (no paths, no -k)."""
    import json
    import time

    config = session.config
    whole = not config.option.keyword and not config.option.markexpr and config.args in ([], ["tests"])
    if hasattr(config, "workerinput") or not whole or _STARTED not in config.stash:
        return
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False).stdout
    record = {
        "seconds": round(time.monotonic() - config.stash[_STARTED], 1),
        "tests": session.testscollected,
        "failed": session.testsfailed,
        "workers": getattr(config.option, "numprocesses", None),
        "coverage": bool(getattr(config.option, "cov_source", None)),
        "commit": commit.strip(),
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    RUN_RECORD.parent.mkdir(exist_ok=True)
    RUN_RECORD.write_text(json.dumps(record) + "\n")
