"""server.listener: the in-place TLS upgrade, over real loopback sockets."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from mailyard.server.limits import ConnectionLimiter
from mailyard.server.listener import Connection, ListenerKind, Service, TlsHandshakeFailed
from mailyard.server.tls import build_context, generate_self_signed

HOST = "mx.example.test"
Handler = Callable[[Connection], Awaitable[object]]


@pytest.fixture
def contexts(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    generate_self_signed(HOST, cert, key)
    return build_context(cert, key), ssl.create_default_context(cafile=cert)


async def _serve_one(handler: Handler) -> tuple[asyncio.Server, int, asyncio.Future[object]]:
    done: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection.accepted(reader, writer)
        try:
            done.set_result(await handler(conn))
        except Exception as exc:  # handed to the test, which raises it
            done.set_exception(exc)
        finally:
            await conn.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], done


def test_upgrade_abandons_buffered_plaintext(
        contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, client_ctx = contexts

    async def handler(conn: Connection) -> object:
        first = await conn.reader.readline()  # the old reader also holds INJECTED
        conn.writer.write(b"+OK begin TLS\r\n")
        assert not conn.tls_active
        await conn.start_tls(server_ctx, 10.0)
        after = await conn.reader.readline()
        conn.writer.write(b"over tls\r\n")
        await conn.writer.drain()
        return first, after, conn.tls_version

    async def main() -> object:
        server, port, done = await _serve_one(handler)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"STLS\r\nINJECTED\r\n")  # one segment, as an attacker sends it
            assert await reader.readline() == b"+OK begin TLS\r\n"
            await writer.start_tls(client_ctx, server_hostname=HOST)
            writer.write(b"HELLO\r\n")
            assert await reader.readline() == b"over tls\r\n"
            result = await done
            writer.close()
            return result

    result = asyncio.run(main())
    assert isinstance(result, tuple)
    first, after, version = result
    assert first == b"STLS\r\n"
    assert after == b"HELLO\r\n"  # not b"INJECTED\r\n"
    assert version in ("TLSv1.2", "TLSv1.3")


def test_stalled_handshake_times_out(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, _ = contexts

    async def handler(conn: Connection) -> object:
        with pytest.raises(TlsHandshakeFailed):
            await conn.start_tls(server_ctx, 0.2)
        return conn.tls_active

    async def main() -> object:
        server, port, done = await _serve_one(handler)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            result = await done
            assert await reader.read() == b""  # closed by the server
            writer.close()
            return result

    assert asyncio.run(main()) is False


def test_plaintext_instead_of_a_handshake(
        contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, _ = contexts

    async def handler(conn: Connection) -> object:
        with pytest.raises(TlsHandshakeFailed):
            await conn.start_tls(server_ctx, 10.0)
        return True

    async def main() -> object:
        server, port, done = await _serve_one(handler)
        async with server:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"EHLO not tls at all\r\n" * 10)
            result = await asyncio.wait_for(done, 10)
            writer.close()
            return result

    assert asyncio.run(main()) is True


def test_implicit_tls_service_needs_a_certificate() -> None:
    async def session(conn: Connection) -> None:
        return None

    with pytest.raises(ValueError, match="certificate"):
        Service("smtps", ListenerKind.IMPLICIT_TLS, ConnectionLimiter(1, 1), b"", b"", session)
    Service("smtp", ListenerKind.PLAIN, ConnectionLimiter(1, 1), b"", b"", session)
