"""Who runs a directory command: the site, an owner (``--as``) or a user (``--user``).

Without ``--as``/``--user`` the caller is the site administrator (whoever
can read the state folder can read the directory anyway). ``--as OWNER``
acts as that domain owner, after its password, and may touch only the
owner's domains. ``--user ADDRESS`` acts as that mailbox's user, after the
mailbox password, and may change only its password, forwards and vacation.
Passwords are never taken from the command line (it shows in ``ps`` and
shell histories): they are prompted for, hidden, or read one per line from
standard input with ``--password-stdin``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import click

from mailyard.cli.context import CliContext, CliError
from mailyard.directory.admin import SITE_ADMIN, Actor, DirectoryError, OwnerActor, UserActor
from mailyard.directory.logins import authenticate, authenticate_owner
from mailyard.directory.model import canonical_owner_name
from mailyard.directory.store import Directory
from mailyard.message.address import Address, AddressError, parse_address

__all__ = [
    "ACTOR_HELP",
    "SECRETS_HELP",
    "USER_HELP",
    "WHO_HELP",
    "Passwords",
    "Session",
    "as_option",
    "json_option",
    "parse_cli_address",
    "session",
    "stdin_option",
    "user_option",
]

_F = TypeVar("_F", bound=Callable[..., Any])

SECRETS_HELP: Final = (
    "Passwords are never accepted on the command line. On a terminal they are "
    "prompted for (hidden, new ones twice). With --password-stdin they are read "
    "from standard input, one per line: with --as or --user, the first line is the "
    "owner's or the user's password and the next line the new password, if the "
    "command sets one."
)
ACTOR_HELP: Final = (
    "Without --as you act as the site administrator (anyone who can read the "
    "state folder). --as OWNER acts as that domain owner, after its password, "
    "and may only touch the owner's own domains and their mailboxes."
)
USER_HELP: Final = (
    "--user ADDRESS acts as that mailbox's user, after the mailbox password, and "
    "may only change its own password, forwards, keep-copy and vacation message."
)
WHO_HELP: Final = f"{ACTOR_HELP}\n\n{SECRETS_HELP}"

# click.option(...) builds a fresh Option each time it decorates, so these are reusable.
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
stdin_option = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read passwords from standard input, one per line, instead of prompting.",
)
_owner_option = click.option(
    "--as",
    "as_owner",
    metavar="OWNER",
    help="Act as this domain owner (its password is asked first); default: site admin.",
)
user_option = click.option(
    "--user",
    "as_user",
    metavar="ADDRESS",
    help="Act as this mailbox's user (its password is asked first).",
)


def as_option(f: _F) -> _F:
    """``--as OWNER`` and ``--password-stdin``."""
    return _owner_option(stdin_option(f))


@dataclass
class Passwords:
    """Where passwords come from: hidden prompts, or stdin lines with --password-stdin."""

    from_stdin: bool

    def _line(self, what: str) -> str:
        line = sys.stdin.readline()
        if not line:
            raise CliError(f"--password-stdin: expected the {what} on standard input")
        return line.rstrip("\r\n")

    def owner(self, name: str) -> str:
        """The owner's password."""
        if self.from_stdin:
            return self._line(f"password of owner {name}")
        return str(click.prompt(f"Password of owner {name}", hide_input=True))

    def user(self, address: Address) -> str:
        """The mailbox's password."""
        if self.from_stdin:
            return self._line(f"password of {address}")
        return str(click.prompt(f"Password of {address}", hide_input=True))

    def new(self) -> str:
        """A new password (twice on a terminal); an empty one is refused."""
        if self.from_stdin:
            password = self._line("new password")
        else:
            password = str(click.prompt("New password", hide_input=True, confirmation_prompt=True))
        if not password:
            raise CliError("an empty password is refused")
        return password


@dataclass(frozen=True, slots=True)
class Session:
    """An open directory, the authenticated actor and the Maildirs' root."""

    directory: Directory
    actor: Actor
    mail_root: str


def parse_cli_address(text: str) -> Address:
    """An address typed on the command line; CliError if it does not parse."""
    try:
        return parse_address(text.strip())
    except AddressError as exc:
        raise CliError(f"invalid address {text!r}: {exc}") from exc


def _authenticate(
    directory: Directory, as_owner: str | None, as_user: str | None, passwords: Passwords
) -> Actor:
    if as_owner is not None and as_user is not None:
        raise CliError("--as and --user cannot be used together")
    if as_owner is not None:
        # Checked first: the name goes into messages, and one that cannot
        # exist need not cost a password entry.
        name = canonical_owner_name(as_owner)
        owner = authenticate_owner(directory, name, passwords.owner(name))
        if owner is None:
            raise CliError(f"authentication failed for owner {name}")
        return OwnerActor(owner.name)
    if as_user is not None:
        address = parse_cli_address(as_user)
        mailbox = authenticate(directory, str(address), passwords.user(address), None)
        if mailbox is None:
            raise CliError(f"authentication failed for {address}")
        return UserActor(mailbox.address)
    return SITE_ADMIN


@contextmanager
def session(
    ctx: CliContext,
    as_owner: str | None = None,
    passwords: Passwords | None = None,
    as_user: str | None = None,
) -> Iterator[Session]:
    """Open the directory, authenticate the actor, turn DirectoryError into one CLI line."""
    config = ctx.config()
    try:
        directory = Directory.open(config.path("directory.sqlite"))
    except DirectoryError as exc:
        raise CliError(str(exc)) from exc
    try:
        source = passwords or Passwords(from_stdin=False)
        actor = _authenticate(directory, as_owner, as_user, source)
        yield Session(directory, actor, config.path("mail"))
    except DirectoryError as exc:
        raise CliError(str(exc)) from exc
    finally:
        directory.close()
