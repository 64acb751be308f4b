"""Outbound webhooks' pure rules (docs/webhooks-outbound.md): the signature, the retry schedule, the SSRF rules
(the resolver replaced: no DNS), and the routes' input errors (no AWS: they fail before anything is stored)."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import ipaddress
import json
import random
from typing import Any

import pytest

from payments import outbound_http
from payments.config import WebhookSettings
from payments.outbound_http import UrlRefused, check_url, refusal
from payments.webhook_delivery import (
    backoff_ceiling,
    backoff_delay,
    next_attempt_at,
    payload,
    signature,
    verify,
)
from tests.conftest import ROOT, claims_for, http_event, invoke

SECRET = "whsec_test"


# ---- the signature --------------------------------------------------------------------------------


def test_the_signature_header_is_t_and_the_hex_hmac_of_t_dot_body() -> None:
    body = b'{"id":"evt_1"}'
    header = signature(SECRET, 1_700_000_000, body)

    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify(SECRET, header, body, now=1_700_000_000 + 299)
    assert not verify(SECRET, header, body, now=1_700_000_000 + 301)  # older than 5 minutes
    assert not verify(SECRET, header, body + b" ", now=1_700_000_000)
    assert not verify("whsec_other", header, body, now=1_700_000_000)
    assert not verify(SECRET, header.replace("t=1700000000", "t=1700000001"), body, now=1_700_000_000)
    assert not verify(SECRET, "v1=abc", body, now=1_700_000_000)


def test_the_payload_names_the_event_id_and_is_the_same_bytes_each_time() -> None:
    event = {"detail-type": "payment.completed", "id": "eb-1", "detail": {"event_id": "evt_1", "occurred_at": "t"}}

    body = payload(event)
    assert json.loads(body) == {"id": "evt_1", "type": "payment.completed", "created": "t", "data": event["detail"]}
    assert payload({**event, "id": "eb-2"}) == body  # EventBridge's own id differs on a redelivery: not in it


# ---- the retry schedule ---------------------------------------------------------------------------


def test_the_backoff_doubles_from_its_base_up_to_its_cap() -> None:
    ceilings = [backoff_ceiling(n, base=30, cap=3600) for n in range(1, 10)]

    assert ceilings == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff_ceiling(500, base=30, cap=3600) == 3600  # no overflow


def test_full_jitter_draws_every_wait_between_zero_and_the_ceiling() -> None:
    rng = random.Random(7)
    for attempt in (1, 3, 6, 12):
        draws = [backoff_delay(attempt, base=30, cap=3600, rng=rng) for _ in range(400)]
        ceiling = backoff_ceiling(attempt, base=30, cap=3600)
        assert all(0 <= d <= ceiling for d in draws)
        assert min(draws) < ceiling * 0.1 and max(draws) > ceiling * 0.9  # spread over the whole range


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_attempts_go_on_for_24_hours_the_last_at_the_windows_end_then_the_dead_letter_queue(seed: int) -> None:
    settings = WebhookSettings()
    rng, opened, now, attempts = random.Random(seed), 1_000_000.0, 1_000_000.0, 1
    while (due := next_attempt_at(attempts, opened_at=opened, now=now, settings=settings, rng=rng)) is not None:
        assert now <= due <= opened + 24 * 3600
        assert due - now <= backoff_ceiling(attempts, base=30, cap=3600)
        now, attempts = due, attempts + 1
    assert now == opened + 24 * 3600  # the last attempt at the window's end; after it, nothing more
    assert 24 < attempts < 400


def test_the_defaults_are_the_documented_schedule() -> None:
    settings = WebhookSettings()

    assert (settings.retry_base_seconds, settings.retry_cap_seconds) == (30, 3600)
    assert settings.retry_window_seconds == 24 * 3600 and settings.timeout_seconds == 10
    assert settings.allow_loopback is False  # only the local stack turns it on


# ---- SSRF rules -----------------------------------------------------------------------------------


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The resolver's answers by host name; a name not in it does not resolve."""
    answers: dict[str, list[str]] = {"hooks.example.com": ["93.184.216.34"], "v6.example.com": ["2606:4700::1111"]}

    def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError("no such host")
        return answers[host]

    monkeypatch.setattr(outbound_http, "resolve", resolve)
    return answers


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://hooks.example.com/in", None),
        ("https://hooks.example.com:8443/in?x=1", None),  # any port is fine
        ("https://v6.example.com/in", None),
        ("https://93.184.216.34/in", None),
        ("http://hooks.example.com/in", "https://"),
        ("ftp://hooks.example.com/in", "https://"),
        ("https://user:pw@hooks.example.com/in", "user name or password"),
        ("https://user@hooks.example.com/in", "user name or password"),
        ("https://hooks.example.com/in#frag", "fragment"),
        ("https:///in", "host"),
        ("https://nowhere.example.com/in", "does not resolve"),
        ("https://10.0.0.1/", "private"),
        ("https://172.16.5.4/", "private"),
        ("https://172.31.255.255/", "private"),
        ("https://192.168.1.1/", "private"),
        ("https://127.0.0.1/", "loopback"),
        ("https://[::1]/", "loopback"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[fe80::1]/", "link-local"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://[::]/", "unspecified"),
        ("https://100.64.0.1/", "non-public"),  # carrier-grade NAT
        ("https://100.127.255.254/", "non-public"),
        ("https://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped IPv6
        ("https://[::ffff:10.1.2.3]/", "private"),
        ("https://[64:ff9b::a00:1]/", "private"),  # NAT64 of 10.0.0.1
        ("https://224.0.0.1/", "multicast"),
        ("https://[ff02::1]/", "multicast"),
        ("https://240.0.0.1/", "reserved"),
        ("https://[fc00::1]/", "private"),  # unique local
        ("https://a b.example.com/", "spaces"),
        ("https://hooks.example.com:99999/", "port"),
    ],
)
def test_the_ssrf_rules_in_aws(dns: dict[str, list[str]], url: str, problem: str | None) -> None:
    if problem is None:
        assert check_url(url).host in url
    else:
        with pytest.raises(UrlRefused, match=problem):
            check_url(url)


