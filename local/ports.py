"""Free local ports for the stacks that tests and scripts start."""

from __future__ import annotations

import socket


def free_ports(count: int) -> list[int]:
    """Distinct free ports (held open together so the OS cannot hand out one twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()
