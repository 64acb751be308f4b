"""Publishing the outbox (docs/events.md): outbound events put on the service's EventBridge bus, in order.

The only code that calls EventBridge. `publish` puts events in stream order, up to 10 per PutEvents, and stops at
the first one not accepted (an entry refused in `FailedEntryCount`, or a request that failed): it answers how
many were published before it, so the caller reports that one and every later one for the stream to deliver
again. Entries of the same request after a refused one may have been accepted too: they are published again
on the retry (at least once; consumers dedupe on `event_id`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from payments import snapstart
from payments.outbox import SOURCE, OutboxEvent

MAX_ENTRIES = 10  # PutEvents takes at most 10 entries


def events_client() -> Any:
    import boto3

    return snapstart.closes_connections(boto3.client("events"))  # docs/snapstart.md


class EventPublisher:
    """The service's bus and its EventBridge client (created at first use)."""

    def __init__(self, bus_name: str, client: Any = None) -> None:
        self.bus_name = bus_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = events_client()
        return self._client

    def entry(self, event: OutboxEvent) -> dict[str, Any]:
        return {
            "Source": SOURCE,
            "DetailType": event.detail_type,
            "Detail": json.dumps(event.detail(), separators=(",", ":")),
            "EventBusName": self.bus_name,
            "Time": datetime.fromisoformat(event.occurred_at),
            "Resources": [],
        }

    def publish(self, events: Sequence[OutboxEvent]) -> tuple[int, str | None]:
        """Put `events` in order; (how many were published before the first that was not, what went wrong)."""
        from botocore.exceptions import BotoCoreError, ClientError

        done = 0
        while done < len(events):
            chunk = events[done : done + MAX_ENTRIES]
            try:
                answer = self.client.put_events(Entries=[self.entry(event) for event in chunk])
            except (BotoCoreError, ClientError) as exc:
                return done, f"PutEvents failed: {exc}"
            if answer.get("FailedEntryCount"):
                for index, result in enumerate(answer.get("Entries", [])):
                    if result.get("ErrorCode") or not result.get("EventId"):
                        return done + index, f"{result.get('ErrorCode')}: {result.get('ErrorMessage')}"
                return done, "PutEvents reported failed entries without naming them"
            done += len(chunk)
        return done, None
