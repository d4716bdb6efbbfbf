"""message.inject: what mailyard sendmail does to a message before queueing it."""

from __future__ import annotations

import email
import email.policy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.message.address import Address
from mailyard.message.inject import InjectError, normalise_line_ends, prepare_message

SENDER = Address("joe", "host.example")
NOW = 1796140800.0


def prepare(raw: bytes, recipients: tuple[str, ...] = (), **kwargs: object):  # type: ignore[no-untyped-def]
    options: dict[str, object] = {
        "recipients": recipients, "read_recipients": False, "sender": SENDER,
        "full_name": None, "now": NOW, "message_id": "id1@host.example",
        "trace": "(mailyard-sendmail invoked by uid 1000)",
    }
    options.update(kwargs)
    return prepare_message(raw, **options)  # type: ignore[arg-type]


def parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def test_missing_fields_are_added_and_lf_becomes_crlf() -> None:
    out = prepare(b"Subject: hi\n\nline one\nline two\n", ("a@example.test",))
    assert b"\n" not in out.data.replace(b"\r\n", b"")
    msg = parsed(out.data)
    assert msg["From"] == "joe@host.example"
    assert msg["Message-ID"] == "<id1@host.example>"
    assert msg["Date"] is not None
    assert "mailyard-sendmail invoked by uid 1000" in msg["Received"]
    assert out.data.endswith(b"\r\n\r\nline one\r\nline two\r\n")
    assert out.recipients == ("a@example.test",)
    assert out.sender == "joe@host.example"


def test_present_fields_are_kept() -> None:
    raw = b"From: Me <me@x.example>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <k@x>\r\n\r\nb\r\n"
    out = prepare(raw, ("a@example.test",))
    msg = parsed(out.data)
    assert msg["From"] == "Me <me@x.example>"
    assert msg["Message-ID"] == "<k@x>"
    assert len(msg.get_all("Date")) == 1


def test_full_name_is_used_for_a_missing_from() -> None:
    out = prepare(b"Subject: x\n\nb\n", ("a@example.test",), full_name="Joe Bloggs")
    assert parsed(out.data)["From"] == "Joe Bloggs <joe@host.example>"


def test_t_reads_to_cc_bcc_and_removes_bcc() -> None:
    raw = (b"To: A <a@example.test>, b@example.test\nCc: c@example.test\n"
           b"Bcc: secret@example.test,\n hidden@example.test\nSubject: t\n\nbody\n")
    out = prepare(raw, ("extra@example.test",), read_recipients=True)
    assert set(out.recipients) == {"a@example.test", "b@example.test", "c@example.test",
                                   "secret@example.test", "hidden@example.test",
                                   "extra@example.test"}
    assert b"secret@" not in out.data and b"hidden@" not in out.data
    assert b"Bcc" not in out.data
    assert parsed(out.data)["Subject"] == "t"


def test_duplicates_are_queued_once() -> None:
    out = prepare(b"To: a@example.test, A@EXAMPLE.TEST\n\nb\n", ("a@example.test",),
                  read_recipients=True)
    assert len(out.recipients) == 1


def test_group_syntax_in_to() -> None:
    out = prepare(b"To: undisclosed-recipients:;\nBcc: x@example.test\n\nb\n",
                  read_recipients=True)
    assert out.recipients == ("x@example.test",)


def test_no_recipients_is_an_error() -> None:
    with pytest.raises(InjectError, match="no recipients"):
        prepare(b"Subject: x\n\nb\n")
    with pytest.raises(InjectError, match="no recipients"):
        prepare(b"Subject: x\n\nb\n", read_recipients=True)


def test_invalid_recipient_is_an_error() -> None:
    with pytest.raises(InjectError, match="invalid recipient"):
        prepare(b"Subject: x\n\nb\n", ("not an address",))


def test_a_bare_note_is_all_body() -> None:
    out = prepare(b"hello there\n", ("a@example.test",))
    msg = parsed(out.data)
    assert msg.get_content().strip() == "hello there"


def test_headers_without_a_body() -> None:
    out = prepare(b"Subject: only", ("a@example.test",))
    assert out.data.endswith(b"Subject: only\r\n\r\n")


def test_null_sender_needs_a_from() -> None:
    with pytest.raises(InjectError, match="no From"):
        prepare(b"Subject: x\n\nb\n", ("a@example.test",), sender=None)
    out = prepare(b"From: a@b.example\n\nb\n", ("a@example.test",), sender=None)
    assert out.sender == ""


@given(st.binary(max_size=300))
def test_normalised_text_has_crlf_only(raw: bytes) -> None:
    data = normalise_line_ends(raw)
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert normalise_line_ends(data) == data


@given(st.binary(max_size=400))
def test_prepare_never_raises_anything_but_inject_error(raw: bytes) -> None:
    try:
        out = prepare(raw, ("a@example.test",), read_recipients=True)
    except InjectError:
        return
    assert out.data.count(b"\r\n\r\n") >= 1
    assert b"\n" not in out.data.replace(b"\r\n", b"")
