"""The outbox's publisher (docs/events.md): fed by the payments table's DynamoDB Stream (filtered to new outbox
items and the balance items' changes), it puts each outbound event on the service's EventBridge bus, in stream
order, at least once; and judges each balance change (docs/alerts.md): the balance after it on its payment, and a
low-balance alert's crossing, whose `balance.low` event it writes to the outbox (it comes back as a new outbox item),
and an auto top-up's crossing (docs/auto-topup.md), which puts its pending payment and `autotopup.charge` event.

Balance records are judged in order up to the first that fails; events are put on the bus only up to there.

Records are published in order and the first one not published stops the batch: it and every record after it
are reported as batch item failures (Powertools' `BatchProcessor`, `ReportBatchItemFailures`), so the stream
delivers the batch again from it and nothing after it is counted done. A crash (a timeout, the process killed)
reports nothing: the whole batch comes again. Either way an event may be put twice, never skipped; its
`event_id` is the same each time.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord, DynamoDBRecordEventName
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import alerts, autotopup
from payments.config import PublishSettings, load
from payments.events import EventPublisher
from payments.outbox import OutboxEvent
from payments.store import PaymentStore
from payments.store.alert_items import balance_record_of
from payments.store.outbox_items import OUTBOX_TYPE, event_of_image

logger = Logger()
SETTINGS = load(PublishSettings)  # checked at cold start
publisher = EventPublisher(SETTINGS.event_bus_name)
store = PaymentStore()


class NotPublished(Exception):
    """This record's event was not put on the bus (or an earlier record's was not): the stream delivers it again."""


UNREADABLE = "unreadable"  # an outbox item whose image does not hold a whole event: never skipped unseen


def outbox_events(records: list[dict[str, Any]]) -> list[tuple[str, OutboxEvent | str | None]]:
    """(sequence number, its event) of each record, in order; None for anything but a new outbox item (a balance
    record, or what the mapping's filter lets not through), UNREADABLE for an outbox item that cannot be read."""
    found: list[tuple[str, OutboxEvent | str | None]] = []
    for raw in records:
        record = DynamoDBRecord(raw)
        sequence = (record.dynamodb.sequence_number if record.dynamodb else None) or ""
        inserted = record.event_name is DynamoDBRecordEventName.INSERT and record.dynamodb is not None
        image = (record.dynamodb.new_image if record.dynamodb and inserted else None) or {}
        event = event_of_image(image) if image else None
        found.append((sequence, UNREADABLE if event is None and image.get("type") == OUTBOX_TYPE else event))
    return found


def judge_balances(records: list[dict[str, Any]], until: int) -> int:
    """Judge the balance records among the first `until`, in order (docs/alerts.md); where the first that failed is
    (it and everything after it are delivered again), else `until`."""
    for place, raw in enumerate(records[:until]):
        record = balance_record_of(raw)
        if record is None:
            continue
        try:
            outcome = alerts.on_balance_change(store, record)
        except Exception:
            logger.exception("a balance record was not judged", extra={"sequence_number": record.sequence})
            return place
        if outcome is alerts.Outcome.FIRED:
            logger.info("balance low", extra={"customer_id": record.customer_id, "currency": record.currency})
        try:  # the auto top-up's crossing (docs/auto-topup.md), judged from the same record
            started = autotopup.on_balance_change(store, record)
        except Exception:
            logger.exception(
                "a balance record was not judged for auto top-up", extra={"sequence_number": record.sequence}
            )
            return place
        if started is autotopup.Started.STARTED:
            logger.info("auto top-up started", extra={"customer_id": record.customer_id, "currency": record.currency})
    return until


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records: list[dict[str, Any]] = event.get("Records") or []
    found = outbox_events(records)
    # An unreadable item stops the batch where it is (retried, then kept by the failure queue: docs/events.md).
    readable = next((i for i, (_, e) in enumerate(found) if e == UNREADABLE), len(found))
    if readable < len(found):
        logger.error("an outbox item cannot be read", extra={"sequence_number": found[readable][0]})
    readable = judge_balances(records, readable)
    places = [i for i, (_, e) in enumerate(found[:readable]) if isinstance(e, OutboxEvent)]
    events = [e for _, e in found[:readable] if isinstance(e, OutboxEvent)]
    published, problem = publisher.publish(events)
    # The first record not published, by its place in the batch; everything from it on is reported failed.
    stop = places[published] if published < len(events) else readable
    if published < len(events):
        logger.warning(
            "publishing stopped", extra={"published": published, "pending": len(events) - published, "problem": problem}
        )
    failed_from = found[stop][0] if stop < len(found) else None
    order = {sequence: index for index, (sequence, _) in enumerate(found)}

    def record_handler(record: DynamoDBRecord) -> None:
        sequence = (record.dynamodb.sequence_number if record.dynamodb else None) or ""
        if failed_from is not None and order.get(sequence, stop) >= stop:
            raise NotPublished(f"not published: delivered again from {failed_from}")

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    answer = process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    logger.info("published", extra={"records": len(records), "events": len(events), "published": published})
    return dict(answer)
