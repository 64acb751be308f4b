"""Receipts (docs/receipts.md): the PDF of a completed payment, and the e-mail that carries it after a top-up.

`receipt_pdf` is pure: a payment and its customer's settings in, the PDF's bytes out (fpdf2, imported at the first
receipt: only the functions that render one load it). It is the same document `GET /payments/{id}/receipt` answers
and the receipt e-mail attaches.

`receipt_email` decides whether a `payment.completed` event gets an e-mail, and builds it: only a top-up (a positive
payment of a payable method: bank transfer, PayPal, card, Razorpay, Paystack, crypto, voucher), only when the
customer's settings have `email_receipts` on, only to someone (the payer's e-mail and the settings'
`receipt_emails`). Purchases, refunds, chargebacks and their reversals are completed entries too and have a
receipt to download, but no e-mail: they are the provider's bookings, not the customer's payments.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from payments import account
from payments.emails import Attachment, Email
from payments.models import Payment, PaymentStatus
from payments.money import Money
from payments.notices import NotYet
from payments.registry import BY_METHOD, PAYABLE

if TYPE_CHECKING:
    from payments.store import Store

# What a receipt is called, by the entry's method; every other (a top-up) is a payment receipt.
TITLES = {
    "purchase": "Purchase",
    "refund": "Refund",
    "chargeback": "Chargeback",
    "chargeback_reversal": "Chargeback reversal",
}
ORIGINAL_LABELS = {"refund": "Refund of", "chargeback": "Chargeback of", "chargeback_reversal": "Reverses"}
PDF_ENCODING = "windows-1252"  # the PDF core fonts' widest encoding: Latin-1 plus €, curly quotes, dashes
UNPRINTABLE = "?"


def printable(text: str) -> str:
    """`text` as the core fonts can draw it: compatibility forms folded (NFKC: "ﬁ" -> "fi", full-width digits),
    every other character outside Windows-1252 (CJK, emoji, other scripts) replaced by "?", controls by spaces.

    The core fonts embed nothing (the PDF stays a few KB); a bundled Unicode font would add ~700 KB to every
    receipt and the layer. The receipt's figures are ASCII; only a description can hold other text."""
    out = []
    for char in unicodedata.normalize("NFKC", text):
        if char in "\n\t" or unicodedata.category(char).startswith("C"):
            out.append(" ")
            continue
        try:
            char.encode(PDF_ENCODING)
        except UnicodeEncodeError:
            out.append(UNPRINTABLE)
        else:
            out.append(char)
    return "".join(out)


def is_top_up(payment: Payment) -> bool:
    """A customer's own payment into the balance: a positive amount of a payable method."""
    return payment.amount_minor > 0 and payment.method in PAYABLE and payment.refund_of is None


def title(payment: Payment) -> str:
    return TITLES.get(payment.method.value, "Payment receipt")


def amount_text(minor: int, currency: str) -> str:
    """`12.50 USD`: the currency's exact minor digits (Money.format), never a float."""
    return f"{Money(minor, currency).format()} {currency}"


def moment_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def method_text(payment: Payment) -> str:
    label = BY_METHOD[payment.method].label
    if payment.card_last4:
        label += f" ({(payment.card_brand or 'card').capitalize()} ending {payment.card_last4})"
    return label


def receipt_rows(payment: Payment) -> list[tuple[str, str]]:
    """The receipt's figures, label and value, in order: what the PDF prints (and the e-mail's text repeats)."""
    if payment.status is not PaymentStatus.COMPLETED or payment.completed_at is None:
        raise ValueError(f"{payment.id} is not completed: it has no receipt")
    rows = [("Payment ID", payment.id), ("Date completed", moment_text(payment.completed_at))]
    if payment.refund_of:
        rows.append((ORIGINAL_LABELS.get(payment.method.value, "Original payment"), payment.refund_of))
    rows.append(("Method", method_text(payment)))
    if payment.reference:
        rows.append(("Reference", payment.reference))
    if payment.description:
        rows.append(("Description", payment.description))
    rows.append(("Amount", amount_text(payment.amount_minor, payment.currency)))
    if payment.surcharge_minor:
        rows.append(("Surcharge", amount_text(payment.surcharge_minor, payment.currency)))
        rows.append(("Amount charged", amount_text(payment.charged_minor, payment.currency)))
    rows.append(("Currency", payment.currency))
    if payment.balance_after_minor is not None:  # filled in from the balance's stream: left out until it is
        rows.append(("Balance after", amount_text(payment.balance_after_minor, payment.currency)))
    return rows


