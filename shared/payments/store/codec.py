"""Items of the payments table <-> Python values: the only code that writes DynamoDB's attribute values.

Small items and request values go through boto3's TypeSerializer/TypeDeserializer (`value`, `values`,
`item_of`, `plain`), imported at first use: `boto3.dynamodb.types` imports all of boto3, which the read
functions otherwise load only when they create their client. The payment codec (`to_item`, `from_item`) is
written out by hand: it runs for every payment read or written (a page of 200, an export of 100k), and boto3's
serialiser followed by the model takes about twice as long.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

from payments.models import (
    Dispute,
    DisputeStatus,
    HistoryEntry,
    Payment,
    PaymentMethod,
    PaymentStatus,
    RefundStatus,
    iso_z,
)
from payments.store.keys import (
    customer_pk,
    payment_sk,
    pending_pk,
    status_pk,
    watch_pk,
)

if TYPE_CHECKING:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

Item = dict[str, Any]


# ---- any value ------------------------------------------------------------------------------------


@cache
def _serializer() -> TypeSerializer:
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer()


@cache
def _deserializer() -> TypeDeserializer:
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


def value(python: object) -> Any:
    """One attribute value: str -> S, int -> N, bool -> BOOL, a set of str -> SS, list -> L, dict -> M."""
    return _serializer().serialize(python)


def values(named: Mapping[str, object]) -> dict[str, Any]:
    """ExpressionAttributeValues (or any mapping of names to attribute values)."""
    serialize = _serializer().serialize
    return {name: serialize(v) for name, v in named.items()}


def item_of(attributes: Mapping[str, object]) -> Item:
    """An item of these attributes, leaving out those that are None (absent, rather than stored as NULL)."""
    serialize = _serializer().serialize
    return {name: serialize(v) for name, v in attributes.items() if v is not None}


def plain(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item's attributes as Python values (numbers as Decimal, sets as set)."""
    deserialize = _deserializer().deserialize
    return {name: deserialize(v) for name, v in item.items()}


def whole(number: Any) -> int:
    """A stored number that must be a whole one."""
    if not isinstance(number, Decimal) or number != number.to_integral_value():
        raise ValueError(f"{number!r} is not a whole number")
    return int(number)


# ---- payments -------------------------------------------------------------------------------------


def _s(text: str) -> dict[str, str]:
    return {"S": text}


def _n(number: int) -> dict[str, str]:
    return {"N": str(number)}


def history_value(entries: Iterable[HistoryEntry]) -> dict[str, Any]:
    """The `history` attribute's value (a list), or the list of entries to append to it."""
    return {"L": [_history_item(h) for h in entries]}


def _history_item(entry: HistoryEntry) -> dict[str, Any]:
    m: dict[str, Any] = {"at": _s(iso_z(entry.at)), "status": _s(entry.status.value), "by": _s(entry.by)}
    if entry.note:
        m["note"] = _s(entry.note)
    return {"M": m}


def to_item(payment: Payment) -> Item:
    item: Item = {
        "PK": _s(customer_pk(payment.customer_id)),
        "SK": _s(payment_sk(payment.id)),
        "GSI1PK": _s(status_pk(payment.customer_id, payment.status)),
        "GSI1SK": _s(payment_sk(payment.id)),
        "type": _s("payment"),
        "id": _s(payment.id),
        "customer_id": _s(payment.customer_id),
        "created_at": _s(iso_z(payment.created_at)),
        "amount_minor": _n(payment.amount_minor),
        "currency": _s(payment.currency),
        "status": _s(payment.status.value),
        "method": _s(payment.method.value),
        "description": _s(payment.description),
        "history": history_value(payment.history),
    }
    watched = watch_of(payment)
    if payment.status is PaymentStatus.PENDING:
        item["GSI2PK"] = _s(pending_pk(payment.method))
        item["GSI2SK"] = _s(payment_sk(payment.id))
    elif watched:
        item["GSI2PK"] = _s(watch_pk(watched))
        item["GSI2SK"] = _s(payment_sk(payment.id))
    optional = {
        "completed_at": iso_z(payment.completed_at) if payment.completed_at else None,
        "reference": payment.reference,
        "gateway_ref": payment.gateway_ref,
        "failure_reason": payment.failure_reason,
        "failure_field": payment.failure_field,
        "pending_reason": payment.pending_reason,
        "card_brand": payment.card_brand,
        "card_last4": payment.card_last4,
        "refund_of": payment.refund_of,
        "refund_status": payment.refund_status,
        "next_action": action_text(payment.next_action),
    }
    if payment.dispute:  # flat, so a change sets only what moved
        optional |= {
            "dispute_id": payment.dispute.id,
            "dispute_status": payment.dispute.status.value,
            "dispute_reason": payment.dispute.reason,
            "dispute_opened_at": iso_z(payment.dispute.opened_at),
        }
        item["dispute_minor"] = _n(payment.dispute.amount_minor)
    if payment.requested_minor is not None:
        item["requested_minor"] = _n(payment.requested_minor)
    if payment.surcharge_minor:
        item["surcharge_minor"] = _n(payment.surcharge_minor)
    if payment.gateway_fee_minor is not None:
        item["gateway_fee_minor"] = _n(payment.gateway_fee_minor)
    if payment.balance_after_minor is not None:
        item["balance_after_minor"] = _n(payment.balance_after_minor)
    optional["payer_email"] = payment.payer_email
    if payment.auto_topup:
        item["auto_topup"] = {"BOOL": True}
    item.update({k: _s(v) for k, v in optional.items() if v})
    if payment.gateway_refs:
        item["gateway_refs"] = {"SS": sorted(payment.gateway_refs)}
    if payment.gateway_attempts:
        item["gw_attempts"] = _n(payment.gateway_attempts)
    if payment.gateway_claim_until is not None:
        item["gw_claim_until"] = _n(payment.gateway_claim_until)
    item["search_text"] = _s(search_text(payment))
    return item


