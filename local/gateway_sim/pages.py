"""HTML payer pages of the gateway simulator (local/gateway_sim/).

They stand in for PayPal's approve page, Paystack's checkout page, NOWPayments' invoice page and Stripe's
3-D Secure challenge: the amount, a "Pay" and a "Cancel" button that POST to the simulator's `/_sim/pay`
(which settles the payment exactly as `/_sim/settle` does), then a result page linking back to the portal.
Plain HTML, no scripts; every value shown is escaped.
"""

from __future__ import annotations

from html import escape

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem;color:#222}"
    ".box{border:1px solid #ccc;border-radius:8px;padding:1.5rem}.amount{font-size:2rem;margin:.5rem 0}"
    "button{font-size:1rem;padding:.6rem 1.4rem;margin-right:.5rem;border-radius:6px;border:1px solid #888}"
    "button.pay{background:#1a7f37;color:#fff;border-color:#1a7f37}.muted{color:#666;font-size:.9rem}"
)


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><div class=box>{body}</div>"
        "<p class=muted>Local gateway simulator: no real money moves.</p></body></html>"
    )


def checkout_page(
    *, gateway: str, provider: str, ref: str, amount: str, currency: str, description: str | None, payable: bool
) -> str:
    """The payer's view of one payment: amount, description, and Pay / Cancel (if still payable)."""
    head = (
        f"<h1>{escape(gateway)}</h1><p class=muted>Reference {escape(ref)}</p>"
        f"<p class=amount>{escape(amount)} {escape(currency.upper())}</p>"
    )
    if description:
        head += f"<p>{escape(description)}</p>"
    if not payable:
        return _page(gateway, head + "<p>This payment is already settled.</p>")
    form = (
        '<form method="post" action="/_sim/pay">'
        f'<input type="hidden" name="provider" value="{escape(provider)}">'
        f'<input type="hidden" name="ref" value="{escape(ref)}">'
        '<button class=pay name="outcome" value="success">Pay</button>'
        '<button name="outcome" value="failure">Cancel</button></form>'
    )
    return _page(gateway, head + form)


def result_page(*, gateway: str, title: str, detail: str, back_url: str | None) -> str:
    """What happened after Pay / Cancel, with a link back to the merchant if the payment named one."""
    link = f'<p><a href="{escape(back_url)}">Return to the merchant</a></p>' if back_url else ""
    return _page(gateway, f"<h1>{escape(title)}</h1><p>{escape(detail)}</p>{link}")


def missing_page(*, gateway: str, what: str) -> str:
    return _page(gateway, f"<h1>Not found</h1><p>{escape(what)}</p>")
