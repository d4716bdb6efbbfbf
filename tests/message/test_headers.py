"""mailyard.message.headers: trace fields, the loop marker, the header parser."""

from __future__ import annotations

import email
import email.policy
import email.utils
import locale
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.message.headers import (
    FOLD_WIDTH,
    MAX_LINE,
    PROTOCOLS,
    clean_text,
    delivered_to_header,
    fold_field,
    format_date,
    has_delivered_to,
    iter_fields,
    read_header_block,
    received_header,
    return_path_header,
)

T0 = 1796144400.0  # Tue, 1 Dec 2026 17:00:00 UTC
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=()), max_size=300)


def received(**overrides: object) -> bytes:
    args: dict[str, object] = {
        "from_helo": "client.example",
        "client_ip": "192.0.2.1",
        "client_name": "name",
        "by_host": "mx.example.test",
        "protocol": "ESMTP",
        "queue_id": "QID",
        "recipient": "a@b",
        "timestamp": T0,
    }
    args.update(overrides)
    return received_header(**args)  # type: ignore[arg-type]


def assert_one_field(data: bytes, name: bytes) -> None:
    """CRLF only, lines within limits, and exactly one field (no injection)."""
    assert data.endswith(b"\r\n")
    lines = data[:-2].split(b"\r\n")
    for line in lines:
        assert b"\r" not in line and b"\n" not in line
        assert len(line) <= MAX_LINE
    assert lines[0].startswith(name + b": ")
    assert all(line[:1] in (b" ", b"\t") for line in lines[1:])
    assert [n for n, _ in iter_fields(data)] == [name]
    parsed = email.message_from_bytes(data + b"\r\nbody\r\n", policy=email.policy.default)
    assert parsed.keys() == [name.decode()]
    assert not parsed.defects


# -- Received ---------------------------------------------------------------------


def test_received_example_layout() -> None:
    assert received() == (
        b"Received: from client.example (name [192.0.2.1])\r\n"
        b"\tby mx.example.test (mailyard) with ESMTP id QID\r\n"
        b"\tfor <a@b>; Tue, 1 Dec 2026 17:00:00 +0000\r\n"
    )


def test_received_without_name_or_recipient() -> None:
    # RFC 5321 §4.4: TCP-info may be the address literal alone; without FOR the
    # date follows the last clause.
    assert received(client_name=None, recipient=None) == (
        b"Received: from client.example ([192.0.2.1])\r\n"
        b"\tby mx.example.test (mailyard) with ESMTP id QID;\r\n"
        b"\tTue, 1 Dec 2026 17:00:00 +0000\r\n"
    )


@pytest.mark.parametrize(
    ("ip", "literal"),
    [
        ("2001:DB8:0:0::1", b"([IPv6:2001:db8::1])"),
        ("::ffff:198.51.100.7", b"([198.51.100.7])"),  # dual-stack socket view of IPv4
        ("fe80::1%eth0", b"([IPv6:fe80::1])"),
        ("[192.0.2.9]", b"([192.0.2.9])"),
        ("not an ip", b"(unknown)"),
        ("", b"(unknown)"),
    ],
)
def test_received_client_literal(ip: str, literal: bytes) -> None:
    data = received(client_ip=ip, client_name=None)
    assert data.split(b"\r\n")[0] == b"Received: from client.example " + literal


def test_received_name_with_unknown_ip() -> None:
    assert b"from client.example (name)\r\n" in received(client_ip="?")


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_received_protocols(protocol: str) -> None:
    assert f" with {protocol} id ".encode() in received(protocol=protocol.lower())


def test_received_rfc_protocol_list_is_complete() -> None:
    for name in ("SMTP", "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA",
                 "UTF8SMTP", "UTF8SMTPS", "UTF8SMTPA", "UTF8SMTPSA"):
        assert name in PROTOCOLS


def test_received_unknown_protocol_is_a_bug() -> None:
    with pytest.raises(ValueError, match="protocol"):
        received(protocol="HTTP")


