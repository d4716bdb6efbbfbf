"""IMAP sessions ending: the autologout before login (RFC 9051 §5.4), BYE to
every session at shutdown, the connection limit, and limits of the core as
configured in ``[imap]``."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.e2e.server import PASSWORD, ServerProcess, imap_state


def test_autologout_before_login(tmp_path: Path) -> None:
    state = imap_state(tmp_path / "state", users=("i1@example.test",),
                       sections={"imap": "timeout_unauthenticated = 0.3"})
    server = ServerProcess(state).start()
    try:
        with socket.create_connection(server.address("imap"), timeout=20) as sock:
            reader = sock.makefile("rb")
            assert reader.readline().startswith(b"* OK")
            assert reader.readline() == b"* BYE Autologout; idle for too long\r\n"
            assert reader.readline() == b""  # and the connection is closed
    finally:
        assert server.stop() == 0, server.log_tail()


def test_shutdown_says_bye_to_every_session(tmp_path: Path) -> None:
    state = imap_state(tmp_path / "state", users=("i1@example.test",))
    server = ServerProcess(state).start()
    try:
        socks = []
        for n in range(3):
            sock = socket.create_connection(server.address("imap"), timeout=20)
            reader = sock.makefile("rb")
            reader.readline()
            sock.sendall(f'a LOGIN i1@example.test "{PASSWORD}"\r\nb SELECT INBOX\r\n'.encode())
            while not reader.readline().startswith(b"b OK"):
                pass
            if n == 0:
                sock.sendall(b"c IDLE\r\n")
                assert reader.readline() == b"+ idling\r\n"
            socks.append((sock, reader))
        assert server.stop() == 0, server.log_tail()
        for sock, reader in socks:
            assert reader.readline() == b"* BYE mx.example.test shutting down\r\n"
            sock.close()
    finally:
        server.kill()


def test_connection_limit_and_configured_limits(tmp_path: Path) -> None:
    state = imap_state(tmp_path / "state", users=("i1@example.test",),
                       sections={"imap": "max_connections_per_ip = 1\nmax_append_size = 5000"})
    server = ServerProcess(state).start()
    try:
        with socket.create_connection(server.address("imap"), timeout=20) as first:
            reader = first.makefile("rb")
            greeting = reader.readline()
            assert b"APPENDLIMIT" not in greeting
            with socket.create_connection(server.address("imap"), timeout=20) as second:
                refused = second.makefile("rb").readline()
                assert refused.startswith(b"* BYE [UNAVAILABLE] too many connections")
            first.sendall(f'a LOGIN i1@example.test "{PASSWORD}"\r\n'.encode())
            assert b"APPENDLIMIT=5000" in reader.readline()
            first.sendall(b"b APPEND INBOX {6000}\r\n")
            assert reader.readline() == b"b NO [TOOBIG] message too large\r\n"
    finally:
        assert server.stop() == 0, server.log_tail()
