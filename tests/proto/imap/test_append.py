"""APPEND streaming (RFC 9051 §6.3.12): synchronising and non-synchronising
literals, accepted and refused, refused half-way, malformed endings, UTF8
and BINARY forms, the connection cut in the middle."""

from __future__ import annotations

from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.events import (
    AppendData,
    AppendEnd,
    Command,
    CommandAborted,
    ConnectionClosed,
    Event,
)
from mailyard.proto.imap.responses import AppendUid, Code
from mailyard.proto.imap.sequence import SequenceSet
from mailyard.proto.imap.server import ImapServer
from tests.proto.imap.helpers import LOGIN, default_answer, lines, make_core, run, tagged

MESSAGE = b"Subject: hi\r\n\r\nHello, world.\r\n"


def committing(core: ImapServer, event: Event) -> None:
    if isinstance(event, AppendEnd):
        core.finish(Status.OK, AppendUid(38505, SequenceSet.of_range(3955, 3955)))
    else:
        default_answer(core, event)


def refusing(code: Code):
    def answer(core: ImapServer, event: Event) -> None:
        if isinstance(event, Command) and isinstance(event.body, c.Append):
            core.finish(Status.NO, code, "refused")
        else:
            default_answer(core, event)

    return answer


def test_sync_accepted(feed) -> None:
    data = LOGIN + b"a APPEND INBOX (\\Seen) {%d}\r\n" % len(MESSAGE) + MESSAGE + b"\r\nb NOOP\r\n"
    result = feed(data, answer=committing)
    assert result.appended == MESSAGE
    assert result.lines[-3:] == [
        "+ Ready for append literal",
        "a OK [APPENDUID 38505 3955] APPEND completed",
        "b OK NOOP completed",
    ]
    kinds = [type(e) for e in result.events]
    assert kinds[-1] is Command and AppendEnd in kinds


def test_nonsync_accepted_sends_no_continuation(feed) -> None:
    data = LOGIN + b"a APPEND INBOX {%d+}\r\n" % len(MESSAGE) + MESSAGE + b"\r\n"
    result = feed(data, answer=committing)
    assert result.appended == MESSAGE
    assert "+ Ready for append literal" not in result.lines
    assert tagged(result, "a") == "a OK [APPENDUID 38505 3955] APPEND completed"


def test_chunks_are_bounded() -> None:
    big = b"x" * 10_000
    core = make_core(append_chunk=1024)
    result = run([LOGIN + b"a APPEND INBOX {10000+}\r\n" + big + b"\r\n"], core=core)
    chunks = [e.data for e in result.events if isinstance(e, AppendData)]
    assert b"".join(chunks) == big and max(map(len, chunks)) <= 1024


def test_sync_refused_reads_nothing(feed) -> None:
    data = LOGIN + b"a APPEND Nope {5}\r\nb NOOP\r\n"
    result = feed(data, answer=refusing(Code.TRYCREATE))
    assert result.lines[-2:] == ["a NO [TRYCREATE] refused", "b OK NOOP completed"]
    assert not result.appended


def test_nonsync_refused_is_skipped(feed) -> None:
    data = LOGIN + b"a APPEND INBOX {5+}\r\nb NOOP\r\nc NOOP\r\n"
    # The five octets "b NOO" are message data, then "P\r\n" ends the line…
    result = feed(data, answer=refusing(Code.OVERQUOTA))
    assert result.lines[-2:] == ["a NO [OVERQUOTA] refused", "c OK NOOP completed"]
    assert not result.appended


def test_refused_half_way() -> None:
    def answer(core: ImapServer, event: Event) -> None:
        if isinstance(event, AppendData):
            core.finish(Status.NO, Code.OVERQUOTA, "disk full")
        else:
            default_answer(core, event)

    core = make_core(append_chunk=4)
    data = LOGIN + b"a APPEND INBOX {12+}\r\n" + b"abcdefghijkl" + b"\r\nb NOOP\r\n"
    result = run([data], core=core, answer=answer)
    assert result.appended == b"abcd"  # no more chunks after the refusal
    assert result.lines[-2:] == ["a NO [OVERQUOTA] disk full", "b OK NOOP completed"]


