"""The local stand-in for Lambda's DynamoDB Stream event source mapping, and what reached the bus (docs/local-stack.md).

`StreamPoller` reads a table's stream on the embedded AWS (boto3 `dynamodbstreams`), shard by shard in order,
keeps the records the template's `FilterCriteria` lets through, and delivers them in batches shaped as Lambda's
DynamoDB event (`Records` with `eventID`, `eventName`, `dynamodb.Keys/NewImage/OldImage/SequenceNumber`,
`eventSourceARN`). As the mapping does with `ReportBatchItemFailures`: an answer naming failed records makes it
deliver again from the first of them (the lowest sequence number), a delivery that raises delivers the whole
batch again, and a shard reads nothing further until its batch is through, so nothing is skipped.

`BusCapture` is how `GET /_local/outbox` sees what the publisher put on the bus: an EventBridge rule on the
local bus (every event of source `payments`) targets an SQS queue on the embedded AWS, read as events arrive.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Deliver = Callable[[dict[str, Any]], Any]


def matches(pattern: Mapping[str, Any], document: Mapping[str, Any]) -> bool:
    """An EventBridge-style filter pattern (as Lambda's `FilterCriteria` uses them), for the shapes the template
    writes: nested objects whose leaves are lists of allowed values."""
    for name, wanted in pattern.items():
        if name not in document:
            return False
        value = document[name]
        if isinstance(wanted, Mapping):
            if not isinstance(value, Mapping) or not matches(wanted, value):
                return False
        elif isinstance(wanted, list) and value not in wanted:
            return False
    return True


def stream_filters(template: Mapping[str, Any], function: str) -> list[dict[str, Any]]:
    """The filter patterns of `function`'s DynamoDB event in template.yaml (none: every record)."""
    events = template["Resources"][function]["Properties"].get("Events", {})
    patterns: list[dict[str, Any]] = []
    for event in events.values():
        if event.get("Type") == "DynamoDB":
            for entry in event.get("Properties", {}).get("FilterCriteria", {}).get("Filters", []):
                patterns.append(json.loads(entry["Pattern"]))
    return patterns


def lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A `dynamodbstreams` GetRecords record as Lambda passes it: `ApproximateCreationDateTime` in epoch seconds,
    and the stream's ARN."""
    shaped = {name: value for name, value in record.items() if name != "dynamodb"}
    dynamodb = dict(record.get("dynamodb", {}))
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = created.timestamp()
    return {**shaped, "dynamodb": dynamodb, "eventSourceARN": stream_arn}


def failed_from(answer: Any, batch: Sequence[Mapping[str, Any]]) -> int | None:
    """Where to deliver again from: the place of the lowest sequence number the answer names failed (None: all done).
    An answer that is not a batch response, or names a record the batch does not hold, fails the whole batch."""
    if answer is None:
        return None
    failures = answer.get("batchItemFailures") if isinstance(answer, Mapping) else "malformed"
    if failures is None or failures == []:
        return None
    places = {str(r["dynamodb"]["SequenceNumber"]): i for i, r in enumerate(batch)}
    if not isinstance(failures, list):
        return 0
    named = [places.get(str(f.get("itemIdentifier"))) if isinstance(f, Mapping) else None for f in failures]
    return 0 if None in named else min(n for n in named if n is not None)


@dataclass
class _Shard:
    iterator: str | None
    pending: list[dict[str, Any]] = field(default_factory=list)  # read, not yet delivered through


class StreamPoller:
    """Reads `table`'s stream and delivers its records to `deliver`, as Lambda's event source mapping would."""

    def __init__(
        self,
        table: str,
        deliver: Deliver,
        *,
        filters: Sequence[Mapping[str, Any]] = (),
        batch_size: int = 100,
        start: str = "TRIM_HORIZON",
        client: Any = None,
        dynamodb: Any = None,
        log: Callable[[str], None] = print,
    ) -> None:
        import boto3

        self.table, self.deliver, self.filters, self.batch_size = table, deliver, list(filters), batch_size
        self.start, self.log = start, log
        self.client = client or boto3.client("dynamodbstreams")
        dynamodb = dynamodb or boto3.client("dynamodb")
        arn = dynamodb.describe_table(TableName=table)["Table"].get("LatestStreamArn")
        if not arn:
            raise ValueError(f"table {table} has no stream")
        self.stream_arn: str = arn
        self._shards: dict[str, _Shard] = {}
        self._started = False
        self.failures = 0  # deliveries that failed (some or all of their batch delivered again)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._discover()

    def _discover(self) -> None:
        description = self.client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in description.get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id not in self._shards:
                kind = self.start if not self._started else "TRIM_HORIZON"  # a shard opened since: all of it
                iterator = self.client.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=kind
                )["ShardIterator"]
                self._shards[shard_id] = _Shard(iterator)
        self._started = True

    def poll(self) -> int:
        """One round over the shards: deliver each shard's next batch once. The number of records delivered through."""
        through = 0
        for shard in self._shards.values():
            while len(shard.pending) < self.batch_size and shard.iterator:
                answer = self.client.get_records(ShardIterator=shard.iterator, Limit=self.batch_size)
                shard.iterator = answer.get("NextShardIterator")
                records = [lambda_record(r, self.stream_arn) for r in answer.get("Records", [])]
                shard.pending += [r for r in records if not self.filters or any(matches(p, r) for p in self.filters)]
                if not answer.get("Records"):
                    break
            if not shard.pending:
                continue
            batch = shard.pending[: self.batch_size]
            try:
                again = failed_from(self.deliver({"Records": batch}), batch)
            except Exception as exc:  # a crash: the whole batch comes again
                self.log(f"stream delivery failed, delivering its batch again: {exc!r}")
                again = 0
            if again is not None:
                self.failures += 1
            done = len(batch) if again is None else again
            shard.pending = shard.pending[done:]
            through += done
        return through

    def drain(self, *, rounds: int = 100) -> int:
        """Poll until a round delivers nothing and nothing is left pending (tests): the records delivered."""
        total = 0
        for _ in range(rounds):
            delivered = self.poll()
            total += delivered
            if delivered == 0 and not any(s.pending for s in self._shards.values()):
                break
        return total

    def run(self, interval: float = 0.2) -> None:
        """Poll in a daemon thread until `stop`; a failing batch waits a little longer before it comes again."""

        def loop() -> None:
            last_discovery = time.monotonic()
            while not self._stop.is_set():
                failures = self.failures
                try:
                    self.poll()
                    if time.monotonic() - last_discovery > 2:
                        self._discover()
                        last_discovery = time.monotonic()
                except Exception as exc:  # the embedded AWS stopping, or a bug: keep the stack up, say it
                    self.log(f"stream poller: {exc!r}")
                self._stop.wait(interval * (5 if self.failures > failures else 1))

        self._thread = threading.Thread(target=loop, name="stream-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class BusCapture:
    """Every event put on `bus` with source `payments`, through an EventBridge rule into an SQS queue."""

    def __init__(self, bus: str, name: str, *, events: Any = None, sqs: Any = None) -> None:
        import boto3

        self.events, self.sqs = events or boto3.client("events"), sqs or boto3.client("sqs")
        self.queue_url: str = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self.events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps({"source": ["payments"]}))
        self.events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "capture", "Arn": arn["QueueArn"]}])
        self._seen: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def read(self) -> list[dict[str, Any]]:
        """Everything captured so far, oldest first: each event as EventBridge delivered it."""
        with self._lock:
            while True:
                answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
                messages = answer.get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    with contextlib.suppress(ValueError):
                        self._seen.append(json.loads(message["Body"]))
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            return list(self._seen)

    def outbox(self) -> dict[str, Any]:
        """`GET /_local/outbox`'s answer (docs/events.md#locally): the e-mails the embedded AWS's SES was given
        (local/mailbox.py), and the events, oldest first."""
        from local.mailbox import sent_emails

        try:
            emails = [email.as_outbox() for email in sent_emails()]
        except (OSError, ValueError, KeyError):  # not the embedded AWS, or it stopped: the events still show
            emails = []
        return {
            "emails": emails,
            "events": [{"detail-type": e.get("detail-type"), "detail": e.get("detail")} for e in self.read()],
        }
