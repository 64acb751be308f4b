"""Configuration, parsed once: table and bucket names, limits, the site, and each gateway's settings.

Gateway credentials come from one Secrets Manager secret in AWS (`GATEWAY_SECRET_ARN`, a JSON object whose keys
the registry names: `stripe_secret_key`, ...), read through Powertools parameters with caching (`secret`, which the
cursor key uses too); locally they come from the environment (`STRIPE_SECRET_KEY`, ...). Environment variables win
over the secret so the local stack and tests can override single values. Each gateway's settings class lives in its
adapter module. Under SnapStart the cached secrets are dropped before the snapshot (docs/snapstart.md), so each
restored environment reads them afresh.
"""

from __future__ import annotations

import os
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from payments import snapstart

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from payments.function_settings import ExportSettings as ExportSettings
    from payments.function_settings import NotifySettings as NotifySettings
    from payments.function_settings import PublishSettings as PublishSettings
    from payments.function_settings import ReconcileSettings as ReconcileSettings
    from payments.function_settings import WebhookSettings as WebhookSettings
    from payments.registry import GatewayEntry

SECRET_CACHE_SECONDS = 300


# Variables of template.yaml's Globals that libraries read themselves, not this service.
LIBRARY_VARIABLES = frozenset({"POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL", "PYDANTIC_DISABLE_PLUGINS"})


class Settings(BaseModel):
    """Every function's environment (template.yaml's Globals), read and checked once, at cold start: a value of
    the wrong type stops the function before its first request, naming the variable (a test checks that every
    variable the template sets is one of these, so a misspelt name cannot fall back to a default unseen)."""

    # defer_build: a model's validator is built at its first use, so a function pays only for the settings it reads.
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, defer_build=True)

    payments_table: str = Field("payments", alias="PAYMENTS_TABLE_NAME", min_length=1)
    idempotency_table: str = Field("payments-idempotency", alias="IDEMPOTENCY_TABLE_NAME", min_length=1)
    exports_bucket: str = Field("payments-exports", alias="EXPORTS_BUCKET_NAME", min_length=1)
    gateway_secret_arn: str | None = Field(None, alias="GATEWAY_SECRET_ARN")
    cursor_secret_arn: str | None = Field(None, alias="CURSOR_SECRET_ARN")
    cursor_secret: SecretStr | None = Field(None, alias="CURSOR_SECRET")  # the local stack's and the tests' key
    # Per payment, in major units of any currency: the "configured maximum" of docs/api.md.
    max_amount: Decimal = Field(Decimal("1000000"), alias="MAX_PAYMENT_AMOUNT", gt=0)
    export_url_seconds: int = Field(900, alias="EXPORT_URL_EXPIRY_SECONDS", ge=1, le=7 * 24 * 3600)
    export_retention_days: int = Field(7, alias="EXPORT_RETENTION_DAYS", ge=1)
    service_name: str = Field("payments", alias="POWERTOOLS_SERVICE_NAME")
    public_base_url: str = Field("http://127.0.0.1:3000", alias="PUBLIC_BASE_URL")
    portal_return_url: str = Field("http://127.0.0.1:3000/", alias="PORTAL_RETURN_URL")
    # A gateway option (registry `options`), checked here at cold start; its adapter's settings read it.
    nowpayments_partially_paid: Literal["credit", "hold"] = Field("credit", alias="NOWPAYMENTS_PARTIALLY_PAID")
    # The account settings' deployment-wide defaults (docs/account-settings.md), checked by `payments.account`.
    account_currency: str = Field("", alias="ACCOUNT_CURRENCY")
    allowed_currencies: str = Field("", alias="ALLOWED_CURRENCIES")  # comma-separated; empty: any
    min_payment: str = Field("", alias="MIN_PAYMENT")
    max_payment: str = Field("", alias="MAX_PAYMENT")
    max_balance: str = Field("", alias="MAX_BALANCE")
    disabled_methods: str = Field("", alias="DISABLED_METHODS")  # comma-separated
    method_surcharges: str = Field("", alias="METHOD_SURCHARGES")  # JSON
    email_receipts: bool = Field(False, alias="EMAIL_RECEIPTS")
    credit_limit: str = Field("", alias="CREDIT_LIMIT")
    provider_name: str = Field("", alias="PROVIDER_NAME")
    provider_address: str = Field("", alias="PROVIDER_ADDRESS")  # "\\n" separates lines


# One function's own settings (ReconcileSettings, ExportSettings, ...) live in `payments.function_settings`, imported
# when a function first asks for one: each class costs every function that does not use it about 0.6 ms of cold
# start to create.
_FUNCTION_SETTINGS = frozenset(
    {"ReconcileSettings", "PublishSettings", "NotifySettings", "WebhookSettings", "ExportSettings"}
)


def __getattr__(name: str) -> Any:
    if name in _FUNCTION_SETTINGS:
        from payments import function_settings

        return getattr(function_settings, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SettingsError(RuntimeError):
    """The environment is not what the function needs: raised at cold start, naming each variable."""


T = TypeVar("T", bound=Settings)


def load(model: type[T]) -> T:
    """`model` from the environment, or SettingsError naming every variable that is wrong."""
    try:
        return model.model_validate(dict(os.environ))
    except ValidationError as exc:
        wrong = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"the function's environment is not usable: {wrong}") from None


@cache
def settings() -> Settings:
    return load(Settings)


class SiteSettings(NamedTuple):  # a NamedTuple: a dataclass costs every function ~1 ms of cold start
    """Where payers come back to and IPNs go (the deployed API's URL), and the bank details of transfers."""

    public_base_url: str = "http://127.0.0.1:3000"
    portal_return_url: str = "http://127.0.0.1:3000/"
    bank_account_name: str = "Telecom Payments Ltd"
    bank_iban: str = "GB33BUKB20201555555555"
    bank_bic: str = "BUKBGB22"
    bank_name: str = "Example Bank"


@cache
def _secrets() -> SecretsProvider:
    """Powertools' Secrets Manager reader and its cache; the connections of its client are closed before a snapshot.
    Imported at first use: only the functions that read a secret pay for it."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    provider = SecretsProvider()
    snapstart.closes_connections(provider.client)
    return provider


def secret(arn: str, *, max_age: int, transform: Literal["json"] | None = None) -> Any:
    """The secret `arn`'s value (parsed as JSON with transform="json"), read again once `max_age` seconds old."""
    return _secrets().get(arn, max_age=max_age, transform=transform)


@snapstart.before_snapshot
def _forget_secrets() -> None:
    """No secret in the snapshot: a restored environment, however long after, reads each one again."""
    if _secrets.cache_info().currsize:
        _secrets().clear_cache()  # type: ignore[no-untyped-call]  # Powertools leaves it untyped


def _secret_values() -> dict[str, Any]:
    arn = settings().gateway_secret_arn
    if not arn:
        return {}
    value = secret(arn, transform="json", max_age=SECRET_CACHE_SECONDS)
    return dict(value) if isinstance(value, dict) else {}


def site_settings() -> SiteSettings:
    """The site's settings: the environment (one variable per field, upper case), else the defaults."""
    values = {name: os.environ[name.upper()] for name in SiteSettings._fields if os.environ.get(name.upper())}
    return SiteSettings(**values)  # read on every call: tests and the local stack change them at run time


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
    for option in entry.options:
        if os.environ.get(entry.variable(option)):
            values[option] = os.environ[entry.variable(option)]
    return values
