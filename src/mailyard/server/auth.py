"""Password logins for every service: throttling, the directory check, the delay.

POP3 (USER/PASS, AUTH) and SMTP AUTH go through ``check_login``, so the
rules are the same everywhere:

* a client address with too many recent failures is refused before the
  password is looked at (``[login] max_failures``), and so is a login name
  with too many recent failures from anywhere (``max_account_failures``:
  a guesser spread over many addresses is still slowed down);
* the password is checked by ``directory.logins.authenticate`` in the auth
  pool; a disabled mailbox fails exactly like a wrong password there;
* every failure costs ``failure_delay`` seconds of the session's time;
* a SASL authorization identity other than the login itself is refused:
  mailyard has no proxy logins (RFC 4616 §2 lets the server decide).
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass

from mailyard.config import Config
from mailyard.directory.logins import authenticate, parse_login
from mailyard.directory.model import Mailbox
from mailyard.server.context import ServerContext

__all__ = ["LoginOutcome", "LoginResult", "check_login", "default_domain"]


class LoginOutcome(enum.Enum):
    OK = "ok"
    FAILED = "failed"
    THROTTLED = "throttled"


@dataclass(frozen=True, slots=True)
class LoginResult:
    outcome: LoginOutcome
    mailbox: Mailbox | None = None


def default_domain(config: Config, local_ip: str) -> str | None:
    """Domain of a bare user name: VMailMgr's per-address hosting, else the default."""
    login = config.login
    return login.by_address.get(local_ip) or login.default_domain or None


def _account(login: str, domain: str | None) -> str | None:
    address = parse_login(login, domain)
    return None if address is None else "@".join(address.key)


async def check_login(
    ctx: ServerContext, *, client_ip: str, local_ip: str, login: str, password: str,
    authzid: str = "",
) -> LoginResult:
    domain = default_domain(ctx.config, local_ip)
    account = _account(login, domain)
    if ctx.throttle.blocked(client_ip) or (
        account is not None and ctx.account_throttle.blocked(account)
    ):
        return LoginResult(LoginOutcome.THROTTLED)
    mailbox = await ctx.in_auth(authenticate, ctx.directory, login, password, domain)
    if mailbox is not None and authzid and _account(authzid, domain) != account:
        mailbox = None
    if mailbox is None:
        ctx.throttle.failure(client_ip)
        if account is not None:
            ctx.account_throttle.failure(account)
        ctx.count("auth_failures")
        # The session waits; no thread does (throttle.py).
        await asyncio.sleep(ctx.throttle.delay)
        return LoginResult(LoginOutcome.FAILED)
    return LoginResult(LoginOutcome.OK, mailbox)
