"""Remote delivery benchmark: N queued messages to a loopback sink SMTP
server through a static route, C concurrent SMTP sessions. Prints
messages/s, the time until the queue is empty, and the CPU seconds of the
delivery side (this process and its lspawn children).

    .venv/bin/python bench/remote.py                  # 10,000 messages, 20 sessions
    .venv/bin/python bench/remote.py -n 2000 -c 5 -s 20000

The messages are committed to the queue first; the clock starts when the
delivery worker's pieces (wired as dispatch/worker.py wires them) start, so
the figure is delivery alone. The sink is our own SMTP server core in a
process of its own, on 127.0.0.1; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


# -- the sink (runs in its own process) ---------------------------------------------


async def _sink_session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        counter: list[int]) -> None:
    from mailyard.proto.smtp import (
        CLOSED, NEED_DATA, DataEnd, DataStart, Features, Hello, MailFrom, RcptTo, Reply,
        SmtpServer, SmtpServerConfig, StartTls,
    )

    core = SmtpServer(SmtpServerConfig("sink.bench.test", features=Features(chunking=False)))
    core.greeting()
    ok = Reply(250, "2.0.0", "ok")
    try:
        while True:
            event = core.next_event()
            if event is NEED_DATA:
                writer.write(core.data_to_send())
                data = await reader.read(65536)
                core.receive_data(data)
                continue
            if event is CLOSED:
                writer.write(core.data_to_send())
                break
            if isinstance(event, Hello):
                core.send(Reply(250, None, "sink.bench.test"))
            elif isinstance(event, DataStart):
                core.send(Reply(354, None, "go") if not event.bdat else ok)
            elif isinstance(event, DataEnd):
                counter[0] += 1
                core.send(ok)
            elif isinstance(event, MailFrom | RcptTo):
                core.send(ok)
            elif isinstance(event, StartTls):
                core.send(Reply(454, "4.7.0", "no TLS here"))
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _sink_main() -> None:
    counter = [0]
    server = await asyncio.start_server(
        lambda r, w: _sink_session(r, w, counter), "127.0.0.1", 0, backlog=512)
    print(server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the bench closes our stdin
    server.close()
    print(counter[0], flush=True)


# -- the delivery side -----------------------------------------------------------------


def _fill_queue(state: Path, count: int, size: int) -> None:
    from mailyard import fsio
    from mailyard.queue.store import Envelope, Queue

    queue = Queue(str(state / "queue"), syncer=fsio.DirSyncer())
    queue.ensure_layout()
    line = b"x" * 70 + b"\r\n"
    body = line * max(1, size // len(line))
    for n in range(count):
        content = (f"From: bench@example.org\r\nTo: rcpt{n}@remote.bench.test\r\n"
                   f"Subject: message {n}\r\nMessage-ID: <{n}@bench>\r\n\r\n").encode()
        writer = queue.begin(Envelope("bench@example.org", (f"rcpt{n}@remote.bench.test",),
                                      time.time()))
        writer.write(content + body)
        writer.commit()


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def _deliver(state: Path, port: int, concurrency: int, count: int) -> tuple[float, int]:
    from mailyard.config import load_config
    from mailyard.dispatch.settings import build_settings
    from mailyard.dispatch.worker import DeliveryWorker

    config = load_config(str(state))
    settings = build_settings({"remote": "deliver", "remote_concurrency": concurrency,
                               "per_destination": concurrency,
                               "routes": {"": f"127.0.0.1:{port}"}})
    worker = DeliveryWorker(config, settings)
    queue = worker.queue
    started = time.perf_counter()
    await worker.local.start()
    manager = asyncio.create_task(worker.manager.run())
    peak = 0
    while queue.list_ids():
        await asyncio.sleep(0.2)
        peak = max(peak, worker.manager.stats().in_flight)
    elapsed = time.perf_counter() - started
    worker.local.stopping = True
    worker.passes.stop()
    await worker.manager.stop(timeout=30)
    manager.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await manager
    await worker.local.stop()
    worker.pool.shutdown(wait=True)
    worker.directory.close()
    return elapsed, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--messages", type=int, default=10000)
    parser.add_argument("-c", "--concurrency", type=int, default=20)
    parser.add_argument("-s", "--size", type=int, default=4096, help="message size, octets")
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        asyncio.run(_sink_main())
        return 0
    sink = subprocess.Popen([sys.executable, __file__, "--sink"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None and sink.stdin is not None
    port = int(sink.stdout.readline())
    with tempfile.TemporaryDirectory(prefix="mailyard-bench-remote-") as tmp:
        state = Path(tmp)
        print(f"queueing {args.messages} messages of {args.size} octets ...", flush=True)
        _fill_queue(state, args.messages, args.size)
        cpu_before = _cpu()
        elapsed, peak = asyncio.run(_deliver(state, port, args.concurrency, args.messages))
        cpu = _cpu() - cpu_before
        left = len(os.listdir(state / "queue" / "mess"))
    sink.stdin.close()
    received = int(sink.stdout.readline())
    sink.wait(timeout=30)
    print(f"remote delivery: {args.messages} messages, {args.concurrency} concurrent "
          f"sessions, static route to 127.0.0.1:{port}")
    print(f"  queue empty after {elapsed:.2f} s: {args.messages / elapsed:.0f} messages/s")
    print(f"  sink received {received}, left in queue {left}, passes in flight at most {peak}")
    print(f"  delivery CPU {cpu:.2f} s ({cpu / args.messages * 1e3:.2f} ms per message)")
    return 0 if received >= args.messages and left == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
