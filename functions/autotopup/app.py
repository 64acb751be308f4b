"""The auto top-up's charges and outcomes (docs/auto-topup.md): fed by an SQS queue that an EventBridge rule fills with
the internal `autotopup.charge` events (a crossing started a charge) and the `payment.completed` and
`payment.cancelled` events of auto top-up payments (`detail.payment.auto_topup` true).

- `autotopup.charge`: `payments.autotopup.charge` charges the saved card off-session, once (the PaymentIntent's
  idempotency key is the payment id), and records it; `authentication_required` turns the auto top-up to
  `requires_action`.
- a payment's event: `payments.autotopup.on_payment` records its outcome on the auto top-up, once.

Each message is one record of Powertools' `BatchProcessor` (`ReportBatchItemFailures`): one that raises (Stripe
unavailable, a lost race) is delivered again after the visibility timeout; one that keeps failing goes to the
dead-letter queue (its depth raises an alarm).
"""

from __future__ import annotations

import json
from typing import Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import autotopup, outbox
from payments.config import settings
from payments.store import PaymentStore

logger = Logger()
SETTINGS = settings()  # checked at cold start
store = PaymentStore()
charger: autotopup.Charger | None = None  # the Stripe adapter's off-session charge unless a test sets one


def cards() -> autotopup.Cards:
    """The saved cards, as the store keeps them (payments.saved_cards)."""
    return cast(autotopup.Cards, store)


def record_handler(record: SQSRecord) -> str:
    event: dict[str, Any] = json.loads(record.body)
    detail_type, detail = str(event.get("detail-type") or ""), event.get("detail")
    if not isinstance(detail, dict):
        logger.warning("an event without a detail", extra={"message_id": record.message_id})
        return "ignored"
    customer_id = str(detail.get("customer_id") or "")
    if detail_type == outbox.AUTOTOPUP_CHARGE:
        charged = autotopup.charge(store, cards(), detail, charger)
        logger.info("auto top-up charged", extra={"payment_id": detail.get("payment_id"), "outcome": charged})
        return charged.value
    if detail_type in (outbox.COMPLETED, outbox.CANCELLED):
        payment = detail.get("payment") or {}
        if not payment.get("auto_topup"):
            return "ignored"
        handled = autotopup.on_payment(store, customer_id, str(payment.get("id") or ""))
        logger.info("auto top-up outcome", extra={"payment_id": payment.get("id"), "outcome": handled})
        return handled.value
    return "ignored"


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
