"""A private `make dev` for the scripts that need a stack of their own (scripts/fuzz.py, scripts/screenshots.py):
`python -m local.dev` on free ports, keeping no state, stopped when done."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from local.ports import free_ports

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Stack:
    api_url: str
    sim_url: str
    jwt_secret: str  # what `make token` would sign with


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/web/config.json", timeout=2) as answer:  # noqa: S310 - 127.0.0.1
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@contextlib.contextmanager
def private_stack(*, seed_demo: bool, startup_seconds: float = 60) -> Iterator[Stack]:
    """The local stack with a random JWT secret (and the demo data if `seed_demo`), until the block ends."""
    aws_port, sim_port, api_port = free_ports(3)
    secret = secrets.token_hex(24)
    env = {
        **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")},
        "PYTHONUNBUFFERED": "1",
        "SEED_DEMO": "1" if seed_demo else "0",
        "LOCAL_STATE": "off",
        "GATEWAY_SIM": "on",
        "LOCAL_JWT_SECRET": secret,
        "AWS_PORT": str(aws_port),
        "GATEWAY_SIM_PORT": str(sim_port),
        "API_PORT": str(api_port),
    }
    url = f"http://127.0.0.1:{api_port}"
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen([sys.executable, "-m", "local.dev"], cwd=ROOT, env=env, stdout=output, stderr=output)
        try:
            deadline = time.monotonic() + startup_seconds
            while not _answers(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    output.seek(0)
                    raise RuntimeError(f"the local stack did not start:\n{output.read().decode(errors='replace')}")
                time.sleep(0.3)
            yield Stack(url, f"http://127.0.0.1:{sim_port}", secret)
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
