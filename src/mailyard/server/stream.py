"""Writing to a client with a deadline.

``StreamWriter.drain()`` waits as long as the client does not read. A client
that stops reading (on purpose or not) would then keep its session, its
connection slot and, for POP3, its maildrop lock for ever; so every write of
the adapters has the session's own idle timeout as a deadline.
"""

from __future__ import annotations

import asyncio

__all__ = ["ClientTooSlow", "write_within"]


class ClientTooSlow(ConnectionError):
    """The client did not take our output within the timeout."""


async def write_within(writer: asyncio.StreamWriter, data: bytes, timeout: float) -> None:
    if not data:
        return
    writer.write(data)
    try:
        async with asyncio.timeout(timeout):
            await writer.drain()
    except TimeoutError:
        writer.transport.abort()  # drop what is buffered; nobody will read it
        raise ClientTooSlow(f"client did not read for {timeout:g} s") from None
