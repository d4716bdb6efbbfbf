"""mailyard.message.dsn: RFC 3464 bounces, parsed back with the stdlib email package."""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.message import dsn
from mailyard.message.dsn import (
    MAX_ORIGINAL_HEADERS,
    FailedRecipient,
    build_bounce,
    build_double_bounce,
)

NOW = 1796144400.0  # Tue, 1 Dec 2026 17:00:00 UTC
ARRIVAL = NOW - 3600
ORIGINAL = (
    b"Received: from client.example ([192.0.2.1])\r\n"
    b"\tby mx.example.test (mailyard) with ESMTP id Q1\r\n"
    b"From: Sender <sender@example.org>\r\n"
    b"To: joe@example.org\r\n"
    b"Subject: hello\r\n"
    b"Message-ID: <orig@example.org>\r\n"
    b"\r\n"
)
UNKNOWN = FailedRecipient("joe@example.org", "5.1.1", "x-mailyard; no such user here", None)
REMOTE = FailedRecipient(
    "ann@remote.example", "5.1.1", "smtp; 550 5.1.1 <ann@remote.example>: no such user",
    "mx1.remote.example",
)
TOP_FIELDS = ["From", "To", "Reply-To", "Subject", "Date", "Message-ID", "MIME-Version",
              "Auto-Submitted", "Content-Type"]
PART_TYPES = ["text/plain", "message/delivery-status", "text/rfc822-headers"]
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=()), max_size=200)


def bounce(**overrides: Any) -> bytes:
    args: dict[str, Any] = {
        "reporting_mta": "mx.example.test",
        "postmaster_from": "postmaster@mx.example.test",
        "original_sender": "sender@example.org",
        "failed": [UNKNOWN, REMOTE],
        "original_headers": ORIGINAL,
        "queue_id": "Q1",
        "arrival": ARRIVAL,
        "now": NOW,
        "message_id_host": "mx.example.test",
        "boundary_seed": "Q1.4242",
    }
    args.update(overrides)
    return build_bounce(**args)


def double_bounce(**overrides: Any) -> bytes:
    args: dict[str, Any] = {
        "reporting_mta": "mx.example.test",
        "postmaster": "postmaster@mx.example.test",
        "failed": [UNKNOWN],
        "original_headers": ORIGINAL,
        "queue_id": "Q2",
        "arrival": ARRIVAL,
        "now": NOW,
        "message_id_host": "mx.example.test",
        "boundary_seed": "Q2.4242",
    }
    args.update(overrides)
    return build_double_bounce(**args)


def assert_wire(data: bytes) -> None:
    """CRLF line ends only, every line within RFC 5322's 998 octets, and a
    7-bit body (only the header section may carry RFC 6532 UTF-8)."""
    assert data.endswith(b"\r\n")
    lines = data[:-2].split(b"\r\n")
    for line in lines:
        assert b"\r" not in line and b"\n" not in line
        assert len(line) <= 998
    body = data.split(b"\r\n\r\n", 1)[1]
    assert body.isascii()


def parse(data: bytes, fields: list[str] = TOP_FIELDS) -> tuple[EmailMessage, list[EmailMessage]]:
    """Parse a bounce and check its whole shape: exactly these top fields,
    multipart/report with three parts and no MIME defects anywhere."""
    assert_wire(data)
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg.keys() == fields
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert not msg.defects
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == PART_TYPES
    for part in parts:
        assert isinstance(part, EmailMessage)
        assert not part.defects
        assert set(part.keys()) <= {"Content-Type", "Content-Transfer-Encoding",
                                    "Content-Description"}
    boundary = msg.get_boundary()
    assert boundary is not None and 0 < len(boundary) <= 70  # RFC 2046 §5.1.1
    assert data.count(f"--{boundary}".encode()) == 4
    return msg, parts  # type: ignore[return-value]


def status_blocks(part: EmailMessage) -> list[list[tuple[str, str]]]:
    payload = part.get_payload()
    assert isinstance(payload, list)
    return [[(k, str(v)) for k, v in block.items()] for block in payload]


# -- the ordinary bounce ---------------------------------------------------------------


def test_bounce_top_fields() -> None:
    msg, _ = parse(bounce())
    sender = msg["From"].addresses[0]
    assert sender.display_name == "Mail Delivery System"
    assert sender.addr_spec == "MAILER-DAEMON@mx.example.test"
    assert msg["To"].addresses[0].addr_spec == "sender@example.org"
    assert msg["Reply-To"].addresses[0].addr_spec == "postmaster@mx.example.test"
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert email.utils.parsedate_to_datetime(msg["Date"]).timestamp() == NOW
    assert msg["MIME-Version"] == "1.0"
    # RFC 3834 §5.2: auto-replied, never auto-generated, on a DSN.
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Message-ID"].startswith("<1796144400.")
    assert msg["Message-ID"].endswith("@mx.example.test>")


