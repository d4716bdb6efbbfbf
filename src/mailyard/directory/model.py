"""The directory's values: owners, domains, mailboxes and the snapshot readers use.

Pure: no I/O. The canonical forms of every key are decided here, so the
store, the resolver and the CLI agree on them:

* a domain name is ``message.address.canonical_domain`` (lowercase IDNA
  A-label); address literals are not hostable domains;
* an owner name is lowercase ``[a-z0-9][a-z0-9._-]*`` (it appears in logs and
  on command lines, so it stays plain);
* a mailbox is looked up by ``Address.key`` (local part folded to lowercase).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from mailyard.directory.errors import InvalidInput
from mailyard.message.address import Address, AddressError, canonical_domain

__all__ = [
    "DEFAULT_EXTENSION_CHARS",
    "EMPTY_SNAPSHOT",
    "MAX_ALIAS_TARGETS",
    "MAX_OWNER_NAME",
    "Alias",
    "Domain",
    "DomainSettings",
    "Mailbox",
    "Owner",
    "Snapshot",
    "Vacation",
    "canonical_owner_name",
    "hosted_domain",
    "maildir_for",
    "maildir_local",
]

MAX_OWNER_NAME: Final = 64
_OWNER_FIRST: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_OWNER_CHARS: Final = _OWNER_FIRST | frozenset("._-")

# Characters a local part may keep verbatim in its Maildir directory name.
# "%" is deliberately absent: it introduces an escape, so a plain name can
# never look like an escaped one (that keeps the mapping injective).
_PLAIN_LOCAL: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._+=-")
_PLAIN_BYTES: Final = frozenset(ch.encode("ascii")[0] for ch in _PLAIN_LOCAL)
_DOT: Final = ord(".")


@dataclass(frozen=True, slots=True)
class Owner:
    """VMailMgr's domain owner: manages its own domains and their mailboxes."""

    name: str
    password_hash: str = field(repr=False, compare=False)
    created: float


# qmail's "-" is off by default: many real local parts contain hyphens.
DEFAULT_EXTENSION_CHARS: Final = "+"
# One alias expands to at most this many targets (a list bigger than this
# belongs in a list manager); bounds the work of one expansion.
MAX_ALIAS_TARGETS: Final = 10000


@dataclass(frozen=True, slots=True)
class DomainSettings:
    """What a domain's owner configures for the domain as a whole.

    * ``alias_of``: a domain alias — every address here is the same local
      part at that (hosted, non-alias) domain;
    * ``catch_all``: targets for local parts that match nothing else;
    * ``extension_chars``: the separators of ``user+ext`` (qmail's
      ``user-ext`` when it contains "-"); empty = no extensions;
    * ``quota_bytes`` / ``quota_messages``: default quota of its mailboxes
      (None = no limit);
    * ``total_quota_bytes``: what all its mailboxes together may hold;
    * ``max_message_size``: default per-mailbox message size limit.
    """

    alias_of: str | None = None
    catch_all: tuple[str, ...] = ()
    extension_chars: str = DEFAULT_EXTENSION_CHARS
    quota_bytes: int | None = None
    quota_messages: int | None = None
    total_quota_bytes: int | None = None
    max_message_size: int | None = None


@dataclass(frozen=True, slots=True)
class Domain:
    """A hosted domain; ``name`` in canonical A-label form."""

    name: str
    owner: str | None
    created: float
    settings: DomainSettings = DomainSettings()


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A mailbox: its address, its Maildir (relative to ``<state>/mail``), its login.

    VMailMgr's vpwentry settings:

    * ``enabled``: may log in; ``receive``: accepts mail (refused at RCPT
      with 550 5.2.1 when off); ``expires``: after this time (epoch
      seconds) neither;
    * ``quota_bytes`` / ``quota_messages`` / ``max_message_size``: None =
      the domain's default, 0 = explicitly no limit;
    * ``forwards``: addresses every message is also sent to, and
      ``keep_copy``: whether the mailbox keeps its own copy when there are
      forwards (without forwards it always does).
    """

    address: Address
    maildir: str
    enabled: bool
    password_hash: str = field(repr=False, compare=False)
    created: float
    receive: bool = True
    expires: float | None = None
    display_name: str = ""
    quota_bytes: int | None = None
    quota_messages: int | None = None
    max_message_size: int | None = None
    forwards: tuple[str, ...] = ()
    keep_copy: bool = True

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires

    def can_login(self, now: float) -> bool:
        return self.enabled and not self.expired(now)

    def accepts_mail(self, now: float) -> bool:
        return self.receive and not self.expired(now)


@dataclass(frozen=True, slots=True)
class Alias:
    """An address without a mailbox: mail to it goes to ``targets``.

    Targets are address strings as ``str(Address)`` writes them, local or
    remote. With ``owner`` set the alias is a mailing list: the expanded
    copies carry the owner as envelope sender, so bounces reach the owner
    and not each poster.
    """

    address: Address
    targets: tuple[str, ...]
    owner: str | None = None
    created: float = 0.0


@dataclass(frozen=True, slots=True)
class Vacation:
    """A mailbox's autoresponder (RFC 3834); active between ``start`` and ``end``."""

    address: Address
    subject: str
    body: str
    start: float | None = None
    end: float | None = None
    interval_days: int = 7  # reply at most once per sender per this many days
    enabled: bool = True

    def active(self, now: float) -> bool:
        return (
            self.enabled
            and (self.start is None or now >= self.start)
            and (self.end is None or now < self.end)
        )


