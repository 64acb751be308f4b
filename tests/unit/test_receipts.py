"""Receipts (docs/receipts.md): every figure of the PDF, read back with pypdf; who gets the receipt e-mail; sending
each e-mail once per key (payments.notices over the memory store)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from pypdf import PdfReader

from payments import notices, receipts
from payments.account import AccountSettings, Provider
from payments.emails import Email
from payments.models import Payment, PaymentMethod, PaymentStatus
from payments.store.memory import MemoryStore

COMPLETED = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
PROVIDER = Provider(name="Acme Telecom Ltd", address="1 Main Street\nSpringfield 12345\nUtopia")
SETTINGS = AccountSettings(account_currency="USD", provider=PROVIDER, email_receipts=True)


def payment(**extra: Any) -> Payment:
    values: dict[str, Any] = {
        "id": "pay_01JDQ4W6S8X7C3M2K9V5T0R1AB",
        "customer_id": "cust-1",
        "created_at": datetime(2026, 3, 1, 11, 59, tzinfo=UTC),
        "completed_at": COMPLETED,
        "amount_minor": 1250,
        "currency": "USD",
        "status": PaymentStatus.COMPLETED,
        "method": PaymentMethod.CREDIT_CARD,
        "description": "March top-up",
        "reference": "INV-2026-03",
        "card_brand": "visa",
        "card_last4": "4242",
        "balance_after_minor": 10250,
        "payer_email": "payer@example.com",
    }
    return Payment(**{**values, **extra})


def text_of(pdf: bytes) -> str:
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    return reader.pages[0].extract_text()


def lines_of(pdf: bytes) -> list[str]:
    return [line.strip() for line in text_of(pdf).splitlines() if line.strip()]


def test_a_card_top_up_receipt_holds_every_figure() -> None:
    lines = lines_of(receipts.receipt_pdf(payment(surcharge_minor=50), SETTINGS))

    assert lines[:4] == ["Acme Telecom Ltd", "1 Main Street", "Springfield 12345", "Utopia"]
    assert "Payment receipt" in lines
    assert "Payment ID pay_01JDQ4W6S8X7C3M2K9V5T0R1AB" in lines
    assert "Date completed 2026-03-01 12:00:05 UTC" in lines
    assert "Method Credit card (Visa ending 4242)" in lines
    assert "Reference INV-2026-03" in lines
    assert "Description March top-up" in lines
    assert "Amount 12.50 USD" in lines
    assert "Surcharge 0.50 USD" in lines
    assert "Amount charged 13.00 USD" in lines
    assert "Currency USD" in lines
    assert "Balance after 102.50 USD" in lines


@pytest.mark.parametrize(
    ("currency", "amount", "surcharge", "balance", "shown"),
    [
        ("KWD", 12345, 500, 1000001, ("12.345 KWD", "0.500 KWD", "12.845 KWD", "1000.001 KWD")),
        ("JPY", 5000, 150, 120000, ("5000 JPY", "150 JPY", "5150 JPY", "120000 JPY")),
        ("USD", 1, 0, 0, ("0.01 USD", None, None, "0.00 USD")),
    ],
)
def test_amounts_have_the_currencys_exact_minor_digits(
    currency: str, amount: int, surcharge: int, balance: int, shown: tuple[str | None, ...]
) -> None:
    entry = payment(currency=currency, amount_minor=amount, surcharge_minor=surcharge, balance_after_minor=balance)
    lines = lines_of(receipts.receipt_pdf(entry, SETTINGS))

    assert f"Amount {shown[0]}" in lines
    assert f"Currency {currency}" in lines
    assert f"Balance after {shown[3]}" in lines
    if shown[1] is None:  # no surcharge: neither row
        assert not [line for line in lines if line.startswith(("Surcharge", "Amount charged"))]
    else:
        assert f"Surcharge {shown[1]}" in lines
        assert f"Amount charged {shown[2]}" in lines


def test_a_receipt_without_its_balance_after_leaves_the_row_out() -> None:
    lines = lines_of(receipts.receipt_pdf(payment(balance_after_minor=None), SETTINGS))

    assert not [line for line in lines if line.startswith("Balance after")]
    assert "Amount 12.50 USD" in lines


def test_a_refund_says_what_it_is_and_names_its_original() -> None:
    refund = payment(
        id="pay_01JDQ4W6S8X7C3M2K9V5T0R1RF",
        amount_minor=-300,
        method=PaymentMethod.REFUND,
        refund_of="pay_01JDQ4W6S8X7C3M2K9V5T0R1AB",
        card_brand=None,
        card_last4=None,
        reference=None,
        description="Refund: wrong amount",
        balance_after_minor=9950,
    )
    lines = lines_of(receipts.receipt_pdf(refund, SETTINGS))

    assert "Refund" in lines
    assert "Payment receipt" not in lines
    assert "Refund of pay_01JDQ4W6S8X7C3M2K9V5T0R1AB" in lines
    assert "Method Refund" in lines
    assert "Amount -3.00 USD" in lines
    assert "Balance after 99.50 USD" in lines
    assert "This entry was debited from your balance." in lines
    assert not [line for line in lines if line.startswith("Reference")]


def test_a_purchase_is_a_purchase() -> None:
    lines = lines_of(
        receipts.receipt_pdf(payment(amount_minor=-999, method=PaymentMethod.PURCHASE, card_last4=None), SETTINGS)
    )

    assert "Purchase" in lines
    assert "Method Purchase" in lines
    assert "Amount -9.99 USD" in lines


def test_unicode_descriptions_never_break_the_pdf() -> None:
    weird = "Top-up café € “quoted” — 日本語 😀 ﬁx \x00\x07 Ω"
    lines = lines_of(receipts.receipt_pdf(payment(description=weird), SETTINGS))

    [description] = [line for line in lines if line.startswith("Description")]
    assert description.startswith("Description Top-up café € “quoted” — ??? ? fix")
    assert "Payment ID pay_01JDQ4W6S8X7C3M2K9V5T0R1AB" in lines  # the figures are all there
    assert receipts.printable("日本 😀") == "?? ?"


def test_a_provider_name_out_of_latin_1_still_renders() -> None:
    settings = SETTINGS.model_copy(update={"provider": Provider(name="Телеком 株式会社", address="")})

    assert lines_of(receipts.receipt_pdf(payment(), settings))[0] == "??????? ????"


def test_pending_and_cancelled_payments_have_no_receipt() -> None:
    for status in (PaymentStatus.PENDING, PaymentStatus.CANCELLED):
        with pytest.raises(ValueError, match="not completed"):
            receipts.receipt_pdf(payment(status=status, completed_at=None), SETTINGS)


def test_the_same_payment_gives_the_same_bytes() -> None:
    assert receipts.receipt_pdf(payment(), SETTINGS) == receipts.receipt_pdf(payment(), SETTINGS)


# ---- the receipt e-mail -----------------------------------------------------------------------------------------


def stored(store: MemoryStore, entry: Payment, settings: AccountSettings | None = SETTINGS) -> dict[str, Any]:
    store.add(entry)
    if settings is not None:
        store.put_account_settings(entry.customer_id, settings.to_out().model_dump(mode="json"), "operator:test")
    return {
        "event_id": f"evt_{entry.id[-6:]}",
        "customer_id": entry.customer_id,
        "occurred_at": "2026-03-01T12:00:05.000Z",
        "payment": entry.to_api().model_dump(mode="json"),
    }


def test_a_top_up_gets_a_receipt_email_to_the_payer_and_the_receipt_addresses() -> None:
    store = MemoryStore()
    settings = SETTINGS.model_copy(update={"receipt_emails": ("books@example.com", "PAYER@example.com")})
    detail = stored(store, payment(), settings)

    email = receipts.receipt_email(store, detail)

    assert email is not None
    assert email.to == ("payer@example.com", "books@example.com")  # deduplicated, any case
    assert email.subject == "Receipt for your payment of 12.50 USD"
    assert email.key == detail["event_id"]
    [attachment] = email.attachments
    assert attachment.filename == "receipt-pay_01JDQ4W6S8X7C3M2K9V5T0R1AB.pdf"
    assert attachment.mime_type == "application/pdf"
    assert "Amount 12.50 USD" in lines_of(attachment.content)
    assert "Balance after: 102.50 USD" in email.text
    assert "Acme Telecom Ltd" in email.text


def test_no_receipt_email_when_receipts_are_off_or_nobody_would_get_it() -> None:
    store = MemoryStore()
    off = SETTINGS.model_copy(update={"email_receipts": False, "receipt_emails": ("books@example.com",)})
    assert (
        receipts.receipt_email(
            store, stored(store, payment(customer_id="c-off", id="pay_01JDQ4W6S8X7C3M2K9V5T0R1A1"), off)
        )
        is None
    )
    nobody = payment(customer_id="c-nobody", id="pay_01JDQ4W6S8X7C3M2K9V5T0R1A2", payer_email=None)
    assert receipts.receipt_email(store, stored(store, nobody)) is None
    bad = payment(customer_id="c-bad", id="pay_01JDQ4W6S8X7C3M2K9V5T0R1A3", payer_email="not an address")
    assert receipts.receipt_email(store, stored(store, bad)) is None
    only_settings = SETTINGS.model_copy(update={"receipt_emails": ("books@example.com",)})
    email = receipts.receipt_email(
        store,
        stored(
            store, payment(customer_id="c-books", id="pay_01JDQ4W6S8X7C3M2K9V5T0R1A4", payer_email=None), only_settings
        ),
    )
    assert email is not None and email.to == ("books@example.com",)


def test_defaults_without_saved_settings_send_no_receipt() -> None:
    store = MemoryStore()
    assert receipts.receipt_email(store, stored(store, payment(customer_id="c-defaults"), None)) is None


@pytest.mark.parametrize(
    "extra",
    [
        {"status": PaymentStatus.PENDING, "completed_at": None},
        {"status": PaymentStatus.CANCELLED, "completed_at": None},
        {"amount_minor": -300, "method": PaymentMethod.REFUND, "refund_of": "pay_01JDQ4W6S8X7C3M2K9V5T0R1ZZ"},
        {"amount_minor": -300, "method": PaymentMethod.PURCHASE},
        {"amount_minor": -300, "method": PaymentMethod.CHARGEBACK, "refund_of": "pay_01JDQ4W6S8X7C3M2K9V5T0R1ZZ"},
        {
            "amount_minor": 300,
            "method": PaymentMethod.CHARGEBACK_REVERSAL,
            "refund_of": "pay_01JDQ4W6S8X7C3M2K9V5T0R1ZZ",
        },
    ],
    ids=["pending", "cancelled", "refund", "purchase", "chargeback", "chargeback-reversal"],
)
def test_only_completed_top_ups_get_a_receipt_email(extra: dict[str, Any]) -> None:
    store = MemoryStore()
    assert receipts.receipt_email(store, stored(store, payment(**extra))) is None


def test_an_unknown_payment_or_a_malformed_detail_sends_nothing() -> None:
    store = MemoryStore()
    detail = stored(store, payment())
    assert receipts.receipt_email(store, {**detail, "customer_id": "someone-else"}) is None
    assert receipts.receipt_email(store, {**detail, "payment": {"id": "pay_01JDQ4W6S8X7C3M2K9V5T0R1ZZ"}}) is None
    assert receipts.receipt_email(store, {"event_id": "evt_1"}) is None


def test_a_receipt_waits_for_its_balance_after_unless_told_not_to() -> None:
    store = MemoryStore()
    detail = stored(store, payment(balance_after_minor=None))

    with pytest.raises(notices.NotYet):
        receipts.receipt_email(store, detail)
    with pytest.raises(notices.NotYet):
        notices.email_for(store, "payment.completed", detail)
    email = notices.email_for(store, "payment.completed", detail, last_try=True)
    assert email is not None
    assert not [line for line in lines_of(email.attachments[0].content) if line.startswith("Balance after")]


# ---- once per key ----------------------------------------------------------------------------------------------


class FakeSes:
    def __init__(self, fail: int = 0) -> None:
        self.sent: list[tuple[Email, str, str]] = []
        self.fail = fail

    def __call__(self, email: Email, *, sender: str, sender_name: str = "") -> str:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("SES did not answer")
        self.sent.append((email, sender, sender_name))
        return f"msg-{len(self.sent)}"


def test_notify_sends_once_per_key_with_the_providers_name() -> None:
    store, ses = MemoryStore(), FakeSes()
    detail = stored(store, payment())

    first = notices.notify(store, "payment.completed", detail, sender="receipts@example.com", send=ses)
    again = notices.notify(store, "payment.completed", detail, sender="receipts@example.com", send=ses)

    assert (first, again) == ("sent", "duplicate")
    [(email, sender, name)] = ses.sent
    assert (sender, name) == ("receipts@example.com", "Acme Telecom Ltd")
    marker = store.email_marker(email.key)
    assert marker is not None and marker["state"] == "sent" and marker["message_id"] == "msg-1"


def test_a_failed_send_ends_its_claim_so_the_next_delivery_sends() -> None:
    store, ses = MemoryStore(), FakeSes(fail=1)
    detail = stored(store, payment())

    with pytest.raises(ConnectionError):
        notices.notify(store, "payment.completed", detail, sender="receipts@example.com", send=ses)
    assert notices.notify(store, "payment.completed", detail, sender="receipts@example.com", send=ses) == "sent"
    assert len(ses.sent) == 1
    assert store.email_marker(detail["event_id"])["claims"] == 2  # type: ignore[index]


def test_a_claim_still_running_is_not_sent_again_and_an_expired_one_is() -> None:
    store = MemoryStore()
    assert store.claim_email("k", "c", hold_seconds=60)
    assert not store.claim_email("k", "c", hold_seconds=60)  # its sender may still be talking to SES
    assert store.claim_email("k2", "c", hold_seconds=-1)
    assert store.claim_email("k2", "c", hold_seconds=60)  # the first claim's sender stopped: send again
    store.mark_email_sent("k2", "m")
    store.release_email("k2")
    assert not store.claim_email("k2", "c", hold_seconds=-1)


def test_unknown_detail_types_and_nothing_to_send_are_not_errors() -> None:
    store, ses = MemoryStore(), FakeSes()
    detail = stored(store, payment(amount_minor=-300, method=PaymentMethod.PURCHASE))

    assert notices.notify(store, "payment.cancelled", detail, sender="r@example.com", send=ses) == "ignored"
    assert notices.notify(store, "payment.completed", detail, sender="r@example.com", send=ses) == "none"
    assert notices.builder("payment.refunded") is None
    assert ses.sent == []
