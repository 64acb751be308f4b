"""The Payments page's views in headless Chromium against the real local stack: Date / Time, descriptions, the
detail dialog, search and totals, what each group sees, signing out, and phones (docs/web-page.md).

Read-only tests share one account (payments of every method and status, made through the API) and one signed-in
page per group and width (`viewer`: finance and support at 1366 and 390 px), in a time zone that is not UTC, so
the page's local times are checked; tests that change things sign in as a customer of their own.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request, expect

from tests.e2e.test_web_page import (
    DESKTOP,
    PHONE,
    WIDTHS,
    api,
    assert_fits,
    bank_transfer,
    charge,
    detail,
    detail_field,
    issue_voucher,
    listed,
    open_page,
    pay,
    row,
    settle_at_simulator,
    sign_in_with_picker,
    sign_in_with_token,
    utc,
    wait_for_rows,
)

ZONE, OFFSET = "Asia/Kolkata", timedelta(hours=5, minutes=30)  # no daylight saving time: always UTC+05:30
GATEWAY_METHODS = ("card_3ds", "paypal", "razorpay", "paystack", "nowpayments")


def local(iso: str) -> str:
    """How the page writes an instant in the viewer's zone (en-GB, medium date, short time), month aside."""
    moment = utc(iso) + OFFSET
    return rf"^{moment.day} \w+ {moment.year}, {moment:%H:%M}$"


@dataclass
class Account:
    customer: str
    named: dict[str, dict[str, Any]]  # what each payment is for this file -> the payment, as GET /payments lists it
    listing: list[dict[str, Any]]  # newest first, as the page shows them

    @property
    def ids(self) -> list[str]:
        return [payment["id"] for payment in self.listing]


