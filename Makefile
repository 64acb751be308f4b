# Payments service. `make help` lists the targets; `make test` is what CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.DEFAULT_GOAL := help
.PHONY: help install dev dev-reset token unlock-vouchers test lint format typecheck cfn-lint unit bench fuzz lock currencies openapi clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt shared/requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the locked dependencies

# Where `make dev` keeps DynamoDB items and S3 objects between runs (docs/local-stack.md); git-ignored.
LOCAL_STATE_DIR ?= $(CURDIR)/.local/state

dev: $(STAMP) ## Run the local stack: embedded AWS, gateway simulator, HTTP API; keeps its data (docs/api.md#running-it-locally)
	LOCAL_STATE_DIR="$(LOCAL_STATE_DIR)" $(PY) -m local.dev

dev-reset: $(STAMP) ## make dev, starting empty: forgets the kept items and objects (LOCAL_STATE=fresh)
	LOCAL_STATE_DIR="$(LOCAL_STATE_DIR)" LOCAL_STATE=fresh $(PY) -m local.dev

token: $(STAMP) ## Print a local token: make token CUSTOMER=acme GROUPS=finance
	@$(PY) -m local.token --customer "$(or $(CUSTOMER),demo)" --groups "$(or $(GROUPS),finance)"

unlock-vouchers: $(STAMP) ## Lift a voucher lockout on make dev: make unlock-vouchers CUSTOMER=demo
	@$(PY) -m local.unlock --customer "$(or $(CUSTOMER),demo)"

# Test files run on this many processes (pytest-xdist; a file's tests stay together, each process has its own
# embedded AWS and stacks on free ports). `make test TEST_WORKERS=0` runs in one process.
TEST_WORKERS ?= auto

test: $(STAMP) lint typecheck cfn-lint ## Everything CI runs: lint, types, template, tests (coverage floor 90%)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --cov=shared/payments --cov=functions --cov-report=term:skip-covered --cov-fail-under=90

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) ## mypy strict on the layer, the functions and the local stack
	$(BIN)/mypy

cfn-lint: $(STAMP) ## Lint template.yaml
	$(BIN)/cfn-lint template.yaml

unit: $(STAMP) ## Unit tests only
	$(PY) -m pytest tests/unit

bench: $(STAMP) ## Measure cold starts, latency, export and request counts; writes docs/benchmarks.md
	$(PY) -m scripts.bench $(BENCH_ARGS)

fuzz: $(STAMP) ## Schema-fuzz every route (schemathesis) of a private local stack, or of URL=http://127.0.0.1:3000
	$(PY) -m scripts.fuzz $(if $(URL),--url $(URL))

openapi: $(STAMP) ## Regenerate shared/payments/openapi.json from the handlers
	$(PY) -m scripts.gen_openapi

currencies: $(STAMP) ## Regenerate the ISO 4217 table from the iso4217 package
	$(PY) scripts/gen_currencies.py

lock: ## Re-lock dependencies after editing requirements*.in
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet pip-tools
	$(BIN)/pip-compile -q --strip-extras --allow-unsafe --no-header --no-emit-index-url --no-emit-find-links requirements.in -o shared/requirements.txt
	$(BIN)/pip-compile -q --strip-extras --allow-unsafe --no-header --no-emit-index-url --no-emit-find-links requirements-dev.in -o requirements-dev.txt

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
