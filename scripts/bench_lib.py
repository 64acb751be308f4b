"""Pieces of `make bench` (scripts/bench.py) that tests reuse: exact DynamoDB request counting, the
operations whose requests are counted, statistics, and the Lambda-like process for cold starts.

Request counts come from botocore's `before-call` event, emitted once per API call (a retried call
counts once), on every client in the process: the handlers' own clients are created lazily or at import, some
on their own boto3 Session (Powertools idempotency), so the hook is put on each live client and on the
default session (for clients created later). These numbers are what AWS bills, whatever the machine.
"""

from __future__ import annotations

import compileall
import gc
import importlib.metadata
import io
import json
import os
import py_compile
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# ---- statistics -----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): p99 of 200 samples is the 2nd largest, a real sample."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return ordered[int(rank) - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


# ---- counting DynamoDB (and other AWS) requests ---------------------------------------------------

_HOOK_ID = "payments-bench-request-counter"
_active: list[Counter[str]] = []


def _count_call(model: Any, **_: Any) -> None:
    if _active:
        service = model.service_model.service_name
        _active[-1][model.name if service == "dynamodb" else f"{service}.{model.name}"] += 1


def _hook_every_client() -> None:
    """Put the counting hook on the default session and on every botocore client alive (idempotent)."""
    import boto3
    from botocore.client import BaseClient

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("before-call", _count_call, unique_id=_HOOK_ID)  # type: ignore[union-attr]
    for obj in gc.get_objects():
        if isinstance(obj, BaseClient):
            obj.meta.events.register("before-call", _count_call, unique_id=_HOOK_ID)


@contextmanager
def counting_requests() -> Iterator[Counter[str]]:
    """Counts the AWS API calls made inside the block: DynamoDB ones by operation ("Query"), others as
    "s3.PutObject"."""
    _hook_every_client()
    counts: Counter[str] = Counter()
    _active.append(counts)
    try:
        yield counts
    finally:
        _active.remove(counts)


@dataclass
class Counted:
    """One operation's answer and the requests it made."""

    status: int
    body: Any
    requests: dict[str, int] = field(default_factory=dict)  # {"Query": 1, "s3.PutObject": 1}


# ---- the operations whose requests are counted ----------------------------------------------------
# Each one prepares its own data (not counted), then makes one request through the real handler, in
# process, against the embedded AWS: the `aws` fixture in tests, `embedded_stack()` in the bench.
# They need tests/conftest.py's environment and event builders, imported when first used.


def call_handler(function: str, event: dict[str, Any]) -> Counted:
    from tests.conftest import invoke, load_function

    module = load_function(function)
    with counting_requests() as counts:
        status, body = invoke(module, event)
    return Counted(status, body, dict(counts))


