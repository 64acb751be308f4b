"""The registry names each gateway and payment method once (payments/registry.py); everything that also has to
know them agrees with it: template.yaml's secret and outputs, each adapter and its settings class, the local
stack's credentials and API bases, the page."""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from payments import registry
from payments.gateways import adapter_class
from payments.gateways.base import Capability, GatewaySettings
from payments.models import PaymentMethod

ROOT = Path(__file__).resolve().parents[2]


def _template() -> dict[str, Any]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return dict(yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader))  # noqa: S506 - SafeLoader subclass


def test_every_method_is_in_the_table_once_and_every_gateway_has_its_own_method() -> None:
    assert [m.method for m in registry.METHODS] == list(PaymentMethod)
    assert len({entry.method for entry in registry.GATEWAYS}) == len(registry.GATEWAYS)
    assert all(registry.BY_METHOD[entry.method].payable for entry in registry.GATEWAYS)
    assert registry.provider_of(PaymentMethod.BANK_TRANSFER) is None
    assert registry.provider_of("credit_card") == "stripe"


@pytest.mark.parametrize("entry", registry.GATEWAYS, ids=lambda e: e.provider)
def test_each_adapter_is_named_as_its_entry_and_takes_exactly_its_settings(entry: registry.GatewayEntry) -> None:
    adapter = adapter_class(entry.provider)
    assert adapter.name == entry.provider
    assert issubclass(adapter.settings_class, GatewaySettings)
    common = {f.name for f in fields(GatewaySettings)}
    assert {f.name for f in fields(adapter.settings_class)} - common == set(entry.credentials) | set(entry.options)
    assert isinstance(adapter.capabilities, frozenset) and adapter.capabilities <= set(Capability)
    assert entry.variables == tuple(f"{entry.provider.upper()}_{c.upper()}" for c in entry.credentials)


def test_the_templates_gateway_secret_holds_exactly_the_registrys_credentials() -> None:
    secret = json.loads(_template()["Resources"]["GatewaySecret"]["Properties"]["SecretString"])
    expected = {entry.secret_key(c) for entry in registry.GATEWAYS for c in entry.credentials}
    assert set(secret) == expected


def test_the_template_outputs_a_webhook_url_per_provider() -> None:
    outputs = _template()["Outputs"]
    named = {re.sub(r"WebhookUrl$", "", name).lower() for name in outputs if name.endswith("WebhookUrl")}
    assert named == set(registry.PROVIDERS)


def test_the_local_stack_has_a_credential_and_an_api_base_for_each_gateway() -> None:
    from local.defaults import API_BASE_VARS, LOCAL_GATEWAY_ENV

    assert {provider: name for provider, name in API_BASE_VARS.items()} == {
        entry.provider: entry.api_base_variable for entry in registry.GATEWAYS
    }
    assert set(LOCAL_GATEWAY_ENV) == {name for entry in registry.GATEWAYS for name in entry.variables}


def test_the_page_names_no_method_or_gateway_and_gets_them_from_the_registry() -> None:
    from local.dev import page_methods

    for name in ("app.js", "index.html"):
        page = (ROOT / "local" / "web" / name).read_text()
        labels = [entry.label for entry in registry.METHODS] + [entry.label for entry in registry.GATEWAYS]
        assert not [label for label in labels if f'"{label}"' in page or f">{label}<" in page], name
    methods = page_methods()
    assert [m["method"] for m in methods] == list(PaymentMethod)
    assert {m["provider"] for m in methods if m["provider"]} == set(registry.PROVIDERS)


@pytest.mark.parametrize("provider", registry.PROVIDERS)
def test_each_adapter_declares_the_signature_headers_it_reads(provider: str) -> None:
    """The fuzzer garbles these (scripts/fuzz.py): each must be one its adapter's webhook check reads."""
    cls = adapter_class(provider)
    source = inspect.getsource(cls)
    assert cls.signature_headers, provider
    for header in cls.signature_headers:
        # Declared once, and read at least once more by its webhook check.
        assert header == header.lower() and source.count(f'"{header}"') >= 2, header
