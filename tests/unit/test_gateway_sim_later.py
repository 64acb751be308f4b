"""Webhooks the simulator sends a moment after its answer never outlive the test (or the simulator) that caused
them: `stop()` and `quiesce()` cancel what is still due and wait for what is already on its way.

Found when a session-shared simulator delivered one test's Razorpay refund webhook while the next test ran under
a `responses` mock, which recorded it as that test's first request.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from local.gateway_sim import GatewaySimulator
from local.gateway_sim.base import Webhook


class HeldReceiver:
    """Stands in for the API's /webhooks/{provider}; holds each request until `release` is set."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.arrived.set()
                receiver.release.wait(5)
                receiver.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[HeldReceiver]:
    held = HeldReceiver()
    yield held
    held.release.set()
    held.server.shutdown()
    held.server.server_close()


def refund_processed() -> Webhook:
    event = {"entity": "event", "event": "refund.processed", "payload": {}}
    return Webhook("razorpay", event, json.dumps(event).encode(), {"Content-Type": "application/json"})


def test_stop_waits_for_a_webhook_already_on_its_way(receiver: HeldReceiver) -> None:
    sim = GatewaySimulator(receiver.url)
    sim.start()
    sim._later(0, [refund_processed()])  # the Host.later every gateway module schedules its webhooks with
    assert receiver.arrived.wait(5), "the webhook was never sent"

    stopping = threading.Thread(target=sim.stop)
    stopping.start()
    stopping.join(0.3)
    assert stopping.is_alive(), "stop() returned while a webhook was still being delivered"

    receiver.release.set()
    stopping.join(5)
    assert not stopping.is_alive()
    assert receiver.paths == ["/webhooks/razorpay"]
    assert [(d["event_type"], d["status"]) for d in sim.deliveries()] == [("refund.processed", 200)]


def test_quiesce_all_cancels_every_webhook_still_due_on_every_simulator(receiver: HeldReceiver) -> None:
    receiver.release.set()
    first, second = GatewaySimulator(receiver.url), GatewaySimulator(receiver.url)
    first.start()
    second.start()
    try:
        first._later(0.3, [refund_processed(), refund_processed()])
        second._later(0.3, [refund_processed()])

        assert GatewaySimulator.quiesce_all() == 2
        time.sleep(0.5)  # past when they were due

        assert receiver.paths == []
        assert first.deliveries() == second.deliveries() == []
        assert GatewaySimulator.quiesce_all() == 0
        # A simulator that quiesced still sends what it schedules afterwards.
        first._later(0, [refund_processed()])
        deadline = time.monotonic() + 5
        while not first.deliveries() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [d["event_type"] for d in first.deliveries()] == ["refund.processed"]
        assert receiver.paths == ["/webhooks/razorpay"]
    finally:
        first.stop()
        second.stop()


def test_drain_waits_until_every_scheduled_webhook_is_sent_and_cancels_none(receiver: HeldReceiver) -> None:
    receiver.release.set()
    sim = GatewaySimulator(receiver.url)
    sim.start()
    try:
        sim.drain()  # nothing scheduled: at once
        sim._later(0.2, [refund_processed(), refund_processed()])
        sim._later(0.05, [refund_processed()])
        assert sim.deliveries() == []
        sim.drain()
        assert [d["status"] for d in sim.deliveries()] == [200, 200, 200]
        assert receiver.paths == ["/webhooks/razorpay"] * 3
    finally:
        sim.stop()
