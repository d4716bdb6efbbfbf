"""The delivery worker process and its line protocol on stdin/stdout.

``python -m mailyard.dispatch.worker --state DIR`` is started exactly as
server/delivery.py starts it, on a state folder made by ``mailyard init``
plus one domain and mailbox from the directory API. Messages are committed
with the Queue API; readiness and results are read from the worker's log
(stderr, to a file) and the Maildir, polled against a deadline.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mailyard import fsio
from mailyard.directory.store import Directory
from mailyard.queue.store import Queue
from tests.dispatch.conftest import CONTENT, add_users, delivered, enqueue, mail_in

DEADLINE = 30.0  # seconds; only reached when something is broken
ALICE = "alice@example.test"
SENDER = "sender@example.org"


def until(predicate: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, password_hash: str) -> Path:
    """`mailyard init` once per module, plus example.test with alice."""
    state = tmp_path_factory.mktemp("worker-template") / "state"
    done = subprocess.run(
        [sys.executable, "-m", "mailyard", "--state", str(state), "init",
         "--hostname", "mx.example.test"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    with Directory.open(str(state / "directory.sqlite")) as directory:
        add_users(directory, state / "mail", [ALICE], password_hash)
    return state


@pytest.fixture
def state(tmp_path: Path, template: Path) -> Path:
    target = tmp_path / "state"
    shutil.copytree(template, target)
    return target


@dataclass
class Worker:
    state: Path
    log: Path
    proc: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "MAILYARD_CRASH_AT"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mailyard.dispatch.worker", "--state", str(self.state)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
            )

    def send(self, line: str | bytes) -> None:
        assert self.proc.stdin is not None
        data = line if isinstance(line, bytes) else line.encode("ascii")
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def reply(self, timeout: float = DEADLINE) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, f"no reply within {timeout}s; log:\n{self.text()}"
        return self.proc.stdout.readline().decode("ascii")

    def status(self) -> dict[str, Any]:
        self.send("status")
        line = self.reply()
        assert line.endswith("\n") and line.count("\n") == 1
        data: dict[str, Any] = json.loads(line)
        return data

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def logged(self, event: str) -> int:
        return sum(1 for line in self.text().splitlines() if f" {event} " in f"{line} ")

    def wait_logged(self, event: str) -> None:
        until(lambda: self.logged(event) > 0 or self.proc.poll() is not None, event)
        assert self.logged(event) > 0, f"worker exited before {event}:\n{self.text()}"

    def wait(self, timeout: float = DEADLINE) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def workers(state: Path) -> Iterator[Callable[[str], Worker]]:
    started: list[Worker] = []

    def start(name: str = "worker") -> Worker:
        worker = Worker(state, state.parent / f"{name}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        # A test that failed midway must not leave processes behind.
        if worker.proc.stdin is not None and not worker.proc.stdin.closed:
            try:
                worker.proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            worker.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            worker.kill()


def commit(state: Path, content: bytes = CONTENT) -> str:
    queue = Queue(str(state / "queue"), syncer=fsio.DirSyncer())
    queue.ensure_layout()  # `mailyard init` makes queue/ only; the worker makes the rest
    return enqueue(queue, [ALICE], content)


def inbox(state: Path) -> Path:
    return state / "mail" / "example.test" / "alice"


def test_new_delivers_status_answers_and_stop_exits_0(
    state: Path, workers: Callable[[str], Worker]
) -> None:
    worker = workers("worker")
    worker.wait_logged("delivery.started")
    qid = commit(state)
    worker.send(f"new {qid}")
    until(lambda: len(mail_in(inbox(state))) == 1, "the Maildir file")
    assert mail_in(inbox(state)) == [delivered(SENDER, ALICE)]
    until(lambda: not os.listdir(state / "queue" / "mess"), "the message leaves the queue")
    status = worker.status()
    assert set(status) == {"pid", "in_flight", "scheduled", "passes"}
    assert status["pid"] == worker.proc.pid
    # The pass is counted when its verdict is back, a moment after the files moved.
    # (The start-up recovery may have seen the message too: then a second,
    # empty pass.)
    def settled() -> bool:
        now = worker.status()
        return bool(now["passes"] >= 1 and now["in_flight"] == 0)

    until(settled, "the pass counted")
    assert worker.status()["scheduled"] == 0
    worker.send("stop")
    assert worker.wait() == 0
    assert worker.logged("delivery.stopped") == 1
    assert worker.proc.stdout is not None and worker.proc.stdout.read() == b""


def test_unknown_and_over_long_commands_are_ignored(
    state: Path, workers: Callable[[str], Worker]
) -> None:
    worker = workers("worker")
    worker.wait_logged("delivery.started")
    worker.send("bogus command")
    worker.send(b"x" * 10000)  # longer than the reader's limit
    worker.send("new")  # no id: nothing to do
    status = worker.status()
    assert status["passes"] == 0
    assert worker.logged("delivery.bad_command") >= 1
    worker.send("stop")
    assert worker.wait() == 0


def test_end_of_input_stops_the_worker_with_0(state: Path, workers: Callable[[str], Worker]) -> None:
    worker = workers("worker")
    worker.wait_logged("delivery.started")
    assert worker.proc.stdin is not None
    worker.proc.stdin.close()  # the server is gone
    assert worker.wait() == 0
    assert worker.logged("delivery.stopped") == 1


def test_sigterm_stops_the_worker_with_0(state: Path, workers: Callable[[str], Worker]) -> None:
    worker = workers("worker")
    worker.wait_logged("delivery.started")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert worker.logged("delivery.stopped") == 1


def test_start_up_recovery_delivers_mail_committed_while_no_worker_ran(
    state: Path, workers: Callable[[str], Worker]
) -> None:
    commit(state)
    worker = workers("worker")
    until(lambda: len(mail_in(inbox(state))) == 1, "the recovered delivery")
    worker.send("stop")
    assert worker.wait() == 0
    assert os.listdir(state / "queue" / "mess") == []


def test_a_second_worker_waits_for_the_lock_until_the_first_exits(
    state: Path, workers: Callable[[str], Worker]
) -> None:
    first = workers("first")
    first.wait_logged("delivery.started")
    second = workers("second")
    second.wait_logged("delivery.waiting")
    qid = commit(state)
    second.send(f"new {qid}")  # buffered in its pipe while it waits
    # The first is alive and answering; the second has not started: nothing
    # delivers the message (the first was never told about it).
    assert first.status()["passes"] == 0
    assert second.logged("delivery.started") == 0
    assert mail_in(inbox(state)) == []
    assert second.proc.poll() is None
    first.send("stop")
    assert first.wait() == 0
    second.wait_logged("delivery.started")
    until(lambda: len(mail_in(inbox(state))) == 1, "delivery by the second worker")
    second.send("stop")
    assert second.wait() == 0
    assert first.logged("delivery.started") == 1 and second.logged("delivery.started") == 1
    assert mail_in(inbox(state)) == [delivered(SENDER, ALICE)]  # exactly once


def test_a_malformed_id_on_the_trigger_line_is_not_scheduled(
    state: Path, workers: Callable[[str], Worker]
) -> None:
    worker = workers("worker")
    worker.wait_logged("delivery.started")
    worker.send("new ../x")
    until(lambda: worker.status()["passes"] >= 1 or worker.logged("delivery.bad_command") > 0,
          "the bad id handled")
    assert worker.status()["scheduled"] == 0
    worker.send("stop")
    assert worker.wait() == 0
