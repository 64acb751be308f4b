"""Gateway adapters, one module each, imported only when a method needs one.

The read paths (list, export) never import this package's adapters, so they never pay for the
`stripe` or `requests` imports.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

from payments.config import GatewaySettings, gateway_settings

if TYPE_CHECKING:
    from payments.gateways.base import Gateway

# provider name -> "module:Class". The provider name is also the webhook route's {provider}.
ADAPTERS: dict[str, str] = {
    "stripe": "payments.gateways.stripe:StripeGateway",
    "paypal": "payments.gateways.paypal:PayPalGateway",
    "razorpay": "payments.gateways.razorpay:RazorpayGateway",
    "paystack": "payments.gateways.paystack:PaystackGateway",
    "nowpayments": "payments.gateways.nowpayments:NowPaymentsGateway",
}

# payment method -> provider
PROVIDER_OF_METHOD: dict[str, str] = {
    "credit_card": "stripe",
    "paypal": "paypal",
    "razorpay": "razorpay",
    "paystack": "paystack",
    "nowpayments": "nowpayments",
}


@cache
def _adapter(provider: str, settings: GatewaySettings) -> Gateway:
    # One adapter per settings value: keeps its HTTP session (and PayPal's OAuth token) warm,
    # and a rotated secret yields a new adapter.
    module_name, _, class_name = ADAPTERS[provider].partition(":")
    adapter: Gateway = getattr(importlib.import_module(module_name), class_name)(settings)
    return adapter


def gateway(provider: str) -> Gateway:
    """A ready adapter for `provider` with current settings. KeyError if there is no such gateway."""
    return _adapter(provider, gateway_settings())
