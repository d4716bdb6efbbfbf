"""The queue manager (qmail-send's loop) on asyncio.

Timing contract, as qmail-send states it: when triggered, respond at once;
when not triggered, do not busy-loop. New mail calls ``notify(qid)``, which
starts its delivery immediately (bounded by ``concurrency``); retries sit in
a heap keyed by due time; a periodic rescan of the queue picks up messages
injected by other processes and is the backstop for a lost wake-up.

The blocking work (file I/O, fsync) happens in ``MessageProcessor.process``
on a thread pool; this loop only decides *when*.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from mailyard.dispatch.process import MessageProcessor, Verdict
from mailyard.log import event

__all__ = ["ManagerStats", "PassRunner", "QueueManager"]

# (queue id, now) -> what to do next with the message; one delivery pass.
PassRunner = Callable[[str, float], Awaitable[Verdict]]


@dataclass(frozen=True, slots=True)
class ManagerStats:
    in_flight: int
    scheduled: int
    delivered_passes: int


class QueueManager:
    def __init__(
        self,
        processor: MessageProcessor,
        executor: Executor,
        *,
        concurrency: int,
        rescan_interval: float,
        debris_age: float = 129600.0,
        clock: Callable[[], float] = time.time,
        run_pass: PassRunner | None = None,
    ) -> None:
        self._processor = processor
        self._executor = executor
        # Where a delivery pass runs: by default processor.process in the
        # executor's threads; the worker passes its pool of delivery processes.
        self._run_pass = run_pass or self._pass_in_executor
        self._slots = asyncio.Semaphore(concurrency)
        self._rescan_interval = rescan_interval
        self._debris_age = debris_age
        self._clock = clock
        self._wake = asyncio.Event()
        # Ids to start now, in order, each once (a dict is an ordered set).
        self._ready: dict[str, None] = {}
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}  # qid -> due time currently in the heap
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()  # notified while running: run once more
        self._stopping = False
        self._rescan_now = False
        self._passes = 0
        self.idle = asyncio.Event()

    # -- public -----------------------------------------------------------------

    def notify(self, qid: str) -> None:
        """New or changed message: deliver it now."""
        if self._stopping:
            return
        self._ready[qid] = None
        self.idle.clear()
        self._wake.set()

    def flush(self) -> None:
        """Retry everything now (`mailyard queue flush`): scheduled messages,
        messages in a pass right now (once more when it ends), and, through
        a rescan, held ones that are on no schedule."""
        for qid in list(self._due):
            self._ready[qid] = None
        self._due.clear()
        self._heap.clear()
        self._again.update(self._running)
        self._rescan_now = True
        self.idle.clear()
        self._wake.set()

    def stats(self) -> ManagerStats:
        return ManagerStats(len(self._running), len(self._due), self._passes)

    async def run(self) -> None:
        """Recover, then loop until ``stop()``."""
        loop = asyncio.get_running_loop()
        pending = await loop.run_in_executor(self._executor, self._recover)
        for qid in pending:
            self._ready[qid] = None
        next_rescan = self._clock() + self._rescan_interval
        while not self._stopping:
            self._start_ready()
            self._start_due()
            now = self._clock()
            if now >= next_rescan or self._rescan_now:
                self._rescan_now = False
                await self._rescan()
                next_rescan = now + self._rescan_interval
                continue
            self._update_idle()
            wait = next_rescan - now
            if self._heap:
                wait = min(wait, max(0.0, self._heap[0][0] - now))
            self._wake.clear()
            if self._ready:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(wait, 0.001))
            except TimeoutError:
                pass

    async def stop(self, timeout: float) -> None:
        """Start nothing new; wait for deliveries in flight (they cannot be interrupted)."""
        self._stopping = True
        self._wake.set()
        tasks = list(self._running.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                event("queue.stop", level=logging.WARNING, abandoned=len(pending))

    # -- internals --------------------------------------------------------------

    def _recover(self) -> list[str]:
        queue = self._processor.queue
        report = queue.recover(self._clock(), self._debris_age)
        return list(report.pending)

    def _start_ready(self) -> None:
        ready, self._ready = self._ready, {}
        for qid in ready:
            self._start(qid)

    def _start_due(self) -> None:
        now = self._clock()
        while self._heap and self._heap[0][0] <= now:
            due, qid = heapq.heappop(self._heap)
            if self._due.get(qid) != due:
                continue  # superseded entry
            del self._due[qid]
            self._start(qid)

    def _start(self, qid: str) -> None:
        if qid in self._running:
            self._again.add(qid)
            return
        self._due.pop(qid, None)
        self.idle.clear()
        task = asyncio.create_task(self._deliver(qid))
        self._running[qid] = task

    async def _pass_in_executor(self, qid: str, now: float) -> Verdict:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._processor.process, qid, now)

    async def _deliver(self, qid: str) -> None:
        verdict: Verdict | None = None
        try:
            async with self._slots:
                if self._stopping:
                    # It waited for a slot and the stop came first: start
                    # nothing new; the next start's recovery finds it.
                    verdict = Verdict(finished=False)
                else:
                    verdict = await self._run_pass(qid, self._clock())
        except Exception:
            # A bug or an unexpected OS error: keep the message, try later.
            event("queue.error", level=logging.ERROR, exc_info=True, id=qid)
            verdict = Verdict(finished=False, next_attempt=self._clock() + 60.0)
        finally:
            self._running.pop(qid, None)
            self._passes += 1
        for new_id in verdict.injected:
            self.notify(new_id)
        if qid in self._again:
            self._again.discard(qid)
            self.notify(qid)
        elif not verdict.finished and verdict.next_attempt is not None:
            self._schedule(qid, verdict.next_attempt)
        self._wake.set()

    def _schedule(self, qid: str, due: float) -> None:
        self._due[qid] = due
        heapq.heappush(self._heap, (due, qid))

    async def _rescan(self) -> None:
        loop = asyncio.get_running_loop()
        ids = await loop.run_in_executor(self._executor, self._scan_queue)
        for qid in ids:
            if qid not in self._running and qid not in self._due:
                self._ready[qid] = None

    def _scan_queue(self) -> list[str]:
        queue = self._processor.queue
        queue.trim_free()  # keeps free/ bounded after a burst
        return queue.list_ids()

    def _update_idle(self) -> None:
        if not self._running and not self._ready:
            self.idle.set()
