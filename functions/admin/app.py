"""Operator routes (docs/api.md#operator-routes): settle pending payments, refund paid ones through their gateway,
record purchases, issue vouchers, set a customer's payment settings (docs/account-settings.md).

Only the `operator` group may call them; an operator may name any customer.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path

from payments import account, api, autotopup, operations, refunds, vouchers
from payments.checkout import validate_key
from payments.config import settings
from payments.gateways import gateway
from payments.idempotency import PERSISTENCE_ERRORS, IdempotentRoute
from payments.identity import OPERATORS
from payments.models import PaymentOut, PaymentStatus, iso_z
from payments.store import PaymentStore

app, logger, tracer, metrics = api.build("admin", wrapped_aws_errors=PERSISTENCE_ERRORS, calls_gateways=True)
SETTINGS = settings()  # the environment, checked at cold start
DEFAULTS = account.checked_defaults()  # the account settings' defaults, checked at cold start too
store = PaymentStore()
idempotency = IdempotentRoute("admin_charge", validate_on="body", persistence=store.idempotency_records())
refund_idempotency = IdempotentRoute("admin_refund", validate_on="body", persistence=store.idempotency_records())
CustomerId = Annotated[str, Path(min_length=1, max_length=128)]
PaymentId = Annotated[str, Path(max_length=64)]


def _operator() -> str:
    caller = api.caller(app)
    caller.require(OPERATORS)
    return caller.actor


def _settle(customer_id: str, payment_id: str, target: PaymentStatus, body: operations.SettleBody | None) -> PaymentOut:
    actor = _operator()
    payment = operations.settle(store, customer_id, payment_id, target, actor, body.note if body else None)
    metrics.add_metric(name=f"OperatorSettled_{target.value}", unit="Count", value=1)
    return payment.to_api(with_history=True)


@app.post(
    "/admin/customers/<customer_id>/payments/<id>/complete",
    tags=["admin"],
    summary="Complete a pending payment",
    responses=api.responses({200: ("The payment, completed", PaymentOut)}, 401, 403, 404, 409),
)
def complete(
    customer_id: CustomerId,
    id: PaymentId,
    body: Annotated[operations.SettleBody | None, Body()] = None,
) -> PaymentOut:
    return _settle(customer_id, id, PaymentStatus.COMPLETED, body)


@app.post(
    "/admin/customers/<customer_id>/payments/<id>/cancel",
    tags=["admin"],
    summary="Cancel a pending payment",
    responses=api.responses({200: ("The payment, cancelled", PaymentOut)}, 401, 403, 404, 409),
)
def cancel(
    customer_id: CustomerId,
    id: PaymentId,
    body: Annotated[operations.SettleBody | None, Body()] = None,
) -> PaymentOut:
    return _settle(customer_id, id, PaymentStatus.CANCELLED, body)


@idempotency.wrap
def _charge(request: dict[str, Any], body: operations.ChargeBody, actor: str) -> dict[str, Any]:
    payment = operations.charge(store, request["customer_id"], body, request["key"], actor)
    return payment.to_api().model_dump()


@app.post(
    "/admin/customers/<customer_id>/charges",
    tags=["admin"],
    summary="Record a purchase (a negative payment)",
    responses=api.responses({201: ("The purchase, as a completed negative payment", PaymentOut)}, 401, 403, 409),
)
def record_charge(
    customer_id: CustomerId,
    body: Annotated[operations.ChargeBody, Body()],
    idempotency_key: Annotated[str, Header(alias="idempotency-key", min_length=1, max_length=255)],
) -> Response[Any]:
    actor = _operator()
    key = validate_key(idempotency_key)
    operations.positive_money(body.amount, body.currency)  # 422 before anything is recorded
    request = {"customer_id": customer_id, "key": key, "body": body.model_dump_json()}
    payment = idempotency.call(app, _charge, request=request, body=body, actor=actor)
    return Response(201, content_types.APPLICATION_JSON, api.serialize(payment))


@refund_idempotency.wrap
def _refund(request: dict[str, Any], body: refunds.RefundBody, actor: str) -> dict[str, Any]:
    customer_id, payment_id = request["customer_id"], request["payment_id"]
    refund = refunds.refund(store, gateway, customer_id, payment_id, body, request["key"], actor)
    metrics.add_metric(name="OperatorRefunds", unit="Count", value=1)
    return refund.to_api(with_history=True).model_dump()


@app.post(
    "/admin/customers/<customer_id>/payments/<id>/refunds",
    tags=["admin"],
    summary="Refund a paid payment through its gateway (a bank transfer: recorded, paid out by hand)",
    responses=api.responses(
        {201: ("The refund: a completed negative payment naming the original", PaymentOut)},
        *(401, 403, 404, 409, 502, 503),
    ),
)
def refund_payment(
    customer_id: CustomerId,
    id: PaymentId,
    idempotency_key: Annotated[str, Header(alias="idempotency-key", min_length=1, max_length=255)],
    body: Annotated[refunds.RefundBody | None, Body()] = None,
) -> Response[Any]:
    actor = _operator()
    key = validate_key(idempotency_key)
    body = body or refunds.RefundBody()
    # The key names the customer and the payment: the same key on another payment is another request.
    request = {"customer_id": customer_id, "key": f"{id}\x1f{key}", "payment_id": id, "body": body.model_dump_json()}
    refund = refund_idempotency.call(app, _refund, request=request, body=body, actor=actor)
    return Response(201, content_types.APPLICATION_JSON, api.serialize(refund))


@app.post(
    "/admin/vouchers",
    tags=["admin"],
    summary="Issue voucher codes",
    responses=api.responses({201: ("The codes: shown once, stored only as hashes", operations.VouchersOut)}, 401, 403),
)
def issue_vouchers(body: Annotated[operations.VoucherBody, Body()]) -> Response[Any]:
    actor = _operator()
    money = operations.positive_money(body.amount, body.currency)
    expires_at = vouchers.parse_expiry(body.expires_at)
    issued = vouchers.issue(store, money, body.count, expires_at, actor)
    metrics.add_metric(name="VouchersIssued", unit="Count", value=len(issued))
    answer = operations.VouchersOut(
        vouchers=[
            operations.VoucherOut(
                code=v.code,
                amount=v.money.format(),
                currency=v.money.currency,
                expires_at=iso_z(v.expires_at) if v.expires_at else None,
            )
            for v in issued
        ]
    )
    return Response(201, content_types.APPLICATION_JSON, api.serialize(answer))


@app.get(
    "/admin/customers/<customer_id>/settings",
    tags=["admin"],
    summary="A customer's payment settings (the deployment's defaults where none are saved)",
    responses=api.responses({200: ("The settings", account.SettingsOut)}, 401, 403),
)
def get_settings(customer_id: CustomerId) -> account.SettingsOut:
    _operator()
    return account.for_customer(store, customer_id).to_out()


@app.put(
    "/admin/customers/<customer_id>/settings",
    tags=["admin"],
    summary="Replace a customer's payment settings (fields left out take the deployment's defaults)",
    responses=api.responses({200: ("The settings as saved", account.SettingsOut)}, 401, 403),
)
def put_settings(customer_id: CustomerId, body: Annotated[account.SettingsIn, Body()]) -> account.SettingsOut:
    actor = _operator()
    saved = account.save(store, customer_id, body, actor)
    metrics.add_metric(name="AccountSettingsSaved", unit="Count", value=1)
    return saved.to_out()


# ---- auto top-up (docs/auto-topup.md) ----------------------------------------------------------------------------


@app.get(
    "/admin/customers/<customer_id>/auto-topup",
    tags=["admin"],
    summary="A customer's auto top-up: state, settings, the mandate in force, the last attempt",
    responses=api.responses({200: ("The auto top-up", autotopup.AutoTopupOut)}, 401, 403),
)
def get_auto_topup(customer_id: CustomerId) -> dict[str, Any]:
    _operator()
    return autotopup.view(store, customer_id, store.auto_topup(customer_id), with_mandate=True)


@app.post(
    "/admin/customers/<customer_id>/auto-topup/disable",
    tags=["admin"],
    summary="Turn a customer's auto top-up off (recorded with the operator)",
    responses=api.responses({200: ("The auto top-up, off", autotopup.AutoTopupOut)}, 401, 403, 404),
)
def disable_auto_topup(
    customer_id: CustomerId, body: Annotated[operations.SettleBody | None, Body()] = None
) -> dict[str, Any]:
    actor = _operator()
    answer = autotopup.disable(store, customer_id, "operator", actor)
    logger.info("auto top-up disabled", extra={"customer_id": customer_id, "note": body.note if body else None})
    metrics.add_metric(name="AutoTopupDisabledByOperator", unit="Count", value=1)
    return answer


lambda_handler = api.entrypoint(app, logger, tracer, metrics)
