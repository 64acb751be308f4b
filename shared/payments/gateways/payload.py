"""What the gateways' payload models share; each gateway's models are their own module (`stripe_models`, ...).

An adapter reads a webhook body or an API answer with one call, `read_webhook` or `read_answer`, into its
gateway's models; only the adapter imports them (never `gateways.base` or the package), so the models are built
when a gateway is first used.

- `Payload`: the base of every model. Fields a gateway adds are ignored; a model is frozen.
- Field types for what several gateways do alike: `Text` (a required, non-empty string), `MaybeText` (a string
  we use when it is there: anything else, `""` included, reads as absent), and validators for objects a gateway
  may leave out or write as something else (`object_or_empty`, `object_or_none`, `objects_only`).
- A body that is not the gateway's shape is a ValueError (the webhook route answers 400), an answer that is not
  is GatewayRejected (502). Their messages name the fields and what was wrong with them, never a value.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints, ValidationError

from payments.gateways.base import GatewayRejected


class Payload(BaseModel):
    """A gateway's JSON object, read into what we use of it."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def object_or_empty(value: object) -> dict[str, Any]:
    """An object, or `{}` for anything else (absent, null, Razorpay's `[]` for empty notes)."""
    return value if isinstance(value, dict) else {}


def object_or_none(value: object) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def objects_only(value: object) -> list[dict[str, Any]]:
    """The objects of a list, in order; anything else in it is skipped, and a missing list is empty."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


Text = Annotated[str, StringConstraints(strict=True, min_length=1)]
"""A string the gateway must send, not empty."""

MaybeText = Annotated[str | None, BeforeValidator(text_or_none)]
"""A string we use when the gateway sent one; anything else (absent, null, "", a number) reads as None."""

M = TypeVar("M", bound=Payload)


def problems(error: ValidationError, most: int = 3) -> str:
    """`data.object.id: Field required; ...`: where and what, never the input (it may hold anything)."""
    found = error.errors(include_url=False, include_input=False, include_context=False)
    parts = [f"{'.'.join(str(step) for step in item['loc']) or 'body'}: {item['msg'][:120]}" for item in found[:most]]
    more = len(found) - most
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def read_webhook(model: type[M], value: object, what: str) -> M:
    """A verified webhook body (already JSON) as `model`; ValueError naming `what` if it is not that shape."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise ValueError(f"{what} is not readable: {problems(exc)}") from None


def read_answer(model: type[M], value: object, gateway: str, what: str) -> M:
    """A gateway's answer as `model`; GatewayRejected (502) if it is not that shape."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise GatewayRejected(f"{gateway} answered {what} in a form we could not read ({problems(exc)})") from None