def test_bounce_human_part_names_every_recipient() -> None:
    _, parts = parse(bounce())
    text = parts[0].get_content()
    assert "mx.example.test" in text
    assert "2 recipients" in text
    assert "<joe@example.org>" in text and "no such user here (status 5.1.1)" in text
    assert "<ann@remote.example>" in text
    assert "mx1.remote.example said: 550 5.1.1 <ann@remote.example>: no such user" in " ".join(
        text.split()
    )
    assert "Q1" in text and "postmaster@mx.example.test" in text
    assert parts[0]["Content-Transfer-Encoding"] == "quoted-printable"
    assert parts[0].get_content_charset() == "utf-8"


def test_bounce_delivery_status_fields() -> None:
    _, parts = parse(bounce())
    blocks = status_blocks(parts[1])
    assert blocks == [
        [
            ("Reporting-MTA", "dns; mx.example.test"),
            ("X-Mailyard-Queue-ID", "Q1"),
            ("Arrival-Date", "Tue, 1 Dec 2026 16:00:00 +0000"),
        ],
        [
            ("Final-Recipient", "rfc822; joe@example.org"),
            ("Action", "failed"),
            ("Status", "5.1.1"),
            ("Diagnostic-Code", "x-mailyard; no such user here"),
            ("Last-Attempt-Date", "Tue, 1 Dec 2026 17:00:00 +0000"),
        ],
        [
            ("Final-Recipient", "rfc822; ann@remote.example"),
            ("Action", "failed"),
            ("Status", "5.1.1"),
            ("Remote-MTA", "dns; mx1.remote.example"),
            ("Diagnostic-Code", "smtp; 550 5.1.1 <ann@remote.example>: no such user"),
            ("Last-Attempt-Date", "Tue, 1 Dec 2026 17:00:00 +0000"),
        ],
    ]


def test_bounce_returns_original_headers() -> None:
    _, parts = parse(bounce())
    # The header section without its terminating empty line (RFC 6522 §4).
    assert parts[2].get_content() == ORIGINAL[:-2].decode()
    assert "Content-Transfer-Encoding" not in parts[2]


def test_one_recipient_wording() -> None:
    _, parts = parse(bounce(failed=[UNKNOWN]))
    assert "one recipient" in parts[0].get_content()
    assert len(status_blocks(parts[1])) == 2


def test_no_failed_recipient_is_a_bug() -> None:
    with pytest.raises(ValueError):
        bounce(failed=[])


def test_non_ascii_recipient_uses_utf8_address_type() -> None:
    failed = FailedRecipient("jöe@bücher.de", "5.4.6", "x-mailyard; mail loop: jöe", None)
    _, parts = parse(bounce(failed=[failed]))
    block = dict(status_blocks(parts[1])[1])
    # RFC 6533 §3: utf-8-addr-xtext keeps message/delivery-status 7-bit.
    assert block["Final-Recipient"] == "utf-8; j\\x{F6}e@b\\x{FC}cher.de"
    assert block["Diagnostic-Code"] == "x-mailyard; mail loop: j\\x{F6}e"
    assert "<jöe@bücher.de>" in parts[0].get_content()
    assert "mail loop: jöe" in parts[0].get_content()


def test_xtext_escapes_specials() -> None:
    failed = FailedRecipient('"a b+c=d\\e"@x.example', "5.1.1", "x", None)
    _, parts = parse(bounce(failed=[failed]))
    assert dict(status_blocks(parts[1])[1])["Final-Recipient"] == (
        'utf-8; "a\\x{20}b\\x{2B}c\\x{3D}d\\x{5C}e"@x.example'
    )


def test_utf8_sender_in_to() -> None:
    data = bounce(original_sender="jöe@bücher.de")
    parse(data)
    # RFC 6532: UTF-8 in the header field (the stdlib parser reads header
    # bytes as ASCII with surrogate escapes, so check the octets).
    assert "\r\nTo: <jöe@xn--bcher-kva.de>\r\n".encode() in data


def test_unusable_sender_gives_empty_group() -> None:
    msg, _ = parse(bounce(original_sender="not an address\r\nBcc: victim@example.org"))
    assert msg["To"].addresses == ()


def test_bad_status_and_untyped_diagnostic() -> None:
    failed = FailedRecipient("joe@example.org", "5.1.1\r\nX: y", "just text", None)
    _, parts = parse(bounce(failed=[failed]))
    block = dict(status_blocks(parts[1])[1])
    assert block["Status"] == "5.0.0"
    assert block["Diagnostic-Code"] == "x-mailyard; just text"
    failed = FailedRecipient("joe@example.org", "5.\u0661.1", "SMTP ; 550 x", None)
    block = dict(status_blocks(parse(bounce(failed=[failed]))[1][1])[1])
    assert block["Status"] == "5.0.0"  # RFC 3463: ASCII digits only
    assert block["Diagnostic-Code"] == "smtp; 550 x"


