"""server.submission: the header gate and the MSA's header review (RFC 6409)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailyard.directory.model import Mailbox
from mailyard.message.address import Address, parse_address
from mailyard.message.headers import iter_fields
from mailyard.server.submission import (
    R550_FROM_NOT_OWNED,
    R554_HEADER_TOO_LARGE,
    HeaderGate,
    HeaderVerdict,
    message_id,
    owns,
    review_header,
)
import itertools

ALICE = Mailbox(address=Address("alice", "example.test"), maildir="example.test/alice",
                enabled=True, password_hash="", created=0.0)
NOW = 1_796_144_400.0  # Tue, 1 Dec 2026 17:00:00 +0000
NEW_ID = "<qid1.abc@mx.example.test>"


def review(block: bytes, complete: bool = True, check: bool = True) -> HeaderVerdict:
    return review_header(block, complete=complete, owner=ALICE, check_sender=check,
                         new_message_id=NEW_ID, now=NOW)


def gate(limit: int = 1000, check: bool = True) -> HeaderGate:
    return HeaderGate(limit, lambda block, complete: review(block, complete, check))


def test_owns_compares_like_the_directory() -> None:
    assert owns(ALICE, parse_address("Alice@EXAMPLE.test"))
    assert not owns(ALICE, parse_address("bob@example.test"))
    assert not owns(ALICE, None)  # <>


def test_message_id_is_a_msg_id() -> None:
    first, second = message_id("q1", "MX.Example.Test"), message_id("q1", "mx.example.test")
    assert first.startswith("<q1.") and first.endswith("@mx.example.test>")
    assert first != second
    assert message_id("q1", "not a host").endswith("@localhost>")


def test_missing_date_and_message_id_are_added() -> None:
    verdict = review(b"From: alice@example.test\r\nSubject: x\r\n\r\n")
    assert verdict.refusal is None
    fields = dict(iter_fields(verdict.added + b"\r\n"))
    assert fields[b"Date"] == b"Tue, 1 Dec 2026 17:00:00 +0000"
    assert fields[b"Message-ID"] == NEW_ID.encode()


def test_present_fields_are_not_added_again() -> None:
    verdict = review(b"DATE: x\r\nmessage-id: <a@b>\r\nFrom: alice@example.test\r\n\r\n")
    assert verdict == HeaderVerdict()


def test_originator_checks() -> None:
    assert review(b"From: Alice <alice@example.test>\r\n\r\n").refusal is None
    assert review(b"Subject: no from at all\r\n\r\n").refusal is None
    for block in (b"From: bob@example.test\r\n\r\n",
                  b"From: alice@example.test\r\nSender: bob@example.test\r\n\r\n",
                  b"From: alice@example.test\r\nFrom: bob@example.test\r\n\r\n",
                  b"From: \xff@example.test\r\n\r\n",
                  b"From: Alice <alice@example.test\r\n\r\n"):
        verdict = review(block)
        assert verdict.refusal == R550_FROM_NOT_OWNED and verdict.reason, block
    # Latin-1 in a display name is not a reason to refuse.
    assert review(b"From: J\xf6rg <alice@example.test>\r\n\r\n").refusal is None
    # Folded fields are read unfolded.
    assert review(b"From: Alice\r\n <alice@example.test>\r\n\r\n").refusal is None
    assert review(b"From: Alice\r\n <bob@example.test>\r\n\r\n").refusal is not None


def test_check_off_accepts_anyone() -> None:
    assert review(b"From: bob@example.test\r\n\r\n", check=False).refusal is None


def test_an_oversized_header() -> None:
    assert review(b"X: y\r\n", complete=False).refusal == R554_HEADER_TOO_LARGE
    assert review(b"X: y\r\n", complete=False, check=False) == HeaderVerdict()


def test_gate_holds_only_the_header() -> None:
    g = gate()
    assert g.feed(b"From: alice@example.test\r\n") == b""
    assert g.feed(b"Date: x\r\nMessage-ID: <a@b>\r\n") == b""
    out = g.feed(b"\r\nbody")
    assert out == b"From: alice@example.test\r\nDate: x\r\nMessage-ID: <a@b>\r\n\r\nbody"
    assert g.feed(b" more\r\n") == b" more\r\n"
    assert g.finish() == b""


def test_gate_message_without_header_or_without_body() -> None:
    g = gate()
    out = g.feed(b"\r\nno header\r\n")
    assert out.endswith(b"\r\n\r\nno header\r\n") and out.startswith(b"Date: ")
    g = gate()
    assert g.feed(b"Subject: only a header\r\n") == b""
    assert g.finish().endswith(b"Subject: only a header\r\n")


def test_gate_refusal_swallows_everything() -> None:
    g = gate()
    assert g.feed(b"From: bob@example.test\r\n\r\nbody") == b""
    assert g.refusal == R550_FROM_NOT_OWNED
    assert g.feed(b"more") == b"" and g.finish() == b""


def test_gate_limit() -> None:
    g = gate(limit=10, check=False)
    assert g.feed(b"X-Long: 1234") == b"X-Long: 1234"  # over the limit: let through, unchanged
    assert g.feed(b"\r\n\r\nbody") == b"\r\n\r\nbody"
    g = gate(limit=10)
    assert g.feed(b"X-Long: 1234") == b""
    assert g.refusal == R554_HEADER_TOO_LARGE


_messages = st.one_of(
    st.just(b"From: alice@example.test\r\nSubject: s\r\n\r\nbody\r\n.\r\nend\r\n"),
    st.just(b"Date: d\r\nMessage-ID: <m@x>\r\n\r\n"),
    st.just(b"\r\n\r\n\r\n"),
    st.just(b"From: bob@example.test\r\n\r\nbody"),
    st.binary(max_size=300),
)


@given(_messages, st.lists(st.integers(0, 300), max_size=8), st.integers(1, 200))
def test_gate_output_does_not_depend_on_chunking(message: bytes, cuts: list[int],
                                                  limit: int) -> None:
    whole = gate(limit)
    expected = whole.feed(message) + whole.finish()
    chunked = gate(limit)
    points = sorted({c for c in cuts if c <= len(message)} | {0, len(message)})
    out = b"".join(chunked.feed(message[a:b]) for a, b in itertools.pairwise(points))
    out += chunked.finish()
    assert out == expected
    assert chunked.refusal == whole.refusal
    if whole.refusal is None:
        # Byte for byte: only fields in front are added.
        assert out.endswith(message)
        assert out[: len(out) - len(message)] == (whole.verdict.added if whole.verdict else b"")
    else:
        assert out == b""


@given(st.binary(max_size=500), st.booleans(), st.booleans())
def test_review_never_crashes(block: bytes, complete: bool, check: bool) -> None:
    verdict = review(block, complete, check)
    assert verdict.refusal is None or verdict.refusal.code in (550, 554)
