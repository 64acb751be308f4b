"""The local Payments page (local/web/, docs/web-page.md) driven in headless Chromium against the real local stack.

Debian's chromium through Playwright's Python API (`executable_path`; Playwright downloads no browser). Every
test signs in as a customer of its own, so tests do not see each other's payments on the shared stack.
This file: signing in, Make Payment and its answers, settling, the CSV; test_web_views.py: the detail,
search, totals, roles, signing out and phones. Tests of the page's issue items run at 1366 and 390 px (WIDTHS).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request, expect

# Generous: settling waits for webhooks, and a cold Lambda import is slow on a busy CI machine.
UI_TIMEOUT_MS = 30_000
CARD_OK, CARD_3DS, CARD_DECLINED = "4242424242424242", "4000002500003155", "4000000000000002"
DESKTOP, PHONE = 1366, 390
HEIGHTS = {1366: 900, 390: 844, 360: 780}
WIDTHS = [pytest.param(DESKTOP, id="1366px"), pytest.param(PHONE, id="390px")]


@contextlib.contextmanager
def open_page(browser: Browser, width: int = DESKTOP, timezone_id: str = "UTC") -> Iterator[Page]:
    """A page in a context of its own. A fixed locale and time zone, so dates render the same on every machine."""
    context = browser.new_context(
        locale="en-GB",
        timezone_id=timezone_id,
        accept_downloads=True,
        viewport={"width": width, "height": HEIGHTS[width]},
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with open_page(browser) as opened:
        yield opened


@pytest.fixture
def customer() -> str:
    return f"web-{uuid.uuid4().hex[:12]}"


expect.set_options(timeout=UI_TIMEOUT_MS)


# ---- helpers --------------------------------------------------------------------------------------


def api(stack: Any, method: str, path: str, token: str, body: Any = None, key: str | None = None) -> Any:
    headers = {"content-type": "application/json", **({"Idempotency-Key": key} if key else {})}
    answer = stack.call(method, path, token=token, headers=headers, body=None if body is None else json.dumps(body))
    assert answer.status < 300, (answer.status, answer.body)
    return answer.json()


def charge(stack: Any, customer: str, amount: str, currency: str, description: str) -> dict[str, Any]:
    """A completed purchase, shown as a negative payment (the operator route)."""
    path = f"/admin/customers/{customer}/charges"
    body = {"amount": amount, "currency": currency, "description": description}
    return api(stack, "POST", path, stack.token(None, ["operator"]), body, key=uuid.uuid4().hex)


def issue_voucher(stack: Any, amount: str, currency: str) -> str:
    operator = stack.token(None, ["operator"])
    answer = api(stack, "POST", "/admin/vouchers", operator, {"amount": amount, "currency": currency})
    return str(answer["vouchers"][0]["code"])


def bank_transfer(stack: Any, customer: str, amount: str) -> dict[str, Any]:
    body = {"method": "bank_transfer", "amount": amount, "currency": "USD"}
    return api(stack, "POST", "/payments", stack.token(customer), body, key=uuid.uuid4().hex)["payment"]


def listed(stack: Any, customer: str) -> list[dict[str, Any]]:
    return api(stack, "GET", "/payments?limit=200", stack.token(customer))["items"]


def sign_in_with_token(page: Page, stack: Any, customer: str, groups: tuple[str, ...] = ("finance",)) -> None:
    """The path that needs only the API: paste a token, as from `make token`."""
    page.goto(stack.api_url + "/")
    page.get_by_text("paste a token").click()
    page.get_by_label("Token").fill(stack.token(customer, groups))
    page.get_by_role("button", name="Use this token").click()
    expect(page.locator("#balance-title")).to_be_visible()


def sign_in_with_picker(page: Page, stack: Any, customer: str, group: str = "finance") -> None:
    """The newcomer's path: the demo picker, which asks the local stack's /web/token."""
    page.goto(stack.api_url + "/")
    page.get_by_label("Customer").fill(customer)
    page.get_by_label("Group").select_option(group)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who-text")).to_have_text(f"{customer} · {group}")


def pay(page: Page, method: str, **fields: str) -> None:
    """Choose "Pay via", fill the fields by their labels, press Pay."""
    page.get_by_label("Pay via").select_option(method)
    for label, value in fields.items():
        page.get_by_label(label.replace("_", " ")).fill(value)
    page.get_by_role("button", name="Pay", exact=True).click()


def use_width(page: Page, width: int) -> None:
    page.set_viewport_size({"width": width, "height": HEIGHTS[width]})


def assert_fits(page: Page) -> None:
    """Nothing wider than the window: no horizontal scrolling, on phones least of all."""
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths[0]} px wide in a {widths[1]} px window"


def row_ids(page: Page) -> list[str]:
    return list(page.locator("#payment-rows tr").evaluate_all("rows => rows.map(r => r.dataset.id)"))


def wait_for_rows(page: Page, ids: list[str]) -> None:
    """Until the table holds exactly these payments in this order (filters and search answer asynchronously)."""
    page.wait_for_function(
        "ids => JSON.stringify([...document.querySelectorAll('#payment-rows tr')].map(r => r.dataset.id))"
        " === JSON.stringify(ids)",
        arg=ids,
        timeout=UI_TIMEOUT_MS,
    )


def detail(page: Page) -> Any:
    return page.get_by_role("dialog")


def detail_field(page: Page, field: str) -> Any:
    return detail(page).locator(f"dd[data-field='{field}']")


def row(page: Page, payment_id: str) -> Any:
    return page.locator(f"#payment-rows tr[data-id='{payment_id}']")


def balances(page: Page) -> Any:
    return page.locator("#balances li")


# ---- the issue's scenarios ------------------------------------------------------------------------


def test_a_bank_transfer_shows_its_instructions_and_a_pending_row(page: Page, stack: Any, customer: str) -> None:
    sign_in_with_token(page, stack, customer)
    expect(balances(page)).to_have_text(["No completed payments yet"])

    pay(page, "bank_transfer", Amount="25.00", Currency="USD", Description="Top-up for May")

    result = page.locator("#pay-result")
    expect(result).to_contain_text("Pay by bank transfer")
    [payment] = listed(stack, customer)
    assert (payment["status"], payment["amount"], payment["description"]) == ("pending", "25.00", "Top-up for May")
    expect(result.locator("dd").first).to_have_text(payment["reference"])
    expect(result).to_contain_text("GB33BUKB20201555555555")
    first = page.locator("#payment-rows tr").first
    expect(first).to_have_attribute("data-id", payment["id"])
    expect(first.locator(".badge")).to_have_text("Pending")
    expect(first.locator("td.total")).to_have_text("25.00 USD")
    expect(balances(page)).to_have_text(["No completed payments yet"])  # pending is never counted


def test_redeeming_a_voucher_changes_the_balance(page: Page, stack: Any, customer: str) -> None:
    code = issue_voucher(stack, "15.00", "EUR")
    charge(stack, customer, "4.50", "EUR", "Roaming pack")
    sign_in_with_token(page, stack, customer)
    expect(balances(page)).to_have_text(["-4.50 EUR"])
    expect(balances(page)).to_have_class("negative")

    page.get_by_label("Pay via").select_option("voucher")
    expect(page.get_by_label("Amount", exact=True)).to_be_hidden()  # the voucher's value is used
    pay(page, "voucher", Voucher_number=code, Currency="EUR")

    expect(page.locator("#pay-result")).to_contain_text("Payment completed")
    expect(balances(page)).to_have_text(["10.50 EUR"])
    voucher = next(p for p in listed(stack, customer) if p["method"] == "voucher")
    expect(row(page, voucher["id"]).locator(".badge")).to_have_text("Completed")
    expect(row(page, voucher["id"]).locator("td.total")).to_have_text("15.00 EUR")
    expect(page.get_by_label("Voucher number")).to_have_value("")


def test_a_card_payment_completes_and_its_fields_go_only_to_the_card_route(
    page: Page, stack: Any, customer: str
) -> None:
    sign_in_with_token(page, stack, customer)
    sent_card: list[Request] = []
    page.on("request", lambda request: sent_card.append(request) if CARD_OK in (request.post_data or "") else None)
    year = str(datetime.now(UTC).year + 3)

    pay(page, "credit_card", Card_number=CARD_OK, Expiry_month="12", Expiry_year=year, CVC="123", Amount="12.50")

    expect(page.locator("#pay-result")).to_contain_text("Payment completed")
    [payment] = listed(stack, customer)
    assert (payment["status"], payment["amount"]) == ("completed", "12.50")
    assert payment["card"] == {"brand": "visa", "last4": "4242"}
    expect(row(page, payment["id"]).locator(".badge")).to_have_text("Completed")
    # The API's description names the card; the row does not say "Card" or the last 4 a second time.
    expect(row(page, payment["id"]).locator(".description")).to_have_text("Visa card ending 4242")
    expect(row(page, payment["id"]).locator(".sub")).to_have_text(payment["gateway_reference"])
    expect(balances(page)).to_have_text(["12.50 USD"])
    # Sent once, to the API's card route on the same origin; then cleared and kept nowhere in the browser.
    assert [(r.method, r.url) for r in sent_card] == [("POST", f"{stack.api_url}/payments")]
    assert json.loads(sent_card[0].post_data or "")["card"]["cvc"] == "123"
    for label in ("Card number", "Expiry month", "Expiry year", "CVC"):
        expect(page.get_by_label(label, exact=True)).to_have_value("")
    stored = page.evaluate("() => JSON.stringify([{...localStorage}, {...sessionStorage}, document.cookie])")
    assert CARD_OK not in stored and "4242" not in stored


@pytest.mark.parametrize("width", WIDTHS)
def test_a_declined_card_shows_the_payers_sentence_and_the_code_only_in_the_detail(
    page: Page, stack: Any, customer: str, width: int
) -> None:
    use_width(page, width)
    sign_in_with_token(page, stack, customer)
    year = str(datetime.now(UTC).year + 1)

    pay(page, "credit_card", Card_number=CARD_DECLINED, Expiry_month="06", Expiry_year=year, CVC="999", Amount="3.00")

    result = page.locator("#pay-result")
    expect(result).to_contain_text("Card declined")
    [payment] = listed(stack, customer)
    assert payment["failure_reason"] and payment["failure_message"]
    expect(result).to_contain_text(payment["failure_message"])
    expect(result).not_to_contain_text(payment["failure_reason"])
    expect(result).not_to_contain_text("null")
    declined = row(page, payment["id"])
    expect(declined.locator(".badge")).to_have_text("Cancelled")
    expect(declined.locator(".failure")).to_have_text(payment["failure_message"])
    expect(declined).not_to_contain_text(payment["failure_reason"])
    expect(balances(page)).to_have_text(["No completed payments yet"])
    assert_fits(page)

    result.get_by_role("button", name="Payment details").click()
    expect(detail_field(page, "failure_reason")).to_have_text(payment["failure_reason"])
    expect(detail_field(page, "failure_message")).to_have_text(payment["failure_message"])
    expect(detail_field(page, "card")).to_have_text("Visa •••• 0002")
    assert_fits(page)


def test_download_csv_follows_the_export_link(page: Page, stack: Any, customer: str) -> None:
    charge(stack, customer, "29.99", "USD", "Monthly plan")
    pending = bank_transfer(stack, customer, "40.00")
    sign_in_with_token(page, stack, customer)
    expect(page.locator("#payment-rows tr")).to_have_count(2)

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    download = download_info.value

    assert download.url.startswith(stack.aws_endpoint + "/")  # the presigned S3 link, followed by the page
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert rows[0][:5] == ["Date/Time", "Total", "Currency", "Status", "Description"]
    assert [r[1:5] for r in rows[1:]] == [
        ["40.00", "USD", "Pending", pending["description"]],
        ["-29.99", "USD", "Completed", "Monthly plan"],
    ]
    expect(page.locator("#notice")).to_have_text("Exported 2 payments.")


def test_an_invalid_amount_shows_the_api_validation_error(page: Page, stack: Any, customer: str) -> None:
    sign_in_with_token(page, stack, customer)
    refused = stack.call(
        "POST",
        "/payments",
        token=stack.token(customer),
        headers={"content-type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
        body=json.dumps({"method": "paypal", "amount": "12.345", "currency": "USD"}),
    )
    assert refused.status == 422 and refused.json()["field"] == "amount"

    pay(page, "bank_transfer", Amount="12.345", Currency="USD")

    amount = page.get_by_label("Amount", exact=True)
    expect(amount).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#pay-form .field-error")).to_have_text(refused.json()["message"])
    assert listed(stack, customer) == []
    # Corrected, the next Pay is a new request (a new Idempotency-Key) and goes through.
    amount.fill("12.34")
    page.get_by_role("button", name="Pay", exact=True).click()
    expect(page.locator("#pay-result")).to_contain_text("Pay by bank transfer")
    expect(page.locator("#pay-form .field-error")).to_have_count(0)
    assert [p["amount"] for p in listed(stack, customer)] == ["12.34"]


# ---- following next_action through the gateway simulator -------------------------------------------


def test_paypal_redirects_to_the_gateway_page_and_back(page: Page, stack: Any, customer: str) -> None:
    sign_in_with_token(page, stack, customer)

    pay(page, "paypal", Amount="20.00", Currency="USD")

    page.wait_for_url(f"{stack.sim_url}/paypal/checkoutnow?token=*")
    expect(page.locator(".amount")).to_have_text("20.00 USD")
    page.get_by_role("button", name="Pay").click()
    page.get_by_role("link", name="Return to the merchant").click()

    expect(page.locator("#notice")).to_have_text("Payment 20.00 USD: Completed.")
    assert page.url == f"{stack.api_url}/"  # the gateway's ?token=… is dropped from the address
    [payment] = listed(stack, customer)
    assert (payment["status"], payment["method"]) == ("completed", "paypal")
    expect(row(page, payment["id"]).locator(".badge")).to_have_text("Completed")
    expect(balances(page)).to_have_text(["20.00 USD"])


def test_a_card_needing_3d_secure_is_pending_until_the_bank_confirms(page: Page, stack: Any, customer: str) -> None:
    sign_in_with_picker(page, stack, customer)  # the simulator's address comes from /web/config.json
    year = str(datetime.now(UTC).year + 2)

    pay(page, "credit_card", Card_number=CARD_3DS, Expiry_month="01", Expiry_year=year, CVC="321", Amount="7.00")

    expect(page.locator("#pay-result")).to_contain_text("3-D Secure required")
    [payment] = listed(stack, customer)
    expect(row(page, payment["id"]).locator(".badge")).to_have_text("Pending")
    page.get_by_role("button", name="Confirm with your bank").click()
    page.wait_for_url(f"{stack.sim_url}/stripe/3ds/*")
    page.get_by_role("button", name="Pay").click()
    page.get_by_role("link", name="Return to the merchant").click()
    expect(row(page, payment["id"]).locator(".badge")).to_have_text("Completed")
    expect(balances(page)).to_have_text(["7.00 USD"])


# ---- local helpers: demo sign-in and settling -------------------------------------------------------


def test_the_demo_picker_signs_in_and_shows_payments_newest_first(page: Page, stack: Any, customer: str) -> None:
    older = charge(stack, customer, "29.99", "USD", "Monthly plan")
    newer = bank_transfer(stack, customer, "100.00")
    sign_in_with_picker(page, stack, customer)

    expect(page.locator("#payment-rows tr")).to_have_count(2)
    ids = page.locator("#payment-rows tr").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert ids == [newer["id"], older["id"]]
    purchase = row(page, older["id"])
    expect(purchase.locator("td.total")).to_have_text("-29.99 USD")
    expect(purchase.locator("td.total")).to_have_class("num total negative")
    # Date / Time is when the payment completed (a purchase completes at once); a pending one has none yet.
    completed = datetime.fromisoformat(older["completed_at"].replace("Z", "+00:00"))
    expect(purchase.locator("td.when time")).to_have_attribute("datetime", older["completed_at"])
    expect(purchase.locator("td.when time")).to_have_text(
        re.compile(rf"^{completed.day} \w+ {completed.year}, {completed:%H:%M}$")
    )
    expect(row(page, newer["id"]).locator("td.when")).to_have_text("—")
    expect(row(page, newer["id"]).locator("td.total")).to_have_class("num total")
    expect(balances(page)).to_have_text(["-29.99 USD"])
    expect(page.locator(".balance .note")).to_have_text("Pending and cancelled payments are not counted.")


def test_a_support_user_can_read_but_not_pay(page: Page, stack: Any, customer: str) -> None:
    charge(stack, customer, "5.00", "USD", "SMS bundle")
    sign_in_with_picker(page, stack, customer, group="support")
    expect(page.locator("#payment-rows tr")).to_have_count(1)
    # Nothing it may not do is offered (test_web_views.py checks every control at both widths).
    expect(page.get_by_role("button", name="Pay", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Download CSV")).to_be_hidden()
    expect(page.locator("#read-only")).to_be_visible()


@pytest.mark.parametrize(
    ("method", "button", "settled"),
    [
        ("bank_transfer", "Transfer received", "Completed"),  # an operator completes it
        ("bank_transfer", "Cancel", "Cancelled"),
        ("razorpay", "Paid", "Completed"),  # the simulator sends Razorpay's webhook
        ("razorpay", "Failed", "Cancelled"),
    ],
)
def test_settling_a_pending_payment_updates_its_status_and_the_balance(
    page: Page, stack: Any, customer: str, method: str, button: str, settled: str
) -> None:
    sign_in_with_picker(page, stack, customer)
    pay(page, method, Amount="30.00", Currency="USD")
    expect(page.locator("#pay-result")).to_be_visible()
    [payment] = listed(stack, customer)
    expect(row(page, payment["id"]).locator(".badge")).to_have_text("Pending")

    page.locator("#pay-result").get_by_role("button", name=button).click()

    expect(row(page, payment["id"]).locator(".badge")).to_have_text(settled)
    expect(balances(page)).to_have_text(["30.00 USD" if settled == "Completed" else "No completed payments yet"])
    assert [p["status"] for p in listed(stack, customer)] == [settled.lower()]


@pytest.mark.parametrize(
    ("body", "button", "settled"),
    [
        ({"method": "nowpayments", "currency": "EUR"}, "Paid", "Completed"),  # NOWPayments' IPN, by gateway_reference
        (
            {"method": "credit_card", "currency": "USD", "payment_method": "pm_card_authenticationRequired"},
            "Paid",
            "Completed",
        ),
        ({"method": "paystack", "currency": "NGN"}, "Failed", "Cancelled"),  # no failure webhook: an operator cancels
    ],
    ids=["nowpayments", "3-D Secure card", "paystack"],
)
def test_settling_from_the_detail_uses_the_gateway_reference_and_updates_it(
    page: Page, stack: Any, customer: str, body: dict[str, str], button: str, settled: str
) -> None:
    made = api(stack, "POST", "/payments", stack.token(customer), {**body, "amount": "30.00"}, key=uuid.uuid4().hex)
    payment = made["payment"]
    sign_in_with_picker(page, stack, customer)
    row(page, payment["id"]).locator(".description").click()
    expect(detail_field(page, "gateway_reference")).to_have_text(payment["gateway_reference"])

    detail(page).get_by_role("button", name=button).click()

    expect(detail_field(page, "status")).to_have_text(settled)  # the open detail follows
    expect(detail(page).locator(".settle")).to_have_count(0)
    if settled == "Completed":
        expect(detail_field(page, "completed_at").locator("time")).to_be_visible()
    expect(row(page, payment["id"]).locator(".badge")).to_have_text(settled)
    assert [p["status"] for p in listed(stack, customer)] == [settled.lower()]


def test_a_payment_the_gateway_holds_shows_why_in_its_detail(page: Page, stack: Any, customer: str) -> None:
    body = {
        "method": "credit_card",
        "amount": "25.00",
        "currency": "EUR",
        "payment_method": "pm_card_authenticationRequired",
    }
    payment = api(stack, "POST", "/payments", stack.token(customer), body, key=uuid.uuid4().hex)["payment"]
    hold = {"provider": "stripe", "ref": payment["gateway_reference"], "outcome": "hold"}
    held = stack.call(
        "POST", "/web/sim/settle", token=None, headers={"content-type": "application/json"}, body=json.dumps(hold)
    )
    assert held.status == 200 and held.json()["delivered"], held.body
    sign_in_with_token(page, stack, customer)

    row(page, payment["id"]).locator(".description").click()

    expect(detail_field(page, "status")).to_have_text("Pending")
    expect(detail_field(page, "pending_reason")).to_contain_text("Stripe is processing the payment")
    [listed_payment] = listed(stack, customer)
    assert listed_payment["pending_reason"].startswith("Stripe is processing the payment")


def test_an_operator_refunds_from_the_detail_and_the_refund_links_its_original(
    page: Page, stack: Any, customer: str
) -> None:
    body = {"method": "credit_card", "amount": "40.00", "currency": "EUR", "payment_method": "pm_card_visa"}
    paid = api(stack, "POST", "/payments", stack.token(customer), body, key=uuid.uuid4().hex)["payment"]
    assert paid["status"] == "completed"
    sign_in_with_picker(page, stack, customer)
    row(page, paid["id"]).locator(".description").click()

    form = detail(page).locator("form.refund")
    form.get_by_label("Operator: refund").fill("50.00")
    form.get_by_role("button", name="Send refund").click()
    expect(detail(page).locator("#refund-error")).to_contain_text("exceeds what is refundable: 40.00 EUR of 40.00")
    form.get_by_label("Operator: refund").fill("15.00")
    form.get_by_role("button", name="Send refund").click()

    expect(detail_field(page, "method")).to_have_text("Refund")  # the refund opens in the detail
    expect(detail_field(page, "amount")).to_have_text("-15.00 EUR")
    expect(detail_field(page, "amount").locator(".negative")).to_have_count(1)
    expect(detail_field(page, "original_payment_id")).to_have_text(paid["id"])
    detail_field(page, "original_payment_id").get_by_role("button").click()
    expect(detail_field(page, "refunded_amount")).to_have_text("15.00 EUR")
    expect(balances(page).filter(has_text="EUR")).to_contain_text("25.00")
    payments = {p["id"]: p for p in listed(stack, customer)}
    [refund] = [p for p in payments.values() if p["method"] == "refund"]
    assert (refund["amount"], refund["status"], refund["original_payment_id"]) == ("-15.00", "completed", paid["id"])
    assert payments[paid["id"]]["refunded_amount"] == "15.00"
    assert len(payments) == 2  # the refused attempt stored nothing


def test_a_disputed_payment_shows_its_dispute_and_its_chargeback_links_back_in_red(
    page: Page, stack: Any, customer: str
) -> None:
    body = {"method": "credit_card", "amount": "30.00", "currency": "USD", "payment_method": "pm_card_visa"}
    paid = api(stack, "POST", "/payments", stack.token(customer), body, key=uuid.uuid4().hex)["payment"]
    charge(stack, customer, "30.00", "USD", "Calls")  # the credit is spent
    settle_at_simulator(stack, "stripe", paid["gateway_reference"], "dispute", "30.00")
    for _ in range(100):  # funds_withdrawn follows charge.dispute.created a moment later
        if any(p["method"] == "chargeback" for p in listed(stack, customer)):
            break
        time.sleep(0.05)
    sign_in_with_token(page, stack, customer)
    expect(page.locator("#payment-rows tr")).to_have_count(3)  # the payment, the purchase, the chargeback

    row(page, paid["id"]).locator(".description").click()

    expect(detail_field(page, "dispute")).to_contain_text("Open · 30.00 · fraudulent")
    [chargeback] = [p for p in listed(stack, customer) if p["method"] == "chargeback"]
    detail_field(page, "refunds").get_by_role("button", name=chargeback["id"]).click()
    expect(detail_field(page, "method")).to_have_text("Chargeback")
    expect(detail_field(page, "original_payment_id")).to_have_text(paid["id"])
    expect(detail(page).get_by_text("Chargeback of", exact=True)).to_be_visible()
    page.keyboard.press("Escape")
    expect(balances(page).filter(has_text="USD")).to_contain_text("-30.00")
    expect(balances(page).filter(has_text="USD")).to_have_class(re.compile(r"\bnegative\b"))  # red: spent credit


def test_filters_and_load_more(page: Page, stack: Any, customer: str) -> None:
    for number in range(22):
        charge(stack, customer, f"1.{number:02d}", "USD", f"Item {number}")
    pending = bank_transfer(stack, customer, "9.00")
    sign_in_with_picker(page, stack, customer)
    rows = page.locator("#payment-rows tr")
    expect(rows).to_have_count(20)

    page.get_by_role("button", name="Load more").click()
    expect(rows).to_have_count(23)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    expect(rows.last.locator("td.total")).to_have_text("-1.00 USD")  # the oldest

    page.locator("#filter-status").select_option("pending")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-id", pending["id"])

    page.locator("#filter-status").select_option("")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    page.locator("#filter-to").fill(yesterday)  # everything here was made today (UTC, the page's zone)
    expect(rows).to_have_count(0)
    expect(page.get_by_text("No payments match.")).to_be_visible()
    page.get_by_role("button", name="Clear").click()
    expect(rows).to_have_count(20)


# ---- answers of Make Payment and the CSV, at both widths ------------------------------------------------


def utc(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def refused(stack: Any, customer: str, body: dict[str, Any]) -> dict[str, Any]:
    """What the API answers this invalid payment (nothing is recorded)."""
    answer = stack.call(
        "POST",
        "/payments",
        token=stack.token(customer),
        headers={"content-type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
        body=json.dumps(body),
    )
    assert answer.status == 422, (answer.status, answer.body)
    return dict(answer.json())


def field_error(page: Page, label: str) -> Any:
    """The error the input labelled so points at (aria-describedby), which must sit in the input's own field."""
    field = page.get_by_label(label, exact=True)
    expect(field).to_have_attribute("aria-describedby", re.compile(r"\S"))  # once the API has answered
    described_by = field.get_attribute("aria-describedby")
    error = page.locator(f"#{described_by}")
    assert error.evaluate("(node, label) => node.closest('.field').textContent.includes(label)", label)
    return error


