"""Scheduled reconciliation: ask gateways about payments pending too long (Paystack sends no failure
webhook, and any webhook can be lost), settle them through the same transition code as webhooks,
and cancel those with no answer past the final timeout. Bank transfers wait for an operator. Operator refunds
left pending are looked up at their gateway and bound, or released past the final timeout; refunds still pending
at their gateway and open disputes are asked about, so a lost refund.failed or dispute event is found. Auto top-up
charges whose queue message never got through are charged again with the same idempotency key (docs/auto-topup.md).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from payments import autotopup, refunds, settlement
from payments.config import ReconcileSettings, load
from payments.gateways import gateway
from payments.models import utcnow
from payments.registry import PROVIDERS
from payments.store import PaymentStore

logger = Logger()
metrics = Metrics()
store = PaymentStore()
SETTINGS = load(ReconcileSettings)  # checked at cold start
ASK_AFTER = timedelta(minutes=SETTINGS.ask_after_minutes)
GIVE_UP_AFTER = timedelta(hours=SETTINGS.give_up_after_hours)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    adapters = {provider: gateway(provider) for provider in PROVIDERS}
    now = utcnow()
    report = settlement.reconcile(store, adapters, now=now, ask_after=ASK_AFTER, give_up_after=GIVE_UP_AFTER)
    # Operator refunds left pending between their reservation and the gateway's answer (docs/refunds.md).
    refunded = refunds.reconcile_refunds(store, adapters, now=now, ask_after=ASK_AFTER, give_up_after=GIVE_UP_AFTER)
    # Refunds their gateway has not reported made, disputes it has not decided: a lost webhook is found.
    watched = settlement.reconcile_watched(store, adapters)
    # Auto top-up charges whose queue message never got through (its dead-letter queue): charged again, once.
    redriven = autotopup.redrive(store, cast(autotopup.Cards, store), now=now, ask_after=ASK_AFTER)
    for name, value in asdict(report).items():
        metrics.add_metric(name=f"Reconcile_{name}", unit="Count", value=value)
    for name, value in asdict(refunded).items():
        metrics.add_metric(name=f"Reconcile_refunds_{name}", unit="Count", value=value)
    for name, value in asdict(watched).items():
        metrics.add_metric(name=f"Reconcile_watched_{name}", unit="Count", value=value)
    for name, value in asdict(redriven).items():
        metrics.add_metric(name=f"Reconcile_autotopup_{name}", unit="Count", value=value)
    answer = asdict(report) | {"refunds": asdict(refunded), "watched": asdict(watched), "autotopup": asdict(redriven)}
    logger.info("reconciliation done", extra=answer)
    return answer