@pytest.mark.parametrize(
    "helo",
    [
        "evil.example\r\nX-Injected: yes",
        "evil.example\nX-Injected: yes",
        "evil.example\rX-Injected: yes",
        "a (fake comment) b",
        "x); Mon, 1 Jan 2001 00:00:00 +0000",
        'quo"te\\d',
        "line\u2028sep\x85nel\x00nul\x1bctl",
    ],
)
def test_received_helo_cannot_inject(helo: str) -> None:
    data = received(from_helo=helo)
    assert_one_field(data, b"Received")
    first = data.split(b"\r\n")[0]
    helo_token = first.split(b" ")[2]
    assert not set(helo_token) & set(b'()<>;"\\ \t')
    # The date stays the only thing after the last ";" (RFC 5322 §3.6.7).
    assert data.rsplit(b";", 1)[1] == b" Tue, 1 Dec 2026 17:00:00 +0000\r\n"


def test_received_keeps_utf8_helo() -> None:
    data = received(from_helo="bücher.example")
    assert data.startswith("Received: from bücher.example (".encode())


def test_received_empty_helo() -> None:
    assert received(from_helo="  ").startswith(b"Received: from unknown (")


def test_received_recipient_cannot_inject() -> None:
    data = received(recipient="a@b>\r\nBcc: victim@example.org")
    assert_one_field(data, b"Received")


def test_received_folds_within_78() -> None:
    for line in received(queue_id="1796144400.123456.42").split(b"\r\n"):
        assert len(line) <= FOLD_WIDTH


def test_received_long_helo_stays_under_998() -> None:
    data = received(from_helo="h" * 5000, client_name="n" * 5000, recipient="r" * 5000 + "@b")
    assert_one_field(data, b"Received")


@given(
    helo=ANY_TEXT,
    ip=st.one_of(st.ip_addresses().map(str), ANY_TEXT),
    name=st.none() | ANY_TEXT,
    recipient=st.none() | ANY_TEXT,
    queue_id=ANY_TEXT,
    timestamp=st.floats(min_value=0, max_value=4e9),
)
def test_received_is_always_one_valid_field(
    helo: str, ip: str, name: str | None, recipient: str | None, queue_id: str, timestamp: float
) -> None:
    data = received(from_helo=helo, client_ip=ip, client_name=name, recipient=recipient,
                    queue_id=queue_id, timestamp=timestamp)
    assert_one_field(data, b"Received")
    # RFC 5322 §3.6.7: the date-time follows the last ";".
    assert data.rsplit(b";", 1)[1].strip() == format_date(timestamp).encode()


# -- dates ------------------------------------------------------------------------


def test_format_date() -> None:
    assert format_date(T0) == "Tue, 1 Dec 2026 17:00:00 +0000"
    assert format_date(0) == "Thu, 1 Jan 1970 00:00:00 +0000"
    assert format_date(T0 + 0.999) == "Tue, 1 Dec 2026 17:00:00 +0000"


@given(st.floats(min_value=0, max_value=4e9))
def test_format_date_round_trips_through_email_utils(timestamp: float) -> None:
    parsed = email.utils.parsedate_to_datetime(format_date(timestamp))
    assert parsed == datetime.fromtimestamp(int(timestamp), tz=UTC)


def test_format_date_ignores_locale() -> None:
    saved = locale.setlocale(locale.LC_TIME)
    try:
        for name in ("de_DE.UTF-8", "fr_FR.UTF-8"):
            try:
                locale.setlocale(locale.LC_TIME, name)
            except locale.Error:
                continue
            assert format_date(T0) == "Tue, 1 Dec 2026 17:00:00 +0000"
    finally:
        locale.setlocale(locale.LC_TIME, saved)


# -- Return-Path, Delivered-To ------------------------------------------------------


def test_return_path() -> None:
    assert return_path_header("sender@example.org") == b"Return-Path: <sender@example.org>\r\n"
    # RFC 5321 §4.4: the null reverse-path of a bounce.
    assert return_path_header("") == b"Return-Path: <>\r\n"


def test_delivered_to() -> None:
    assert delivered_to_header("joe@example.org") == b"Delivered-To: joe@example.org\r\n"


