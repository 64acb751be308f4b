"""`make bench`: measure the service on the local stack and write docs/benchmarks.md and docs/bench/*.png.

    .venv/bin/python -m scripts.bench            # everything, about 10-15 minutes (mostly moto paging 100k rows)
    .venv/bin/python -m scripts.bench --quick    # no 100k export, fewer runs: a few minutes
    .venv/bin/python -m scripts.bench --only cold --runs 9   # one section; the others kept from the last run
    .venv/bin/python -m scripts.bench --only cold --functions list_payments webhooks   # those functions' cold starts
    .venv/bin/python -m scripts.bench --baseline HEAD~3      # cold starts beside another commit (default: the
                                                             # merge-base with main; --baseline none: no baseline)

What is measured (each section of docs/benchmarks.md says against which floor):
- cold start: whole `python -S` processes laid out as `sam build` deploys a function (its folder, then
  the layer as shared/Makefile builds it: shared/requirements.txt and `payments`, with .pyc), Lambda's
  environment with tracing on: `import app` + the DynamoDB client its first request uses, against the floor
  `import boto3; boto3.client("dynamodb")`; medians of interleaved runs, as ratios; every function, each judged
  against the rung of the bare libraries it uses, and beside the baseline commit's same function in the same runs;
- GET /payments (page of 50): the in-process handler vs. the same raw boto3 Query, interleaved, against
  the embedded DynamoDB, on a 300-item partition (moto is fast there) and at 10k items;
- exports of 10k and 100k rows: scripts/bench_export.py (time vs. raw paginated Query + one upload, peak memory);
- DynamoDB requests per operation (scripts/bench_lib.OPERATIONS), exact: tests assert the same numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "shared"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from scripts import bench_costs, bench_lib, bench_load  # noqa: E402
from scripts.bench_lib import median, percentile  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
PLOTS = ROOT / "docs" / "bench"
RESULTS = Path(tempfile.gettempdir()) / "payments-bench-results.json"  # for --render-only
COLD_TARGET, LATENCY_TARGET, MEMORY_GROWTH_LIMIT = 1.30, 1.25, 1.10
TARGETED_COLD = ("list_payments", "export_csv")
PAGE = 50
NO_BYTECODE = "list_payments, layer without .pyc"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- cold start -----------------------------------------------------------------------------------

FIRST_LIST_CODE = """
import app
class Context:
    function_name, memory_limit_in_mb, aws_request_id = "list_payments", 512, "bench"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:list_payments"
    def get_remaining_time_in_millis(self):
        return 15000
answer = app.lambda_handler(EVENT, Context())
assert answer["statusCode"] == 200, answer
"""
FIRST_QUERY_CODE = "import boto3\nboto3.client('dynamodb').query(**REQUEST)"

# The cost of each library a read function needs, added one at a time to the floor: where 1.3x goes.
_LOGGING = """
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
Logger(); Metrics()
"""
_RESOLVER = "app = APIGatewayHttpResolver()\n"
_TRACER = """
from aws_lambda_powertools import Tracer
Tracer(patch_modules=["botocore"])
"""
_VALIDATED_ROUTE = """
from typing import Annotated
from aws_lambda_powertools.event_handler.openapi.params import Query
app = APIGatewayHttpResolver(enable_validation=True)
@app.get("/payments")
def payments(limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, int]:
    return {"limit": limit}
"""
# The functions fed by a schedule, a stream or a queue use no resolver: Logger, Metrics and pydantic (their
# settings are a model), and the queue- and stream-fed ones Powertools' batch processing.
_EVENT_LOGGING = """
from aws_lambda_powertools import Logger, Metrics
from pydantic import BaseModel, Field
class Settings(BaseModel):
    table: str = Field("payments", alias="PAYMENTS_TABLE_NAME", min_length=1)
