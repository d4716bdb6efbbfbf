"""Moving message content from the receive buffer to events.

One ``Transfer`` per mail transaction drives the readers of ``dataread``:
DATA content, accepted BDAT chunks (RFC 3030, counted across chunks for the
size limit) and refused BDAT chunks, whose octets are read and dropped before
the refusal is sent (RFC 3030 §2: the server must still consume the chunk,
or the client's octets would be read as commands).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

from mailyard.proto.buffer import LineBuffer
from mailyard.proto.smtp.dataread import BdatReader, DotReader
from mailyard.proto.smtp.events import DataAborted, DataChunk, Event
from mailyard.proto.smtp.replies import Reply

__all__ = ["MAX_CHUNK", "Outcome", "Progress", "Transfer"]

MAX_CHUNK: Final = 64 * 1024  # largest DataChunk handed out


class Outcome(enum.Enum):
    READING = "READING"  # more content to come
    CHUNK_OK = "CHUNK_OK"  # a non-LAST BDAT chunk arrived intact; ``reply`` is its 250
    COMPLETE = "COMPLETE"  # all content arrived intact: time for DataEnd
    FAILED = "FAILED"  # content over and refused: send ``reply``, end the transaction
    DISCARDED = "DISCARDED"  # a refused chunk was skipped: send ``reply``


@dataclass(slots=True)
class Progress:
    outcome: Outcome
    events: list[Event] = field(default_factory=list)
    reply: Reply | None = None


class _Kind(enum.Enum):
    IDLE = "IDLE"
    DATA = "DATA"
    CHUNK = "CHUNK"
    DISCARD = "DISCARD"


class Transfer:
    """Content of one transaction; see the module doc."""

    def __init__(self, max_size: int, max_line: int) -> None:
        self._max_size = max_size
        self._max_line = max_line
        self._kind = _Kind.IDLE
        self._dot: DotReader | None = None
        self._bdat: BdatReader | None = None
        self._last = False
        self._aborted = False
        self._discard_left = 0
        self._discard_reply: Reply | None = None

    @property
    def active(self) -> bool:
        return self._kind is not _Kind.IDLE

    @property
    def chunking(self) -> bool:
        """A BDAT transfer has begun (RFC 3030 §2: no DATA from now on)."""
        return self._bdat is not None

    def start_data(self) -> None:
        self._dot = DotReader(self._max_size, self._max_line)
        self._kind = _Kind.DATA

    def announce_chunk(self, size: int, last: bool) -> Reply | None:
        """A BDAT command; returns the refusal if the total would be too big."""
        if self._bdat is None:
            self._bdat = BdatReader(self._max_size)
        self._bdat.start_chunk(size)
        self._last = last
        problem = self._bdat.problem
        return problem.reply if problem is not None else None

    def start_chunk(self) -> None:
        """Read the announced chunk (its DataStart, if any, was accepted)."""
        self._kind = _Kind.CHUNK

    def refuse_chunk(self, reply: Reply) -> None:
        """Skip the announced chunk, then send ``reply``."""
        size = self._bdat.remaining if self._bdat is not None else 0
        self.discard(size, reply)

    def discard(self, size: int, reply: Reply) -> None:
        """Skip ``size`` octets, then send ``reply``."""
        self._discard_left = size
        self._discard_reply = reply
        self._kind = _Kind.DISCARD

    def step(self, buf: LineBuffer) -> Progress | None:
        """Consume what is buffered; None if nothing could be done."""
        if self._kind is _Kind.DATA:
            return self._step_data(buf)
        if self._kind is _Kind.CHUNK:
            return self._step_chunk(buf)
        if self._kind is _Kind.DISCARD:
            return self._step_discard(buf)
        return None

    def _step_data(self, buf: LineBuffer) -> Progress | None:
        reader = self._dot
        assert reader is not None
        data = buf.peek()
        if not data:
            return None
        used, done = reader.feed(data, 0)
        buf.advance(used)
        events = self._events(reader.take())
        if not done:
            return Progress(Outcome.READING, events)
        return self._finish(events)

    def _step_chunk(self, buf: LineBuffer) -> Progress | None:
        reader = self._bdat
        assert reader is not None
        if reader.remaining and not len(buf):
            return None
        used, done = reader.feed(buf.peek() if reader.remaining else b"", 0)
        buf.advance(used)
        events = self._events(reader.take())
        if not done:
            return Progress(Outcome.READING, events)
        if self._last or reader.problem is not None:
            # RFC 3030 §2: a refused chunk fails the whole transaction.
            return self._finish(events)
        self._kind = _Kind.IDLE
        reply = Reply(250, "2.0.0", f"{reader.size} octets received")
        return Progress(Outcome.CHUNK_OK, events, reply)

    def _step_discard(self, buf: LineBuffer) -> Progress | None:
        take = min(self._discard_left, len(buf))
        if self._discard_left and not take:
            return None
        buf.advance(take)
        self._discard_left -= take
        if self._discard_left:
            return Progress(Outcome.READING)
        self._kind = _Kind.IDLE
        return Progress(Outcome.DISCARDED, reply=self._discard_reply)

    def _finish(self, events: list[Event]) -> Progress:
        self._kind = _Kind.IDLE
        reader = self._dot or self._bdat
        if reader is not None and reader.problem is not None:
            # The day of reckoning: the client is in step again, answer now.
            return Progress(Outcome.FAILED, events, reader.problem.reply)
        return Progress(Outcome.COMPLETE, events)

    def _events(self, pieces: list[bytes]) -> list[Event]:
        """Content as DataChunk events of at most MAX_CHUNK octets, then
        DataAborted once when the first problem shows up."""
        events: list[Event] = []
        if pieces:
            blob = pieces[0] if len(pieces) == 1 else b"".join(pieces)
            for start in range(0, len(blob), MAX_CHUNK):
                events.append(DataChunk(blob[start : start + MAX_CHUNK]))
        reader = self._dot or self._bdat
        if reader is not None and reader.problem is not None and not self._aborted:
            self._aborted = True
            events.append(DataAborted(reader.problem.value))
        return events