def test_expired_temporary_status_is_kept() -> None:
    failed = FailedRecipient("joe@example.org", "4.4.7", "x-mailyard; gave up", None)
    _, parts = parse(bounce(failed=[failed]))
    assert dict(status_blocks(parts[1])[1])["Status"] == "4.4.7"


def test_remote_diagnostic_cannot_inject() -> None:
    hostile = (
        "smtp; 550 no\r\n\r\nFinal-Recipient: rfc822; evil@x\r\n--=_mailyard_\r\n"
        "Content-Type: text/html\r\n\r\n<b>hi</b>"
    )
    failed = FailedRecipient("joe@example.org", "5.1.1", hostile, "mx\r\nX-Evil: 1")
    _, parts = parse(bounce(failed=[failed]))
    blocks = status_blocks(parts[1])
    assert len(blocks) == 2
    assert [k for k, _ in blocks[1]] == ["Final-Recipient", "Action", "Status", "Remote-MTA",
                                         "Diagnostic-Code", "Last-Attempt-Date"]


def test_long_diagnostic_is_folded_and_capped() -> None:
    failed = FailedRecipient("joe@example.org", "5.1.1", "smtp; 550 " + "word " * 2000, "mx.x")
    data = bounce(failed=[failed])
    _, parts = parse(data)
    code = dict(status_blocks(parts[1])[1])["Diagnostic-Code"]
    assert code.startswith("smtp; 550 word word")
    assert len(code) <= 2100
    section = data.split(b"Diagnostic-Code:")[1].split(b"Last-Attempt-Date")[0]
    assert all(len(line) <= 78 for line in section.split(b"\r\n"))