def test_every_address_a_host_resolves_to_is_checked(dns: dict[str, list[str]]) -> None:
    dns["mixed.example.com"] = ["93.184.216.34", "10.0.0.7", "2606:4700::1111"]
    dns["metadata.example.com"] = ["169.254.169.254"]
    dns["v6-local.example.com"] = ["2606:4700::1111", "fe80::1%eth0"]

    for host, problem in (("mixed", "private"), ("metadata", "link-local"), ("v6-local", "link-local")):
        with pytest.raises(UrlRefused, match=problem):
            check_url(f"https://{host}.example.com/in")


def test_the_local_setting_allows_http_and_loopback_but_no_other_private_address(dns: dict[str, list[str]]) -> None:
    dns["localhost"] = ["127.0.0.1", "::1"]

    for url in ("http://127.0.0.1:8080/in", "https://[::1]/in", "http://localhost:9/in", "http://hooks.example.com/"):
        check_url(url, allow_loopback=True)
    for url, problem in (("http://10.0.0.1/", "private"), ("http://169.254.169.254/", "link-local")):
        with pytest.raises(UrlRefused, match=problem):
            check_url(url, allow_loopback=True)
    with pytest.raises(UrlRefused, match="https://"):
        check_url("http://localhost:9/in")


def test_public_addresses_are_allowed() -> None:
    for address in ("8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8"):
        assert refusal(ipaddress.ip_address(address)) is None, address


def test_a_delivery_to_a_refused_address_is_not_attempted(dns: dict[str, list[str]]) -> None:
    dns["rebound.example.com"] = ["127.0.0.1"]  # public at registration, loopback at delivery

    result = outbound_http.post("https://rebound.example.com/in", b"{}", {}, timeout=1, max_bytes=10)
    assert (result.status, result.ok) == (None, False)
    assert result.error is not None and "loopback" in result.error


# ---- the routes' input errors ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def routes() -> Any:
    """The route function loaded under a name of its own: the integration tests' copy (`load_function`) is loaded
    with the embedded AWS's KMS key and queues, this one without."""
    spec = importlib.util.spec_from_file_location("unit_webhook_endpoints", ROOT / "functions/webhook_endpoints/app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.SETTINGS = WebhookSettings()  # AWS's rules, whatever an earlier test put in the environment
    return module


def post_endpoint(routes: Any, body: Any, *groups: str) -> tuple[int, Any]:
    event = http_event(
        "POST", "/admin/webhook-endpoints", claims=claims_for(None, *(groups or ("operator",))), body=json.dumps(body)
    )
    return invoke(routes, event)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://8.8.8.8/in", "events": ["payment.exploded"]}, "events"),
        ({"url": "https://8.8.8.8/in", "events": []}, "events"),
        ({"url": "https://8.8.8.8/in", "events": "payment.completed"}, "events"),
        ({"url": "https://8.8.8.8/in"}, "events"),
        ({"url": "http://8.8.8.8/in", "events": ["*"]}, "url"),
        ({"url": "https://10.0.0.1/in", "events": ["*"]}, "url"),
        ({"url": 7, "events": ["*"]}, "url"),
        ({"url": "https://8.8.8.8/in", "events": ["*"], "customer_id": 5}, "customer_id"),
        ({"url": "https://8.8.8.8/in", "events": ["*"], "secret": "mine"}, "secret"),
    ],
)
def test_bad_input_is_422_naming_the_field(routes: Any, body: dict[str, Any], field: str) -> None:
    status, answer = post_endpoint(routes, body)

    assert status == 422, answer
    assert answer["field"] == field and field in answer["message"]


def test_only_operators_may_register(routes: Any) -> None:
    status, answer = post_endpoint(routes, {"url": "https://8.8.8.8/in", "events": ["*"]}, "admin")
    assert status == 403 and "operator" in answer["message"]
