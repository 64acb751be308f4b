"""What the embedded AWS's SES was given to send: `GET /_local/outbox`'s `emails`, and what the tests check.

The embedded AWS serves the raw messages (local/embedded_aws.py, `SENT_EMAILS_PATH`); each is parsed back from
its MIME here: recipients, subject, text, attachments (with their bytes, for tests that read a receipt's PDF).
"""

from __future__ import annotations

import json
import os
import urllib.request
from email import message_from_string, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple

from local.embedded_aws import SENT_EMAILS_PATH


class SentEmail(NamedTuple):
    id: str
    source: str
    to: tuple[str, ...]
    subject: str
    text: str
    attachments: tuple[tuple[str, str, bytes], ...]  # (filename, content type, bytes)
    sent_at: str | None  # the message's Date header, ISO 8601 UTC

    def as_outbox(self) -> dict[str, Any]:
        """As `GET /_local/outbox` lists it."""
        return {
            "to": list(self.to),
            "subject": self.subject,
            "text": self.text,
            "attachments": [name for name, _, _ in self.attachments],
            "sent_at": self.sent_at,
        }


def parse(raw: str, *, message_id: str = "", source: str = "", destinations: tuple[str, ...] = ()) -> SentEmail:
    message = message_from_string(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("plain",))
    attachments = tuple(
        (part.get_filename() or "", part.get_content_type(), _bytes(part.get_payload(decode=True)))
        for part in message.iter_attachments()
    )
    date = message.get("Date")
    try:
        sent_at = parsedate_to_datetime(str(date)).isoformat().replace("+00:00", "Z") if date else None
    except (TypeError, ValueError):
        sent_at = None
    to = tuple(a.strip() for a in str(message.get("To") or "").split(",") if a.strip()) or destinations
    return SentEmail(
        id=message_id,
        source=source,
        to=to,
        subject=str(message.get("Subject") or ""),
        text=body.get_content() if body is not None else "",
        attachments=attachments,
        sent_at=sent_at,
    )


def _bytes(payload: object) -> bytes:
    return payload if isinstance(payload, bytes) else b""


def sent_emails(endpoint: str | None = None, *, timeout: float = 5) -> list[SentEmail]:
    """Every e-mail the embedded AWS at `endpoint` (default: AWS_ENDPOINT_URL) was given, oldest first."""
    base = (endpoint or os.environ.get("AWS_ENDPOINT_URL") or "").rstrip("/")
    if not base.startswith(("http://127.0.0.1", "http://localhost")):
        raise ValueError(f"not the embedded AWS: {base!r}")
    with urllib.request.urlopen(base + SENT_EMAILS_PATH, timeout=timeout) as answer:  # noqa: S310 - 127.0.0.1
        found = json.loads(answer.read())["emails"]
    return [
        parse(e["raw"], message_id=e["id"], source=e["source"], destinations=tuple(e["destinations"])) for e in found
    ]
