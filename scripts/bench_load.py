"""A bounded load run against the local stack (`make dev` on free ports, scripts/private_stack.py): `--clients`
concurrent clients for `--seconds`, each its own customer, mixing GET /payments, GET /balance, card payments that
complete at once (the simulator's pm_card_visa) and card payments that need 3-D Secure, settled at the simulator,
whose signed webhook then completes them through POST /webhooks/stripe. It counts every answer that is not the
expected one as an error and every connection reset, takes throughput and latency percentiles, then checks each
customer's balance against the sum of the payments its client saw complete (its own bookkeeping, in minor units).

This measures our code and the local stack (moto, the local API server, the gateway simulator and this load
generator sharing one machine), not AWS.

    .venv/bin/python -m scripts.bench_load --clients 20 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "shared"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from scripts.bench_lib import percentile  # noqa: E402

# The mix: what share of a client's requests each kind is.
MIX = {"list": 35, "balance": 35, "pay": 15, "pay_and_settle": 15}
CURRENCY = "USD"
TIMEOUT = 60  # seconds a request may take before it counts as an error
SETTLE_WAIT = 60  # seconds the settled payments may take to complete once the load stops


@dataclass
class Client:
    """One client's customer, what it did and saw."""

    customer: str
    token: str
    rng: random.Random
    completed_minor: int = 0  # the sum of the payments this client saw complete
    awaiting: list[tuple[str, int]] = field(default_factory=list)  # settled payments, (id, minor), to complete
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    resets: int = 0
    error_samples: list[str] = field(default_factory=list)


def _minor(amount: str) -> int:
    return int(Decimal(amount) * 100)