Logger(); Metrics(); Settings()
"""
_BATCH = """
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
"""
HTTP_RUNG = "… + validation (pydantic), one route"
EVENT_RUNG = "floor + Logger, Metrics, one pydantic model"
BATCH_RUNG = "… + batch processing"
LADDER = {
    "floor + resolver, Logger, Metrics": bench_lib.FLOOR_CODE + _LOGGING + _RESOLVER,
    "… + Tracer (X-Ray SDK)": bench_lib.FLOOR_CODE + _LOGGING + _RESOLVER + _TRACER,
    HTTP_RUNG: bench_lib.FLOOR_CODE + _LOGGING + _TRACER + _VALIDATED_ROUTE,
    EVENT_RUNG: bench_lib.FLOOR_CODE + _EVENT_LOGGING,
    BATCH_RUNG: bench_lib.FLOOR_CODE + _EVENT_LOGGING + _BATCH,
}
FIRST_CALLER = "list_payments + first GET /payments"
FIRST_QUERY = "floor + first Query"
FIRST_CALLER_TARGET = 1.30  # the first caller of a new list container, against the floor + the same Query


def rung_of(app_source: str) -> str:
    """The ladder's rung of the bare libraries a function uses: the resolver's for an HTTP function, else the
    event-fed one (with batch processing if it uses it). A function at or below its rung costs nothing of ours."""
    if "api.build(" in app_source:
        return HTTP_RUNG
    return BATCH_RUNG if "utilities.batch" in app_source else EVENT_RUNG


def _with(name: str, value: Any, code: str) -> str:
    return f"import json\n{name} = json.loads({json.dumps(value)!r})\n{code}"


Case = tuple[str, Path, Path]  # code, the function's folder (cwd and sys.path[0]), the deployment


def _function_cases(build: Path, event: dict[str, Any], only: list[str] | None) -> dict[str, Case]:
    functions = sorted(p.name for p in (build / "functions").iterdir() if not only or p.name in only)
    cases: dict[str, Case] = {name: (bench_lib.INIT_CODE, build / "functions" / name, build) for name in functions}
    if "list_payments" in functions:
        cases[FIRST_CALLER] = (_with("EVENT", event, FIRST_LIST_CODE), build / "functions" / "list_payments", build)
    return cases


def _medians(samples: dict[str, list[tuple[float, float]]], runs: int) -> dict[str, dict[str, float]]:
    return {
        name: {"wall": median([w for w, _ in values]), "cpu": median([c for _, c in values]), "runs": runs}
        for name, values in samples.items()
    }


def cold_starts(
    endpoint: str, customer: str, runs: int, baseline: str | None, only: list[str] | None = None
) -> dict[str, Any]:
    """Median wall and CPU ms per case over `runs` interleaved rounds (after one warm-up round). With `baseline`
    (a commit), each function's case is also measured as that commit deploys it, next to this tree's, in the same
    rounds: the floor and the ladder are the libraries', the same for both. `only`: these functions' cases alone."""
    from tests.conftest import claims_for, http_event

    event = http_event("GET", "/payments", claims=claims_for(customer, "finance"), query={"limit": str(PAGE)})
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        build = bench_lib.build_deployment(Path(tmp) / "build")
        sources = bench_lib.build_deployment(Path(tmp) / "build-sources", bytecode=False)
        ours = _function_cases(build, event, only)
        rung_names = {p.name for p in (build / "functions").iterdir()}
        theirs: dict[str, Case] = {}
        if baseline:
            tree = bench_lib.export_tree(baseline, Path(tmp) / "baseline-tree")
            theirs = _function_cases(bench_lib.build_deployment(Path(tmp) / "build-baseline", root=tree), event, only)
        any_function = next(iter(ours.values()))[1]
        cases: dict[tuple[str, str], Case] = {("ours", "floor"): (bench_lib.FLOOR_CODE, any_function, build)}
        for name in sorted(ours.keys() | theirs.keys(), key=lambda n: (n == FIRST_CALLER, n)):
            if name == FIRST_CALLER:
                cases[("ours", FIRST_QUERY)] = (
                    _with("REQUEST", list_query(customer), FIRST_QUERY_CODE),
                    build / "functions" / "list_payments",
                    build,
                )
            for side, built in (("baseline", theirs), ("ours", ours)):
                if name in built:
                    cases[(side, name)] = built[name]
        cases[("ours", NO_BYTECODE)] = (bench_lib.INIT_CODE, sources / "functions" / "list_payments", sources)
        cases |= {("ours", name): (code, any_function, build) for name, code in LADDER.items()}
        samples: dict[tuple[str, str], list[tuple[float, float]]] = {key: [] for key in cases}
        for round_ in range(runs + 1):
            for key, (code, task_root, deployment) in cases.items():
                env = bench_lib.lambda_env(task_root, deployment / "layer", endpoint)
                timing = bench_lib.run_process(code, task_root, env)
                if round_:  # the first round only warms the page cache
                    samples[key].append(timing)
            log(f"cold start round {round_}/{runs}")
        imports = {}
        for name in [n for n in TARGETED_COLD if n in ours]:
            task_root = build / "functions" / name
            env = bench_lib.lambda_env(task_root, build / "layer", endpoint)
            imports[name] = bench_lib.import_costs(bench_lib.INIT_CODE, task_root, env)
        rungs = {
            name: rung_of((build / "functions" / name / "app.py").read_text()) for name in ours if name in rung_names
        }
    times = _medians({name: v for (side, name), v in samples.items() if side == "ours"}, runs)
    answer: dict[str, Any] = {"times": times, "imports": imports, "rungs": rungs}
    if baseline:
        answer["baseline"] = {
            "commit": baseline,
            "times": _medians({name: v for (side, name), v in samples.items() if side == "baseline"}, runs),
        }
    return answer


# ---- GET /payments latency ------------------------------------------------------------------------


def list_query(customer: str) -> dict[str, Any]:
    """The Query `PaymentStore.page` sends for a first page without filters."""
    from payments.config import settings

    return {
        "TableName": settings().payments_table,
        "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :lower AND :upper",
        "ExpressionAttributeNames": {"#pk": "PK", "#sk": "SK"},
        "ExpressionAttributeValues": {
            ":pk": {"S": f"CUST#{customer}"},
            ":lower": {"S": "PAY#"},
            ":upper": {"S": "PAY$"},
        },
        "ScanIndexForward": False,
        "Limit": PAGE + 1,
    }


class _CannedDynamoDB:
    """Answers every Query with one recorded answer: leaves the handler's own work alone on the clock."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer

    def query(self, **_: Any) -> dict[str, Any]:
        return self.answer


