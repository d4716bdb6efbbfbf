"""Which handler answers which command, and the errors every handler shares.

A ``StoreError`` that a handler did not turn into its own answer becomes
``NO [code] reason`` (RFC 5530); an ``OSError`` from the disk becomes a
temporary NO and a log line. Anything else is a bug: imapd.py logs it and
ends the session with ``BYE [SERVERBUG]``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

from mailyard.log import event
from mailyard.maildir.errors import StoreError
from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.events import Command
from mailyard.proto.imap.responses import Code, Condition, HighestModSeq, ResponseCode
from mailyard.server.imap import quota, selected
from mailyard.server.imap.errors import code_of, os_error_answer
from mailyard.server.imap.fetch import fetch
from mailyard.server.imap.flags import store
from mailyard.server.imap.login import login
from mailyard.server.imap.mailboxes import HANDLERS as MAILBOX_HANDLERS
from mailyard.server.imap.search import search
from mailyard.server.imap.sortthread import sort, thread
from mailyard.server.imap.state import Session
from mailyard.server.imap.transfer import copy

__all__ = ["HANDLERS", "run_command"]

Handler = Callable[[Session, Command], Awaitable[None]]

HANDLERS: Final[dict[type, Handler]] = {
    c.Login: login,
    c.Authenticate: login,
    c.Select: selected.select,
    c.Close: selected.close,
    c.Unselect: selected.unselect,
    c.Expunge: selected.expunge,
    c.Noop: selected.noop,
    c.Check: selected.noop,
    c.Fetch: fetch,
    c.Store: store,
    c.Search: search,
    c.Sort: sort,
    c.Thread: thread,
    c.Copy: copy,
    c.Move: copy,
    c.GetQuota: quota.getquota,
    c.GetQuotaRoot: quota.getquotaroot,
    c.SetQuota: quota.setquota,
    **MAILBOX_HANDLERS,
}


def _answer(s: Session, cmd: Command, code: ResponseCode, text: str) -> None:
    pending = s.core.pending
    if pending is not None and pending.tag == cmd.tag:
        s.finish(Status.NO, code, text)


async def run_command(s: Session, cmd: Command) -> None:
    """Answer one command (not STARTTLS, APPEND or IDLE: imapd.py does those)."""
    handler = HANDLERS[type(cmd.body)]
    # Counted by the metrics hook (observe/events.py); debug level, so the
    # log itself stays quiet.
    event("imap.command", level=logging.DEBUG, command=type(cmd.body).__name__)
    if cmd.condstore_enabled and s.selected is not None:
        # RFC 7162 §3.1: the first CONDSTORE enabling command while a mailbox
        # is selected tells its HIGHESTMODSEQ.
        highest = s.selected.folder.highest_modseq
        s.core.send(Condition(Status.OK, "CONDSTORE enabled", HighestModSeq(highest)))
    try:
        await handler(s, cmd)
    except StoreError as exc:
        _answer(s, cmd, code_of(exc), exc.reason)
    except ConnectionError:
        raise
    except OSError as exc:
        event("imap.store_error", level=logging.ERROR, ip=s.client_ip,
              error=exc.strerror or str(exc))
        code, text = os_error_answer(exc)
        _answer(s, cmd, code, text)
    pending = s.core.pending
    if pending is not None and pending.tag == cmd.tag and not isinstance(cmd.body, c.Idle):
        # A handler that forgot to answer is a bug; the client must not hang.
        s.finish(Status.NO, Code.SERVERBUG, "command not answered")
