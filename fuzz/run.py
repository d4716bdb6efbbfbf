"""Run the fuzz harnesses: ``python -m fuzz.run --seconds N [--seed S] [NAME ...]``.

Each harness runs N seconds (default 10); every distinct crash is printed
with its traceback and saved under fuzz/crashes/; the exit status is 1 if
any harness crashed. ``make fuzz`` runs this.
"""

from __future__ import annotations

import argparse
import sys
from typing import Final

from fuzz import imap, mime, pop3, smtp
from fuzz.engine import Harness, Report

__all__ = ["HARNESSES", "main", "run"]

HARNESSES: Final[dict[str, Harness]] = {h.name: h for h in (
    smtp.HARNESS, imap.HARNESS, pop3.HARNESS, mime.HARNESS)}


def run(names: list[str], seconds: float, seed: int) -> list[Report]:
    """Run the named harnesses (all when empty), printing a line for each."""
    reports = []
    for name in names or list(HARNESSES):
        report = HARNESSES[name].run(seconds=seconds, seed=seed)
        reports.append(report)
        print(f"fuzz {name}: {report.runs} inputs in {report.seconds:.1f}s "
              f"({report.runs / max(report.seconds, 1e-9):.0f}/s), "
              f"{len(report.crashes)} distinct crashes", flush=True)
        for crash in report.crashes.values():
            path = crash.save()
            print(f"  crash {crash.key}: input {crash.data[:200]!r} saved to {path}\n"
                  f"{crash.trace}", flush=True)
    return reports


def main(argv: list[str] | None = None) -> int:
    """The command line; 0 when no harness crashed."""
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per harness")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(HARNESSES))
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(HARNESSES))
    if unknown:
        parser.error(f"unknown harness {unknown}; known: {', '.join(HARNESSES)}")
    reports = run(list(args.names), args.seconds, args.seed)
    return 1 if any(r.crashes for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
