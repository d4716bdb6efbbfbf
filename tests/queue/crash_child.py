"""Queue work run in a subprocess by test_crash.py, with MAILYARD_CRASH_AT set.

Each line printed (and flushed) is an acknowledgement: the step before it
returned. ``committed ID`` plays the part of SMTP's 250.
Usage: crash_child.py SCENARIO ROOT [QID]
"""

from __future__ import annotations

import sys
import time

from mailyard import fsio
from mailyard.queue.store import Envelope, Outcome, Queue

__all__ = ["BODY", "ENVELOPE", "RECORDS", "main"]

ENVELOPE = Envelope("s@example.org", ("a@example.test", "b@example.test", "c@example.test"),
                    birth=1733072400.0)
BODY = b"Subject: crash\r\n\r\n" + b"x" * 5000 + b"\r\nend\r\n"
# The batches the "record" scenario appends, in order, then complete().
RECORDS: tuple[tuple[tuple[int, Outcome], ...], ...] = (
    ((0, Outcome("D", "delivered")),),
    ((1, Outcome("T", "4.2.2 mailbox full")),),
    ((1, Outcome("D", "delivered")), (2, Outcome("B", "5.1.1 no such user"))),
)


def say(line: str) -> None:
    print(line, flush=True)


def enqueue(queue: Queue) -> None:
    queue.ensure_layout()
    writer = queue.begin(ENVELOPE)
    say(f"begun {writer.id}")
    writer.write(BODY[:1000])
    writer.write(BODY[1000:])
    say(f"committed {writer.commit()}")


def reuse(queue: Queue) -> None:
    """A message completed, then the next one takes over its file (free/)."""
    queue.ensure_layout()
    first = queue.begin(ENVELOPE)
    first.write(BODY)
    queue.complete(first.commit())
    say(f"completed {first.id}")
    second = queue.begin(ENVELOPE, Queue.new_id())
    say(f"begun {second.id}")
    second.write(BODY)
    say(f"committed {second.commit()}")


def body_first(queue: Queue) -> None:
    """QMTP's order: the body is spooled first, the envelope comes at commit."""
    queue.ensure_layout()
    writer = queue.begin_body_first()
    say(f"begun {writer.id}")
    writer.write(BODY[:1000])
    writer.write(BODY[1000:])
    say(f"committed {writer.commit(ENVELOPE)}")


def abort(queue: Queue) -> None:
    writer = queue.begin(ENVELOPE)
    writer.write(BODY)
    writer.abort()
    say("aborted")


def record(queue: Queue, qid: str) -> None:
    for n, batch in enumerate(RECORDS, 1):
        queue.record(qid, batch)
        say(f"r{n}")
    queue.complete(qid)
    say("done")


def main(argv: list[str]) -> None:
    scenario, root = argv[0], argv[1]
    queue = Queue(root, syncer=fsio.DirSyncer())
    if scenario == "enqueue":
        enqueue(queue)
    elif scenario == "reuse":
        reuse(queue)
    elif scenario == "bodyfirst":
        body_first(queue)
    elif scenario == "abort":
        abort(queue)
    elif scenario == "record":
        record(queue, argv[2])
    elif scenario == "delete":
        queue.delete(argv[2])
        say("deleted")
    elif scenario == "recover":
        queue.recover(time.time(), debris_age=100.0)
        say("recovered")
    else:
        raise SystemExit(f"unknown scenario {scenario}")


if __name__ == "__main__":
    main(sys.argv[1:])