def _empty_mapping() -> Mapping[tuple[str, str], Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An immutable view of the directory, shared by every reader until it changes.

    ``domains`` is keyed by canonical domain name, ``mailboxes``,
    ``aliases`` and ``vacations`` by ``Address.key``. Build it with
    ``Snapshot.build``; the mappings are read-only proxies, so a reader
    cannot change what another reader sees.
    """

    domains: Mapping[str, Domain]
    mailboxes: Mapping[tuple[str, str], Mailbox]
    aliases: Mapping[tuple[str, str], Alias] = field(default_factory=_empty_mapping)
    vacations: Mapping[tuple[str, str], Vacation] = field(default_factory=_empty_mapping)

    @classmethod
    def build(
        cls,
        domains: Iterable[Domain],
        mailboxes: Iterable[Mailbox],
        aliases: Iterable[Alias] = (),
        vacations: Iterable[Vacation] = (),
    ) -> Snapshot:
        return cls(
            MappingProxyType({d.name: d for d in domains}),
            MappingProxyType({m.address.key: m for m in mailboxes}),
            MappingProxyType({a.address.key: a for a in aliases}),
            MappingProxyType({v.address.key: v for v in vacations}),
        )


EMPTY_SNAPSHOT: Final = Snapshot.build((), ())


def hosted_domain(name: str) -> str:
    """Canonical form of a domain we may host; raise InvalidInput otherwise."""
    try:
        canonical = canonical_domain(name.strip())
    except AddressError as exc:
        raise InvalidInput(f"invalid domain {name!r}: {exc}") from exc
    if canonical.startswith("["):
        raise InvalidInput(f"{name} is an address literal, not a domain that can be hosted")
    return canonical


def canonical_owner_name(name: str) -> str:
    """Lowercase owner name, checked; raise InvalidInput if unusable."""
    folded = name.strip().lower()
    if not folded or len(folded) > MAX_OWNER_NAME:
        raise InvalidInput(f"owner name must be 1 to {MAX_OWNER_NAME} characters")
    if folded[0] not in _OWNER_FIRST or not set(folded) <= _OWNER_CHARS:
        raise InvalidInput(
            f"invalid owner name {name!r}: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return folded


def maildir_local(local: str) -> str:
    """The directory name for a local part: plain if harmless, else escaped.

    The lowercased local part is used as is when it consists only of
    ``[a-z0-9._+=-]`` and does not start with "." (no hidden names, no "."
    or ".."). Otherwise every UTF-8 byte outside that set, and a leading
    ".", becomes ``%XX``. Plain names never contain "%" and escaped names
    always do, and the escaping is reversible, so distinct keys never share
    a directory. 64 octets (RFC 5321 §4.5.3.1.1) escape to at most 192
    characters, below the 255 a path component may have.
    """
    folded = local.lower()
    if folded and not folded.startswith(".") and set(folded) <= _PLAIN_LOCAL:
        return folded
    out: list[str] = []
    for i, byte in enumerate(folded.encode("utf-8", "surrogatepass")):
        if byte in _PLAIN_BYTES and not (i == 0 and byte == _DOT):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def maildir_for(address: Address) -> str:
    """``<domain A-label>/<escaped local>``: a mailbox's Maildir below ``<state>/mail``."""
    return f"{address.domain}/{maildir_local(address.local)}"
