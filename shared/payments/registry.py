"""The payment methods and the gateways behind them, each named once (docs/architecture.md).

Everything else is derived from these two tables: the webhook route's providers, the method a provider's events
may settle, labels, the adapter to load, each gateway's settings and the names of its credentials (environment
variables locally, keys of the Secrets Manager secret in AWS), and its API base variable. A test checks that
template.yaml's secret, the simulator and the page agree with them.

Plain data and the standard library only: every function imports this, the read paths included.
A sixth gateway is one entry in GATEWAYS (and its method in PaymentMethod), one adapter module, one simulator
module, and its tests.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple


class PaymentMethod(StrEnum):
    BANK_TRANSFER = "bank_transfer"
    PAYPAL = "paypal"
    CREDIT_CARD = "credit_card"
    RAZORPAY = "razorpay"
    PAYSTACK = "paystack"
    NOWPAYMENTS = "nowpayments"
    VOUCHER = "voucher"
    PURCHASE = "purchase"
    REFUND = "refund"
    CHARGEBACK = "chargeback"  # negative: funds a gateway took back for a dispute or a reversal
    CHARGEBACK_REVERSAL = "chargeback_reversal"  # positive: those funds reinstated


class Method(NamedTuple):  # NamedTuples: a dataclass costs every function ~1 ms of cold start
    """A way money enters or leaves the balance."""

    method: PaymentMethod
    label: str  # what the portal and the CSV show
    payable: bool  # a customer can choose it on POST /payments


class GatewayEntry(NamedTuple):
    """One payment gateway: everything the service needs to know to load and configure it."""

    provider: str  # the webhook route's {provider}, and the prefix of its variables
    label: str  # the gateway's own name: Stripe, NOWPayments
    method: PaymentMethod  # the only method its events may settle
    adapter: str  # "module:Class" of its adapter, imported when first needed
    credentials: tuple[str, ...]  # its settings fields that are secrets (STRIPE_SECRET_KEY, stripe_secret_key)
    default_api_base: str
    needs_payer_email: bool = False  # the gateway will not take a payment without the payer's email (Paystack)
    options: tuple[str, ...] = ()  # its settings that are deployment choices, not secrets (environment only)

    @property
    def api_base_variable(self) -> str:
        return f"{self.provider.upper()}_API_BASE"

    def variable(self, credential: str) -> str:
        """The environment variable of a credential: STRIPE_SECRET_KEY."""
        return f"{self.provider.upper()}_{credential.upper()}"

    def secret_key(self, credential: str) -> str:
        """Its key in the Secrets Manager secret (a JSON object): stripe_secret_key."""
        return f"{self.provider}_{credential}"

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(self.variable(name) for name in self.credentials)


METHODS: tuple[Method, ...] = (
    Method(PaymentMethod.BANK_TRANSFER, "Bank transfer", payable=True),
    Method(PaymentMethod.PAYPAL, "PayPal", payable=True),
    Method(PaymentMethod.CREDIT_CARD, "Credit card", payable=True),
    Method(PaymentMethod.RAZORPAY, "Razorpay", payable=True),
    Method(PaymentMethod.PAYSTACK, "Paystack", payable=True),
    Method(PaymentMethod.NOWPAYMENTS, "Crypto (NOWPayments)", payable=True),
    Method(PaymentMethod.VOUCHER, "Voucher", payable=True),
    Method(PaymentMethod.PURCHASE, "Purchase", payable=False),
    Method(PaymentMethod.REFUND, "Refund", payable=False),
    Method(PaymentMethod.CHARGEBACK, "Chargeback", payable=False),
    Method(PaymentMethod.CHARGEBACK_REVERSAL, "Chargeback reversal", payable=False),
)

GATEWAYS: tuple[GatewayEntry, ...] = (
    GatewayEntry(
        provider="stripe",
        label="Stripe",
        method=PaymentMethod.CREDIT_CARD,
        adapter="payments.gateways.stripe:StripeGateway",
        credentials=("secret_key", "webhook_secret"),
        default_api_base="https://api.stripe.com",
    ),
    GatewayEntry(
        provider="paypal",
        label="PayPal",
        method=PaymentMethod.PAYPAL,
        adapter="payments.gateways.paypal:PayPalGateway",
        credentials=("client_id", "client_secret", "webhook_id"),
        default_api_base="https://api-m.paypal.com",
    ),
    GatewayEntry(
        provider="razorpay",
        label="Razorpay",
        method=PaymentMethod.RAZORPAY,
        adapter="payments.gateways.razorpay:RazorpayGateway",
        credentials=("key_id", "key_secret", "webhook_secret"),
        default_api_base="https://api.razorpay.com",
    ),
    GatewayEntry(
        provider="paystack",
        label="Paystack",
        method=PaymentMethod.PAYSTACK,
        adapter="payments.gateways.paystack:PaystackGateway",
        credentials=("secret_key",),
        default_api_base="https://api.paystack.co",
        needs_payer_email=True,
    ),
    GatewayEntry(
        provider="nowpayments",
        label="NOWPayments",
        method=PaymentMethod.NOWPAYMENTS,
        adapter="payments.gateways.nowpayments:NowPaymentsGateway",
        credentials=("api_key", "ipn_secret"),
        default_api_base="https://api.nowpayments.io",
        options=("partially_paid",),  # NOWPAYMENTS_PARTIALLY_PAID: credit (default) or hold
    ),
)

BY_METHOD: dict[PaymentMethod, Method] = {entry.method: entry for entry in METHODS}
GATEWAY_BY_PROVIDER: dict[str, GatewayEntry] = {entry.provider: entry for entry in GATEWAYS}
GATEWAY_BY_METHOD: dict[PaymentMethod, GatewayEntry] = {entry.method: entry for entry in GATEWAYS}
PROVIDERS: tuple[str, ...] = tuple(GATEWAY_BY_PROVIDER)
PAYABLE: tuple[PaymentMethod, ...] = tuple(entry.method for entry in METHODS if entry.payable)

# The methods a customer may choose, as an enum of their own for request schemas (POST /payments's `method`).
if TYPE_CHECKING:
    PayableMethod = PaymentMethod
else:
    PayableMethod = StrEnum("PayableMethod", {method.name: method.value for method in PAYABLE})


def label(method: PaymentMethod | str) -> str:
    return BY_METHOD[PaymentMethod(method)].label


def provider_of(method: PaymentMethod | str) -> str | None:
    """The gateway whose events may settle payments of `method`; None for a bank transfer, voucher, ..."""
    entry = GATEWAY_BY_METHOD.get(PaymentMethod(method))
    return entry.provider if entry else None
