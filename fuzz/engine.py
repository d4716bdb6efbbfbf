"""A small seeded mutation fuzzer (no native dependencies: atheris needs
clang and libFuzzer, which this project's machines do not have).

Each input is built from the seed corpus by a few random mutations
(splices of two seeds, byte flips, insertions of tokens the parsers treat
specially, repeats, truncation); ``Harness.run`` feeds it to the target and
records the first input of every distinct crash (its exception type and
innermost frame). The same seed gives the same inputs, so a crash
reproduces with ``python -m fuzz.run --seed S``; every crash input is
also written to ``fuzz/crashes/``.
"""

from __future__ import annotations

import hashlib
import random
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = ["CRASHES", "Crash", "Harness", "Report", "mutate", "split_points"]

CRASHES: Final = Path(__file__).resolve().parent / "crashes"

# Octets and tokens the cores treat specially: line ends, literals, lists,
# quoting, dot-stuffing, SASL, huge numbers.
TOKENS: Final[tuple[bytes, ...]] = (
    b"\r\n", b"\n", b"\r", b"\x00", b"\xff", b" ", b"\t", b".", b"..", b"\r\n.\r\n",
    b"{0}", b"{5}", b"{5+}", b"{4294967296}", b"{99999999999999999999}", b"~{3}",
    b"(", b")", b"((((((((", b"))))", b"[", b"]", b"<", b">", b"\"", b"\\", b"*", b"%",
    b":", b",", b"=", b"@", b"0", b"1", b"-1", b"4294967295", b"18446744073709551616",
    b"1:*", b"*:1", b"$", b"+", b"=?utf-8?b?", b"?=", b"--", b"boundary=", b"\xc3\xa9",
)


def split_points(rng: random.Random, size: int) -> list[int]:
    """Where to cut an input into the chunks a socket might deliver."""
    cuts = sorted({rng.randint(0, size) for _ in range(rng.randint(0, 6))} | {0, size})
    return cuts


def mutate(rng: random.Random, seeds: Sequence[bytes], max_size: int = 4096) -> bytes:
    """One fuzz input derived from ``seeds``."""
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 6)):
        how = rng.randrange(7)
        at = rng.randint(0, len(data))
        if how == 0:
            other = rng.choice(seeds)
            start = rng.randint(0, len(other))
            data[at:at] = other[start:start + rng.randint(0, 400)]
        elif how == 1 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif how == 2:
            data[at:at] = rng.choice(TOKENS)
        elif how == 3 and data:
            end = min(len(data), at + rng.randint(1, 64))
            data[at:at] = data[at:end] * rng.randint(1, 50)
        elif how == 4:
            del data[at:at + rng.randint(1, 32)]
        elif how == 5:
            data[at:at] = rng.randbytes(rng.randint(1, 16))
        else:
            data = data[:at]
    return bytes(data[:max_size])


@dataclass(frozen=True, slots=True)
class Crash:
    harness: str
    key: str  # exception type and innermost frame: one entry per distinct bug
    data: bytes
    trace: str

    def save(self) -> Path:
        CRASHES.mkdir(exist_ok=True)
        digest = hashlib.sha256(self.data).hexdigest()[:16]
        path = CRASHES / f"{self.harness}-{digest}.bin"
        path.write_bytes(self.data)
        path.with_suffix(".txt").write_text(self.trace)
        return path


@dataclass(slots=True)
class Report:
    harness: str
    runs: int = 0
    seconds: float = 0.0
    crashes: dict[str, Crash] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Harness:
    """A target: ``check(data, rng)`` raises on a bug (any exception)."""

    name: str
    seeds: Callable[[], list[bytes]]
    check: Callable[[bytes, random.Random], None]
    max_size: int = 4096

    def run(self, *, seconds: float, seed: int, max_runs: int | None = None) -> Report:
        """Fuzz for ``seconds`` (or ``max_runs`` inputs, whichever ends first)."""
        rng = random.Random(f"{self.name}:{seed}")
        corpus = self.seeds()
        report = Report(self.name)
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            if max_runs is not None and report.runs >= max_runs:
                break
            data = corpus[report.runs] if report.runs < len(corpus) else mutate(
                rng, corpus, self.max_size)
            try:
                self.check(data, random.Random(data))
            except Exception as exc:
                frame = traceback.extract_tb(exc.__traceback__)[-1]
                key = f"{type(exc).__name__} at {frame.filename}:{frame.lineno}"
                if key not in report.crashes:
                    report.crashes[key] = Crash(self.name, key, data, traceback.format_exc())
            report.runs += 1
        report.seconds = time.monotonic() - started
        return report
