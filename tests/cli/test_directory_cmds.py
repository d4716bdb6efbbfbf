from __future__ import annotations

import json

import pytest

from mailyard.directory.logins import authenticate, authenticate_owner
from mailyard.directory.store import Directory
from tests.cli.conftest import OWNER_PASSWORD, USER_PASSWORD, Cli


def _directory(cli: Cli) -> Directory:
    return Directory.open(str(cli.state / "directory.sqlite"))


def _can_log_in(cli: Cli, login: str, password: str) -> bool:
    with _directory(cli) as d:
        return authenticate(d, login, password, None) is not None


# -- listing an empty and a populated state folder ---------------------------------


def test_empty_lists(empty_cli: Cli) -> None:
    assert "no owners" in empty_cli.ok("owner", "list")
    assert "no domains" in empty_cli.ok("domain", "list")
    assert "no mailboxes" in empty_cli.ok("user", "list")
    for group in ("owner", "domain", "user"):
        assert json.loads(empty_cli.ok(group, "list", "--json")) == []


def test_tables_are_aligned(cli: Cli) -> None:
    lines = cli.ok("domain", "list").splitlines()
    assert lines[0].split() == ["DOMAIN", "OWNER", "MAILBOXES", "CREATED"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["a.test", "alice", "1"],
        ["b.test", "-", "1"],
    ]
    assert lines[1].index("alice") == lines[0].index("OWNER")


# -- owner --------------------------------------------------------------------------


def test_owner_add_list_passwd_remove(cli: Cli) -> None:
    created = json.loads(
        cli.ok("owner", "add", "Carol", "--password-stdin", "--json", input="c pw\n")
    )
    assert created["name"] == "carol" and created["domains"] == []
    owners = {o["name"]: o for o in json.loads(cli.ok("owner", "list", "--json"))}
    assert owners["alice"]["domains"] == ["a.test"] and owners["carol"]["domains"] == []
    assert "carol" in cli.ok("owner", "list")
    cli.ok("owner", "passwd", "carol", "--password-stdin", input="new pw\n")
    with _directory(cli) as d:
        assert authenticate_owner(d, "carol", "new pw") is not None
        assert authenticate_owner(d, "carol", "c pw") is None
    assert "removed owner carol" in cli.ok("owner", "remove", "carol")
    assert "carol" not in cli.ok("owner", "list")


def test_owner_errors(cli: Cli) -> None:
    assert "already exists" in cli.fails("owner", "add", "alice", "--password-stdin", input="x\n")
    assert "invalid owner name" in cli.fails(
        "owner", "add", "no way", "--password-stdin", input="x\n"
    )
    assert "still owns 1 domain" in cli.fails("owner", "remove", "alice")
    assert "no such owner" in cli.fails("owner", "remove", "nobody")
    assert "no such owner" in cli.fails(
        "owner", "passwd", "nobody", "--password-stdin", input="x\n"
    )


# -- domain -------------------------------------------------------------------------


def test_domain_add_show_set_owner_remove(cli: Cli) -> None:
    created = json.loads(cli.ok("domain", "add", "Bücher.Example", "--owner", "alice", "--json"))
    assert created == {**created, "name": "xn--bcher-kva.example", "owner": "alice", "mailboxes": 0}
    shown = json.loads(cli.ok("domain", "show", "a.test", "--json"))
    assert shown["owner"] == "alice" and shown["mailboxes"] == 1
    assert [m["address"] for m in shown["mailbox_list"]] == ["ann@a.test"]
    table = cli.ok("domain", "show", "a.test")
    assert "owner" in table and "alice" in table and "ann@a.test" in table
    assert "owner alice" in cli.ok("domain", "set-owner", "b.test", "alice")
    assert "(none)" in cli.ok("domain", "set-owner", "b.test")
    assert "removed domain xn--bcher-kva.example" in cli.ok("domain", "remove", "bücher.example")


def test_domain_remove_refuses_mailboxes_unless_forced(cli: Cli) -> None:
    assert "still has 1 mailbox" in cli.fails("domain", "remove", "a.test")
    assert (cli.mail / "a.test" / "ann").is_dir()
    assert "and 1 mailbox" in cli.ok("domain", "remove", "a.test", "--force")
    assert not (cli.mail / "a.test").exists()
    cli.ok("domain", "remove", "b.test", "--force", "--keep-mail")
    assert (cli.mail / "b.test" / "bob" / "new").is_dir()
    assert json.loads(cli.ok("user", "list", "--json")) == []