@pytest.mark.parametrize("width", WIDTHS)
def test_every_field_error_is_shown_at_its_field(page: Page, stack: Any, customer: str, width: int) -> None:
    use_width(page, width)
    both = refused(stack, customer, {"method": "bank_transfer", "amount": "abc", "currency": "XYZ"})
    assert [e["field"] for e in both["errors"]] == ["amount", "currency"]
    sign_in_with_token(page, stack, customer)

    pay(page, "bank_transfer", Amount="abc", Currency="XYZ")

    expect(page.locator("#pay-form .field-error")).to_have_count(2)
    for label, problem in zip(["Amount", "Currency"], both["errors"], strict=True):
        expect(page.get_by_label(label, exact=True)).to_have_attribute("aria-invalid", "true")
        expect(field_error(page, label)).to_have_text(problem["message"])
    expect(page.get_by_label("Amount", exact=True)).to_be_focused()
    expect(page.locator("#pay-error")).to_be_hidden()  # nothing left over for the top of the form
    assert_fits(page)

    # One fixed, one left: only the one left is marked.
    page.get_by_label("Amount", exact=True).fill("12.00")
    page.get_by_role("button", name="Pay", exact=True).click()
    expect(page.locator("#pay-form .field-error")).to_have_count(1)
    expect(field_error(page, "Currency")).to_have_text(both["errors"][1]["message"])
    expect(page.get_by_label("Amount", exact=True)).not_to_have_attribute("aria-invalid", "true")

    # A card field's problem is shown at that card field, though the card fields are cleared after Pay.
    month = refused(
        stack,
        customer,
        {
            "method": "credit_card",
            "amount": "1.00",
            "currency": "USD",
            "card": {"number": CARD_OK, "exp_month": "ab", "exp_year": "2031", "cvc": "123"},
        },
    )
    page.get_by_label("Currency").fill("USD")
    pay(page, "credit_card", Card_number=CARD_OK, Expiry_month="ab", Expiry_year="2031", CVC="123", Amount="1.00")
    expect(field_error(page, "Expiry month")).to_have_text(month["errors"][0]["message"])
    expect(page.locator("#pay-form .field-error")).to_have_count(len(month["errors"]))
    assert listed(stack, customer) == []
    assert_fits(page)


