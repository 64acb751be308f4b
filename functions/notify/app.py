"""The service's e-mails (docs/receipts.md): fed by an SQS queue that an EventBridge rule on the service's bus fills
with `payment.completed` and `balance.low` events; `payments.notices` decides what each one sends, once per e-mail.

Each message is one record of Powertools' `BatchProcessor` (`ReportBatchItemFailures`): a record that raises is
reported failed and SQS delivers it again after the visibility timeout, the others are done. A receipt waits for
its payment's balance-after (`NotYet`): until the message's `LAST_TRY`th receive, then it is sent without it. A
message that keeps failing goes to the dead-letter queue (its depth raises an alarm).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import notices
from payments.config import NotifySettings, load
from payments.store import PaymentStore

logger = Logger()
SETTINGS = load(NotifySettings)  # checked at cold start
store = PaymentStore()
LAST_TRY = 4  # ApproximateReceiveCount from which a notice stops waiting (the queue's maxReceiveCount is above it)


def record_handler(record: SQSRecord) -> str:
    event: dict[str, Any] = json.loads(record.body)
    detail_type, detail = str(event.get("detail-type") or ""), event.get("detail")
    if not isinstance(detail, dict):
        logger.warning("an event without a detail", extra={"message_id": record.message_id})
        return "ignored"
    receives = int(record.attributes.approximate_receive_count or 1)
    try:
        outcome = notices.notify(store, detail_type, detail, sender=SETTINGS.email_from, last_try=receives >= LAST_TRY)
    except notices.NotYet as exc:
        logger.info("not yet", extra={"event_id": detail.get("event_id"), "receives": receives, "why": str(exc)})
        raise
    logger.info("notice", extra={"detail_type": detail_type, "event_id": detail.get("event_id"), "outcome": outcome})
    return outcome


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
