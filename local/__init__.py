"""The local stack (`make dev`): embedded AWS, the API Gateway stand-in, the gateway simulator, the page."""

import sys
from pathlib import Path

# The local stack's tools (`python -m local.dev`, `local.token`, `local.gateway_sim`) read the payments layer's
# registry, as Lambda would find it: shared/ on the import path.
_LAYER = str(Path(__file__).resolve().parents[1] / "shared")
if _LAYER not in sys.path:
    sys.path.append(_LAYER)