def csv_rows(path: str, *, bom: bool) -> list[dict[str, str]]:
    raw = Path(path).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") == bom, raw[:8]
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def download_csv(page: Page) -> tuple[Any, dict[str, Any]]:
    """Press Download CSV; the file and the body the page sent."""
    with (
        page.expect_request(lambda r: r.url.endswith("/payments/exports") and r.method == "POST") as sent,
        page.expect_download() as download_info,
    ):
        page.get_by_role("button", name="Download CSV").click()
    return download_info.value, json.loads(sent.value.post_data or "{}")


def assert_csv_times_match_the_api(rows: list[dict[str, str]], payments: dict[str, dict[str, Any]]) -> None:
    for line in rows:
        payment = payments[line["Payment ID"]]
        created = datetime.strptime(line["Created At"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        assert created == utc(payment["created_at"]).replace(microsecond=0)
        if payment["completed_at"] is None:
            assert line["Date/Time"] == "", line  # not completed: no date, as on the page
            continue
        # When it completed, in UTC to the second, in a form spreadsheets read as a date.
        completed = datetime.strptime(line["Date/Time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        assert completed == utc(payment["completed_at"]).replace(microsecond=0), line


@pytest.mark.parametrize("width", WIDTHS)
def test_the_csv_for_excel_holds_what_the_page_shows_in_its_order(
    page: Page, stack: Any, customer: str, width: int
) -> None:
    use_width(page, width)
    finance = stack.token(customer)
    charge(stack, customer, "29.99", "USD", "Forfait « été »")  # not ASCII: what the BOM is for
    card = api(
        stack,
        "POST",
        "/payments",
        finance,
        {"method": "credit_card", "amount": "10.00", "currency": "USD", "payment_method": "pm_card_visa"},
        key=uuid.uuid4().hex,
    )["payment"]
    settle_at_simulator(stack, "stripe", card["gateway_reference"], "refund", "2.50")
    bank_transfer(stack, customer, "40.00")
    payments = {p["id"]: p for p in listed(stack, customer)}
    sign_in_with_token(page, stack, customer)
    expect(page.locator("#payment-rows tr")).to_have_count(len(payments))

    page.get_by_label("for Excel").check()
    download, sent = download_csv(page)

    assert sent == {"bom": True}
    assert re.fullmatch(r"payments-\d{4}-\d{2}-\d{2}-UTC\.csv", download.suggested_filename)
    rows = csv_rows(download.path(), bom=True)
    assert [r["Payment ID"] for r in rows] == row_ids(page)
    assert "Forfait « été »" in [r["Description"] for r in rows]
    assert_csv_times_match_the_api(rows, payments)
    expect(page.locator("#notice")).to_have_text(f"Exported {len(payments)} payments.")

    # The current filters and search go with it: completed ones holding 4242 (the card and its refund).
    page.get_by_label("for Excel").uncheck()
    page.locator("#filter-status").select_option("completed")
    page.get_by_label("Search").fill("4242")
    shown = [p["id"] for p in listed(stack, customer) if p["status"] == "completed" and "4242" in p["description"]]
    assert len(shown) == 2
    wait_for_rows(page, shown)
    download, sent = download_csv(page)

    assert sent == {"status": "completed", "q": "4242", "bom": False}
    rows = csv_rows(download.path(), bom=False)
    assert [r["Payment ID"] for r in rows] == shown
    assert_csv_times_match_the_api(rows, payments)
    assert_fits(page)


def settle_at_simulator(stack: Any, provider: str, ref: str, outcome: str, amount: str | None = None) -> None:
    """What a gateway's webhook would do, sent by the simulator (as the page's local helper does)."""
    body = {"provider": provider, "ref": ref, "outcome": outcome, **({"amount": amount} if amount else {})}
    answer = stack.call("POST", "/web/sim/settle", headers={"content-type": "application/json"}, body=json.dumps(body))
    assert answer.status == 200 and answer.json()["delivered"], (answer.status, answer.body)


KOLKATA = timedelta(hours=5, minutes=30)  # Asia/Kolkata has no daylight saving time: always UTC+05:30


@pytest.mark.parametrize("width", WIDTHS)
def test_a_voucher_lockout_is_shown_until_it_ends_and_voucher_pay_is_disabled(
    browser: Browser, stack: Any, customer: str, width: int
) -> None:
    for attempt in range(5):  # wrong codes through the API; the page makes the one that is refused with 429
        refused(stack, customer, {"method": "voucher", "voucher_code": f"WRONG-{attempt}", "currency": "USD"})
    with open_page(browser, width, timezone_id="Asia/Kolkata") as page:
        sign_in_with_token(page, stack, customer)
        pay_button = page.get_by_role("button", name="Pay", exact=True)
        with page.expect_response(lambda r: r.url.endswith("/payments") and r.request.method == "POST") as answer:
            pay(page, "voucher", Voucher_number="WRONG-5", Currency="USD")
        assert answer.value.status == 429
        until = utc(answer.value.json()["locked_until"])

        lock = page.locator("#voucher-lock")
        local = until + KOLKATA  # in the viewer's time zone, to the second
        expect(lock).to_have_text(
            re.compile(rf"^Vouchers are locked .*until {local.day} \w+ {local.year}, {local:%H:%M:%S}\.$")
        )
        assert utc(lock.locator("time").get_attribute("datetime") or "") == until
        expect(pay_button).to_be_disabled()
        expect(page.locator("#pay-form .field-error")).to_have_count(0)
        expect(page.locator("#pay-error")).to_be_hidden()
        assert_fits(page)

        page.get_by_label("Pay via").select_option("bank_transfer")  # other methods still pay
        expect(pay_button).to_be_enabled()
        expect(lock).to_be_visible()
        page.get_by_label("Pay via").select_option("voucher")
        expect(pay_button).to_be_disabled()

        page.reload()  # kept for the session (sessionStorage), until the lockout ends
        expect(lock).to_contain_text(f"{local:%H:%M:%S}")
        page.get_by_label("Pay via").select_option("voucher")
        expect(pay_button).to_be_disabled()
        page.get_by_role("button", name="Sign out").click()
        expect(lock).to_be_hidden()
        sign_in_with_token(page, stack, customer)
        expect(lock).to_contain_text(f"{local:%H:%M:%S}")  # the same customer is still locked out

        # Once the time has passed it is gone (the stored end moved to the past stands for the wait).
        page.evaluate(
            """customer => {
                const locks = JSON.parse(sessionStorage.getItem("payments.voucherLockedUntil"));
                locks[customer] = new Date(Date.now() - 1000).toISOString();
                sessionStorage.setItem("payments.voucherLockedUntil", JSON.stringify(locks));
            }""",
            customer,
        )
        page.reload()
        expect(page.locator("#balance-title")).to_be_visible()
        page.get_by_label("Pay via").select_option("voucher")
        expect(pay_button).to_be_enabled()
        expect(lock).to_be_hidden()


def test_the_receipt_link_fetches_the_pdf_with_the_token_and_the_outbox_panel_shows(
    page: Page, stack: Any, customer: str
) -> None:
    """docs/receipts.md: a completed payment's "Receipt" sends the Authorization header (a plain link could not)
    and opens the PDF from a blob; a pending one has no link; the local stack's outbox panel is beside the list."""
    entry = charge(stack, customer, "4.20", "USD", "Data pack")
    pending = bank_transfer(stack, customer, "9.00")
    sign_in_with_token(page, stack, customer)
    wait_for_rows(page, [pending["id"], entry["id"]])

    expect(row(page, pending["id"]).locator("button.receipt")).to_have_count(0)
    with page.expect_response(lambda r: r.url.endswith(f"/payments/{entry['id']}/receipt")) as answer:
        row(page, entry["id"]).get_by_role("button", name=f"Receipt of {entry['id']} (PDF)").click()
    response = answer.value
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.request.headers["authorization"].startswith("Bearer ")
    assert response.body().startswith(b"%PDF-")
    page.wait_for_function(f"() => state.lastReceipt && state.lastReceipt.id === {json.dumps(entry['id'])}")
    expect(page.locator("#outbox-card")).to_be_visible()
    expect(page.locator("#outbox-events li").first).to_be_visible()
    expect(page.locator("#list-error")).to_be_hidden()


def test_the_form_offers_what_the_settings_allow_and_shows_the_surcharge_before_paying(
    page: Page, stack: Any, customer: str
) -> None:
    settings = {
        "methods": {
            "nowpayments": {"enabled": False},
            "paypal": {"surcharge_fixed": "0.30", "surcharge_percent": "2.9"},
        },
        "min_payment": "5.00",
        "credit_limit": "20.00",
    }
    operator = stack.token(None, ["operator"])
    api(stack, "PUT", f"/admin/customers/{customer}/settings", operator, settings)
    sign_in_with_token(page, stack, customer)

    offered = page.locator("#pay-method option")
    expect(offered).to_have_count(len(api(stack, "GET", "/payment-options", stack.token(customer))["methods"]))
    assert "nowpayments" not in offered.evaluate_all("(nodes) => nodes.map((n) => n.value)")
    page.get_by_label("Pay via").select_option("paypal")
    expect(page.locator("#pay-terms")).to_contain_text("minimum 5.00 USD")
    expect(page.locator("#pay-terms")).to_contain_text("surcharge 0.30 USD + 2.9%")
    page.get_by_label("Amount").fill("10.00")
    expect(page.locator("#pay-charged")).to_have_text(
        "Surcharge 0.59 USD: you will be charged 10.59 USD and credited 10.00 USD."
    )
    page.get_by_label("Amount").fill("5.00")  # 2.9% of it is 14.5 cents: half-up to 15, as the service rounds it
    expect(page.locator("#pay-charged")).to_contain_text("Surcharge 0.45 USD: you will be charged 5.45 USD")
    expect(balances(page)).to_have_text(["0.00 USD · available 20.00 USD (credit limit 20.00 USD)"])

    page.get_by_label("Amount").fill("10.00")
    page.get_by_role("button", name="Pay", exact=True).click()
    page.wait_for_url(f"{stack.sim_url}/paypal/checkoutnow?token=*")
    expect(page.locator(".amount")).to_have_text("10.59 USD")  # PayPal is asked for the charged amount
    page.get_by_role("button", name="Pay").click()
    page.get_by_role("link", name="Return to the merchant").click()
    expect(page.locator("#notice")).to_contain_text("Completed")
    [payment] = listed(stack, customer)
    assert (payment["status"], payment["amount"], payment["surcharge"]) == ("completed", "10.00", "0.59")
    expect(balances(page)).to_have_text(["10.00 USD · available 30.00 USD (credit limit 20.00 USD)"])


# ---- saved cards (docs/saved-cards.md) ---------------------------------------------------------------


def test_saved_cards_add_with_3ds_make_default_pay_and_remove(page: Page, stack: Any, customer: str) -> None:
    sign_in_with_picker(page, stack, customer)
    year = str(datetime.now(UTC).year + 3)
    cards = page.locator("#saved-cards li.saved-card")

    def save_card(number: str) -> None:
        page.get_by_label("Number to save").fill(number)
        page.get_by_label("Expires (month)").fill("12")
        page.get_by_label("Expires (year)").fill(year)
        page.get_by_label("Security code").fill("123")
        page.get_by_role("button", name="Save card").click()

    save_card(CARD_OK)
    expect(page.locator("#card-action")).to_contain_text("saved")
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("Visa •••• 4242")
    expect(cards.first.locator(".badge")).to_have_text("Default")
    expect(page.get_by_label("Number to save")).to_have_value("")

    # 3-D Secure on setup: the simulator's page opens in a tab; the card waits until the bank confirms.
    save_card(CARD_3DS)
    expect(page.locator("#saved-cards li", has_text="3155")).to_contain_text("Needs 3-D Secure")
    with page.context.expect_page() as opened:
        page.locator("#card-action").get_by_role("button", name="Confirm with your bank").click()
    bank = opened.value
    bank.get_by_role("button", name="Pay").click()
    expect(page.locator("#card-action")).to_contain_text("is ready to use")
    second = page.locator("#saved-cards li", has_text="3155")
    expect(second).not_to_contain_text("Needs 3-D Secure")

    second.get_by_role("button", name="Make default").click()
    expect(second.locator(".badge")).to_have_text("Default")
    expect(page.locator("#saved-cards li", has_text="4242").locator(".badge")).to_have_count(0)

    # Make Payment offers the saved cards; the card fields go away when one is chosen.
    page.get_by_label("Pay via").select_option("credit_card")
    page.get_by_label("Pay with").select_option(label=f"Visa •••• 4242 · 12/{year[-2:]}")
    expect(page.get_by_label("Card number", exact=True)).to_be_hidden()
    page.get_by_label("Amount").fill("9.00")
    page.get_by_role("button", name="Pay", exact=True).click()
    expect(page.locator("#pay-result")).to_contain_text("Payment completed")
    expect(balances(page)).to_have_text(["9.00 USD"])

    second.get_by_role("button", name="Remove").click()
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("4242")
    expect(cards.first.locator(".badge")).to_have_text("Default")
    shown = api(stack, "GET", "/payment-methods", stack.token(customer))["items"]
    assert [card["last4"] for card in shown] == ["4242"]


# ---- auto top-up (docs/auto-topup.md) -----------------------------------------------------------------------


def test_the_auto_top_up_form_shows_the_consent_turns_on_and_shows_the_top_up_it_made(
    page: Page, stack: Any, customer: str
) -> None:
    payer = stack.token(customer)
    card = api(stack, "POST", "/payment-methods", payer, {"payment_method": "pm_card_visa"}, key=uuid.uuid4().hex)
    body = {"method": "credit_card", "amount": "60.00", "currency": "USD", "saved_payment_method": card["id"]}
    api(stack, "POST", "/payments", payer, body, key=uuid.uuid4().hex)
    sign_in_with_token(page, stack, customer)

    form = page.locator("#topup-card")
    expect(form.locator("#topup-card-choice option")).to_have_count(1)
    expect(form.locator("#topup-card-choice option")).to_contain_text("Visa •••• 4242")
    form.get_by_label("When the balance falls below").fill("50.00")
    form.get_by_label("Top up by").fill("25.00")
    consent = form.locator("#topup-consent")
    expect(consent).to_contain_text("allow us to charge Visa •••• 4242")
    expect(consent).to_contain_text("25.00 USD without asking, each time your balance falls below 50.00 USD")
    form.get_by_role("button", name="Turn on").click()
    expect(form.locator("#topup-state")).to_contain_text(
        "On · charges 25.00 USD when the balance falls below 50.00 USD"
    )
    saved = api(stack, "GET", "/auto-topup", payer)
    assert (saved["enabled"], saved["payment_method_id"], saved["threshold"]) == (True, card["id"], "50.00")

    charge(stack, customer, "15.00", "USD", "Calls")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        p.get("auto_topup") and p["status"] == "completed" for p in listed(stack, customer)
    ):
        time.sleep(0.3)
    page.get_by_role("button", name="Refresh").click()
    expect(form.locator("#topup-state")).to_contain_text("last top-up 25.00 USD: Completed")
    expect(balances(page)).to_have_text(["70.00 USD"])
    form.get_by_role("button", name="Turn off").click()
    expect(form.locator("#topup-state")).to_contain_text("Off")
    assert api(stack, "GET", "/auto-topup", payer)["enabled"] is False


def test_a_top_up_the_bank_held_is_confirmed_on_the_page_with_3d_secure(page: Page, stack: Any) -> None:
    from tests.e2e.test_auto_topup_stack import customer_with_card, until

    customer, payer, card = customer_with_card(stack, "pm_card_authenticationRequired", "60.00")
    api(stack, "PUT", "/auto-topup", payer, {"enabled": True, "payment_method_id": card["id"], "currency": "USD",
                                             "threshold": "50.00", "amount": "25.00"})  # fmt: skip
    charge(stack, customer, "15.00", "USD", "Calls")
    until("requires_action", lambda: api(stack, "GET", "/auto-topup", payer)["state"] == "requires_action")
    sign_in_with_token(page, stack, customer)

    form = page.locator("#topup-card")
    expect(form.locator("#topup-state")).to_contain_text("Waiting for you: your bank asked to confirm the last top-up")
    expect(form.locator("#topup-action")).to_contain_text("confirm the automatic top-up of 25.00 USD")
    form.get_by_role("button", name="Confirm the top-up").click()
    page.wait_for_url(f"{stack.sim_url}/stripe/3ds/*")
    page.get_by_role("button", name="Pay").click()
    page.get_by_role("link", name="Return to the merchant").click()
    expect(form.locator("#topup-state")).to_contain_text("last top-up 25.00 USD: Completed")
    expect(form.locator("#topup-action")).to_be_hidden()
    expect(balances(page)).to_have_text(["70.00 USD"])
    assert api(stack, "GET", "/auto-topup", payer)["state"] == "active"
