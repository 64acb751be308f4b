"""Each function's settings (payments/config.py): every variable template.yaml sets is one the service reads, and
a value of the wrong type stops the function at cold start, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from local.template import functions, load_template
from payments.config import LIBRARY_VARIABLES, ReconcileSettings, Settings, SettingsError, load

ROOT = Path(__file__).resolve().parents[2]
READ_BY = {"ReconcileFunction": ReconcileSettings}


def names(model: type[Settings]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


@pytest.mark.parametrize(("name", "spec"), sorted(functions(load_template()).items()))
def test_every_variable_the_template_sets_is_read_by_the_function(name: str, spec) -> None:
    model = READ_BY.get(name, Settings)
    unread = set(spec.environment) - names(model) - LIBRARY_VARIABLES
    assert not unread, f"{name} is given variables nothing reads (a misspelt name?): {sorted(unread)}"


def test_a_malformed_value_is_named_and_refused() -> None:
    environment = {"MAX_PAYMENT_AMOUNT": "a lot", "EXPORT_URL_EXPIRY_SECONDS": "0", "PAYMENTS_TABLE_NAME": "t"}
    with pytest.raises(SettingsError) as refused:
        _load_with(environment)
    message = str(refused.value)
    assert "MAX_PAYMENT_AMOUNT" in message and "EXPORT_URL_EXPIRY_SECONDS" in message


def _load_with(environment: dict[str, str]) -> Settings:
    saved = dict(os.environ)
    os.environ.update(environment)
    try:
        return load(Settings)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_a_function_with_a_malformed_environment_fails_at_cold_start_not_at_its_first_request() -> None:
    code_dir = ROOT / "functions" / "list_payments"
    env = {**os.environ, "PYTHONPATH": f"{code_dir}{os.pathsep}{ROOT / 'shared'}", "MAX_PAYMENT_AMOUNT": "ten"}
    started = subprocess.run(
        [sys.executable, "-c", "import app"], cwd=code_dir, env=env, capture_output=True, text=True
    )
    assert started.returncode != 0
    assert "MAX_PAYMENT_AMOUNT" in started.stderr and "SettingsError" in started.stderr
