"""RFC 3834 decisions and the reply's form (message/autoreply.py)."""

from __future__ import annotations

import email
import email.policy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.message.autoreply import ReplySpec, build_reply, no_reply_reason

OWN = ["alice@example.test"]
PLAIN = (
    b"From: Bob <bob@example.org>\r\n"
    b"To: Alice <alice@example.test>\r\n"
    b"Subject: lunch?\r\n"
    b"Message-ID: <m1@example.org>\r\n"
    b"\r\n"
)


def test_plain_personal_mail_may_be_answered() -> None:
    assert no_reply_reason("bob@example.org", PLAIN, OWN) is None


def test_cc_and_case_count_as_named() -> None:
    block = b"To: someone@else.test\r\nCc: ALICE@Example.Test\r\n\r\n"
    assert no_reply_reason("bob@example.org", block, OWN) is None


@pytest.mark.parametrize("sender", [
    "", "MAILER-DAEMON@example.org", "postmaster@example.org", "owner-list@example.org",
    "list-request@example.org", "list-owner@example.org", "noreply@example.org",
    "no-reply@example.org", "do_not_reply@example.org", "DoNotReply@example.org",
])
def test_machine_senders_are_never_answered(sender: str) -> None:
    assert no_reply_reason(sender, PLAIN, OWN) is not None


@pytest.mark.parametrize("field", [
    b"Auto-Submitted: auto-generated", b"Auto-Submitted: auto-replied",
    b"Precedence: bulk", b"Precedence: list", b"Precedence: junk",
    b"List-Id: <list.example.org>", b"List-Unsubscribe: <mailto:x@example.org>",
    b"X-Auto-Response-Suppress: All",
])
def test_automatic_or_list_mail_is_never_answered(field: bytes) -> None:
    assert no_reply_reason("bob@example.org", field + b"\r\n" + PLAIN, OWN) is not None


def test_auto_submitted_no_is_a_person() -> None:
    assert no_reply_reason("bob@example.org", b"Auto-Submitted: no\r\n" + PLAIN, OWN) is None


def test_not_named_in_to_or_cc() -> None:
    block = b"To: list@example.org\r\n\r\n"
    assert no_reply_reason("bob@example.org", block, OWN) is not None
    # ...unless the address it came to is one of the user's.
    assert no_reply_reason("bob@example.org", block, [*OWN, "list@example.org"]) is None


def parse(data: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def spec(**changes: object) -> ReplySpec:
    values: dict[str, object] = {
        "sender": "bob@example.org", "mailbox": "alice@example.test",
        "display_name": "Alice Liddell", "subject": "Away", "body": "Back on Monday.\n",
        "original_headers": PLAIN, "now": 1_733_072_400.0, "host": "mx.example.test",
        "seed": "q1",
    }
    values.update(changes)
    return ReplySpec(**values)  # type: ignore[arg-type]


def test_reply_form() -> None:
    data = build_reply(spec())
    assert b"\r\n\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    msg = parse(data)
    assert msg["Auto-Submitted"] == "auto-replied"  # RFC 3834 §5
    assert msg["In-Reply-To"] == "<m1@example.org>"
    assert msg["References"] == "<m1@example.org>"
    assert msg["To"].addresses[0].addr_spec == "bob@example.org"
    assert msg["From"].addresses[0].addr_spec == "alice@example.test"
    assert msg["From"].addresses[0].display_name == "Alice Liddell"
    assert msg["Subject"] == "Away"
    assert msg["Message-ID"].endswith("@mx.example.test>")
    assert msg.get_content().replace("\r\n", "\n") == "Back on Monday.\n"


def test_empty_subject_becomes_auto_plus_original() -> None:
    assert parse(build_reply(spec(subject="")))["Subject"] == "Auto: lunch?"


def test_references_chain_and_utf8() -> None:
    headers = b"References: <a@x> <b@x>\r\nMessage-ID: <c@x>\r\nSubject: hi\r\n\r\n"
    msg = parse(build_reply(spec(original_headers=headers, subject="Abwesend – zurück",
                                 body="Grüße\n", display_name="Jörg")))
    assert msg["References"].split() == ["<a@x>", "<b@x>", "<c@x>"]
    assert msg["Subject"] == "Abwesend – zurück"
    assert msg["From"].addresses[0].display_name == "Jörg"
    assert msg.get_content().replace("\r\n", "\n") == "Grüße\n"
    assert build_reply(spec(body="Grüße\n")).isascii()


def test_hostile_fields_stay_one_line() -> None:
    data = build_reply(spec(subject="x\r\nBcc: victim@example.org", display_name='a"\r\nb'))
    assert b"\r\nBcc:" not in data


@given(st.text(max_size=60), st.binary(max_size=400), st.lists(st.text(max_size=30), max_size=3))
def test_decision_never_crashes(sender: str, block: bytes, own: list[str]) -> None:
    reason = no_reply_reason(sender, block, own)
    assert reason is None or isinstance(reason, str)


@given(st.binary(max_size=400), st.text(max_size=80), st.text(max_size=200))
def test_building_never_crashes(headers: bytes, subject: str, body: str) -> None:
    data = build_reply(spec(original_headers=headers, subject=subject, body=body))
    head = data.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
