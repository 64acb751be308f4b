"""Local-only defaults for `make dev` and the tests (docs/api.md#running-it-locally). Never used in AWS.

The gateway credentials are the simulator's fake ones (local/gateway_sim/<gateway>.py declares them);
environment variables of the same names win.
"""

from __future__ import annotations

import os

from local.gateway_sim import GATEWAYS
from local.gateway_sim.common import credential

# Each simulated gateway's module declares its adapter's local credentials and API base variable.
LOCAL_GATEWAY_ENV: dict[str, str] = {name: value for gateway in GATEWAYS for name, value in gateway.credentials.items()}
API_BASE_VARS = {gateway.name: gateway.api_base_var for gateway in GATEWAYS}

DEFAULT_PORTS = {"AWS_PORT": 4566, "GATEWAY_SIM_PORT": 12111, "API_PORT": 3000}
DEFAULT_JWT_SECRET = "local-dev-secret"  # noqa: S105 - a documented local-only default
LOCAL_REGION = "us-east-1"


def gateway_credential(name: str) -> str:
    """A gateway credential as the local stack sees it: the environment, else the local default."""
    return credential(LOCAL_GATEWAY_ENV, name)


def jwt_secret() -> str:
    return os.environ.get("LOCAL_JWT_SECRET") or DEFAULT_JWT_SECRET
