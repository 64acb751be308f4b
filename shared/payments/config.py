"""Configuration, parsed once: table and bucket names, limits, the site, and each gateway's settings.

Gateway credentials come from one Secrets Manager secret in AWS (`GATEWAY_SECRET_ARN`, a JSON object whose keys
the registry names: `stripe_secret_key`, ...), read through Powertools parameters with caching; locally they come
from the environment (`STRIPE_SECRET_KEY`, ...). Environment variables win over the secret so the local stack and
tests can override single values. Each gateway's settings class lives in its adapter module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from payments.registry import GatewayEntry

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
class SiteSettings:
    """Where payers come back to and IPNs go (the deployed API's URL), and the bank details of transfers."""

    public_base_url: str = "http://127.0.0.1:3000"
    portal_return_url: str = "http://127.0.0.1:3000/"
    bank_account_name: str = "Telecom Payments Ltd"
    bank_iban: str = "GB33BUKB20201555555555"
    bank_bic: str = "BUKBGB22"
    bank_name: str = "Example Bank"


def _secret_values() -> dict[str, Any]:
    arn = os.environ.get("GATEWAY_SECRET_ARN")
    if not arn:
        return {}
    # Imported here: only the functions that talk to gateways pay for it.
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(arn, transform="json", max_age=SECRET_CACHE_SECONDS)
    return dict(value) if isinstance(value, dict) else {}


def site_settings() -> SiteSettings:
    """The site's settings: the environment (one variable per field, upper case), else the defaults."""
    values = {f.name: os.environ[f.name.upper()] for f in fields(SiteSettings) if os.environ.get(f.name.upper())}
    return SiteSettings(**values)


def gateway_values(entry: GatewayEntry) -> dict[str, str]:
    """A gateway's settings as its adapter's settings class takes them: its API base and its credentials from
    the secret (cached by Powertools), each overridden by its environment variable (STRIPE_SECRET_KEY, ...)."""
    secret = _secret_values()
    site = site_settings()
    values = {
        "api_base": os.environ.get(entry.api_base_variable) or entry.default_api_base,
        "public_base_url": site.public_base_url,
        "portal_return_url": site.portal_return_url,
    }
    for credential in entry.credentials:
        stored = str(secret.get(entry.secret_key(credential)) or "")
        values[credential] = os.environ.get(entry.variable(credential)) or stored
    return values
