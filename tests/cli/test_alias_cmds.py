from __future__ import annotations

import json

from tests.cli.conftest import OWNER_PASSWORD, Cli


def test_alias_add_list_show_remove(cli: Cli) -> None:
    out = cli.ok("alias", "add", "Info@A.test", "ann@a.test", "x@remote.test", "ANN@a.test")
    assert "added alias Info@a.test with 2 target(s)" in out
    created = json.loads(
        cli.ok("alias", "add", "list@a.test", "bob@b.test", "--owner", "ann@a.test", "--json")
    )
    assert created["targets"] == ["bob@b.test"] and created["owner"] == "ann@a.test"
    listed = json.loads(cli.ok("alias", "list", "--json"))
    assert [a["address"] for a in listed] == ["Info@a.test", "list@a.test"]
    assert json.loads(cli.ok("alias", "list", "b.test", "--json")) == []
    table = cli.ok("alias", "list").splitlines()
    assert table[0].split()[:2] == ["ALIAS", "TARGETS"]
    assert table[1].startswith("Info@a.test") and "x@remote.test" in table[1]
    shown = cli.ok("alias", "show", "info@a.test")
    assert shown.rstrip().splitlines()[-2:] == ["ann@a.test", "x@remote.test"]
    assert json.loads(cli.ok("alias", "show", "list@a.test", "--json")) == created
    assert "removed alias Info@a.test" in cli.ok("alias", "remove", "info@a.test")
    assert "no such alias" in cli.fails("alias", "show", "info@a.test")


def test_alias_replace(cli: Cli) -> None:
    cli.ok("alias", "add", "info@a.test", "ann@a.test")
    assert "already exists" in cli.fails("alias", "add", "info@a.test", "x@remote.test")
    out = cli.ok("alias", "add", "info@a.test", "x@remote.test", "--replace")
    assert "replaced alias" in out
    assert json.loads(cli.ok("alias", "show", "info@a.test", "--json"))["targets"] == [
        "x@remote.test"
    ]
    # --replace of a new address simply adds it.
    assert "added alias" in cli.ok("alias", "add", "new@a.test", "ann@a.test", "--replace")


def test_long_lists_are_shortened_in_the_table(cli: Cli) -> None:
    targets = [f"m{i}@remote.test" for i in range(10)]
    cli.ok("alias", "add", "big@a.test", *targets)
    row = cli.ok("alias", "list").splitlines()[1]
    assert "m2@remote.test" in row and "m3@remote.test" not in row and "(7 more)" in row
    assert len(json.loads(cli.ok("alias", "show", "big@a.test", "--json"))["targets"]) == 10


def test_alias_errors_are_one_line(cli: Cli) -> None:
    assert "is a mailbox" in cli.fails("alias", "add", "ann@a.test", "x@remote.test")
    assert "invalid address" in cli.fails("alias", "add", "nonsense", "x@remote.test")
    assert "invalid alias target" in cli.fails("alias", "add", "x@a.test", "bad target")
    assert "itself" in cli.fails("alias", "add", "x@a.test", "X@a.test")
    assert "no such domain" in cli.fails("alias", "add", "x@zz.test", "ann@a.test")
    assert "invalid list owner" in cli.fails(
        "alias", "add", "x@a.test", "ann@a.test", "--owner", "nobody"
    )
    assert "is a mailbox, not an alias" in cli.fails("alias", "remove", "ann@a.test")
    assert "no such alias" in cli.fails("alias", "remove", "zz@a.test")
    assert "no aliases" in cli.ok("alias", "list")
    # No target at all is a usage error.
    assert cli.run("alias", "add", "x@a.test").exit_code == 2


def test_owner_manages_only_its_own_aliases(cli: Cli) -> None:
    def owner(*args: str) -> tuple[str, ...]:
        return (*args, "--as", "alice", "--password-stdin")

    pw = OWNER_PASSWORD + "\n"
    cli.ok(*owner("alias", "add", "info@a.test", "ann@a.test"), input=pw)
    cli.ok("alias", "add", "info@b.test", "bob@b.test")
    listed = json.loads(cli.ok(*owner("alias", "list", "--json"), input=pw))
    assert [a["address"] for a in listed] == ["info@a.test"]
    for args in (
        ("alias", "add", "x@b.test", "ann@a.test"),
        ("alias", "show", "info@b.test"),
        ("alias", "remove", "info@b.test"),
        ("alias", "list", "b.test"),
    ):
        assert "owner alice does not manage domain b.test" in cli.fails(*owner(*args), input=pw)
    assert len(json.loads(cli.ok("alias", "list", "--json"))) == 2
