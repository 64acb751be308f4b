"""Benchmark the CSV export (docs/exports.md): time, rows/s and peak memory at 10k and 100k payments.

    .venv/bin/python scripts/bench_export.py --rows 10000 100000 --profile-rows 10000 100000 1000000

Starts its own moto server in a child process (so moto's memory is not counted), creates the payments
table from template.yaml and a bucket, writes N payments per size with BatchWriteItem, then measures
each size in a fresh process:
- the export (`payments.exports.stream_export`: Query pages -> CSV rows -> S3 parts), untraced, for time;
- the same export under tracemalloc, for the peak of Python allocations during the call;
- the raw floor: a paginated boto3 Query of the same items plus one PutObject of a file of the same size;
- ru_maxrss of that process, and the DynamoDB/S3 requests the export made.
Wall time is mostly moto's (its Query re-sorts and re-walks the partition on every page, so 100k rows
take tens of minutes); the CPU time of the exporting process is this code's own cost. Compare ratios
and memory, not absolute times (docs/benchmarks.md).
`--profile-rows` measures peak memory and CPU with SyntheticPages standing in for DynamoDB (pages made on
demand; S3 still through moto), at sizes moto could not page through in reasonable time: where the peak
levels off. scripts/bench.py calls `run` and `memory_profile`. Not a test: never run from pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PAGE_SIZE = 500


def _importable(tree: Path = ROOT) -> None:
    """`payments` from `tree` (another commit's `shared/`, for a baseline), the rest from this checkout."""
    for path in (ROOT, tree / "shared"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def _start_moto(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit(f"moto did not start on port {port}")


def _create_resources(table: str, bucket: str) -> None:
    import boto3

    from local.template import load_template

    props = load_template()["Resources"]["PaymentsTable"]["Properties"]
    boto3.client("dynamodb").create_table(
        TableName=table,
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"],
        BillingMode="PAY_PER_REQUEST",
    )
    boto3.client("s3").create_bucket(Bucket=bucket)


START = datetime(2025, 1, 1, tzinfo=UTC)


def payment_number(customer: str, i: int) -> Any:
    """The i-th of a customer's bench payments: completed, one a minute from START, a purchase in seven."""
    from payments.ids import new_payment_id
    from payments.models import HistoryEntry, Payment, PaymentMethod, PaymentStatus

    at = START + timedelta(minutes=i)
    return Payment(
        id=new_payment_id(at),
        customer_id=customer,
        created_at=at,
        completed_at=at + timedelta(seconds=30),
        amount_minor=-(100 + i % 5000) if i % 7 == 0 else 1000 + i % 90000,
        currency="USD",
        status=PaymentStatus.COMPLETED,
        method=PaymentMethod.PURCHASE if i % 7 == 0 else PaymentMethod.CREDIT_CARD,
        description=f"Mobile plan top-up, line {i % 40}",
        reference=f"INV-{i:08d}",
        history=(HistoryEntry(at=at, status=PaymentStatus.COMPLETED, by="bench"),),
    )


def _seed(customer: str, rows: int, table: str) -> None:
    """`rows` completed payments, one a minute, written 25 at a time."""
    import boto3

    from payments.store import to_item

    client = boto3.client("dynamodb")
    batch: list[dict[str, Any]] = []
    for i in range(rows):
        batch.append({"PutRequest": {"Item": to_item(payment_number(customer, i))}})
        if len(batch) == 25 or i == rows - 1:
            pending: dict[str, Any] = {table: batch}
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            batch = []


def floor_query(table: str, customer: str, limit: int) -> dict[str, Any]:
    """The floor's Query: the customer's payments, newest first, as a plain boto3 client asks for them."""
    return {
        "TableName": table,
        "KeyConditionExpression": "PK = :pk AND SK BETWEEN :lower AND :upper",
        "ExpressionAttributeValues": {
            ":pk": {"S": f"CUST#{customer}"},
            ":lower": {"S": "PAY#"},
            ":upper": {"S": "PAY$"},
        },
        "ScanIndexForward": False,
        "Limit": limit,
    }


class SyntheticPages:
    """Stands in for the DynamoDB client in the memory profile: answers the export's Query (unfiltered,
    newest first) with pages of `rows` generated payments, honouring Limit and ExclusiveStartKey, so only
    the export's own memory (and S3's, through moto in another process) is on the books."""

    def __init__(self, customer: str, rows: int) -> None:
        self.customer, self.rows = customer, rows

    def query(self, **request: Any) -> dict[str, Any]:
        from payments.ids import created_at_of
        from payments.store import to_item

        # Only the unfiltered, newest-first listing an export of everything sends: no index, no time bounds.
        bounds = request["ExpressionAttributeValues"]
        assert "IndexName" not in request, request
        assert request["ScanIndexForward"] is False, request
        assert (bounds[":lower"]["S"], bounds[":upper"]["S"]) == ("PAY#", "PAY$"), request
        after = request.get("ExclusiveStartKey")
        if after is None:
            first = self.rows - 1
        else:
            moment = created_at_of(after["SK"]["S"].split("#", 1)[1])
            first = int((moment - START).total_seconds() // 60) - 1
        last = max(first - request["Limit"], -1)
        items = [to_item(payment_number(self.customer, i)) for i in range(first, last, -1)]
        answer: dict[str, Any] = {"Items": items, "Count": len(items)}
        if last >= 0:
            answer["LastEvaluatedKey"] = {k: items[-1][k] for k in ("PK", "SK")}
        return answer


def serve_pages(customer: str, rows: int, port: int) -> None:
    """A child process: DynamoDB's Query of the bench payments over HTTP, answered from JSON serialised once, so
    that its own CPU stays off both sides' books and the exporting process parses the same bytes DynamoDB sends."""
    import http.server

    from payments.ids import created_at_of
    from payments.store import to_item

    texts = [json.dumps(to_item(payment_number(customer, i)), separators=(",", ":")) for i in range(rows)]
    keys = [json.dumps({k: json.loads(t)[k] for k in ("PK", "SK")}) for t in texts]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            after = request.get("ExclusiveStartKey")
            first = rows - 1
            if after is not None:
                moment = created_at_of(after["SK"]["S"].split("#", 1)[1])
                first = int((moment - START).total_seconds() // 60) - 1
            last = max(first - request["Limit"], -1)
            chosen = range(first, last, -1)
            body = '{"Items":[' + ",".join(texts[i] for i in chosen) + f'],"Count":{len(chosen)}'
            body += f',"ScannedCount":{len(chosen)}'
            body += f',"LastEvaluatedKey":{keys[last + 1]}}}' if last >= 0 else "}"
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: Any) -> None:
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def cpu_rounds(customer: str, rows: int, bucket: str, rounds: int) -> dict[str, Any]:
    """A child process (of the tree on its sys.path): the export and the floor, `rounds` times each, interleaved,
    against the replayed pages (`serve_pages`, DynamoDB) and moto (S3). CPU seconds of each round."""
    import boto3

    from payments.exports import ExportFilters, s3_client, stream_export
    from payments.store import PaymentStore

    store, s3 = PaymentStore("replayed"), s3_client()
    raw, raw_s3 = boto3.client("dynamodb"), boto3.client("s3")
    request = floor_query("replayed", customer, PAGE_SIZE)

    def export() -> int:
        written = stream_export(
            store, s3, bucket, f"exports/{customer}/cpu.csv", customer, ExportFilters(), filename="payments-bench.csv"
        )
        return int(written.size)

    def floor(size: int) -> None:
        page: dict[str, Any] = {"LastEvaluatedKey": None}
        asked = dict(request)
        while "LastEvaluatedKey" in page:
            if page["LastEvaluatedKey"] is not None:
                asked["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            page = raw.query(**asked)
        raw_s3.put_object(Bucket=bucket, Key=f"exports/{customer}/cpu-floor.csv", Body=b"x" * size)

    size = export()  # the first round of each side loads its clients' service models: not counted
    floor(size)
    samples: dict[str, list[float]] = {"export": [], "floor": []}
    for _ in range(rounds):
        began = time.process_time()
        export()
        samples["export"].append(time.process_time() - began)
        began = time.process_time()
        floor(size)
        samples["floor"].append(time.process_time() - began)
    return samples


def _count_requests(client: Any, counter: Counter[str]) -> None:
    def count(model: Any, **_: Any) -> None:
        counter[f"{client.meta.service_model.service_name}:{model.name}"] += 1

    client.meta.events.register("before-call.*.*", count)


def measure(customer: str, table: str, bucket: str, *, page_size: int = PAGE_SIZE) -> dict[str, Any]:
    """One size, in this (fresh) process: timed export, traced export, raw floor."""
    import boto3

    from payments.exports import ExportFilters, s3_client, stream_export
    from payments.store import PaymentStore

    store = PaymentStore(table)
    s3 = s3_client()
    raw, raw_s3 = boto3.client("dynamodb"), boto3.client("s3")
    request = floor_query(table, customer, 1)
    # Each client's first call loads its service model and builds its parsers (tens of ms, once per container):
    # paid here by both sides, so the ratios compare the work per row, not which side went first.
    for dynamodb, s3_side in ((store.client, s3), (raw, raw_s3)):
        dynamodb.query(**request)
        s3_side.put_object(Bucket=bucket, Key=f"exports/{customer}/warm.csv", Body=b"warm")
    requests: Counter[str] = Counter()
    _count_requests(store.client, requests)
    _count_requests(s3, requests)

    def export(key: str) -> Any:
        return stream_export(
            store, s3, bucket, key, customer, ExportFilters(), filename="payments-bench.csv", page_size=page_size
        )

    began, began_cpu = time.perf_counter(), time.process_time()
    written = export(f"exports/{customer}/timed.csv")
    export_seconds, export_cpu = time.perf_counter() - began, time.process_time() - began_cpu
    calls = dict(requests)

    tracemalloc.start()
    export(f"exports/{customer}/traced.csv")
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # before the floor allocates a whole file

    began, began_cpu = time.perf_counter(), time.process_time()
    request["Limit"] = page_size
    items = 0
    while True:
        page = raw.query(**request)
        items += page["Count"]
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    raw_s3.put_object(Bucket=bucket, Key=f"exports/{customer}/floor.csv", Body=b"x" * written.size)
    floor_seconds, floor_cpu = time.perf_counter() - began, time.process_time() - began_cpu
    assert items == written.rows, (items, written.rows)

    return {
        "rows": written.rows,
        "bytes": written.size,
        "parts": written.parts,
        "export_s": export_seconds,
        "export_cpu": export_cpu,
        "floor_s": floor_seconds,
        "floor_cpu": floor_cpu,
        "traced_peak": traced_peak,
        "maxrss_kb": maxrss_kb,
        "requests": calls,
    }


def profile(customer: str, rows: int, bucket: str) -> dict[str, Any]:
    """One size of the memory profile, in this (fresh) process: the export of `rows` synthetic payments
    (SyntheticPages for DynamoDB, S3 through moto) timed, then again under tracemalloc for the peak."""
    from payments.exports import ExportFilters, s3_client, stream_export
    from payments.store import PaymentStore

    s3 = s3_client()

    def export(key: str) -> Any:
        pages = SyntheticPages(customer, rows)
        store = PaymentStore("synthetic", client=pages)  # type: ignore[arg-type]
        return stream_export(store, s3, bucket, key, customer, ExportFilters(), filename="payments-bench.csv")

    began_cpu = time.process_time()
    written = export(f"exports/{customer}/timed.csv")
    cpu = time.process_time() - began_cpu
    s3.delete_object(Bucket=bucket, Key=f"exports/{customer}/timed.csv")  # moto keeps objects in memory
    tracemalloc.start()
    export(f"exports/{customer}/traced.csv")
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    s3.delete_object(Bucket=bucket, Key=f"exports/{customer}/traced.csv")
    assert written.rows == rows, (written.rows, rows)
    return {"rows": rows, "bytes": written.size, "parts": written.parts, "cpu_s": cpu, "traced_peak": traced_peak}


@contextmanager
def moto_server() -> Iterator[None]:
    """moto in a child process (its memory is not ours) with this process's AWS pointed at it."""
    from local.ports import free_ports

    saved = dict(os.environ)
    (port,) = free_ports(1)
    server = None
    try:
        os.environ.update(
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - moto's fake credentials
            AWS_DEFAULT_REGION="us-east-1",
        )
        os.environ.pop("AWS_PROFILE", None)
        server = _start_moto(port)
        yield
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        os.environ.clear()
        os.environ.update(saved)


def _child(*args: str, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    env = {**os.environ, **(extra_env or {})}
    child = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if child.returncode:
        raise SystemExit(f"{Path(__file__).name} {' '.join(args)} failed:\n{child.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def run(sizes: list[int], *, page_size: int = PAGE_SIZE, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Each size seeded into its own table of a fresh moto, then measured in a fresh process."""
    _importable()
    results: list[dict[str, Any]] = []
    if not sizes:
        return results
    with moto_server():
        for rows in sizes:
            # One table per size: moto's Query walks every item of the table, not just the partition.
            table, bucket, customer = f"bench-payments-{rows}", f"bench-exports-{rows}", f"bench-{rows}"
            _create_resources(table, bucket)
            log(f"export: seeding {rows} payments")
            began = time.perf_counter()
            _seed(customer, rows, table)
            log(f"export: seeded in {time.perf_counter() - began:.0f} s; measuring {rows} rows")
            results.append(_child("--page-size", str(page_size), "--measure", customer, table, bucket))
    return results


def memory_profile(sizes: list[int], *, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Peak memory and CPU of the export at each size with synthetic Query pages: sizes moto cannot page
    through in reasonable time, to show where the peak levels off."""
    _importable()
    results: list[dict[str, Any]] = []
    if not sizes:
        return results
    with moto_server():
        import boto3

        for rows in sizes:
            bucket = f"bench-profile-{rows}"
            boto3.client("s3").create_bucket(Bucket=bucket)
            log(f"export memory profile: {rows} synthetic rows")
            results.append(_child("--profile", f"profile-{rows}", str(rows), bucket))
    return results


CPU_TARGET = 1.15  # the export's CPU against the raw paged Query + upload (issue #17's target)


def cpu_profile(
    sizes: list[int], *, rounds: int = 5, baseline: Path | None = None, log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """The export's CPU against the floor's, per size, for this tree and (`baseline`) another commit's `shared/`:
    each in a fresh process, `rounds` interleaved rounds against pages replayed by a child process (`serve_pages`)."""
    from local.ports import free_ports

    _importable()
    results: list[dict[str, Any]] = []
    if not sizes:
        return results
    trees = [("ours", ROOT)] + ([("baseline", baseline)] if baseline else [])
    with moto_server():
        import boto3

        for rows in sizes:
            customer, bucket = f"cpu-{rows}", f"bench-cpu-{rows}"
            boto3.client("s3").create_bucket(Bucket=bucket)
            (port,) = free_ports(1)
            server = subprocess.Popen(
                [sys.executable, __file__, "--serve", customer, str(rows), str(port)], stdout=subprocess.DEVNULL
            )
            try:
                _wait_for(port)
                for side, tree in trees:
                    log(f"export CPU: {rows} rows, {rounds} rounds ({side})")
                    env = {"AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{port}"}
                    samples = _child(
                        "--tree", str(tree), "--cpu", customer, str(rows), bucket, str(rounds), extra_env=env
                    )
                    results.append({"rows": rows, "side": side, **samples})
            finally:
                server.terminate()
                server.wait(timeout=30)
    return results


def cpu_ratio(result: dict[str, Any]) -> float:
    """The median round's export CPU over the median round's floor CPU."""
    import statistics

    return float(statistics.median(result["export"]) / statistics.median(result["floor"]))


def _wait_for(port: int) -> None:
    for _ in range(1200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing answered on port {port}")


def _report(r: dict[str, Any]) -> None:
    layout = f"{r['parts']} parts" if r["parts"] else "one PutObject"
    calls = ", ".join(f"{name} {count}" for name, count in sorted(r["requests"].items()))
    print(f"{r['rows']} rows, {r['bytes'] / 1e6:.1f} MB, {layout}; requests: {calls}")
    print(
        f"  export  {r['export_s']:8.2f} s wall ({r['rows'] / r['export_s']:.0f} rows/s), "
        f"{r['export_cpu']:6.2f} s CPU in the exporting process ({r['rows'] / r['export_cpu']:.0f} rows/CPU-s)"
    )
    print(
        f"  floor   {r['floor_s']:8.2f} s wall, {r['floor_cpu']:6.2f} s CPU  ->  export/floor "
        f"{r['export_s'] / r['floor_s']:.2f} wall, {r['export_cpu'] / r['floor_cpu']:.2f} CPU"
    )
    print(f"  memory  tracemalloc peak {r['traced_peak'] / 2**20:.2f} MiB, ru_maxrss {r['maxrss_kb'] / 1024:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[10_000, 100_000], help="sizes against moto")
    parser.add_argument("--profile-rows", type=int, nargs="*", default=[], help="sizes with synthetic pages")
    parser.add_argument("--page-size", type=int, default=PAGE_SIZE, help="payments per Query (default: as deployed)")
    parser.add_argument("--measure", nargs=3, metavar=("CUSTOMER", "TABLE", "BUCKET"), help=argparse.SUPPRESS)
    parser.add_argument("--profile", nargs=3, metavar=("CUSTOMER", "ROWS", "BUCKET"), help=argparse.SUPPRESS)
    parser.add_argument("--cpu-rows", type=int, nargs="*", default=[], help="sizes of the CPU rounds (replayed pages)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the CPU measurement")
    parser.add_argument("--baseline-tree", type=Path, help="another commit's tree (with shared/) for the CPU rounds")
    parser.add_argument("--tree", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--serve", nargs=3, metavar=("CUSTOMER", "ROWS", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--cpu", nargs=4, metavar=("CUSTOMER", "ROWS", "BUCKET", "ROUNDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    _importable(args.tree)
    if args.serve:
        customer, rows, port = args.serve
        serve_pages(customer, int(rows), int(port))
        return
    if args.cpu:
        customer, rows, bucket, rounds = args.cpu
        print(json.dumps(cpu_rounds(customer, int(rows), bucket, int(rounds))))
        return
    if args.measure:  # a child: print one JSON line
        print(json.dumps(measure(*args.measure, page_size=args.page_size)))
        return
    if args.profile:
        customer, rows, bucket = args.profile
        print(json.dumps(profile(customer, int(rows), bucket)))
        return
    for result in run(args.rows, page_size=args.page_size):
        _report(result)
    for result in cpu_profile(args.cpu_rows, rounds=args.rounds, baseline=args.baseline_tree):
        print(
            f"{result['rows']} rows ({result['side']}): export CPU {min(result['export']):.2f}-"
            f"{max(result['export']):.2f} s, floor {min(result['floor']):.2f}-{max(result['floor']):.2f} s: "
            f"median ratio {cpu_ratio(result):.2f}x (target {CPU_TARGET}x)"
        )
    for result in memory_profile(args.profile_rows):
        print(
            f"{result['rows']} synthetic rows, {result['bytes'] / 1e6:.1f} MB, {result['parts']} parts: "
            f"tracemalloc peak {result['traced_peak'] / 2**20:.2f} MiB, {result['cpu_s']:.1f} s CPU"
        )


if __name__ == "__main__":
    main()
