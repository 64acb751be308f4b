"""SnapStart's hooks (docs/snapstart.md): a snapshot and its restores, simulated by calling the hooks.

Three levels: the registry itself (a private copy of `payments.snapstart`, with a stand-in for the runtime's
`snapshot_restore_py`); each owner's part in the layer (every boto3 client it builds is closed before a
snapshot, cached secrets and gateway adapters are dropped); and a whole function: `list_payments` imported in a
fresh interpreter with the stand-in runtime, its before-snapshot hooks called, then forked, as Lambda resumes
several environments from one snapshot, each calling the after-restore hooks and answering a request against the
embedded AWS.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import random
import subprocess
import sys
import types
import uuid
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local.defaults import LOCAL_GATEWAY_ENV
from tests.conftest import aws_client

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "shared" / "payments" / "snapstart.py"


class FakeRuntime(types.ModuleType):
    """`snapshot_restore_py` as Lambda's Python runtimes have it, recording what is registered (func, args, kwargs)."""

    def __init__(self) -> None:
        super().__init__("snapshot_restore_py")
        self.before: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []
        self.after: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []

    def register_before_snapshot(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        self.before.append((func, args, kwargs))
        return func

    def register_after_restore(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        self.after.append((func, args, kwargs))
        return func


def fresh_copy(name: str) -> Any:
    """A private copy of payments/snapstart.py, imported now (its registries are its own)."""
    spec = importlib.util.spec_from_file_location(name, MODULE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> FakeRuntime:
    fake = FakeRuntime()
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", fake)
    return fake


# ---- the template: opt-in, and every caller on the published version ---------------------------------------


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from local.template import load_template

    return load_template()


def test_snapstart_is_a_parameter_off_by_default(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["SnapStart"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("Disabled", ["Enabled", "Disabled"])
    assert template["Conditions"]["SnapStartEnabled"] == {"Fn::Equals": [{"Ref": "SnapStart"}, "Enabled"]}
    globals_ = template["Globals"]["Function"]
    assert globals_["SnapStart"] == {"ApplyOn": {"Fn::If": ["SnapStartEnabled", "PublishedVersions", "None"]}}


def test_every_function_publishes_a_version_for_any_change_and_for_the_switch(template: dict[str, Any]) -> None:
    """SAM moves the alias to a new version only when what it hashes changes: with AllProperties, any property,
    the layer too (PublishLambdaVersion); it hashes the switch's `!If` unresolved, so the version's description
    names the parameter, and a changed description replaces the version."""
    globals_ = template["Globals"]["Function"]
    assert (globals_["AutoPublishAlias"], globals_["VersionDeletionPolicy"]) == ("live", "Delete")
    assert template["Resources"]["SharedLayer"]["Properties"]["PublishLambdaVersion"] is True
    functions = {
        n: r["Properties"] for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
    }
    assert functions
    for name, props in functions.items():
        assert props.get("AutoPublishAliasAllProperties") is True, name
        assert props.get("VersionDescription") == {"Fn::Sub": "SnapStart ${SnapStart}"}, name


def test_the_queues_invoke_the_alias_as_the_routes_the_stream_and_the_schedule_do(template: dict[str, Any]) -> None:
    """SAM points the functions' own events (HttpApi, DynamoDB, Schedule) at the alias; the mappings declared on
    their own must name it: `$LATEST` is never snapshotted."""
    mappings = [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    assert {m["FunctionName"]["Ref"] for m in mappings} == {
        "NotifyFunction.Alias", "AutoTopupFunction.Alias", "DeliverWebhooksFunction.Alias",
    }  # fmt: skip


# ---- the registry ------------------------------------------------------------------------------------


def test_importing_the_module_hands_its_two_runners_to_the_runtime(runtime: FakeRuntime) -> None:
    snapstart = fresh_copy("snapstart_copy_runtime")

    assert snapstart.RUNTIME_HOOKS is True
    assert runtime.before == [(snapstart.run_before_snapshot, (), {})]
    assert runtime.after == [(snapstart.run_after_restore, (), {})]


def test_without_lambdas_runtime_nothing_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # as here: `import` raises ImportError

    assert fresh_copy("snapstart_copy_no_runtime").RUNTIME_HOOKS is False


def test_resets_run_in_registration_order_and_a_second_registration_replaces_the_first(runtime: FakeRuntime) -> None:
    snapstart = fresh_copy("snapstart_copy_order")
    calls: list[str] = []

    def make(label: str, qualname: str) -> Callable[[], None]:
        def reset() -> None:
            calls.append(label)

        reset.__qualname__ = qualname
        return reset

    snapstart.before_snapshot(make("drop secrets", "drop_secrets"))
    snapstart.before_snapshot(make("drop adapters", "drop_adapters"))
    snapstart.before_snapshot(make("drop secrets again", "drop_secrets"))  # the module imported a second time
    snapstart.after_restore(make("restored", "restored"))

    for func, args, kwargs in reversed(runtime.before):  # as Lambda calls them
        func(*args, **kwargs)
    assert calls == ["drop secrets again", "drop adapters"]
    for func, args, kwargs in runtime.after:
        func(*args, **kwargs)
    assert calls == ["drop secrets again", "drop adapters", "restored"]


class Client:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_clients_are_closed_before_each_snapshot_and_not_kept_alive(runtime: FakeRuntime) -> None:
    snapstart = fresh_copy("snapstart_copy_clients")
    kept, dropped = Client(), Client()
    assert snapstart.closes_connections(kept) is kept
    snapstart.closes_connections(dropped)
    gone = weakref.ref(dropped)
    del dropped
    gc.collect()

    snapstart.run_before_snapshot()
    snapstart.run_before_snapshot()

    assert gone() is None  # the registry holds clients weakly
    assert kept.closed == 2
    snapstart.run_after_restore()
    assert kept.closed == 2  # a restore closes nothing


def test_two_environments_restored_from_one_snapshot_draw_different_numbers(runtime: FakeRuntime) -> None:
    snapstart = fresh_copy("snapstart_copy_random")
    snapshot = random.getstate()

    def restore(run_hooks: bool) -> list[float]:
        random.setstate(snapshot)  # the memory every restored environment starts from
        if run_hooks:
            snapstart.run_after_restore()
        return [random.random() for _ in range(3)]

    try:
        assert restore(run_hooks=False) == restore(run_hooks=False)  # what the hook is for
        first, second = restore(run_hooks=True), restore(run_hooks=True)
    finally:
        random.seed()
    assert first != second


# ---- the layer's owners --------------------------------------------------------------------------------


def _secrets_client() -> Any:
    from payments import config

    return config._secrets().client


def _factory(path: str) -> Callable[[], Any]:
    module, _, name = path.rpartition(".")
    return lambda: getattr(importlib.import_module(module), name)()


CLIENT_FACTORIES = {
    "dynamodb (store)": _factory("payments.store.table.dynamodb_client"),
    "events": _factory("payments.events.events_client"),
    "sqs (queues)": _factory("payments.queues.sqs_client"),
    "kms": _factory("payments.kms.kms_client"),
    "sesv2 (emails)": _factory("payments.emails._client"),
    "s3 (exports)": _factory("payments.exports.service.s3_client"),
    "secretsmanager (config)": _secrets_client,
}


@pytest.mark.usefixtures("aws")  # clients built now point at the embedded AWS, for the tests after this one
@pytest.mark.parametrize("factory", list(CLIENT_FACTORIES.values()), ids=list(CLIENT_FACTORIES))
def test_every_client_the_layer_builds_is_closed_before_a_snapshot(
    factory: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from payments import snapstart

    client = factory()
    closed: list[int] = []
    monkeypatch.setattr(client, "close", lambda: closed.append(1))

    snapstart.run_before_snapshot()

    assert closed == [1]


@pytest.fixture
def secret_arn(aws: dict[str, str]) -> Iterator[str]:
    secrets = aws_client("secretsmanager")
    arn = secrets.create_secret(Name=f"snapstart-{uuid.uuid4().hex[:8]}", SecretString='{"key": "before"}')["ARN"]
    yield arn
    secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def test_a_cached_secret_is_read_again_after_a_snapshot(secret_arn: str) -> None:
    from payments import config, snapstart

    config._secrets.cache_clear()  # a reader over the embedded AWS, whatever ran before
    assert config.secret(secret_arn, max_age=300, transform="json") == {"key": "before"}
    aws_client("secretsmanager").put_secret_value(SecretId=secret_arn, SecretString='{"key": "rotated"}')
    assert config.secret(secret_arn, max_age=300, transform="json") == {"key": "before"}  # cached, 300 s

    snapstart.run_before_snapshot()

    assert config.secret(secret_arn, max_age=300, transform="json") == {"key": "rotated"}


def test_gateway_adapters_and_their_sessions_are_built_anew_after_a_snapshot() -> None:
    from payments import snapstart
    from payments.gateways import gateway

    before = gateway("paypal")
    assert gateway("paypal") is before  # one adapter per settings: its session and OAuth token kept warm

    snapstart.run_before_snapshot()

    after = gateway("paypal")
    assert after is not before
    assert after.session is not before.session  # type: ignore[attr-defined]


# ---- a whole function: one snapshot, several restored environments ---------------------------------------

SCENARIO = r"""
import json, os, random, sys, types

registered = {"before": [], "after": []}  # Lambda's runtime module, as a recorder of what the layer registers
runtime = types.ModuleType("snapshot_restore_py")
runtime.register_before_snapshot = lambda func, *a, **k: registered["before"].append((func, a, k)) or func
runtime.register_after_restore = lambda func, *a, **k: registered["after"].append((func, a, k)) or func
sys.modules["snapshot_restore_py"] = runtime

import urllib3.connectionpool  # every connection pool botocore makes (one per host, holding its connections)
pools = [0]
_pool_init = urllib3.connectionpool.HTTPConnectionPool.__init__
def counting_init(self, *args, **kwargs):
    pools[0] += 1
    _pool_init(self, *args, **kwargs)
urllib3.connectionpool.HTTPConnectionPool.__init__ = counting_init

import importlib.util
spec = importlib.util.spec_from_file_location("app", "functions/list_payments/app.py")
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)  # the function's init, as Lambda runs it before the snapshot

import boto3
from payments.config import gateway_values
from payments.gateways import gateway
from payments.registry import GATEWAY_BY_PROVIDER

STRIPE = GATEWAY_BY_PROVIDER["stripe"]

class Context:
    function_name, memory_limit_in_mb, aws_request_id = "list-payments", 512, "r"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:list-payments:live"
    @staticmethod
    def get_remaining_time_in_millis():
        return 30000

def balance():
    claims = {"sub": "u", "custom:customer_id": os.environ["SNAP_CUSTOMER"], "cognito:groups": "[finance]"}
    event = {
        "version": "2.0", "routeKey": "GET /balance", "rawPath": "/balance", "rawQueryString": "",
        "headers": {}, "isBase64Encoded": False,
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "localhost", "requestId": "r",
            "routeKey": "GET /balance", "stage": "$default", "time": "25/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1795608000000, "authorizer": {"jwt": {"claims": claims, "scopes": None}},
            "http": {"method": "GET", "path": "/balance", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": "t"},
        },
    }
    answer = app.lambda_handler(event, Context())
    return answer["statusCode"], json.loads(answer["body"])

# Init primes what a real init may: a request (a pooled connection), the gateway secret, an adapter.
report = {"init": {"status": balance()[0], "secret_key": gateway_values(STRIPE)["secret_key"]}}
pools_at_init = pools[0]
balance()
report["init"]["same_pool"] = pools[0] == pools_at_init
client_at_init, adapter_at_init = app.store.client, gateway("stripe")

def environment(after_restore):
    # A restored execution environment: a fork is a copy of this process's memory, as a restore is of the
    # snapshot's, but for one thing: the child of a fork reseeds `random` (os.register_at_fork), which a restore
    # does not. So the child puts back the state the snapshot had.
    snapshot_random = random.getstate()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        random.setstate(snapshot_random)
        try:
            if after_restore:
                for func, args, kwargs in registered["after"]:  # Lambda: in the order registered
                    func(*args, **kwargs)
            out = {"draws": [random.random() for _ in range(3)]}
            before = pools[0]
            out["answer"] = balance()
            out["new_pools"] = pools[0] - before
            out["secret_key"] = gateway_values(STRIPE)["secret_key"]
            out["same_client"] = app.store.client is client_at_init
            out["same_adapter"] = gateway("stripe") is adapter_at_init
        except BaseException as exc:
            out = {"error": repr(exc)}
        os.write(write, json.dumps(out).encode())
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 1 << 16):
        data += chunk
    os.waitpid(pid, 0)
    return json.loads(data)

report["without_hooks"] = environment(after_restore=False)  # a snapshot taken as init left things

for func, args, kwargs in reversed(registered["before"]):  # Lambda: the reverse of the order registered
    func(*args, **kwargs)
# Time passes between the snapshot and its restores: the gateway secret is rotated.
boto3.client("secretsmanager").put_secret_value(
    SecretId=os.environ["GATEWAY_SECRET_ARN"], SecretString=json.dumps({"stripe_secret_key": "sk_rotated"})
)
report["restored"] = [environment(after_restore=True) for _ in range(2)]
report["restored_without_after_hooks"] = [environment(after_restore=False) for _ in range(2)]
report["registered"] = {
    kind: [f"{func.__module__}.{func.__qualname__}" for func, _, _ in hooks] for kind, hooks in registered.items()
}
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def restored(aws: dict[str, str]) -> Iterator[dict[str, Any]]:
    secrets = aws_client("secretsmanager")
    arn = secrets.create_secret(
        Name=f"snapstart-gateways-{uuid.uuid4().hex[:8]}", SecretString=json.dumps({"stripe_secret_key": "sk_init"})
    )["ARN"]
    # The secret, not the local defaults, gives the gateways their credentials here (the variables win over it).
    env = {k: v for k, v in os.environ.items() if k not in LOCAL_GATEWAY_ENV and not k.startswith("COVERAGE_")}
    env |= {
        "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), str(ROOT)]),
        "GATEWAY_SECRET_ARN": arn,
        "SNAP_CUSTOMER": f"cust-{uuid.uuid4().hex[:12]}",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    try:
        out = subprocess.run(
            [sys.executable, "-c", SCENARIO], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr[-3000:]
        yield json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def test_the_layer_registers_the_hooks_at_import_no_handler_does(restored: dict[str, Any]) -> None:
    assert restored["registered"] == {
        "before": ["payments.snapstart.run_before_snapshot"],
        "after": ["payments.snapstart.run_after_restore"],
    }


def test_each_restored_environment_answers_through_a_connection_of_its_own(restored: dict[str, Any]) -> None:
    assert restored["init"]["status"] == 200 and restored["init"]["same_pool"] is True  # the pool serves on at init
    for environment in restored["restored"]:
        assert "error" not in environment, environment
        assert environment["answer"] == [200, {"balances": []}]
        assert environment["new_pools"] == 1  # the snapshot's pool was closed: a new one, its connection new
        assert environment["same_client"] is True  # the client built at init serves on
    # Without the hooks, a restored environment sends through the pool init left, on its connection: the one
    # every other environment restored from that snapshot would send on too.
    assert restored["without_hooks"]["answer"][0] == 200
    assert restored["without_hooks"]["new_pools"] == 0


def test_each_restored_environment_reads_the_secret_afresh(restored: dict[str, Any]) -> None:
    assert restored["init"]["secret_key"] == "sk_init"
    for environment in restored["restored"]:
        assert environment["secret_key"] == "sk_rotated"  # rotated after the snapshot
        assert environment["same_adapter"] is False  # a new adapter, with a new HTTP session
    assert restored["without_hooks"]["secret_key"] == "sk_init"  # what a cached secret would have served
    assert restored["without_hooks"]["same_adapter"] is True


def test_environments_restored_from_one_snapshot_draw_different_random_numbers(restored: dict[str, Any]) -> None:
    first, second = (environment["draws"] for environment in restored["restored"])
    assert first != second
    same, too = (environment["draws"] for environment in restored["restored_without_after_hooks"])
    assert same == too  # without the after-restore hook: the snapshot's numbers, in every environment