@given(ANY_TEXT)
def test_return_path_and_delivered_to_are_one_field(address: str) -> None:
    assert_one_field(return_path_header(address), b"Return-Path")
    assert_one_field(delivered_to_header(address), b"Delivered-To")


@pytest.mark.parametrize(
    "block",
    [
        b"Delivered-To: joe@example.org\r\n\r\n",
        b"DELIVERED-TO: joe@example.org\r\n\r\n",
        b"delivered-to:joe@example.org\r\n\r\n",
        b"Delivered-To: JOE@Example.ORG\r\n\r\n",
        b"Delivered-To:\r\n   joe@example.org\r\n\r\n",
        b"Delivered-To: <joe@example.org>\r\n\r\n",
        b"Subject: x\r\nDelivered-To: other@example.org\r\nDelivered-To: joe@example.org\r\n\r\n",
        b"Delivered-To : joe@example.org\r\n\r\n",
        b"Delivered-To: joe@example.org\n\n",
        b"Delivered-To: joe@example.org",  # a truncated peek
    ],
)
def test_has_delivered_to_matches(block: bytes) -> None:
    assert has_delivered_to(block, "joe@example.org")


@pytest.mark.parametrize(
    "block",
    [
        b"X-Delivered-To: joe@example.org\r\n\r\n",
        b"Delivered-To-Extra: joe@example.org\r\n\r\n",
        b"Subject: Delivered-To: joe@example.org\r\n\r\n",
        b"Subject: x\r\n Delivered-To: joe@example.org\r\n\r\n",  # a continuation line
        b"Delivered-To: joe@example.org.evil\r\n\r\n",
        b"Delivered-To: joe@example.org, x@y\r\n\r\n",
        b"Delivered-To: xjoe@example.org\r\n\r\n",
        b"Subject: x\r\n\r\nDelivered-To: joe@example.org\r\n",  # in the body
        b"",
    ],
)
def test_has_delivered_to_look_alikes(block: bytes) -> None:
    assert not has_delivered_to(block, "joe@example.org")


def test_has_delivered_to_idna_and_utf8() -> None:
    block = b"Delivered-To: J\xc3\xb6e@xn--bcher-kva.de\r\n\r\n"
    assert has_delivered_to(block, "jöe@Bücher.de")
    assert has_delivered_to("Delivered-To: jöe@bücher.de\r\n\r\n".encode(), "JÖE@xn--bcher-kva.de")
    assert not has_delivered_to("Delivered-To: joe@bücher.de\r\n\r\n".encode(), "jöe@bücher.de")


def test_has_delivered_to_quoted_local_part() -> None:
    assert has_delivered_to(b'Delivered-To: "a b"@example.org\r\n\r\n', '"A B"@example.org')


@given(st.binary(max_size=500), ANY_TEXT)
def test_has_delivered_to_never_raises(block: bytes, recipient: str) -> None:
    has_delivered_to(block, recipient)


# -- read_header_block ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "block"),
    [
        (b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore", b"A: 1\r\nB: 2\r\n\r\n"),
        (b"A: 1\r\nB: 2\r\n", b"A: 1\r\nB: 2\r\n"),  # no empty line: a truncated peek
        (b"A: 1\r\nB: 2", b"A: 1\r\nB: 2"),
        (b"\r\nbody\r\n\r\n", b"\r\n"),  # no header fields at all
        (b"\r\n", b"\r\n"),
        (b"", b""),
        (b"A: 1\nB: 2\n\nbody\n", b"A: 1\nB: 2\n\nbody\n"),  # bare LF is left as is
        (b"A: 1\r\n\r\n", b"A: 1\r\n\r\n"),
    ],
)
def test_read_header_block(data: bytes, block: bytes) -> None:
    assert read_header_block(data) == block


@given(st.binary(max_size=300))
def test_read_header_block_is_a_prefix(data: bytes) -> None:
    block = read_header_block(data)
    assert data.startswith(block)
    assert block == data or block.endswith(b"\r\n\r\n") or block == b"\r\n"


# -- iter_fields -------------------------------------------------------------------