def list_latency(customer: str, runs: int) -> dict[str, Any]:
    import boto3

    from payments.store import PaymentStore
    from tests.conftest import FakeContext, claims_for, http_event, load_function

    handler, raw, request = load_function("list_payments"), boto3.client("dynamodb"), list_query(customer)
    event = http_event("GET", "/payments", claims=claims_for(customer, "finance"), query={"limit": str(PAGE)})
    answer = handler.lambda_handler(event, FakeContext())
    expected = [item["id"]["S"] for item in raw.query(**request)["Items"][:PAGE]]
    if answer["statusCode"] != 200 or [p["id"] for p in json.loads(answer["body"])["items"]] != expected:
        raise RuntimeError(f"the handler's page differs from the raw Query's: {answer}")

    def time_handler() -> float:
        began = time.perf_counter()
        result = handler.lambda_handler(event, FakeContext())
        elapsed = time.perf_counter() - began
        if result["statusCode"] != 200:
            raise RuntimeError(f"GET /payments answered {result}")
        return elapsed * 1000

    def time_raw() -> float:
        began = time.perf_counter()
        raw.query(**request)
        return (time.perf_counter() - began) * 1000

    for _ in range(5):  # warm both paths
        time_handler(), time_raw()
    # moto's tables live in this process; in Lambda the database is not on the function's heap. Freezing
    # what exists now keeps full garbage collections from walking 10k stored items in the middle of
    # whichever call happens to trigger them (the handler allocates more, so it would trigger more).
    gc.collect()
    gc.freeze()
    real_store = handler.store
    try:
        handler_ms, raw_ms = [], []
        for i in range(runs):  # interleaved, alternating who goes first
            if i % 2:
                raw_ms.append(time_raw())
                handler_ms.append(time_handler())
            else:
                handler_ms.append(time_handler())
                raw_ms.append(time_raw())
        handler.store = PaymentStore(real_store.table, client=_CannedDynamoDB(raw.query(**request)))  # type: ignore[arg-type]
        own_ms = [time_handler() for _ in range(runs)]
    finally:
        handler.store = real_store
        gc.unfreeze()
    return {
        "runs": runs,
        "handler": {"p50": percentile(handler_ms, 50), "p99": percentile(handler_ms, 99)},
        "raw": {"p50": percentile(raw_ms, 50), "p99": percentile(raw_ms, 99)},
        "own_p50": percentile(own_ms, 50),
        "own_p99": percentile(own_ms, 99),
    }


# ---- request counts -------------------------------------------------------------------------------


def request_counts() -> list[dict[str, Any]]:
    counted = []
    for operation in bench_lib.OPERATIONS:
        result = operation.run(f"bench-{uuid.uuid4().hex[:10]}")
        if result.status != operation.ok:
            raise RuntimeError(f"{operation.label} answered {result.status}: {result.body}")
        counted.append({"operation": operation.label, "requests": result.requests})
    return counted


# ---- exports (scripts/bench_export.py) ------------------------------------------------------------


def exports(sizes: list[int]) -> list[dict[str, Any]]:
    """Each size in its own table, measured in a fresh process against moto in another one."""
    from scripts import bench_export

    return bench_export.run(sizes, log=log)


def export_cpu(sizes: list[int], baseline: str | None) -> list[dict[str, Any]]:
    """The export's CPU against the floor's over interleaved rounds on replayed pages, beside `baseline`'s export."""
    from scripts import bench_export

    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        tree = bench_lib.export_tree(baseline, Path(tmp) / "baseline-tree") if baseline else None
        results: list[dict[str, Any]] = []
        for rows in sizes:
            rounds = max(3, min(15, 150_000 // rows))  # about a minute of CPU per side and size
            results += bench_export.cpu_profile([rows], rounds=rounds, baseline=tree, log=log)
        return results


def export_memory(sizes: list[int]) -> list[dict[str, Any]]:
    """Peak memory of the export with synthetic Query pages, up to sizes moto cannot page through."""
    from scripts import bench_export

    return bench_export.memory_profile(sizes, log=log)


# ---- the report -----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "unknown",
    )
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "load": "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
        "commit": (commit.stdout.strip() or "unknown") + (" + uncommitted changes" if dirty else ""),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def mark(ratio: float, target: float) -> str:
    return f"**met** (≤ {target:.2f})" if ratio <= target else f"**missed** (> {target:.2f})"


def plot(results: dict[str, Any], folder: Path = PLOTS) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(folder / name, dpi=110, metadata={"Software": None})
        plt.close(fig)
        written.append(name)

    if results.get("cold"):
        cold, floor = results["cold"]["times"], results["cold"]["times"]["floor"]
        before = results["cold"].get("baseline", {}).get("times", {})
        names = [n for n in cold if n != "floor" and "first" not in n]
        fig, ax = plt.subplots(figsize=(10, 0.8 + 0.28 * len(names)))
        bars = [(0.2, cold, "#a74", "this tree")] + ([(-0.2, before, "#999", "baseline")] if before else [])
        for offset, times, colour, label in bars:
            shown = [i for i, n in enumerate(names) if n in times]
            ratios = [times[names[i]]["cpu"] / floor["cpu"] for i in shown]
            ax.barh([i + offset for i in shown], ratios, 0.4, color=colour, label=f"{label} (CPU)")
        ax.set_yticks(range(len(names)), names)
        ax.axvline(1.0, color="black", linewidth=1)
        for rung, style in ((HTTP_RUNG, "--"), (BATCH_RUNG, ":")):
            if rung in cold:
                level = cold[rung]["cpu"] / floor["cpu"]
                ax.axvline(level, color="#c44", linestyle=style, label=f"rung {rung!r}: {level:.2f}x")
        ax.set_xlabel("median cold start CPU / floor (import boto3 + one DynamoDB client)")
        ax.set_title("Cold start: import app + its DynamoDB client")
        ax.invert_yaxis()
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        save(fig, "cold_start.png")

    if results.get("list"):
        fig, axes = plt.subplots(1, 2, figsize=(9, 4))
        for ax, key, title in zip(axes, ("small", "large"), ("300-item partition", "10k-item partition"), strict=True):
            lat = results["list"][key]
            x = range(2)
            ax.bar([i - 0.2 for i in x], [lat["raw"]["p50"], lat["raw"]["p99"]], 0.4, label="raw boto3 Query")
            ax.bar([i + 0.2 for i in x], [lat["handler"]["p50"], lat["handler"]["p99"]], 0.4, label="handler")
            ax.set_xticks(list(x), ["p50", "p99"])
            ax.set_ylabel("ms")
            ax.set_title(f"GET /payments, page of {PAGE}: {title}")
            ax.legend()
        save(fig, "list_latency.png")

    if results.get("export"):
        exp = results["export"]
        labels = [f"{r['rows'] // 1000}k rows" for r in exp]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4))
        ax1.bar(labels, [r["export_s"] / r["floor_s"] for r in exp], color="#47a")
        ax1.axhline(LATENCY_TARGET, color="#c44", linestyle="--", label=f"target {LATENCY_TARGET}x")
        ax1.set_ylabel("export time / raw paginated Query + one upload")
        ax1.legend()
        ax2.plot([r["rows"] for r in exp], [r["traced_peak"] / 2**20 for r in exp], "o-", label="moto")
        profile = results.get("memory", [])
        if profile:
            rows, peaks = [r["rows"] for r in profile], [r["traced_peak"] / 2**20 for r in profile]
            ax2.plot(rows, peaks, "s--", color="#a74", label="synthetic Query pages")
        ax2.set_xscale("log")
        ax2.set_ylim(bottom=0)
        ax2.set_xlabel("rows")
        ax2.set_ylabel("peak Python memory during the export (MiB)")
        ax2.legend()
        save(fig, "export.png")

    counts = results.get("requests") or []
    if not counts:
        return written
    fig, ax = plt.subplots(figsize=(10, 4.5))
    kinds = sorted({k for c in counts for k in c["requests"]})
    left = [0] * len(counts)
    for kind in kinds:
        values = [c["requests"].get(kind, 0) for c in counts]
        ax.barh([c["operation"] for c in counts], values, left=left, label=kind)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("AWS requests per operation (exact)")
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save(fig, "requests.png")
    return written