def test_garbage_after_message() -> None:
    data = LOGIN + b"a APPEND INBOX {3+}\r\nabc extra\r\nb NOOP\r\n"
    result = run([data])
    assert result.lines[-2:] == ["a BAD unexpected data after the message", "b OK NOOP completed"]
    assert any(isinstance(e, CommandAborted) for e in result.events)


def test_multiappend_refused_and_skipped() -> None:
    data = LOGIN + b"a APPEND INBOX {3+}\r\nabc {3+}\r\ndef\r\nb NOOP\r\n"
    result = run([data])
    assert result.lines[-2:] == ["a BAD MULTIAPPEND is not supported", "b OK NOOP completed"]


def test_utf8_append_needs_enable() -> None:
    data = LOGIN + b"a APPEND INBOX UTF8 (~{3+}\r\nabc)\r\n"
    assert "a BAD" in run([data]).lines[-1]
    data = LOGIN + lines("e ENABLE UTF8=ACCEPT") + b"a APPEND INBOX UTF8 (~{3+}\r\nabc)\r\n"
    result = run([data])
    assert result.commands[-1] == c.Append("INBOX", (), None, 3, False, binary=True, utf8=True)
    assert tagged(result, "a") == "a OK APPEND completed"


def test_binary_literal8() -> None:
    data = LOGIN + b"a APPEND INBOX ~{3}\r\na\x00b\r\n"
    result = run([data])
    assert result.commands[-1] == c.Append("INBOX", (), None, 3, True, binary=True)
    assert result.appended == b"a\x00b"
    assert (
        "a BAD literal8 needs BINARY"
        in run([data], core=make_core(binary=False, imap4rev2=False)).lines
    )


def test_literal8_elsewhere_refused() -> None:
    result = run([b"a LOGIN ~{3}\r\n"])
    assert result.lines == ["a BAD literal8 is only allowed in APPEND"]


def test_append_without_message() -> None:
    assert (
        tagged(run([LOGIN + lines("a APPEND INBOX")]), "a")
        == "a BAD APPEND needs a message literal"
    )
    assert (
        tagged(run([LOGIN + lines("a APPEND INBOX (\\Recent) {1}")]), "a")
        == "a BAD \\Recent cannot be stored"
    )
    result = run([LOGIN + lines('a APPEND INBOX "bad date" {1}')])
    assert tagged(result, "a") == "a BAD invalid date-time"


def test_eof_in_the_middle() -> None:
    result = run([LOGIN + b"a APPEND INBOX {10+}\r\nabc"], eof=True)
    kinds = [type(e) for e in result.events]
    assert kinds[-2:] == [CommandAborted, ConnectionClosed]
    assert result.appended == b"abc"


def test_empty_message() -> None:
    result = run([LOGIN + b"a APPEND INBOX {0}\r\n\r\n"], answer=committing)
    assert result.appended == b""
    assert tagged(result, "a").startswith("a OK")


def test_pipelined_after_append_waits() -> None:
    # Nothing after the APPEND is read before the adapter answered it.
    core = make_core()
    data = LOGIN + b"a APPEND INBOX {3+}\r\nabc\r\nb NOOP\r\n"
    core.receive_data(data)
    seen: list[Event] = []
    while True:
        event = core.next_event()
        if not isinstance(event, Command | AppendData | AppendEnd):
            break
        seen.append(event)
        if isinstance(event, Command) and isinstance(event.body, c.Login):
            core.finish(Status.OK)
        elif isinstance(event, Command):
            core.accept_append()
    assert isinstance(seen[-1], AppendEnd)
    assert core.pending is not None and isinstance(core.pending.body, c.Append)
    core.finish(Status.OK)
    event = core.next_event()
    assert isinstance(event, Command) and isinstance(event.body, c.Noop)


def test_refused_nonsync_too_large_to_skip() -> None:
    core = make_core(max_discard=1000)
    data = LOGIN + b"a APPEND INBOX {5000+}\r\n" + b"b NOOP\r\n" * 10
    result = run([data], core=core, answer=refusing(Code.OVERQUOTA))
    assert result.lines[-2:] == [
        "a NO [OVERQUOTA] refused",
        "* BYE [TOOBIG] Literal too large to skip",
    ]
    assert result.closed
