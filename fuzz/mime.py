"""Fuzz the MIME parser and what is built on it (BODYSTRUCTURE, ENVELOPE,
sections): it must never raise (mailyard/message/mime.py's promise), and
every part's offsets must lie inside the message, nested properly."""

from __future__ import annotations

import random
from typing import Final

from fuzz.corpus import messages
from fuzz.engine import Harness
from mailyard.message.bodystructure import body_structure, imap_body
from mailyard.message.envelope import envelope_of, imap_envelope
from mailyard.message.mime import MimePart, crlf, parse_header, parse_message

__all__ = ["HARNESS", "check"]


def _check_offsets(part: MimePart, lo: int, hi: int) -> None:
    assert lo <= part.start <= part.body_start <= part.end <= hi, (lo, part.start,
                                                                   part.body_start, part.end, hi)
    for child in part.children:
        _check_offsets(child, part.body_start, part.end)
    if part.message is not None:
        _check_offsets(part.message, part.body_start, part.end)


def check(data: bytes, rng: random.Random) -> None:
    """Parse ``data`` (and its CRLF form) every way the IMAP server does."""
    for message in (data, crlf(data)) if rng.random() < 0.5 else (data,):
        tree = parse_message(message)
        _check_offsets(tree, 0, len(message))
        structure = body_structure(message, tree)
        imap_body(structure, extended=True)
        imap_body(structure, extended=False)
        imap_envelope(envelope_of(message))
        parse_header(message, 0, len(message))


HARNESS: Final = Harness("mime", messages, check, max_size=16384)
