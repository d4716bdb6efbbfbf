from __future__ import annotations

import json
import time

from mailyard.cli.values import parse_when
from tests.cli.conftest import OWNER_PASSWORD, USER_PASSWORD, Cli


def _user(cli: Cli, address: str = "ann@a.test") -> dict[str, object]:
    data: dict[str, object] = json.loads(cli.ok("user", "show", address, "--json"))
    return data


def test_user_set_and_show(cli: Cli) -> None:
    before = _user(cli)
    assert before["quota_bytes"] is None and before["forwards"] == [] and before["keep_copy"]
    out = cli.ok(
        "user",
        "set",
        "ann@a.test",
        "--quota",
        "500M",
        "--quota-messages",
        "1000",
        "--max-message-size",
        "10k",
        "--forward",
        "x@remote.test",
        "--forward",
        "bob@b.test",
        "--no-keep-copy",
        "--expires",
        "2030-01-02T03:04:05+00:00",
        "--display-name",
        "Ann Example",
        "--no-receive",
        "--no-login",
    )
    assert out.startswith("updated ann@a.test")
    after = _user(cli)
    assert after == {
        **before,
        "quota_bytes": 500 * 1024**2,
        "quota_messages": 1000,
        "max_message_size": 10240,
        "forwards": ["x@remote.test", "bob@b.test"],
        "keep_copy": False,
        "expires": "2030-01-02T03:04:05Z",
        "display_name": "Ann Example",
        "receive": False,
        "enabled": False,
    }
    table = cli.ok("user", "show", "ann@a.test")
    for text in ("500M", "10k", "x@remote.test, bob@b.test", "Ann Example", "keep copy"):
        assert text in table
    # none = explicitly no limit (0), default = the domain's (null).
    cli.ok(
        "user",
        "set",
        "ann@a.test",
        "--quota",
        "none",
        "--max-message-size",
        "default",
        "--expires",
        "never",
        "--no-forward",
        "--login",
    )
    again = _user(cli)
    assert (again["quota_bytes"], again["max_message_size"]) == (0, None)
    assert again["expires"] is None and again["forwards"] == [] and again["enabled"] is True


def test_user_set_local_date(cli: Cli) -> None:
    cli.ok("user", "set", "ann@a.test", "--expires", "2031-05-06")
    with_json = json.loads(cli.ok("user", "set", "ann@a.test", "--receive", "--json"))
    # A date alone is local midnight; JSON shows it in UTC.
    assert with_json["expires"] == time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(parse_when("2031-05-06"))
    )


def test_user_set_bad_values(cli: Cli) -> None:
    for option, value in [
        ("--quota", "5X"),
        ("--quota", "-1"),
        ("--quota-messages", "1.5"),
        ("--max-message-size", "huge"),
        ("--expires", "next week"),
        ("--expires", "2030-13-01"),
    ]:
        result = cli.run("user", "set", "ann@a.test", option, value)
        assert result.exit_code == 2, (option, value, result.output)
        assert f"Invalid value for '{option}'" in result.output
    assert "nothing to change" in cli.fails("user", "set", "ann@a.test")
    assert "cannot be used together" in cli.fails(
        "user", "set", "ann@a.test", "--forward", "x@y.test", "--no-forward"
    )
    assert "itself" in cli.fails("user", "set", "ann@a.test", "--forward", "ANN@a.test")
    assert "invalid forward address" in cli.fails("user", "set", "ann@a.test", "--forward", "x")
    assert "no such mailbox" in cli.fails("user", "set", "nobody@a.test", "--receive")
    assert "control character" in cli.fails("user", "set", "ann@a.test", "--display-name", "a\tb")
    assert _user(cli)["forwards"] == []


