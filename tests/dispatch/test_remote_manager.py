"""Remote delivery under the queue manager: retries on the remote schedule
driven by the manager's fake clock, held mail and the flush that releases
it, delay warnings, bounces that cannot loop, and the real lspawn children.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from mailyard.dispatch.channel import DeliveryPasses
from mailyard.dispatch.lspawn import LocalDeliveryPool
from mailyard.dispatch.manager import QueueManager
from mailyard.dispatch.process import DELAY_WARNED, HELD_REMOTE
from mailyard.proto.smtp import Reply
from mailyard.queue import schedule
from mailyard.queue.store import RecipientState
from tests.dispatch.conftest import BIRTH, Site, delivery_status, mail_in, parse_mail
from tests.dispatch.remote_helpers import NOW, Remote, closed_port, remote_site
from tests.dispatch.sink import Sink

ALICE = "alice@example.test"
CAROL = "carol@remote.test"
DEADLINE = 20.0
ABSENT_ID = "0" * 24


async def until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.005)


@asynccontextmanager
async def managed(remote: Remote, passes: DeliveryPasses | None = None,
                  ) -> AsyncIterator[QueueManager]:
    manager = QueueManager(remote.processor, remote.executor, concurrency=50,
                           rescan_interval=3600.0, clock=remote.clock,
                           run_pass=(passes or remote.passes).run)
    task = asyncio.create_task(manager.run())
    try:
        await until(manager.idle.is_set, "start-up recovery")
        yield manager
    finally:
        await manager.stop(timeout=DEADLINE)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def body(site: Site, qid: str) -> bytes:
    with site.queue.open_body(qid) as file:
        return file.read()


def test_a_4xx_is_retried_when_the_fake_clock_reaches_the_remote_schedule(site: Site) -> None:
    async def scenario() -> None:
        sink = await Sink().start()
        sink.rcpt[CAROL] = [Reply(451, "4.7.1", "greylisted"), Reply(250, "2.1.5", "ok")]
        try:
            routes = {"remote.test": f"127.0.0.1:{sink.port}"}
            async with remote_site(site, {"routes": routes}) as remote, \
                    managed(remote) as manager:
                qid = site.enqueue([CAROL])
                manager.notify(qid)
                await until(lambda: manager.stats().scheduled == 1, "the deferral")
                (status,) = site.queue.load(qid).statuses
                assert status.state is RecipientState.PENDING
                assert "451 4.7.1 greylisted" in (status.last_error or "")
                due = schedule.next_attempt(BIRTH, NOW, 20)  # chanskip 20: remote
                remote.clock.now = due - 1
                manager.notify(ABSENT_ID)  # wake the loop: not due yet
                await until(lambda: manager.stats().delivered_passes == 2, "the wake-up")
                assert len(sink.connections) == 1
                remote.clock.now = due
                manager.notify(ABSENT_ID)
                await until(lambda: not site.queue.list_ids(), "the retry")
        finally:
            await sink.stop()
        assert len(sink.connections) == 2 and sink.delivered_to() == [CAROL]

    asyncio.run(scenario())


def test_held_mail_stays_queued_until_delivery_is_enabled_and_flushed(site: Site) -> None:
    async def scenario() -> None:
        sink = await Sink().start()
        try:
            routes = {"remote.test": f"127.0.0.1:{sink.port}"}
            async with remote_site(site, {"routes": routes}) as remote:
                remote.processor.remote_mode = "hold"
                async with managed(remote) as manager:
                    qid = site.enqueue([CAROL])
                    manager.notify(qid)
                    await until(lambda: manager.stats().delivered_passes == 1, "the pass")
                    (status,) = site.queue.load(qid).statuses
                    assert (status.state, status.last_error) == (RecipientState.PENDING,
                                                                 HELD_REMOTE)
                    assert manager.stats().scheduled == 0 and sink.connections == []
                    # The operator sets remote = "deliver" and runs `mailyard queue flush`.
                    remote.processor.remote_mode = "deliver"
                    remote.passes.flush()
                    manager.flush()
                    await until(lambda: not site.queue.list_ids(), "the flushed delivery")
        finally:
            await sink.stop()
        assert sink.delivered_to() == [CAROL]

    asyncio.run(scenario())


def test_a_delay_warning_goes_once_to_the_sender(site: Site) -> None:
    async def scenario() -> None:
        port = closed_port()
        table = {"routes": {"remote.test": f"127.0.0.1:{port}"}}
        async with remote_site(site, table, {"delay_warning": 3600.0}) as remote:
            qid = site.enqueue([CAROL], sender=ALICE)
            early = await remote.run(qid)
            assert early.injected == ()  # younger than an hour: no warning yet
            remote.clock.now = BIRTH + 4000
            remote.channel.flush()
            late = await remote.run(qid)
            (warning,) = late.injected
            assert site.queue.load(warning).envelope.extra == (("kind", "delay-warning"),)
            await remote.run(warning)  # local delivery to alice
            remote.clock.now = BIRTH + 9000
            remote.channel.flush()
            again = await remote.run(qid)
            assert again.injected == () and not again.finished
            (status,) = site.queue.load(qid).statuses
            assert (status.last_error or "").endswith(DELAY_WARNED)
        (report,) = mail_in(site.maildir(ALICE))
        message = parse_mail(report.split(b"\r\n", 2)[2])
        assert message["Subject"] == "Delayed Mail (still being retried)"
        per_message, delayed = delivery_status(message)
        assert per_message["reporting-mta"] == "dns; mx.example.test"
        assert delayed["action"] == "delayed" and delayed["status"] == "4.4.1"
        assert delayed["final-recipient"] == f"rfc822; {CAROL}"
        assert "will-retry-until" in delayed
        assert report.startswith(b"Return-Path: <>\r\n")

    asyncio.run(scenario())


def test_bounces_never_loop_double_bounce_to_postmaster_then_dropped(site: Site) -> None:
    far, them = "s@far.test", "x@far.test"

    async def scenario() -> None:
        sink = await Sink().start()
        sink.rcpt[them] = [Reply(550, "5.1.1", "no such user")]
        sink.rcpt[far] = [Reply(550, "5.1.1", "no such sender either")]
        routes = {"far.test": f"127.0.0.1:{sink.port}"}
        try:
            # The postmaster is local: the double bounce arrives in its Maildir.
            async with remote_site(site, {"routes": routes}, postmaster=ALICE) as remote:
                done = await remote.drain(site.enqueue([them], sender=far))
                assert len(done) == 3  # the message, its bounce, the double bounce
            # The postmaster is remote too and refuses: the double bounce is dropped.
            sink.rcpt["pm@far.test"] = [Reply(550, "5.1.1", "no postmaster")]
            async with remote_site(site, {"routes": routes},
                                   postmaster="pm@far.test") as remote:
                done = await remote.drain(site.enqueue([them], sender=far))
                assert len(done) == 3
        finally:
            await sink.stop()
        assert site.queue.list_ids() == [] and sink.transactions == []
        (double,) = mail_in(site.maildir(ALICE))
        message = parse_mail(double.split(b"\r\n", 2)[2])
        assert message["Subject"].startswith("Postmaster notice")
        _, failed = delivery_status(message)
        assert failed["final-recipient"] == f"rfc822; {far}"
        assert failed["diagnostic-code"] == "smtp; 550 5.1.1 no such sender either"

    asyncio.run(scenario())


def test_lspawn_children_hand_remote_recipients_to_the_worker_loop(site: Site) -> None:
    async def scenario() -> None:
        sink = await Sink().start()
        pool = LocalDeliveryPool(str(site.root), 2, remote_mode="deliver")
        await pool.start()
        try:
            routes = {"remote.test": f"127.0.0.1:{sink.port}"}
            async with remote_site(site, {"routes": routes}) as remote:
                passes = DeliveryPasses(pool.run_pass, remote.channel)
                async with managed(remote, passes) as manager:
                    for n in range(10):
                        manager.notify(site.enqueue([CAROL, ALICE], b"Subject: %d\r\n\r\n" % n))
                    await until(lambda: not site.queue.list_ids(), "ten deliveries")
        finally:
            await pool.stop()
            await sink.stop()
        assert sorted(t.data for t in sink.transactions) == sorted(
            b"Subject: %d\r\n\r\n" % n for n in range(10))
        assert len(mail_in(site.maildir(ALICE))) == 10

    asyncio.run(scenario())


def test_a_stopping_pool_starts_no_new_pass(site: Site) -> None:
    async def scenario() -> None:
        pool = LocalDeliveryPool(str(site.root), 1)
        await pool.start()
        try:
            pool.stopping = True
            qid = site.enqueue([ALICE])
            verdict = await pool.run_pass(qid, NOW)
            assert not verdict.finished and verdict.next_attempt is None
            assert site.queue.list_ids() == [qid]
        finally:
            await pool.stop()

    asyncio.run(scenario())


