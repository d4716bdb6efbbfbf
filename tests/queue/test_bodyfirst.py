"""Queue.begin_body_first (queue/bodyfirst.py): the body before the envelope.

The spool is anonymous: at no moment after the first write does tmp/ hold
a file for it, so a dropped connection or a crash leaves nothing; the
commit goes through the ordinary path (tmp/ID, fsync, rename, sync).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailyard.queue.store import Envelope, Queue

ENVELOPE = Envelope("s@example.org", ("a@example.test", "b@example.test"), birth=1733072400.0)
HEAD = b"Received: from unknown by mx with QMTP\r\n"


@pytest.fixture
def queue(tmp_path: Path) -> Queue:
    q = Queue(str(tmp_path / "queue"))
    q.ensure_layout()
    return q


def listing(queue: Queue, folder: str) -> list[str]:
    return os.listdir(Path(queue.root, folder))


def body_of(queue: Queue, qid: str) -> bytes:
    with queue.open_body(qid) as body:
        return body.read()


def test_small_message_never_spools(queue: Queue) -> None:
    writer = queue.begin_body_first()
    assert listing(queue, "tmp") == []
    qid = writer.commit(ENVELOPE, HEAD, b"Subject: s\r\n\r\nhi\r\n")
    assert qid == writer.id
    assert queue.load(qid).envelope == ENVELOPE
    assert body_of(queue, qid) == HEAD + b"Subject: s\r\n\r\nhi\r\n"
    assert listing(queue, "tmp") == []


def test_spooled_body_is_copied_behind_the_envelope(queue: Queue) -> None:
    parts = [b"Subject: big\r\n\r\n", os.urandom(3 * 1024 * 1024), b"\r\nend"]
    writer = queue.begin_body_first(Queue.new_id())
    for part in parts:
        writer.write(part)
        assert listing(queue, "tmp") == []  # the spool has no name
    assert writer.size == sum(map(len, parts))
    qid = writer.commit(ENVELOPE, HEAD, b"\r\n")
    assert body_of(queue, qid) == HEAD + b"".join(parts) + b"\r\n"
    assert queue.list_ids() == [qid]
    assert listing(queue, "tmp") == []


def test_abort_leaves_nothing_and_is_final(queue: Queue) -> None:
    writer = queue.begin_body_first()
    writer.write(b"partial message")
    writer.abort()
    writer.abort()  # idempotent
    assert listing(queue, "tmp") == [] and queue.list_ids() == []
    with pytest.raises(ValueError):
        writer.write(b"more")
    with pytest.raises(ValueError):
        writer.commit(ENVELOPE)


def test_failed_commit_leaves_nothing(queue: Queue) -> None:
    writer = queue.begin_body_first()
    writer.write(b"body")
    # Another message already holds the id: commit() must not replace it.
    Path(queue.root, "mess", writer.id).write_bytes(b"someone else")
    with pytest.raises(FileExistsError):
        writer.commit(ENVELOPE, HEAD)
    assert listing(queue, "tmp") == []
    with pytest.raises(ValueError):
        writer.commit(ENVELOPE, HEAD)  # finished after a failure too


def test_reuses_free_files_like_begin(queue: Queue) -> None:
    first = queue.begin(ENVELOPE)
    first.write(b"x")
    queue.complete(first.commit())
    writer = queue.begin_body_first(Queue.new_id())
    writer.write(b"second")
    qid = writer.commit(ENVELOPE)
    assert body_of(queue, qid) == b"second"
    assert listing(queue, "free") == []


def test_bad_ids_are_refused(queue: Queue) -> None:
    with pytest.raises(ValueError):
        queue.begin_body_first("../escape")