def make_payment(stack: Any, customer: str, body: dict[str, Any], expected: int = 201) -> dict[str, Any]:
    headers = {"content-type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
    answer = stack.call("POST", "/payments", token=stack.token(customer), headers=headers, body=json.dumps(body))
    assert answer.status == expected, (answer.status, answer.body)
    return dict(answer.json()["payment"])


@pytest.fixture(scope="module")
def account(stack: Any) -> Account:
    """One payment of every kind, made through the API, not by clicking (that is test_web_page.py's)."""
    customer = f"web-views-{uuid.uuid4().hex[:10]}"
    made: dict[str, dict[str, Any]] = {}
    made["purchase"] = charge(stack, customer, "4.50", "EUR", "Roaming pack")
    code = issue_voucher(stack, "5.00", "EUR")
    made["voucher"] = make_payment(stack, customer, {"method": "voucher", "voucher_code": code, "currency": "EUR"})
    made["bank_custom"] = make_payment(
        stack,
        customer,
        {"method": "bank_transfer", "amount": "25.00", "currency": "USD", "description": "Top-up for May"},
    )
    made["bank"] = bank_transfer(stack, customer, "40.00")
    card = {"method": "credit_card", "amount": "10.00", "currency": "USD", "payment_method": "pm_card_visa"}
    made["card"] = make_payment(stack, customer, card)
    settle_at_simulator(stack, "stripe", made["card"]["gateway_reference"], "refund", "2.50")
    made["card_3ds"] = make_payment(
        stack, customer, {**card, "amount": "7.00", "payment_method": "pm_card_authenticationRequired"}
    )
    made["declined"] = make_payment(
        stack, customer, {**card, "amount": "3.00", "payment_method": "pm_card_chargeDeclined"}, 402
    )
    made["paypal"] = make_payment(stack, customer, {"method": "paypal", "amount": "23.99", "currency": "USD"})
    made["razorpay"] = make_payment(stack, customer, {"method": "razorpay", "amount": "499.00", "currency": "INR"})
    made["paystack"] = make_payment(stack, customer, {"method": "paystack", "amount": "2500.00", "currency": "NGN"})
    made["nowpayments"] = make_payment(
        stack, customer, {"method": "nowpayments", "amount": "120.00", "currency": "EUR"}
    )
    listing = listed(stack, customer)
    by_id = {payment["id"]: payment for payment in listing}
    named = {name: by_id[payment["id"]] for name, payment in made.items()}
    [named["refund"]] = [payment for payment in listing if payment["method"] == "refund"]
    assert len(listing) == 12 and named["card"]["refunds"] == [named["refund"]["id"]]
    return Account(customer, named, listing)


@dataclass
class Viewer:
    page: Page
    group: str
    width: int

    @property
    def can_pay(self) -> bool:
        return self.group == "finance"


VIEWERS = [
    pytest.param(("finance", DESKTOP), id="finance-1366px"),
    pytest.param(("finance", PHONE), id="finance-390px"),
    pytest.param(("support", DESKTOP), id="support-1366px"),
    pytest.param(("support", PHONE), id="support-390px"),
]


@pytest.fixture(scope="module", params=VIEWERS)
def signed_in(request: pytest.FixtureRequest, browser: Browser, stack: Any, account: Account) -> Iterator[Viewer]:
    """A page signed in to the shared account, kept for every read-only test of this group and width."""
    group, width = request.param
    with open_page(browser, width, timezone_id=ZONE) as page:
        sign_in_with_token(page, stack, account.customer, (group,))
        yield Viewer(page, group, width)


@pytest.fixture
def viewer(signed_in: Viewer, account: Account) -> Viewer:
    """The shared page as a test expects it: no detail open, no filter, every payment listed."""
    page = signed_in.page
    if detail(page).is_visible():
        page.keyboard.press("Escape")
        expect(detail(page)).to_be_hidden()
    filtered = page.evaluate("() => [...new FormData(document.getElementById('filters')).values()].some(Boolean)")
    if filtered:  # else the rows are already the right ones, and a reload meanwhile would only race the test
        page.get_by_role("button", name="Clear").click()
    wait_for_rows(page, account.ids)
    return signed_in


def open_row(page: Page, payment_id: str) -> None:
    # On the description: a pending row's Simulate buttons must not be pressed by a click on the row.
    row(page, payment_id).locator(".description").click()
    expect(detail_field(page, "id")).to_have_text(payment_id)


def close_detail(page: Page) -> None:
    detail(page).get_by_role("button", name="Close").click()
    expect(detail(page)).to_be_hidden()


# ---- 1, 7, 8: the table ------------------------------------------------------------------------------


def test_rows_show_when_each_payment_completed_and_descriptions_say_nothing_twice(
    viewer: Viewer, account: Account
) -> None:
    page = viewer.page
    for payment in account.listing:
        when = row(page, payment["id"]).locator("td.when")
        if payment["completed_at"]:
            expect(when.locator("time")).to_have_attribute("datetime", payment["completed_at"])
            expect(when).to_have_text(re.compile(local(payment["completed_at"])))
        else:
            expect(when).to_have_text("—")  # pending and cancelled: not completed (the detail has the creation)

    lines = page.locator("#payment-rows tr").evaluate_all(
        """rows => rows.map(r => [r.dataset.id, r.querySelector('.description').textContent,
                                  (r.querySelector('.sub') || {}).textContent || ''])"""
    )
    for payment_id, description, sub in lines:
        parts = sub.split(" · ") if sub else []
        assert len(parts) == len(set(parts)), sub
        assert not [part for part in parts if part.lower() in description.lower()], (description, sub)
        assert payment_id in account.ids

    named = account.named
    expected = {
        "bank": "",  # "Bank transfer PAY-…": the method and the reference are in the description
        "bank_custom": f"Bank transfer · {named['bank_custom']['reference']}",
        "card": named["card"]["gateway_reference"],  # "Visa card ending 4242": no "Card", no "•••• 4242"
        "card_3ds": named["card_3ds"]["gateway_reference"],
        "paypal": "",
        "razorpay": "",
        "paystack": "",
        "nowpayments": "",
        "refund": f"{named['refund']['reference']} · {named['refund']['gateway_reference']}",
        "purchase": "Purchase",
    }
    subs = {payment_id: sub for payment_id, _, sub in lines}
    assert {name: subs[named[name]["id"]] for name in expected} == expected
    # A saved card (payment_method pm_card_visa) has its brand and last 4, from the API's card.
    assert named["card"]["card"] == {"brand": "visa", "last4": "4242"}
    expect(row(page, named["card"]["id"]).locator(".description")).to_have_text("Visa card ending 4242")
    declined = row(page, named["declined"]["id"])
    expect(declined.locator(".failure")).to_have_text(named["declined"]["failure_message"])
    expect(declined).not_to_contain_text(named["declined"]["failure_reason"])  # the code is for the detail
    assert_fits(page)


# ---- 4: each group sees only what it may do -------------------------------------------------------------


def test_each_group_sees_only_what_it_may_do(viewer: Viewer, account: Account) -> None:
    page = viewer.page
    pending = [payment["id"] for payment in account.listing if payment["status"] == "pending"]
    simulate = page.locator("#payment-rows .settle")
    if viewer.can_pay:
        expect(page.get_by_role("heading", name="Make Payment")).to_be_visible()
        expect(page.get_by_role("button", name="Pay", exact=True)).to_be_enabled()
        expect(page.get_by_role("button", name="Download CSV")).to_be_visible()
        expect(page.get_by_label("for Excel")).to_be_visible()
        expect(simulate).to_have_count(len(pending))
        expect(page.locator("#read-only")).to_be_hidden()
    else:
        expect(page.get_by_role("heading", name="Make Payment")).to_have_count(0)
        expect(page.get_by_role("button", name="Pay", exact=True)).to_have_count(0)
        expect(page.get_by_role("button", name="Download CSV")).to_have_count(0)
        expect(page.get_by_label("for Excel")).to_be_hidden()
        expect(simulate).to_have_count(0)
        expect(page.locator("#read-only")).to_have_text(re.compile(r"^Read only: .*support"))
    expect(page.locator("#payment-rows tr")).to_have_count(len(account.listing))  # both read everything
    expect(page.locator("#balances li")).not_to_have_count(0)
    assert_fits(page)


# ---- 2: the detail --------------------------------------------------------------------------------------


def test_a_row_opens_its_detail_with_every_field_the_history_and_links_to_refunds(
    viewer: Viewer, stack: Any, account: Account
) -> None:
    page = viewer.page
    card, refund = account.named["card"], account.named["refund"]
    full = api(stack, "GET", f"/payments/{card['id']}", stack.token(account.customer, [viewer.group]))

    open_row(page, card["id"])
    dialog = detail(page)
    expect(dialog).to_be_visible()
    assert page.evaluate("() => document.getElementById('detail').contains(document.activeElement)")
    expect(detail_field(page, "amount")).to_have_text("10.00 USD")
    expect(detail_field(page, "status")).to_have_text("Completed")
    expect(detail_field(page, "method")).to_have_text("Credit card")
    expect(detail_field(page, "description")).to_have_text("Visa card ending 4242")
    expect(detail_field(page, "created_at").locator("time")).to_have_attribute("datetime", card["created_at"])
    expect(detail_field(page, "created_at")).to_have_text(re.compile(local(card["created_at"])))
    expect(detail_field(page, "completed_at").locator("time")).to_have_attribute("datetime", card["completed_at"])
    expect(detail_field(page, "card")).to_have_text("Visa •••• 4242")
    expect(detail_field(page, "gateway_reference")).to_have_text(card["gateway_reference"])
    expect(detail_field(page, "refunded_amount")).to_have_text("2.50 USD")
    entries = dialog.locator("ol.history li")
    expect(entries).to_have_count(len(full["history"]))
    for index, entry in enumerate(full["history"]):
        expect(entries.nth(index)).to_have_attribute("data-by", entry["by"])
        expect(entries.nth(index).locator("time")).to_have_attribute("datetime", entry["at"])
        expect(entries.nth(index).locator(".badge")).to_have_text(entry["status"].capitalize())
    expect(entries.filter(has_text="by Stripe (create)")).to_have_count(1)  # who: gateway:stripe:create
    expect(entries.filter(has_text=re.compile(r"by Customer \S+"))).to_have_count(1)
    assert_fits(page)

    # Original -> its refund -> back to the original, each in the same dialog.
    detail_field(page, "refunds").get_by_role("button", name=refund["id"]).click()
    expect(detail_field(page, "id")).to_have_text(refund["id"])
    expect(detail_field(page, "amount")).to_have_text("-2.50 USD")
    expect(detail_field(page, "reference")).to_have_text(refund["reference"])
    expect(detail(page)).not_to_contain_text("null")  # what it lacks is left out, not written as null
    assert page.evaluate("() => document.getElementById('detail').contains(document.activeElement)")
    detail_field(page, "original_payment_id").get_by_role("button", name=card["id"]).click()
    expect(detail_field(page, "id")).to_have_text(card["id"])

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(row(page, card["id"])).to_be_focused()  # the focus goes back where it was

    # By keyboard: Enter and Space on a focused row.
    bank = account.named["bank_custom"]
    row(page, bank["id"]).focus()
    page.keyboard.press("Enter")
    expect(detail_field(page, "id")).to_have_text(bank["id"])
    expect(dialog.locator("dt", has_text="Bank reference")).to_have_count(1)
    expect(detail_field(page, "reference")).to_have_text(bank["reference"])
    expect(detail_field(page, "completed_at")).to_have_text("—")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    purchase = account.named["purchase"]
    row(page, purchase["id"]).focus()
    page.keyboard.press(" ")
    expect(detail_field(page, "id")).to_have_text(purchase["id"])
    expect(detail_field(page, "amount")).to_have_text("-4.50 EUR")
    close_detail(page)


# ---- 10 and 6: what the simulator needs, and why a payment failed ------------------------------------


def test_the_detail_of_every_pending_gateway_payment_shows_its_gateway_reference(
    viewer: Viewer, account: Account
) -> None:
    page = viewer.page
    for name in GATEWAY_METHODS:
        payment = account.named[name]
        assert payment["status"] == "pending" and payment["gateway_reference"]
        open_row(page, payment["id"])
        expect(detail_field(page, "gateway_reference")).to_have_text(payment["gateway_reference"])
        expect(detail_field(page, "status")).to_have_text("Pending")
        settle = detail(page).locator(".settle")
        expect(settle).to_have_count(1 if viewer.can_pay else 0)  # Simulate: Paid / Failed, for finance only
        assert_fits(page)
        close_detail(page)

    declined = account.named["declined"]
    open_row(page, declined["id"])
    expect(detail_field(page, "failure_message")).to_have_text(declined["failure_message"])
    expect(detail_field(page, "failure_reason")).to_have_text(declined["failure_reason"])
    expect(detail_field(page, "card")).to_have_text("Visa •••• 0002")
    expect(detail_field(page, "completed_at")).to_have_text("—")
    close_detail(page)


# ---- 3: search and totals -------------------------------------------------------------------------------


def expect_summary(page: Page, stack: Any, account: Account, group: str, **filters: str) -> None:
    """The count and completed totals the API gives for the same filters, as the page writes them."""
    path = "/payments/summary" + ("?" + "&".join(f"{k}={v}" for k, v in filters.items()) if filters else "")
    summary = api(stack, "GET", path, stack.token(account.customer, [group]))
    statuses = [
        f"{summary['statuses'][s]} {s}" for s in ("pending", "completed", "cancelled") if summary["statuses"][s]
    ]
    count = f"{summary['count']} payment{'' if summary['count'] == 1 else 's'}"
    expect(page.locator("#summary-count")).to_have_text(count + (f" ({', '.join(statuses)})" if statuses else ""))
    totals = ", ".join(f"{total['amount']} {total['currency']}" for total in summary["completed"]) or "none"
    expect(page.locator("#summary-totals")).to_have_text(f"Completed total: {totals}")


def test_search_and_the_totals_follow_the_filters(viewer: Viewer, stack: Any, account: Account) -> None:
    page, group = viewer.page, viewer.group
    token = stack.token(account.customer, [group])
    expect_summary(page, stack, account, group)
    search = page.get_by_label("Search")

    # The last 4 digits find the card payment and its refund (their descriptions hold them).
    search.fill("4242")
    found = [p["id"] for p in api(stack, "GET", "/payments?q=4242", token)["items"]]
    assert found == [account.named["refund"]["id"], account.named["card"]["id"]]
    wait_for_rows(page, found)
    expect_summary(page, stack, account, group, q="4242")

    # Words of a description, in another case, at once with Enter; then a bank reference in lower case.
    custom, bank = account.named["bank_custom"], account.named["bank"]
    search.fill("TOP-UP FOR")
    search.press("Enter")  # without waiting for the typing to pause
    wait_for_rows(page, [custom["id"]])
    expect(page.locator("#summary-count")).to_have_text("1 payment (1 pending)")
    expect(page.locator("#summary-totals")).to_have_text("Completed total: none")
    search.fill(bank["reference"].lower())
    wait_for_rows(page, [bank["id"]])
    expect_summary(page, stack, account, group, q=bank["reference"].lower())

    # Search and status together; nothing matching.
    search.fill("")
    page.locator("#filter-status").select_option("completed")
    completed = [p["id"] for p in account.listing if p["status"] == "completed"]
    wait_for_rows(page, completed)
    expect_summary(page, stack, account, group, status="completed")
    search.fill("zz-nothing-zz")
    wait_for_rows(page, [])
    expect(page.get_by_text("No payments match.")).to_be_visible()
    expect(page.locator("#summary-count")).to_have_text("0 payments")
    assert_fits(page)

    page.get_by_role("button", name="Clear").click()
    wait_for_rows(page, account.ids)
    expect_summary(page, stack, account, group)
    expect(search).to_have_value("")


# ---- 4: signing out, operators ----------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_signing_out_clears_everything_the_previous_user_saw_or_typed(
    browser: Browser,
    stack: Any,
    width: int,
) -> None:
    first, second = f"web-out-{uuid.uuid4().hex[:8]}", f"web-in-{uuid.uuid4().hex[:8]}"
    mine = bank_transfer(stack, first, "60.00")
    charge(stack, first, "1.00", "USD", "First's plan")
    theirs = charge(stack, second, "2.00", "USD", "Second's plan")
    with open_page(browser, width) as page:
        sign_in_with_picker(page, stack, first)
        open_row(page, mine["id"])
        page.keyboard.press("Escape")
        page.get_by_label("Search").fill("plan")
        page.locator("#filter-status").select_option("completed")
        expect(page.locator("#payment-rows tr")).to_have_count(1)
        page.get_by_label("for Excel").check()
        with page.expect_download():
            page.get_by_role("button", name="Download CSV").click()
        expect(page.locator("#notice")).to_have_text("Exported 1 payments.")
        pay(page, "paypal", Amount="abc", Currency="USD", Description="first's secret note")
        expect(page.locator("#pay-form .field-error")).to_have_count(1)

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        expect(page.locator("#payment-rows tr")).to_have_count(0)
        expect(page.locator("#detail-body")).to_be_empty()

        # The same page, not reloaded: what the first user left must be gone, not merely lost in a reload.
        page.get_by_label("Customer").fill(second)
        page.get_by_label("Group").select_option("finance")
        page.get_by_role("button", name="Sign in").click()
        wait_for_rows(page, [theirs["id"]])
        expect(page.get_by_label("Search")).to_have_value("")
        expect(page.locator("#filter-status")).to_have_value("")
        expect(page.get_by_label("for Excel")).not_to_be_checked()
        expect(page.get_by_label("Pay via")).to_have_value("bank_transfer")
        expect(page.get_by_label("Amount", exact=True)).to_have_value("")
        expect(page.get_by_label("Currency")).to_have_value("USD")
        expect(page.get_by_label("Description")).to_have_value("")
        expect(page.locator("#pay-form .field-error")).to_have_count(0)
        expect(page.locator("[aria-invalid]")).to_have_count(0)
        for cleared in ("#notice", "#pay-error", "#pay-result", "#list-error", "#voucher-lock"):
            expect(page.locator(cleared)).to_be_hidden()
        expect(page.locator("#detail-body")).to_be_empty()
        expect(detail(page)).to_be_hidden()
        expect(page.locator("#summary-count")).to_have_text("1 payment (1 completed)")
        expect(page.locator("#balances li")).to_have_text(["-2.00 USD"])
        assert_fits(page)

        # A token the API stops accepting (401, as API Gateway's authorizer answers) signs out the same way.
        page.get_by_label("Search").fill("Second")
        wait_for_rows(page, [theirs["id"]])
        unauthorized = {"status": 401, "content_type": "application/json", "body": '{"message": "Unauthorized"}'}
        page.route(re.compile(r"/payments\?"), lambda route: route.fulfill(**unauthorized))
        page.get_by_role("button", name="Refresh").click()
        expect(page.locator("#sign-in-error")).to_have_text("Signed out: Unauthorized.")
        expect(page.locator("#payment-rows tr")).to_have_count(0)
        expect(page.get_by_label("Search")).to_have_value("")
        expect(page.locator("#summary")).to_be_hidden()
        assert page.evaluate("() => sessionStorage.getItem('payments.token')") is None


