"""One outgoing SMTP connection: a socket on the event loop driving the client core.

The connection owns a small asyncio protocol of its own instead of stream
objects, for one reason: before the TLS handshake it must know that nothing
the server sent after its 220 is waiting unread (RFC 3207 §5 and the
STARTTLS response-injection class of bugs: such bytes must never be taken
as if they had come over TLS). With our own receive buffer that is a
length check; with ``asyncio.StreamReader`` it would mean reaching into
its internals.

Every wait has a timeout, chosen from what the core waits for (RFC 5321
§4.5.3.2, ``Timeouts``). A timeout or a socket error during the session is
handed to the core as ``abort(reason)``, which answers everything still
outstanding with a made-up 451: the session code above sees replies only.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from typing import Final

from mailyard.dispatch.mx import Target
from mailyard.dispatch.settings import Timeouts
from mailyard.proto.sentinels import CLOSED, NEED_DATA, Sentinel
from mailyard.proto.smtp.client import ClientConfig, ClientState, SmtpClient
from mailyard.proto.smtp.client_events import ClientEvent, Waiting

__all__ = ["SmtpConnection", "TlsInjection"]

_READ_LIMIT: Final = 256 * 1024  # received octets held before reading pauses
_READ_SIZE: Final = 65536
_WRITE_AT: Final = 256 * 1024  # content octets gathered before a write
_QUIT_WAIT: Final = 10.0  # seconds; the mail is sent, QUIT is politeness
_QUIT_STATES: Final = frozenset({ClientState.CONNECTED, ClientState.READY})


class TlsInjection(ConnectionError):
    """The server sent more after its 220 to STARTTLS: refuse the handshake."""


class _Channel(asyncio.Protocol):
    """Received bytes in a buffer we own; write flow control for drain()."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._eof = False
        self._error: Exception | None = None
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buf += data
        self._readable.set()
        if len(self._buf) > _READ_LIMIT and self.transport is not None:
            self.transport.pause_reading()
            self._paused = True

    def eof_received(self) -> bool:
        self._eof = True
        self._readable.set()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._error = exc
        self._readable.set()
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    async def read(self) -> bytes:
        """What arrived (at most a read's worth), or b"" at end of stream."""
        while not self._buf and not self._eof:
            self._readable.clear()
            await self._readable.wait()
        data = bytes(self._buf[:_READ_SIZE])
        del self._buf[:_READ_SIZE]
        if self._paused and len(self._buf) <= _READ_LIMIT and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    async def drain(self) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError(str(self._error or "connection closed"))
        await self._writable.wait()


class SmtpConnection:
    """A connected socket and its ``SmtpClient``; see the module doc."""

    def __init__(self, channel: _Channel, client: SmtpClient, timeouts: Timeouts,
                 target: Target) -> None:
        self._channel = channel
        self.client = client
        self._timeouts = timeouts
        self.target = target

    @classmethod
    async def open(cls, target: Target, config: ClientConfig, timeouts: Timeouts,
                   tls: ssl.SSLContext | None = None, server_hostname: str | None = None,
                   ) -> SmtpConnection:
        """Connect (TLS from the first byte when ``tls`` is given); OSError or
        TimeoutError if that fails."""
        loop = asyncio.get_running_loop()
        channel = _Channel()
        async with asyncio.timeout(timeouts.connect):
            if tls is None:
                await loop.create_connection(lambda: channel, target.address, target.port)
            else:
                await loop.create_connection(
                    lambda: channel, target.address, target.port, ssl=tls,
                    server_hostname=server_hostname,
                    ssl_handshake_timeout=timeouts.tls_handshake,
                )
        return cls(channel, SmtpClient(config), timeouts, target)

    def _timeout(self, waiting: Waiting | None) -> float:
        if waiting is Waiting.DATA:
            return self._timeouts.data_init
        if waiting is Waiting.MESSAGE:
            return self._timeouts.data_end
        return self._timeouts.command

    async def _write(self, data: bytes, timeout: float) -> bool:
        transport = self._channel.transport
        if not data:
            return True
        try:
            if transport is None or transport.is_closing():
                raise ConnectionError("connection closed")
            transport.write(data)
            async with asyncio.timeout(timeout):
                await self._channel.drain()
        except TimeoutError:
            self.client.abort(f"timeout after {timeout:g} s writing to the server")
            return False
        except OSError as exc:
            self.client.abort(f"connection error: {exc}")
            return False
        return True

    async def next_event(self) -> ClientEvent | Sentinel:
        """Write what the core queued, then the next event or CLOSED."""
        client = self.client
        while True:
            await self._write(client.data_to_send(), self._timeouts.command)
            event = client.next_event()
            if event is not NEED_DATA:
                return event
            waiting = client.waiting
            if waiting is None:
                # The core waits for us, not the server: nothing will come.
                return CLOSED
            timeout = self._timeout(waiting)
            try:
                async with asyncio.timeout(timeout):
                    data = await self._channel.read()
            except TimeoutError:
                client.abort(f"timeout after {timeout:g} s waiting for the {waiting.value} reply")
                continue
            client.receive_data(data)

    async def send_body(self, chunks: AsyncIterator[bytes]) -> None:
        """Stream the content, then end it; each write bounded by the
        data-block timeout (RFC 5321 §4.5.3.2.5)."""
        client = self.client
        block = self._timeouts.data_block
        pending = bytearray()
        try:
            async for chunk in chunks:
                client.send_body(chunk)
                pending += client.data_to_send()
                # Small content goes out with its final dot in one write.
                if len(pending) >= _WRITE_AT:
                    if not await self._write(bytes(pending), block):
                        return
                    pending.clear()
        except OSError as exc:
            client.abort(f"cannot read the queued message: {exc}")
            return
        client.end_body()
        await self._write(bytes(pending) + client.data_to_send(), block)

    async def start_tls(self, context: ssl.SSLContext, server_hostname: str | None) -> None:
        """The handshake after a 220 to STARTTLS; raises on failure (the
        connection is then unusable). RFC 3207 §4.2: the core forgets the
        plaintext session once this returns."""
        channel = self._channel
        if channel.buffered or self.client.buffered:
            raise TlsInjection("the server sent data after its 220 to STARTTLS")
        transport = channel.transport
        if transport is None or transport.is_closing():
            raise ConnectionError("connection closed before the TLS handshake")
        loop = asyncio.get_running_loop()
        new = await loop.start_tls(transport, channel, context, server_hostname=server_hostname,
                                   ssl_handshake_timeout=self._timeouts.tls_handshake)
        if new is None:
            raise ConnectionError("connection closed during the TLS handshake")
        channel.transport = new
        self.client.tls_started()

    async def close(self) -> None:
        """QUIT if the session is still open (briefly, best effort), then close."""
        client = self.client
        if client.waiting is None and client.state in _QUIT_STATES:
            client.quit()
            try:
                async with asyncio.timeout(_QUIT_WAIT):
                    await self.next_event()
            except TimeoutError:
                client.abort("no reply to QUIT")
        transport = self._channel.transport
        if transport is None:
            return
        if client.state is ClientState.TLS:
            transport.abort()  # half a handshake: nothing clean to say
        else:
            transport.close()
