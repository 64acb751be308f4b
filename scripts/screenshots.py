"""The README's screenshots of the Payments page: docs/screenshot.png (1366 px), docs/screenshot-phone.png (390 px).

    python -m scripts.screenshots                              # a private stack with the demo data, then stopped
    python -m scripts.screenshots --url http://127.0.0.1:3000  # a running `make dev` (signs in as demo, finance)

Headless Debian chromium through Playwright (no browser download), en-GB in UTC so every run looks alike.
The demo customer's payments (local/seed.py) plus a refund show every status, the balance and the totals.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect, sync_playwright

from local.ports import free_ports

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SHOTS = {"screenshot.png": (1366, 900), "screenshot-phone.png": (390, 844)}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/web/config.json", timeout=2) as answer:  # noqa: S310 - 127.0.0.1
            return bool(answer.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def private_stack(startup_seconds: float = 60) -> Iterator[tuple[str, str]]:
    """`python -m local.dev` with the demo data on free ports, keeping nothing; yields (api url, simulator url)."""
    aws_port, sim_port, api_port = free_ports(3)
    env = {
        **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")},
        "PYTHONUNBUFFERED": "1",
        "SEED_DEMO": "1",
        "LOCAL_STATE": "off",
        "GATEWAY_SIM": "on",
        "LOCAL_JWT_SECRET": secrets.token_hex(24),
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
            yield url, f"http://127.0.0.1:{sim_port}"
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def _post(url: str, body: object, token: str | None = None) -> dict[str, Any]:
    headers = {"content-type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)  # noqa: S310 - 127.0.0.1
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        return dict(json.loads(answer.read()))


def add_a_refund(api_url: str, sim_url: str) -> None:
    """A card payment of the demo customer's, partly refunded through the simulator, so refunds show too."""
    token = str(_post(f"{api_url}/web/token", {"customer": "demo", "groups": ["finance"]})["token"])
    body = {"method": "credit_card", "amount": "15.00", "currency": "USD", "payment_method": "pm_card_visa"}
    payment = _post(f"{api_url}/payments", body, token)["payment"]
    refund = {"provider": "stripe", "ref": payment["gateway_reference"], "outcome": "refund", "amount": "5.00"}
    _post(f"{sim_url}/_sim/settle", refund)


def take(page: Page, api_url: str, target: Path) -> None:
    page.goto(api_url + "/")
    page.get_by_label("Customer").fill("demo")
    page.get_by_label("Group").select_option("finance")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#summary")).to_be_visible()
    expect(page.locator("#balances li").first).to_be_visible()
    page.mouse.move(0, 0)  # no row lit up by the pointer left where "Sign in" was
    page.screenshot(path=str(target), full_page=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.screenshots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running stack (make dev); default: start a private one with demo data")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="folder for the PNG files (default: docs/)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    with contextlib.ExitStack() as stack:
        if args.url:
            api_url = args.url.rstrip("/")
        else:
            api_url, sim_url = stack.enter_context(private_stack())
            add_a_refund(api_url, sim_url)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--lang=en-GB"]
            )
            for name, (width, height) in SHOTS.items():
                context = browser.new_context(
                    viewport={"width": width, "height": height},
                    locale="en-GB",
                    timezone_id="UTC",
                    device_scale_factor=1,
                )
                take(context.new_page(), api_url, out / name)
                context.close()
                print(f"wrote {out / name}")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