def test_user_self_service(cli: Cli) -> None:
    pw = USER_PASSWORD + "\n"
    me = ("--user", "ann@a.test", "--password-stdin")
    cli.ok(
        "user", "set", "ann@a.test", "--forward", "x@remote.test", "--no-keep-copy", *me, input=pw
    )
    assert _user(cli)["forwards"] == ["x@remote.test"]
    assert "only its forwards and keep-copy" in cli.fails(
        "user", "set", "ann@a.test", "--quota", "1G", *me, input=pw
    )
    assert "may only manage its own mailbox" in cli.fails(
        "user", "set", "bob@b.test", "--keep-copy", *me, input=pw
    )
    assert "authentication failed" in cli.fails(
        "user", "set", "ann@a.test", "--keep-copy", *me, input="wrong\n"
    )
    assert "cannot be used together" in cli.fails(
        "user", "set", "ann@a.test", "--keep-copy", "--as", "alice", *me, input=pw
    )
    # passwd: the current password first, then the new one.
    cli.ok("user", "passwd", "ann@a.test", *me, input=pw + "brand new\n")
    assert "authentication failed" in cli.fails(
        "user", "passwd", "ann@a.test", *me, input=pw + "x\n"
    )
    assert "may only manage its own" in cli.fails(
        "user",
        "passwd",
        "bob@b.test",
        "--user",
        "ann@a.test",
        "--password-stdin",
        input="brand new\nx\n",
    )
    shown = json.loads(
        cli.ok(
            "user",
            "show",
            "ann@a.test",
            "--json",
            "--user",
            "ann@a.test",
            "--password-stdin",
            input="brand new\n",
        )
    )
    assert shown["keep_copy"] is False


def test_domain_set_and_show(cli: Cli) -> None:
    cli.ok("domain", "add", "alias.test")
    data = json.loads(
        cli.ok(
            "domain",
            "set",
            "a.test",
            "--catch-all",
            "ann@a.test",
            "--extension-chars",
            "+-",
            "--quota",
            "1G",
            "--quota-messages",
            "5000",
            "--total-quota",
            "10G",
            "--max-message-size",
            "20M",
            "--json",
        )
    )
    assert data["catch_all"] == ["ann@a.test"] and data["extension_chars"] == "+-"
    assert data["quota_bytes"] == 1024**3 and data["total_quota_bytes"] == 10 * 1024**3
    assert data["quota_messages"] == 5000 and data["max_message_size"] == 20 * 1024**2
    table = cli.ok("domain", "show", "a.test")
    for text in ("catch-all", "ann@a.test", "+-", "1G", "10G", "20M"):
        assert text in table
    assert "updated domain alias.test" in cli.ok(
        "domain", "set", "alias.test", "--alias-of", "A.TEST"
    )
    assert json.loads(cli.ok("domain", "show", "alias.test", "--json"))["alias_of"] == "a.test"
    cli.ok(
        "domain",
        "set",
        "a.test",
        "--no-catch-all",
        "--extension-chars",
        "none",
        "--quota",
        "none",
        "--total-quota",
        "none",
    )
    shown = json.loads(cli.ok("domain", "show", "a.test", "--json"))
    assert shown["catch_all"] == [] and shown["extension_chars"] == ""
    assert shown["quota_bytes"] is None and shown["total_quota_bytes"] is None
    cli.ok("domain", "set", "alias.test", "--no-alias")
    assert json.loads(cli.ok("domain", "show", "alias.test", "--json"))["alias_of"] is None


def test_domain_set_errors(cli: Cli) -> None:
    assert "extension characters" in cli.fails("domain", "set", "a.test", "--extension-chars", "@")
    assert "1 mailbox" in cli.fails("domain", "set", "a.test", "--alias-of", "b.test")
    assert "itself" in cli.fails("domain", "set", "a.test", "--alias-of", "a.test")
    assert "no such domain" in cli.fails("domain", "set", "a.test", "--alias-of", "zz.test")
    assert "invalid catch-all target" in cli.fails("domain", "set", "a.test", "--catch-all", "x")
    assert "nothing to change" in cli.fails("domain", "set", "a.test")
    assert "cannot be used together" in cli.fails(
        "domain", "set", "a.test", "--alias-of", "b.test", "--no-alias"
    )
    result = cli.run("domain", "set", "a.test", "--quota", "default")
    assert result.exit_code == 2 and "Invalid value for '--quota'" in result.output


def test_owner_sets_only_its_own(cli: Cli) -> None:
    pw = OWNER_PASSWORD + "\n"
    owner = ("--as", "alice", "--password-stdin")
    cli.ok("domain", "set", "a.test", "--quota", "1G", *owner, input=pw)
    cli.ok("user", "set", "ann@a.test", "--quota", "2G", *owner, input=pw)
    for args in (
        ("domain", "set", "b.test", "--quota", "1G"),
        ("user", "set", "bob@b.test", "--receive"),
    ):
        assert "owner alice does not manage domain b.test" in cli.fails(*args, *owner, input=pw)
    cli.ok("domain", "add", "a2.test", "--owner", "alice")
    assert "does not manage domain b.test" in cli.fails(
        "domain", "set", "a2.test", "--alias-of", "b.test", *owner, input=pw
    )
    cli.ok("domain", "set", "a2.test", "--alias-of", "a.test", *owner, input=pw)