def test_domain_errors(cli: Cli) -> None:
    assert "already exists" in cli.fails("domain", "add", "A.TEST")
    assert "invalid domain" in cli.fails("domain", "add", "bad..name")
    assert "address literal" in cli.fails("domain", "add", "[192.0.2.1]")
    assert "no such owner" in cli.fails("domain", "add", "c.test", "--owner", "nobody")
    assert "no such domain" in cli.fails("domain", "show", "c.test")
    assert "no such domain" in cli.fails("domain", "remove", "c.test")


# -- user ---------------------------------------------------------------------------


def test_user_add_show_list(cli: Cli) -> None:
    created = json.loads(
        cli.ok("user", "add", "Carl.Doe@a.test", "--password-stdin", "--json", input="pw\n")
    )
    assert created["address"] == "Carl.Doe@a.test"
    assert created["maildir"] == "a.test/carl.doe" and created["enabled"] is True
    assert all((cli.mail / "a.test" / "carl.doe" / sub).is_dir() for sub in ("tmp", "new", "cur"))
    assert json.loads(cli.ok("user", "show", "carl.doe@A.TEST", "--json")) == created
    assert "a.test/carl.doe" in cli.ok("user", "show", "carl.doe@a.test")
    everyone = [m["address"] for m in json.loads(cli.ok("user", "list", "--json"))]
    assert everyone == ["ann@a.test", "Carl.Doe@a.test", "bob@b.test"]
    in_b = [m["address"] for m in json.loads(cli.ok("user", "list", "b.test", "--json"))]
    assert in_b == ["bob@b.test"]
    assert "Carl.Doe@a.test" in cli.ok("user", "list", "a.test")
    assert _can_log_in(cli, "carl.doe@a.test", "pw")


def test_user_passwd_disable_enable(cli: Cli) -> None:
    cli.ok("user", "passwd", "ann@a.test", "--password-stdin", input="changed\n")
    assert _can_log_in(cli, "ann@a.test", "changed")
    assert not _can_log_in(cli, "ann@a.test", USER_PASSWORD)
    assert "disabled ann@a.test" in cli.ok("user", "disable", "ann@a.test")
    assert json.loads(cli.ok("user", "show", "ann@a.test", "--json"))["enabled"] is False
    assert not _can_log_in(cli, "ann@a.test", "changed")
    cli.ok("user", "enable", "ann@a.test")
    assert _can_log_in(cli, "ann@a.test", "changed")


def test_user_remove_deletes_or_keeps_mail(cli: Cli) -> None:
    (cli.mail / "a.test" / "ann" / "new" / "1.x").write_text("mail")
    cli.ok("user", "remove", "ann@a.test", "--keep-mail")
    assert (cli.mail / "a.test" / "ann" / "new" / "1.x").exists()
    cli.ok("user", "remove", "bob@b.test")
    assert not (cli.mail / "b.test" / "bob").exists()
    assert json.loads(cli.ok("user", "list", "--json")) == []


def test_prompted_passwords(cli: Cli) -> None:
    result = cli.run("user", "add", "carl@a.test", input="typed pw\ntyped pw\n")
    assert result.exit_code == 0, result.output
    assert "typed pw" not in result.output  # hidden input is not echoed
    assert "New password:" in result.output and "Repeat for confirmation:" in result.output
    assert _can_log_in(cli, "carl@a.test", "typed pw")


def test_passwords_are_never_options(cli: Cli) -> None:
    result = cli.run("user", "add", "carl@a.test", "--password", "pw")
    assert result.exit_code == 2  # click usage error: no such option


# -- --as OWNER ------------------------------------------------------------------------


def test_as_owner_on_own_domain(cli: Cli) -> None:
    owner_then_new = f"{OWNER_PASSWORD}\nowner-set pw\n"
    cli.ok("user", "add", "carl@a.test", "--as", "alice", "--password-stdin", input=owner_then_new)
    assert _can_log_in(cli, "carl@a.test", "owner-set pw")
    listed = cli.ok(
        "user", "list", "--as", "alice", "--password-stdin", "--json", input=OWNER_PASSWORD + "\n"
    )
    assert [m["address"] for m in json.loads(listed)] == ["ann@a.test", "carl@a.test"]
    domains = cli.ok(
        "domain", "list", "--as", "alice", "--password-stdin", "--json", input=OWNER_PASSWORD + "\n"
    )
    assert [d["name"] for d in json.loads(domains)] == ["a.test"]
    cli.ok(
        "user",
        "disable",
        "carl@a.test",
        "--as",
        "alice",
        "--password-stdin",
        input=OWNER_PASSWORD + "\n",
    )
    cli.ok(
        "user",
        "remove",
        "carl@a.test",
        "--as",
        "alice",
        "--password-stdin",
        input=OWNER_PASSWORD + "\n",
    )


