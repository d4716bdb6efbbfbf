"""VMailMgr's vpwentry records (the values of ``passwd.cdb``) and the plan they give (pure).

The record layouts, as VMailMgr 0.96/0.97 reads them (lib/vpwentry
``from_record``, ``decode_flags``/``decode_base``/``decode_values``; the C
rewrite's ``vpwentry_import``/``vpwentry_export``); the CDB key is the user
name, lowercased:

* version 2 (``\\x02``): flag pairs ``<flag octet><value octet>`` ended by a
  NUL (flag 8 = mailbox enabled, flag 10 = has mailbox); then NUL-ended
  ``password`` (crypt hash), ``directory`` (the Maildir, usually
  ``./users/<name>``; empty = no mailbox); the forwards, each NUL-ended,
  then one more NUL; ``personal``; then six NUL-ended decimal numbers
  ``hardquota softquota msgsize msgcount ctime expiry``, where ``-`` (or
  4294967295, UINT_MAX) means "no limit" / "never"; nothing may follow;
* version 1 (``\\x01``): the same without the flags (mailbox enabled);
* the old form: ``:password:rest`` where ``rest`` is a directory if it
  starts with ``.`` or ``/``, else comma-separated forwards (``&`` first
  optional); no limits.

What the numbers mean follows vdeliver and vcheckquota: a message larger
than ``msgsize`` is refused, more than ``msgcount`` messages are refused,
the hard quota (or the soft quota when only that is set) bounds the bytes;
``expiry`` is the time after which the user gets neither mail nor logins.
A disabled mailbox still forwards (vdeliver delivers to the Maildir only
when the mailbox is enabled, and always to the forwards).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from mailyard.directory.errors import InvalidInput
from mailyard.directory.model import hosted_domain
from mailyard.importers.report import Unmapped
from mailyard.message.address import Address, AddressError, parse_address, validate_localpart

__all__ = [
    "DEFAULT_USER",
    "FLAG_HAS_MAILBOX",
    "FLAG_MAILBOX_ENABLED",
    "UNLIMITED",
    "MailboxSettings",
    "PlannedAlias",
    "PlannedMailbox",
    "VmailmgrPlan",
    "VpwEntry",
    "VpwError",
    "decode_vpwentry",
    "encode_vpwentry",
    "plan_vmailmgr",
]

UNLIMITED: Final = 2**32 - 1  # C's UINT_MAX, written "-" by the C version
FLAG_MAILBOX_ENABLED: Final = 8  # vdomain::ATTR_MAILBOX_ENABLED
FLAG_HAS_MAILBOX: Final = 10  # vdomain::ATTR_HAS_MAILBOX
# VMailMgr's default-username: the entry used for names that match nothing.
DEFAULT_USER: Final = "+"
_NUMBERS: Final = 6
_UNLIMITED_TEXT: Final = b"-"
_LOCKED: Final = ("*", "!")


class VpwError(ValueError):
    """A record that is not a vpwentry VMailMgr could read."""


@dataclass(frozen=True, slots=True)
class VpwEntry:
    """One decoded vpwentry; limits and expiry None = unlimited / never."""

    name: str
    password: str
    directory: str
    forwards: tuple[str, ...] = ()
    personal: str = ""
    hardquota: int | None = None
    softquota: int | None = None
    msgsize: int | None = None
    msgcount: int | None = None
    ctime: int | None = None
    expiry: int | None = None
    mailbox_enabled: bool = True
    has_mailbox: bool = True
    version: int = 2


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _take(data: bytes, pos: int, what: str) -> tuple[bytes, int]:
    end = data.find(b"\0", pos)
    if end < 0:
        raise VpwError(f"the record ends inside its {what}")
    return data[pos:end], end + 1


def _number(raw: bytes, what: str) -> int | None:
    if raw == _UNLIMITED_TEXT:
        return None
    if not raw.isdigit():
        raise VpwError(f"{what} is not a number: {raw!r}")
    value = int(raw)
    if value > UNLIMITED:
        raise VpwError(f"{what} is out of range: {value}")
    return None if value == UNLIMITED else value


def _flags(data: bytes, pos: int) -> tuple[dict[int, bool], int]:
    flags: dict[int, bool] = {}
    while pos < len(data):
        flag = data[pos]
        pos += 1
        if flag == 0:
            return flags, pos
        if pos >= len(data):
            break
        if flag not in (FLAG_MAILBOX_ENABLED, FLAG_HAS_MAILBOX):
            raise VpwError(f"unknown flag {flag}")  # decode_flags refuses them too
        flags[flag] = bool(data[pos])
        pos += 1
    raise VpwError("the record ends inside its flags")


def _decode_numbered(name: str, data: bytes, version: int) -> VpwEntry:
    if not data.endswith(b"\0"):
        raise VpwError("the record does not end with NUL")
    pos = 1
    flags: dict[int, bool] = {}
    if version == 2:
        flags, pos = _flags(data, pos)
    password, pos = _take(data, pos, "password")
    directory, pos = _take(data, pos, "directory")
    forwards: list[str] = []
    while True:
        forward, pos = _take(data, pos, "forwards")
        if not forward:
            break
        forwards.append(_text(forward))
    personal, pos = _take(data, pos, "personal name")
    numbers: list[int | None] = []
    for what in ("hardquota", "softquota", "msgsize", "msgcount", "ctime", "expiry"):
        raw, pos = _take(data, pos, what)
        numbers.append(_number(raw, what))
    if pos != len(data):
        raise VpwError("unexpected data after the expiry")
    hard, soft, size, count, ctime, expiry = numbers
    return VpwEntry(
        name, _text(password), _text(directory), tuple(forwards), _text(personal),
        hard, soft, size, count, ctime, expiry,
        mailbox_enabled=flags.get(FLAG_MAILBOX_ENABLED, True),
        # As vpwentry_import: the directory decides, whatever the flag said.
        has_mailbox=bool(directory),
        version=version,
    )


def _decode_old(name: str, data: bytes) -> VpwEntry:
    password, colon, rest = data[1:].partition(b":")
    if not colon:
        raise VpwError("an old-style record needs ':password:destination'")
    if rest[:1] in (b".", b"/"):
        return VpwEntry(name, _text(password), _text(rest), version=0)
    if rest[:1] == b"&":
        rest = rest[1:]
    forwards = tuple(_text(f) for f in rest.split(b",") if f)
    return VpwEntry(name, _text(password), "", forwards, has_mailbox=False, version=0)


def decode_vpwentry(name: bytes, data: bytes) -> VpwEntry:
    """Decode one ``passwd.cdb`` item; VpwError if VMailMgr could not read it either."""
    if not data:
        raise VpwError("empty record")
    text_name = _text(name)
    if data[0] == 2:
        return _decode_numbered(text_name, data, 2)
    if data[0] == 1:
        return _decode_numbered(text_name, data, 1)
    if data[:1] == b":":
        return _decode_old(text_name, data)
    raise VpwError(f"unknown record version {data[0]}")


def _encode_number(value: int | None) -> bytes:
    return _UNLIMITED_TEXT if value is None else str(value).encode("ascii")


def encode_vpwentry(entry: VpwEntry) -> bytes:
    """The version 2 record of ``entry`` (what vpwentry_export writes)."""
    has_mailbox = entry.has_mailbox and bool(entry.directory)
    out = bytearray(b"\x02")
    out += bytes([FLAG_HAS_MAILBOX, int(has_mailbox), FLAG_MAILBOX_ENABLED,
                  int(entry.mailbox_enabled), 0])
    out += _raw(entry.password) + b"\0" + _raw(entry.directory) + b"\0"
    for forward in entry.forwards:
        out += _raw(forward) + b"\0"
    out += b"\0" + _raw(entry.personal) + b"\0"
    for value in (entry.hardquota, entry.softquota, entry.msgsize, entry.msgcount,
                  entry.ctime, entry.expiry):
        out += _encode_number(value) + b"\0"
    return bytes(out)


# -- the plan ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MailboxSettings:
    """The mailyard settings of an imported mailbox (directory.model.Mailbox names)."""

    enabled: bool = True
    receive: bool = True
    expires: float | None = None
    display_name: str = ""
    quota_bytes: int | None = None
    quota_messages: int | None = None
    max_message_size: int | None = None
    forwards: tuple[str, ...] = ()
    keep_copy: bool = True


@dataclass(frozen=True, slots=True)
class PlannedMailbox:
    """A mailbox to create, adopting the Maildir at ``source`` (absolute)."""

    address: Address
    password_hash: str
    source: str
    settings: MailboxSettings


@dataclass(frozen=True, slots=True)
class PlannedAlias:
    """An entry without a mailbox: an alias to its forwards."""

    address: Address
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VmailmgrPlan:
    """Everything a passwd.cdb gives for one domain."""

    domain: str
    mailboxes: tuple[PlannedMailbox, ...]
    aliases: tuple[PlannedAlias, ...]
    catch_all: tuple[str, ...]
    unmapped: tuple[Unmapped, ...]
    notes: tuple[str, ...]


def _forward(text: str, domain: str) -> str:
    """A forward as vdeliver expands it: a bare name is a user of the same domain."""
    text = text.strip()
    if "@" not in text:
        text = f"{text}@{domain}"
    elif text.endswith("@"):
        # vdeliver appends qmail's control/me here, which the import cannot know.
        raise AddressError("ends with '@' (qmail appends control/me)")
    return str(parse_address(text))


def _forwards(entry: VpwEntry, domain: str, unmapped: list[Unmapped]) -> tuple[str, ...]:
    out: list[str] = []
    for raw in entry.forwards:
        try:
            forward = _forward(raw, domain)
        except AddressError as exc:
            unmapped.append(Unmapped(f"{entry.name}: forward {raw!r}", str(exc)))
            continue
        if forward not in out:
            out.append(forward)
    return tuple(out)


def _settings(entry: VpwEntry, forwards: tuple[str, ...], notes: list[str]) -> MailboxSettings:
    quota = entry.hardquota if entry.hardquota is not None else entry.softquota
    if entry.hardquota is not None and entry.softquota not in (None, entry.hardquota):
        notes.append(f"{entry.name}: soft quota {entry.softquota} not kept (mailyard warns "
                     f"at 90% of the hard quota {entry.hardquota} instead)")
    # vdeliver: a disabled mailbox still forwards; without forwards its mail
    # vanished, which mailyard turns into a refusal.
    keep = entry.mailbox_enabled or not forwards
    return MailboxSettings(
        enabled=not entry.password.startswith(_LOCKED) and bool(entry.password),
        receive=entry.mailbox_enabled or bool(forwards),
        expires=None if entry.expiry is None else float(entry.expiry),
        display_name=entry.personal,
        # 0 meant "no limit" to older VMailMgr releases; a zero limit would
        # refuse every message, so it is read as none (the domain's default).
        quota_bytes=quota or None,
        quota_messages=entry.msgcount or None,
        max_message_size=entry.msgsize or None,
        forwards=forwards,
        keep_copy=keep,
    )


def _source(home: str, directory: str) -> str | None:
    """The Maildir's absolute path, if it lies inside the domain's home."""
    path = posixpath.normpath(posixpath.join(home, directory))
    inside = posixpath.normpath(home)
    return path if path != inside and path.startswith(inside.rstrip("/") + "/") else None


def _address(name: str, domain: str) -> Address:
    validate_localpart(name, utf8=True)
    return Address(name, domain)


def plan_vmailmgr(entries: Iterable[VpwEntry], domain: str, home: str) -> VmailmgrPlan:
    """Map decoded entries of ``domain`` (its VMailMgr home ``home``, absolute) to a plan."""
    name = hosted_domain(domain)
    mailboxes: list[PlannedMailbox] = []
    aliases: list[PlannedAlias] = []
    catch_all: tuple[str, ...] = ()
    unmapped: list[Unmapped] = []
    notes: list[str] = []
    for entry in sorted(entries, key=lambda e: e.name):
        forwards = _forwards(entry, name, unmapped)
        if entry.name == DEFAULT_USER:
            if entry.has_mailbox:
                unmapped.append(Unmapped(entry.name, "the default user has a mailbox; set a "
                                         "catch-all alias to an imported mailbox by hand"))
            catch_all = forwards
            continue
        try:
            address = _address(entry.name, name)
        except (AddressError, InvalidInput) as exc:
            unmapped.append(Unmapped(entry.name, f"not a usable local part: {exc}"))
            continue
        if not entry.has_mailbox:
            if forwards:
                aliases.append(PlannedAlias(address, forwards))
            else:
                unmapped.append(Unmapped(entry.name, "neither a mailbox nor forwards"))
            continue
        source = _source(home, entry.directory)
        if source is None:
            unmapped.append(Unmapped(entry.name, f"Maildir {entry.directory!r} is not inside "
                                     f"the domain directory {home}"))
            continue
        mailboxes.append(PlannedMailbox(address, entry.password or "*", source,
                                        _settings(entry, forwards, notes)))
    return VmailmgrPlan(name, tuple(mailboxes), tuple(aliases), catch_all,
                        tuple(unmapped), tuple(notes))