@pytest.mark.parametrize("width", WIDTHS)
def test_an_operator_sees_a_notice_and_no_customer_forms(browser: Browser, stack: Any, width: int) -> None:
    with open_page(browser, width) as page:
        customer_routes: list[Request] = []
        page.on("request", lambda r: customer_routes.append(r) if re.search(r"/(payments|balance)\b", r.url) else None)
        page.goto(stack.api_url + "/")
        page.get_by_label("Group").select_option("operator")
        page.get_by_role("button", name="Sign in").click()

        expect(page.locator("#no-access")).to_be_visible()
        expect(page.locator("#no-access")).to_contain_text("signed in as an operator")
        expect(page.locator("#who-text")).to_have_text("(no customer) · operator")
        for hidden in ("Make Payment", "Payments", "Balance"):  # the customer's sections (h1 is the page's name)
            expect(page.get_by_role("heading", level=2, name=hidden, exact=True)).to_have_count(0)
        expect(page.get_by_role("button", name="Pay", exact=True)).to_have_count(0)
        expect(page.get_by_role("button", name="Download CSV")).to_have_count(0)
        assert customer_routes == []  # nothing asked that would only be refused (403)
        assert_fits(page)

        page.get_by_role("button", name="Sign out").click()
        expect(page.locator("#no-access")).to_be_hidden()
        # A pasted operator token: /balance's 403 proves it valid; the same notice.
        page.get_by_text("paste a token").click()
        page.get_by_label("Token").fill(stack.token(None, ["operator"]))
        page.get_by_role("button", name="Use this token").click()
        expect(page.locator("#no-access")).to_contain_text("signed in as an operator")
        expect(page.get_by_role("heading", name="Make Payment")).to_have_count(0)


