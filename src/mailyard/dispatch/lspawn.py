"""Local deliveries in single-threaded child processes (qmail-lspawn's role).

A local delivery is a handful of blocking file-system calls (create, write,
fsync, rename, directory fsync) with a little Python between them. Run in
many threads of one interpreter, those threads spend more time handing the
GIL to each other than delivering: measured with bench/smtp_ingest.py and
strace, a 16-thread delivery pool made hundreds of futex calls per message.
So each delivery runs in one of a few child processes, one message at a
time and without threads; the fsyncs of different children still overlap in
the disk.

The children are forks, not new interpreters: a delivery worker that has
dropped to the mail user may not be able to run the interpreter at all
(it can live under a folder only root may enter), and nothing needs
reloading. They are forked by a small process of their own, the
"zygote", itself forked from the worker before it opened the directory
database or started any thread, so every child starts clean (no SQLite
state or lock carried over a fork, no thread's lock held). The zygote
hands each new child's socket back over its own (SCM_RIGHTS) and lets the
kernel reap its children. ``python -m mailyard.dispatch.lspawn --state DIR``
still runs one child on its stdin and stdout, by hand.

The protocol is one ASCII line each way over the child's socket:

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
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Iterable
from typing import BinaryIO, Final, TextIO

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
_LINE_LIMIT: Final = 64 * 1024


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


class _Zygote:
    """The process that forks the children (module doc); blocking, and quick."""

    def __init__(self, state_dir: str, remote_mode: str) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            ours.close()
            code = 1
            try:
                _zygote_loop(theirs, state_dir, remote_mode)
                code = 0
            except BaseException:
                # os._exit below prints nothing: say why here, once.
                traceback.print_exc()
            finally:
                os._exit(code)
        theirs.close()
        self.pid = pid
        self._sock = ours

    def spawn(self) -> tuple[int, socket.socket]:
        """A new child: its pid and the worker's end of its socket."""
        self._sock.sendall(b"s")
        message, fds, _, _ = socket.recv_fds(self._sock, 32, 1)
        if len(fds) != 1 or not message.isdigit():
            for fd in fds:
                os.close(fd)
            raise ConnectionError("the delivery zygote is gone")
        return int(message), socket.socket(fileno=fds[0])

    def close(self) -> None:
        """End the zygote (its children end when their sockets close)."""
        self._sock.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _zygote_loop(sock: socket.socket, state_dir: str, remote_mode: str) -> None:
    with contextlib.suppress(ValueError):  # forked from another thread (tests)
        signal.set_wakeup_fd(-1)  # the worker's loop must not hear our signals
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Ctrl-C and a closed terminal reach the whole group; the worker orders the stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # The kernel reaps the children: the worker watches their sockets instead.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    while sock.recv(1):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                sock.close()
                ours.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                code = _child_main(state_dir, remote_mode, theirs)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        theirs.close()
        socket.send_fds(sock, [str(pid).encode("ascii")], [ours.fileno()])
        ours.close()


class _Child:
    def __init__(self, pid: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.pid = pid
        self._reader = reader
        self.writer = writer

    async def run(self, qid: str, now: float) -> Verdict:
        self.writer.write(f"{qid} {now!r}\n".encode("ascii"))
        await self.writer.drain()
        line = await self._reader.readline()
        if not line:
            raise ConnectionError("delivery process ended")
        return decode_verdict(line.decode("ascii"))

    async def wait_closed(self) -> None:
        """Until the child has ended (its end of the socket closes with it)."""
        with contextlib.suppress(ConnectionError):
            while await self._reader.read(_LINE_LIMIT):
                continue


class LocalDeliveryPool:
    """``processes`` children; ``run_pass`` gives a job to an idle one."""

    def __init__(self, state_dir: str, processes: int, remote_mode: str = "hold") -> None:
        self._state_dir = state_dir
        self._processes = processes
        self._remote_mode = remote_mode
        self._idle: asyncio.Queue[_Child] = asyncio.Queue()
        self._children: list[_Child] = []
        self._zygote: _Zygote | None = None
        self.stopping = False

    def prepare(self) -> None:
        """Fork the zygote now: call before opening databases or starting threads."""
        if self._zygote is None:
            self._zygote = _Zygote(self._state_dir, self._remote_mode)

    async def start(self) -> None:
        self.prepare()
        for _ in range(self._processes):
            await self._add_child()

    async def _add_child(self) -> None:
        zygote = self._zygote
        assert zygote is not None, "start() first"
        loop = asyncio.get_running_loop()
        pid, sock = await loop.run_in_executor(None, zygote.spawn)
        reader, writer = await asyncio.open_connection(sock=sock, limit=_LINE_LIMIT)
        child = _Child(pid, reader, writer)
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
            event("delivery.child_lost", level=logging.ERROR, id=qid, pid=child.pid,
                  error=str(exc))
            await self._replace(child)
            return Verdict(finished=False, next_attempt=now + CHILD_LOST_RETRY)
        self._idle.put_nowait(child)
        return verdict

    async def _replace(self, child: _Child) -> None:
        self._children.remove(child)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)
        child.writer.close()
        await child.wait_closed()
        await self._add_child()

    async def stop(self) -> None:
        """Called once no pass is running: close the children's input, wait."""
        for child in self._children:
            child.writer.write_eof()
        for child in self._children:
            try:
                async with asyncio.timeout(_STOP_TIMEOUT):
                    await child.wait_closed()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
            child.writer.close()
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None


def _child_main(state_dir: str, remote_mode: str, sock: socket.socket) -> int:
    """A forked child: serve on ``sock`` until the worker closes it."""
    # Binary files, decoded by hand: a text wrapper looks its codec up, an
    # import the dropped child may not be allowed to read from disk.
    with sock, sock.makefile("rb") as raw_in, sock.makefile("wb") as raw_out:
        lines = (raw.decode("ascii", "replace") for raw in raw_in)
        return _run(state_dir, remote_mode, lines, _AsciiOut(raw_out))


class _AsciiOut:
    """The few TextIO calls ``_serve`` makes, on a binary file."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw

    def write(self, text: str) -> None:
        self._raw.write(text.encode("ascii"))

    def flush(self) -> None:
        self._raw.flush()


def _run(state_dir: str, remote_mode: str | None, lines: Iterable[str],
         out: TextIO | _AsciiOut) -> int:
    config = load_config(state_dir)
    setup_process(config, "lspawn")  # logs as [log] says; metrics (observe/recorder.py)
    syncer = fsio.DirSyncer()
    directory = Directory.open(config.path("directory.sqlite"))
    queue = Queue(config.path("queue"), syncer=syncer)
    remote = settings_from_config(config)
    if remote_mode is not None:
        remote = dataclasses.replace(remote, mode=RemoteMode(remote_mode))
    try:
        _serve(MessageProcessor.from_config(config, directory, queue, syncer, remote),
               lines, out)
    except (BrokenPipeError, ConnectionError):
        return 0  # the worker is gone
    finally:
        directory.close()
    return 0


def _serve(processor: MessageProcessor, lines: Iterable[str], out: TextIO | _AsciiOut) -> None:
    """The child's loop: one job per line until end of input."""
    for raw in lines:
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
        out.write(encode_verdict(verdict) + "\n")
        out.flush()


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
    return _run(args.state, args.remote_mode, sys.stdin, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
