"""`PaymentStore`: the payments table in DynamoDB (docs/data-model.md), one class of several parts.

Payment ids are ULIDs, so `PAY#<id>` sorts by creation time and `from`/`to` become key conditions.
Every money-moving write is one TransactWriteItems with conditions, so retries and races are safe.
"""

from __future__ import annotations

from payments.store.event_items import EventItems
from payments.store.export_items import ExportItems
from payments.store.gateway_items import GatewayObjects
from payments.store.voucher_items import VoucherItems


class PaymentStore(GatewayObjects, VoucherItems, EventItems, ExportItems):
    """The payments table: payments and balances, the gateway objects of payments, idempotency pointers, bank
    references, vouchers and attempt counters, event markers and export records."""
