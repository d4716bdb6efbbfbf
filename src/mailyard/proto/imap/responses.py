"""Typed IMAP responses and response codes (RFC 9051 §7, RFC 3501 §7 and
the extensions' codes). The adapter builds these and hands them to
``core.send`` / ``core.finish``; ``encoder.py`` alone turns them into octets.

Responses the core composes itself (CAPABILITY, ENABLED, NAMESPACE, ID,
continuation requests, BYE) are here too so that the one encoder renders
every line.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from mailyard.proto.imap.commands import StatusItem
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.fetchspec import FetchAttr, Section
from mailyard.proto.imap.sequence import SequenceSet
from mailyard.proto.imap.values import BodyStructure, Envelope, NestedValue, ThreadTree

__all__ = [
    "AppendUid",
    "BadCharset",
    "BinaryData",
    "BinarySizeData",
    "BodyStructureData",
    "CapabilityCode",
    "CapabilityResponse",
    "Code",
    "Condition",
    "CopyUid",
    "ESearchResult",
    "EnabledResponse",
    "EnvelopeData",
    "Exists",
    "Expunge",
    "FetchData",
    "FetchResponse",
    "Flags",
    "FlagsData",
    "HighestModSeq",
    "IdResponse",
    "InternalDateData",
    "ListResponse",
    "LsubResponse",
    "ModSeqData",
    "Modified",
    "NamespaceResponse",
    "PermanentFlags",
    "QuotaResource",
    "QuotaResponse",
    "QuotaRootResponse",
    "Recent",
    "ResponseCode",
    "Rfc822Data",
    "SearchResult",
    "SectionData",
    "SizeData",
    "SortResult",
    "Status",
    "StatusResponse",
    "ThreadResult",
    "UidData",
    "UidNext",
    "UidValidity",
    "Unseen",
    "Untagged",
    "Vanished",
]


class Code(enum.Enum):
    """Response codes without arguments (RFC 9051 §7.1, RFC 5530, RFC 4315,
    RFC 7162, RFC 9208, RFC 3516, RFC 6154)."""

    ALERT = "ALERT"
    ALREADYEXISTS = "ALREADYEXISTS"
    AUTHENTICATIONFAILED = "AUTHENTICATIONFAILED"
    AUTHORIZATIONFAILED = "AUTHORIZATIONFAILED"
    CANNOT = "CANNOT"
    CLIENTBUG = "CLIENTBUG"
    CLOSED = "CLOSED"
    CONTACTADMIN = "CONTACTADMIN"
    CORRUPTION = "CORRUPTION"
    EXPIRED = "EXPIRED"
    EXPUNGEISSUED = "EXPUNGEISSUED"
    HASCHILDREN = "HASCHILDREN"
    INUSE = "INUSE"
    LIMIT = "LIMIT"
    NOMODSEQ = "NOMODSEQ"
    NONEXISTENT = "NONEXISTENT"
    NOPERM = "NOPERM"
    NOTSAVED = "NOTSAVED"
    OVERQUOTA = "OVERQUOTA"
    PARSE = "PARSE"
    PRIVACYREQUIRED = "PRIVACYREQUIRED"
    READ_ONLY = "READ-ONLY"
    READ_WRITE = "READ-WRITE"
    SERVERBUG = "SERVERBUG"
    TOOBIG = "TOOBIG"
    TRYCREATE = "TRYCREATE"
    UIDNOTSTICKY = "UIDNOTSTICKY"
    UNAVAILABLE = "UNAVAILABLE"
    UNKNOWN_CTE = "UNKNOWN-CTE"
    USEATTR = "USEATTR"


@dataclass(frozen=True, slots=True)
class UidValidity:
    value: int


@dataclass(frozen=True, slots=True)
class UidNext:
    value: int


@dataclass(frozen=True, slots=True)
class Unseen:
    """IMAP4rev1 only (RFC 3501 §7.1): the first unseen message's number."""

    value: int


@dataclass(frozen=True, slots=True)
class HighestModSeq:
    """RFC 7162 §3.1.2.1."""

    value: int


@dataclass(frozen=True, slots=True)
class PermanentFlags:
    """RFC 9051 §7.1; ``\\*`` means new keywords may be created."""

    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CapabilityCode:
    """``[CAPABILITY …]``; the core fills it in after a login (RFC 9051 §7.1)."""

    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AppendUid:
    """RFC 4315 §3: ``[APPENDUID uidvalidity uid-set]``."""

    uidvalidity: int
    uids: SequenceSet


@dataclass(frozen=True, slots=True)
class CopyUid:
    """RFC 4315 §3: source and destination UIDs correspond by position."""

    uidvalidity: int
    source: SequenceSet
    destination: SequenceSet


@dataclass(frozen=True, slots=True)
class Modified:
    """RFC 7162 §3.1.3: messages STORE … UNCHANGEDSINCE did not change."""

    numbers: SequenceSet


@dataclass(frozen=True, slots=True)
class BadCharset:
    """RFC 9051 §7.1: the charsets we do support."""

    charsets: tuple[str, ...] = ("UTF-8", "US-ASCII")


ResponseCode: TypeAlias = (
    Code | UidValidity | UidNext | Unseen | HighestModSeq | PermanentFlags | CapabilityCode
    | AppendUid | CopyUid | Modified | BadCharset
)  # fmt: skip


# -- untagged responses --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Condition:
    """An untagged OK / NO / BAD (``* OK [UIDVALIDITY 7] UIDs valid``).
    BYE goes through ``core.bye`` and PREAUTH is not used."""

    status: Status
    text: str = ""
    code: ResponseCode | None = None


@dataclass(frozen=True, slots=True)
class Exists:
    count: int


