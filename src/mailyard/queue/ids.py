"""Queue ids: unique across processes and time, sortable by creation time.

An id is four fixed-width base-36 numbers (docs/design/queue.md, "Queue
ids"): microseconds, pid, a per-process sequence and 20 random bits. Fixed
width over an alphabet in ASCII order makes name order creation order.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from typing import Final

__all__ = ["ID_LENGTH", "check_id", "is_id", "new_id"]

_ALPHABET: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
_TIME_WIDTH: Final = 11  # 36**11 microseconds: more than 4,000 years
_PID_WIDTH: Final = 5
_SEQ_WIDTH: Final = 4
_RAND_WIDTH: Final = 4
ID_LENGTH: Final = _TIME_WIDTH + _PID_WIDTH + _SEQ_WIDTH + _RAND_WIDTH

# What the queue accepts from callers (the CLI passes user input): ASCII
# letters and digits only, so an id is always one harmless path component.
_VALID: Final = re.compile(r"[0-9A-Za-z]{1,32}", re.ASCII)

_lock = threading.Lock()
# The random part only separates ids if a clock steps back while a pid is
# reused; it needs no secrecy, and a seeded generator costs no system call
# per id (getrandom showed in the ingest profile).
# The pid is cached too (getpid is a system call); a forked child reseeds.
_random = random.Random(os.urandom(16))
_pid = os.getpid()


def _after_fork() -> None:
    global _random, _pid
    _random, _pid = random.Random(os.urandom(16)), os.getpid()


os.register_at_fork(after_in_child=_after_fork)
_last_us = 0
_seq = 0


def _base36(value: int, width: int) -> str:
    value %= 36**width
    digits = []
    for _ in range(width):
        value, rem = divmod(value, 36)
        digits.append(_ALPHABET[rem])
    return "".join(reversed(digits))


def new_id() -> str:
    """A fresh id; never decreasing within this process."""
    global _last_us, _seq
    with _lock:
        bits = _random.getrandbits(20)
        # A clock stepped backwards must not break the order within a process.
        now_us = max(time.time_ns() // 1000, _last_us)
        _last_us = now_us
        _seq += 1
        seq = _seq
    return (
        _base36(now_us, _TIME_WIDTH)
        + _base36(_pid, _PID_WIDTH)
        + _base36(seq, _SEQ_WIDTH)
        + _base36(bits, _RAND_WIDTH)
    )


def is_id(name: str) -> bool:
    """True if ``name`` is acceptable as a queue id (used when listing folders)."""
    return _VALID.fullmatch(name) is not None


def check_id(qid: str) -> str:
    """Return ``qid`` if it is a well-formed id, else raise ValueError.

    Every queue method taking an id calls this before building any path.
    """
    if not isinstance(qid, str) or not is_id(qid):
        raise ValueError(f"malformed queue id {qid!r}")
    return qid