def get_event(path: str, customer: str, query: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    from tests.conftest import claims_for, http_event

    return http_event("GET", path, claims=claims_for(customer, "finance"), query=query, **kw)


def post_event(path: str, customer: str | None, body: Any, groups: tuple[str, ...] = ("finance",)) -> dict[str, Any]:
    from tests.conftest import claims_for, http_event

    headers = {"Idempotency-Key": uuid.uuid4().hex}
    return http_event(
        "POST",
        path,
        claims=claims_for(customer, *groups, email="payer@example.com"),
        body=json.dumps(body),
        headers=headers,
    )


def seed_payments(customer: str, count: int) -> list[str]:
    """`count` payments, one a minute, newest last; every third pending, the rest completed. Returns ids."""
    import boto3

    from payments.config import settings
    from payments.ids import new_payment_id
    from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus
    from payments.store import to_item

    table, start = settings().payments_table, datetime(2026, 1, 1, tzinfo=UTC)
    client = boto3.client("dynamodb")
    ids: list[str] = []
    batch: list[dict[str, Any]] = []
    for i in range(count):
        at = start + timedelta(minutes=i)
        status = PaymentStatus.PENDING if i % 3 == 0 else PaymentStatus.COMPLETED
        payment = Payment(
            id=new_payment_id(at),
            customer_id=customer,
            created_at=at,
            completed_at=at + timedelta(seconds=30) if status is PaymentStatus.COMPLETED else None,
            amount_minor=1000 + i,
            currency="USD",
            status=status,
            method=PaymentMethod.CREDIT_CARD,
            description=f"Mobile plan top-up {i}",
            card_brand="visa",
            card_last4="4242",
            history=(HistoryEntry(at=at, status=status, by="bench"),),
        )
        ids.append(payment.id)
        batch.append({"PutRequest": {"Item": to_item(payment)}})
        if len(batch) == 25 or i == count - 1:
            pending: dict[str, Any] = {table: batch}
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            batch = []
    return ids


def list_first_page(customer: str) -> Counted:
    seed_payments(customer, 60)
    return call_handler("list_payments", get_event("/payments", customer, {"limit": "50"}))


def list_next_page(customer: str) -> Counted:
    from tests.conftest import invoke, load_function

    seed_payments(customer, 60)
    _, first = invoke(load_function("list_payments"), get_event("/payments", customer, {"limit": "50"}))
    return call_handler(
        "list_payments", get_event("/payments", customer, {"limit": "50", "cursor": first["next_cursor"]})
    )


def list_by_status(customer: str) -> Counted:
    seed_payments(customer, 60)
    return call_handler("list_payments", get_event("/payments", customer, {"limit": "50", "status": "completed"}))


def get_payment(customer: str) -> Counted:
    payment_id = seed_payments(customer, 3)[1]
    event = get_event(f"/payments/{payment_id}", customer, route="/payments/{id}", path_params={"id": payment_id})
    return call_handler("list_payments", event)


def get_balance(customer: str) -> Counted:
    pay_by_voucher(customer)  # a balance item to read
    return call_handler("list_payments", get_event("/balance", customer))


def pay_by_bank_transfer(customer: str) -> Counted:
    body = {"method": "bank_transfer", "amount": "25.00", "currency": "EUR"}
    return call_handler("make_payment", post_event("/payments", customer, body))


def pay_by_voucher(customer: str) -> Counted:
    from tests.conftest import invoke, load_function

    issue = post_event("/admin/vouchers", None, {"amount": "10.00", "currency": "USD", "count": 1}, ("operator",))
    status, issued = invoke(load_function("admin"), issue)
    assert status == 201, issued
    body = {"method": "voucher", "currency": "USD", "voucher_code": issued["vouchers"][0]["code"]}
    return call_handler("make_payment", post_event("/payments", customer, body))


CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2031, "cvc": "737"}


def pay_by_card(customer: str) -> Counted:
    """Needs the gateway simulator (Stripe's API): a test card that succeeds at once."""
    body = {"method": "credit_card", "amount": "42.00", "currency": "USD", "card": CARD}
    return call_handler("make_payment", post_event("/payments", customer, body))


def stripe_webhook_success(customer: str) -> Counted:
    """payment_intent.succeeded for a pending card payment, signed as Stripe signs."""
    from payments.ids import new_payment_id
    from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus, utcnow
    from payments.store import PaymentStore
    from tests.conftest import http_event
    from tests.integration import webhook_events
    from tests.integration.helpers import with_gateway_object

    now, store = utcnow(), PaymentStore()
    payment = Payment(
        id=new_payment_id(now),
        customer_id=customer,
        created_at=now,
        amount_minor=4200,
        currency="EUR",
        status=PaymentStatus.PENDING,
        method=PaymentMethod.CREDIT_CARD,
        description="Top-up",
        history=(HistoryEntry(at=now, status=PaymentStatus.PENDING, by="customer:bench"),),
    )
    store.add(payment)
    payment = with_gateway_object(payment, "stripe", "pi_" + uuid.uuid4().hex[:20], store)
    delivery = webhook_events.stripe("success", payment)
    event = http_event(
        "POST",
        "/webhooks/stripe",
        route="/webhooks/{provider}",
        body=delivery.body.decode(),
        headers=delivery.headers,
        path_params={"provider": "stripe"},
    )
    return call_handler("webhooks", event)


def export_small(customer: str) -> Counted:
    """POST /payments/exports for 60 payments: written at once (201), one Query page."""
    seed_payments(customer, 60)
    return call_handler("export_csv", post_event("/payments/exports", customer, {}))


def export_status(customer: str) -> Counted:
    from tests.conftest import invoke, load_function

    seed_payments(customer, 3)
    _, started = invoke(load_function("export_csv"), post_event("/payments/exports", customer, {}))
    export_id = started["export_id"]
    event = get_event(
        f"/payments/exports/{export_id}",
        customer,
        route="/payments/exports/{export_id}",
        path_params={"export_id": export_id},
    )
    return call_handler("export_csv", event)


@dataclass(frozen=True)
class Operation:
    label: str
    run: Callable[[str], Counted]
    ok: int  # the status the operation must answer for its count to mean anything
    needs_gateway_sim: bool = False


