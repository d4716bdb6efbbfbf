"""mailyard.message.subject: RFC 5256 base subject and i;unicode-casemap."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.message.subject import BaseSubject, base_subject, collation_key


@pytest.mark.parametrize(
    ("raw", "text", "is_reply"),
    [
        (b"hello", "hello", False),
        (b"Re: hello", "hello", True),
        (b"RE: re: Re: hello", "hello", True),  # (3) repeats
        (b"Fwd: hello", "hello", True),
        (b"fw: hello", "hello", True),
        (b"Re : hello", "hello", True),  # subj-refwd allows WSP before ":"
        (b"Re[2]: hello", "hello", True),  # ... and a blob
        (b"[list] Re: hello", "hello", True),  # subj-leader: blobs before subj-refwd
        (b"Re: [list] hello", "hello", True),  # (4): a blob with text after it
        (b"[list] hello", "hello", False),
        (b"[blob]", "[blob]", False),  # (4) keeps a blob that is all there is
        (b"[a] [b]", "[b]", False),
        (b"hello (fwd)", "hello", True),  # (2) subj-trailer
        (b"hello (FWD) (fwd)  ", "hello", True),
        (b"[fwd: hello]", "hello", True),  # (6)
        (b"[Fwd: Re: [list] hello (fwd)]", "hello", True),  # (6) then again from (2)
        (b"Re: [fwd: re: [x] y (fwd)]", "y", True),
        (b"Re:", "", True),
        (b"", "", False),
        (b"   ", "", False),
        (b"hello\tworld  again", "hello world again", False),  # (1) white space
        (b"=?utf-8?q?Re=3A_caf=C3=A9?=", "café", True),  # (1) encoded words first
        (b"Reply to this", "Reply to this", False),  # "re" needs its ":"
        (b"Subject with (fwd) inside", "Subject with (fwd) inside", False),
        (b"fwd: [fwd: x]", "x", True),
    ],
)
def test_base_subject(raw: bytes, text: str, is_reply: bool) -> None:
    assert base_subject(raw) == BaseSubject(text, is_reply)


def test_absent_subject_is_empty() -> None:
    assert base_subject(None) == BaseSubject("", False)


_SUBJECT_TEXT = st.text(alphabet="abRrEeFfWwDd[]():  x", max_size=30)


@given(_SUBJECT_TEXT)
def test_base_subject_is_stable(text: str) -> None:
    once = base_subject(text.encode()).text
    assert base_subject(once.encode()).text == once


@given(st.binary(max_size=200))
def test_base_subject_never_raises(raw: bytes) -> None:
    assert isinstance(base_subject(raw).text, str)


def test_collation() -> None:
    assert collation_key("Hello") == collation_key("hELLO")
    assert collation_key("") < collation_key("a")  # RFC 5256: empty collates first
    assert collation_key("abc") < collation_key("ABD")
    assert collation_key("éclair") == collation_key("ÉCLAIR")
    # RFC 5051: decomposition makes "é" sort with "e", before "f".
    assert collation_key("e") < collation_key("é") < collation_key("f")


@given(st.text(alphabet="abcXYZ éÉøØ-1", max_size=30))
def test_collation_ignores_case(text: str) -> None:
    assert collation_key(text) == collation_key(text.swapcase())
