"""LOGIN and AUTHENTICATE PLAIN (RFC 9051 §6.2.2, §6.2.3; RFC 4616, RFC 4959).

The core ran the SASL exchange; here the credentials go through
``server.auth.check_login``, the one login path of every service (login
forms, per-address and per-account throttling, the failure delay, no
proxy logins). Refusals use RFC 5530 codes: AUTHENTICATIONFAILED for bad
credentials, UNAVAILABLE while throttled (a temporary refusal, not a
verdict on the password). The password is never logged.
"""

from __future__ import annotations

import logging

from mailyard import fsio
from mailyard.log import event
from mailyard.maildir.deliver import ensure_maildir
from mailyard.maildir.mailstore import Mailstore
from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.events import Command
from mailyard.proto.imap.responses import Code
from mailyard.server.auth import LoginOutcome, check_login
from mailyard.server.imap.state import Account, Session

__all__ = ["login"]


async def login(s: Session, cmd: Command) -> None:
    body = cmd.body
    assert isinstance(body, c.Login | c.Authenticate)
    authzid = body.authzid if isinstance(body, c.Authenticate) else ""
    result = await check_login(s.ctx, client_ip=s.client_ip, local_ip=s.local_ip,
                               login=body.username, password=body.password, authzid=authzid)
    if result.outcome is LoginOutcome.THROTTLED:
        event("imap.login", ip=s.client_ip, result="throttled")
        s.finish(Status.NO, Code.UNAVAILABLE, "too many failed logins; try again later")
        return
    mailbox = result.mailbox
    if mailbox is None:
        event("imap.login", ip=s.client_ip, user=body.username, result="failed")
        s.finish(Status.NO, Code.AUTHENTICATIONFAILED, "invalid credentials")
        return
    config = s.ctx.config
    try:
        root = fsio.safe_join(config.path("mail"), mailbox.maildir)
        await s.io(ensure_maildir, root)
    except OSError as exc:
        event("imap.maildir_error", level=logging.ERROR, user=str(mailbox.address),
              error=exc.strerror or str(exc))
        s.finish(Status.NO, Code.UNAVAILABLE, "mailbox unavailable; try again later")
        return
    user = str(mailbox.address)
    s.account = Account(user, Mailstore(root, hostname=config.hostname))
    event("imap.login", ip=s.client_ip, user=user, result="ok",
          mechanism=body.mechanism if isinstance(body, c.Authenticate) else "LOGIN")
    s.finish(Status.OK)
