"""The interface every simulated gateway implements (one module each, as `payments.gateways` has one adapter
each), and the requests, answers, webhooks and errors they trade in.

A gateway class names itself (`name`, the path prefix `/<name>` and the provider in `/webhooks/<name>`), declares
the local fake credentials its adapter is given (`credentials`, read by local/defaults.py) and the variable that
points its adapter here (`api_base_var`), serves `routes()` below `/<name>`, keeps its state (`reset()`), and
`settle()`s one of its objects into the webhook the real gateway would send. The server lists the classes once
(`server.GATEWAYS`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from local.gateway_sim.common import credential, to_minor

OUTCOMES = (
    "success",
    "failure",
    "refund",
    "refund_failed",
    "hold",
    "authorize",
    "dispute",
    "dispute_won",
    "dispute_lost",
)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json_body(self, refuse: Callable[[str], Refusal]) -> dict[str, Any]:
        """The JSON object sent (floats kept exact as Decimal); `refuse(message)` builds the gateway's error."""
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError) as exc:
            raise refuse(f"Malformed JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise refuse("The request body must be a JSON object")
        return value


@dataclass
class Answer:
    status: int
    body: Any  # dict or list -> JSON; str -> HTML
    headers: dict[str, str] = field(default_factory=dict)


class Refusal(Exception):
    """An error answer in the gateway's own shape, raised from inside a handler."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.answer = Answer(status, body, headers or {})


class SettleError(Exception):
    """`/_sim/settle` cannot do what was asked: unknown object (404), bad input (400), impossible now (409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Webhook:
    provider: str
    event: dict[str, Any]
    body: bytes
    headers: dict[str, str]


Handler = Callable[[Request], Answer]
Route = tuple[str, str, Handler]  # (method, path pattern below /<name>, handler)


@dataclass(frozen=True)
class Host:
    """What a gateway needs from the simulator it runs in."""

    base_url: Callable[[], str]  # known once the server listens
    secret: bytes  # private material of this run (PayPal's stand-in signatures, card fingerprints)
    deliver: Callable[[Webhook], object]  # sends a webhook the gateway emits on its own (PayPal's capture)
    # Sends webhooks a moment later, in order (the ones a gateway sends after its answer); the simulator cancels
    # what is still due when it stops, so none outlives it (a test's mocks would see it).
    later: Callable[[float, Sequence[Webhook]], None]


class SimGateway:
    """One simulated gateway. Every handler and `settle()` runs under the simulator's lock."""

    name: ClassVar[str]  # the path prefix and the provider of /webhooks/{provider}
    label: ClassVar[str]  # as the payer pages name it
    api_base_var: ClassVar[str]  # the adapter's API base variable (docs/api.md#configuration)
    credentials: ClassVar[Mapping[str, str]]  # the local fake credentials, by environment variable
    event_type_field: ClassVar[str]  # where the gateway's webhook names its event type
    kinds: ClassVar[tuple[str, ...]]  # the kinds of object held, as GET /_sim/objects lists them
    # Said by /_sim/settle and the payer page when an outcome sends no webhook (settle() returned None).
    # The outcomes settle() plays: "refund_failed" fails the latest refund, where the gateway reports that;
    # "hold" leaves the payment pending with the gateway's reason (PayPal's pending capture, Stripe processing);
    # "authorize" leaves it authorized, for the merchant to capture (Razorpay); "dispute" opens a dispute of a paid
    # payment and "dispute_won" / "dispute_lost" decide it (Stripe, PayPal, Razorpay, Paystack), each sending the
    # gateway's events about it (the first as settle()'s webhook, the rest moments later, in order).
    outcomes: ClassVar[tuple[str, ...]] = ("success", "failure", "refund")
    no_webhook_note: ClassVar[str] = "this outcome sends no webhook"
    no_webhook_detail: ClassVar[str] = "The gateway sends no webhook for this."

    def __init__(self, host: Host) -> None:
        self._host = host
        self.reset()

    def __repr__(self) -> str:
        # Shows everything held, so a repr of the simulator does too (tests look for card numbers in it).
        return f"{type(self).__name__}({vars(self)!r})"

    def reset(self) -> None:
        """Forget every object; subclasses forget their other state too."""
        self.objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in self.kinds}
        # What the simulator knows about an object that the gateway would not show, by object id.
        self.extra: dict[str, dict[str, Any]] = {}

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def settle(self, ref: str, outcome: str, amount: str | None) -> Webhook | None:
        """Settle object `ref` (`outcome` one of OUTCOMES; `amount` in major units overrides what is paid or
        refunded) and answer the webhook the gateway sends for it, or None if it sends none."""
        raise NotImplementedError

    def return_url(self, ref: str, outcome: str) -> str | None:
        """Where the gateway sends the payer back to the portal after Pay / Cancel on its page."""
        return None

    def not_found(self, method: str, rest: str) -> Answer | None:
        """The gateway's own answer for a path below /<name> it does not serve (None: the simulator's)."""
        return None

    def listing(self) -> dict[str, list[dict[str, Any]]]:
        return {kind: list(items.values()) for kind, items in self.objects.items()}

    # -- helpers ----------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self._host.base_url()

    def credential(self, name: str) -> str:
        return credential(self.credentials, name)

    def store(self, kind: str, key: str, obj: dict[str, Any], **extra: Any) -> dict[str, Any]:
        self.objects[kind][key] = obj
        self.extra[key] = extra
        return obj

    def find(self, kind: str, key: str) -> dict[str, Any] | None:
        return self.objects[kind].get(key)


def settle_decimal(amount: str) -> Decimal:
    try:
        value = Decimal(amount.strip())
    except InvalidOperation:
        raise SettleError(400, f"amount {amount!r} is not a decimal number") from None
    if not value.is_finite() or value <= 0:
        raise SettleError(400, "amount must be positive")
    return value


def settle_minor(amount: str | None, currency: str, places: int | None = None) -> int:
    try:
        return to_minor(settle_decimal(amount or ""), currency, places)
    except ValueError as exc:
        raise SettleError(400, str(exc)) from None
