"""`python -m local.gateway_sim --port 12111 --api http://127.0.0.1:3000`: the simulator on its own."""

import sys

from local.gateway_sim.server import main

sys.exit(main())
