"""The real local stack (`python -m local.dev`) as a subprocess on free ports, for HTTP tests against it.

Fixtures: `stack` (session; SEED_DEMO=0, GATEWAY_SIM=on, a test-only JWT secret), `launch_stack(**env)` for a
further stack that lives for one test, `run_dev(**env)` for a stack expected to stop by itself, and `browser`
(session: one headless Chromium for the page's tests, each of which opens a context of its own). A stack's
console output is attached to every failing test that used it. Each stack keeps its state (LOCAL_STATE_DIR)
in its own temporary folder unless the test passes one, so no test ever reads or writes a developer's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.ports import free_ports
from local.resources import physical_name
from local.template import load_template
from local.token import make_token

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 60
JWT_SECRET = "e2e-local-stack-secret-0123456789abcdef"
# Only what a Python process needs: the stack must not inherit the test session's AWS or service settings.
_PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


def stack_env(**overrides: str) -> dict[str, str]:
    env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    env.update(overrides)
    return env


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    api_url: str
    aws_endpoint: str
    sim_url: str
    jwt_secret: str
    ports: dict[str, int]
    log_path: Path

    def token(self, customer: str | None, groups: tuple[str, ...] | list[str] = ("finance",), **claims: Any) -> str:
        """A token the stack accepts (its own secret)."""
        return make_token(customer, list(groups), secret=self.jwt_secret, **claims)

    def aws(self, service: str) -> Any:
        """A real boto3 client against the stack's embedded AWS."""
        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def resource_name(self, logical_id: str) -> str:
        """The physical name the stack gave a table or bucket of template.yaml."""
        return physical_name(logical_id, load_template()["Resources"][logical_id]["Type"])

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
    ) -> Response:
        url = self.api_url + path  # always http://127.0.0.1
        request = urllib.request.Request(url, method=method, headers=dict(headers or {}))  # noqa: S310
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        data = body.encode() if isinstance(body, str) else body
        try:
            with urllib.request.urlopen(request, data=data, timeout=30) as answer:  # noqa: S310 - 127.0.0.1 only
                return Response(answer.status, dict(answer.headers), answer.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, dict(error.headers), error.read())

    def output(self) -> str:
        if not self.log_path.exists():  # the session's stack, stopped and cleaned up before its last report
            return "(the stack has stopped; its output is gone)"
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, as Ctrl-C would; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


def _answers_http(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return conn.recv(12).startswith(b"HTTP/1.")
    except OSError:
        return False


def start_stack(**env: str) -> Stack:
    """Start `python -m local.dev` on free ports and wait until its API answers."""
    aws_port, sim_port, api_port = free_ports(3)
    ports = {"AWS_PORT": aws_port, "GATEWAY_SIM_PORT": sim_port, "API_PORT": api_port}
    settings = {
        "SEED_DEMO": "0",
        "GATEWAY_SIM": "on",
        "LOCAL_JWT_SECRET": JWT_SECRET,
        **{name: str(port) for name, port in ports.items()},
        **env,
    }
    # A file, not a pipe: a chatty stack can never block on a full pipe.
    log_path = Path(tempfile.mkdtemp(prefix="local-stack-")) / "output.log"
    settings.setdefault("LOCAL_STATE_DIR", str(log_path.parent / "state"))
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.dev"], cwd=ROOT, env=stack_env(**settings), stdout=log, stderr=log
        )
    stack = Stack(
        process=process,
        api_url=f"http://127.0.0.1:{api_port}",
        aws_endpoint=f"http://127.0.0.1:{aws_port}",
        sim_url=f"http://127.0.0.1:{sim_port}",
        jwt_secret=settings["LOCAL_JWT_SECRET"],
        ports=ports,
        log_path=log_path,
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not _answers_http(api_port):
        if process.poll() is not None or time.monotonic() > deadline:
            stack.stop()
            pytest.fail(f"the local stack did not start (exit {process.returncode}):\n{stack.output()}")
        time.sleep(0.2)
    return stack


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium through Playwright (`executable_path`; Playwright downloads no browser), launched once
    for test_web_page.py and test_web_views.py: every test works in a browser context of its own."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    running = start_stack()
    yield running
    running.stop()
    shutil.rmtree(running.log_path.parent, ignore_errors=True)


class Launcher:
    """Starts further stacks for one test and stops them after it."""

    def __init__(self) -> None:
        self.stacks: list[Stack] = []

    def __call__(self, **env: str) -> Stack:
        self.stacks.append(start_stack(**env))
        return self.stacks[-1]


@pytest.fixture
def launch_stack() -> Iterator[Launcher]:
    launcher = Launcher()
    yield launcher
    for running in launcher.stacks:
        running.stop()
        shutil.rmtree(running.log_path.parent, ignore_errors=True)


@pytest.fixture
def run_dev() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `python -m local.dev` to completion with these variables (for stacks that must not start)."""

    def run(**env: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "local.dev"]
        settings = {"LOCAL_STATE": "off", **env}  # never a developer's state, should one start after all
        return subprocess.run(command, cwd=ROOT, env=stack_env(**settings), capture_output=True, text=True, timeout=30)

    return run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    running = [funcargs["stack"]] if isinstance(funcargs.get("stack"), Stack) else []
    if isinstance(funcargs.get("launch_stack"), Launcher):
        running += funcargs["launch_stack"].stacks
    for index, one in enumerate(running):
        report.sections.append((f"local stack {index + 1} output", one.output()[-20_000:]))


E2E = Path(__file__).resolve().parent


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """No coverage tracing around an e2e test (setup, call and teardown). The code they test runs in the stack's own
    process, which is not measured; what the tracer would follow here is the clients (Playwright, requests,
    schemathesis and hypothesis), which it slowed by about a third. Every e2e assertion still runs."""
    coverage = item.config.pluginmanager.getplugin("_cov")
    controller = getattr(coverage, "cov_controller", None)
    if controller is None or E2E not in item.path.parents or not controller.started:
        yield
        return
    controller.pause()
    try:
        yield
    finally:
        controller.resume()
