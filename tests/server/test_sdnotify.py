"""sd_notify(3) readiness messages, to a datagram socket the test owns."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from mailyard.server.sdnotify import notify


def test_ready_reaches_a_path_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        listener.settimeout(5)
        assert notify("READY=1", "STATUS=serving", environ={"NOTIFY_SOCKET": path})
        assert listener.recv(4096) == b"READY=1\nSTATUS=serving"


def test_an_at_sign_names_the_abstract_namespace() -> None:
    name = f"mailyard-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        listener.settimeout(5)
        assert notify("STOPPING=1", environ={"NOTIFY_SOCKET": "@" + name})
        assert listener.recv(4096) == b"STOPPING=1"


def test_without_a_manager_nothing_is_sent(tmp_path: Path) -> None:
    assert not notify("READY=1", environ={})
    assert not notify("READY=1", environ={"NOTIFY_SOCKET": "relative/path"})
    # A socket that went away is no error of ours.
    assert not notify("READY=1", environ={"NOTIFY_SOCKET": str(tmp_path / "gone")})
