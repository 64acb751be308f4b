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
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect, sync_playwright

from scripts.private_stack import private_stack

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SHOTS = {"screenshot.png": (1366, 900), "screenshot-phone.png": (390, 844)}


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
            private = stack.enter_context(private_stack(seed_demo=True))
            api_url, sim_url = private.api_url, private.sim_url
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
