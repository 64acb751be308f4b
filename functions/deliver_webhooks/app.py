"""Outbound webhooks' delivery (docs/webhooks-outbound.md): fed by the delivery SQS queue, where the EventBridge
rule puts the service's events and this function its own delivery tasks.

Each message is one event to fan out to its endpoints or one attempt to POST (`payments.webhook_delivery`).
A message that fails (an attempt another process holds, a store or queue error) is reported as a batch item
failure (Powertools' `BatchProcessor`, `ReportBatchItemFailures`): SQS delivers it again after its visibility
timeout, and the queue's redrive policy moves one that keeps failing to the dead-letter queue.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments.config import WebhookSettings, load
from payments.kms import SecretBox
from payments.queues import Queue
from payments.store import PaymentStore
from payments.webhook_delivery import Deliverer

logger = Logger()
SETTINGS = load(WebhookSettings)  # checked at cold start
deliverer = Deliverer(
    SETTINGS, PaymentStore(), SecretBox(SETTINGS.key_id), Queue(SETTINGS.queue_url), Queue(SETTINGS.dlq_url)
)
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> str:
    outcome = deliverer.handle(json.loads(record.body))
    logger.info("webhook message", extra={"message_id": record.message_id, "outcome": outcome})
    return outcome


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    answer = process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    return dict(answer)
