"""FETCH and UID FETCH (RFC 9051 §6.4.5, §6.4.9; RFC 7162 CHANGEDSINCE,
VANISHED; RFC 3516 BINARY).

Metadata (UID, FLAGS, RFC822.SIZE, INTERNALDATE, MODSEQ) comes from the
folder's columns, arrays held in memory: ``FETCH 1:* (FLAGS UID
RFC822.SIZE INTERNALDATE)`` over 100,000 messages touches no file and
builds nothing per message but its response. ENVELOPE and BODYSTRUCTURE
come from the store's blob cache (parsed once, then cached); sections read
the message file. That work runs in the io pool, a few messages per trip,
and responses are written out as they are made.

Fetching body content without .PEEK sets \\Seen first (RFC 9051 §6.4.5);
the FLAGS of the messages it changed are added to their responses. A
message expunged by another session while this one may not hear of it
(a "ghost", RFC 9051 §7.5.1) is left out, and the command completes with
OK [EXPUNGEISSUED] (RFC 5530).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Final

from mailyard.maildir.errors import MessageGone
from mailyard.maildir.flags import SEEN
from mailyard.maildir.folder import Folder
from mailyard.maildir.values import Columns, StoreMode
from mailyard.maildir.view import View
from mailyard.message.cache import encode_summary
from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.events import Command
from mailyard.proto.imap.fetchspec import FetchAttr, FetchItem, sets_seen
from mailyard.proto.imap.responses import (
    Code,
    FetchData,
    FetchResponse,
    InternalDateData,
    ModSeqData,
    SizeData,
    UidData,
    Untagged,
    Vanished,
)
from mailyard.proto.imap.sequence import SequenceSet
from mailyard.server.imap.content import (
    SUMMARY_KIND,
    UnknownEncoding,
    content_items,
    needs_data,
    needs_summary,
    summary_from,
)
from mailyard.server.imap.content_wire import WIRE_KINDS, render_wire, rendered_item
from mailyard.server.imap.numbers import OutOfRange, Spans, index_spans, pick, uid_set
from mailyard.server.imap.selected import vanished_in
from mailyard.server.imap.state import Selected, Session
from mailyard.server.imap.updates import complete

__all__ = ["fetch", "load_content", "row_numbers"]

_SIMPLE: Final = frozenset({FetchAttr.UID, FetchAttr.FLAGS, FetchAttr.RFC822_SIZE,
                            FetchAttr.INTERNALDATE, FetchAttr.MODSEQ})
# Module-level names for the members _Rows.response tests once per item of
# every row: an Enum attribute costs a class lookup each time (~0.2 µs).
_UID: Final = FetchAttr.UID
_FLAGS: Final = FetchAttr.FLAGS
_SIZE: Final = FetchAttr.RFC822_SIZE
_DATE: Final = FetchAttr.INTERNALDATE
_MODSEQ: Final = FetchAttr.MODSEQ
_HEAVY_BATCH: Final = 32  # messages per trip to the io pool
# ... when no file is read (cached ENVELOPE, BODYSTRUCTURE): one trip per
# this many, since each message then costs microseconds.
_LIGHT_BATCH: Final = 1024
_HEAVY_OCTETS: Final = 4 * 1024 * 1024  # ... or fewer when they are large


def _mark_seen(view: View, uids: array[int]) -> frozenset[int]:
    """RFC 9051 §6.4.5: body content fetched without .PEEK sets \\Seen."""
    columns = view.folder.columns(uids)
    unseen = [uid for uid, bits in zip(columns.uids, columns.flags, strict=True)
              if not bits & SEEN]
    if not unseen:
        return frozenset()
    return frozenset(view.store(unseen, StoreMode.ADD, ["\\Seen"]).changed)


def _columns(folder: Folder, uids: array[int]) -> Columns:
    return folder.columns(uids)


def row_numbers(view_uids: Sequence[int], spans: Spans, picked: int,
                row_uids: Sequence[int]) -> Iterator[int]:
    """The sequence number of each row (rows are the picked uids that still
    exist, in order: without ghosts they line up with the spans)."""
    if len(row_uids) == picked:
        for start, stop in spans:
            yield from range(start + 1, stop + 1)
        return
    lo = 0
    for uid in row_uids:
        lo = bisect_left(view_uids, uid, lo)
        yield lo + 1


def load_content(folder: Folder, uids: Sequence[int], items: Sequence[FetchItem]
                 ) -> list[dict[FetchItem, FetchData] | None]:
    """The heavy items of ``uids`` (None for a message gone meanwhile).

    ENVELOPE and BODY[STRUCTURE] come rendered from the blob cache when they
    can (content_wire.py); the others, and those not cached yet, from the
    summary or the file."""
    wired = [item for item in items if item in WIRE_KINDS]
    wires = {item: folder.cached_many(uids, WIRE_KINDS[item]) for item in wired}
    ready = [_rendered(wired, wires, uid) for uid in uids]
    rest = [item for item in items if item not in WIRE_KINDS]
    want_data = needs_data(rest)
    unready = [uid for uid, found in zip(uids, ready, strict=True) if len(found) < len(wired)]
    blobs = folder.cached_many(unready, SUMMARY_KIND) if unready else {}
    out: list[dict[FetchItem, FetchData] | None] = []
    for uid, found in zip(uids, ready, strict=True):
        missing = [item for item in wired if item not in found]
        if not missing and not want_data:
            out.append(found)
            continue
        try:
            _load_one(folder, uid, blobs.get(uid), rest + missing, want_data, found)
        except MessageGone:
            out.append(None)
            continue
        out.append(found)
        for item in missing:
            if uid not in wires[item] and item in found:
                blob = render_wire(found[item])
                _cache(folder, uid, WIRE_KINDS[item], blob)
                found[item] = rendered_item(item, blob) or found[item]  # not rendered twice
    return out


def _rendered(wired: list[FetchItem], wires: dict[FetchItem, dict[int, bytes]],
              uid: int) -> dict[FetchItem, FetchData]:
    found: dict[FetchItem, FetchData] = {}
    for item in wired:
        blob = wires[item].get(uid)
        value = None if blob is None else rendered_item(item, blob)
        if value is not None:
            found[item] = value
    return found


def _load_one(folder: Folder, uid: int, blob: bytes | None, items: list[FetchItem],
              want_data: bool, found: dict[FetchItem, FetchData]) -> None:
    """Add ``items`` of one message to ``found``, from its summary or its file."""
    want_summary = needs_summary(items)
    data = None
    if want_data or (want_summary and blob is None):
        with folder.open_message(uid) as handle:
            data = handle.read()
    summary, fresh = summary_from(blob, data) if want_summary else (None, False)
    if want_summary and summary is None and data is None:
        # The cached summary is damaged or of another version: parse the file.
        with folder.open_message(uid) as handle:
            data = handle.read()
        summary, fresh = summary_from(None, data)
    if fresh and summary is not None:
        _cache(folder, uid, SUMMARY_KIND, encode_summary(summary))
    found.update(content_items(items, data, summary))


def _cache(folder: Folder, uid: int, kind: int, blob: bytes) -> None:
    try:
        folder.cache(uid, kind, blob)
    except ValueError:
        pass  # too large to cache: built again next time


class _Rows:
    """FETCH responses for the rows, the simple items straight from columns."""

    def __init__(self, s: Session, body: c.Fetch, columns: Columns,
                 seen: frozenset[int]) -> None:
        self.selected: Selected = s.sel
        self.view = self.selected.view
        self.body = body
        self.columns = columns
        self.seen = seen
        self.recent = s.recent_flags and self.view.recent > 0
        self.add_flags = FetchAttr.FLAGS not in body.items

    def wanted(self, index: int) -> bool:
        since = self.body.changed_since
        return since is None or self.columns.modseqs[index] > since

    def response(self, number: int, index: int,
                 heavy: dict[FetchItem, FetchData] | None) -> FetchResponse:
        cols = self.columns
        uid = cols.uids[index]
        items: list[FetchData] = []
        for item in self.body.items:
            if item is _UID:
                items.append(UidData(uid))
            elif item is _FLAGS:
                items.append(self._flags(index, uid))
            elif item is _SIZE:
                items.append(SizeData(cols.sizes[index]))
            elif item is _DATE:
                items.append(InternalDateData(cols.dates[index]))
            elif item is _MODSEQ:
                items.append(ModSeqData(cols.modseqs[index]))
            elif heavy is not None and item in heavy:
                items.append(heavy[item])
        if self.add_flags and uid in self.seen:
            items.append(self._flags(index, uid))  # RFC 9051 §6.4.5: the change is told
        return FetchResponse(number, tuple(items))

    def _flags(self, index: int, uid: int) -> FetchData:
        recent = self.recent and self.view.is_recent(uid)
        return self.selected.flags(self.columns.flags[index], recent)


async def fetch(s: Session, cmd: Command) -> None:
    body = cmd.body
    assert isinstance(body, c.Fetch)
    selected = s.sel
    view = selected.view
    view_uids = view.uids
    try:
        spans = index_spans(view_uids, body.sequence, uid=body.uid, saved=selected.saved)
    except OutOfRange as exc:
        await complete(s, cmd, Status.BAD, None, str(exc))
        return
    folder = selected.folder
    if body.vanished and body.changed_since is not None:
        # RFC 7162 §3.2.6: what of the asked uids vanished since CHANGEDSINCE.
        ranges = await s.io(folder.vanished_since, body.changed_since)
        asked = uid_set(selected.saved) if body.sequence.saved else body.sequence
        gone = vanished_in(ranges, asked) if asked.items else ()
        if gone:
            s.core.send(Vanished(SequenceSet(gone), earlier=True))
    picked = pick(view_uids, spans)
    seen: frozenset[int] = frozenset()
    if not selected.readonly and any(sets_seen(item) for item in body.items):
        seen = await s.io(_mark_seen, view, picked)
    columns = await s.io(_columns, folder, picked)
    rows = _Rows(s, body, columns, seen)
    numbers = list(row_numbers(view_uids, spans, len(picked), columns.uids))
    heavy_items = [item for item in body.items if item not in _SIMPLE]
    try:
        if heavy_items:
            ghosts = await _heavy(s, rows, numbers, heavy_items)
        else:
            await s.emit(rows.response(number, index, None)
                         for index, number in enumerate(numbers) if rows.wanted(index))
            ghosts = len(picked) > len(columns.uids)
    except UnknownEncoding as exc:
        await complete(s, cmd, Status.NO, Code.UNKNOWN_CTE,
                       f"cannot decode part {exc} for BINARY")
        return
    ghosts = ghosts or len(picked) > len(columns.uids)
    if ghosts:
        await complete(s, cmd, Status.OK, Code.EXPUNGEISSUED,
                       "some messages were expunged meanwhile")
    else:
        await complete(s, cmd)


async def _heavy(s: Session, rows: _Rows, numbers: list[int],
                 items: list[FetchItem]) -> bool:
    folder = rows.selected.folder
    cols = rows.columns
    wanted = [index for index in range(len(numbers)) if rows.wanted(index)]
    ghosts = False
    start = 0
    light = not needs_data(items)
    most = _LIGHT_BATCH if light else _HEAVY_BATCH
    while start < len(wanted):
        stop, octets = start, 0
        while stop < len(wanted) and stop - start < most and octets < _HEAVY_OCTETS:
            octets += 0 if light else cols.sizes[wanted[stop]]
            stop += 1
        batch = wanted[start:stop]
        loaded = await s.io(load_content, folder, [cols.uids[i] for i in batch], items)
        out: list[Untagged] = []
        for index, heavy in zip(batch, loaded, strict=True):
            if heavy is None:
                ghosts = True
                continue
            out.append(rows.response(numbers[index], index, heavy))
        await s.emit(out)
        await s.flush()
        start = stop
    return ghosts
