"""The durable queue: the one place messages enter and leave ``<state>/queue``.

``Queue`` implements the state table of docs/design/queue.md: ``begin`` /
``QueueWriter.commit`` take a message from nothing to committed (S0 → S3),
``record`` checkpoints recipients (S4), ``complete`` and ``delete`` remove it
(S5 → S0), ``recover`` cleans up after a crash. Every method that takes an id
validates it first, because the CLI passes user input here.

This module is also the public face of the package: it re-exports the
envelope, outcome and status types.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from mailyard import fsio
from mailyard.queue.bodyfirst import BodyFirstWriter
from mailyard.queue.envelope import Envelope, encode_envelope, read_envelope
from mailyard.queue.errors import QueueCorrupt, QueueNotFound
from mailyard.queue.ids import check_id, new_id
from mailyard.queue.layout import Layout
from mailyard.queue.recover import RecoveryReport, committed_ids, recover
from mailyard.queue.recycle import Recycler
from mailyard.queue.status import (
    Outcome,
    RecipientState,
    RecipientStatus,
    encode_records,
    parse_records,
    summarize,
)
from mailyard.queue.writer import QueueWriter

__all__ = [
    "BodyFirstWriter",
    "Envelope",
    "Outcome",
    "Queue",
    "QueueCorrupt",
    "QueueNotFound",
    "QueueWriter",
    "QueuedMessage",
    "RecipientState",
    "RecipientStatus",
    "RecoveryReport",
]

_ID_ATTEMPTS = 8  # create_excl collisions in tmp/ are already near impossible


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    id: str
    envelope: Envelope
    statuses: tuple[RecipientStatus, ...]  # one per recipient, in envelope order
    body_offset: int  # byte offset of the first body byte in the queue file
    body_size: int


def _corrupt(qid: str, exc: QueueCorrupt) -> QueueCorrupt:
    return QueueCorrupt(f"queue file {qid}: {exc}")


class Queue:
    """A queue rooted at ``root`` (``<state>/queue``); safe to share between threads."""

    def __init__(self, root: str, syncer: fsio.DirSyncer | None = None) -> None:
        self._layout = Layout.at(root)
        self._syncer = syncer
        self._recycler = Recycler(self._layout)

    @property
    def root(self) -> str:
        return self._layout.root

    def ensure_layout(self) -> None:
        """Create root, tmp/, mess/ and state/ durably; idempotent."""
        layout = self._layout
        for path in (layout.root, layout.tmp, layout.mess, layout.state, layout.free):
            fsio.ensure_dir(path)

    # -- in: S0 -> S1 (the writer takes it to S3) ----------------------------

    @staticmethod
    def new_id() -> str:
        """A fresh queue id, without touching the disk.

        A receiver names the message (for its ``Received:`` field) before
        the first byte is written, then passes the id to ``begin``.
        """
        return new_id()

    def begin(self, envelope: Envelope, qid: str | None = None) -> QueueWriter:
        """Create ``tmp/ID`` holding the envelope; the id is final from here on.

        ``qid`` is one obtained from ``new_id()``; when it collides (it
        cannot, short of a clock and pid reuse), FileExistsError is raised.
        """
        header = encode_envelope(envelope)
        fd, qid = self._create_tmp(qid)
        fsio.crash_point("queue.begin.create")
        writer = QueueWriter(self._layout, qid, fd, self._syncer)
        try:
            fsio.write_all(fd, header)
        except BaseException:
            writer.abort()
            raise
        fsio.crash_point("queue.begin.write")
        return writer

    def begin_body_first(self, qid: str | None = None) -> BodyFirstWriter:
        """A message whose body comes before its envelope (QMTP, QMQP): the
        body is spooled, and ``commit(envelope)`` queues it through ``begin``
        (bodyfirst.py). No disk access until the first ``write``."""
        return BodyFirstWriter(self._layout, self.begin, qid if qid is not None else new_id())

    def _create_tmp(self, qid: str | None) -> tuple[int, str]:
        chosen = check_id(qid) if qid is not None else new_id()
        fd = self._recycler.claim(self._layout.tmp_file(chosen))
        if fd is not None:
            return fd, chosen
        if qid is not None:
            return fsio.create_excl(self._layout.tmp, chosen), chosen
        for candidate in [chosen, *(new_id() for _ in range(_ID_ATTEMPTS - 1))]:
            try:
                return fsio.create_excl(self._layout.tmp, candidate), candidate
            except FileExistsError:
                continue
        raise FileExistsError("could not find a free queue id")

    # -- reading ---------------------------------------------------------------

    def list_ids(self) -> list[str]:
        """Committed messages, oldest first."""
        return committed_ids(self._layout)

    def _open(self, qid: str) -> BinaryIO:
        try:
            return open(self._layout.mess_file(qid), "rb")
        except FileNotFoundError:
            raise QueueNotFound(qid) from None

    def _read_header(self, qid: str, file: BinaryIO) -> tuple[Envelope, int]:
        try:
            return read_envelope(file)
        except QueueCorrupt as exc:
            raise _corrupt(qid, exc) from exc

    def load(self, qid: str) -> QueuedMessage:
        """The message's envelope, per-recipient status and body position."""
        check_id(qid)
        with self._open(qid) as file:
            envelope, offset = self._read_header(qid, file)
            size = os.fstat(file.fileno()).st_size
        try:
            records = parse_records(self._read_state(qid), len(envelope.recipients))
        except QueueCorrupt as exc:
            raise _corrupt(qid, exc) from exc
        statuses = summarize(envelope.recipients, records)
        return QueuedMessage(qid, envelope, statuses, offset, size - offset)

    def open_body(self, qid: str) -> BinaryIO:
        """The queue file opened for reading, positioned at the first body byte."""
        check_id(qid)
        file = self._open(qid)
        try:
            _, offset = self._read_header(qid, file)
            file.seek(offset)
        except BaseException:
            file.close()
            raise
        return file

    def _read_state(self, qid: str) -> bytes:
        try:
            with open(self._layout.state_file(qid), "rb") as file:
                return file.read()
        except FileNotFoundError:
            return b""  # no record yet: every recipient pending

    # -- checkpoints: S3 -> S4 ---------------------------------------------------

    def record(self, qid: str, outcomes: Sequence[tuple[int, Outcome]]) -> None:
        """Append ``outcomes`` to ``state/ID`` and make them durable before returning."""
        check_id(qid)
        if not outcomes:
            return
        with self._open(qid) as file:
            envelope, _ = self._read_header(qid, file)
        count = len(envelope.recipients)
        for index, _outcome in outcomes:
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
                raise ValueError(f"message {qid} has no recipient {index!r}")
        data = encode_records(outcomes)
        fd, created = self._open_state(qid)
        try:
            if created:
                fsio.crash_point("queue.record.create")
            elif _torn_tail(fd):
                # End the torn line first, so it cannot glue onto this record.
                data = b"\n" + data
            fsio.write_all(fd, data)
            fsio.crash_point("queue.record.write")
            # The record must be on disk before the caller acts on it.
            fsio.fsync_file(fd)
            fsio.crash_point("queue.record.fsync")
        finally:
            os.close(fd)
        if created:
            # A new file's directory entry is not covered by the file's fsync.
            self._sync_dir(self._layout.state)
            fsio.crash_point("queue.record.sync")

    def _open_state(self, qid: str) -> tuple[int, bool]:
        return fsio.open_append(self._layout.state, qid)

    def _sync_dir(self, directory: str) -> None:
        if self._syncer is None:
            fsio.fsync_dir(directory)
        else:
            self._syncer.sync(directory)

    # -- out: S3/S4 -> S5 -> S0 ---------------------------------------------------

    def complete(self, qid: str) -> None:
        """Every recipient is done: move the message's file to free/ for
        reuse (recycle.py), then unlink its state; no fsync.

        A lost rename after a power loss only brings the message back, and
        its recipients are delivered again (at-least-once).
        """
        check_id(qid)
        self._recycler.release(qid)
        _unlink_if_present(self._layout.state_file(qid))
        fsio.crash_point("queue.complete.unlink_state")

    def delete(self, qid: str) -> None:
        """Operator removal without delivery or bounce; durable once it returns."""
        check_id(qid)
        try:
            os.unlink(self._layout.mess_file(qid))
        except FileNotFoundError:
            raise QueueNotFound(qid) from None
        fsio.crash_point("queue.delete.unlink_mess")
        fsio.fsync_dir(self._layout.mess)
        fsio.crash_point("queue.delete.sync")
        _unlink_if_present(self._layout.state_file(qid))
        fsio.crash_point("queue.delete.unlink_state")

    def recover(self, now: float, debris_age: float) -> RecoveryReport:
        """Clean up after a crash and list every committed message (see
        recover.py); also keeps free/ bounded."""
        report = recover(self._layout, now, debris_age)
        self._recycler.trim()
        return report

    def trim_free(self) -> int:
        """Unlink reusable files beyond what the queue keeps (recycle.py)."""
        return self._recycler.trim()


def _torn_tail(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _unlink_if_present(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
