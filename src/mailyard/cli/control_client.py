"""Talk to a running server through ``run/control.sock``."""

from __future__ import annotations

import json
import socket
from typing import Any

__all__ = ["ControlError", "ServerNotRunning", "control"]


class ControlError(Exception):
    """The control socket could not be used; the message says why."""


class ServerNotRunning(ControlError):
    """No server listens on the control socket."""


def control(path: str, command: str, timeout: float = 5.0) -> dict[str, Any]:
    """Send one command line to the server's control socket; its JSON answer."""
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
    except TimeoutError as exc:
        raise ControlError("the server did not answer on its control socket") from exc
    except OSError as exc:
        # e.g. a state folder so deep that the socket path exceeds the
        # Unix-socket limit (about 107 bytes).
        raise ControlError(f"cannot reach the server's control socket: {exc}") from exc
    try:
        reply: dict[str, Any] = json.loads(data or b"{}")
    except ValueError as exc:
        raise ControlError("the server's answer was not understood") from exc
    return reply
