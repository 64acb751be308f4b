"""The simulator's HTTP server: one local port for every gateway in GATEWAYS (each below /<name>) and the
control API (/_sim/...), dispatched under one lock; `serve()` and the command line."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import secrets
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local.gateway_sim.base import Answer, Handler, Host, Refusal, Request, SimGateway, Webhook
from local.gateway_sim.control import Control
from payments.registry import GATEWAYS as REGISTERED

# Every simulated gateway, in the order GET /_sim/objects and local/defaults.py list them.
# One simulator module per gateway of the registry, named as its provider: local/gateway_sim/<provider>.py.
GATEWAYS: tuple[type[SimGateway], ...] = tuple(
    importlib.import_module(f"local.gateway_sim.{entry.provider}").GATEWAY for entry in REGISTERED
)

# Every simulator of this process that has webhooks still to send later (GatewaySimulator.quiesce_all).
_WAITING: weakref.WeakSet[GatewaySimulator] = weakref.WeakSet()


class GatewaySimulator:
    """Every gateway of GATEWAYS on one local HTTP port. Thread-safe; everything is kept in memory."""

    def __init__(self, api_base: str, *, verbose: bool = False) -> None:
        self._lock = threading.RLock()
        self._server: _SimServer | None = None
        self._thread: threading.Thread | None = None
        self._host = "127.0.0.1"
        self._port = 0
        # Private material of this run: PayPal "RSA" signatures are HMACs under it; card fingerprints salt.
        self._timers: set[threading.Timer] = set()
        self._timers_lock = threading.Lock()
        host = Host(
            base_url=lambda: self.base_url, secret=secrets.token_bytes(32), deliver=self._deliver, later=self._later
        )
        self._gateways: dict[str, SimGateway] = {gateway.name: gateway(host) for gateway in GATEWAYS}
        self._control = Control(self._gateways, self._lock, api_base, verbose=verbose)
        self._unrouted_lock = threading.Lock()
        self._unrouted: list[str] = []
        self._routes = self._build_routes()

    @property
    def api_base(self) -> str:
        """Where webhooks go: {api_base}/webhooks/{provider}."""
        return self._control.api_base

    @property
    def verbose(self) -> bool:
        return self._control.verbose

    @verbose.setter
    def verbose(self, value: bool) -> None:
        self._control.verbose = value

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port (0 = any free port) in a background thread; returns the bound port.
        OSError if the port is taken."""
        if self._server is not None:
            raise RuntimeError("gateway simulator already started")
        server = _SimServer((host, port), _HttpHandler)
        server.simulator = self
        self._server, self._host, self._port = server, host, server.server_address[1]
        # A short poll keeps stop() quick (tests start and stop one per test).
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="gateway-sim", daemon=True
        )
        self._thread.start()
        return self._port

    def _later(self, delay: float, webhooks: Sequence[Webhook]) -> None:
        """Deliver `webhooks` in order after `delay` seconds, unless the simulator stops (or quiesces) first.
        A timer stays in `_timers` until its last webhook is delivered, so quiesce() can wait for it."""

        def send() -> None:
            try:
                for webhook in webhooks:
                    self._deliver(webhook)
            finally:
                with self._timers_lock:
                    self._timers.discard(timer)

        timer = threading.Timer(delay, send)
        timer.daemon = True
        with self._timers_lock:
            self._timers.add(timer)
            _WAITING.add(self)
        timer.start()

    def quiesce(self) -> int:
        """Cancel every webhook still due later and wait for those already on their way; returns how many
        timers were cancelled or waited for. Afterwards nothing this simulator scheduled is sent any more, so a
        shared simulator cannot send one test's webhook while the next test runs (tests/conftest.py)."""
        with self._timers_lock:
            due, self._timers = self._timers, set()
            _WAITING.discard(self)
        current = threading.current_thread()
        for timer in due:
            timer.cancel()
        for timer in due:
            if timer is not current:  # a webhook's own delivery may stop the simulator
                timer.join()
        return len(due)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every webhook scheduled so far has been sent (none cancelled): afterwards deliveries() holds
        all that the requests and settles so far will ever send, so a test can assert that no more follow."""
        deadline = time.monotonic() + timeout
        while True:
            with self._timers_lock:
                due = list(self._timers)
            if not due:
                return
            for timer in due:
                timer.join(max(deadline - time.monotonic(), 0))
                if timer.is_alive():
                    raise TimeoutError(f"webhooks still being sent after {timeout} s")

    @staticmethod
    def quiesce_all() -> int:
        """quiesce() every simulator of this process that has webhooks scheduled; returns the timers ended."""
        return sum(simulator.quiesce() for simulator in list(_WAITING))

    def stop(self) -> None:
        self.quiesce()
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    shutdown = stop  # the name local/dev.py uses for every server it stops

    def __enter__(self) -> GatewaySimulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("gateway simulator not started")
        host = "127.0.0.1" if self._host in ("", "0.0.0.0") else self._host
        return f"http://{host}:{self._port}"

    def provider_base(self, provider: str) -> str:
        """The API base an adapter for `provider` should use."""
        return f"{self.base_url}/{provider}"

    def api_base_env(self) -> dict[str, str]:
        """STRIPE_API_BASE=... and friends, pointing every adapter here (docs/api.md#configuration)."""
        return {gateway.api_base_var: self.provider_base(name) for name, gateway in self._gateways.items()}

    # -- state and control (control.py) ----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every object, idempotency key, transmission and delivery (PayPal tokens stay valid)."""
        self._control.reset()
        with self._unrouted_lock:
            self._unrouted = []

    def objects(self) -> dict[str, Any]:
        """Everything held, per provider, plus the webhook deliveries (what GET /_sim/objects answers)."""
        return self._control.objects()

    def deliveries(self) -> list[dict[str, Any]]:
        return self._control.deliveries()

    def wait_for_delivery(self, event_type: str, timeout: float = 10.0) -> dict[str, Any]:
        """The first delivery of `event_type` (PayPal's capture webhook is sent in the background)."""
        return self._control.wait_for_delivery(event_type, timeout)

    def settle(self, provider: str, ref: str, outcome: str, amount: str | None = None) -> dict[str, Any]:
        """Settle one gateway object and deliver the gateway's webhook for it to the API (control.py).

        Answers {"delivered", "status", "response", "event"}; Paystack failures send nothing ("event": None).
        Raises SettleError for an unknown provider/object (404), bad input (400) or an impossible outcome (409).
        """
        return self._control.settle(provider, ref, outcome, amount)

    def signed_paypal_event(
        self, event_type: str, resource_type: str, resource: dict[str, Any]
    ) -> tuple[bytes, dict[str, str]]:
        """A PayPal webhook with this resource, signed so that verify-webhook-signature answers SUCCESS for it:
        what PayPal would send about objects it holds (tests build events about any object with it)."""
        from local.gateway_sim.paypal import PayPal

        paypal = self._gateways["paypal"]
        assert isinstance(paypal, PayPal)
        with self._lock:
            return paypal.signed_event(event_type, resource_type, resource)

    def _deliver(self, webhook: Webhook) -> dict[str, Any]:
        return self._control.deliver(webhook)

    # -- HTTP dispatch --------------------------------------------------------------------------------------

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Handler, bool]]:
        """(method, path pattern, handler, runs under the state lock)."""
        table: list[tuple[str, str, Handler, bool]] = [
            (method, f"/{name}{path}", handler, True)
            for name, gateway in self._gateways.items()
            for method, path, handler in gateway.routes()
        ]
        table += [(method, path, handler, False) for method, path, handler in self._control.routes()]
        return [(method, re.compile(pattern), handler, locked) for method, pattern, handler, locked in table]

    def _handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request -> (status, headers, payload). Locked handlers also serialise under the lock,
        so an answer never shows an object half-way through another request's change."""
        split = urlsplit(target)
        path = split.path.rstrip("/") or "/"
        for route_method, pattern, handler, locked in self._routes:
            match = pattern.fullmatch(path)
            if match is None or route_method != method:
                continue
            request = Request(method, path, dict(parse_qsl(split.query)), headers, body, match.groupdict())
            try:
                if locked:
                    with self._lock:
                        return _render(_answer_or_refusal(handler, request))
                return _render(_answer_or_refusal(handler, request))
            except Exception as exc:  # a simulator bug: say so loudly instead of dropping the connection
                traceback.print_exc()
                return _render(Answer(500, {"message": f"gateway simulator error: {exc!r}"}))
        with self._unrouted_lock:
            self._unrouted.append(f"{method} {path}")
        return _render(self._not_found(method, path))

    def _not_found(self, method: str, path: str) -> Answer:
        name, _, rest = path.lstrip("/").partition("/")
        gateway = self._gateways.get(name)
        answer = gateway.not_found(method, rest) if gateway is not None else None
        return answer or Answer(404, {"message": f"gateway simulator has no {method} {path}"})

    def unrouted(self) -> list[str]:
        """Every request no route of the simulator answered ("GET /nowpayments/v1/..."): an adapter calling
        something the simulator does not serve (and so, probably, the gateway neither)."""
        with self._unrouted_lock:
            return list(self._unrouted)


