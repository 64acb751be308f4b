"""A webhook receiver on 127.0.0.1 for tests: answers each POST as its script says and keeps what it received."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """`script`: what to do with the 1st, 2nd, ... POST: an HTTP status, or ("sleep", seconds, status); once the
    script is used up, `then` (default 200). `on_request` runs as each POST arrives (tests advance a clock)."""

    script: list[Any] = field(default_factory=list)
    then: int = 200
    on_request: Any = None
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_step(self, request: Received) -> Any:
        with self._lock:
            self.received.append(request)
            step = self.script[len(self.received) - 1] if len(self.received) <= len(self.script) else self.then
        if self.on_request is not None:
            self.on_request(request)
        return step


@contextmanager
def receiver(script: list[Any] | None = None, *, then: int = 200, on_request: Any = None) -> Iterator[Receiver]:
    state = Receiver(list(script or []), then, on_request)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
            step = state.next_step(request)
            if isinstance(step, tuple):
                _, seconds, step = step
                time.sleep(seconds)
            try:
                self.send_response(int(step))
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:  # the sender gave up waiting (a timeout): nobody reads the answer
                pass

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
