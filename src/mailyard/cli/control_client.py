"""Talk to a running server through ``run/control.sock``."""

from __future__ import annotations

import json
import socket
from typing import Any

__all__ = ["ServerNotRunning", "control"]


class ServerNotRunning(Exception):
    """No server answers on the control socket."""


def control(path: str, command: str, timeout: float = 5.0) -> dict[str, Any]:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(command.encode("ascii") + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise ServerNotRunning(path) from exc
    reply: dict[str, Any] = json.loads(data or b"{}")
    return reply