def _not_measured(section: str) -> list[str]:
    return [f"Not measured in this run (`--only` named other sections; `--only {section}` measures it).", ""]


def _change(ours: float, theirs: float | None) -> str:
    """The change from the baseline: in ratio points and in CPU time."""
    return "" if theirs is None else f"{ours - theirs:+.2f}x"


def _cold_targets(results: dict[str, Any]) -> list[str]:
    cold, rungs = results["cold"]["times"], results["cold"].get("rungs", {})
    before = results["cold"].get("baseline", {}).get("times", {})
    floor = cold["floor"]
    out = []
    for name in sorted(rungs):
        rung = cold[rungs[name]]["cpu"] / floor["cpu"]
        ratio = cold[name]["cpu"] / floor["cpu"]
        was = f"; baseline {before[name]['cpu'] / floor['cpu']:.2f}x" if name in before else ""
        out.append(
            f"| cold start `{name}` ≤ its bare libraries ({rungs[name]}: {rung:.2f}x), CPU | {ratio:.2f}x{was} | "
            f"{mark(ratio, rung)} |"
        )
    if FIRST_CALLER in cold:
        query = cold[FIRST_QUERY]
        ratio, wall = cold[FIRST_CALLER]["cpu"] / query["cpu"], cold[FIRST_CALLER]["wall"] / query["wall"]
        was = f"; baseline {before[FIRST_CALLER]['cpu'] / query['cpu']:.2f}x" if FIRST_CALLER in before else ""
        out.append(
            f"| the first caller of a new list container ≤ {FIRST_CALLER_TARGET}x `{FIRST_QUERY}`, CPU | "
            f"{ratio:.2f}x (wall {wall:.2f}x){was} | {mark(ratio, FIRST_CALLER_TARGET)} |"
        )
    for name in [n for n in TARGETED_COLD if n in cold]:
        ratio, cpu = cold[name]["wall"] / floor["wall"], cold[name]["cpu"] / floor["cpu"]
        out.append(
            f"| cold start `{name}` ≤ {COLD_TARGET}x floor (wall) | {ratio:.2f}x (CPU {cpu:.2f}x) | "
            f"{mark(ratio, COLD_TARGET)} |"
        )
    return out


