from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import OWNER_PASSWORD, USER_PASSWORD, Cli


def test_vacation_set_show_off(cli: Cli, tmp_path: Path) -> None:
    assert "no vacation message" in cli.ok("vacation", "show", "ann@a.test")
    assert json.loads(cli.ok("vacation", "show", "ann@a.test", "--json")) is None
    out = cli.ok("vacation", "set", "ann@a.test", "--subject", "Away", "--body", "Back Monday.")
    assert "active" in out
    shown = cli.ok("vacation", "show", "ann@a.test")
    assert "Away" in shown and shown.rstrip().endswith("Back Monday.")
    assert "yes" in cli.ok("user", "show", "ann@a.test").splitlines()[-1]
    body = tmp_path / "body.txt"
    body.write_text("Line one.\nLine two.\n", encoding="utf-8")
    data = json.loads(
        cli.ok(
            "vacation",
            "set",
            "ann@a.test",
            "--subject",
            "Later",
            "--body-file",
            str(body),
            "--start",
            "2099-01-01",
            "--end",
            "2099-02-01T12:00Z",
            "--interval-days",
            "3",
            "--json",
        )
    )
    assert data["subject"] == "Later" and data["body"] == "Line one.\nLine two.\n"
    assert data["end"] == "2099-02-01T12:00:00Z" and data["interval_days"] == 3
    assert data["active"] is False
    assert json.loads(cli.ok("vacation", "show", "ann@a.test", "--json")) == data
    assert "turned off" in cli.ok("vacation", "off", "ann@a.test")
    assert "no vacation message" in cli.fails("vacation", "off", "ann@a.test")


def test_vacation_body_from_stdin(cli: Cli) -> None:
    cli.ok("vacation", "set", "ann@a.test", "--subject", "S", "--body-file", "-", input="Hi\n")
    data = json.loads(cli.ok("vacation", "show", "ann@a.test", "--json"))
    assert data["body"] == "Hi\n"
    assert "standard input" in cli.fails(
        "vacation",
        "set",
        "ann@a.test",
        "--subject",
        "S",
        "--body-file",
        "-",
        "--user",
        "ann@a.test",
        "--password-stdin",
        input=USER_PASSWORD + "\nHi\n",
    )


def test_vacation_bad_values(cli: Cli) -> None:
    base = ("vacation", "set", "ann@a.test", "--subject", "S")
    assert "--body TEXT or --body-file" in cli.fails(*base)
    assert "--body TEXT or --body-file" in cli.fails(*base, "--body", "x", "--body-file", "-")
    assert "end after it starts" in cli.fails(
        *base, "--body", "x", "--start", "2030-02-01", "--end", "2030-01-01"
    )
    assert "subject cannot be empty" in cli.fails(
        "vacation", "set", "ann@a.test", "--subject", " ", "--body", "x"
    )
    assert "no such mailbox" in cli.fails(
        "vacation", "set", "nobody@a.test", "--subject", "S", "--body", "x"
    )
    for option, value in [("--interval-days", "0"), ("--start", "soon"), ("--end", "2030-02-30")]:
        result = cli.run(*base, "--body", "x", option, value)
        assert result.exit_code == 2 and f"'{option}'" in result.output, result.output


def test_vacation_permissions(cli: Cli) -> None:
    me = ("--user", "ann@a.test", "--password-stdin")
    pw = USER_PASSWORD + "\n"
    cli.ok("vacation", "set", "ann@a.test", "--subject", "S", "--body", "x", *me, input=pw)
    assert json.loads(cli.ok("vacation", "show", "ann@a.test", "--json", *me, input=pw))
    for args in (
        ("vacation", "set", "bob@b.test", "--subject", "S", "--body", "x"),
        ("vacation", "show", "bob@b.test"),
        ("vacation", "off", "bob@b.test"),
    ):
        assert "may only manage its own mailbox" in cli.fails(*args, *me, input=pw)
        owner = ("--as", "alice", "--password-stdin")
        assert "owner alice does not manage domain b.test" in cli.fails(
            *args, *owner, input=OWNER_PASSWORD + "\n"
        )
    cli.ok("vacation", "off", "ann@a.test", *me, input=pw)