def watch_of(payment: Payment) -> str | None:
    """What reconciliation watches a settled payment for (`keys.watch_pk`): its open dispute, or a gateway refund
    still `pending` at its gateway (a refund paid out by hand has no gateway to ask)."""
    if payment.status is not PaymentStatus.COMPLETED:
        return None
    if payment.dispute is not None and payment.dispute.status is DisputeStatus.OPEN:
        return "dispute"
    if payment.method is PaymentMethod.REFUND and payment.refund_status is RefundStatus.PENDING and payment.gateway_ref:
        return "refund"
    return None


def search_text(payment: Payment) -> str:
    """What GET /payments?q= looks in, lower case: the id, description, references and card's last 4 digits."""
    parts = (payment.id, payment.description, payment.reference, payment.gateway_ref, payment.card_last4)
    return " ".join(part for part in parts if part).lower()


def action_text(action: Mapping[str, Any] | None) -> str | None:
    return json.dumps(action, separators=(",", ":"), sort_keys=True) if action else None


def _str(item: Item, name: str) -> str | None:
    value = item.get(name)
    return value["S"] if value else None


def from_item(item: Item) -> Payment:
    history = tuple(
        HistoryEntry(
            at=datetime.fromisoformat(h["M"]["at"]["S"]),
            status=PaymentStatus(h["M"]["status"]["S"]),
            by=h["M"]["by"]["S"],
            note=h["M"]["note"]["S"] if "note" in h["M"] else None,
        )
        for h in item.get("history", {}).get("L", [])
    )
    completed_at = _str(item, "completed_at")
    return Payment(
        id=item["id"]["S"],
        customer_id=item["customer_id"]["S"],
        created_at=datetime.fromisoformat(item["created_at"]["S"]),
        completed_at=datetime.fromisoformat(completed_at) if completed_at else None,
        amount_minor=int(item["amount_minor"]["N"]),
        currency=item["currency"]["S"],
        status=PaymentStatus(item["status"]["S"]),
        method=PaymentMethod(item["method"]["S"]),
        description=item.get("description", {}).get("S", ""),
        reference=_str(item, "reference"),
        gateway_ref=_str(item, "gateway_ref"),
        failure_reason=_str(item, "failure_reason"),
        card_brand=_str(item, "card_brand"),
        card_last4=_str(item, "card_last4"),
        refund_of=_str(item, "refund_of"),
        refund_status=RefundStatus(item["refund_status"]["S"]) if "refund_status" in item else None,
        gateway_refs=frozenset(item.get("gateway_refs", {}).get("SS", ())),
        next_action=json.loads(item["next_action"]["S"]) if "next_action" in item else None,
        failure_field=_str(item, "failure_field"),
        pending_reason=_str(item, "pending_reason"),
        gateway_attempts=int(item["gw_attempts"]["N"]) if "gw_attempts" in item else 0,
        gateway_claim_until=int(item["gw_claim_until"]["N"]) if "gw_claim_until" in item else None,
        refunded_minor=int(item["refunded_minor"]["N"]) if "refunded_minor" in item else 0,
        charged_back_minor=int(item["charged_back_minor"]["N"]) if "charged_back_minor" in item else 0,
        refund_ids=frozenset(item.get("refund_ids", {}).get("SS", ())),
        dispute=_dispute(item),
        requested_minor=int(item["requested_minor"]["N"]) if "requested_minor" in item else None,
        surcharge_minor=int(item["surcharge_minor"]["N"]) if "surcharge_minor" in item else 0,
        gateway_fee_minor=int(item["gateway_fee_minor"]["N"]) if "gateway_fee_minor" in item else None,
        payer_email=_str(item, "payer_email"),
        balance_after_minor=int(item["balance_after_minor"]["N"]) if "balance_after_minor" in item else None,
        auto_topup=bool(item.get("auto_topup", {}).get("BOOL", False)),
        history=history,
    )


def _dispute(item: Item) -> Dispute | None:
    if "dispute_id" not in item:
        return None
    return Dispute(
        id=item["dispute_id"]["S"],
        status=DisputeStatus(item["dispute_status"]["S"]),
        amount_minor=int(item["dispute_minor"]["N"]),
        reason=_str(item, "dispute_reason"),
        opened_at=datetime.fromisoformat(item["dispute_opened_at"]["S"]),
    )
