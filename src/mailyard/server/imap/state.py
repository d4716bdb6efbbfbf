"""What one IMAP session knows while its commands run: the user's store,
the selected mailbox, and how to reach the disk (the io pool) and the
client (``flush``). server/imapd.py owns the loop; the handlers get a
``Session`` and the command.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Final, ParamSpec, TypeVar

from mailyard.log import event
from mailyard.maildir.flags import KeywordTable
from mailyard.maildir.folder import Folder
from mailyard.maildir.mailstore import Mailstore
from mailyard.maildir.view import View
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.responses import FlagsData, ResponseCode, Untagged
from mailyard.proto.imap.server import ImapServer
from mailyard.server.context import ServerContext

__all__ = ["Account", "ImapSettings", "Selected", "SelectedGone", "Session"]

P = ParamSpec("P")
T = TypeVar("T")

BATCH: Final = 1000  # responses rendered per core.send call
_FLAG_CACHE: Final = 1024


class SelectedGone(Exception):
    """The selected mailbox was deleted, renamed or reset under the session:
    RFC 3501 §2.3.1.1 forbids going on with its uids; the session ends with BYE."""


@dataclass(frozen=True, slots=True)
class ImapSettings:
    """What the handlers need of the configuration."""

    max_append_size: int  # RFC 7889 APPENDLIMIT, also STATUS APPENDLIMIT


@dataclass(frozen=True, slots=True)
class Account:
    """The logged-in user: the address (for logs) and the Maildir++ store."""

    user: str
    store: Mailstore


class Selected:
    """The selected mailbox: its shared folder, this session's view, the
    RFC 5182 saved search result, and FLAGS values reused across FETCHes."""

    __slots__ = ("_flags", "_keywords", "folder", "name", "readonly", "saved", "told", "view")

    def __init__(self, name: str, folder: Folder, view: View, *, readonly: bool) -> None:
        self.name = name
        self.folder = folder
        self.view = view
        self.readonly = readonly
        self.saved: tuple[int, ...] = ()  # uids of SEARCH RETURN (SAVE)
        self._flags: dict[int, FlagsData] = {}
        self._keywords: KeywordTable | None = None
        self.told = folder.keywords  # the keywords the client was last told of (FLAGS)

    def flags(self, bits: int, recent: bool) -> FlagsData:
        """FLAGS for ``bits`` (and \\Recent, IMAP4rev1 only): one object per value."""
        keywords = self.folder.keywords
        if keywords is not self._keywords or len(self._flags) > _FLAG_CACHE:
            self._flags = {}
            self._keywords = keywords
        key = bits << 1 | recent
        found = self._flags.get(key)
        if found is None:
            names = keywords.flag_names(bits)
            found = FlagsData((*names, "\\Recent") if recent else names)
            self._flags[key] = found
        return found


class Session:
    """One session's state; see the module doc."""

    __slots__ = ("_flush", "account", "client_ip", "core", "ctx", "local_ip", "selected",
                 "settings", "tls")

    def __init__(self, ctx: ServerContext, core: ImapServer, settings: ImapSettings, *,
                 client_ip: str, local_ip: str, flush: Callable[[], Awaitable[None]]) -> None:
        self.ctx = ctx
        self.core = core
        self.settings = settings
        self.client_ip = client_ip
        self.local_ip = local_ip
        self.account: Account | None = None
        self.selected: Selected | None = None
        self.tls = False
        self._flush = flush

    @property
    def store(self) -> Mailstore:
        assert self.account is not None  # the core runs these commands only after login
        return self.account.store

    @property
    def sel(self) -> Selected:
        assert self.selected is not None  # the core runs these commands only when selected
        return self.selected

    @property
    def recent_flags(self) -> bool:
        """IMAP4rev1 shows \\Recent; IMAP4rev2 (RFC 9051 §2.3.2) dropped it."""
        return not self.core.imap4rev2

    def io(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
        """Run blocking store work in the io pool, never on the event loop."""
        return self.ctx.in_io(func, *args, **kwargs)

    def finish(self, status: Status, code: ResponseCode | None = None, text: str = "") -> None:
        """Complete the pending command; a refusal is logged at debug level."""
        pending = self.core.pending
        if status is not Status.OK and pending is not None:
            event("imap.refused", level=logging.DEBUG, ip=self.client_ip,
                  command=type(pending.body).__name__.upper(), status=status.value,
                  code=None if code is None else str(getattr(code, "value", code)), text=text)
        self.core.finish(status, code, text)

    async def flush(self) -> None:
        await self._flush()

    async def emit(self, responses: Iterable[Untagged]) -> None:
        """Send many responses, writing them out as they pile up (a FETCH of
        100,000 messages is never rendered whole before the first is sent)."""
        batch: list[Untagged] = []
        for response in responses:
            batch.append(response)
            if len(batch) >= BATCH:
                self.core.send(*batch)
                batch = []
                await self.flush()
        if batch:
            self.core.send(*batch)
