"""Crash injection at every step of docs/design/queue.md's state table.

Each case runs crash_child.py in a real subprocess that dies with
``os._exit(99)`` right after the named step (``fsio.crash_point``), then runs
``recover()`` here and checks the table's promise: an acknowledged message is
loadable byte-exact, no partial message is ever visible, no recorded or
pending recipient is lost.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailyard.queue.store import Outcome, Queue, QueueNotFound, RecipientState
from tests.queue.crash_child import BODY, ENVELOPE, RECORDS

CHILD = Path(__file__).with_name("crash_child.py")
SRC = Path(__file__).parents[2] / "src" / "mailyard" / "queue"
DOC = Path(__file__).parents[2] / "docs" / "design" / "queue.md"

ENQUEUE_STEPS = [
    "queue.begin.create", "queue.begin.write", "queue.write:1", "queue.write:2",
    "queue.commit.fsync", "queue.commit.rename", "queue.commit.sync",
]
RECORD_STEPS = [
    "queue.record.create", "queue.record.write:1", "queue.record.fsync:1", "queue.record.sync",
    "queue.record.write:2", "queue.record.fsync:2", "queue.record.write:3",
    "queue.record.fsync:3", "queue.complete.recycle", "queue.complete.truncate",
    "queue.complete.unlink_state",
]
# The second message of the "reuse" scenario takes over the first one's file.
REUSE_STEPS = [
    "queue.complete.recycle", "queue.complete.truncate", "queue.begin.claim",
    "queue.begin.write:2", "queue.commit.fsync:2", "queue.commit.rename:2", "queue.commit.sync:2",
]
DELETE_STEPS = ["queue.delete.unlink_mess", "queue.delete.sync", "queue.delete.unlink_state"]
RECOVER_STEPS = ["queue.recover.unlink_debris", "queue.recover.unlink_orphan"]
ABORT_STEPS = ["queue.abort.unlink"]
# begin_body_first(): the body is spooled before the envelope exists (QMTP).
BODY_FIRST_STEPS = [
    "queue.body.create", "queue.body.hide", "queue.body.write:1", "queue.body.write:2",
    "queue.begin.create", "queue.begin.write", "queue.write", "queue.commit.fsync",
    "queue.commit.rename", "queue.commit.sync",
]
ALL_STEPS = (ENQUEUE_STEPS + RECORD_STEPS + REUSE_STEPS + DELETE_STEPS + RECOVER_STEPS
             + ABORT_STEPS + BODY_FIRST_STEPS)


def run_child(crash_at: str, *args: str) -> list[str]:
    env = dict(os.environ, MAILYARD_CRASH_AT=crash_at)
    proc = subprocess.run([sys.executable, str(CHILD), *args], env=env,
                          capture_output=True, timeout=60, check=False)
    # 99 proves the step was reached: a step this run never passes is a test bug.
    assert proc.returncode == 99, (crash_at, proc.returncode, proc.stderr.decode())
    return proc.stdout.decode().split("\n")


def committed_queue(root: Path) -> tuple[Queue, str]:
    queue = Queue(str(root))
    queue.ensure_layout()
    writer = queue.begin(ENVELOPE)
    writer.write(BODY)
    return queue, writer.commit()


def assert_whole(queue: Queue, qid: str) -> None:
    message = queue.load(qid)
    assert message.envelope == ENVELOPE
    with queue.open_body(qid) as body:
        assert body.read() == BODY
    assert message.body_size == len(BODY)


def test_every_crash_point_is_listed_and_tested() -> None:
    in_source = set()
    for path in SRC.glob("*.py"):
        in_source |= set(re.findall(r'crash_point\("([a-z_.]+)"\)', path.read_text()))
    tested = {step.partition(":")[0] for step in ALL_STEPS}
    assert in_source == tested
    doc = DOC.read_text()
    for step in in_source:
        assert f"`{step}`" in doc, step


@pytest.mark.parametrize("step", ENQUEUE_STEPS)
def test_crash_while_enqueueing(tmp_path: Path, step: str) -> None:
    root = tmp_path / "queue"
    out = run_child(step, "enqueue", str(root))
    begun = [line.split()[1] for line in out if line.startswith("begun ")]
    acked = [line.split()[1] for line in out if line.startswith("committed ")]
    queue = Queue(str(root))
    before_rename = ENQUEUE_STEPS.index(step) < ENQUEUE_STEPS.index("queue.commit.rename")
    # A young tmp file may be a live injector: it is kept, and never listed.
    first = queue.recover(time.time(), debris_age=3600)
    assert first.removed_debris == 0
    assert len(os.listdir(root / "tmp")) == (1 if before_rename else 0)
    report = queue.recover(time.time() + 10, debris_age=1)
    if acked:
        assert report.pending == tuple(acked)
    else:
        # Not acknowledged: nothing, or (a crash after the rename) the complete
        # message, which the retrying client sends again: at-least-once.
        assert set(report.pending) <= set(begun)
        assert (report.pending == ()) == before_rename
    for qid in report.pending:
        assert_whole(queue, qid)
    assert os.listdir(root / "tmp") == []
    assert os.listdir(root / "state") == []
    assert report.removed_debris == (1 if before_rename else 0)


@pytest.mark.parametrize("step", BODY_FIRST_STEPS)
def test_crash_while_spooling_body_first(tmp_path: Path, step: str) -> None:
    root = tmp_path / "queue"
    out = run_child(step, "bodyfirst", str(root))
    (begun,) = [line.split()[1] for line in out if line.startswith("begun ")]
    # The spool has a name only between its create and its unlink; tmp/ID
    # exists from begin() to the rename, like any message.
    named = step in ("queue.body.create", "queue.begin.create", "queue.begin.write",
                     "queue.write", "queue.commit.fsync")
    assert len(os.listdir(root / "tmp")) == (1 if named else 0)
    queue = Queue(str(root))
    report = queue.recover(time.time() + 10, debris_age=1)
    renamed = BODY_FIRST_STEPS.index(step) >= BODY_FIRST_STEPS.index("queue.commit.rename")
    # Not acknowledged before the sync returned; after the rename the whole
    # message may stay (the client retries: at-least-once), never a part of it.
    assert report.pending == ((begun,) if renamed else ())
    for qid in report.pending:
        assert_whole(queue, qid)
    assert os.listdir(root / "tmp") == []


@pytest.mark.parametrize("step", REUSE_STEPS)
def test_crash_while_reusing_a_file(tmp_path: Path, step: str) -> None:
    root = tmp_path / "queue"
    out = run_child(step, "reuse", str(root))
    completed = [line.split()[1] for line in out if line.startswith("completed ")]
    acked = [line.split()[1] for line in out if line.startswith("committed ")]
    queue = Queue(str(root))
    report = queue.recover(time.time() + 10, debris_age=1)
    # What free/ holds is garbage at every moment: whatever it held when the
    # crash came, the completed message never comes back as queued mail...
    assert not set(completed) & set(report.pending)
    if acked:
        assert report.pending == tuple(acked)
    for qid in report.pending:
        # ... and a message is listed only whole, never its predecessor's bytes.
        assert_whole(queue, qid)
    assert os.listdir(root / "tmp") == []
    # After the crash the queue goes on reusing and accepting mail.
    writer = queue.begin(ENVELOPE, Queue.new_id())
    writer.write(BODY)
    assert_whole(queue, writer.commit())


def test_completed_files_are_reused_not_deleted(tmp_path: Path) -> None:
    queue = Queue(str(tmp_path / "queue"))
    queue.ensure_layout()
    first = queue.begin(ENVELOPE)
    first.write(BODY)
    qid = first.commit()
    inode = os.stat(Path(queue.root, "mess", qid)).st_ino
    queue.complete(qid)
    (freed,) = os.listdir(Path(queue.root, "free"))
    assert os.stat(Path(queue.root, "free", freed)).st_size == 0  # no mail lingers there
    second = queue.begin(ENVELOPE, Queue.new_id())
    second.write(b"Subject: short\r\n\r\nx\r\n")
    new_id = second.commit()
    assert os.stat(Path(queue.root, "mess", new_id)).st_ino == inode
    with queue.open_body(new_id) as body:
        assert body.read() == b"Subject: short\r\n\r\nx\r\n"
    assert os.listdir(Path(queue.root, "free")) == []


def test_crash_while_aborting(tmp_path: Path) -> None:
    root = tmp_path / "queue"
    Queue(str(root)).ensure_layout()
    run_child("queue.abort.unlink", "abort", str(root))
    report = Queue(str(root)).recover(time.time() + 10, debris_age=1)
    assert report == type(report)((), 0, 0)
    assert os.listdir(root / "tmp") == []


def applied(batches: int) -> list[RecipientState]:
    """Each recipient's state once the first ``batches`` record() calls took effect."""
    states = [RecipientState.PENDING] * len(ENVELOPE.recipients)
    for batch in RECORDS[:batches]:
        for index, outcome in batch:
            states[index] = {"D": RecipientState.DELIVERED, "T": RecipientState.PENDING,
                             "B": RecipientState.FAILED}[outcome.code]
    return states