class Load:
    def __init__(self, api_url: str, sim_url: str, secret: str) -> None:
        self.api_url, self.sim_url, self.secret = api_url, sim_url, secret

    def token(self, customer: str) -> str:
        from local.token import make_token

        return make_token(customer, ["finance"], secret=self.secret, ttl=3600)

    def _call(self, client: Client, session: Any, kind: str, method: str, url: str, **kw: Any) -> Any:
        """One request, timed under `kind`; None if it failed (counted)."""
        import requests

        began = time.perf_counter()
        try:
            answer = session.request(method, url, timeout=TIMEOUT, **kw)
        except requests.exceptions.ConnectionError as exc:
            if "reset" in repr(exc).lower() or isinstance(exc.__context__, ConnectionResetError):
                client.resets += 1
            else:
                client.errors[kind] += 1
            client.error_samples.append(f"{kind}: {exc!r}"[:300])
            return None
        except requests.exceptions.RequestException as exc:
            client.errors[kind] += 1
            client.error_samples.append(f"{kind}: {exc!r}"[:300])
            return None
        client.latencies.setdefault(kind, []).append((time.perf_counter() - began) * 1000)
        return answer

    def _expect(self, client: Client, kind: str, answer: Any, status: int) -> dict[str, Any] | None:
        if answer is None:
            return None
        if answer.status_code != status:
            client.errors[kind] += 1
            client.error_samples.append(f"{kind}: {answer.status_code} {answer.text[:200]}")
            return None
        return answer.json() if answer.content else {}

    def step(self, client: Client, session: Any) -> None:
        kind = client.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        auth = {"Authorization": f"Bearer {client.token}"}
        if kind == "list":
            answer = self._call(client, session, kind, "GET", f"{self.api_url}/payments?limit=20", headers=auth)
            self._expect(client, kind, answer, 200)
        elif kind == "balance":
            answer = self._call(client, session, kind, "GET", f"{self.api_url}/balance", headers=auth)
            self._expect(client, kind, answer, 200)
        else:
            amount = f"{client.rng.randint(100, 999) / 100:.2f}"
            card = "pm_card_visa" if kind == "pay" else "pm_card_threeDSecure2Required"
            body = {"method": "credit_card", "amount": amount, "currency": CURRENCY, "payment_method": card}
            headers = {**auth, "Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
            answer = self._call(
                client, session, "pay", "POST", f"{self.api_url}/payments", headers=headers, data=json.dumps(body)
            )
            made = self._expect(client, "pay", answer, 201)
            if made is None:
                return
            payment = made["payment"]
            if kind == "pay":
                if payment["status"] != "completed":
                    client.errors["pay"] += 1
                    client.error_samples.append(f"pay: {payment['status']} (pm_card_visa completes at once)")
                    return
                client.completed_minor += _minor(payment["amount"])
                return
            if payment["status"] != "pending" or not payment.get("gateway_reference"):
                client.errors["pay"] += 1
                client.error_samples.append(f"pay: {payment['status']} (3-D Secure leaves it pending)")
                return
            settle = {"provider": "stripe", "ref": payment["gateway_reference"], "outcome": "success"}
            answer = self._call(client, session, "settle+webhook", "POST", f"{self.sim_url}/_sim/settle", json=settle)
            settled = self._expect(client, "settle+webhook", answer, 200)
            if settled is None:
                return
            if not settled.get("delivered") or settled.get("status") != 200:  # the webhook's answer from our API
                client.errors["settle+webhook"] += 1
                client.error_samples.append(f"settle+webhook: {json.dumps(settled)[:200]}")
            client.awaiting.append((payment["id"], _minor(payment["amount"])))

    def settle_up(self, client: Client, session: Any) -> int:
        """Wait for the client's settled payments to complete (their webhooks); how many never did."""
        auth = {"Authorization": f"Bearer {client.token}"}
        deadline = time.monotonic() + SETTLE_WAIT
        left = list(client.awaiting)
        while left and time.monotonic() < deadline:
            still = []
            for payment_id, minor in left:
                answer = session.get(f"{self.api_url}/payments/{payment_id}", headers=auth, timeout=TIMEOUT)
                status = answer.json().get("status") if answer.status_code == 200 else None
                if status == "completed":
                    client.completed_minor += minor
                elif status == "pending":
                    still.append((payment_id, minor))
                else:
                    client.errors["settled payment"] += 1
                    client.error_samples.append(f"settled payment {payment_id}: {answer.status_code} {status}")
            left = still
            if left:
                time.sleep(0.5)
        return len(left)

    def balance_minor(self, client: Client, session: Any) -> int:
        auth = {"Authorization": f"Bearer {client.token}"}
        answer = session.get(f"{self.api_url}/balance", headers=auth, timeout=TIMEOUT)
        answer.raise_for_status()
        found = [b["amount"] for b in answer.json()["balances"] if b["currency"] == CURRENCY]
        return _minor(found[0]) if found else 0


def run(clients: int = 200, seconds: float = 60, seed: int = 17) -> dict[str, Any]:
    """Start a private local stack, load it, check the balances; the figures."""
    import requests
    from requests.adapters import HTTPAdapter

    from scripts.private_stack import private_stack

    load_before = os.getloadavg()
    with private_stack(seed_demo=False, startup_seconds=120) as stack:
        load = Load(stack.api_url, stack.sim_url, stack.jwt_secret)
        tag = uuid.uuid4().hex[:6]
        people = [
            Client(f"load-{tag}-{i}", load.token(f"load-{tag}-{i}"), random.Random(seed * 1000 + i))  # noqa: S311 - a reproducible mix, not a secret
            for i in range(clients)
        ]
        start = threading.Barrier(clients + 1)
        stop_at: list[float] = []
        unsettled: list[int] = [0] * clients

        def work(index: int) -> None:
            client = people[index]
            with requests.Session() as session:
                session.mount("http://", HTTPAdapter(pool_connections=2, pool_maxsize=2))
                start.wait()
                while time.monotonic() < stop_at[0]:
                    load.step(client, session)

        threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(clients)]
        for thread in threads:
            thread.start()
        stop_at.append(time.monotonic() + seconds)
        began = time.perf_counter()
        start.wait()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began

        def check(index: int) -> None:
            with requests.Session() as session:
                unsettled[index] = load.settle_up(people[index], session)

        checkers = [threading.Thread(target=check, args=(i,), daemon=True) for i in range(clients)]
        for thread in checkers:
            thread.start()
        for thread in checkers:
            thread.join()
        wrong = []
        with requests.Session() as session:
            for client in people:
                shown = load.balance_minor(client, session)
                if shown != client.completed_minor:
                    wrong.append({"customer": client.customer, "shown": shown, "expected": client.completed_minor})
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in sorted({k for c in people for k in c.latencies} | {k for c in people for k in c.errors}):
        values = [v for c in people for v in c.latencies.get(kind, [])]
        by_kind[kind] = {
            "count": len(values),
            "errors": sum(c.errors[kind] for c in people),
            "p50_ms": percentile(values, 50) if values else None,
            "p99_ms": percentile(values, 99) if values else None,
        }
    every = [v for c in people for values in c.latencies.values() for v in values]
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(every),
        "throughput": len(every) / elapsed,
        "p50_ms": percentile(every, 50) if every else None,
        "p99_ms": percentile(every, 99) if every else None,
        "by_kind": by_kind,
        "errors": sum(sum(c.errors.values()) for c in people),
        "resets": sum(c.resets for c in people),
        "error_samples": [s for c in people for s in c.error_samples][:10],
        "balances_checked": clients,
        "balances_wrong": wrong,
        "settled_never_completed": sum(unsettled),
        "completed_minor_total": sum(c.completed_minor for c in people),
        "load_average_before": [round(x, 2) for x in load_before],
        "cpus": os.cpu_count(),
    }


