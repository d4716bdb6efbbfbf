"""The queue writer's wire protocol, between the SMTP side and ``injector.py``.

One Unix stream connection carries one transaction at a time (MODELS
§7.3e: the network-facing side hands messages to the single owner of
``queue/``). Every request is a header line of ASCII words ending in LF,
then as many payload octets as the lengths in it say:

* ``BEGIN <id> <envelope length>`` + envelope (``queue.envelope`` encoding);
* ``BODY <id>`` starts a message whose envelope comes last (QMTP, QMQP);
* ``DATA <length>`` + message octets;
* ``COMMIT <envelope length> <head length> <length>`` + envelope + head +
  the last octets (the envelope and head only for ``BODY``);
* ``ABORT``.

Only ``COMMIT`` and ``ABORT`` are answered: ``OK <id>`` once the message
is on disk (fsync, rename, directory sync: the 250 rule), ``ERR <text>``
when it is not; a failure before the commit is remembered by the writer
and told then, so a small message costs one round trip.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = [
    "MAX_FRAME",
    "MAX_LINE",
    "Request",
    "Verb",
    "WriterError",
    "encode_reply",
    "encode_request",
    "parse_reply",
    "parse_request",
]

MAX_LINE: Final = 256  # octets of a header or reply line, LF included
MAX_FRAME: Final = 16 * 1024 * 1024  # octets one length may announce
_MAX_ID: Final = 64


class WriterError(OSError):
    """The queue writer answered ERR: the message is not queued (a temporary failure)."""


class Verb(enum.Enum):
    """A request's first word, and how many lengths follow its id (if any)."""

    BEGIN = "BEGIN"
    BODY = "BODY"
    DATA = "DATA"
    COMMIT = "COMMIT"
    ABORT = "ABORT"


# (takes an id, number of lengths)
_SHAPE: Final = {
    Verb.BEGIN: (True, 1), Verb.BODY: (True, 0), Verb.DATA: (False, 1),
    Verb.COMMIT: (False, 3), Verb.ABORT: (False, 0),
}


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed header line: the payload that follows is ``sum(lengths)`` octets."""

    verb: Verb
    qid: str = ""
    lengths: tuple[int, ...] = ()

    @property
    def payload(self) -> int:
        """Octets of payload after the header line."""
        return sum(self.lengths)


def _word_ok(word: str) -> bool:
    return word.isascii() and word.isprintable() and " " not in word and len(word) > 0


def encode_request(request: Request) -> bytes:
    """The header line of ``request`` (ValueError if it is not a well-formed one)."""
    takes_id, count = _SHAPE[request.verb]
    if len(request.lengths) != count or takes_id != bool(request.qid):
        raise ValueError(f"malformed {request.verb.value} request")
    words = [request.verb.value]
    if takes_id:
        if not _word_ok(request.qid) or len(request.qid) > _MAX_ID:
            raise ValueError("bad queue id")
        words.append(request.qid)
    for length in request.lengths:
        if not 0 <= length <= MAX_FRAME:
            raise ValueError("length out of range")
        words.append(str(length))
    return " ".join(words).encode("ascii") + b"\n"


def parse_request(line: bytes) -> Request:
    """Parse one header line (LF included or not); ValueError if it is not one."""
    if len(line) > MAX_LINE:
        raise ValueError("request line too long")
    try:
        words = line.removesuffix(b"\n").decode("ascii").split(" ")
    except UnicodeDecodeError:
        raise ValueError("request line is not ASCII") from None
    try:
        verb = Verb(words[0])
    except ValueError:
        raise ValueError(f"unknown request {words[0][:16]!r}") from None
    takes_id, count = _SHAPE[verb]
    rest = words[1:]
    qid = ""
    if takes_id:
        if not rest or not _word_ok(rest[0]) or len(rest[0]) > _MAX_ID:
            raise ValueError("missing or bad queue id")
        qid, rest = rest[0], rest[1:]
    if len(rest) != count or not all(w.isascii() and w.isdigit() and len(w) <= 9 for w in rest):
        raise ValueError(f"malformed {verb.value} request")
    lengths = tuple(int(w) for w in rest)
    if any(n > MAX_FRAME for n in lengths):
        raise ValueError("length out of range")
    return Request(verb, qid, lengths)


def encode_reply(qid: str | None, error: str = "") -> bytes:
    """``OK <id>`` (or plain ``OK`` after an abort), or ``ERR <text>`` when ``qid`` is None."""
    if qid is not None:
        return f"OK {qid}\n".encode("ascii") if qid else b"OK\n"
    text = "".join(c if c.isascii() and c.isprintable() else "?" for c in error)
    return f"ERR {text or 'failed'}"[: MAX_LINE - 1].encode("ascii") + b"\n"


def parse_reply(line: bytes) -> str:
    """The id of an ``OK`` reply ("" for a bare OK); WriterError for ``ERR``
    (the writer's failure, a temporary one for the client), ValueError
    for anything else."""
    if len(line) > MAX_LINE or not line.endswith(b"\n"):
        raise ValueError("bad reply from the queue writer")
    text = line[:-1].decode("ascii", "replace")
    if text == "OK":
        return ""
    if text.startswith("OK ") and _word_ok(text[3:]) and len(text) - 3 <= _MAX_ID:
        return text[3:]
    if text.startswith("ERR "):
        raise WriterError(f"queue writer: {text[4:]}")
    raise ValueError("bad reply from the queue writer")
