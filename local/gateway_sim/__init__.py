"""Local gateway simulator: Stripe, PayPal, Razorpay, Paystack and NOWPayments behind one local port.

`make dev` and the tests set each adapter's API base to `http://127.0.0.1:<port>/<provider>`. The adapters
cannot tell they are not talking to the real gateway: answers have each gateway's real shapes, status codes
and auth checks (docs/gateways.md), and every credential is `local.defaults.gateway_credential(NAME)` (each
gateway's module declares its local ones), so the simulator checks and signs with exactly what the API uses.

One module per gateway, as `payments.gateways` has one adapter each (base.py: the interface they implement):
    stripe       POST /v1/payment_methods, GET /v1/payment_methods/{id}, POST /v1/payment_intents,
                 GET /v1/payment_intents/{id}, POST /v1/refunds, GET /v1/refunds (?payment_intent=),
                 GET /v1/refunds/{id}                                      (form bodies, `Idempotency-Key`)
    paypal       POST /v1/oauth2/token, POST /v2/checkout/orders, GET /v2/checkout/orders/{id},
                 POST /v2/checkout/orders/{id}/capture, GET /v2/payments/captures/{id},
                 POST /v2/payments/captures/{id}/refund, POST /v1/notifications/verify-webhook-signature
                                                                           (`PayPal-Request-Id` replays)
    razorpay     POST /v1/orders, GET /v1/orders (?receipt=), GET /v1/orders/{id}, GET /v1/orders/{id}/payments,
                 POST /v1/payments/{id}/capture, POST /v1/payments/{id}/refund, GET /v1/payments/{id}/refunds
                                                                           (`X-Refund-Idempotency` replays)
    paystack     POST /transaction/initialize, GET /transaction/verify/{reference}, POST /refund,
                 GET /refund (?transaction=<id>)
    nowpayments  POST /v1/invoice, GET /v1/payment/{payment_id}, GET /v1/payment/ (?invoiceId=)
(all below `/<provider>`). Stripe cards act as Stripe's documented test cards (4242424242424242 / pm_card_visa
succeeds, 4000002500003155 / pm_card_authenticationRequired needs 3-D Secure, 4000000000000002 /
pm_card_chargeDeclined is declined with 402, ...). A PaymentMethod keeps brand and last 4 digits only, never
the number. Each module also has public builders of the signed webhooks the gateway sends about an object in
a given state (`stripe.payment_intent_event`, `razorpay.order_event`, `paystack.transaction_event`,
`nowpayments.payment_ipn`, their `signature()`s), which tests/integration/webhook_events.py uses.

Payer pages (pages.py; the redirect links the gateways hand out): /paypal/checkoutnow?token=,
/paystack/checkout/{code}, /nowpayments/payment/?iid=, /stripe/3ds/{pi}. "Pay" / "Cancel" settle the payment,
then link back to the portal.

Control endpoints (control.py):
    POST /_sim/settle {"provider", "ref", "outcome", "amount"?}: outcome "success"|"failure"|"refund"|
        "refund_failed"|"hold"|"authorize"|"dispute"|"dispute_won"|"dispute_lost", as each gateway has them
        (OUTCOMES in base.py; docs/api.md#running-it-locally).
        `ref` is the gateway's id (pi_..., PayPal order id, order_..., Paystack reference, NOWPayments invoice
        id); `amount` (major units, string) overrides the amount paid or refunded. Builds the gateway's real
        webhook for that object with our references echoed, signs it as the gateway does, POSTs it to
        `{api_base}/webhooks/{provider}` and answers {"delivered", "status", "response", "event"}.
        PayPal success sends CHECKOUT.ORDER.APPROVED; when the API then captures, PAYMENT.CAPTURE.COMPLETED
        follows shortly after the capture answer, as with PayPal. Paystack has no failure webhook: a failure
        only marks the transaction failed, which `verify` then reports. A refund made through a refund API is
        held as the `refund` outcome's is, and its webhooks follow shortly after its answer: Stripe charge.refunded
        and refund.created, PayPal PAYMENT.CAPTURE.REFUNDED, Razorpay refund.created and refund.processed, Paystack
        refund.pending and refund.processed (Razorpay's and Paystack's answer `pending`); "refund_failed" fails the
        latest refund, however it was made. A NOWPayments success with an `amount` below what is left is a partial
        payment (partially_paid). "dispute" sends the gateway's dispute events (Stripe created and funds_withdrawn,
        PayPal CUSTOMER.DISPUTE.CREATED, Razorpay payment.dispute.created, Paystack charge.dispute.create);
        "dispute_won"/"dispute_lost" send its decision.
    GET /_sim/objects   everything held (and every webhook delivery); POST /_sim/reset forgets it all
                        (PayPal access tokens survive, as adapters cache them).

In-process: `sim = GatewaySimulator(api_base); port = sim.start(); ...; sim.stop()` (also a context manager;
`serve(port, api_base)` returns one already started; server.py);
`sim.settle(...)` and `sim.objects()` are the control endpoints as methods.
Standalone: `python -m local.gateway_sim --port 12111 --api http://127.0.0.1:3000`.

Adding a gateway: a module with a `SimGateway` subclass (routes, state, settle, credentials), listed once in
`server.GATEWAYS`.
"""

from local.gateway_sim.base import OUTCOMES, SettleError, SimGateway
from local.gateway_sim.common import parse_nested_form
from local.gateway_sim.control import WEBHOOK_TIMEOUT_SECONDS
from local.gateway_sim.paypal import CAPTURE_WEBHOOK_DELAY_SECONDS as PAYPAL_CAPTURE_WEBHOOK_DELAY_SECONDS
from local.gateway_sim.server import GATEWAYS, GatewaySimulator, main, serve

PROVIDERS = tuple(gateway.name for gateway in GATEWAYS)

__all__ = [
    "GATEWAYS",
    "OUTCOMES",
    "PAYPAL_CAPTURE_WEBHOOK_DELAY_SECONDS",
    "PROVIDERS",
    "WEBHOOK_TIMEOUT_SECONDS",
    "GatewaySimulator",
    "SettleError",
    "SimGateway",
    "main",
    "parse_nested_form",
    "serve",
]
