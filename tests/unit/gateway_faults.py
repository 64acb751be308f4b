"""A fault-injecting proxy in front of the gateway simulator, for the adapters' refund tests.

`FaultProxy(target)` forwards every request to `target` (the simulator's base URL) unchanged, except those a fault
matches (method and path pattern, below the proxy's root): `Fail` answers a status without forwarding (the gateway
did nothing), `Late` forwards and then answers only after a pause (the gateway acted; the caller gave up waiting),
`Reshape` forwards and changes the JSON answer (an answer missing fields). Real HTTP on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

_HOP_BY_HOP = {"connection", "content-length", "host", "keep-alive", "transfer-encoding"}


@dataclass
class Fail:
    """Answer `status` with `body` (JSON) instead of forwarding."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class Late:
    """Forward, then hold the answer `seconds` (longer than the client waits)."""

    seconds: float


@dataclass
class Reshape:
    """Forward, then answer `change(json_answer)` instead."""

    change: Callable[[Any], Any]


Fault = Fail | Late | Reshape


class FaultProxy:
    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.faults: list[tuple[str, re.Pattern[str], Fault]] = []
        self.seen: list[str] = []  # "POST /stripe/v1/refunds" for each request the proxy got
        self.headers_seen: list[dict[str, str]] = []  # and its headers (lower-case names), in the same order
        self.forwarded: list[str] = []  # likewise, for each request that reached the target
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy._serve(self)

            def do_POST(self) -> None:
                proxy._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def add(self, method: str, path: str, fault: Fault) -> None:
        """`path`: a regular expression the whole request path (no query) must match."""
        self.faults.append((method, re.compile(path), fault))

    def clear(self) -> None:
        self.faults = []

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _fault(self, method: str, path: str) -> Fault | None:
        return next((f for m, p, f in self.faults if m == method and p.fullmatch(path)), None)

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        method = handler.command
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        path = handler.path.partition("?")[0]
        self.seen.append(f"{method} {path}")
        self.headers_seen.append({name.lower(): value for name, value in handler.headers.items()})
        fault = self._fault(method, path)
        if isinstance(fault, Fail):
            self._answer(handler, fault.status, json.dumps(fault.body).encode(), {"Content-Type": "application/json"})
            return
        headers = {name: value for name, value in handler.headers.items() if name.lower() not in _HOP_BY_HOP}
        answer = requests.request(method, self.target + handler.path, headers=headers, data=body, timeout=10)
        self.forwarded.append(f"{method} {path}")
        payload = answer.content
        if isinstance(fault, Reshape):
            payload = json.dumps(fault.change(answer.json())).encode()
        if isinstance(fault, Late):
            time.sleep(fault.seconds)
        kept = {name: value for name, value in answer.headers.items() if name.lower() not in _HOP_BY_HOP}
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up waiting, as it should
            self._answer(handler, answer.status_code, payload, kept)

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, payload: bytes, headers: dict[str, str]) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)


@contextmanager
def fault_proxy(target: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(target)
    try:
        yield proxy
    finally:
        proxy.stop()


def without(*names: str) -> Callable[[Any], Any]:
    """A Reshape change: the answer object without these top-level fields."""

    def change(answer: Any) -> Any:
        return {key: value for key, value in answer.items() if key not in names}

    return change


def with_fields(**fields: Any) -> Callable[[Any], Any]:
    """A Reshape change: the answer object with these top-level fields set."""

    def change(answer: Any) -> Any:
        return {**answer, **fields}

    return change
