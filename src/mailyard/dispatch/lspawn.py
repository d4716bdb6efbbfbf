"""Local deliveries in single-threaded child processes (qmail-lspawn's role).

A local delivery is a handful of blocking file-system calls (create, write,
fsync, rename, directory fsync) with a little Python between them. Run in
many threads of one interpreter, those threads spend more time handing the
GIL to each other than delivering: measured with bench/smtp_ingest.py and
strace, a 16-thread delivery pool made hundreds of futex calls per message.
So each delivery runs in one of a few child processes, one message at a
time and without threads; the fsyncs of different children still overlap in
the disk.

The protocol is one ASCII line each way over the child's stdin and stdout
(``python -m mailyard.dispatch.lspawn --state DIR``):

* the manager sends ``<queue id> <now>``;
* the child answers ``<finished 0|1> <next attempt or -> <remote> <injected id>...``,
  where ``<remote>`` lists the recipient indices handed to the remote
  channel (``0,2``) or is ``-``.

The worker tells the children whether remote delivery is on
(``--remote-mode``), so both sides of a pass agree on it whatever the
configuration file says meanwhile.

The manager side (``LocalDeliveryPool``) lives on the worker's event loop
and needs no threads either. A child that dies is replaced; the message it
was delivering is tried again later, like any temporary failure (delivery is
at least once: it may have been delivered before the child died).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import signal
import sys
import time
from typing import Final

from mailyard import fsio
from mailyard.config import load_config
from mailyard.directory.store import Directory
from mailyard.dispatch.process import MessageProcessor, Verdict
from mailyard.dispatch.settings import RemoteMode, settings_from_config
from mailyard.log import event
from mailyard.observe.recorder import setup_process
from mailyard.queue.ids import is_id
from mailyard.queue.store import Queue

__all__ = ["LocalDeliveryPool", "decode_verdict", "encode_verdict", "main"]

CHILD_LOST_RETRY: Final = 60.0  # seconds before a message retries after its child died
_STOP_TIMEOUT: Final = 30.0


def encode_verdict(verdict: Verdict) -> str:
    due = "-" if verdict.next_attempt is None else repr(verdict.next_attempt)
    remote = ",".join(str(i) for i in verdict.remote) or "-"
    return " ".join([str(int(verdict.finished)), due, remote, *verdict.injected])


def _indices(text: str) -> tuple[int, ...]:
    if text == "-":
        return ()
    parts = text.split(",")
    if not all(p.isascii() and p.isdigit() and len(p) <= 9 for p in parts):
        raise ValueError("bad recipient list in delivery answer")
    return tuple(int(p) for p in parts)


def decode_verdict(line: str) -> Verdict:
    """Parse a child's answer; ValueError if it is not one."""
    parts = line.split()
    if len(parts) < 3 or parts[0] not in {"0", "1"}:
        raise ValueError(f"bad delivery answer {line[:80]!r}")
    injected = tuple(parts[3:])
    if not all(is_id(qid) for qid in injected):
        raise ValueError("bad queue id in delivery answer")
    due = None if parts[1] == "-" else float(parts[1])
    return Verdict(finished=parts[0] == "1", next_attempt=due, injected=injected,
                   remote=_indices(parts[2]))


class _Child:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def run(self, qid: str, now: float) -> Verdict:
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(f"{qid} {now!r}\n".encode("ascii"))
        await proc.stdin.drain()
        line = await proc.stdout.readline()
        if not line:
            raise ConnectionError("delivery process ended")
        return decode_verdict(line.decode("ascii"))


class LocalDeliveryPool:
    """``processes`` children; ``run_pass`` gives a job to an idle one."""

    def __init__(self, state_dir: str, processes: int, remote_mode: str = "hold") -> None:
        self._state_dir = state_dir
        self._processes = processes
        self._remote_mode = remote_mode
        self._idle: asyncio.Queue[_Child] = asyncio.Queue()
        self._children: list[_Child] = []
        self.stopping = False

    async def start(self) -> None:
        for _ in range(self._processes):
            await self._add_child()

    async def _add_child(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mailyard.dispatch.lspawn", "--state", self._state_dir,
            "--remote-mode", self._remote_mode,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        child = _Child(proc)
        self._children.append(child)
        self._idle.put_nowait(child)

    async def run_pass(self, qid: str, now: float) -> Verdict:
        child = await self._idle.get()
        if self.stopping:
            # Passes queue up for a child; once stopping, none starts (the
            # next start's recovery finds the message).
            self._idle.put_nowait(child)
            return Verdict(finished=False)
        try:
            verdict = await child.run(qid, now)
        except (ConnectionError, ValueError) as exc:
            event("delivery.child_lost", level=logging.ERROR, id=qid, pid=child.proc.pid,
                  error=str(exc))
            await self._replace(child)
            return Verdict(finished=False, next_attempt=now + CHILD_LOST_RETRY)
        self._idle.put_nowait(child)
        return verdict

    async def _replace(self, child: _Child) -> None:
        self._children.remove(child)
        with contextlib.suppress(ProcessLookupError):
            child.proc.kill()
        await child.proc.wait()
        await self._add_child()

    async def stop(self) -> None:
        """Called once no pass is running: close the children's input, wait."""
        for child in self._children:
            if child.proc.stdin is not None:
                child.proc.stdin.close()
        for child in self._children:
            try:
                async with asyncio.timeout(_STOP_TIMEOUT):
                    await child.proc.wait()
            except TimeoutError:
                child.proc.kill()
                await child.proc.wait()


def _serve(processor: MessageProcessor) -> None:
    """The child's loop: one job per line until end of input."""
    for raw in sys.stdin:
        qid, _, stamp = raw.strip().partition(" ")
        try:
            now = float(stamp)
        except ValueError:
            now = time.time()
        try:
            verdict = processor.process(qid, now)
        except Exception:
            # A malformed id, an unreadable queue, or a bug: log it with its
            # stack, keep the message for later, and go on serving.
            event("delivery.pass_error", level=logging.ERROR, exc_info=True, id=qid[:40])
            verdict = Verdict(finished=False, next_attempt=now + CHILD_LOST_RETRY)
        sys.stdout.write(encode_verdict(verdict) + "\n")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mailyard.dispatch.lspawn")
    parser.add_argument("--state", required=True)
    parser.add_argument("--remote-mode", choices=[m.value for m in RemoteMode], default=None)
    args = parser.parse_args(argv)
    # Ctrl-C reaches the whole process group; the worker orders the stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGHUP is the server's "reload certificates"; sent to the whole group
    # (a closed terminal) it must not kill the delivery side.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    config = load_config(args.state)
    setup_process(config, "lspawn")  # logs as [log] says; metrics (observe/recorder.py)
    syncer = fsio.DirSyncer()
    directory = Directory.open(config.path("directory.sqlite"))
    queue = Queue(config.path("queue"), syncer=syncer)
    remote = settings_from_config(config)
    if args.remote_mode is not None:
        remote = dataclasses.replace(remote, mode=RemoteMode(args.remote_mode))
    try:
        _serve(MessageProcessor.from_config(config, directory, queue, syncer, remote))
    except BrokenPipeError:
        return 0  # the worker is gone
    finally:
        directory.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
