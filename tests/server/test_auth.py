"""server.auth.check_login: the one login path of POP3 and SMTP AUTH."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mailyard.config import load_config
from mailyard.directory.admin import create_user
from mailyard.directory.passwords import hash_password
from mailyard.directory.store import Directory
from mailyard.message.address import parse_address
from mailyard.queue.store import Queue
from mailyard.server.auth import LoginOutcome, LoginResult, check_login
from mailyard.server.context import ServerContext
from mailyard.server.throttle import LoginThrottle

PASSWORD = "s3cret pass"


def make_context(tmp_path: Path, tls_text: str = "") -> Iterator[ServerContext]:
    state = tmp_path / "state"
    state.mkdir()
    (state / "mailyard.toml").write_text(
        '[login]\ndefault_domain = "example.test"\n' + tls_text)
    config = load_config(str(state))
    directory = Directory.open(config.path("directory.sqlite"))
    directory.add_domain("example.test")
    hashed = hash_password(PASSWORD)
    for user in ("alice", "bob", "dora"):
        create_user(directory, config.path("mail"), parse_address(f"{user}@example.test"), hashed)
    directory.set_enabled(parse_address("dora@example.test"), False)
    pool = ThreadPoolExecutor(2)
    try:
        yield ServerContext(
            config=config, directory=directory, queue=Queue(config.path("queue")),
            io_pool=pool, auth_pool=pool,
            throttle=LoginThrottle(2, 600.0, 0.0),
            account_throttle=LoginThrottle(3, 600.0, 0.0),
            notify_queue=lambda qid: None,
        )
    finally:
        pool.shutdown()
        directory.close()


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ServerContext]:
    yield from make_context(tmp_path)


def login(ctx: ServerContext, user: str, password: str = PASSWORD, ip: str = "127.0.0.11",
          authzid: str = "") -> LoginResult:
    return asyncio.run(check_login(ctx, client_ip=ip, local_ip="127.0.0.100", login=user,
                                   password=password, authzid=authzid))


def test_login_forms(ctx: ServerContext) -> None:
    for form in ("alice@example.test", "alice%example.test", "ALICE:Example.Test", "alice"):
        result = login(ctx, form)
        assert result.outcome is LoginOutcome.OK, form
        assert result.mailbox is not None and str(result.mailbox.address) == "alice@example.test"


def test_wrong_password_and_disabled_account_fail_alike(ctx: ServerContext) -> None:
    assert login(ctx, "alice", "wrong", ip="127.0.0.12") == LoginResult(LoginOutcome.FAILED)
    assert login(ctx, "dora", PASSWORD, ip="127.0.0.13") == LoginResult(LoginOutcome.FAILED)
    assert login(ctx, "nobody", PASSWORD, ip="127.0.0.14") == LoginResult(LoginOutcome.FAILED)
    assert ctx.counters["auth_failures"] == 3


def test_authorization_identity(ctx: ServerContext) -> None:
    assert login(ctx, "alice", authzid="alice@example.test").outcome is LoginOutcome.OK
    # RFC 4616 §2: acting as someone else needs rights nobody has here.
    assert login(ctx, "alice", authzid="bob@example.test").outcome is LoginOutcome.FAILED


def test_throttled_per_address(ctx: ServerContext) -> None:
    for _ in range(2):
        assert login(ctx, "bob", "wrong", ip="192.0.2.9").outcome is LoginOutcome.FAILED
    assert login(ctx, "bob", ip="192.0.2.9").outcome is LoginOutcome.THROTTLED
    assert login(ctx, "bob", ip="192.0.2.10").outcome is LoginOutcome.OK


def test_throttled_per_account(ctx: ServerContext) -> None:
    for n in range(3):
        assert login(ctx, "bob", "wrong", ip=f"198.51.100.{n}").outcome is LoginOutcome.FAILED
    # Any spelling of bob, from a fresh address, right password: refused unchecked.
    assert login(ctx, "BOB%example.test", ip="198.51.100.50").outcome is LoginOutcome.THROTTLED
    assert login(ctx, "alice", ip="198.51.100.50").outcome is LoginOutcome.OK


@pytest.mark.parametrize(("ip", "allowed"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("192.0.2.1", False), ("::ffff:192.0.2.1", False), ("2001:db8::1", False), ("junk", False),
])
def test_plaintext_auth_only_from_loopback(tmp_path: Path, ip: str, allowed: bool) -> None:
    for ctx in make_context(tmp_path, "[tls]\nloopback_plaintext_auth = true\n"):
        assert ctx.plaintext_auth_allowed(ip) is allowed


def test_plaintext_auth_off_by_default(ctx: ServerContext) -> None:
    assert not ctx.plaintext_auth_allowed("127.0.0.1")
