"""The local stand-in for Lambda's SQS event source mapping (docs/local-stack.md): `SqsPoller` reads a queue on
the embedded AWS and delivers its messages to a handler in batches shaped as Lambda's SQS event.

As the mapping does with `ReportBatchItemFailures`: the records the answer names in `batchItemFailures` are left
on the queue (they come back when their visibility timeout ends, their `ApproximateReceiveCount` one higher, and
the queue's redrive policy moves them to its dead-letter queue once it is exceeded), every other record is
deleted; a delivery that raises, or answers something that is not a batch response, leaves the whole batch.
Delayed messages (DelaySeconds) arrive when the embedded AWS makes them visible, as in SQS.

Generic: any queue, any handler (the outbound webhooks' delivery function in `make dev`; receipt e-mails next).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Deliver = Callable[[dict[str, Any]], Any]
MAX_BATCH = 10  # ReceiveMessage returns at most 10 messages


def _attribute_value(value: Mapping[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda passes it (lower camel case; binary values base64 text)."""
    shaped: dict[str, Any] = {"dataType": value.get("DataType"), "stringListValues": [], "binaryListValues": []}
    if "StringValue" in value:
        shaped["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        shaped["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return shaped


def lambda_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """A ReceiveMessage message as Lambda's SQS event holds it."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _attribute_value(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def failed_ids(answer: Any, batch: Sequence[Mapping[str, Any]]) -> set[str] | None:
    """The message ids to leave on the queue; None: all of them (the answer is not a batch response, or names a
    record the batch does not hold, as Lambda then treats the whole batch as failed)."""
    if answer is None:
        return set()
    if not isinstance(answer, Mapping):
        return None
    failures = answer.get("batchItemFailures", [])
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    ids = {str(record["messageId"]) for record in batch}
    named = {str(f.get("itemIdentifier")) if isinstance(f, Mapping) else "" for f in failures}
    return named if named <= ids else None


def queue_sources(template: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """(function, queue, batch size) of each `AWS::Lambda::EventSourceMapping` of template.yaml that reads an SQS
    queue of the template (by logical ids; `!Ref F.Alias`, the function's `live` alias, is the function F)."""
    found = []
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        props = resource.get("Properties", {})
        function, source = props.get("FunctionName", {}), props.get("EventSourceArn", {})
        if isinstance(function, Mapping) and isinstance(source, Mapping) and "Fn::GetAtt" in source:
            queue = source["Fn::GetAtt"]
            queue = queue[0] if isinstance(queue, list) else str(queue).split(".", 1)[0]
            found.append((str(function.get("Ref")).removesuffix(".Alias"), str(queue), int(props.get("BatchSize", 10))))
    return found


class SqsPoller:
    """Reads `queue_url` and delivers its messages to `deliver`, as Lambda's SQS event source mapping would."""

    def __init__(
        self,
        queue_url: str,
        deliver: Deliver,
        *,
        batch_size: int = 10,
        wait_seconds: int = 1,
        client: Any = None,
        log: Callable[[str], None] = print,
    ) -> None:
        import boto3

        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH}")
        self.queue_url, self.deliver, self.batch_size, self.wait_seconds = queue_url, deliver, batch_size, wait_seconds
        self.client, self.log = client or boto3.client("sqs"), log
        attributes = self.client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self.queue_arn: str = attributes["QueueArn"]
        self.region = self.queue_arn.split(":")[3] if self.queue_arn.count(":") >= 5 else "us-east-1"
        self.failures = 0  # records left on the queue by a delivery (reported failed, or the delivery raised)
        self.delivered = 0  # records delivered and deleted
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self, *, wait_seconds: int | None = None) -> int:
        """One ReceiveMessage and its delivery: the number of messages received (0: the queue had none visible)."""
        answer = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_seconds if wait_seconds is None else wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        batch = [lambda_record(m, self.queue_arn, self.region) for m in messages]
        try:
            failed = failed_ids(self.deliver({"Records": batch}), batch)
        except Exception as exc:  # a crash: every record comes back after its visibility timeout
            self.log(f"queue delivery failed, its batch comes back: {exc!r}")
            failed = None
        keep = {str(r["messageId"]) for r in batch} if failed is None else failed
        done = [r for r in batch if r["messageId"] not in keep]
        for start in range(0, len(done), MAX_BATCH):
            chunk = done[start : start + MAX_BATCH]
            entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)]
            self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        self.failures += len(keep)
        self.delivered += len(done)
        return len(messages)

    def drain(self, *, rounds: int = 1000) -> int:
        """Poll without waiting until the queue shows nothing visible (tests): the messages received."""
        total = 0
        for _ in range(rounds):
            received = self.poll(wait_seconds=0)
            if received == 0:
                break
            total += received
        return total

    def start(self) -> None:
        """Poll in a daemon thread until `stop` (long polls of `wait_seconds`)."""

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.poll()
                except Exception as exc:  # the embedded AWS stopping, or a bug: keep the stack up, say it
                    self.log(f"queue poller: {exc!r}")
                    self._stop.wait(1)

        self._thread = threading.Thread(
            target=loop, name=f"sqs-poller-{self.queue_url.rsplit('/', 1)[-1]}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.wait_seconds + 5)