def _cold_section(results: dict[str, Any]) -> list[str]:
    cold, rungs = results["cold"]["times"], results["cold"].get("rungs", {})
    baseline = results["cold"].get("baseline")
    before = baseline["times"] if baseline else {}
    floor = cold["floor"]
    out = [
        "Each case is a fresh `python -S` process laid out as `sam build` deploys it: the function's folder, "
        "then the layer as shared/Makefile builds it (our `payments` package and exactly the packages of "
        "shared/requirements.txt, with unchecked-hash .pyc), Lambda's environment with tracing on "
        "(`LAMBDA_TASK_ROOT`, `_X_AMZN_TRACE_ID`), "
        "AWS pointed at the embedded stack. A function's case is `import app` plus the DynamoDB client its first "
        "request uses (created lazily, so it is paid either way); the floor is `import boto3; "
        f"boto3.client('dynamodb')`. Medians of {floor['runs']} interleaved runs after a warm-up round; CPU is "
        "user + system time of the process, steadier than wall time on a busy machine.",
        "",
    ]
    if baseline:
        out += [
            f"Side by side: the baseline is commit `{baseline['commit'][:10]}` ({baseline.get('label', 'baseline')}), "
            "its `shared/` and `functions/` taken with `git archive` and deployed the same way, with the same "
            "libraries; each of its cases runs next to this tree's in every round. The floor and the ladder are "
            "the libraries', measured once. `change` is this tree's ratio minus the baseline's.",
            "",
        ]
    out += [
        "| case | wall ms | CPU ms | vs. floor | baseline CPU ms | baseline vs. floor | change | judged against | |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, c in cold.items():
        base = cold[FIRST_QUERY] if name == FIRST_CALLER else floor
        ratio = c["cpu"] / base["cpu"]
        was = before[name]["cpu"] / base["cpu"] if name in before else None
        if name in rungs:
            limit = cold[rungs[name]]["cpu"] / floor["cpu"]
            judged, verdict = f"{rungs[name]} ({limit:.2f}x)", mark(ratio, limit)
        elif name == FIRST_CALLER:
            judged, verdict = f"{FIRST_CALLER_TARGET}x `{FIRST_QUERY}`", mark(ratio, FIRST_CALLER_TARGET)
        else:
            judged = verdict = ""
        out.append(
            f"| {name} | {c['wall']:.0f} | {c['cpu']:.0f} | {ratio:.2f}x | "
            + (f"{before[name]['cpu']:.0f} | {was:.2f}x | " if was is not None else "| | ")
            + f"{_change(ratio, was)} | {judged} | {verdict} |"
        )
    out += [
        "",
        f"`{FIRST_CALLER}` is measured against `{FIRST_QUERY}` (the same page as a raw "
        "Query): what the first caller of a new container waits for, including what the handler defers to its "
        f"first request. `{NO_BYTECODE}` is the same function with a layer of sources only, as SAM's own "
        "python builder leaves it (it unzips wheels): the reason shared/Makefile compiles the layer.",
        "",
        "The rows after the functions are a ladder: the libraries the functions use, added to the floor with no "
        "code of ours. An HTTP function is judged against the resolver's last rung, one fed by a schedule, a "
        "stream or a queue against the Logger, Metrics and pydantic rung (with batch processing if it uses it). "
        + ", ".join(f"{name}: {cold[name]['cpu'] / floor['cpu']:.2f}x" for name in LADDER if name in cold)
        + " (CPU). What a function adds above its rung is its own modules, models and routes; "
        "docs/cold-start.md says what was taken out and what is left.",
        "",
        "![cold start](bench/cold_start.png)",
        "",
        "Where it goes beyond the floor (`python -X importtime`: self time of the modules the floor does not import, "
        "summed by top-level package, median of 3; importtime itself adds some):",
        "",
        "| package | " + " | ".join(f"`{n}` ms" for n in results["cold"]["imports"]) + " |",
        "|---|" + "---:|" * len(results["cold"]["imports"]),
    ]
    imports = {n: dict(costs) for n, costs in results["cold"]["imports"].items()}
    ranked = sorted(
        {p for costs in imports.values() for p in costs}, key=lambda p: -max(c.get(p, 0) for c in imports.values())
    )
    for package in ranked[:12]:
        out.append(f"| {package} | " + " | ".join(f"{costs.get(package, 0):.1f}" for costs in imports.values()) + " |")
    out.append(
        "| **all beyond the floor** | " + " | ".join(f"{sum(costs.values()):.0f}" for costs in imports.values()) + " |"
    )
    out.append("")
    return out


def _list_section(lists: dict[str, Any]) -> list[str]:
    out = [
        f"In one process: the handler (`lambda_handler` with an API Gateway event, tracing off) and the raw boto3 "
        f"Query it sends (same key condition, `Limit` {PAGE + 1}, newest first), interleaved, against the embedded "
        "DynamoDB (moto, in process). moto's Query cost grows with the partition, so the overhead ratio is taken "
        "on a small partition; 10k items gives the absolute figures. After a warm-up, `gc.freeze()` takes moto's "
        "stored items out of garbage collection: in Lambda the database is not on the function's heap.",
        "",
        "| partition | runs | raw p50 ms | handler p50 ms | ratio | raw p99 ms | handler p99 ms | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, title in (("small", "300 items"), ("large", "10,000 items")):
        lat = lists[key]
        h, r = lat["handler"], lat["raw"]
        out.append(
            f"| {title} | {lat['runs']} | {r['p50']:.1f} | {h['p50']:.1f} | {h['p50'] / r['p50']:.2f}x | "
            f"{r['p99']:.1f} | {h['p99']:.1f} | {h['p99'] / r['p99']:.2f}x |"
        )
    own, raw_p50 = lists["small"]["own_p50"], lists["small"]["raw"]["p50"]
    own_tail = f", p99 {lists['small']['own_p99']:.1f} ms" if "own_p99" in lists["small"] else ""
    out += [
        "",
        f"The handler's own work per page (DynamoDB answer canned, so only event parsing, validation, 50 items to "
        f"models, cursor signing and JSON are on the clock): p50 {own:.1f} ms{own_tail}. Most of moto's "
        f"{raw_p50:.0f} ms per page is its response serialisation; DynamoDB answers such a Query in milliseconds, "
        "so this own time, not the ratio above, says what the handler adds in AWS. The p99 ratios compare the "
        "slowest of a few hundred calls on a shared machine: a pause in moto or the host lands on whichever side "
        "is running, so they change from run to run.",
        "",
        "![list latency](bench/list_latency.png)",
        "",
    ]
    return out


def _export_cpu_targets(cpu: list[dict[str, Any]]) -> list[str]:
    from scripts.bench_export import CPU_TARGET, cpu_ratio

    before = {r["rows"]: cpu_ratio(r) for r in cpu if r["side"] == "baseline"}
    out = []
    for r in (r for r in cpu if r["side"] == "ours"):
        ratio = cpu_ratio(r)
        was = f"; baseline {before[r['rows']]:.2f}x" if r["rows"] in before else ""
        out.append(
            f"| export CPU, {r['rows']:,} rows ≤ {CPU_TARGET}x raw paged Query + upload (median of "
            f"{len(r['export'])} interleaved rounds) | {ratio:.2f}x{was} | {mark(ratio, CPU_TARGET)} |"
        )
    return out


def _export_cpu_section(cpu: list[dict[str, Any]]) -> list[str]:
    import statistics

    from scripts.bench_export import cpu_ratio

    if not cpu:
        return ["", *_not_measured("export")]
    out = [
        "",
        "### Export CPU",
        "",
        "scripts/bench_export.py `cpu_profile`: the CPU of the exporting process against the floor's, where nothing "
        "else is on the books. A child process replays DynamoDB's Query pages of the same payments from JSON "
        "serialised once (`serve_pages`: it answers in milliseconds and barely uses the other core), S3 is moto's. "
        "In a fresh process per tree and size: one round of each side to load the clients' service models, then "
        "`rounds` rounds, each the export (`stream_export`: Query pages → rows → CSV → S3) followed by the floor "
        "(the same Query pages through a plain boto3 client, then one PutObject of the file's size). The ratio is "
        "the median export round over the median floor round; the baseline is the same export code of the "
        "baseline commit, measured the same way. Rounds on this shared machine vary by ±20%: the spread is shown.",
        "",
        "| rows | tree | rounds | export CPU s (median) | floor CPU s (median) | ratio | per-round ratios |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in cpu:
        pairs = sorted(e / f for e, f in zip(r["export"], r["floor"], strict=True))
        out.append(
            f"| {r['rows']:,} | {r['side']} | {len(r['export'])} | {statistics.median(r['export']):.2f} | "
            f"{statistics.median(r['floor']):.2f} | {cpu_ratio(r):.2f}x | {pairs[0]:.2f}–{pairs[-1]:.2f}x |"
        )
    out += [
        "",
        "Per row, the export reads the ten attributes the CSV has straight from the item "
        "(`payments.store.export_rows.row_of_item`; a test holds its CSV byte for byte to the one built through "
        "`Payment` and its API form): what is left above the floor is the CSV encoding, about 3–6 µs a row "
        "against the 100–150 µs botocore spends parsing it.",
        "",
    ]
    return out


SUITE_TARGET_S = 360  # make test on 2 cores (issue #17)


def suite() -> dict[str, Any]:
    """`make test`'s time: its checks (lint, types, template) timed here, and its pytest run as the last full run
    of the suite in this checkout recorded it (tests/conftest.py writes .local/test-run.json)."""
    began = time.perf_counter()
    subprocess.run(["make", "--no-print-directory", "lint", "typecheck", "cfn-lint"], cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    checks = time.perf_counter() - began
    record = ROOT / ".local" / "test-run.json"
    run = json.loads(record.read_text()) if record.exists() else None
    return {"checks_s": checks, "pytest": run}


def _suite_targets(results: dict[str, Any]) -> list[str]:
    measured = results.get("suite")
    if not measured or not measured.get("pytest"):
        return [f"| `make test` ≤ {SUITE_TARGET_S // 60} min on 2 cores | not measured (no full test run recorded) | |"]
    run = measured["pytest"]
    total = measured["checks_s"] + run["seconds"]
    return [
        f"| `make test` ≤ {SUITE_TARGET_S // 60} min on 2 cores | {total / 60:.1f} min: checks "
        f"{measured['checks_s']:.0f} s + pytest {run['seconds']:.0f} s ({run['tests']:,} tests, "
        f"{run['workers']} workers, {run['finished']}) | {mark(total / 60, SUITE_TARGET_S / 60)} |"
    ]


def render(results: dict[str, Any], quick: bool) -> str:
    m, lists = results["machine"], results.get("list")
    out = [
        "# Benchmarks",
        "",
        "Written by `make bench` (scripts/bench.py); do not edit by hand. Re-run: `make bench` "
        "(`make bench BENCH_ARGS=--quick` skips the 100k export; `BENCH_ARGS='--only cold'` measures one section "
        "and keeps the others from the last run). Method: each section below says what it measures "
        "and against which floor; [scripts/bench.py](../scripts/bench.py) and "
        "[scripts/bench_export.py](../scripts/bench_export.py) are the code.",
        "",
        f"Measured {m['date']} on {m['cpu']}, {m['os']}, {m['python']}; load average at start {m['load']}; "
        f"commit {m['commit']}." + (" Quick run: fewer repetitions, no 100k export." if quick else ""),
        "The machine is shared: only ratios measured side by side in one run mean much, not absolute times.",
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
    ]
    if results.get("cold"):
        out += _cold_targets(results)
    for key, title in (("small", "300-item partition"), ("large", "10k items")) if lists else ():
        lat = (lists or {})[key]
        for q in ("p50", "p99"):
            ratio = lat["handler"][q] / lat["raw"][q]
            target = f"GET /payments {q}, {title} ≤ {LATENCY_TARGET}x raw Query"
            out.append(f"| {target} | {ratio:.2f}x | {mark(ratio, LATENCY_TARGET)} |")
    exp = results["export"]
    for r in exp:
        ratio = r["export_s"] / r["floor_s"]
        out.append(
            f"| export {r['rows']:,} rows ≤ {LATENCY_TARGET}x raw paged Query + upload | {ratio:.2f}x | "
            f"{mark(ratio, LATENCY_TARGET)} |"
        )
    out += _export_cpu_targets(results.get("export_cpu") or [])
    out += _suite_targets(results)
    if len(exp) > 1:
        growth = exp[-1]["traced_peak"] / exp[0]["traced_peak"]
        verdict = "**met**" if growth <= MEMORY_GROWTH_LIMIT else "**missed**"
        out.append(
            f"| export peak memory flat from {exp[0]['rows']:,} to {exp[-1]['rows']:,} rows against moto "
            f"(growth ≤ {MEMORY_GROWTH_LIMIT:.2f}x; the smaller file is below one 5 MiB part) | {growth:.2f}x | "
            f"{verdict} |"
        )
    profile = results.get("memory", [])
    if len(profile) > 2:
        growth = profile[-1]["traced_peak"] / profile[-2]["traced_peak"]
        verdict = "**met**" if growth <= MEMORY_GROWTH_LIMIT else "**missed**"
        out.append(
            f"| export peak memory flat from {profile[-2]['rows']:,} to {profile[-1]['rows']:,} rows, synthetic "
            f"Query pages (growth ≤ {MEMORY_GROWTH_LIMIT:.2f}x) | {growth:.2f}x | {verdict} |"
        )
    out += ["", "## Cold start", ""] + (_cold_section(results) if results.get("cold") else _not_measured("cold"))
    out += [f"## GET /payments (page of {PAGE})", ""] + (_list_section(lists) if lists else _not_measured("list"))
    out += [
        "## Exports",
        "",
    ]
    if exp:
        out += [
            "scripts/bench_export.py: moto in its own process; per size, a fresh process runs the export "
            "(`payments.exports.stream_export`: Query pages of 500 → CSV → S3), the same export under tracemalloc "
            "for the peak, and the floor: a raw paginated Query of the same items plus one PutObject of the same "
            "size. Wall time is mostly moto's (its Query re-sorts the table on every page); CPU time is this "
            "process's own.",
            "",
            "| rows | file MB | export s | floor s | ratio | export CPU s | floor CPU s | CPU ratio | peak MiB | "
            "max RSS MiB |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in exp:
            out.append(
                f"| {r['rows']:,} | {r['bytes'] / 1e6:.1f} | {r['export_s']:.1f} | {r['floor_s']:.1f} | "
                f"{r['export_s'] / r['floor_s']:.2f}x | {r['export_cpu']:.1f} | {r['floor_cpu']:.1f} | "
                f"{r['export_cpu'] / r['floor_cpu']:.2f}x | {r['traced_peak'] / 2**20:.2f} | "
                f"{r['maxrss_kb'] / 1024:.0f} |"
            )
        out += [
            "",
            "Moto's slow pages hide the export's own work in the wall-time ratio; against DynamoDB's fast pages the "
            "time ratio would move towards the CPU ratio. The CPU columns above are one round each, beside moto "
            "working on the other core: the CPU target is judged on the rounds below.",
        ]
    else:
        out += ["The export against moto was skipped (`--export-rows` with no sizes).", ""]
    out += _export_cpu_section(results.get("export_cpu") or [])
    if profile:
        out += [
            "",
            "Memory in the row count: moto pages 100k rows in minutes, so larger sizes are measured with "
            "`SyntheticPages` (scripts/bench_export.py) standing in for DynamoDB: it answers the same Query "
            "pages of generated payments on demand; S3 is still moto's, in its own process. Per size, a fresh "
            "process: the export once for CPU, once under tracemalloc for the peak.",
            "",
            "| rows | file MB | upload | peak MiB | CPU s (export and making the pages) | rows per CPU s |",
            "|---:|---:|---|---:|---:|---:|",
        ]
        for r in profile:
            upload = f"{r['parts']} parts of 5 MiB" if r["parts"] else "one PutObject"
            out.append(
                f"| {r['rows']:,} | {r['bytes'] / 1e6:.1f} | {upload} | {r['traced_peak'] / 2**20:.2f} | "
                f"{r['cpu_s']:.1f} | {r['rows'] / r['cpu_s']:,.0f} |"
            )
        out += [
            "",
            "Below one part (5 MiB: about 33k rows of these 157-byte rows) the buffer is the whole file, so the "
            "peak grows with the file up to that size; above it the peak is one part buffer plus one Query page, "
            "whatever the row count.",
        ]
    if exp:
        out += ["", "![exports](bench/export.png)", ""]
    out += [
        "## DynamoDB requests per operation",
        "",
        "Exact: botocore's `before-call` event on every client, through the real handlers "
        "(scripts/bench_lib.py `OPERATIONS`; tests/integration/test_request_counts.py asserts these numbers).",
        "",
        "| operation | DynamoDB requests | other AWS requests |",
        "|---|---|---|",
    ]
    if not results.get("requests"):
        out += ["", *_not_measured("requests")]
    for c in results.get("requests") or []:
        dynamo = ", ".join(f"{k} {v}" for k, v in sorted(c["requests"].items()) if "." not in k)
        other = ", ".join(f"{k} {v}" for k, v in sorted(c["requests"].items()) if "." in k) or "-"
        out.append(f"| {c['operation']} | {dynamo} | {other} |")
    out += [
        "",
        "An export makes one more Query per further page of 500 payments. Make Payment's `PutItem` and "
        "`UpdateItem` are on the idempotency table (Powertools); everything else is on the payments table.",
        "",
        "![requests](bench/requests.png)",
        "",
    ]
    out += [*bench_costs.render(results["costs"]), ""] if results.get("costs") else ["", *_not_measured("costs")]
    out += [*bench_load.render(results["load"]), ""] if results.get("load") else ["", *_not_measured("load")]
    out += _suite_section(results.get("suite"))
    return "\n".join(out)


def _suite_section(measured: dict[str, Any] | None) -> list[str]:
    out = ["## make test", ""]
    if not measured or not measured.get("pytest"):
        return [*out, *_not_measured("suite")]
    run = measured["pytest"]
    return [
        *out,
        f"`make lint typecheck cfn-lint` timed by the bench: {measured['checks_s']:.0f} s. The last full pytest run "
        f"of this checkout (tests/conftest.py records it in .local/test-run.json): {run['seconds']:.0f} s for "
        f"{run['tests']:,} tests on {run['workers']} workers, coverage {'on' if run['coverage'] else 'off'}, "
        f"{run['failed']} failed, commit `{run['commit'][:10]}`, {run['finished']}. What it spends and what was cut: "
        "[testing.md](testing.md#how-long-make-test-takes).",
        "",
    ]


SECTIONS = ("export", "memory", "cold", "list", "requests", "costs", "load", "suite")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="no 100k export; fewer cold starts and requests")
    parser.add_argument("--runs", type=int, help="cold start processes per case (default 15, quick 7)")
    parser.add_argument("--requests", type=int, help="GET /payments per side (default 200, quick 100)")
    parser.add_argument("--render-only", action="store_true", help=f"rewrite the report from {RESULTS}")
    parser.add_argument("--export-rows", type=int, nargs="*", help="export sizes (default 10000 100000, quick 10000)")
    parser.add_argument(
        "--profile-rows",
        type=int,
        nargs="*",
        help="export memory profile sizes (default 10k 100k 1M, quick 10k 50k 100k)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        help=f"measure only these sections; the others are kept from the last run's {RESULTS.name} if any",
    )
    parser.add_argument(
        "--baseline",
        default="merge-base",
        help="the commit whose functions are measured beside this tree's in the cold starts: a revision "
        "(main, HEAD~3, a sha), 'merge-base' (default: of HEAD with main) or 'none'",
    )
    parser.add_argument("--load-clients", type=int, default=200, help="the load run's clients (default 200)")
    parser.add_argument("--load-seconds", type=float, default=60, help="the load run's length (default 60 s)")
    parser.add_argument("--functions", nargs="+", help="cold starts of these functions only (default: every one)")
    parser.add_argument(
        "--doc", type=Path, default=DOC, help=f"where the report goes (default {DOC.relative_to(ROOT)})"
    )
    args = parser.parse_args()
    if args.render_only:
        results = json.loads(RESULTS.read_text())
        plots = plot(results, args.doc.parent / "bench")
        args.doc.write_text(render(results, results["quick"]))
        log(f"wrote {args.doc} and {', '.join(plots)} from {RESULTS}")
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so moto and other children are stopped
    sections = set(args.only or SECTIONS)
    runs = args.runs or (7 if args.quick else 15)
    requests = args.requests or (100 if args.quick else 200)
    sizes = args.export_rows if args.export_rows is not None else [10_000] if args.quick else [10_000, 100_000]
    profile = [10_000, 50_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    profile = args.profile_rows if args.profile_rows is not None else profile
    baseline: str | None = None  # the commit measured beside this tree
    label = "the merge-base of HEAD with main" if args.baseline == "merge-base" else args.baseline
    if args.baseline == "merge-base":
        baseline = bench_lib.default_baseline()
    elif args.baseline != "none":
        baseline = bench_lib.resolve_revision(args.baseline)

    logging.getLogger("werkzeug").disabled = True  # moto's access log
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    kept: dict[str, Any] = json.loads(RESULTS.read_text()) if args.only and RESULTS.exists() else {}
    results: dict[str, Any] = {key: kept[key] for key in SECTIONS if key in kept and key not in sections}
    if "export" not in sections and "export_cpu" in kept:  # the export section's second half
        results["export_cpu"] = kept["export_cpu"]
    results |= {"machine": machine(), "quick": args.quick}
    # First, while this process is small: a child's max RSS on Linux includes its parent's at fork.
    if "export" in sections:
        results["export"] = exports(sizes)
        results["export_cpu"] = export_cpu(sizes, baseline)
    if "memory" in sections:
        results["memory"] = export_memory(profile)
    RESULTS.write_text(json.dumps(results, indent=1))  # kept if a later part fails
    if sections & {"cold", "list", "requests"}:
        with (
            bench_lib.embedded_stack() as stack,
            open(os.devnull, "w") as devnull,
            contextlib.redirect_stdout(devnull),  # the handlers print their metrics (EMF) to stdout
        ):
            small, large = f"bench-{uuid.uuid4().hex[:8]}", f"bench-{uuid.uuid4().hex[:8]}"
            bench_lib.seed_payments(small, 300)
            if "cold" in sections:
                log("cold starts" + (f" beside {baseline[:10]} ({label})" if baseline else ""))
                results["cold"] = cold_starts(stack["endpoint"], small, runs, baseline, args.functions)
                if baseline:
                    results["cold"]["baseline"]["label"] = label
            if "list" in sections:
                log("GET /payments on 300 items")
                results["list"] = {"small": list_latency(small, requests)}
                log("seeding 10k payments")
                bench_lib.seed_payments(large, 10_000)
                log("GET /payments on 10k items")
                results["list"]["large"] = list_latency(large, max(20, requests // 2))
            if "requests" in sections:
                log("request counts")
                results["requests"] = request_counts()
    if "costs" in sections:
        log("costs per operation")
        results["costs"] = bench_costs.run()
    if "load" in sections:  # its own private local stack (make dev's), after the embedded AWS above has stopped
        clients, seconds = (50, 20) if args.quick else (args.load_clients, args.load_seconds)
        log(f"load: {clients} clients for {seconds} s through the local stack")
        results["load"] = bench_load.run(clients, seconds)
    if "suite" in sections:
        log("make test's checks; its last full pytest run")
        results["suite"] = suite()
    RESULTS.write_text(json.dumps(results, indent=1))
    results.setdefault("export", [])  # the report's export rows read it
    plots = plot(results, args.doc.parent / "bench")
    args.doc.write_text(render(results, args.quick))
    log(f"wrote {args.doc} and {', '.join(plots)}")


if __name__ == "__main__":
    main()
