"""render.py fast paths: date_time for seconds since the epoch (cached days,
tabled clock) writes what the datetime path writes (RFC 9051 §9 date-time);
Values.string quotes exactly what the grammar lets be quoted."""

from __future__ import annotations

import datetime
import re

from hypothesis import given
from hypothesis import strategies as st

from mailyard.proto.imap.render import Values, date_time


@given(st.integers(0, 253402300799))  # up to the end of year 9999
def test_seconds_render_as_their_utc_datetime(seconds: int) -> None:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    assert date_time(seconds) == date_time(moment)
    assert date_time(seconds + 0.75) == date_time(moment)


def test_examples() -> None:
    assert date_time(0) == b" 1-Jan-1970 00:00:00 +0000"
    assert date_time(1700000123) == b"14-Nov-2023 22:15:23 +0000"
    assert date_time(86399) == b" 1-Jan-1970 23:59:59 +0000"


def _reference_string(raw: bytes, utf8: bool) -> bytes:
    """RFC 9051 §4.3: quoted when short, without CR, LF or NUL, and 7-bit
    (or valid UTF-8 once UTF-8 is enabled); a literal otherwise."""
    quotable = len(raw) <= 1024 and not re.search(rb"[\x00\r\n]", raw)
    seven_bit = not re.search(rb"[\x80-\xff]", raw)
    try:
        raw.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    if quotable and (seven_bit or (utf8 and valid)):
        return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(raw) + raw


@given(st.binary(max_size=40) | st.binary(min_size=1020, max_size=1030)
       | st.sampled_from([b'a"b\\c', b"caf\xc3\xa9", b"\xff", b"a\rb", b""]), st.booleans())
def test_string_quotes_as_the_grammar_says(raw: bytes, utf8: bool) -> None:
    values = Values()
    values.utf8 = utf8
    assert values.string(raw) == _reference_string(raw, utf8)
