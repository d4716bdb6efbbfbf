"""UIDVALIDITY values for the folders of one Maildir (RFC 3501 §2.3.1.1)."""

from __future__ import annotations

import os
import time
from typing import Final

from mailyard import fsio
from mailyard.maildir.journal import MAX_UID
from mailyard.maildir.lock import root_lock

__all__ = ["UIDVALIDITY_FILE", "next_uidvalidity"]

UIDVALIDITY_FILE: Final = "mailyard-uidvalidity"


def next_uidvalidity(root: str) -> int:
    """A UIDVALIDITY this Maildir has never used (RFC 3501 §2.3.1.1).

    Time-based, and above every value handed out before (the root keeps the
    last one), so a folder deleted and created again in the same second
    still gets a new one.
    """
    with root_lock(root):
        try:
            with open(os.path.join(root, UIDVALIDITY_FILE), "rb") as handle:
                text = handle.read(64).strip()
            last = int(text) if text.isdigit() else 0
        except FileNotFoundError:
            last = 0
        value = max(int(time.time()), last + 1)
        if value > MAX_UID:
            value = 1
        fsio.write_file_atomic(root, UIDVALIDITY_FILE, [f"{value}\n".encode("ascii")])
    return value
