"""Gateway adapters, one module each, imported only when a method needs one (the registry names them).

The read paths (list, export) never import this package's adapters, so they never pay for the
`stripe` or `requests` imports.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING, Any

from payments import snapstart
from payments.config import gateway_values
from payments.registry import GATEWAY_BY_PROVIDER

if TYPE_CHECKING:
    from payments.gateways.base import Gateway


def adapter_class(provider: str) -> Any:
    """The adapter class the registry names for `provider` (its module imported now). KeyError if none."""
    module_name, _, class_name = GATEWAY_BY_PROVIDER[provider].adapter.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


@cache
def _adapter(provider: str, values: tuple[tuple[str, str], ...]) -> Gateway:
    # One adapter per settings value: keeps its HTTP session (and PayPal's OAuth token) warm, and a rotated
    # secret yields a new adapter.
    cls = adapter_class(provider)
    adapter: Gateway = cls(cls.settings_class(**dict(values)))
    return adapter


@snapstart.before_snapshot
def _forget_adapters() -> None:
    """No adapter in a SnapStart snapshot (docs/snapstart.md): each holds an HTTP session whose connections would be
    shared by every restored environment, and PayPal's an OAuth token; a restored one builds its own at first use."""
    _adapter.cache_clear()


def gateway(provider: str) -> Gateway:
    """A ready adapter for `provider` with current settings. KeyError if there is no such gateway."""
    return _adapter(provider, tuple(sorted(gateway_values(GATEWAY_BY_PROVIDER[provider]).items())))
