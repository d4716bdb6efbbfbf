"""Typed IMAP commands, grouped by the state that allows them (RFC 9051
§6.1-§6.4; pymap's layout). The parser builds them from client input; the
adapter receives those that need the directory or the store inside a
``Command`` event and answers with ``send``/``finish``.

Names are ``str``: mailbox names already decoded from modified UTF-7 (or
taken as UTF-8 once UTF8=ACCEPT / IMAP4rev2 is enabled), ``INBOX`` in any
case spelled ``INBOX``. Sequence sets stay unresolved (``sequence.py``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

from mailyard.proto.imap.fetchspec import FetchItem
from mailyard.proto.imap.search import ReturnOption, SearchKey, SortCriterion
from mailyard.proto.imap.sequence import SequenceSet

__all__ = [
    "Append",
    "Authenticate",
    "Capability",
    "Check",
    "Close",
    "CommandBody",
    "Copy",
    "CoreCommand",
    "Create",
    "Delete",
    "Enable",
    "Examine",
    "Expunge",
    "Fetch",
    "GetQuota",
    "GetQuotaRoot",
    "Id",
    "Idle",
    "List",
    "ListReturn",
    "ListSelect",
    "Login",
    "Logout",
    "Lsub",
    "Move",
    "Namespace",
    "Noop",
    "QresyncParams",
    "Rename",
    "Search",
    "Select",
    "SetQuota",
    "Sort",
    "StartTls",
    "Status",
    "StatusItem",
    "Store",
    "StoreMode",
    "Subscribe",
    "Thread",
    "ThreadAlgorithm",
    "Unselect",
    "Unsubscribe",
]


# -- answered by the core itself (never in a Command event) ----------------------


@dataclass(frozen=True, slots=True)
class Capability:
    """RFC 9051 §6.1.1."""


@dataclass(frozen=True, slots=True)
class Logout:
    """RFC 9051 §6.1.3: BYE, then the tagged OK, then the end."""


@dataclass(frozen=True, slots=True)
class Namespace:
    """RFC 2342 / RFC 9051 §6.3.10."""


@dataclass(frozen=True, slots=True)
class Id:
    """RFC 2971: the client's identification (None for NIL)."""

    fields: tuple[tuple[str, str | None], ...] | None


@dataclass(frozen=True, slots=True)
class Enable:
    """RFC 5161 / RFC 9051 §6.3.1, upper-cased capability names."""

    capabilities: tuple[str, ...]


CoreCommand: TypeAlias = Capability | Logout | Namespace | Id | Enable


# -- any state (RFC 9051 §6.1) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Noop:
    """NOOP (or CHECK's job in IMAP4rev2): a chance to send pending updates."""


# -- not authenticated (RFC 9051 §6.2) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class StartTls:
    """RFC 9051 §6.2.1: finish(OK) queues the tagged OK; write it, do the
    handshake, then call ``start_tls()``. finish(NO/BAD) refuses."""


@dataclass(frozen=True, slots=True)
class Login:
    """RFC 9051 §6.2.3. finish(OK) authenticates (the core adds
    [CAPABILITY …] when no code is given); NO [AUTHENTICATIONFAILED]."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Authenticate:
    """RFC 9051 §6.2.2 (with RFC 4959 SASL-IR): the finished exchange.
    ``authzid`` is "" unless the client asked to act as someone else."""

    mechanism: str
    username: str
    password: str = field(repr=False)
    authzid: str = ""


# -- authenticated (RFC 9051 §6.3) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class QresyncParams:
    """RFC 7162 §3.2.5 SELECT (QRESYNC (uidvalidity modseq [known-uids]
    [(known-seqs known-uids)]))."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    known_sequences: SequenceSet | None = None
    known_sequence_uids: SequenceSet | None = None


@dataclass(frozen=True, slots=True)
class Select:
    """SELECT (``read_only`` False) or EXAMINE. ``condstore``: RFC 7162
    §3.1.8 (also True when QRESYNC parameters are given)."""

    mailbox: str
    read_only: bool = False
    condstore: bool = False
    qresync: QresyncParams | None = None


Examine = Select  # EXAMINE is Select(read_only=True)


@dataclass(frozen=True, slots=True)
class Create:
    """``special_use``: RFC 6154 §3 CREATE … (USE (\\Drafts …))."""

    mailbox: str
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delete:
    mailbox: str


@dataclass(frozen=True, slots=True)
class Rename:
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    mailbox: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    mailbox: str


class ListSelect(enum.Enum):
    """RFC 5258 §3.1 selection options (RFC 6154 §5.1 SPECIAL-USE)."""

    SUBSCRIBED = "SUBSCRIBED"
    REMOTE = "REMOTE"
    RECURSIVEMATCH = "RECURSIVEMATCH"
    SPECIAL_USE = "SPECIAL-USE"


class StatusItem(enum.Enum):
    """RFC 9051 §6.3.11 (+ RFC 8438 SIZE, RFC 7162 HIGHESTMODSEQ, RFC 7889 APPENDLIMIT)."""

    MESSAGES = "MESSAGES"
    RECENT = "RECENT"  # IMAP4rev1 only
    UIDNEXT = "UIDNEXT"
    UIDVALIDITY = "UIDVALIDITY"
    UNSEEN = "UNSEEN"
    DELETED = "DELETED"
    SIZE = "SIZE"
    HIGHESTMODSEQ = "HIGHESTMODSEQ"
    APPENDLIMIT = "APPENDLIMIT"


