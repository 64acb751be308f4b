"""`PaymentStore`: the payments table in DynamoDB (docs/data-model.md); the contract is `interface.Store`.

Reads are `reads.Reads`. Every write is a function of `writes` (payments, balances, refunds, status changes,
event markers), `gateway_items`, `voucher_items` or `export_items`, imported at the first write: the read
functions, which never write, do not load them at start (docs/cold-start.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from payments.store.reads import Reads

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from payments.models import Payment
    from payments.money import Money
    from payments.outbox import OutboxEvent
    from payments.status import Change
    from payments.store.base import Written
    from payments.store.export_records import ExportRecord, ExportStatus
    from payments.store.records import (
        AutoTopup,
        Dedupe,
        DisputeWritten,
        LowBalanceAlert,
        Mandate,
        RefundWritten,
        SavedCard,
        Voucher,
    )
    from payments.store.webhook_items import Attempt, Delivery, DeliveryState, WebhookEndpoint


class PaymentStore(Reads):
    """The payments table in DynamoDB: every key, every item, every request."""

    # ---- the idempotency table: Powertools' records, written by its idempotency utility ------------

    def idempotency_records(self) -> DynamoDBPersistenceLayer:
        """Powertools' persistence over the idempotency table, through this store's DynamoDB client (Powertools
        would otherwise build a second session at start). Only the functions that write call it."""
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        from payments.config import settings

        return DynamoDBPersistenceLayer(table_name=settings().idempotency_table, boto3_client=self.client)

    # ---- payments, balances, event markers (writes) ------------------------------------------------

    def put_account_settings(self, customer_id: str, document: dict[str, Any], by: str) -> None:
        from payments.store import account_items

        account_items.put_account_settings(self, customer_id, document, by)

    # ---- e-mail markers (email_items, docs/receipts.md#once-per-event) --------------------------------

    def claim_email(self, email_key: str, customer_id: str, *, hold_seconds: float) -> bool:
        from payments.store import email_items

        return email_items.claim_email(self, email_key, customer_id, hold_seconds=hold_seconds)

    def mark_email_sent(self, email_key: str, message_id: str) -> None:
        from payments.store import email_items

        email_items.mark_email_sent(self, email_key, message_id)

    def release_email(self, email_key: str) -> None:
        from payments.store import email_items

        email_items.release_email(self, email_key)

    def email_marker(self, email_key: str) -> dict[str, object] | None:
        from payments.store import email_items

        return email_items.email_marker(self, email_key)

    def add(self, payment: Payment, *, dedupe: Dedupe | None = None) -> bool:
        from payments.store import writes

        return writes.add(self, payment, dedupe=dedupe)

    def put_pending(
        self,
        payment: Payment,
        request_key: str,
        *,
        reference: str | None = None,
        gateway_ref: tuple[str, str] | None = None,
    ) -> tuple[Payment, bool]:
        from payments.store import writes

        return writes.put_pending(self, payment, request_key, reference=reference, gateway_ref=gateway_ref)

    def record_refund(self, refund: Payment, original: Payment, dedupe: Dedupe) -> RefundWritten:
        from payments.store import writes

        return writes.record_refund(self, refund, original, dedupe)

    def record_dispute_funds(self, entry: Payment, original: Payment, marker: Dedupe) -> DisputeWritten:
        from payments.store import writes

        return writes.record_dispute_funds(self, entry, original, marker)

    def dispute_funds(self, marker: Dedupe) -> tuple[str | None, str | None]:
        from payments.store import writes

        return writes.dispute_funds(self, marker)

    def _write_change(self, change: Change, dedupe: Dedupe | None) -> Written:
        from payments.store import writes

        return writes.write_change(self, change, dedupe)

    def record_event(self, marker: Dedupe, payment_id: str | None = None, *, event_type: str = "") -> bool:
        from payments.store import writes

        return writes.record_event(self, marker, payment_id, event_type=event_type)

    def outbox_event(self, event_id: str) -> OutboxEvent | None:
        from payments.store import outbox_items

        return outbox_items.outbox_event(self, event_id)

    # ---- low-balance alerts (alert_items) ----------------------------------------------------------

    def low_balance_alert(self, customer_id: str) -> LowBalanceAlert | None:
        from payments.store import alert_items

        return alert_items.low_balance_alert(self, customer_id)

    def balance_state(self, customer_id: str, currency: str) -> tuple[int, int]:
        from payments.store import alert_items

        return alert_items.balance_state(self, customer_id, currency)

    def put_low_balance_alert(self, customer_id: str, alert: LowBalanceAlert) -> LowBalanceAlert | None:
        from payments.store import alert_items

        return alert_items.put_low_balance_alert(self, customer_id, alert)

    def delete_low_balance_alert(self, customer_id: str) -> None:
        from payments.store import alert_items

        alert_items.delete_low_balance_alert(self, customer_id)

    def disarm_low_balance(
        self, customer_id: str, alert: LowBalanceAlert, version: int, event: OutboxEvent
    ) -> bool | None:
        from payments.store import alert_items

        return alert_items.disarm_with_event(self, customer_id, alert, version, event)

    def rearm_low_balance(self, customer_id: str, alert: LowBalanceAlert, version: int) -> bool:
        from payments.store import alert_items

        return alert_items.rearm(self, customer_id, alert, version)

    def set_balance_after(self, customer_id: str, payment_id: str, minor: int) -> bool:
        from payments.store import alert_items

        return alert_items.set_balance_after(self, customer_id, payment_id, minor)

    # ---- saved cards and the Stripe Customer (card_items, docs/saved-cards.md) ----------------------

    def stripe_customer(self, customer_id: str) -> str | None:
        from payments.store import card_items

        return card_items.stripe_customer(self, customer_id)

    def claim_stripe_customer(self, customer_id: str, email: str | None) -> tuple[str | None, str | None]:
        from payments.store import card_items

        return card_items.claim_stripe_customer(self, customer_id, email)

    def record_stripe_customer(self, customer_id: str, stripe_customer: str) -> str:
        from payments.store import card_items

        return card_items.record_stripe_customer(self, customer_id, stripe_customer)

    def saved_card(self, customer_id: str, card_id: str) -> SavedCard | None:
        from payments.store import card_items

        return card_items.saved_card(self, customer_id, card_id)

    def saved_cards(self, customer_id: str) -> list[SavedCard]:
        from payments.store import card_items

        return card_items.saved_cards(self, customer_id)

    def card_by_setup(self, provider: str, setup_intent: str) -> SavedCard | None:
        from payments.store import card_items

        return card_items.card_by_setup(self, provider, setup_intent)

    def put_saved_card(self, card: SavedCard, provider: str) -> tuple[SavedCard, bool]:
        from payments.store import card_items

        return card_items.put_saved_card(self, card, provider)

    def settle_saved_card(
        self,
        customer_id: str,
        card_id: str,
        state: str,
        *,
        payment_method: str | None = None,
        details: Mapping[str, object] | None = None,
    ) -> bool:
        from payments.store import card_items

        return card_items.settle_saved_card(
            self, customer_id, card_id, state, payment_method=payment_method, details=details
        )

    def set_default_card(self, customer_id: str, card_id: str) -> bool:
        from payments.store import card_items

        return card_items.set_default_card(self, customer_id, card_id)

    def remove_saved_card(self, customer_id: str, card_id: str, *, was_default: bool, new_default: str | None) -> bool:
        from payments.store import card_items

        return card_items.remove_saved_card(
            self, customer_id, card_id, was_default=was_default, new_default=new_default
        )

    def mark_card_detached(self, customer_id: str, card_id: str) -> None:
        from payments.store import card_items

        card_items.mark_card_detached(self, customer_id, card_id)

    def card_detached(self, customer_id: str, card_id: str) -> bool:
        from payments.store import card_items

        return card_items.card_detached(self, customer_id, card_id)

    # ---- the auto top-up (autotopup_items, docs/auto-topup.md) -------------------------------------

    def auto_topup(self, customer_id: str) -> AutoTopup | None:
        from payments.store import autotopup_items

        return autotopup_items.auto_topup(self, customer_id)

    def mandate(self, customer_id: str, mandate_id: str) -> Mandate | None:
        from payments.store import autotopup_items

        return autotopup_items.mandate(self, customer_id, mandate_id)

    def write_auto_topup(
        self,
        customer_id: str,
        topup: AutoTopup,
        *,
        seen_rev: str | None,
        mandate: Mandate | None = None,
        payment: Payment | None = None,
        event: OutboxEvent | None = None,
    ) -> tuple[Written, AutoTopup | None]:
        from payments.store import autotopup_items

        return autotopup_items.write_auto_topup(
            self, customer_id, topup, seen_rev=seen_rev, mandate=mandate, payment=payment, event=event
        )

    # ---- the gateway object of a payment (gateway_items) -------------------------------------------

    def claim_gateway_object(
        self, payment: Payment, *, provider: str, hold_seconds: float, ref: Callable[[int], str | None]
    ) -> Payment | None:
        from payments.store import gateway_items

        return gateway_items.claim_gateway_object(self, payment, provider=provider, hold_seconds=hold_seconds, ref=ref)

    def record_gateway_object(
        self,
        payment: Payment,
        *,
        provider: str,
        gateway_ref: str,
        next_action: Mapping[str, Any] | None,
        card_brand: str | None,
        card_last4: str | None,
        description: str | None = None,
    ) -> Payment | None:
        from payments.store import gateway_items

        return gateway_items.record_gateway_object(
            self,
            payment,
            provider=provider,
            gateway_ref=gateway_ref,
            next_action=next_action,
            card_brand=card_brand,
            card_last4=card_last4,
            description=description,
        )

    def release_gateway_claim(self, payment: Payment, problem: str) -> None:
        from payments.store import gateway_items

        gateway_items.release_gateway_claim(self, payment, problem)

    # ---- vouchers (voucher_items) ------------------------------------------------------------------

    def issue_voucher(self, code_hash: str, money: Money, expires_at: datetime | None, by: str) -> bool:
        from payments.store import voucher_items

        return voucher_items.issue_voucher(self, code_hash, money, expires_at, by)

    def voucher(self, code_hash: str) -> Voucher | None:
        from payments.store import voucher_items

        return voucher_items.voucher(self, code_hash)

    def count_voucher_attempt(self, customer_id: str, *, now: int, limit: int, window_seconds: int) -> int | None:
        from payments.store import voucher_items

        return voucher_items.count_voucher_attempt(
            self, customer_id, now=now, limit=limit, window_seconds=window_seconds
        )

    def give_back_voucher_attempt(self, customer_id: str) -> None:
        from payments.store import voucher_items

        voucher_items.give_back_voucher_attempt(self, customer_id)

    def redeem_voucher(self, code_hash: str, payment: Payment, *, now: int, balance_at_most: int | None = None) -> bool:
        from payments.store import voucher_items

        return voucher_items.redeem_voucher(self, code_hash, payment, now=now, balance_at_most=balance_at_most)

    # ---- export records (export_items) -------------------------------------------------------------

    def put_export(self, record: ExportRecord, requested_by: str) -> None:
        from payments.store import export_items

        export_items.put_export(self, record, requested_by)

    def finish_export(
        self, customer_id: str, export_id: str, status: ExportStatus, *, rows: int | None = None, failure: str = ""
    ) -> None:
        from payments.store import export_items

        export_items.finish_export(self, customer_id, export_id, status, rows=rows, failure=failure)

    def get_export(self, customer_id: str, export_id: str) -> ExportRecord | None:
        from payments.store import export_items

        return export_items.get_export(self, customer_id, export_id)

    # ---- outbound webhooks: endpoints and deliveries (webhook_items) -------------------------------

    def put_webhook_endpoint(self, endpoint: WebhookEndpoint) -> None:
        from payments.store import webhook_items

        webhook_items.put_endpoint(self, endpoint)

    def webhook_endpoint(self, endpoint_id: str) -> WebhookEndpoint | None:
        from payments.store import webhook_items

        return webhook_items.get_endpoint(self, endpoint_id)

    def webhook_endpoints(self) -> list[WebhookEndpoint]:
        from payments.store import webhook_items

        return webhook_items.list_endpoints(self)

    def delete_webhook_endpoint(self, endpoint_id: str) -> bool:
        from payments.store import webhook_items

        return webhook_items.delete_endpoint(self, endpoint_id)

    def open_webhook_delivery(self, delivery: Delivery, expires_at: int) -> tuple[Delivery, bool]:
        from payments.store import webhook_items

        return webhook_items.open_delivery(self, delivery, expires_at)

    def webhook_delivery(self, endpoint_id: str, event_id: str) -> Delivery | None:
        from payments.store import webhook_items

        return webhook_items.get_delivery(self, endpoint_id, event_id)

    def webhook_deliveries(self, endpoint_id: str, *, limit: int) -> list[Delivery]:
        from payments.store import webhook_items

        return webhook_items.list_deliveries(self, endpoint_id, limit=limit)

    def claim_webhook_attempt(self, endpoint_id: str, event_id: str, number: int, now_ms: int, lease_ms: int) -> bool:
        from payments.store import webhook_items

        return webhook_items.claim_attempt(self, endpoint_id, event_id, number, now_ms, lease_ms)

    def finish_webhook_attempt(
        self, endpoint_id: str, event_id: str, attempt: Attempt, state: DeliveryState, *, delivered_at: str | None
    ) -> bool:
        from payments.store import webhook_items

        return webhook_items.finish_attempt(self, endpoint_id, event_id, attempt, state, delivered_at=delivered_at)

    def cancel_webhook_delivery(self, endpoint_id: str, event_id: str) -> None:
        from payments.store import webhook_items

        webhook_items.cancel_delivery(self, endpoint_id, event_id)
