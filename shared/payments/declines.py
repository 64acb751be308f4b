"""What a failed or cancelled payment means to the person who paid: one sentence per reason a gateway gives.

Gateways report why a payment failed in codes: Stripe's decline codes (`card_declined: insufficient_funds`),
PayPal's issues and capture reasons (`INSTRUMENT_DECLINED`, `PAYER_CANNOT_PAY`), Razorpay's `error_reason`
(`payment_failed`, `card_declined`), Paystack's `gateway_response` ("Insufficient Funds", "Do not honor").
The payment keeps the code (`failure_reason`, for support and operators); `payer_message` gives the sentence
the portal shows. Codes are matched as words, case and separators aside, most specific first, so
`card_declined: insufficient_funds` reads as insufficient funds, not as a generic decline.
"""

from __future__ import annotations

import re

_TRY_ANOTHER = "Try another card or payment method, or contact your bank."

# The first row with a code found in the reason wins: specific reasons first, the generic decline last.
_SENTENCES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("insufficient_funds",),
        "There is not enough money on this card or account. Try another one, or a smaller amount.",
    ),
    (
        ("lost_card", "stolen_card", "pickup_card", "restricted_card", "card_not_supported", "invalid_account"),
        "This card cannot be used for payments. Please use another card or payment method.",
    ),
    (("expired_card", "card_expired"), "The card has expired. Check the expiry date, or use another card."),
    (("incorrect_cvc", "invalid_cvc"), "The security code (CVC) is not right. Check it and try again."),
    (("incorrect_number", "invalid_number", "invalid_card"), "The card number is not right. Check it and try again."),
    (("invalid_expiry_month", "invalid_expiry_year"), "The expiry date is not right. Check it and try again."),
    (
        ("authentication_required", "authentication_failed", "card_authentication_failed", "3ds_failed"),
        "Your bank asked you to confirm this payment, and it was not confirmed. Try again and complete the check.",
    ),
    (
        ("card_velocity_exceeded", "withdrawal_count_limit_exceeded", "transaction_limit_exceeded", "limit_exceeded"),
        "The card has reached a spending limit. Try another card, or try again later.",
    ),
    (("currency_not_supported",), "This card cannot pay in this currency. Try another card or payment method."),
    (("fraudulent", "merchant_blacklist", "risk_check_failed"), "The payment was declined. " + _TRY_ANOTHER),
    (
        ("payer_cannot_pay", "payer_account_restricted", "payer_account_locked_or_closed"),
        "PayPal could not take this payment from your account. Choose another way to pay in PayPal, or another "
        "payment method.",
    ),
    (
        ("processing_error", "issuer_not_available", "try_again_later", "server_error", "gateway_error"),
        "The payment could not be processed just now. Please try again in a moment.",
    ),
    (
        ("abandoned", "expired", "payment_timed_out", "order_voided", "voided", "timeout"),
        "The payment was not finished in time, so it was cancelled. You can start a new one.",
    ),
    (
        ("requested_by_customer", "payment_cancelled", "cancelled", "canceled", "payer did not approve"),
        "The payment was cancelled before it was paid.",
    ),
    (
        (
            "generic_decline",
            "do_not_honor",
            "do_not_honour",
            "card_declined",
            "instrument_declined",
            "declined",
            "denied",
            "transaction_refused",
            "transaction_not_allowed",
            "payment_failed",
            "failed",
            "bad_request_error",
        ),
        "Your bank or the payment provider declined the payment. " + _TRY_ANOTHER,
    ),
)
NO_ANSWER = "no answer from the gateway before the final timeout"
_NO_ANSWER_SENTENCE = (
    "The payment provider never confirmed this payment, so it was cancelled. If money left your account, "
    "contact support with this payment's id."
)
_DEFAULT = "The payment did not go through."


def _words(text: str) -> str:
    """`Insufficient Funds` and `card_declined: INSUFFICIENT-FUNDS` as `_card_declined_insufficient_funds_`:
    lower-case words joined and fenced by `_`, so a code matches whole words only."""
    return "_" + "_".join(re.findall(r"[a-z0-9]+", text.lower())) + "_"


_CODES = tuple((tuple(_words(code) for code in codes), sentence) for codes, sentence in _SENTENCES)


def payer_message(reason: str | None) -> str | None:
    """The sentence for a payment that failed or was cancelled for `reason` (None: no reason, no sentence)."""
    if not reason:
        return None
    if reason == NO_ANSWER:
        return _NO_ANSWER_SENTENCE
    words = _words(reason)
    for codes, sentence in _CODES:
        if any(code in words for code in codes):
            return sentence
    return _DEFAULT