@dataclass(frozen=True, slots=True)
class Recent:
    """IMAP4rev1 only; never send it once IMAP4rev2 is enabled."""

    count: int


@dataclass(frozen=True, slots=True)
class Expunge:
    """RFC 9051 §7.5.1; refused by the core while forbidden (§7.5.1: not
    during FETCH/STORE/SEARCH by number) or once QRESYNC is enabled."""

    number: int


@dataclass(frozen=True, slots=True)
class Vanished:
    """RFC 7162 §3.2.10: instead of EXPUNGE once QRESYNC is enabled;
    ``earlier`` for the answer to SELECT (QRESYNC) / FETCH … VANISHED."""

    uids: SequenceSet
    earlier: bool = False


@dataclass(frozen=True, slots=True)
class Flags:
    """``* FLAGS (…)``: the flags defined in the mailbox."""

    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FlagsData:
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UidData:
    uid: int


@dataclass(frozen=True, slots=True)
class SizeData:
    """RFC822.SIZE."""

    size: int


@dataclass(frozen=True, slots=True)
class InternalDateData:
    """A datetime (naive means UTC) or seconds since the epoch (sent as UTC)."""

    when: datetime | int | float


@dataclass(frozen=True, slots=True)
class ModSeqData:
    modseq: int


@dataclass(frozen=True, slots=True)
class EnvelopeData:
    """ENVELOPE: the typed value or mailyard.message's nested ``imap_envelope``."""

    envelope: Envelope | NestedValue


@dataclass(frozen=True, slots=True)
class BodyStructureData:
    """BODYSTRUCTURE (``extensible``) or the shorter BODY: the typed value,
    or mailyard.message's nested ``imap_body`` (already with or without
    extension data: ``extensible`` then only names the item)."""

    body: BodyStructure | NestedValue
    extensible: bool = True


@dataclass(frozen=True, slots=True)
class SectionData:
    """``BODY[section]<origin> data``: ``origin`` is the partial offset if one
    was asked for; ``data`` None is NIL. Large data is written without a copy."""

    section: Section
    data: bytes | memoryview | None
    origin: int | None = None


@dataclass(frozen=True, slots=True)
class BinaryData:
    """RFC 3516 ``BINARY[part]<origin>``: literal8 when the data holds NUL."""

    part: tuple[int, ...]
    data: bytes | memoryview | None
    origin: int | None = None


@dataclass(frozen=True, slots=True)
class BinarySizeData:
    part: tuple[int, ...]
    size: int


@dataclass(frozen=True, slots=True)
class Rfc822Data:
    """RFC822 / RFC822.HEADER / RFC822.TEXT (``attr``)."""

    attr: FetchAttr
    data: bytes | memoryview | None


FetchData: TypeAlias = (
    FlagsData | UidData | SizeData | InternalDateData | ModSeqData | EnvelopeData
    | BodyStructureData | SectionData | BinaryData | BinarySizeData | Rfc822Data
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class FetchResponse:
    number: int
    items: tuple[FetchData, ...]


@dataclass(frozen=True, slots=True)
class SearchResult:
    """``* SEARCH n …`` (any sequence of ints, e.g. an array, is not copied)."""

    numbers: Sequence[int]
    modseq: int | None = None  # RFC 7162 §3.1.5


@dataclass(frozen=True, slots=True)
class ESearchResult:
    """RFC 4731 §3.1 ``* ESEARCH (TAG "t") [UID] …``: give what was asked.
    ``correlate`` adds the pending command's tag."""

    uid: bool
    min: int | None = None
    max: int | None = None
    all: SequenceSet | None = None
    count: int | None = None
    modseq: int | None = None
    correlate: bool = True


@dataclass(frozen=True, slots=True)
class SortResult:
    numbers: Sequence[int]
    modseq: int | None = None


@dataclass(frozen=True, slots=True)
class ThreadResult:
    threads: tuple[ThreadTree, ...]


@dataclass(frozen=True, slots=True)
class ListResponse:
    """``* LIST (attrs) "/" name`` (RFC 9051 §7.3.1) with RFC 5258
    CHILDINFO and RFC 9051 OLDNAME extended data."""

    mailbox: str
    attributes: tuple[str, ...] = ()
    delimiter: str | None = "/"
    childinfo: tuple[str, ...] = ()
    oldname: str | None = None


@dataclass(frozen=True, slots=True)
class LsubResponse:
    mailbox: str
    attributes: tuple[str, ...] = ()
    delimiter: str | None = "/"


@dataclass(frozen=True, slots=True)
class StatusResponse:
    mailbox: str
    items: tuple[tuple[StatusItem, int], ...]


@dataclass(frozen=True, slots=True)
class QuotaResource:
    """RFC 9208 §5: usage and limit (STORAGE in units of 1024 octets)."""

    name: str
    usage: int
    limit: int


@dataclass(frozen=True, slots=True)
class QuotaResponse:
    root: str
    resources: tuple[QuotaResource, ...]


@dataclass(frozen=True, slots=True)
class QuotaRootResponse:
    mailbox: str
    roots: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CapabilityResponse:
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EnabledResponse:
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NamespaceResponse:
    """RFC 2342: one personal namespace (prefix, delimiter); no others."""

    prefix: str = ""
    delimiter: str = "/"


@dataclass(frozen=True, slots=True)
class IdResponse:
    """RFC 2971 §3.2; None is NIL."""

    fields: tuple[tuple[str, str], ...] | None


Untagged: TypeAlias = (
    Condition | Exists | Recent | Expunge | Vanished | Flags | FetchResponse | SearchResult
    | ESearchResult | SortResult | ThreadResult | ListResponse | LsubResponse | StatusResponse
    | QuotaResponse | QuotaRootResponse | CapabilityResponse | EnabledResponse
    | NamespaceResponse | IdResponse
)  # fmt: skip
