"""Local-only defaults for `make dev` and the tests (API.md §1). Never used in AWS.

These are fake credentials for the gateway simulator; environment variables of the same names win.
"""

from __future__ import annotations

import os

LOCAL_GATEWAY_ENV: dict[str, str] = {
    "STRIPE_SECRET_KEY": "sk_test_local",
    "STRIPE_WEBHOOK_SECRET": "whsec_local",
    "PAYPAL_CLIENT_ID": "paypal-local-client",
    "PAYPAL_CLIENT_SECRET": "paypal-local-secret",
    "PAYPAL_WEBHOOK_ID": "WH-LOCAL-WEBHOOK-ID",
    "RAZORPAY_KEY_ID": "rzp_test_local",
    "RAZORPAY_KEY_SECRET": "rzp-local-key-secret",
    "RAZORPAY_WEBHOOK_SECRET": "rzp-local-webhook-secret",
    "PAYSTACK_SECRET_KEY": "sk_test_paystack_local",
    "NOWPAYMENTS_API_KEY": "nowpayments-local-key",
    "NOWPAYMENTS_IPN_SECRET": "nowpayments-local-ipn-secret",
}

API_BASE_VARS = {
    "stripe": "STRIPE_API_BASE",
    "paypal": "PAYPAL_API_BASE",
    "razorpay": "RAZORPAY_API_BASE",
    "paystack": "PAYSTACK_API_BASE",
    "nowpayments": "NOWPAYMENTS_API_BASE",
}

DEFAULT_PORTS = {"AWS_PORT": 4566, "GATEWAY_SIM_PORT": 12111, "API_PORT": 3000}
DEFAULT_JWT_SECRET = "local-dev-secret"  # noqa: S105 - a documented local-only default
LOCAL_REGION = "us-east-1"


def gateway_credential(name: str) -> str:
    """A gateway credential as the local stack sees it: the environment, else the local default."""
    return os.environ.get(name) or LOCAL_GATEWAY_ENV[name]


def jwt_secret() -> str:
    return os.environ.get("LOCAL_JWT_SECRET") or DEFAULT_JWT_SECRET
