"""`make dev` end to end: ports, routing, the JWT authorizer, resources from template.yaml, real handlers."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local.dev import port_in_use
from local.template import load_template, resources_of_type
from local.token import make_token
from payments.ids import new_payment_id
from payments.models import Payment, PaymentMethod, PaymentStatus
from payments.money import Money
from payments.store import PaymentStore


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("taken_name", ["API_PORT", "AWS_PORT", "GATEWAY_SIM_PORT"])
def test_a_taken_port_is_a_one_line_error_and_nothing_starts(
    stack: Any, run_dev: Callable[..., Any], taken_name: str
) -> None:
    env = {"AWS_PORT": str(free_port()), "GATEWAY_SIM_PORT": str(free_port()), "API_PORT": str(free_port())}
    with socket.socket() as squatter:  # the running stack holds its API and AWS ports; take the third here
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = stack.ports[taken_name] if taken_name != "GATEWAY_SIM_PORT" else squatter.getsockname()[1]
        env[taken_name] = str(taken)
        result = run_dev(**env, SEED_DEMO="0")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"error: port {taken} ({taken_name}) is already in use"]
    assert result.stdout == ""


def test_unknown_routes_are_404(stack: Any) -> None:
    for method, path in [("GET", "/no/such/route"), ("DELETE", "/payments"), ("GET", "/webhooks/stripe")]:
        answer = stack.call(method, path, token=stack.token("acme"))
        assert (answer.status, answer.json()) == (404, {"message": "Not Found"})


def test_protected_routes_need_a_token_signed_with_the_local_secret(stack: Any) -> None:
    missing = stack.call("GET", "/balance")
    assert (missing.status, missing.json()) == (401, {"message": "Unauthorized: missing bearer token"})

    forged = make_token("acme", ["finance"], secret="not-the-stack-secret-0123456789abcdef")
    rejected = stack.call("GET", "/balance", token=forged)
    assert (rejected.status, rejected.json()) == (401, {"message": "Unauthorized: bad token signature"})

    expired = stack.call("GET", "/balance", token=stack.token("acme", ttl=-5))
    assert (expired.status, expired.json()) == (401, {"message": "Unauthorized: token expired"})

    accepted = stack.call("GET", "/balance", token=stack.token("acme-empty"))
    assert (accepted.status, accepted.json()) == (200, {"balances": []})


def test_template_resources_exist_in_the_embedded_aws(stack: Any) -> None:
    template = load_template()
    dynamodb = stack.aws("dynamodb")
    tables = set(dynamodb.list_tables()["TableNames"])
    for logical_id, resource in resources_of_type(template, "AWS::DynamoDB::Table").items():
        name = stack.resource_name(logical_id)
        assert name in tables
        declared = resource["Properties"]
        table = dynamodb.describe_table(TableName=name)["Table"]
        assert table["KeySchema"] == declared["KeySchema"]
        indexes = {i["IndexName"]: i["KeySchema"] for i in table.get("GlobalSecondaryIndexes", [])}
        assert indexes == {i["IndexName"]: i["KeySchema"] for i in declared.get("GlobalSecondaryIndexes", [])}
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        assert ttl.get("AttributeName") == declared["TimeToLiveSpecification"]["AttributeName"]

    buckets = {b["Name"] for b in stack.aws("s3").list_buckets()["Buckets"]}
    for logical_id in resources_of_type(template, "AWS::S3::Bucket"):
        assert stack.resource_name(logical_id) in buckets

    secrets = stack.aws("secretsmanager")
    gateway = json.loads(secrets.get_secret_value(SecretId="payments-local-GatewaySecret")["SecretString"])
    assert gateway["stripe_secret_key"] == "sk_test_local"  # the local default the simulator also knows
    cursor_key = secrets.get_secret_value(SecretId="payments-local-CursorKeySecret")["SecretString"]
    assert len(cursor_key) >= 32


def _payment(customer: str, created_at: datetime, amount_minor: int) -> Payment:
    return Payment(
        id=new_payment_id(created_at),
        customer_id=customer,
        created_at=created_at,
        completed_at=created_at,
        amount_minor=amount_minor,
        currency="USD",
        status=PaymentStatus.COMPLETED,
        method=PaymentMethod.CREDIT_CARD,
        description=f"top-up {amount_minor}",
    )


def test_get_payments_pages_through_one_customers_payments_newest_first(stack: Any) -> None:
    store = PaymentStore(table_name=stack.resource_name("PaymentsTable"), client=stack.aws("dynamodb"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    mine = [_payment("e2e-mine", start + timedelta(hours=i), 100 + i) for i in range(7)]
    theirs = [_payment("e2e-theirs", start + timedelta(hours=i, minutes=30), 900 + i) for i in range(3)]
    for payment in mine + theirs:
        store.add(payment)

    token = stack.token("e2e-mine", ["support"])
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        answer = stack.call("GET", f"/payments?limit=3{cursor}", token=token)
        assert answer.status == 200, answer.body
        page = answer.json()
        assert len(page["items"]) <= 3
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"

    assert seen == [p.id for p in sorted(mine, key=lambda p: p.created_at, reverse=True)]
    assert not {p.id for p in theirs} & set(seen)
    balance = stack.call("GET", "/balance", token=token).json()
    total = Money(sum(p.amount_minor for p in mine), "USD").format()
    assert balance == {"balances": [{"currency": "USD", "amount": total}]}


def test_demo_stack_prints_a_working_token_and_stops_cleanly_on_sigterm(launch_stack: Callable[..., Any]) -> None:
    demo = launch_stack(SEED_DEMO="1", GATEWAY_SIM="off")
    printed = demo.output()
    token = re.search(r"export TOKEN=(\S+)", printed)
    assert token, printed
    assert f'curl -s -H "Authorization: Bearer $TOKEN" {demo.api_url}/payments' in printed

    listing = demo.call("GET", "/payments", token=token.group(1))
    assert listing.status == 200
    items = listing.json()["items"]
    assert len(items) == 6
    assert [i["created_at"] for i in items] == sorted((i["created_at"] for i in items), reverse=True)
    assert {i["status"] for i in items} == {"completed", "pending", "cancelled"}
    balances = demo.call("GET", "/balance", token=token.group(1)).json()["balances"]
    assert balances == [{"currency": "EUR", "amount": "20.00"}, {"currency": "USD", "amount": "32.51"}]

    assert demo.stop() == 0
    assert not port_in_use(demo.ports["API_PORT"])
    assert not port_in_use(demo.ports["AWS_PORT"])


def test_gateway_api_bases_point_at_the_simulator(stack: Any) -> None:
    answer = stack.call(
        "POST",
        "/payments",
        token=stack.token("e2e-payer"),
        headers={"Idempotency-Key": "e2e-paypal-1", "Content-Type": "application/json"},
        body=json.dumps({"method": "paypal", "amount": "7.00", "currency": "USD"}),
    )
    assert answer.status == 201, answer.body
    payment = answer.json()
    assert (payment["payment"]["status"], payment["next_action"]["type"]) == ("pending", "redirect")
    assert payment["next_action"]["url"].startswith(f"{stack.sim_url}/paypal/")


# API Gateway takes any number of concurrent clients; 64 is what the local stack must take without a reset.
CONCURRENT_CLIENTS = 64


def test_64_concurrent_clients_all_get_an_http_answer_and_every_payment_is_stored(stack: Any) -> None:
    customer = f"e2e-burst-{uuid.uuid4().hex[:8]}"
    token = stack.token(customer)
    start_together = threading.Barrier(CONCURRENT_CLIENTS)

    def client(index: int) -> tuple[str, int | str, bytes]:
        method = "POST" if index % 2 else "GET"
        start_together.wait(timeout=30)  # every client connects at the same moment
        connection = http.client.HTTPConnection("127.0.0.1", stack.ports["API_PORT"], timeout=120)
        try:
            headers = {"Authorization": f"Bearer {token}"}
            if method == "POST":  # a payment: several DynamoDB calls per request behind the API
                body = json.dumps({"method": "bank_transfer", "amount": "1.00", "currency": "EUR"})
                headers |= {"Content-Type": "application/json", "Idempotency-Key": f"burst-{index}"}
                connection.request("POST", "/payments", body, headers)
            else:
                connection.request("GET", "/payments", headers=headers)
            answer = connection.getresponse()
            return method, answer.status, answer.read()
        except (OSError, http.client.HTTPException) as exc:  # a reset, a refused or dropped connection
            return method, type(exc).__name__, b""
        finally:
            connection.close()

    with ThreadPoolExecutor(CONCURRENT_CLIENTS) as pool:
        outcomes = list(pool.map(client, range(CONCURRENT_CLIENTS)))

    failed = [(method, status) for method, status, _ in outcomes if not isinstance(status, int)]
    assert failed == []
    assert sorted({(method, status) for method, status, _ in outcomes}) == [("GET", 200), ("POST", 201)]
    created = {json.loads(body)["payment"]["id"] for method, _, body in outcomes if method == "POST"}
    assert len(created) == CONCURRENT_CLIENTS // 2
    listing = stack.call("GET", "/payments?limit=100", token=token)
    assert listing.status == 200
    assert {item["id"] for item in listing.json()["items"]} == created


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "BREW"])
def test_methods_no_route_declares_are_the_json_404_of_api_gateway(stack: Any, method: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", stack.ports["API_PORT"], timeout=30)
    try:
        connection.request(method, "/payments", headers={"Authorization": f"Bearer {stack.token('acme')}"})
        answer = connection.getresponse()
        assert (answer.status, answer.getheader("content-type")) == (404, "application/json")
        assert json.loads(answer.read()) == {"message": "Not Found"}
    finally:
        connection.close()


# ---- the embedded AWS's state across restarts ---------------------------------------------------------


def _bank_transfer(running: Any, token: str, key: str) -> dict[str, Any]:
    answer = running.call(
        "POST",
        "/payments",
        token=token,
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
        body=json.dumps({"method": "bank_transfer", "amount": "12.34", "currency": "EUR"}),
    )
    assert answer.status == 201, answer.body
    return dict(answer.json()["payment"])


def _objects(running: Any) -> dict[str, bytes]:
    s3, bucket = running.aws("s3"), running.resource_name("ExportsBucket")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def test_a_restart_keeps_items_and_objects_seeds_no_duplicates_and_local_state_fresh_starts_empty(
    launch_stack: Callable[..., Any], tmp_path: Path
) -> None:
    state = {"LOCAL_STATE_DIR": str(tmp_path / "state"), "SEED_DEMO": "1", "GATEWAY_SIM": "off"}
    first = launch_stack(**state)
    token = first.token("demo")
    demo_before = first.call("GET", "/payments?limit=100", token=token).json()["items"]
    assert len(demo_before) == 6  # the seeded demo payments
    mine = _bank_transfer(first, token, "restart-1")
    stored = first.call("GET", f"/payments/{mine['id']}", token=token).json()
    json_body = {"content-type": "application/json"}
    export = first.call("POST", "/payments/exports", token=token, headers=json_body, body="{}")
    assert export.status == 201, export.body
    objects = _objects(first)
    assert len(objects) == 1 and next(iter(objects.values())).count(b"\n") == 8  # header + 7 payments
    balance = first.call("GET", "/balance", token=token).json()
    assert first.stop() == 0
    assert "saved the local state" in first.output()

    second = launch_stack(**state)
    token = second.token("demo")
    demo_after = second.call("GET", "/payments?limit=100", token=token).json()["items"]
    assert [p["id"] for p in demo_after] == [mine["id"]] + [p["id"] for p in demo_before]
    assert second.call("GET", f"/payments/{mine['id']}", token=token).json() == stored
    assert second.call("GET", "/balance", token=token).json() == balance
    assert _objects(second) == objects
    replayed = _bank_transfer(second, token, "restart-1")  # the idempotency record came back too
    assert replayed == mine
    assert "seeded" not in second.output()
    assert second.stop() == 0

    third = launch_stack(**{**state, "LOCAL_STATE": "fresh", "SEED_DEMO": "0"})
    assert third.call("GET", "/payments", token=third.token("demo")).json() == {"items": [], "next_cursor": None}
    assert _objects(third) == {}


@pytest.mark.parametrize(
    "content",
    [b"\x00\xff not json at all", b'{"format": "payments-local-state/0", "tables": {}}', b'{"format": 7}'],
    ids=["corrupt", "older layout", "not a snapshot"],
)
def test_an_unusable_state_file_is_a_one_line_warning_and_an_empty_start(
    launch_stack: Callable[..., Any], tmp_path: Path, content: bytes
) -> None:
    (tmp_path / "aws-state.json").write_bytes(content)
    running = launch_stack(LOCAL_STATE_DIR=str(tmp_path))
    warnings = [line for line in running.output().splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, running.output()
    assert "starting empty" in warnings[0]
    assert running.call("GET", "/payments", token=running.token("demo")).json() == {"items": [], "next_cursor": None}
    assert (tmp_path / "aws-state.json.unusable").read_bytes() == content  # kept aside, not lost


def test_the_scripts_private_stack_answers_with_its_own_secret_and_stops() -> None:
    """scripts/private_stack.py, which `make fuzz` and scripts/screenshots.py run their stack with."""
    import requests

    from local.token import make_token
    from scripts.private_stack import private_stack

    with private_stack(seed_demo=False) as private:
        token = make_token("private-1", ["finance"], secret=private.jwt_secret)
        answer = requests.get(private.api_url + "/balance", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 200, answer.text
        assert requests.get(private.sim_url + "/_sim/objects", timeout=10).status_code == 200
    with pytest.raises(requests.ConnectionError):  # stopped
        requests.get(private.api_url + "/web/config.json", timeout=2)
