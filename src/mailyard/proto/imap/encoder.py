"""The one IMAP response encoder: typed responses in, octets out.

No other code writes protocol text. Strings are quoted when they can be
(printable, no CR/LF/NUL, short, 7-bit unless UTF-8 is enabled) and sent as
literals otherwise; message data (BODY[], RFC822, BINARY) is always a
literal, BINARY a literal8 when it holds NUL (RFC 3516 §4.2); mailbox names
are modified UTF-7 unless UTF8=ACCEPT or IMAP4rev2 is enabled (RFC 6855 §3,
RFC 9051 §5.1). Large payloads are not copied: ``Output`` keeps them as
separate parts for a vectored write.

``RenderedEnvelope`` and ``RenderedBody`` carry an ENVELOPE or BODY[STRUCTURE]
this encoder rendered earlier (the store caches them per message, so FETCH
1:* ENVELOPE does not rebuild every envelope): 7-bit single-line text only,
which renders the same whatever the session's UTF-8 state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.render import (
    Values,
    check_atom,
    check_text,
    date_time,
    number,
    part,
    seqset,
    thread_list,
)
from mailyard.proto.imap.responses import (
    AppendUid,
    BadCharset,
    BinaryData,
    BinarySizeData,
    BodyStructureData,
    CapabilityCode,
    CapabilityResponse,
    Code,
    Condition,
    CopyUid,
    EnabledResponse,
    EnvelopeData,
    ESearchResult,
    Exists,
    Expunge,
    FetchData,
    FetchResponse,
    Flags,
    FlagsData,
    HighestModSeq,
    IdResponse,
    InternalDateData,
    ListResponse,
    LsubResponse,
    ModSeqData,
    Modified,
    NamespaceResponse,
    PermanentFlags,
    QuotaResponse,
    QuotaRootResponse,
    Recent,
    ResponseCode,
    Rfc822Data,
    SearchResult,
    SectionData,
    SizeData,
    SortResult,
    StatusResponse,
    ThreadResult,
    UidData,
    UidNext,
    UidValidity,
    Unseen,
    Untagged,
    Vanished,
)

__all__ = ["Encoder", "Output", "RenderedBody", "RenderedEnvelope", "check_rendered"]

_BIG: Final = 8192  # payloads from this size on are kept as their own part


def check_rendered(wire: bytes) -> bytes:
    """``wire`` if it may be sent as it is, inside one response line.

    Only 7-bit text without CR, LF or NUL: such a value holds no literal and
    no 8-bit string, so it renders alike with and without UTF-8 (RFC 6855
    §3); anything else is rendered afresh from its value."""
    # find() rather than "in" or a regex: a few times quicker on short bytes.
    if not wire.isascii() or wire.find(b"\r") >= 0 or wire.find(b"\n") >= 0 or (
            wire.find(b"\x00") >= 0):
        raise ValueError("a pre-rendered value must be one line of 7-bit text")
    return wire


@dataclass(frozen=True, slots=True)
class RenderedEnvelope(EnvelopeData):
    """ENVELOPE as ``Values.envelope_value`` rendered it (``check_rendered``)."""

    wire: bytes = b"NIL"

    def __post_init__(self) -> None:
        check_rendered(self.wire)


@dataclass(frozen=True, slots=True)
class RenderedBody(BodyStructureData):
    """BODYSTRUCTURE (``extensible``) or BODY as ``Values.body_value``
    rendered it (``check_rendered``)."""

    wire: bytes = b"NIL"

    def __post_init__(self) -> None:
        check_rendered(self.wire)


class Output:
    """Octets waiting to be written: small writes gathered in a bytearray,
    big payloads (memoryview or bytes from the store) kept uncopied."""

    def __init__(self) -> None:
        self._parts: list[bytes | memoryview] = []
        self._small = bytearray()

    def __len__(self) -> int:
        return len(self._small) + sum(len(p) for p in self._parts)

    def write(self, data: bytes | bytearray) -> None:
        self._small += data

    def write_payload(self, data: bytes | memoryview) -> None:
        if len(data) < _BIG:
            self._small += data
            return
        if self._small:
            self._parts.append(bytes(self._small))
            self._small.clear()
        self._parts.append(data)

    def take_parts(self) -> list[bytes | memoryview]:
        parts = self._parts
        if self._small:
            parts.append(bytes(self._small))
            self._small.clear()
        self._parts = []
        return parts

    def take(self) -> bytes:
        return b"".join(self.take_parts())

    def mark(self) -> tuple[int, int]:
        """A point to ``rollback`` to if rendering fails half-way."""
        return len(self._parts), len(self._small)

    def rollback(self, mark: tuple[int, int]) -> None:
        parts, small = mark
        if len(self._parts) > parts:
            # A payload was split off after the mark: rebuild the small tail.
            tail = b"".join(self._parts[parts:]) + bytes(self._small)
            del self._parts[parts:]
            self._small = bytearray(tail[:small]) if small else bytearray()
            return
        del self._small[small:]


class Encoder(Values):
    """Renders whole responses (``Values`` renders the values in them)."""

    # -- lines ------------------------------------------------------------------------

    def untagged(self, response: Untagged, out: Output, tag: str | None = None) -> None:
        """One untagged response; ``tag`` is the pending command's (ESEARCH)."""
        match response:
            case FetchResponse():
                self._fetch(response, out)
            case Exists():
                out.write(b"* %d EXISTS\r\n" % number(response.count))
            case Expunge():
                out.write(b"* %d EXPUNGE\r\n" % number(response.number))
            case Recent():
                out.write(b"* %d RECENT\r\n" % number(response.count))
            case Flags():
                out.write(b"* FLAGS " + self.flag_list(response.flags) + b"\r\n")
            case Condition():
                self._condition(response, out)
            case Vanished():
                earlier = b"(EARLIER) " if response.earlier else b""
                out.write(b"* VANISHED " + earlier + seqset(response.uids) + b"\r\n")
            case SearchResult():
                self._numbers(b"SEARCH", response.numbers, response.modseq, out)
            case SortResult():
                self._numbers(b"SORT", response.numbers, response.modseq, out)
            case ESearchResult():
                self._esearch(response, out, tag)
            case _:
                self._other(response, out)

    def _other(self, response: Untagged, out: Output) -> None:
        match response:
            case ThreadResult():
                self._thread(response, out)
            case ListResponse():
                self._list(response, out)
            case LsubResponse():
                self._lsub(response, out)
            case StatusResponse():
                self._status(response, out)
            case QuotaResponse():
                self._quota(response, out)
            case QuotaRootResponse():
                self._quotaroot(response, out)
            case CapabilityResponse():
                caps = b" ".join(check_atom(c) for c in response.capabilities)
                out.write(b"* CAPABILITY " + caps + b"\r\n")
            case EnabledResponse():
                caps = b"".join(b" " + check_atom(c) for c in response.capabilities)
                out.write(b"* ENABLED" + caps + b"\r\n")
            case NamespaceResponse():
                self._namespace(response, out)
            case IdResponse():
                self._id(response, out)
            case _:
                raise ValueError(f"not an untagged response: {response!r}")

    def tagged(
        self, tag: str, status: Status, code: ResponseCode | None, text: str, out: Output
    ) -> None:
        if status not in (Status.OK, Status.NO, Status.BAD):
            raise ValueError("a command completes with OK, NO or BAD")
        out.write(tag.encode("ascii") + b" " + self._resp_text(status, code, text) + b"\r\n")

    def bye(self, text: str, code: ResponseCode | None, out: Output) -> None:
        out.write(b"* " + self._resp_text(Status.BYE, code, text) + b"\r\n")

    def continuation(self, text: str, out: Output) -> None:
        """RFC 9051 §7.6 ``+ text`` (or base64 for AUTHENTICATE)."""
        out.write(b"+ " + check_text(text) + b"\r\n")

    def _resp_text(self, status: Status, code: ResponseCode | None, text: str) -> bytes:
        head = status.value.encode("ascii")
        if code is not None:
            head += b" [" + self.code(code) + b"]"
        body = check_text(text)
        return head + b" " + body if body else head

    def _condition(self, r: Condition, out: Output) -> None:
        if r.status not in (Status.OK, Status.NO, Status.BAD):
            raise ValueError("untagged conditions are OK, NO or BAD (BYE: core.bye)")
        out.write(b"* " + self._resp_text(r.status, r.code, r.text or r.status.value) + b"\r\n")

    # -- response codes ------------------------------------------------------------------

    def code(self, code: ResponseCode) -> bytes:
        if isinstance(code, Code):
            return code.value.encode("ascii")
        if isinstance(code, UidValidity | UidNext | Unseen | HighestModSeq):
            name = {UidValidity: b"UIDVALIDITY", UidNext: b"UIDNEXT", Unseen: b"UNSEEN",
                    HighestModSeq: b"HIGHESTMODSEQ"}[type(code)]  # fmt: skip
            return name + b" %d" % number(code.value)
        if isinstance(code, PermanentFlags):
            return b"PERMANENTFLAGS " + self.flag_list(code.flags)
        if isinstance(code, CapabilityCode):
            return b"CAPABILITY " + b" ".join(check_atom(c) for c in code.capabilities)
        if isinstance(code, AppendUid):
            return b"APPENDUID %d " % number(code.uidvalidity) + seqset(code.uids)
        if isinstance(code, CopyUid):
            return (b"COPYUID %d " % number(code.uidvalidity) + seqset(code.source) + b" "
                    + seqset(code.destination))  # fmt: skip
        if isinstance(code, Modified):
            return b"MODIFIED " + seqset(code.numbers)
        if isinstance(code, BadCharset):
            return b"BADCHARSET (" + b" ".join(self.astring(c) for c in code.charsets) + b")"
        raise ValueError(f"not a response code: {code!r}")

    def _literal_data(self, data: bytes | memoryview | None, out: Output, *, binary: bool) -> None:
        if data is None:
            out.write(b"NIL")
            return
        eight = binary and b"\x00" in data
        out.write(b"~{%d}\r\n" % len(data) if eight else b"{%d}\r\n" % len(data))
        out.write_payload(data)

    # -- FETCH --------------------------------------------------------------------------

    def _fetch(self, r: FetchResponse, out: Output) -> None:
        """One FETCH response. The items of FETCH 1:* (FLAGS UID RFC822.SIZE
        INTERNALDATE) are rendered inline: 100,000 of these must be quick."""
        parts = [b"* %d FETCH (" % number(r.number)]
        for item in r.items:
            kind = type(item)
            if kind is UidData:
                parts.append(b"UID %d" % number(item.uid))  # type: ignore[union-attr]
            elif kind is FlagsData:
                parts.append(b"FLAGS " + self.flag_list(item.flags))  # type: ignore[union-attr]
            elif kind is SizeData:
                parts.append(b"RFC822.SIZE %d" % number(item.size))  # type: ignore[union-attr]
            elif kind is InternalDateData:
                when = item.when  # type: ignore[union-attr]
                parts.append(b'INTERNALDATE "' + date_time(when) + b'"')
            elif kind is ModSeqData:
                parts.append(b"MODSEQ (%d)" % number(item.modseq))  # type: ignore[union-attr]
            elif kind is RenderedEnvelope:
                parts.append(b"ENVELOPE " + item.wire)  # type: ignore[union-attr]
            elif kind is RenderedBody:
                name = b"BODYSTRUCTURE " if item.extensible else b"BODY "  # type: ignore[union-attr]
                parts.append(name + item.wire)  # type: ignore[union-attr]
            else:
                # Bulky items may carry payloads: write what is gathered first.
                out.write(parts[0] + b" ".join(parts[1:]) + (b" " if len(parts) > 1 else b""))
                self._fetch_data(item, out)
                parts = [b"", b""]  # the next item needs a separator
        out.write(parts[0] + b" ".join(parts[1:]) + b")\r\n")

    def _fetch_data(self, item: FetchData, out: Output) -> None:
        if isinstance(item, EnvelopeData):
            out.write(b"ENVELOPE " + self.envelope_value(item.envelope))
        elif isinstance(item, BodyStructureData):
            out.write(b"BODYSTRUCTURE " if item.extensible else b"BODY ")
            out.write(self.body_value(item.body, item.extensible))
        elif isinstance(item, SectionData):
            out.write(b"BODY[" + self.section(item.section) + b"]")
            if item.origin is not None:
                out.write(b"<%d>" % number(item.origin))
            out.write(b" ")
            self._literal_data(item.data, out, binary=False)
        elif isinstance(item, BinaryData):
            out.write(b"BINARY[" + part(item.part) + b"]")
            if item.origin is not None:
                out.write(b"<%d>" % number(item.origin))
            out.write(b" ")
            self._literal_data(item.data, out, binary=True)
        elif isinstance(item, BinarySizeData):
            out.write(b"BINARY.SIZE[" + part(item.part) + b"] %d" % number(item.size))
        elif isinstance(item, Rfc822Data):
            out.write(item.attr.value.encode("ascii") + b" ")
            self._literal_data(item.data, out, binary=False)
        else:
            raise ValueError(f"not a FETCH data item: {item!r}")

    # -- SEARCH, SORT, THREAD, ESEARCH ---------------------------------------------------

    def _numbers(
        self, name: bytes, numbers: Sequence[int], modseq: int | None, out: Output
    ) -> None:
        out.write(b"* " + name)
        if numbers:
            out.write(b" " + " ".join(map(str, numbers)).encode("ascii"))
        if modseq is not None:
            out.write(b" (MODSEQ %d)" % number(modseq))
        out.write(b"\r\n")

    def _esearch(self, r: ESearchResult, out: Output, tag: str | None) -> None:
        line = b"* ESEARCH"
        if r.correlate and tag is not None:
            line += b" (TAG " + self.string(tag) + b")"
        if r.uid:
            line += b" UID"
        for name, value in ((b"MIN", r.min), (b"MAX", r.max)):
            if value is not None:
                line += b" " + name + b" %d" % number(value)
        if r.all is not None and r.all.items:
            line += b" ALL " + seqset(r.all)
        if r.count is not None:
            line += b" COUNT %d" % number(r.count)
        if r.modseq is not None:
            line += b" MODSEQ %d" % number(r.modseq)
        out.write(line + b"\r\n")

    def _thread(self, r: ThreadResult, out: Output) -> None:
        out.write(b"* THREAD" + (b" " if r.threads else b""))
        for tree in r.threads:
            out.write(thread_list(tree))
        out.write(b"\r\n")

    # -- mailboxes ------------------------------------------------------------------------

    def _delimiter(self, delimiter: str | None) -> bytes:
        return b"NIL" if delimiter is None else self.string(delimiter)

    def _list(self, r: ListResponse, out: Output) -> None:
        line = b"* LIST " + self._attributes(r.attributes) + b" " + self._delimiter(r.delimiter)
        line += b" " + self.mailbox(r.mailbox)
        extended: list[bytes] = []
        if r.childinfo:  # RFC 5258 §4
            extended.append(b'"CHILDINFO" (' + b" ".join(map(self.string, r.childinfo)) + b")")
        if r.oldname is not None:  # RFC 9051 §7.3.1
            extended.append(b'"OLDNAME" (' + self.mailbox(r.oldname) + b")")
        if extended:
            line += b" (" + b" ".join(extended) + b")"
        out.write(line + b"\r\n")

    def _lsub(self, r: LsubResponse, out: Output) -> None:
        out.write(b"* LSUB " + self._attributes(r.attributes) + b" " + self._delimiter(r.delimiter)
                  + b" " + self.mailbox(r.mailbox) + b"\r\n")  # fmt: skip

    def _attributes(self, attributes: Iterable[str]) -> bytes:
        return b"(" + b" ".join(check_atom(a) for a in attributes) + b")"

    def _status(self, r: StatusResponse, out: Output) -> None:
        items = b" ".join(item.value.encode("ascii") + b" %d" % number(v) for item, v in r.items)
        out.write(b"* STATUS " + self.mailbox(r.mailbox) + b" (" + items + b")\r\n")

    def _quota(self, r: QuotaResponse, out: Output) -> None:
        resources = b" ".join(
            check_atom(q.name) + b" %d %d" % (number(q.usage), number(q.limit)) for q in r.resources
        )
        out.write(b"* QUOTA " + self.astring(r.root) + b" (" + resources + b")\r\n")

    def _quotaroot(self, r: QuotaRootResponse, out: Output) -> None:
        line = b"* QUOTAROOT " + self.mailbox(r.mailbox)
        for root in r.roots:
            line += b" " + self.astring(root)
        out.write(line + b"\r\n")

    # -- the core's own responses ------------------------------------------------------

    def _namespace(self, r: NamespaceResponse, out: Output) -> None:
        personal = b"((" + self.mailbox(r.prefix) + b" " + self._delimiter(r.delimiter) + b"))"
        out.write(b"* NAMESPACE " + personal + b" NIL NIL\r\n")

    def _id(self, r: IdResponse, out: Output) -> None:
        if r.fields is None:
            out.write(b"* ID NIL\r\n")
            return
        pairs = b" ".join(self.string(k) + b" " + self.string(v) for k, v in r.fields)
        out.write(b"* ID (" + pairs + b")\r\n")
