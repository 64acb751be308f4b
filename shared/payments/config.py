"""Configuration, parsed once: table and bucket names, limits, and gateway settings.

Gateway credentials come from one Secrets Manager secret in AWS (`GATEWAY_SECRET_ARN`, a JSON object
whose keys are the lower-case names of the variables below), read through Powertools parameters with
caching; locally they come from the environment (API.md §1). Environment variables win over the
secret so the local stack and tests can override single values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from decimal import Decimal
from functools import cache
from typing import Any

SECRET_CACHE_SECONDS = 300


@dataclass(frozen=True, slots=True)
class Settings:
    payments_table: str
    exports_bucket: str
    idempotency_table: str
    max_amount: Decimal  # per payment, in major units of any currency (API.md §3 "configured maximum")
    export_url_seconds: int
    service_name: str


@cache
def settings() -> Settings:
    env = os.environ
    return Settings(
        payments_table=env.get("PAYMENTS_TABLE_NAME", "payments"),
        exports_bucket=env.get("EXPORTS_BUCKET_NAME", "payments-exports"),
        idempotency_table=env.get("IDEMPOTENCY_TABLE_NAME", "payments-idempotency"),
        max_amount=Decimal(env.get("MAX_PAYMENT_AMOUNT", "1000000")),
        export_url_seconds=int(env.get("EXPORT_URL_EXPIRY_SECONDS", "900")),
        service_name=env.get("POWERTOOLS_SERVICE_NAME", "payments"),
    )


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """API bases and credentials of every gateway. repr hides every credential."""

    stripe_api_base: str = "https://api.stripe.com"
    paypal_api_base: str = "https://api-m.paypal.com"
    razorpay_api_base: str = "https://api.razorpay.com"
    paystack_api_base: str = "https://api.paystack.co"
    nowpayments_api_base: str = "https://api.nowpayments.io"
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    paypal_client_id: str = ""
    paypal_client_secret: str = ""
    paypal_webhook_id: str = ""
    razorpay_key_id: str = ""
    razorpay_key_secret: str = ""
    razorpay_webhook_secret: str = ""
    paystack_secret_key: str = ""
    nowpayments_api_key: str = ""
    nowpayments_ipn_secret: str = ""
    # Where redirecting gateways send the payer back, and where IPNs go (the deployed API's URL).
    public_base_url: str = "http://127.0.0.1:3000"
    portal_return_url: str = "http://127.0.0.1:3000/"
    # Bank transfer instructions shown to the customer.
    bank_account_name: str = "Telecom Payments Ltd"
    bank_iban: str = "GB33BUKB20201555555555"
    bank_bic: str = "BUKBGB22"
    bank_name: str = "Example Bank"

    def __repr__(self) -> str:
        return "GatewaySettings(<redacted>)"


_FIELD_NAMES = [f.name for f in fields(GatewaySettings)]


def _secret_values() -> dict[str, Any]:
    arn = os.environ.get("GATEWAY_SECRET_ARN")
    if not arn:
        return {}
    # Imported here: only the functions that talk to gateways pay for it.
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(arn, transform="json", max_age=SECRET_CACHE_SECONDS)
    return dict(value) if isinstance(value, dict) else {}


def gateway_settings() -> GatewaySettings:
    """Current gateway settings: secret (cached by Powertools), then environment overrides."""
    values: dict[str, Any] = {k: v for k, v in _secret_values().items() if k in _FIELD_NAMES and v}
    for name in _FIELD_NAMES:
        env_value = os.environ.get(name.upper())
        if env_value:
            values[name] = env_value
    return GatewaySettings(**values)
