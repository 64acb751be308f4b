"""E-mails the service sends (receipts, low-balance alerts, auto top-up notices) through Amazon SES (boto3 `sesv2`).

An `Email` is plain data a use case builds; `send` turns it into one MIME message (text, and any attachments such
as a receipt's PDF) and hands it to SES as a raw message. The SES client is made at the first send, so only the
function that sends e-mail loads it. Nothing here decides whether to send: the callers do (docs/events.md).
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from functools import cache
from typing import Any, NamedTuple

from payments import snapstart


class Attachment(NamedTuple):
    filename: str
    content: bytes
    mime_type: str = "application/pdf"


class Email(NamedTuple):
    """One e-mail: who to, what about, the text, attachments. `key` is what makes it one e-mail (the event it tells
    of): whoever sends it records that key first, so a redelivered event sends nothing twice."""

    to: tuple[str, ...]
    subject: str
    text: str
    key: str
    attachments: tuple[Attachment, ...] = ()


def mime(email: Email, sender: str, sender_name: str = "") -> bytes:
    """The e-mail as one MIME message (RFC 5322), as SES's raw content takes it."""
    message = EmailMessage()
    message["From"] = formataddr((sender_name, sender)) if sender_name else sender
    message["To"] = ", ".join(email.to)
    message["Subject"] = email.subject
    message["Date"] = formatdate(usegmt=True)  # RFC 5322 requires it; the local outbox shows it as sent_at
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(email.text)
    for attachment in email.attachments:
        maintype, _, subtype = attachment.mime_type.partition("/")
        message.add_attachment(attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename)
    return message.as_bytes()


@cache
def _client() -> Any:
    import boto3

    return snapstart.closes_connections(boto3.client("sesv2"))  # docs/snapstart.md


def send(email: Email, *, sender: str, sender_name: str = "", configuration_set: str | None = None) -> str:
    """Send `email` through SES; SES's message id. Raises botocore's errors as they come (the caller retries)."""
    request: dict[str, Any] = {
        "FromEmailAddress": sender,
        "Destination": {"ToAddresses": list(email.to)},
        "Content": {"Raw": {"Data": mime(email, sender, sender_name)}},
    }
    if configuration_set:
        request["ConfigurationSetName"] = configuration_set
    return str(_client().send_email(**request)["MessageId"])