def render(results: dict[str, Any]) -> list[str]:
    """docs/benchmarks.md's section: markdown lines."""
    r = results
    exact = r["balances_checked"] - len(r["balances_wrong"])
    ok = not r["errors"] and not r["resets"] and not r["balances_wrong"] and not r["settled_never_completed"]
    lines = [
        "## Load through the local stack",
        "",
        "**This measures our code and the local stack on one machine, not AWS**: moto, the local API server, the "
        "gateway simulator and the load generator (scripts/bench_load.py) share "
        f"{r['cpus']} cores (load average {' '.join(str(x) for x in r['load_average_before'])} before the run). In "
        "AWS each request would have a Lambda instance of its own and DynamoDB would answer in milliseconds; here "
        "every request waits for the same few cores.",
        "",
        f"{r['clients']} concurrent clients for {r['seconds']:g} s, each its own customer, mixing GET /payments "
        f"({MIX['list']}%), GET /balance ({MIX['balance']}%), card payments completed at once ({MIX['pay']}%) and "
        f"3-D Secure card payments settled at the simulator ({MIX['pay_and_settle']}%), whose signed webhook "
        "completes them through POST /webhooks/stripe. Afterwards every customer's balance is compared with the sum "
        "of the payments its client saw complete.",
        "",
        "| | |",
        "|---|---|",
        f"| requests | {r['requests']:,} |",
        f"| throughput | {r['throughput']:.1f} requests/s |",
        f"| latency p50 / p99 | {r['p50_ms']:.0f} ms / {r['p99_ms']:.0f} ms |",
        f"| errors (an answer other than the expected one, a timeout) | {r['errors']} |",
        f"| connection resets | {r['resets']} |",
        f"| balances exact afterwards | {exact} of {r['balances_checked']} |",
        f"| settled payments never completed | {r['settled_never_completed']} |",
        f"| outcome | {'**met**: 0 errors, 0 resets, balances exact' if ok else '**missed**'} |",
        "",
        "| request | count | errors | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, values in r["by_kind"].items():
        p50 = f"{values['p50_ms']:.0f}" if values["p50_ms"] is not None else "-"
        p99 = f"{values['p99_ms']:.0f}" if values["p99_ms"] is not None else "-"
        lines.append(f"| {kind} | {values['count']:,} | {values['errors']} | {p50} | {p99} |")
    lines += [
        "",
        "`settle+webhook` is the simulator's settle call, which answers once its signed webhook was delivered to the "
        "local API (so it includes POST /webhooks/stripe).",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = run(args.clients, args.seconds)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print("\n".join(render(results)))
    failed = results["errors"] or results["resets"] or results["balances_wrong"] or results["settled_never_completed"]
    if failed:
        print(json.dumps({k: results[k] for k in ("error_samples", "balances_wrong")}, indent=2), file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