def test_as_owner_prompted(cli: Cli) -> None:
    result = cli.run(
        "user", "passwd", "ann@a.test", "--as", "alice", input=f"{OWNER_PASSWORD}\nnp\nnp\n"
    )
    assert result.exit_code == 0, result.output
    assert "Password of owner alice" in result.output
    assert _can_log_in(cli, "ann@a.test", "np")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("user", "add", "eve@b.test"), "owner alice does not manage domain b.test"),
        (("user", "show", "bob@b.test"), "owner alice does not manage domain b.test"),
        (("user", "remove", "bob@b.test"), "owner alice does not manage domain b.test"),
        (("user", "disable", "bob@b.test"), "owner alice does not manage domain b.test"),
        (("user", "list", "b.test"), "owner alice does not manage domain b.test"),
        (("domain", "show", "b.test"), "owner alice does not manage domain b.test"),
        (("domain", "add", "c.test"), "only the site administrator may add domains"),
        (("domain", "remove", "a.test"), "only the site administrator may remove domains"),
    ],
)
def test_as_owner_denied(cli: Cli, args: tuple[str, ...], expected: str) -> None:
    message = cli.fails(*args, "--as", "alice", "--password-stdin", input=f"{OWNER_PASSWORD}\nx\n")
    assert message == expected
    assert (cli.mail / "b.test" / "bob").is_dir()


def test_wrong_owner_password(cli: Cli) -> None:
    message = cli.fails("user", "list", "--as", "alice", "--password-stdin", input="wrong\n")
    assert message == "authentication failed for owner alice"
    message = cli.fails("user", "list", "--as", "nobody", "--password-stdin", input="wrong\n")
    assert message == "authentication failed for owner nobody"


# -- every other error path: one line, exit status 1 ------------------------------------


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (("user", "add", "not an address", "--password-stdin"), "pw\n", "invalid address"),
        (
            ("user", "add", "x@nowhere.test", "--password-stdin"),
            "pw\n",
            "no such domain nowhere.test",
        ),
        (
            ("user", "add", "ANN@a.test", "--password-stdin"),
            "pw\n",
            "mailbox ANN@a.test already exists",
        ),
        (("user", "add", "carl@a.test", "--password-stdin"), "\n", "an empty password is refused"),
        (("user", "add", "carl@a.test", "--password-stdin"), "", "expected the new password"),
        (("user", "show", "nobody@a.test"), None, "no such mailbox nobody@a.test"),
        (("user", "remove", "nobody@a.test"), None, "no such mailbox nobody@a.test"),
        (("user", "enable", "nobody@a.test"), None, "no such mailbox nobody@a.test"),
        (("user", "passwd", "nobody@a.test", "--password-stdin"), "x\n", "no such mailbox"),
        (("user", "list", "nowhere.test"), None, "no such domain nowhere.test"),
        (("user", "show", "ann@[192.0.2.1]"), None, "address literal"),
        (
            ("user", "list", "--as", "alice", "--password-stdin"),
            "",
            "expected the password of owner",
        ),
    ],
)
def test_user_errors(cli: Cli, args: tuple[str, ...], stdin: str | None, expected: str) -> None:
    assert expected in cli.fails(*args, input=stdin)


def test_uninitialised_state_folder(tmp_path: pytest.TempPathFactory, cli: Cli) -> None:
    other = Cli(cli.state.parent / "nothing-here", cli.group)
    assert "not a mailyard state folder" in other.fails("domain", "list")


def test_control_characters_never_reach_a_message(cli: Cli) -> None:
    message = cli.fails("user", "list", "--as", "ali\nce", "--password-stdin", input="x\n")
    assert "invalid owner name 'ali\\nce'" in message
    assert "invalid owner name" in cli.fails("owner", "passwd", "a\nb", "--password-stdin")
    assert "invalid address" in cli.fails("user", "show", "a\nb@a.test")
