"""Free loopback ports for tests that start servers (pytest-asyncio's port fixtures)."""

from __future__ import annotations

import socket


def unused_port(kind: socket.SocketKind) -> int:
    """A port on 127.0.0.1 that is free right now."""
    with socket.socket(type=kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PortFactory:
    """Hands out free ports, never the same one twice in a session."""

    def __init__(self, kind: socket.SocketKind) -> None:
        self._kind = kind
        self._given: set[int] = set()

    def __call__(self) -> int:
        port = unused_port(self._kind)
        while port in self._given:
            port = unused_port(self._kind)
        self._given.add(port)
        return port
