"""Each function's settings (payments/config.py): every variable template.yaml sets is one the service reads, and
a value of the wrong type stops the function at cold start, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from local.template import functions, load_template
from payments.config import (
    LIBRARY_VARIABLES,
    ExportSettings,
    NotifySettings,
    PublishSettings,
    ReconcileSettings,
    Settings,
    SettingsError,
    WebhookSettings,
    load,
)

ROOT = Path(__file__).resolve().parents[2]
READ_BY: dict[str, type[Settings]] = {
    "ReconcileFunction": ReconcileSettings,
    "ExportCsvFunction": ExportSettings,
    "PublishEventsFunction": PublishSettings,
    "NotifyFunction": NotifySettings,
    "WebhookEndpointsFunction": WebhookSettings,
    "DeliverWebhooksFunction": WebhookSettings,
}


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


def test_the_export_settings_are_checked_too() -> None:
    environment = {"EXPORT_PAGE_SIZE": "5000", "EXPORT_ASYNC_MODE": "lamda", "EXPORT_ASYNC_ROW_THRESHOLD": "-1"}
    with pytest.raises(SettingsError) as refused:
        _load_with(environment, ExportSettings)
    message = str(refused.value)
    assert all(name in message for name in environment), message


@pytest.mark.parametrize(
    ("environment", "mode"),
    [
        ({"EXPORT_ASYNC_MODE": "", "AWS_LAMBDA_FUNCTION_NAME": "payments-export"}, "lambda"),
        ({"EXPORT_ASYNC_MODE": "", "AWS_LAMBDA_FUNCTION_NAME": ""}, "thread"),
        ({"EXPORT_ASYNC_MODE": "thread", "AWS_LAMBDA_FUNCTION_NAME": "payments-export"}, "thread"),
    ],
)
def test_an_export_runs_in_the_background_as_lambda_in_aws_and_as_a_thread_locally(
    environment: dict[str, str], mode: str
) -> None:
    loaded = _load_with(environment, ExportSettings)
    assert isinstance(loaded, ExportSettings)
    assert (loaded.async_mode, loaded.page_size, loaded.async_row_threshold) == (mode, 500, 20000)


def _load_with(environment: dict[str, str], model: type[Settings] = Settings) -> Settings:
    saved = dict(os.environ)
    os.environ.update(environment)
    for name in ("EXPORT_PAGE_SIZE", "EXPORT_ASYNC_ROW_THRESHOLD"):
        if name not in environment:
            os.environ.pop(name, None)
    try:
        return load(model)
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
