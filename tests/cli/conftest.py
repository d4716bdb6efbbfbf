from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from mailyard.cli import main
from mailyard.cli.context import CliError

OWNER_PASSWORD = "alice owner pw"
USER_PASSWORD = "ann user pw"


@dataclass
class Cli:
    """Runs real `mailyard` commands on one state folder through click's runner."""

    state: Path
    group: click.Group

    def run(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(self.group, ["--state", str(self.state), *args], input=input)

    def ok(self, *args: str, input: str | None = None) -> str:
        result = self.run(*args, input=input)
        assert result.exception is None, (result.output, result.exception)
        assert result.exit_code == 0, result.output
        return result.stdout

    def fails(self, *args: str, input: str | None = None) -> str:
        """The command fails as a user error: CliError, one line, exit status 1."""
        result = self.run(*args, input=input)
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, CliError), repr(result.exception)
        message = str(result.exception)
        assert message and "\n" not in message
        return message

    @property
    def mail(self) -> Path:
        return self.state / "mail"


@pytest.fixture(scope="session")
def group() -> click.Group:
    main._register()
    return main.cli


@pytest.fixture(scope="session")
def populated_template(tmp_path_factory: pytest.TempPathFactory, group: click.Group) -> Path:
    """Made once (hashing costs ~0.1 s a password): owner alice owns a.test;
    b.test has no owner; mailboxes ann@a.test and bob@b.test."""
    state = tmp_path_factory.mktemp("template") / "state"
    cli = Cli(state, group)
    cli.ok("init", "--hostname", "mx.example.test", "--default-domain", "a.test")
    cli.ok("owner", "add", "alice", "--password-stdin", input=OWNER_PASSWORD + "\n")
    cli.ok("domain", "add", "a.test", "--owner", "alice")
    cli.ok("domain", "add", "b.test")
    for address in ("ann@a.test", "bob@b.test"):
        cli.ok("user", "add", address, "--password-stdin", input=USER_PASSWORD + "\n")
    return state


@pytest.fixture
def cli(tmp_path: Path, group: click.Group, populated_template: Path) -> Cli:
    state = tmp_path / "state"
    shutil.copytree(populated_template, state)
    return Cli(state, group)


@pytest.fixture
def empty_cli(tmp_path: Path, group: click.Group) -> Cli:
    cli = Cli(tmp_path / "empty", group)
    cli.ok("init", "--hostname", "mx.example.test")
    return cli
