"""Sending messages to the service's SQS queues (outbound webhooks' delivery queue and its dead-letter queue:
docs/webhooks-outbound.md). The only code that calls SQS; reading the queues is Lambda's event source mapping's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from payments import snapstart

MAX_DELAY_SECONDS = 900  # the most SQS delays a message
MAX_BATCH = 10  # SendMessageBatch takes at most 10 entries


def sqs_client() -> Any:
    import boto3

    return snapstart.closes_connections(boto3.client("sqs"))  # docs/snapstart.md


class QueueError(Exception):
    """A message was not sent (the request failed, or SQS refused an entry): the caller's record is retried."""


class Queue:
    """One queue by its URL; the client is created at first use."""

    def __init__(self, url: str | None, client: Any = None) -> None:
        self.url = url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = sqs_client()
        return self._client

    def _url(self) -> str:
        if not self.url:
            raise QueueError("the queue's URL is not configured")
        return self.url

    def send(self, body: Mapping[str, Any], *, delay_seconds: int = 0) -> None:
        """One message, delayed by `delay_seconds` (clamped to 0..900)."""
        from botocore.exceptions import BotoCoreError, ClientError

        delay = max(0, min(MAX_DELAY_SECONDS, int(delay_seconds)))
        try:
            self.client.send_message(
                QueueUrl=self._url(), MessageBody=json.dumps(body, separators=(",", ":")), DelaySeconds=delay
            )
        except (BotoCoreError, ClientError) as exc:
            raise QueueError(f"SendMessage failed: {type(exc).__name__}") from exc

    def send_all(self, bodies: Sequence[Mapping[str, Any]]) -> None:
        """Every message, undelayed, in batches of 10; QueueError if any was not sent (sending all again is safe
        for the callers here: their consumers dedupe)."""
        from botocore.exceptions import BotoCoreError, ClientError

        for start in range(0, len(bodies), MAX_BATCH):
            entries = [
                {"Id": str(index), "MessageBody": json.dumps(body, separators=(",", ":"))}
                for index, body in enumerate(bodies[start : start + MAX_BATCH])
            ]
            try:
                answer = self.client.send_message_batch(QueueUrl=self._url(), Entries=entries)
            except (BotoCoreError, ClientError) as exc:
                raise QueueError(f"SendMessageBatch failed: {type(exc).__name__}") from exc
            if answer.get("Failed"):
                raise QueueError(f"SendMessageBatch refused {len(answer['Failed'])} entries")