def test_original_headers_capped_at_line_end() -> None:
    line = b"X-Filler: " + b"f" * 90 + b"\r\n"
    original = line * (2 * MAX_ORIGINAL_HEADERS // len(line)) + b"\r\n"
    data = bounce(original_headers=original)
    _, parts = parse(data)
    returned = parts[2].get_content()
    assert 0 < len(returned) <= MAX_ORIGINAL_HEADERS
    assert set(returned.splitlines()) == {line[:-2].decode()}


def test_original_headers_normalised() -> None:
    original = b"A: 1\nB: 2\rC: 3\r\n\tcont\n\nbody line\r\n"
    _, parts = parse(bounce(original_headers=original))
    assert parts[2].get_content().splitlines() == ["A: 1", "B: 2", "C: 3", "\tcont"]


def test_long_original_header_line_is_folded() -> None:
    original = b"X-Long: " + b"y" * 5000 + b"\r\n\r\n"
    data = bounce(original_headers=original)
    _, parts = parse(data)
    lines = parts[2].get_content().splitlines()
    assert len(lines) > 1 and all(line.startswith(" ") for line in lines[1:])
    assert "".join(line.removeprefix(" ") for line in lines) == original[:-4].decode()


def test_8bit_original_headers_are_quoted_printable() -> None:
    original = "Subject: grüße\r\nX-Nul: a\x00b\r\n\r\n".encode()
    _, parts = parse(bounce(original_headers=original))
    assert parts[2]["Content-Transfer-Encoding"] == "quoted-printable"
    assert parts[2].get_content_charset() == "utf-8"
    assert parts[2].get_content() == "Subject: grüße\r\nX-Nul: a\x00b\r\n"
    _, parts = parse(bounce(original_headers=b"X-Latin1: gr\xfc\xdfe\r\n\r\n"))
    assert parts[2].get_payload(decode=True) == b"X-Latin1: gr\xfc\xdfe\r\n"


def test_empty_original_headers() -> None:
    for original in (b"", b"\r\n", b"\r\nbody"):
        _, parts = parse(bounce(original_headers=original))
        assert parts[2].get_content() == ""


def test_deterministic_and_seeded() -> None:
    assert bounce() == bounce()
    other = bounce(boundary_seed="Q1.4243")
    first = email.message_from_bytes(bounce(), policy=email.policy.default)
    second = email.message_from_bytes(other, policy=email.policy.default)
    assert first.get_boundary() != second.get_boundary()
    assert first["Message-ID"] != second["Message-ID"]
    third = email.message_from_bytes(bounce(now=NOW + 1), policy=email.policy.default)
    assert third["Message-ID"] != first["Message-ID"]


def test_boundary_varies_until_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    # Make the candidates predictable (independent of the content) to plant
    # the first two in the original headers; the builder must pick the third.
    def predictable(*values: str) -> str:
        return hashlib.sha256(values[-1].encode()).hexdigest()

    monkeypatch.setattr(dsn, "_digest", predictable)
    planted = [f"=_mailyard_{predictable(str(n))[:32]}" for n in range(2)]
    original = b"".join(f"X-Trap: --{b}\r\n".encode() for b in planted) + b"\r\n"
    data = bounce(original_headers=original)
    msg, _ = parse(data)
    assert msg.get_boundary() == f"=_mailyard_{predictable('2')[:32]}"


def test_odd_host_names() -> None:
    msg, _ = parse(bounce(reporting_mta="bad host\r\nX: y", message_id_host="[192.0.2.1]"))
    assert msg["From"].addresses[0].addr_spec == "MAILER-DAEMON@mailyard.invalid"
    assert msg["Message-ID"].endswith("@[192.0.2.1]>")
    msg, _ = parse(bounce(reporting_mta="Bücher.example", message_id_host="x y"))
    assert msg["From"].addresses[0].domain == "xn--bcher-kva.example"
    assert msg["Message-ID"].endswith("@mailyard.invalid>")


def test_bad_postmaster_drops_reply_to() -> None:
    fields = [f for f in TOP_FIELDS if f != "Reply-To"]
    parse(bounce(postmaster_from="nobody"), fields)


# -- the double bounce -----------------------------------------------------------------


def test_double_bounce() -> None:
    fields = [f for f in TOP_FIELDS if f != "Reply-To"]
    msg, parts = parse(double_bounce(), fields)
    assert msg["To"].addresses[0].addr_spec == "postmaster@mx.example.test"
    assert msg["From"].addresses[0].addr_spec == "MAILER-DAEMON@mx.example.test"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert "postmaster" in msg["Subject"].lower()
    text = " ".join(parts[0].get_content().split())
    assert "envelope sender was empty (<>)" in text
    assert "postmaster" in text
    assert "<joe@example.org>" in text
    blocks = status_blocks(parts[1])
    assert dict(blocks[0])["X-Mailyard-Queue-ID"] == "Q2"
    assert dict(blocks[1])["Final-Recipient"] == "rfc822; joe@example.org"


def test_double_bounce_needs_a_failure() -> None:
    with pytest.raises(ValueError):
        double_bounce(failed=())


# -- properties ----------------------------------------------------------------------

FAILED = st.builds(
    FailedRecipient,
    address=ANY_TEXT,
    status=st.one_of(st.sampled_from(["5.1.1", "4.4.7", "5.4.6"]), ANY_TEXT),
    diagnostic=st.one_of(ANY_TEXT, ANY_TEXT.map(lambda t: f"smtp; 550 {t}")),
    remote_mta=st.none() | ANY_TEXT,
)


@settings(max_examples=150, deadline=None)
@given(
    failed=st.lists(FAILED, min_size=1, max_size=5),
    sender=ANY_TEXT,
    postmaster=ANY_TEXT,
    original=st.binary(max_size=2000),
    queue_id=ANY_TEXT,
    seed=ANY_TEXT,
    double=st.booleans(),
)
def test_any_input_gives_a_valid_report(
    failed: list[FailedRecipient], sender: str, postmaster: str, original: bytes,
    queue_id: str, seed: str, double: bool,
) -> None:
    if double:
        data = double_bounce(failed=failed, postmaster=postmaster, original_headers=original,
                             queue_id=queue_id, boundary_seed=seed)
        fields = [f for f in TOP_FIELDS if f != "Reply-To"]
    else:
        data = bounce(failed=failed, original_sender=sender, postmaster_from=postmaster,
                      original_headers=original, queue_id=queue_id, boundary_seed=seed)
        fields = TOP_FIELDS if dsn._mailbox(postmaster) else [
            f for f in TOP_FIELDS if f != "Reply-To"
        ]
    _, parts = parse(data, fields)
    blocks = status_blocks(parts[1])
    assert len(blocks) == 1 + len(failed)
    assert [k for k, _ in blocks[0]] == ["Reporting-MTA", "X-Mailyard-Queue-ID", "Arrival-Date"]
    for item, block in zip(failed, blocks[1:], strict=True):
        names = [k for k, _ in block]
        expected = ["Final-Recipient", "Action", "Status", "Diagnostic-Code",
                    "Last-Attempt-Date"]
        if item.remote_mta:
            expected.insert(3, "Remote-MTA")
        assert names == expected
        values = dict(block)
        assert values["Action"] == "failed"
        assert values["Final-Recipient"].startswith(("rfc822; ", "utf-8; "))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=120).filter(lambda b: not set(b) & set(b"\r\n")),
                max_size=20))
def test_original_header_lines_come_back(lines: list[bytes]) -> None:
    original = b"".join(line + b"\r\n" for line in lines) + b"\r\n"
    _, parts = parse(bounce(original_headers=original))
    payload = parts[2].get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert payload == b"".join(line + b"\r\n" for line in lines)
