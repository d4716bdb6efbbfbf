"""SEARCH criteria evaluated over a folder (RFC 9051 §6.4.4, RFC 7162 §3.1.5,
RFC 5182 ``$``).

The core hands over a small tree (``proto.imap.search``). Flag, size,
internal date, sequence, UID and MODSEQ keys are answered from the
folder's columns; content keys (FROM, SUBJECT, HEADER, BODY, TEXT,
SENT*) go to ``mailyard.message.search``, which says how little it needs
(``need``): the cached envelope, the header block, or the whole message.
Files are read only for messages that reach a content key: ``AND`` tries
its cheap keys first and stops at the first false one.

Runs in the io pool (it reads files), one message at a time, so memory
holds one message however many are searched.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Final

from mailyard.maildir.errors import MessageGone, StoreError
from mailyard.maildir.flags import KeywordTable
from mailyard.maildir.folder import Folder
from mailyard.maildir.values import Columns
from mailyard.message import search as ms
from mailyard.message.cache import (
    CacheError,
    MessageSummary,
    decode_summary_envelope,
    decode_summary_subject,
    encode_summary,
    summarize,
)
from mailyard.message.envelope import Envelope
from mailyard.proto.imap import search as q
from mailyard.server.imap.content import SUMMARY_KIND
from mailyard.server.imap.numbers import member

__all__ = ["PREFETCH", "Candidates", "Loader", "compile_key", "has_modseq", "need_of"]

Predicate = Callable[[int], bool]
_EPOCH_DAY: Final = datetime.date(1970, 1, 1).toordinal()
PREFETCH: Final = 1024  # cached envelopes read at once
_HEADER_CHUNK: Final = 16384
_MAX_HEADER: Final = 1 << 20
_WHERE: Final = {
    q.TextWhere.FROM: ms.AddressField.FROM,
    q.TextWhere.TO: ms.AddressField.TO,
    q.TextWhere.CC: ms.AddressField.CC,
    q.TextWhere.BCC: ms.AddressField.BCC,
}
_DATES: Final = {"BEFORE": ms.DateRelation.BEFORE, "ON": ms.DateRelation.ON,
                 "SINCE": ms.DateRelation.SINCE}


@dataclass(frozen=True, slots=True)
class Candidates:
    """The messages searched: their columns and sequence numbers (``numbers[i]``),
    the session's \\Recent test, the folder's keywords and the saved result."""

    columns: Columns
    numbers: list[int]
    count: int  # messages in the session's view (for "*" in sequence sets)
    largest_uid: int  # the view's last uid (for "*" in uid sets)
    recent: Callable[[int], bool]
    keywords: KeywordTable
    saved: tuple[int, ...]


def _content_key(key: q.TextKey | q.HeaderKey | q.DateKey) -> ms.SearchKey:
    if isinstance(key, q.HeaderKey):
        return ms.HeaderKey(key.field.lower().encode("utf-8", "replace"), key.value)
    if isinstance(key, q.DateKey):
        return ms.SentKey(_DATES[key.relation], key.day)
    if key.where is q.TextWhere.SUBJECT:
        return ms.SubjectKey(key.value)
    if key.where is q.TextWhere.BODY:
        return ms.BodyKey(key.value)
    if key.where is q.TextWhere.TEXT:
        return ms.TextKey(key.value)
    return ms.AddressKey(_WHERE[key.where], key.value)


def _is_content(key: q.SearchKey) -> bool:
    return isinstance(key, q.TextKey | q.HeaderKey) or (
        isinstance(key, q.DateKey) and key.which is q.DateWhich.SENT)


def need_of(key: q.SearchKey) -> ms.Need | None:
    """The most any content key of the tree reads; None if it reads nothing."""
    if isinstance(key, q.And):
        needs = [n for n in map(need_of, key.keys) if n is not None]
        return max(needs) if needs else None
    if isinstance(key, q.Or):
        needs = [n for n in (need_of(key.left), need_of(key.right)) if n is not None]
        return max(needs) if needs else None
    if isinstance(key, q.Not):
        return need_of(key.key)
    if isinstance(key, q.TextKey | q.HeaderKey | q.DateKey) and _is_content(key):
        return ms.need(_content_key(key))
    return None


def has_modseq(key: q.SearchKey) -> bool:
    """RFC 7162 §3.1.5: a MODSEQ key makes the answer carry the highest mod-sequence."""
    if isinstance(key, q.And):
        return any(has_modseq(k) for k in key.keys)
    if isinstance(key, q.Or):
        return has_modseq(key.left) or has_modseq(key.right)
    if isinstance(key, q.Not):
        return has_modseq(key.key)
    return isinstance(key, q.ModSeqKey)


class Loader:
    """The current message as ``message.search`` wants it, loaded once per message.

    Envelopes come from the blob cache, read ``PREFETCH`` messages at a time
    (neighbouring blobs share one read), the subject alone decoded until a
    key needs more; a message not cached yet is parsed once and cached.
    """

    __slots__ = ("_blobs", "_index", "_until", "_view", "folder", "level", "sizes", "uids")

    def __init__(self, folder: Folder, columns: Columns, level: ms.Need) -> None:
        self.folder = folder
        self.uids = columns.uids
        self.sizes = columns.sizes
        self.level = level
        self._index = -1
        self._view: ms.MessageView | None = None
        self._blobs: dict[int, bytes] = {}
        self._until = 0  # the prefetched blobs cover indexes below this

    def view(self, index: int) -> ms.MessageView | None:
        """None when the message has gone (it then matches no content key)."""
        if index != self._index:
            self._index = index
            try:
                self._view = self._load(index)
            except MessageGone:
                self._view = None
        return self._view

    def subject(self, index: int) -> tuple[bool, bytes | None]:
        """The envelope subject, for SUBJECT keys: straight from the cache when
        it has it (no view is made); (False, None) when the message has gone."""
        if index != self._index and self.level is ms.Need.ENVELOPE:
            blob = self._blob(index)
            if blob is not None:
                try:
                    return True, decode_summary_subject(blob)
                except CacheError:
                    pass  # another version or damage: the view parses the message
        view = self.view(index)
        return (False, None) if view is None else (True, view.subject)

    def _blob(self, index: int) -> bytes | None:
        if index >= self._until or index < self._until - PREFETCH:
            self._until = index + PREFETCH
            self._blobs = self.folder.cached_many(self.uids[index:self._until], SUMMARY_KIND)
        return self._blobs.get(self.uids[index])

    def _cached_envelope(self, uid: int, blob: bytes) -> Envelope:
        try:
            return decode_summary_envelope(blob)
        except CacheError:
            return self._parsed(uid).envelope  # another version or damage: parse again

    def _enveloped(self, index: int) -> ms.MessageView:
        """The view for envelope keys: from the cache, the subject read at once
        and the rest of the envelope decoded only if a key asks for it."""
        uid, size = self.uids[index], self.sizes[index]
        blob = self._blob(index)
        if blob is not None:
            try:
                subject = decode_summary_subject(blob)
            except CacheError:
                pass  # another version or damage: parse the message again
            else:
                return ms.MessageView(b"", size=size, subject=subject,
                                      load_envelope=lambda: self._cached_envelope(uid, blob))
        return ms.MessageView(b"", size=size, envelope=self._parsed(uid).envelope)

    def _parsed(self, uid: int) -> MessageSummary:
        summary = summarize(self._read(uid, whole=True))
        try:
            self.folder.cache(uid, SUMMARY_KIND, encode_summary(summary))
        except ValueError:
            pass  # too large to cache: parsed again next time
        return summary

    def _load(self, index: int) -> ms.MessageView:
        uid, size = self.uids[index], self.sizes[index]
        if self.level is ms.Need.SIZE:
            return ms.MessageView(b"", size=size)
        if self.level is ms.Need.ENVELOPE:
            return self._enveloped(index)
        data = self._read(uid, whole=self.level is ms.Need.MESSAGE)
        return ms.MessageView(data, size=size)

    def _read(self, uid: int, *, whole: bool) -> bytes:
        with self.folder.open_message(uid) as handle:
            return handle.read() if whole else _header_block(handle)


def _header_block(handle: BinaryIO) -> bytes:
    """The octets up to the end of the header block (and a little more)."""
    data = b""
    while len(data) < _MAX_HEADER:
        chunk = handle.read(_HEADER_CHUNK)
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data or b"\n\n" in data:
            break
    return data


def compile_key(key: q.SearchKey, cand: Candidates, loader: Loader | None) -> Predicate:
    """The tree as one predicate over candidate indexes."""
    if isinstance(key, q.And):
        parts = sorted(key.keys, key=lambda k: need_of(k) is not None)
        tests = [compile_key(k, cand, loader) for k in parts]
        if not tests:
            return lambda index: True
        if len(tests) == 1:
            return tests[0]

        return lambda index: all(test(index) for test in tests)
    if isinstance(key, q.Or):
        left, right = compile_key(key.left, cand, loader), compile_key(key.right, cand, loader)
        return lambda index: left(index) or right(index)
    if isinstance(key, q.Not):
        inner = compile_key(key.key, cand, loader)
        return lambda index: not inner(index)
    if _is_content(key):
        assert isinstance(key, q.TextKey | q.HeaderKey | q.DateKey) and loader is not None
        content = _content_key(key)
        if isinstance(content, ms.SubjectKey):
            return _subject_key(content, loader)

        def test(index: int) -> bool:
            view = loader.view(index)
            if view is None:
                return False
            try:
                return ms.matches(content, view)
            except MessageGone:
                return False  # its envelope, loaded late, was no longer to be had

        return test
    return _column_key(key, cand)


def _subject_key(key: ms.SubjectKey, loader: Loader) -> Predicate:
    """SUBJECT, the commonest content key, without a view per message."""
    matches = ms.subject_test(key.needle)

    def test(index: int) -> bool:
        try:
            present, subject = loader.subject(index)
        except MessageGone:
            return False  # its envelope, loaded late, was no longer to be had
        return present and matches(subject or b"")

    return test


def _column_key(key: q.SearchKey, cand: Candidates) -> Predicate:
    cols = cand.columns
    if isinstance(key, q.FlagKey):
        return _flag_key(key, cand)
    if isinstance(key, q.SizeKey):
        sizes, limit = cols.sizes, key.size
        if key.larger:
            return lambda index: sizes[index] > limit
        return lambda index: sizes[index] < limit
    if isinstance(key, q.ModSeqKey):
        modseqs, floor = cols.modseqs, key.modseq
        return lambda index: modseqs[index] >= floor
    if isinstance(key, q.DateKey):
        # RFC 9051 §6.4.4: the internal date, by day, time and zone ignored
        # (we keep it in UTC and show it so).
        dates, day = cols.dates, key.day.toordinal() - _EPOCH_DAY
        if key.relation == "BEFORE":
            return lambda index: dates[index] // 86400 < day
        if key.relation == "ON":
            return lambda index: dates[index] // 86400 == day
        return lambda index: dates[index] // 86400 >= day
    assert isinstance(key, q.SequenceKey)
    return _sequence_key(key, cand)


def _flag_key(key: q.FlagKey, cand: Candidates) -> Predicate:
    present = key.present
    uids = cand.columns.uids
    if key.flag.lower() == "\\recent":
        recent = cand.recent
        return lambda index: recent(uids[index]) == present
    try:
        bit = cand.keywords.bits([key.flag])
    except StoreError:
        bit = 0  # a flag that cannot exist here is set on no message
    if not bit:
        return lambda index: not present
    flags = cand.columns.flags
    return lambda index: bool(flags[index] & bit) == present


def _sequence_key(key: q.SequenceKey, cand: Candidates) -> Predicate:
    uids = cand.columns.uids
    if key.numbers.saved:
        # RFC 5182 §2.1: "$" is the saved result, whatever the command.
        saved = frozenset(cand.saved)
        return lambda index: uids[index] in saved
    if key.uid:
        inside = member(key.numbers, cand.largest_uid)
        return lambda index: inside(uids[index])
    numbers = cand.numbers
    inside = member(key.numbers, cand.count)
    return lambda index: inside(numbers[index])