OPERATIONS: tuple[Operation, ...] = (
    Operation("GET /payments, first page of 50", list_first_page, 200),
    Operation("GET /payments, next page (cursor)", list_next_page, 200),
    Operation("GET /payments?status=completed", list_by_status, 200),
    Operation("GET /payments/{id}", get_payment, 200),
    Operation("GET /balance", get_balance, 200),
    Operation("POST /payments, bank transfer", pay_by_bank_transfer, 201),
    Operation("POST /payments, voucher", pay_by_voucher, 201),
    Operation("POST /payments, card settled at once (Stripe)", pay_by_card, 201, needs_gateway_sim=True),
    Operation("POST /webhooks/stripe, payment succeeded", stripe_webhook_success, 200),
    Operation("POST /payments/exports, 60 rows (1 page)", export_small, 201),
    Operation("GET /payments/exports/{id}", export_status, 200),
)


@contextmanager
def embedded_stack(*, gateway_sim: bool = True) -> Iterator[dict[str, str]]:
    """What tests/conftest.py's `aws` and `gateway_sim` fixtures provide, outside pytest."""
    import tests.conftest as conftest  # sets the test environment: fake credentials, tracing off, cursor key
    from local import embedded_aws
    from local.resources import create_resources
    from local.template import load_template
    from payments.config import settings

    port = conftest.free_port()
    server = embedded_aws.start(port)
    sim = None
    try:
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        names = create_resources(load_template(), region="us-east-1").refs
        os.environ.update(
            PAYMENTS_TABLE_NAME=names["PaymentsTable"],
            IDEMPOTENCY_TABLE_NAME=names["IdempotencyTable"],
            EXPORTS_BUCKET_NAME=names["ExportsBucket"],
        )
        settings.cache_clear()
        if gateway_sim:
            from local.gateway_sim import GatewaySimulator

            sim = GatewaySimulator("http://127.0.0.1:9")  # no webhooks are sent back
            sim.start()
            os.environ.update(sim.api_base_env())
        yield {"endpoint": os.environ["AWS_ENDPOINT_URL"], **names}
    finally:
        if sim is not None:
            sim.stop()
        server.stop()


# ---- cold starts: a Lambda-like process -----------------------------------------------------------

FLOOR_CODE = "import boto3\nboto3.client('dynamodb')"
# `import app`, then the DynamoDB client its first request uses (the handlers create it lazily, so the
# floor's client is paid either way).
INIT_CODE = """
import app
from payments.store import PaymentStore
stores = [v for v in vars(app).values() if isinstance(v, PaymentStore)]
stores += [v.store for v in vars(app).values() if isinstance(getattr(v, "store", None), PaymentStore)]
stores[0].client
"""


def resolve_revision(revision: str) -> str:
    """The commit `revision` names in this repository (RuntimeError if none)."""
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], cwd=ROOT, capture_output=True, text=True
    )
    if found.returncode != 0:
        raise RuntimeError(f"no commit {revision!r} in {ROOT}")
    return found.stdout.strip()


def default_baseline() -> str:
    """The merge-base of HEAD with `main` (the previous main this branch is compared to), else HEAD."""
    found = subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=ROOT, capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else resolve_revision("HEAD")


