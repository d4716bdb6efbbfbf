"""The delay warning report: structure, hostile input, never-crash property."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.dispatch.delay import DelayReport, build_delay_warning
from mailyard.message.dsn import FailedRecipient
from tests.dispatch.conftest import BIRTH, delivery_status

ITEM = FailedRecipient("carol@remote.test", "4.7.1", "smtp; 451 4.7.1 greylisted",
                       "mx1.remote.test")


def report(**changes: object) -> DelayReport:
    fields: dict[str, object] = {
        "reporting_mta": "mx.example.test", "sender": "alice@example.test",
        "delayed": (ITEM,), "original_headers": b"Subject: hello\r\nFrom: a@b\r\n\r\n",
        "queue_id": "q1", "arrival": BIRTH, "now": BIRTH + 14400,
        "retry_until": BIRTH + 7 * 86400, "boundary_seed": "seed",
    }
    fields.update(changes)
    return DelayReport(**fields)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_an_rfc_3464_report_with_action_delayed() -> None:
    data = build_delay_warning(report())
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b"")
    message = parse(data)
    assert message["To"].addresses[0].addr_spec == "alice@example.test"
    assert message["Auto-Submitted"] == "auto-replied"
    per_message, delayed = delivery_status(message)
    assert per_message["reporting-mta"] == "dns; mx.example.test"
    assert delayed == {
        "final-recipient": "rfc822; carol@remote.test",
        "action": "delayed",
        "status": "4.7.1",
        "remote-mta": "dns; mx1.remote.test",
        "diagnostic-code": "smtp; 451 4.7.1 greylisted",
        "last-attempt-date": delayed["last-attempt-date"],
        "will-retry-until": delayed["will-retry-until"],
    }
    human = message.get_payload()[0].get_content()  # type: ignore[index]
    assert "do not need to send" in human and "carol@remote.test" in human
    headers = message.get_payload()[2]  # type: ignore[index]
    assert b"Subject: hello" in headers.get_payload(decode=True)


def test_hostile_text_cannot_break_the_structure() -> None:
    evil = FailedRecipient("x@y\r\nBcc: z@w", "4.0.0\r\nX: y",
                           "smtp; 451 \r\n\r\n--=_mailyard_delay_ fake part", "mx\r\n.test")
    data = build_delay_warning(report(delayed=(evil,), sender="a\r\nb@c",
                                      original_headers=b"X: \xff\xfe\r\n.\r\n"))
    message = parse(data)
    assert message["Bcc"] is None
    parts = message.get_payload()
    assert isinstance(parts, list) and len(parts) == 3
    _, delayed = delivery_status(message)
    assert delayed["status"] == "4.0.0"


def test_a_report_needs_a_recipient() -> None:
    with pytest.raises(ValueError):
        build_delay_warning(report(delayed=()))


texts = st.text(max_size=60)


@given(texts, texts, texts, texts, st.binary(max_size=200))
def test_never_crashes_and_always_parses(address: str, status: str, diagnostic: str,
                                         host: str, headers: bytes) -> None:
    item = FailedRecipient(address, status, diagnostic, host or None)
    data = build_delay_warning(report(delayed=(item,), sender=address or "a@b",
                                      original_headers=headers))
    message = parse(data)
    assert message.get_content_type() == "multipart/report"
    assert len(message.get_payload()) == 3  # type: ignore[arg-type]
