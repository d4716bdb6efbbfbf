"""Seed inputs for the fuzzers, read from the golden transcripts.

``tests/transcripts/<protocol>/*.txt``: a ``C:`` step is a client line sent
with CRLF, a ``C+`` step is sent as written after its escapes (``\\r``,
``\\n``, ``\\\\``, ``\\xNN``) are decoded; ``#! message`` lines carry stored
messages (the same escapes), which seed the MIME fuzzer besides
tests/message/mime_corpus.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

__all__ = ["TRANSCRIPTS", "client_lines", "messages", "sessions"]

TRANSCRIPTS: Final = Path(__file__).resolve().parent.parent / "tests" / "transcripts"
_ESCAPE: Final = re.compile(rb"\\(x[0-9a-fA-F]{2}|r|n|\\)")
_MESSAGE: Final = re.compile(r"#! message (?:\S+ \S+ \S+ )?(.*)")


def _unescape(raw: bytes) -> bytes:
    def one(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        if code.startswith(b"x"):
            return bytes([int(code[1:], 16)])
        return {b"r": b"\r", b"n": b"\n", b"\\": b"\\"}[code]

    return _ESCAPE.sub(one, raw)


def _steps(path: Path) -> list[bytes]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("C: "):
            out.append(line[3:].encode("utf-8") + b"\r\n")
        elif line == "C:":
            out.append(b"\r\n")
        elif line.startswith("C+ "):
            out.append(_unescape(line[3:].encode("utf-8")))
    return out


def sessions(protocol: str) -> list[bytes]:
    """What the client sends in each transcript of ``protocol``, joined."""
    return [b"".join(_steps(path)) for path in sorted((TRANSCRIPTS / protocol).glob("*.txt"))]


def client_lines(protocol: str) -> list[bytes]:
    """Every distinct client step of ``protocol``'s transcripts."""
    found: dict[bytes, None] = {}
    for path in sorted((TRANSCRIPTS / protocol).glob("*.txt")):
        found.update(dict.fromkeys(_steps(path)))
    return list(found)


def messages() -> list[bytes]:
    """Stored messages of the IMAP and POP3 transcripts, and the MIME test corpus."""
    found: list[bytes] = []
    for protocol in ("imap", "pop3"):
        for path in sorted((TRANSCRIPTS / protocol).glob("*.txt")):
            for line in path.read_text(encoding="utf-8").splitlines():
                match = _MESSAGE.fullmatch(line)
                if match:
                    found.append(_unescape(match.group(1).encode("utf-8")))
    try:
        from tests.message import mime_corpus
    except ImportError:
        return found
    found += [value for name, value in sorted(vars(mime_corpus).items())
              if name.isupper() and isinstance(value, bytes)]
    return found