def receipt_pdf(payment: Payment, settings: account.AccountSettings) -> bytes:
    """The receipt of a completed payment as a PDF: the provider (name, address lines), what the entry is, and
    its figures. ValueError for a payment that is not completed. Deterministic: the same payment and settings
    give the same bytes (the document's date is the payment's completion)."""
    rows = receipt_rows(payment)
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    pdf = FPDF(format="A4", unit="mm")
    pdf.core_fonts_encoding = PDF_ENCODING
    pdf.set_creation_date(payment.completed_at)
    pdf.set_title(f"{title(payment)} {payment.id}")
    pdf.set_author(settings.provider.name)
    pdf.set_creator("payments")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.multi_cell(0, 8, printable(settings.provider.name), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 10)
    for line in settings.provider.address.splitlines():
        if line.strip():
            pdf.multi_cell(0, 5, printable(line.strip()), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(10)
    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(0, 10, title(payment), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    for label, value in rows:
        pdf.set_font("Helvetica", "B", 11)
        pdf.cell(45, 7, label)
        pdf.set_font("Helvetica", "", 11)
        pdf.multi_cell(0, 7, printable(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(8)
    pdf.set_font("Helvetica", "I", 9)
    pdf.multi_cell(0, 5, _footnote(payment), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


def _footnote(payment: Payment) -> str:
    if is_top_up(payment):
        return "This payment was credited to your balance. Keep this receipt for your records."
    if payment.amount_minor < 0:
        return "This entry was debited from your balance."
    return "This entry was credited to your balance."


# ---- the receipt e-mail ----------------------------------------------------------------------------------------


def recipients(payment: Payment, settings: account.AccountSettings) -> tuple[str, ...]:
    """The payer's e-mail, then the settings' receipt addresses: each once (any case), plain addresses only."""
    seen: dict[str, str] = {}
    for address in (payment.payer_email, *settings.receipt_emails):
        if address and account.valid_email(address.strip()):
            seen.setdefault(address.strip().lower(), address.strip())
    return tuple(seen.values())


def receipt_email(store: Store, detail: dict[str, Any], *, wait: bool = True) -> Email | None:
    """The receipt e-mail a `payment.completed` event's detail calls for, or None (no e-mail: not a top-up, receipts
    off, nobody to send to, the payment not found or not completed). The payment is read again from the store: the
    event's copy may predate its balance-after. While that is not there, NotYet (the event is delivered again), unless
    `wait` is False: then the receipt leaves the row out. The e-mail's key is the event's id."""
    data = detail.get("payment")
    customer_id, event_id = detail.get("customer_id"), detail.get("event_id")
    if not isinstance(data, dict) or not isinstance(customer_id, str) or not isinstance(event_id, str):
        return None
    payment_id = data.get("id")
    payment = store.get(customer_id, payment_id, consistent=True) if isinstance(payment_id, str) else None
    if payment is None or payment.status is not PaymentStatus.COMPLETED or not is_top_up(payment):
        return None
    settings = account.for_customer(store, customer_id)
    to = recipients(payment, settings)
    if not settings.email_receipts or not to:
        return None
    if payment.balance_after_minor is None and wait:
        raise NotYet(f"{payment.id} has no balance-after yet")
    filename = f"receipt-{payment.id}.pdf"
    paid = amount_text(payment.amount_minor, payment.currency)
    lines = [
        "Hello,",
        "",
        f"Thank you: your payment of {paid} by {method_text(payment)} was completed"
        f"{' on ' + moment_text(payment.completed_at) if payment.completed_at else ''}.",
        "",
        *(f"{label}: {value}" for label, value in receipt_rows(payment) if label not in ("Date completed", "Method")),
        "",
        f"The receipt is attached ({filename}).",
        "",
        settings.provider.name,
        *(line.strip() for line in settings.provider.address.splitlines() if line.strip()),
    ]
    return Email(
        to=to,
        subject=f"Receipt for your payment of {paid}",
        text="\n".join(lines) + "\n",
        key=event_id,
        attachments=(Attachment(filename, receipt_pdf(payment, settings), "application/pdf"),),
    )
