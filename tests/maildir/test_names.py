"""Maildir names: unique-name format, info suffix, S= size, POP3 UIDL."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard import fsio
from mailyard.maildir import names

hostnames = st.text(max_size=300)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)
small = st.integers(min_value=0, max_value=2**31)
sizes = st.integers(min_value=0, max_value=2**40)
flags = st.text(alphabet="DFPRSTabcz", max_size=10)


def test_format_of_a_name() -> None:
    name = names.delivery_name(now=1700000000.25, pid=4242, counter=7, hostname="mx.example",
                               size=1234)
    assert name == "1700000000.M250000P4242Q7.mx.example,S=1234"


def test_host_escapes() -> None:
    # Maildir spec: "/" as \057 and ":" as \072.
    assert names.escape_host("a/b:c") == "a\\057b\\072c"
    assert names.escape_host("a,b\\c") == "a\\054b\\134c"
    assert names.escape_host("é ") == "\\303\\251\\040"
    assert names.escape_host("mx-1.example") == "mx-1.example"


def test_microseconds_never_overflow() -> None:
    name = names.delivery_name(now=1.9999999999, pid=1, counter=1, hostname="h", size=0)
    secs, usec = names.delivery_stamp(name) or (None, None)
    assert usec is not None and 0 <= usec <= 999_999
    assert secs in (1, 2)


def test_negative_values_are_refused() -> None:
    with pytest.raises(ValueError):
        names.delivery_name(now=1.0, pid=1, counter=1, hostname="h", size=-1)


@given(now=times, pid=small, counter=small, hostname=hostnames, size=sizes)
def test_round_trip(now: float, pid: int, counter: int, hostname: str, size: int) -> None:
    name = names.delivery_name(now=now, pid=pid, counter=counter, hostname=hostname, size=size)
    assert names.split_info(name) == (name, "")
    assert names.size_from_name(name) == size
    assert names.delivery_stamp(name) == divmod(int(now * 1_000_000), 1_000_000)
    # Always one safe, printable-ASCII path component, with room for info.
    assert fsio.safe_component(name) == name
    assert re.fullmatch(r"[!-~]+", name)
    assert len(name) <= names.MAX_BASE
    assert "/" not in name and ":" not in name


@given(now=times, pid=small, counter=small, hostname=hostnames, size=sizes, info=flags)
def test_round_trip_through_cur(now: float, pid: int, counter: int, hostname: str, size: int,
                                info: str) -> None:
    base = names.delivery_name(now=now, pid=pid, counter=counter, hostname=hostname, size=size)
    cur = names.with_info(base, info)
    assert names.split_info(cur) == (base, "".join(sorted(set(info))))
    assert names.size_from_name(cur) == size
    assert len(cur.encode()) <= 255
    assert names.uidl_for(names.split_info(cur)[0]) == names.uidl_for(base)


@given(counter_a=small, counter_b=small, hostname=hostnames)
def test_names_differ_by_counter(counter_a: int, counter_b: int, hostname: str) -> None:
    a = names.delivery_name(now=5.0, pid=9, counter=counter_a, hostname=hostname, size=1)
    b = names.delivery_name(now=5.0, pid=9, counter=counter_b, hostname=hostname, size=1)
    assert (a == b) == (counter_a == counter_b)


def test_split_info_forms() -> None:
    assert names.split_info("base:2,S") == ("base", "S")
    assert names.split_info("base:2,") == ("base", "")
    assert names.split_info("base") == ("base", "")
    assert names.split_info("base:1,experimental") == ("base", "")
    assert names.with_info("base", "TSD") == "base:2,DST"


def test_size_from_name_forms() -> None:
    assert names.size_from_name("1.M2P3Q4.h,S=99:2,S") == 99
    assert names.size_from_name("1.M2P3Q4.h,S=99,W=101:2,S") == 99
    assert names.size_from_name("1.M2P3Q4.h") is None
    assert names.size_from_name("1.M2P3Q4.h,S=") is None
    assert names.size_from_name("1.M2P3Q4.h,S=12x") is None
    assert names.size_from_name("1.M2P3Q4.h,S=-5") is None
    # Not a field: the text before the first comma is the unique part.
    assert names.size_from_name("S=5") is None


@given(st.text())
def test_parsers_never_crash(text: str) -> None:
    names.split_info(text)
    names.size_from_name(text)
    names.delivery_stamp(text)


def _valid_uidl(uid: str) -> bool:
    # RFC 1939 §7: 1 to 70 characters in 0x21..0x7E.
    return 1 <= len(uid) <= 70 and all(0x21 <= ord(ch) <= 0x7E for ch in uid)


@given(st.text())
def test_uidl_always_valid_and_deterministic(base: str) -> None:
    uid = names.uidl_for(base)
    assert _valid_uidl(uid)
    assert names.uidl_for(base) == uid


def test_uidl_is_the_base_when_it_qualifies() -> None:
    short = names.delivery_name(now=1700000000.5, pid=1, counter=2, hostname="mx", size=10)
    assert names.uidl_for(short) == short
    long = names.delivery_name(now=1700000000.5, pid=1, counter=2, hostname="m" * 100, size=10)
    assert names.uidl_for(long) != long and _valid_uidl(names.uidl_for(long))
    assert names.uidl_for("") != "" and _valid_uidl(names.uidl_for(""))
    assert names.uidl_for("with space") != names.uidl_for("with  space")
