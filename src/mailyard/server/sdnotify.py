"""systemd's readiness protocol (sd_notify(3)), without libsystemd.

With ``Type=notify`` systemd passes ``$NOTIFY_SOCKET``, a Unix datagram
socket (a leading "@" names one in the abstract namespace), and waits for
``READY=1`` before it calls the service started. ``RELOADING=1`` and
``STOPPING=1`` tell it what a SIGHUP or SIGTERM set in motion.
Without the variable (not under systemd) every call is a no-op.
"""

from __future__ import annotations

import os
import socket

__all__ = ["notify"]


def notify(*fields: str, environ: dict[str, str] | None = None) -> bool:
    """Send ``KEY=VALUE`` lines to the service manager; True if one listens."""
    path = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not path or path[0] not in "/@":
        return False
    # sd_notify(3): "@" stands for the NUL byte of an abstract socket name.
    address = "\0" + path[1:] if path.startswith("@") else path
    payload = "\n".join(fields).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(payload, address)
    except OSError:
        return False  # the manager went away: readiness is then nobody's business
    return True