# ---- 5: phones ----------------------------------------------------------------------------------------------


def assert_not_covered(page: Page, selector: str) -> None:
    """Scrolled into view, the element itself is what is on screen at its middle: the top bar covers nothing."""
    target = page.locator(selector).first
    target.scroll_into_view_if_needed()
    on_top = target.evaluate(
        """node => {
            const box = node.getBoundingClientRect();
            const hit = document.elementFromPoint(box.left + Math.min(box.width / 2, 20), box.top + box.height / 2);
            return Boolean(hit) && (node.contains(hit) || hit.contains(node));
        }"""
    )
    assert on_top, f"{selector} is covered"


@pytest.mark.parametrize("width", [360, PHONE])
def test_phones_scroll_only_downwards_and_the_top_bar_covers_nothing(
    browser: Browser,
    stack: Any,
    width: int,
) -> None:
    customer = f"web-phone-{uuid.uuid4().hex[:8]}"
    charge(stack, customer, "19.99", "USD", "Roaming-pack-for-a-long-weekend-abroad-without-any-spaces-at-all")
    card = make_payment(
        stack,
        customer,
        {"method": "credit_card", "amount": "10.00", "currency": "USD", "payment_method": "pm_card_visa"},
    )
    settle_at_simulator(stack, "stripe", card["gateway_reference"], "refund", "1.00")
    make_payment(stack, customer, {"method": "nowpayments", "amount": "120.00", "currency": "EUR"})
    with open_page(browser, width) as page:
        sign_in_with_token(page, stack, customer)
        expect(page.locator("#payment-rows tr")).to_have_count(4)
        expect(page.locator("#summary")).to_be_visible()
        assert_fits(page)
        header = page.locator("header.topbar").bounding_box()
        first_card = page.locator("#app .card").first.bounding_box()
        assert header and first_card and header["y"] + header["height"] <= first_card["y"]
        # Not fixed or sticky: scrolled, it goes away rather than lying over the page; and nothing sticks out of it.
        topbar = page.locator("header.topbar")
        assert topbar.evaluate("node => getComputedStyle(node).position") in ("static", "relative")
        assert topbar.evaluate("node => node.scrollWidth <= node.clientWidth")
        for selector in ("#sign-out", "#balance-title", "#pay-title", "#list-title", "#summary", "#payment-rows tr"):
            assert_not_covered(page, selector)

        pay(page, "bank_transfer", Amount="25.00", Currency="EUR")  # the instructions: IBAN and all
        expect(page.locator("#pay-result")).to_contain_text("Pay by bank transfer")
        assert_fits(page)
        open_row(page, card["id"])
        assert_fits(page)
        box = detail(page).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width
        detail_field(page, "refunds").get_by_role("button").click()
        expect(detail_field(page, "original_payment_id")).to_have_text(card["id"])
        assert_fits(page)
        close_detail(page)