@dataclass(frozen=True, slots=True)
class ListReturn:
    """RFC 5258 §3.2 return options; ``status``: RFC 5819 LIST-STATUS."""

    subscribed: bool = False
    children: bool = False
    special_use: bool = False
    status: tuple[StatusItem, ...] = ()


@dataclass(frozen=True, slots=True)
class List:
    """LIST in all its forms. ``extended`` is True when selection options,
    several patterns or return options were given (RFC 5258 §3: only then
    CHILDINFO and friends are sent). ``LIST "" ""`` has ``patterns == ("",)``:
    answer with the delimiter and the root (RFC 9051 §6.3.9)."""

    reference: str
    patterns: tuple[str, ...]
    selection: frozenset[ListSelect] = frozenset()
    returns: ListReturn = ListReturn()
    extended: bool = False


@dataclass(frozen=True, slots=True)
class Lsub:
    """RFC 3501 §6.3.9 (deprecated by RFC 9051, still served)."""

    reference: str
    pattern: str


@dataclass(frozen=True, slots=True)
class Status:
    mailbox: str
    items: tuple[StatusItem, ...]


@dataclass(frozen=True, slots=True)
class Append:
    """RFC 9051 §6.3.12. The message literal follows: answer with
    ``accept_append()`` or refuse with finish(NO [TOOBIG|OVERQUOTA|TRYCREATE]).
    ``binary``: RFC 3516 literal8; ``utf8``: RFC 6855 §4 UTF8 (…) form."""

    mailbox: str
    flags: tuple[str, ...]
    date: datetime | None
    size: int
    sync: bool
    binary: bool = False
    utf8: bool = False


@dataclass(frozen=True, slots=True)
class Idle:
    """RFC 2177: the core already sent "+ idling"; push updates with
    ``send`` until the ``IdleDone`` event, then finish(OK)."""


@dataclass(frozen=True, slots=True)
class GetQuota:
    """RFC 9208 §4.2."""

    root: str


@dataclass(frozen=True, slots=True)
class GetQuotaRoot:
    """RFC 9208 §4.3."""

    mailbox: str


@dataclass(frozen=True, slots=True)
class SetQuota:
    """RFC 9208 §4.1 (we do not advertise QUOTASET: refuse with NO)."""

    root: str
    limits: tuple[tuple[str, int], ...]


# -- selected (RFC 9051 §6.4) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """RFC 3501 §6.4.1 (IMAP4rev1 only)."""


@dataclass(frozen=True, slots=True)
class Close:
    """RFC 9051 §6.4.1: expunge silently (unless read-only), then finish(OK)."""


@dataclass(frozen=True, slots=True)
class Unselect:
    """RFC 3691: close without expunging."""


@dataclass(frozen=True, slots=True)
class Expunge:
    """EXPUNGE, or UID EXPUNGE (RFC 4315 §2.1) when ``uids`` is given."""

    uids: SequenceSet | None = None


@dataclass(frozen=True, slots=True)
class Search:
    """``returns`` None: answer with ``SearchResult`` (IMAP4rev1 SEARCH);
    otherwise with ``ESearchResult`` holding what was asked (RFC 4731;
    IMAP4rev2 always asks, ALL by default). ``charset`` is informative:
    strings are already decoded."""

    uid: bool
    criteria: SearchKey
    returns: frozenset[ReturnOption] | None = None
    charset: str | None = None


@dataclass(frozen=True, slots=True)
class Fetch:
    """``changed_since``/``vanished``: RFC 7162 §3.1.4 / §3.2.6. UID FETCH
    always includes UID; CHANGEDSINCE always includes MODSEQ."""

    uid: bool
    sequence: SequenceSet
    items: tuple[FetchItem, ...]
    changed_since: int | None = None
    vanished: bool = False


class StoreMode(enum.Enum):
    REPLACE = "FLAGS"
    ADD = "+FLAGS"
    REMOVE = "-FLAGS"


@dataclass(frozen=True, slots=True)
class Store:
    """``unchanged_since``: RFC 7162 §3.1.3 (answer with [MODIFIED …])."""

    uid: bool
    sequence: SequenceSet
    mode: StoreMode
    flags: tuple[str, ...]
    silent: bool = False
    unchanged_since: int | None = None


@dataclass(frozen=True, slots=True)
class Copy:
    """Answer with [COPYUID …] (RFC 4315 §3) or NO [TRYCREATE]/[OVERQUOTA]."""

    uid: bool
    sequence: SequenceSet
    mailbox: str


@dataclass(frozen=True, slots=True)
class Move:
    """RFC 6851: COPYUID in an untagged OK, then EXPUNGE/VANISHED, then OK."""

    uid: bool
    sequence: SequenceSet
    mailbox: str


@dataclass(frozen=True, slots=True)
class Sort:
    """RFC 5256 §3."""

    uid: bool
    criteria: tuple[SortCriterion, ...]
    search: SearchKey
    charset: str


class ThreadAlgorithm(enum.Enum):
    ORDEREDSUBJECT = "ORDEREDSUBJECT"
    REFERENCES = "REFERENCES"


@dataclass(frozen=True, slots=True)
class Thread:
    """RFC 5256 §3."""

    uid: bool
    algorithm: ThreadAlgorithm
    search: SearchKey
    charset: str


CommandBody: TypeAlias = (
    Noop | StartTls | Login | Authenticate | Select | Create | Delete | Rename
    | Subscribe | Unsubscribe | List | Lsub | Status | Append | Idle | GetQuota
    | GetQuotaRoot | SetQuota | Check | Close | Unselect | Expunge | Search | Fetch
    | Store | Copy | Move | Sort | Thread
)  # fmt: skip
