"""QUOTA (RFC 9208) from the Maildir++ ``maildirsize`` file.

One quota root per user, named ``""``, covering every folder the quota
counts (Courier's rule: all but Trash). STORAGE is in units of 1024
octets (RFC 9208 §5.1), rounded up for the usage and down for the limit;
MESSAGE counts messages (§5.2). A Maildir without ``maildirsize`` has no
quota: GETQUOTAROOT names no root and GETQUOTA "" is refused. SETQUOTA is
not offered (no QUOTASET capability): quotas are the administrator's.
"""

from __future__ import annotations

from mailyard.maildir.errors import StoreError
from mailyard.maildir.mailstore import Mailstore
from mailyard.maildir.quota import QuotaUsage
from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.events import Command
from mailyard.proto.imap.responses import Code, QuotaResource, QuotaResponse, QuotaRootResponse
from mailyard.server.imap.errors import code_of
from mailyard.server.imap.state import Session
from mailyard.server.imap.updates import complete

__all__ = ["ROOT", "getquota", "getquotaroot", "quota_response", "setquota"]

ROOT = ""


def quota_response(usage: QuotaUsage) -> QuotaResponse:
    resources: list[QuotaResource] = []
    limits = usage.limits
    if limits.storage is not None:
        resources.append(QuotaResource("STORAGE", (usage.storage + 1023) // 1024,
                                       limits.storage // 1024))
    if limits.messages is not None:
        resources.append(QuotaResource("MESSAGE", usage.messages, limits.messages))
    return QuotaResponse(ROOT, tuple(resources))


def _usage_of(store: Mailstore, mailbox: str | None) -> QuotaUsage | None:
    if mailbox is not None and not store.exists(mailbox):
        raise _Missing
    return store.quota.usage()


class _Missing(Exception):
    pass


async def getquotaroot(s: Session, cmd: Command) -> None:
    body = cmd.body
    assert isinstance(body, c.GetQuotaRoot)
    try:
        usage = await s.io(_usage_of, s.store, body.mailbox)
    except _Missing:
        await complete(s, cmd, Status.NO, Code.NONEXISTENT, "no such mailbox")
        return
    except StoreError as exc:
        await complete(s, cmd, Status.NO, code_of(exc), exc.reason)
        return
    if usage is None:
        s.core.send(QuotaRootResponse(body.mailbox, ()))
    else:
        s.core.send(QuotaRootResponse(body.mailbox, (ROOT,)), quota_response(usage))
    await complete(s, cmd)


async def getquota(s: Session, cmd: Command) -> None:
    body = cmd.body
    assert isinstance(body, c.GetQuota)
    usage = await s.io(_usage_of, s.store, None) if body.root == ROOT else None
    if usage is None:
        await complete(s, cmd, Status.NO, Code.NONEXISTENT, "no such quota root")
        return
    s.core.send(quota_response(usage))
    await complete(s, cmd)


async def setquota(s: Session, cmd: Command) -> None:
    # RFC 9208 §4.1: without QUOTASET the limits cannot be changed here.
    await complete(s, cmd, Status.NO, Code.CANNOT, "quotas are set by the administrator")