@pytest.mark.parametrize("step", RECORD_STEPS)
def test_crash_while_recording_or_completing(tmp_path: Path, step: str) -> None:
    queue, qid = committed_queue(tmp_path / "queue")
    out = run_child(step, "record", queue.root, qid)
    acked = sum(1 for line in out if re.fullmatch(r"r\d", line))
    report = queue.recover(time.time() + 10, debris_age=1)
    assert os.listdir(Path(queue.root, "tmp")) == []
    if step.startswith("queue.complete."):
        # complete() had begun: every recipient was finished by the caller.
        assert acked == len(RECORDS)
        assert report.pending == ()
        assert os.listdir(Path(queue.root, "state")) == []
        with pytest.raises(QueueNotFound):
            queue.load(qid)
        return
    assert report.pending == (qid,)
    assert_whole(queue, qid)
    states = [s.state for s in queue.load(qid).statuses]
    # Acknowledged records hold; the one in flight may or may not have landed.
    assert states in (applied(acked), applied(acked + 1))
    # The queue still works after the crash: the remaining records and complete() succeed.
    for batch in RECORDS[acked:]:
        queue.record(qid, batch)
    assert [s.state for s in queue.load(qid).statuses] == applied(len(RECORDS))
    queue.complete(qid)
    assert queue.list_ids() == []