def _answer_or_refusal(handler: Handler, request: Request) -> Answer:
    try:
        return handler(request)
    except Refusal as refusal:
        return refusal.answer


def _render(answer: Answer) -> tuple[int, dict[str, str], bytes]:
    if isinstance(answer.body, str):
        payload, content_type = answer.body.encode(), "text/html; charset=utf-8"
    else:
        payload, content_type = json.dumps(answer.body).encode(), "application/json"
    return answer.status, {"Content-Type": content_type, **answer.headers}, payload


# ----------------------------------------------------------------------------------------------------------
# HTTP plumbing


class _SimServer(ThreadingHTTPServer):
    daemon_threads = True
    simulator: GatewaySimulator


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as adapters' sessions expect
    # Headers and body are two writes: with Nagle's algorithm the body waited ~40 ms for the delayed ACK.
    disable_nagle_algorithm = True
    server: _SimServer

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        status, answer_headers, payload = self.server.simulator._handle(method, self.path, headers, body)
        self.send_response(status)
        for name, value in answer_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.simulator.verbose:
            sys.stderr.write(f"gateway-sim: {format % args}\n")


def serve(port: int, api_url: str, host: str = "127.0.0.1") -> GatewaySimulator:
    """A started simulator on host:port delivering webhooks to `api_url` (what `make dev` calls)."""
    simulator = GatewaySimulator(api_url)
    simulator.start(host, port)
    return simulator


def main(argv: list[str] | None = None) -> int:
    # Imported here: local.defaults builds its gateway variables from this package, so it loads after it.
    from local import gateway_sim
    from local.defaults import DEFAULT_PORTS

    parser = argparse.ArgumentParser(
        prog="python -m local.gateway_sim", description=(gateway_sim.__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("GATEWAY_SIM_PORT") or DEFAULT_PORTS["GATEWAY_SIM_PORT"])
    )
    api_port = os.environ.get("API_PORT") or DEFAULT_PORTS["API_PORT"]
    parser.add_argument("--api", default=f"http://127.0.0.1:{api_port}", help="API base URL that receives webhooks")
    parser.add_argument("--verbose", action="store_true", help="log every request and webhook")
    args = parser.parse_args(argv)
    simulator = GatewaySimulator(args.api, verbose=args.verbose)
    try:
        simulator.start(args.host, args.port)
    except OSError as exc:
        print(f"gateway simulator: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"gateway simulator on {simulator.base_url}, webhooks to {simulator.api_base}/webhooks/<provider>")
    for name, value in simulator.api_base_env().items():
        print(f"  {name}={value}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
    return 0