def test_iter_fields_basic_and_folded() -> None:
    block = (
        b"Subject: hello\r\n"
        b"To: a@b,\r\n"
        b"\tc@d\r\n"
        b"X-Empty:\r\n"
        b"Received: from x\r\n    by y\r\n"
        b"\r\n"
        b"Body: not a field\r\n"
    )
    assert list(iter_fields(block)) == [
        (b"Subject", b"hello"),
        (b"To", b"a@b,\tc@d"),
        (b"X-Empty", b""),
        (b"Received", b"from x    by y"),
    ]


def test_iter_fields_tolerates_junk() -> None:
    block = (
        b"  leading continuation\r\n"
        b"From sender Mon Jan  1 00:00:00 2001\r\n"  # mbox separator: not a field
        b": no name\r\n"
        b"bad name: x\r\n"
        b"Good: 1\r\n"
        b"no colon at all\r\n"
        b"Subject : obsolete space\r\n"
        b"Last: 2"
    )
    assert list(iter_fields(block)) == [
        (b"Good", b"1"),
        (b"Subject", b"obsolete space"),
        (b"Last", b"2"),
    ]


def test_iter_fields_bare_lf_and_cr() -> None:
    assert list(iter_fields(b"A: 1\nB: 2\n c\n\nC: 3\n")) == [(b"A", b"1"), (b"B", b"2 c")]


@given(st.binary(max_size=1000))
def test_iter_fields_never_raises(data: bytes) -> None:
    for name, value in iter_fields(data):
        assert name and b":" not in name
        assert b"\n" not in value


FIELD_NAME = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters=":"),
    min_size=1, max_size=30,
)


@given(st.lists(st.tuples(FIELD_NAME, ANY_TEXT), max_size=8))
def test_fold_field_round_trips_through_iter_fields(fields: list[tuple[str, str]]) -> None:
    block = b"".join(fold_field(name, value) for name, value in fields) + b"\r\n"
    parsed = list(iter_fields(block))
    assert [n.decode() for n, _ in parsed] == [name for name, _ in fields]
    for (_, value), (_, raw) in zip(fields, parsed, strict=True):
        flat = value.replace("\r", " ").replace("\n", " ").replace("\t", " ")
        words = clean_text(flat, limit=len(flat)).split()
        text = raw.decode("utf-8")
        if all(len(word.encode()) <= 900 for word in words):
            assert text == " ".join(words)
        else:  # a huge word was split in two at a folding point
            assert text.replace(" ", "") == "".join(words)


# -- fold_field -------------------------------------------------------------------


def test_fold_field_short_words_stay_within_78() -> None:
    data = fold_field("Diagnostic-Code", "smtp; 550 5.1.1 " + "mailbox unavailable " * 20)
    lines = data[:-2].split(b"\r\n")
    assert len(lines) > 1
    assert all(len(line) <= FOLD_WIDTH for line in lines)
    unfolded = b"".join(lines).decode()
    assert unfolded == "Diagnostic-Code: smtp; 550 5.1.1 " + " ".join(["mailbox unavailable"] * 20)


def test_fold_field_never_folds_before_first_word() -> None:
    assert fold_field("Subject", "x" * 100) == b"Subject: " + b"x" * 100 + b"\r\n"


def test_fold_field_splits_huge_words() -> None:
    data = fold_field("X", "é" * 3000)
    assert_one_field(data, b"X")
    assert b"".join(data[:-2].split(b"\r\n ")).decode() == "X: " + "é" * 3000


def test_fold_field_empty() -> None:
    assert fold_field("X-Empty", "") == b"X-Empty:\r\n"


@given(FIELD_NAME, ANY_TEXT.filter(lambda v: bool(v.split())))
def test_fold_field_is_one_field(name: str, value: str) -> None:
    assert_one_field(fold_field(name, value), name.encode())


def test_clean_text() -> None:
    assert clean_text("a\r\nb\tc\x00d\u2028e\u202ef g") == "a??b?c?d?e?f g"
    assert clean_text("x" * 50, limit=10) == "x" * 10