@pytest.mark.parametrize("step", DELETE_STEPS)
def test_crash_while_deleting(tmp_path: Path, step: str) -> None:
    queue, qid = committed_queue(tmp_path / "queue")
    queue.record(qid, [(0, Outcome("T", "busy"))])
    run_child(step, "delete", queue.root, qid)
    report = queue.recover(time.time() + 10, debris_age=1)
    assert report.pending == ()
    assert os.listdir(Path(queue.root, "state")) == []


@pytest.mark.parametrize("step", RECOVER_STEPS)
def test_crash_while_recovering(tmp_path: Path, step: str) -> None:
    queue, keep = committed_queue(tmp_path / "queue")
    _, gone = committed_queue(tmp_path / "queue")
    queue.record(gone, [(0, Outcome("D", "ok"))])
    os.unlink(Path(queue.root, "mess", gone))  # an interrupted complete(): S5
    debris = queue.begin(ENVELOPE)
    debris.write(b"partial")
    old = time.time() - 1000
    os.utime(Path(queue.root, "tmp", debris.id), (old, old))
    run_child(step, "recover", queue.root)
    report = queue.recover(time.time(), debris_age=100)
    assert report.pending == (keep,)
    assert_whole(queue, keep)
    assert os.listdir(Path(queue.root, "tmp")) == []
    assert os.listdir(Path(queue.root, "state")) == []
