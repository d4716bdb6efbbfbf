"""Queue operations against docs/design/queue.md, on a real temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mailyard import fsio
from mailyard.queue.store import (
    Envelope,
    Outcome,
    Queue,
    QueueCorrupt,
    QueueNotFound,
    RecipientState,
)

ENV = Envelope("sender@example.org", ("a@example.test", "b@example.test", "c@example.test"),
               birth=1733072400.5, extra=(("kind", "bounce"),))
BODY = b"Subject: hi\r\n\r\nline one\r\n\0\0 binary \xff\r\n"


@pytest.fixture
def queue(tmp_path: Path) -> Queue:
    q = Queue(str(tmp_path / "queue"), syncer=fsio.DirSyncer())
    q.ensure_layout()
    return q


def files(queue: Queue) -> dict[str, list[str]]:
    return {sub: sorted(os.listdir(os.path.join(queue.root, sub)))
            for sub in ("tmp", "mess", "state")}


def enqueue(queue: Queue, body: bytes = BODY, envelope: Envelope = ENV) -> str:
    writer = queue.begin(envelope)
    half = len(body) // 2
    writer.write(body[:half])
    writer.write(body[half:])
    return writer.commit()


def test_ensure_layout_is_idempotent(tmp_path: Path) -> None:
    q = Queue(str(tmp_path / "a" / "queue"))
    q.ensure_layout()
    q.ensure_layout()
    assert files(q) == {"tmp": [], "mess": [], "state": []}


def test_missing_layout_is_an_empty_queue(tmp_path: Path) -> None:
    q = Queue(str(tmp_path / "never"))
    assert q.list_ids() == []
    with pytest.raises(QueueNotFound):
        q.load("abc")


def test_begin_write_commit_load_byte_exact(queue: Queue) -> None:
    writer = queue.begin(ENV)
    assert files(queue)["tmp"] == [writer.id]
    assert queue.list_ids() == []  # S1 is invisible
    writer.write(BODY[:5])
    writer.write(b"")
    writer.write(BODY[5:])
    qid = writer.commit()
    assert qid == writer.id
    assert files(queue) == {"tmp": [], "mess": [qid], "state": []}
    message = queue.load(qid)
    assert message.id == qid
    assert message.envelope == ENV
    assert message.body_size == len(BODY)
    assert [s.state for s in message.statuses] == [RecipientState.PENDING] * 3
    assert [s.address for s in message.statuses] == list(ENV.recipients)
    with queue.open_body(qid) as body:
        assert body.tell() == message.body_offset
        assert body.read() == BODY
        body.seek(message.body_offset)
        assert body.read(message.body_size) == BODY


def test_empty_body(queue: Queue) -> None:
    qid = queue.begin(ENV).commit()
    assert queue.load(qid).body_size == 0
    with queue.open_body(qid) as body:
        assert body.read() == b""


def test_large_body_streams(queue: Queue) -> None:
    chunk = bytes(range(256)) * 1024
    writer = queue.begin(ENV)
    for _ in range(16):
        writer.write(chunk)
    qid = writer.commit()
    message = queue.load(qid)
    assert message.body_size == 16 * len(chunk)
    with queue.open_body(qid) as body:
        assert body.read() == chunk * 16


def test_abort_leaves_nothing_and_is_idempotent(queue: Queue) -> None:
    writer = queue.begin(ENV)
    writer.write(BODY)
    writer.abort()
    writer.abort()
    assert files(queue) == {"tmp": [], "mess": [], "state": []}
    with pytest.raises(ValueError):
        writer.write(b"more")
    with pytest.raises(ValueError):
        writer.commit()


def test_abort_after_commit_keeps_the_message(queue: Queue) -> None:
    writer = queue.begin(ENV)
    qid = writer.commit()
    writer.abort()
    assert queue.list_ids() == [qid]
    with pytest.raises(ValueError):
        writer.commit()


def test_failed_commit_discards(queue: Queue) -> None:
    writer = queue.begin(ENV)
    # The tmp file vanished (recover() took it as debris): commit fails, nothing remains.
    os.unlink(os.path.join(queue.root, "tmp", writer.id))
    with pytest.raises(FileNotFoundError):
        writer.commit()
    writer.abort()
    assert files(queue) == {"tmp": [], "mess": [], "state": []}


def test_commit_never_replaces_a_committed_message(queue: Queue) -> None:
    writer = queue.begin(ENV)
    writer.write(b"new")
    target = Path(queue.root, "mess", writer.id)
    target.write_bytes(b"already committed")
    with pytest.raises(FileExistsError):
        writer.commit()
    writer.abort()
    assert target.read_bytes() == b"already committed"
    assert files(queue)["tmp"] == []


def test_failed_dir_sync_removes_the_unacknowledged_message(queue: Queue) -> None:
    class BrokenSyncer(fsio.DirSyncer):
        def sync(self, path: str) -> None:
            raise OSError(5, "Input/output error")

    broken = Queue(queue.root, syncer=BrokenSyncer())
    writer = broken.begin(ENV)
    writer.write(BODY)
    with pytest.raises(OSError):
        writer.commit()
    writer.abort()
    assert files(queue) == {"tmp": [], "mess": [], "state": []}


def test_record_and_load_show_latest_state(queue: Queue) -> None:
    qid = enqueue(queue)
    queue.record(qid, [(0, Outcome("T", "4.3.0 busy")), (1, Outcome("T", "4.2.2 full"))])
    assert files(queue)["state"] == [qid]
    queue.record(qid, [(0, Outcome("D", "delivered as x")), (1, Outcome("T", "4.2.2 still"))])
    queue.record(qid, [(2, Outcome("B", "5.1.1 no such user"))])
    queue.record(qid, [])
    s0, s1, s2 = queue.load(qid).statuses
    assert (s0.state, s0.attempts, s0.last_error) == (RecipientState.DELIVERED, 2, None)
    assert (s1.state, s1.attempts, s1.last_error) == (RecipientState.PENDING, 2, "4.2.2 still")
    assert (s2.state, s2.attempts, s2.last_error) == (RecipientState.FAILED, 1,
                                                      "5.1.1 no such user")


def test_record_checks_indices_and_existence(queue: Queue) -> None:
    qid = enqueue(queue)
    for bad in (-1, 3, True):
        with pytest.raises(ValueError):
            queue.record(qid, [(bad, Outcome("D", "x"))])
    assert files(queue)["state"] == []
    queue.complete(qid)
    with pytest.raises(QueueNotFound):
        queue.record(qid, [(0, Outcome("D", "x"))])
    assert files(queue)["state"] == []


def test_record_after_torn_line(queue: Queue) -> None:
    qid = enqueue(queue)
    queue.record(qid, [(0, Outcome("T", "busy"))])
    state = Path(queue.root, "state", qid)
    with state.open("ab") as f:
        f.write(b"1 D tor")  # a crash in the middle of an append
    assert queue.load(qid).statuses[1].state is RecipientState.PENDING  # torn: ignored
    queue.record(qid, [(2, Outcome("D", "ok"))])
    assert state.read_bytes() == b"0 T busy\n1 D tor\n2 D ok\n"
    states = [s.state for s in queue.load(qid).statuses]
    # The repaired remnant "1 D tor" was a real record whose text was cut.
    assert states == [RecipientState.PENDING, RecipientState.DELIVERED,
                      RecipientState.DELIVERED]


def test_state_file_naming_unknown_recipient_is_corrupt(queue: Queue) -> None:
    qid = enqueue(queue)
    Path(queue.root, "state", qid).write_bytes(b"7 D ok\n")
    with pytest.raises(QueueCorrupt):
        queue.load(qid)


def test_damaged_message_is_corrupt(queue: Queue) -> None:
    qid = enqueue(queue)
    Path(queue.root, "mess", qid).write_bytes(b"mailyard-queue 1\nB1.0\0")
    for call in (queue.load, queue.open_body):
        with pytest.raises(QueueCorrupt):
            call(qid)
    with pytest.raises(QueueCorrupt):
        queue.record(qid, [(0, Outcome("D", "x"))])


def test_complete_removes_everything(queue: Queue) -> None:
    qid = enqueue(queue)
    other = enqueue(queue)
    queue.record(qid, [(0, Outcome("D", "ok"))])
    queue.complete(qid)
    assert files(queue) == {"tmp": [], "mess": [other], "state": []}
    queue.complete(qid)  # idempotent
    with pytest.raises(QueueNotFound):
        queue.load(qid)
    with pytest.raises(QueueNotFound):
        queue.open_body(qid)


def test_delete(queue: Queue) -> None:
    qid = enqueue(queue)
    queue.record(qid, [(1, Outcome("T", "busy"))])
    queue.delete(qid)
    assert files(queue) == {"tmp": [], "mess": [], "state": []}
    with pytest.raises(QueueNotFound):
        queue.delete(qid)


def test_list_ids_oldest_first(queue: Queue) -> None:
    ids = [enqueue(queue) for _ in range(30)]
    assert queue.list_ids() == ids
    Path(queue.root, "mess", "not-an-id.txt").write_bytes(b"")
    assert queue.list_ids() == ids


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "x" * 33, "..", "../../etc/passwd", "a\0"])
def test_malformed_ids_raise_value_error(queue: Queue, bad: str) -> None:
    def record(qid: str) -> None:
        queue.record(qid, [(0, Outcome("D", "x"))])

    calls: list[Callable[[str], object]] = [
        queue.load, queue.open_body, queue.complete, queue.delete, record,
    ]
    for call in calls:
        with pytest.raises(ValueError) as info:
            call(bad)
        assert not isinstance(info.value, QueueCorrupt)


def test_recover_removes_old_debris_and_orphans(queue: Queue) -> None:
    keep = enqueue(queue)
    done = enqueue(queue)
    queue.record(done, [(0, Outcome("D", "ok"))])
    os.unlink(os.path.join(queue.root, "mess", done))  # crash inside complete(): S5
    old = queue.begin(ENV)
    old.write(b"partial")
    young = queue.begin(ENV)
    stamp = time.time() - 1000
    os.utime(os.path.join(queue.root, "tmp", old.id), (stamp, stamp))
    report = queue.recover(time.time(), debris_age=500)
    assert report.pending == (keep,)
    assert (report.removed_debris, report.removed_orphans) == (1, 1)
    assert files(queue) == {"tmp": [young.id], "mess": [keep], "state": []}
    # A live injector's file survives and can still commit.
    young.write(BODY)
    assert queue.recover(time.time(), 500).pending == (keep,)
    assert young.commit() in queue.list_ids()
    with pytest.raises(FileNotFoundError):
        old.commit()  # its tmp file was removed as debris: the client gets a 4xx


def test_concurrent_commits_share_dir_syncs(tmp_path: Path) -> None:
    syncer = fsio.DirSyncer()
    queue = Queue(str(tmp_path / "queue"), syncer=syncer)
    queue.ensure_layout()
    barrier = threading.Barrier(20)
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            writer = queue.begin(Envelope("s@x", (f"r{n}@y",), time.time()))
            writer.write(b"message %d\r\n" % n)
            barrier.wait()
            results[n] = writer.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results.values()) == queue.list_ids()
    assert len(set(results.values())) == 20
    assert 1 <= syncer.syncs_done <= 20
    for n, qid in results.items():
        with queue.open_body(qid) as body:
            assert body.read() == b"message %d\r\n" % n
        assert queue.load(qid).envelope.recipients == (f"r{n}@y",)


INJECTOR = """
import sys
from mailyard.queue.store import Envelope, Queue
q = Queue(sys.argv[1])
for n in range(int(sys.argv[2])):
    w = q.begin(Envelope("s", ("r",), 1.0))
    w.write(b"%s %d" % (sys.argv[3].encode(), n))
    print(w.commit(), flush=True)
"""


def test_ids_unique_across_processes(queue: Queue) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", INJECTOR, queue.root, "40", f"p{i}"],
                         stdout=subprocess.PIPE)
        for i in range(4)
    ]
    ids = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        ids.extend(out.decode().split())
    assert len(ids) == len(set(ids)) == 160
    assert sorted(ids) == queue.list_ids()
