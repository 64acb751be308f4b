"""Lambda SnapStart (docs/snapstart.md): what one execution environment must not share with the others restored
from the same snapshot, refreshed by the code that holds it.

With SnapStart on, Lambda runs a function's init once, when it publishes a version, snapshots the memory, and
resumes every later execution environment of that version from the snapshot: many at once, and for days. What
init left in memory is then in all of them: open connections (one TCP and TLS state, meant for one peer and
one sender), secrets read at init (as old as the snapshot), the state of `random` (the same "random" numbers in
every environment). So each owner of such a thing registers here how to refresh it:

- `closes_connections(client)`, for each boto3 client the layer builds: its connections are closed before the
  snapshot. The client itself stays, as building it is a cost of init SnapStart is there to save; it opens a new
  connection at its first request after a restore, and refreshes its own credentials (botocore does).
- `before_snapshot(reset)`: run after init, before Lambda takes the snapshot (drop a cache, close a session).
- `after_restore(reset)`: run in each restored environment before its first request.

Registering again under the same module and name replaces the earlier function (a module imported twice
registers once). This module reseeds `random` after each restore itself; `secrets`, `uuid.uuid4`,
`random.SystemRandom` and `os.urandom` keep no state in the process (each call reads the kernel's generator).

The runtime's hooks come from `snapshot_restore_py`, which only Lambda's Python runtimes have. They are
registered when this module is first imported, and every function imports it through `payments.config`, so no
handler registers anything. Elsewhere nothing runs unless called: `run_before_snapshot()` and
`run_after_restore()` are what the hooks call, and what tests call to simulate a snapshot and its restores.
Stdlib only: the pure modules and the read paths may import it for free.
"""

from __future__ import annotations

import importlib
import random
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

Reset = Callable[[], None]
C = TypeVar("C")

_before: dict[tuple[str, str], Reset] = {}  # (module, name) -> reset, in registration order
_after: dict[tuple[str, str], Reset] = {}
_clients: weakref.WeakSet[Any] = weakref.WeakSet()  # clients built by the layer and still alive
_clients_lock = threading.Lock()  # clients are built lazily, on any thread


def _key(reset: Reset) -> tuple[str, str]:
    return (getattr(reset, "__module__", "") or "", getattr(reset, "__qualname__", repr(reset)))


def before_snapshot(reset: Reset) -> Reset:
    """Run `reset` before Lambda takes the snapshot. Returns it, so it can be a decorator."""
    _before[_key(reset)] = reset
    return reset


def after_restore(reset: Reset) -> Reset:
    """Run `reset` in each restored environment, before its first request. Returns it (a decorator too)."""
    _after[_key(reset)] = reset
    return reset


def closes_connections(client: C) -> C:
    """`client` (a boto3 client), whose connection pool is closed before the snapshot. Returns it. Held weakly:
    a client nobody uses any more is not kept alive for this."""
    with _clients_lock:
        _clients.add(client)
    return client


def _close_clients() -> None:
    with _clients_lock:
        clients = list(_clients)
    for client in clients:
        client.close()  # botocore: empties the pool; the client opens new connections when next used


def _reseed_random() -> None:
    random.seed()  # from os.urandom: a seed of its own in each restored environment


def run_before_snapshot() -> None:
    """What Lambda runs before it takes the snapshot: every owner's reset, then every client's connections."""
    for reset in list(_before.values()):
        reset()
    _close_clients()


def run_after_restore() -> None:
    """What Lambda runs in each restored environment: `random` reseeded, then every owner's reset."""
    _reseed_random()
    for reset in list(_after.values()):
        reset()


def _register_with_runtime() -> bool:
    """Hand the two runners to Lambda's runtime hooks; False where there is no such runtime (here, tests)."""
    try:
        hooks: Any = importlib.import_module("snapshot_restore_py")
    except ImportError:
        return False
    hooks.register_before_snapshot(run_before_snapshot)
    hooks.register_after_restore(run_after_restore)
    return True


RUNTIME_HOOKS = _register_with_runtime()  # True in Lambda's Python runtimes (3.12 and later)
