"""The maildrop's one-call reads, the deferred uid-list sync and the UIDL fast path (issue 7)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.maildir import drop as drop_module
from mailyard.maildir import names
from mailyard.maildir.deliver import deliver, ensure_maildir
from mailyard.maildir.drop import Maildrop
from tests.maildir.storehelp import read_uidlist


def _deliver(box: Path, text: bytes) -> str:
    ensure_maildir(str(box))
    return deliver(str(box), b"", io.BytesIO(text), len(text), hostname="mx.example")


@pytest.fixture
def box(tmp_path: Path) -> Path:
    return tmp_path / "mail" / "example.test" / "u"


def test_read_start_gives_a_small_message_whole(box: Path) -> None:
    _deliver(box, b"Subject: s\r\n\r\nsmall\r\n")
    with Maildrop.open(str(box)) as drop:
        data, handle = drop.read_start(0, 65536)
        assert (data, handle) == (b"Subject: s\r\n\r\nsmall\r\n", None)


def test_read_start_hands_over_the_rest_of_a_large_one(box: Path) -> None:
    text = b"x" * 10_000 + b"\r\n"
    _deliver(box, text)
    with Maildrop.open(str(box)) as drop:
        data, handle = drop.read_start(0, 4096)
        assert data == text[:4096] and handle is not None
        with handle:
            assert data + handle.read() == text
        exact, rest = drop.read_start(0, len(text))
        assert exact == text and rest is not None  # the end is only known on the next read
        with rest:
            assert rest.read() == b""
        with pytest.raises(ValueError):
            drop.read_start(0, 0)


def test_read_start_follows_a_rename_and_fails_when_gone(box: Path) -> None:
    _deliver(box, b"one\r\n")
    with Maildrop.open(str(box)) as drop:
        name = drop.entries[0].name
        base = names.split_info(name)[0]
        os.rename(box / "cur" / name, box / "cur" / names.with_info(base, "S"))
        assert drop.read_start(0, 100) == (b"one\r\n", None)
        os.unlink(box / "cur" / names.with_info(base, "S"))
        with pytest.raises(OSError):
            drop.read_start(0, 100)


def test_uid_list_sync_can_be_deferred(box: Path) -> None:
    for i in range(2):
        _deliver(box, b"m%d\r\n" % i)
    with Maildrop.open(str(box), sync_uid_list=False) as drop:
        assert len(drop.entries) == 2
        uidlist = box / "mailyard-uidlist"
        assert not uidlist.exists() or read_uidlist(box)[1:] == []
        drop.sync_uid_list()
        assert [line.split()[1] for line in read_uidlist(box)[1:]] == ["1", "2"]
        drop.delete([0])
    assert read_uidlist(box)[-1].startswith("X 1 ")


@given(st.text(max_size=80))
def test_uidl_fast_path_agrees_with_uidl_for(base: str) -> None:
    assert drop_module._uidl(base) == names.uidl_for(base)


@pytest.mark.parametrize("base", ["", " ", "a b", "x" * 70, "x" * 71, "caf\u00e9", "a\x7f", "!~"])
def test_uidl_fast_path_edges(base: str) -> None:
    assert drop_module._uidl(base) == names.uidl_for(base)


def test_read_ahead_within_budget_skipping_gone_and_lying_sizes(box: Path) -> None:
    texts = [b"m%d\r\n" % i + b"x" * 100 * i for i in range(6)]
    for text in texts:
        _deliver(box, text)
    with Maildrop.open(str(box)) as drop:
        (box / "cur" / drop.entries[1].name).unlink()
        # Message 2's S= says fewer octets than the file holds.
        liar = drop.entries[2]
        (box / "cur" / liar.name).write_bytes(texts[2] + b"extra")
        ahead = drop.read_ahead(range(6), budget=len(texts[0]) + len(texts[3]) + len(texts[4]))
        assert ahead == {0: texts[0], 3: texts[3], 4: texts[4]}
        assert drop.read_ahead(range(6), budget=0) == {}
        assert drop.read_ahead([], budget=10**6) == {}
