"""Helpers for the store's tests: deliveries, foreign files, aged directories."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

from mailyard.maildir.deliver import deliver, ensure_maildir


def deliver_to(box: Path, text: bytes = b"Subject: x\r\n\r\nbody\r\n") -> str:
    """One real delivery into new/ (our names); returns the file name."""
    ensure_maildir(str(box))
    return deliver(str(box), b"", io.BytesIO(text), len(text), hostname="mx.example")


def plant(box: Path, sub: str, name: str, data: bytes = b"Subject: p\r\n\r\nx\r\n",
          mtime: float | None = None) -> Path:
    """A file another program put there (no fsync, any name)."""
    path = box / sub / name
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def age(box: Path, seconds: float = 10.0) -> None:
    """Make new/ and cur/ look untouched for a while, so their stamps count as settled."""
    when = time.time() - seconds
    for sub in ("new", "cur"):
        os.utime(box / sub, (when, when))


def names(box: Path, sub: str = "cur") -> list[str]:
    return sorted(p.name for p in (box / sub).iterdir())


def read_uidlist(box: Path, reservations: bool = False) -> list[str]:
    """The uid list's header and records; its R lines (mod-sequence
    reservations, tests/maildir/test_modseq_reservation.py) only if asked."""
    lines = (box / "mailyard-uidlist").read_text().splitlines()
    return lines if reservations else [line for line in lines if not line.startswith("R ")]
