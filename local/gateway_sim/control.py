"""The simulator's own control API (no gateway has it): settle an object and deliver its webhook, list or
forget everything held.

    POST /_sim/settle {"provider", "ref", "outcome": "success"|"failure"|"refund"|"refund_failed"|"hold", "amount"?}
        `ref` is the gateway's id (pi_..., PayPal order id, order_..., Paystack reference, NOWPayments invoice
        id); `amount` (major units, string) overrides the amount paid or refunded. Builds the gateway's real
        webhook for that object with our references echoed, signs it as the gateway does, POSTs it to
        `{api_base}/webhooks/{provider}` and answers {"delivered", "status", "response", "event"}.
    POST /_sim/pay      the payer pages' Pay / Cancel buttons: settles, then links back to the portal
    GET /_sim/objects   everything held (and every webhook delivery)
    POST /_sim/reset    forgets it all (PayPal access tokens survive, as adapters cache them)
"""

from __future__ import annotations

import copy
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import requests

from local.gateway_sim import pages
from local.gateway_sim.base import OUTCOMES, Answer, Refusal, Request, SettleError, SimGateway, Webhook
from local.gateway_sim.common import wire

WEBHOOK_TIMEOUT_SECONDS = 30


class Control:
    """settle() and the /_sim/* endpoints over the gateways, and the record of every webhook delivered."""

    def __init__(
        self, gateways: Mapping[str, SimGateway], lock: threading.RLock, api_base: str, *, verbose: bool
    ) -> None:
        self._gateways = gateways
        self._lock = lock  # the simulator's: gateway state changes only under it
        self.api_base = api_base.rstrip("/")  # where webhooks go: {api_base}/webhooks/{provider}
        self.verbose = verbose
        self._delivered = threading.Condition()
        self._deliveries: list[dict[str, Any]] = []

    def routes(self) -> list[tuple[str, str, Callable[[Request], Answer]]]:
        """(method, path, handler); they run outside the lock, as settling delivers outside it."""
        return [
            ("POST", "/_sim/settle", self._settle),
            ("POST", "/_sim/pay", self._pay),
            ("GET", "/_sim/objects", lambda _request: Answer(200, self.objects())),
            ("POST", "/_sim/reset", self._reset),
        ]

    # -- state ------------------------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            for gateway in self._gateways.values():
                gateway.reset()
        with self._delivered:
            self._deliveries = []

    def objects(self) -> dict[str, Any]:
        with self._lock:
            listing: dict[str, Any] = wire(  # wire() copies every container
                {name: gateway.listing() for name, gateway in self._gateways.items()}
            )
        with self._delivered:
            listing["deliveries"] = copy.deepcopy(self._deliveries)
        return listing

    def deliveries(self) -> list[dict[str, Any]]:
        with self._delivered:
            return copy.deepcopy(self._deliveries)

    def wait_for_delivery(self, event_type: str, timeout: float = 10.0) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next((d for d in self._deliveries if d["event_type"] == event_type), None)

        with self._delivered:
            if not self._delivered.wait_for(lambda: find() is not None, timeout):
                raise TimeoutError(f"no {event_type} webhook was delivered within {timeout} s")
            return copy.deepcopy(find() or {})

    # -- settling and delivering ------------------------------------------------------------------------------

    def settle(self, provider: str, ref: str, outcome: str, amount: str | None = None) -> dict[str, Any]:
        gateway = self._gateways.get(provider)
        if gateway is None:
            raise SettleError(404, f"unknown provider {provider!r}; one of {', '.join(self._gateways)}")
        if outcome not in OUTCOMES:
            raise SettleError(400, f"outcome must be one of {', '.join(OUTCOMES)}")
        if outcome not in gateway.outcomes:
            raise SettleError(409, f"{provider} has no {outcome} outcome; it has {', '.join(gateway.outcomes)}")
        if amount is not None and not isinstance(amount, str):
            raise SettleError(400, 'amount must be a decimal string in major units, such as "12.50"')
        with self._lock:  # build under the lock; deliver outside it, as the API may call back (PayPal capture)
            webhook = gateway.settle(ref, outcome, amount)
        if webhook is None:
            return {
                "delivered": False,
                "status": None,
                "response": None,
                "event": None,
                "note": gateway.no_webhook_note,
            }
        return self.deliver(webhook)

    def deliver(self, webhook: Webhook) -> dict[str, Any]:
        url = f"{self.api_base}/webhooks/{webhook.provider}"
        result: dict[str, Any]
        try:
            response = requests.post(url, data=webhook.body, headers=webhook.headers, timeout=WEBHOOK_TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            result = {"delivered": False, "status": None, "response": None, "error": f"{type(exc).__name__}: {exc}"}
        else:
            try:
                answer: Any = response.json()
            except ValueError:
                answer = response.text
            result = {
                "delivered": 200 <= response.status_code < 300,
                "status": response.status_code,
                "response": answer,
            }
        result["event"] = webhook.event
        record = {
            "provider": webhook.provider,
            "event_type": webhook.event.get(self._gateways[webhook.provider].event_type_field),
            "url": url,
            "headers": dict(webhook.headers),
            "body": webhook.body.decode("utf-8"),
            **result,
        }
        with self._delivered:
            self._deliveries.append(record)
            self._delivered.notify_all()
        if self.verbose:
            print(f"webhook {webhook.provider} {record['event_type']} -> {url}: {result['status']}", file=sys.stderr)
        return result

    # -- endpoints --------------------------------------------------------------------------------------------

    def _settle(self, request: Request) -> Answer:
        body = request.json_body(lambda message: Refusal(400, {"message": message}))
        for name in ("provider", "ref", "outcome"):
            if not isinstance(body.get(name), str) or not body[name]:
                return Answer(400, {"message": f"{name} is required (a string)"})
        amount = body.get("amount")
        try:
            result = self.settle(
                body["provider"], body["ref"], body["outcome"], None if amount is None else str(amount)
            )
        except SettleError as exc:
            return Answer(exc.status, {"message": exc.message})
        return Answer(200 if result["delivered"] or result["event"] is None else 502, result)

    def _pay(self, request: Request) -> Answer:
        form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
        provider, ref, outcome = form.get("provider", ""), form.get("ref", ""), form.get("outcome", "")
        gateway = self._gateways.get(provider)
        label = gateway.label if gateway else "Gateway simulator"
        try:
            result = self.settle(provider, ref, outcome)
        except SettleError as exc:
            return Answer(
                exc.status, pages.result_page(gateway=label, title="Not settled", detail=exc.message, back_url=None)
            )
        assert gateway is not None  # settle() refused any other provider
        if result["event"] is None:
            detail = gateway.no_webhook_detail
        else:
            event_type = result["event"].get(gateway.event_type_field)
            answered = f"answered {result['status']}" if result["status"] is not None else "could not be reached"
            detail = f"The simulator sent {event_type} to the API, which {answered}."
        title = "Payment approved" if outcome == "success" else "Payment cancelled"
        with self._lock:
            back_url = gateway.return_url(ref, outcome)
        return Answer(200, pages.result_page(gateway=label, title=title, detail=detail, back_url=back_url))

    def _reset(self, _request: Request) -> Answer:
        self.reset()
        return Answer(200, {"reset": True})
