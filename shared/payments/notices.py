"""The e-mails the service's events call for (docs/receipts.md), and sending each one once.

`NOTICES` maps an event's detail-type to the function that builds its e-mail, as a lazily imported
"module:function" string: the notify function loads a builder (and what it needs: the PDF library for receipts)
only when an event of its type arrives. A builder takes `(store, detail)` and answers an `Email` or None (nothing
to send); it may raise `NotYet` when what it needs is not written yet, and is then called again with
`wait=False` on the event's last try. A detail-type with no entry is ignored.

`notify` sends what a builder answers at most once per `Email.key`: it claims the key's marker in the payments table
(`store.claim_email`, a conditional write) before SES is called, and marks it sent after SES answers. A second
delivery of the event finds the marker and sends nothing. The window left: a sender that stops after SES took
the message but before the marker says so (a crash, a timeout) leaves a claim that expires after
`CLAIM_SECONDS`; the next delivery then sends the e-mail again. So: at most once per key, except that crash.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from payments.emails import Email
    from payments.store import Store

NOTICES: dict[str, str] = {
    "payment.completed": "payments.receipts:receipt_email",
    "balance.low": "payments.alerts:low_balance_email",
    "autotopup.requires_action": "payments.autotopup:requires_action_email",
    "autotopup.failed": "payments.autotopup:disabled_email",  # only the failure that turned it off sends one
    "autotopup.disabled": "payments.autotopup:disabled_email",
}
# Longer than the notify function can run (its Timeout), shorter than the queue's visibility timeout: a claim
# outlives the sender that holds it, and has expired by the time SQS delivers the message again.
CLAIM_SECONDS = 60

Builder = Callable[..., "Email | None"]
Sender = Callable[..., str]


class NotYet(Exception):
    """The e-mail needs something not written yet (a receipt's balance-after): deliver the event again later."""


def builder(detail_type: str) -> Builder | None:
    """The builder of `detail_type`'s e-mail, imported now; None for a detail-type that sends nothing."""
    target = NOTICES.get(detail_type)
    if target is None:
        return None
    module, _, name = target.partition(":")
    found: Builder = getattr(importlib.import_module(module), name)
    return found


def email_for(store: Store, detail_type: str, detail: dict[str, Any], *, last_try: bool = False) -> Email | None:
    """The e-mail an event calls for, or None. NotYet propagates unless this is the event's last try."""
    build = builder(detail_type)
    if build is None:
        return None
    try:
        return build(store, detail)
    except NotYet:
        if not last_try:
            raise
        return build(store, detail, wait=False)


def deliver(
    store: Store, email: Email, customer_id: str, *, sender: str, sender_name: str = "", send: Sender | None = None
) -> str:
    """Send `email` unless its key was claimed: "sent", or "duplicate" (sent before, or being sent). A failed send
    ends the claim and raises, so the next delivery sends it."""
    if not store.claim_email(email.key, customer_id, hold_seconds=CLAIM_SECONDS):
        return "duplicate"
    if send is None:
        from payments import emails

        send = emails.send
    try:
        message_id = send(email, sender=sender, sender_name=sender_name)
    except BaseException:
        store.release_email(email.key)
        raise
    store.mark_email_sent(email.key, message_id)
    return "sent"


def notify(
    store: Store,
    detail_type: str,
    detail: dict[str, Any],
    *,
    sender: str,
    last_try: bool = False,
    send: Sender | None = None,
) -> str:
    """Handle one event: "ignored" (its detail-type sends nothing), "none" (nothing to send for it), "sent" or
    "duplicate". Raises NotYet (deliver it again) or what sending raised. The sender's name is the customer's
    provider (account settings)."""
    if detail_type not in NOTICES:
        return "ignored"
    email = email_for(store, detail_type, detail, last_try=last_try)
    if email is None:
        return "none"
    from payments import account

    customer_id = str(detail.get("customer_id") or "")
    sender_name = account.for_customer(store, customer_id).provider.name if customer_id else ""
    return deliver(store, email, customer_id, sender=sender, sender_name=sender_name, send=send)