def export_tree(commit: str, target: Path) -> Path:
    """The `shared/` and `functions/` folders of `commit`, as `git archive` gives them, under `target`."""
    archive = subprocess.run(["git", "archive", "--format=tar", commit, "shared", "functions"], cwd=ROOT, check=True,
                             capture_output=True).stdout  # fmt: skip
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def build_deployment(target: Path, *, bytecode: bool = True, root: Path = ROOT) -> Path:
    """What `sam build` deploys, under `target`, as shared/Makefile builds the layer: `layer/` holds a
    copy of the `payments` package and of exactly the packages of shared/requirements.txt (their files
    from this virtualenv), compiled with unchecked-hash .pyc when `bytecode`; without it, the layer is
    sources only, as SAM's own python builder would leave it. `functions/<name>/` holds each app.py.
    `root`: the tree whose `shared/` and `functions/` are deployed (another commit's: `export_tree`); the
    libraries are always this virtualenv's."""
    layer = target / "layer"
    layer.mkdir(parents=True, exist_ok=True)
    no_bytecode = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(root / "shared" / "payments", layer / "payments", ignore=no_bytecode)
    lines = (root / "shared" / "requirements.txt").read_text().splitlines()
    names = [re.split(r"[=<>~\[ ;]", line.strip())[0] for line in lines if line.strip() and line[0] not in "# "]
    for name in names:
        dist = importlib.metadata.distribution(name)
        base = Path(str(dist.locate_file("")))
        for top in {f.parts[0] for f in dist.files or () if f.parts and f.parts[0] not in ("..", "__pycache__")}:
            source, copy = base / top, layer / top
            if copy.exists() or not source.exists() or top.endswith(".pth"):
                continue
            if source.is_dir():
                shutil.copytree(source, copy, ignore=no_bytecode)
            else:
                shutil.copy2(source, copy)
    for app in sorted((root / "functions").glob("*/app.py")):
        (target / "functions" / app.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(app, target / "functions" / app.parent.name / "app.py")
    if bytecode:  # the layer only: SAM copies each function's app.py as source
        unchecked = py_compile.PycInvalidationMode.UNCHECKED_HASH
        compileall.compile_dir(layer, quiet=1, workers=0, invalidation_mode=unchecked)
    return target


def lambda_env(task_root: Path, layer: Path, endpoint: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a deployed function (template Globals, Lambda's own variables, tracing on)
    with AWS pointed at `endpoint`, and Lambda's sys.path: the function's folder, then the layer."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHON", "_X_AMZN"))}
    env.update(
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - fake credentials for the embedded AWS
        AWS_ENDPOINT_URL=endpoint,
        AWS_LAMBDA_FUNCTION_NAME=task_root.name,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
        AWS_EXECUTION_ENV="AWS_Lambda_python3.12",
        LAMBDA_TASK_ROOT=str(task_root),  # Powertools Tracer and the X-Ray SDK: "in Lambda", tracing on
        _X_AMZN_TRACE_ID="Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:9",  # trace segments go nowhere
        PAYMENTS_TABLE_NAME=os.environ.get("PAYMENTS_TABLE_NAME", "payments"),
        IDEMPOTENCY_TABLE_NAME=os.environ.get("IDEMPOTENCY_TABLE_NAME", "payments-idempotency"),
        EXPORTS_BUCKET_NAME=os.environ.get("EXPORTS_BUCKET_NAME", "payments-exports"),
        POWERTOOLS_SERVICE_NAME="payments",
        POWERTOOLS_METRICS_NAMESPACE="Payments",
        LOG_LEVEL="INFO",
        MAX_PAYMENT_AMOUNT="1000000",
        EXPORT_URL_EXPIRY_SECONDS="900",
        PYDANTIC_DISABLE_PLUGINS="__all__",
        PYTHONPATH=os.pathsep.join([str(task_root), str(layer)]),
        PYTHONDONTWRITEBYTECODE="1",  # /var/task and /opt are read-only in Lambda
    )
    # As deployed, secrets come from Secrets Manager (read on first use only); the cursor key is given
    # here so a first request needing one does not wait for the embedded Secrets Manager.
    env["GATEWAY_SECRET_ARN"] = "arn:aws:secretsmanager:us-east-1:123456789012:secret:gateways"  # noqa: S105 - a name
    env["CURSOR_SECRET"] = "bench-cursor-key"  # noqa: S105 - a local-only key
    env.update(extra or {})
    return env


def run_process(code: str, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) milliseconds of `python -S -c code`: -S keeps the virtualenv's
    site-packages off sys.path, as in Lambda."""
    with tempfile.TemporaryFile() as errors:
        began = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-S", "-c", code], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=errors
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = (time.perf_counter() - began) * 1000
        if status != 0:
            errors.seek(0)
            raise RuntimeError(f"process failed in {cwd}:\n{errors.read().decode()[-3000:]}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def import_costs(code: str, task_root: Path, env: dict[str, str], runs: int = 3) -> list[tuple[str, float]]:
    """`python -X importtime` of `code`, self time summed by top-level package over the modules that the
    floor does not import, median of `runs`, largest first: where a cold start goes beyond the floor."""

    def self_times(source: str) -> dict[str, int]:
        argv = [sys.executable, "-S", "-X", "importtime", "-c", source]
        stderr = subprocess.run(argv, cwd=task_root, env=env, capture_output=True, text=True, check=True).stderr
        times = {}
        for line in stderr.splitlines():
            if line.startswith("import time:") and "self [us]" not in line:
                own, _, name = line.split(":", 1)[1].split("|")
                times[name.strip()] = int(own)
        return times

    floor = set(self_times(FLOOR_CODE))
    samples: dict[str, list[float]] = {}
    for run in range(runs):
        totals: Counter[str] = Counter()
        for name, micros in self_times(code).items():
            if name not in floor:
                totals[name.split(".")[0]] += micros
        for package in totals.keys() | samples.keys():
            samples.setdefault(package, [0.0] * run).append(totals[package] / 1000)
    return sorted(((package, median(ms)) for package, ms in samples.items()), key=lambda x: -x[1])
