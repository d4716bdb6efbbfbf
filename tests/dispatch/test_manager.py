"""The queue manager on a real event loop: a real MessageProcessor, a small thread pool.

Time is a fake clock the test moves by hand; synchronisation is by polling
what is on disk (or the manager's figures) against a deadline, never by a
fixed sleep. A busy one-thread executor (``Gate``) holds deliveries in
flight when a test needs that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path


from mailyard.dispatch.manager import QueueManager
from mailyard.queue import schedule
from mailyard.queue.store import RecipientState
from tests.dispatch.conftest import BIRTH, CONTENT, SKIP_LOCAL, Site, delivered, mail_in

DEADLINE = 20.0  # seconds; only ever reached when something is broken
ALICE = "alice@example.test"
SENDER = "sender@example.org"
ABSENT_ID = "0" * 24  # well-formed, never in the queue


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Gate:
    """Occupies every thread of an executor until opened (deliveries queue behind it)."""

    def __init__(self, executor: ThreadPoolExecutor, threads: int) -> None:
        self._open = threading.Event()
        self._started = threading.Barrier(threads + 1)
        for _ in range(threads):
            executor.submit(self._hold)
        self._started.wait(timeout=DEADLINE)

    def _hold(self) -> None:
        self._started.wait(timeout=DEADLINE)
        self._open.wait(timeout=DEADLINE)

    def open(self) -> None:
        self._open.set()


async def until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.005)


def count(box: Path) -> int:
    return len(mail_in(box))


@asynccontextmanager
async def running(
    site: Site,
    *,
    concurrency: int = 4,
    threads: int = 4,
    clock: FakeClock | None = None,
    rescan_interval: float = 3600.0,
) -> AsyncIterator[tuple[QueueManager, ThreadPoolExecutor]]:
    """A started manager (recovery done); stopped and drained afterwards."""
    executor = ThreadPoolExecutor(threads, thread_name_prefix="test-deliver")
    manager = QueueManager(
        site.processor(), executor, concurrency=concurrency,
        rescan_interval=rescan_interval, clock=clock or FakeClock(BIRTH + 5.0),
    )
    task = asyncio.create_task(manager.run())
    try:
        await until(manager.idle.is_set, "the manager's start-up recovery")
        yield manager, executor
    finally:
        await manager.stop(timeout=DEADLINE)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        executor.shutdown(wait=True)


def test_notify_delivers_promptly(site: Site) -> None:
    box = site.maildir(ALICE)

    async def scenario() -> None:
        async with running(site) as (manager, _):
            qid = site.enqueue([ALICE])
            manager.notify(qid)
            await until(lambda: count(box) == 1 and not site.queue.list_ids(), "delivery")
            await until(manager.idle.is_set, "idle")
            stats = manager.stats()
            assert (stats.in_flight, stats.scheduled, stats.delivered_passes) == (0, 0, 1)

    asyncio.run(scenario())
    assert mail_in(box) == [delivered(SENDER, ALICE)]


def test_idle_is_not_set_while_a_notified_message_waits(site: Site) -> None:
    box = site.maildir(ALICE)

    async def scenario() -> None:
        async with running(site) as (manager, _):
            manager.notify(site.enqueue([ALICE]))
            await asyncio.wait_for(manager.idle.wait(), DEADLINE)
            assert count(box) == 1, "idle while a notified message was not delivered"

    asyncio.run(scenario())


def test_recovery_at_start_delivers_what_was_committed_before(site: Site) -> None:
    before = [site.enqueue([ALICE], CONTENT + b"n=%d\r\n" % n) for n in range(3)]
    held = site.enqueue(["carol@example.net"])
    box = site.maildir(ALICE)

    async def scenario() -> None:
        async with running(site) as (manager, _):
            await until(lambda: site.queue.list_ids() == [held], "recovered deliveries")
            await until(lambda: manager.stats().delivered_passes == 4, "four passes")
            # Held remote mail waits for a rescan or a flush, not on the retry heap.
            assert manager.stats().scheduled == 0

    asyncio.run(scenario())
    assert len(before) == 3
    assert sorted(mail_in(box)) == sorted(
        delivered(SENDER, ALICE, CONTENT + b"n=%d\r\n" % n) for n in range(3)
    )
    assert [s.state for s in site.queue.load(held).statuses] == [RecipientState.PENDING]


def test_temporary_failure_is_scheduled_and_flush_makes_it_due(site: Site) -> None:
    box = site.maildir(ALICE)
    new = box / "new"

    async def scenario() -> None:
        async with running(site) as (manager, _):
            new.rmdir()
            new.write_bytes(b"")  # a file where new/ should be: delivery fails for now
            qid = site.enqueue([ALICE])
            manager.notify(qid)
            await until(lambda: manager.stats().scheduled == 1, "a scheduled retry")
            assert manager.stats().in_flight == 0
            (status,) = site.queue.load(qid).statuses
            assert (status.state, status.attempts) == (RecipientState.PENDING, 1)
            new.unlink()
            new.mkdir()
            manager.flush()
            await until(lambda: not site.queue.list_ids(), "delivery after the flush")
            await until(lambda: manager.stats().delivered_passes == 2, "the pass counted")
            assert manager.stats().scheduled == 0

    asyncio.run(scenario())
    assert mail_in(box) == [delivered(SENDER, ALICE)]


def test_a_flush_during_a_pass_applies_to_that_message(site: Site) -> None:
    new = site.maildir(ALICE) / "new"

    async def scenario() -> None:
        async with running(site, concurrency=1, threads=1) as (manager, executor):
            new.rmdir()
            new.write_bytes(b"")  # every pass fails until the test ends
            gate = Gate(executor, 1)
            manager.notify(site.enqueue([ALICE]))
            await until(lambda: manager.stats().in_flight == 1, "a pass in flight")
            manager.flush()
            gate.open()

            def settled() -> bool:
                stats = manager.stats()
                return stats.in_flight == 0 and stats.scheduled == 1

            await until(settled, "the failed pass scheduled")
            # The flush came after the pass began: it must run once more now.
            assert manager.stats().delivered_passes == 2

    asyncio.run(scenario())


def test_a_retry_runs_once_the_clock_reaches_it(site: Site) -> None:
    box = site.maildir(ALICE)
    new = box / "new"
    clock = FakeClock(BIRTH + 5.0)
    due = schedule.next_attempt(BIRTH, clock.now, SKIP_LOCAL)

    async def scenario() -> None:
        async with running(site, clock=clock) as (manager, _):
            new.rmdir()
            new.write_bytes(b"")
            qid = site.enqueue([ALICE])
            manager.notify(qid)
            await until(lambda: manager.stats().scheduled == 1, "a scheduled retry")
            new.unlink()
            new.mkdir()
            clock.now = due
            # Anything that wakes the loop lets it see the retry is due.
            manager.notify(ABSENT_ID)
            await until(lambda: not site.queue.list_ids(), "the retry")
            assert manager.stats().scheduled == 0

    asyncio.run(scenario())
    assert count(box) == 1


def test_rescan_finds_mail_injected_without_a_notification(site: Site) -> None:
    clock = FakeClock(BIRTH + 5.0)
    box = site.maildir(ALICE)

    async def scenario() -> None:
        async with running(site, clock=clock, rescan_interval=60.0) as (manager, _):
            site.enqueue([ALICE])  # another process committed it; nobody told us
            clock.now += 61.0
            manager.notify(ABSENT_ID)  # wake the loop; the rescan is now due
            await until(lambda: count(box) == 1 and not site.queue.list_ids(), "rescan")

    asyncio.run(scenario())


def test_stop_waits_for_deliveries_in_flight(site: Site) -> None:
    box = site.maildir(ALICE)

    async def scenario() -> None:
        async with running(site, concurrency=1, threads=1) as (manager, executor):
            gate = Gate(executor, 1)
            manager.notify(site.enqueue([ALICE]))
            await until(lambda: manager.stats().in_flight == 1, "a delivery in flight")
            stopping = asyncio.create_task(manager.stop(timeout=DEADLINE))
            for _ in range(20):
                await asyncio.sleep(0)
            assert not stopping.done()  # the delivery cannot have run: the pool is busy
            gate.open()
            await stopping
            # stop() returned: the delivery it waited for is on disk and checkpointed.
            assert count(box) == 1
            assert site.queue.list_ids() == []

    asyncio.run(scenario())


def test_stop_does_not_start_deliveries_waiting_for_a_slot(site: Site) -> None:
    box = site.maildir(ALICE)

    async def scenario() -> None:
        async with running(site, concurrency=1, threads=1) as (manager, executor):
            gate = Gate(executor, 1)
            first = site.enqueue([ALICE], CONTENT + b"first\r\n")
            second = site.enqueue([ALICE], CONTENT + b"second\r\n")
            manager.notify(first)
            manager.notify(second)
            await until(lambda: manager.stats().in_flight == 2, "two tasks started")
            stopping = asyncio.create_task(manager.stop(timeout=DEADLINE))
            await asyncio.sleep(0)
            gate.open()
            await stopping
            assert mail_in(box) == [delivered(SENDER, ALICE, CONTENT + b"first\r\n")]
            # The second never had a slot: it stays queued for the next start.
            assert site.queue.list_ids() == [second]

    asyncio.run(scenario())


def test_notification_during_a_pass_runs_one_more_pass_not_a_second_copy(site: Site) -> None:
    box = site.maildir(ALICE)

    async def scenario() -> None:
        async with running(site, concurrency=1, threads=1) as (manager, executor):
            gate = Gate(executor, 1)
            qid = site.enqueue([ALICE])
            manager.notify(qid)
            await until(lambda: manager.stats().in_flight == 1, "a pass in flight")
            manager.notify(qid)
            await asyncio.sleep(0)
            gate.open()
            await until(lambda: manager.stats().delivered_passes == 2, "the second pass")
            await until(lambda: manager.stats().in_flight == 0, "nothing in flight")

    asyncio.run(scenario())
    assert mail_in(box) == [delivered(SENDER, ALICE)]


def test_burst_of_200_with_concurrency_4_delivers_each_exactly_once(site: Site) -> None:
    box = site.maildir(ALICE)
    total = 200

    async def scenario() -> None:
        async with running(site, concurrency=4, threads=4) as (manager, _):
            ids = [site.enqueue([ALICE], CONTENT + b"n=%d\r\n" % n) for n in range(total)]
            for qid in ids:
                manager.notify(qid)
            await until(lambda: count(box) >= total and not site.queue.list_ids(), "200 copies")
            await until(lambda: manager.stats().in_flight == 0, "nothing in flight")
            assert manager.stats().delivered_passes == total

    asyncio.run(scenario())
    prefix = delivered(SENDER, ALICE)
    seen = sorted(int(m[len(prefix):].removeprefix(b"n=").rstrip(b"\r\n")) for m in mail_in(box))
    assert seen == list(range(total))
    assert mail_in(box, "tmp") == []


def test_an_absent_id_is_one_finished_pass(site: Site) -> None:
    async def scenario() -> None:
        async with running(site) as (manager, _):
            manager.notify(ABSENT_ID)
            await until(lambda: manager.stats().delivered_passes == 1, "one pass")
            await until(lambda: manager.stats().in_flight == 0, "nothing in flight")
            assert manager.stats().scheduled == 0

    asyncio.run(scenario())


def test_a_malformed_id_is_not_retried_forever(site: Site) -> None:
    async def scenario() -> None:
        async with running(site) as (manager, _):
            manager.notify("../x")
            await until(lambda: manager.stats().delivered_passes == 1, "one pass")
            await until(lambda: manager.stats().in_flight == 0, "nothing in flight")
            assert manager.stats().scheduled == 0

    asyncio.run(scenario())
