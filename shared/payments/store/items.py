"""The keys of the payments table's items (docs/data-model.md). Pure functions, stdlib only."""

from __future__ import annotations

from payments.models import PaymentMethod, PaymentStatus

BALANCE_SK = "BALANCE"


def customer_pk(customer_id: str) -> str:
    return f"CUST#{customer_id}"


def payment_sk(payment_id: str) -> str:
    return f"PAY#{payment_id}"


def status_pk(customer_id: str, status: PaymentStatus) -> str:
    """GSI1's partition: a customer's payments of one status."""
    return f"CUST#{customer_id}#{status.value}"


def pending_pk(method: PaymentMethod) -> str:
    """GSI2's partition (sparse): the pending payments of one method."""
    return f"PENDING#{method.value}"


def gateway_ref_pk(provider: str, gateway_ref: str) -> str:
    return f"GWREF#{provider}#{gateway_ref}"


GATEWAY_REF_SK = "GWREF"
