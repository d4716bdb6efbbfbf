"""The fuzz harnesses in CI: a short seeded run of each (fuzz/run.py runs
them for longer), and a replay of every input saved in fuzz/crashes/.

No crash has been found so far (see docs/drills.md for the runs); when the
fuzzer finds one, its minimal input goes into REGRESSIONS below, beside the
fix, and stays there.
"""

from __future__ import annotations

import random

import pytest

from fuzz.engine import CRASHES
from fuzz.run import HARNESSES

# (harness, input) pairs that once crashed a core; none yet.
REGRESSIONS: list[tuple[str, bytes]] = []
SAVED = sorted(CRASHES.glob("*.bin")) if CRASHES.exists() else []


@pytest.mark.parametrize("name", list(HARNESSES))
def test_short_seeded_fuzz_run_finds_nothing(name: str) -> None:
    report = HARNESSES[name].run(seconds=3.0, seed=0, max_runs=3000)
    print(f"\nfuzz {name}: {report.runs} inputs in {report.seconds:.1f}s, "
          f"{len(report.crashes)} crashes")
    assert report.crashes == {}, "\n".join(c.trace for c in report.crashes.values())


def test_regressions_and_saved_crash_inputs() -> None:
    """Every recorded input runs clean (a loop, so an empty list is no skip)."""
    cases = REGRESSIONS + [(p.name.split("-", 1)[0], p.read_bytes()) for p in SAVED]
    for name, data in cases:
        HARNESSES[name].check(data, random.Random(data))
