"""SEARCH, SORT and THREAD evaluated over a real folder (matcher.py, search.py,
sortthread.py): the core's search tree in, message numbers out."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailyard.maildir.folder import Folder, StoreMode
from mailyard.maildir.view import View
from mailyard.message import sorting as ms
from mailyard.message import threads as mt
from mailyard.message.search import Need
from mailyard.proto.imap import search as q
from mailyard.proto.imap.sequence import SequenceSet
from mailyard.proto.imap.values import ThreadTree
from mailyard.server.imap.content import SUMMARY_KIND
from mailyard.server.imap.matcher import has_modseq, need_of
from mailyard.server.imap.search import run_search, saved_result
from mailyard.server.imap.sortthread import _sorted, _threads, thread_trees
from tests.maildir.storehelp import deliver_to

MESSAGES = [
    b"From: Zed <zed@example.org>\r\nSubject: Zebra\r\nDate: Tue, 2 Jan 2024 10:00:00 +0000\r\n"
    b"Message-ID: <a@x>\r\nX-Tag: blue\r\n\r\nquick brown fox\r\n",
    b"From: Amy <amy@example.org>\r\nSubject: Re: Zebra\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
    b"Message-ID: <b@x>\r\nReferences: <a@x>\r\n\r\nlazy dog\r\n",
    b"From: =?UTF-8?Q?J=C3=B6rg?= <j@example.org>\r\nSubject: =?UTF-8?Q?K=C3=A4se?=\r\n"
    b"Date: Wed, 3 Jan 2024 10:00:00 +0000\r\nMessage-ID: <c@x>\r\n\r\n" + b"x" * 500 + b"\r\n",
]


@pytest.fixture
def view(tmp_path: Path) -> Iterator[View]:
    box = tmp_path / "box"
    for message in MESSAGES:
        deliver_to(box, message)
    folder = Folder.open(str(box))
    v = folder.view()
    v.store([2], StoreMode.ADD, ["\\Seen", "$Work"])
    yield v
    folder.close()


def found(view: View, key: q.SearchKey, saved: tuple[int, ...] = ()) -> list[int]:
    return run_search(view, key, saved, recent=True).numbers


def test_column_keys(view: View) -> None:
    assert found(view, q.FlagKey("\\Seen")) == [2]
    assert found(view, q.FlagKey("\\Seen", False)) == [1, 3]
    assert found(view, q.FlagKey("$Work")) == [2]
    assert found(view, q.FlagKey("$Nothing")) == []
    assert found(view, q.FlagKey("$Nothing", False)) == [1, 2, 3]
    assert found(view, q.FlagKey("\\Recent")) == [1, 2, 3]  # this session claimed them
    assert found(view, q.SizeKey(True, 300)) == [3]
    assert found(view, q.SequenceKey(SequenceSet.parse("2:*"))) == [2, 3]
    assert found(view, q.SequenceKey(SequenceSet.parse("3"), uid=True)) == [3]
    assert found(view, q.SequenceKey(SequenceSet(saved=True)), saved=(1, 3)) == [1, 3]
    today = datetime.datetime.now(datetime.UTC).date()
    assert found(view, q.DateKey(q.DateWhich.INTERNAL, "ON", today)) == [1, 2, 3]
    assert found(view, q.DateKey(q.DateWhich.INTERNAL, "BEFORE", today)) == []
    assert found(view, q.And(())) == [1, 2, 3]
    assert found(view, q.ModSeqKey(view.folder.highest_modseq)) == [2]


def test_content_keys(view: View) -> None:
    assert found(view, q.TextKey(q.TextWhere.FROM, "AMY")) == [2]
    assert found(view, q.TextKey(q.TextWhere.FROM, "jörg")) == [3]  # RFC 2047 decoded
    assert found(view, q.TextKey(q.TextWhere.SUBJECT, "käse")) == [3]
    assert found(view, q.TextKey(q.TextWhere.BODY, "fox")) == [1]
    assert found(view, q.TextKey(q.TextWhere.TEXT, "x-tag")) == [1]
    assert found(view, q.HeaderKey("X-TAG", "")) == [1]
    assert found(view, q.DateKey(q.DateWhich.SENT, "BEFORE", datetime.date(2024, 1, 2))) == [2]
    both = q.And((q.FlagKey("\\Seen", False), q.TextKey(q.TextWhere.SUBJECT, "zebra")))
    assert found(view, both) == [1]
    assert found(view, q.Or(q.FlagKey("\\Seen"), q.Not(q.SizeKey(False, 300)))) == [2, 3]
    # Envelopes were parsed once and cached for the next search.
    assert view.folder.cached(1, SUMMARY_KIND) is not None


def test_needs_and_modseq() -> None:
    assert need_of(q.FlagKey("\\Seen")) is None
    assert need_of(q.TextKey(q.TextWhere.SUBJECT, "x")) is Need.ENVELOPE
    assert need_of(q.Or(q.HeaderKey("A", "b"), q.Not(q.TextKey(q.TextWhere.BODY, "c")))) is (
        Need.MESSAGE)
    assert has_modseq(q.And((q.FlagKey("\\Seen"), q.Not(q.ModSeqKey(4)))))
    assert not has_modseq(q.Or(q.FlagKey("\\Seen"), q.SizeKey(True, 1)))


def test_saved_result() -> None:
    options = q.ReturnOption
    assert saved_result([4, 5, 9], frozenset({options.SAVE})) == (4, 5, 9)
    assert saved_result([4, 5, 9], frozenset({options.SAVE, options.MIN})) == (4,)
    assert saved_result([4, 5, 9], frozenset({options.SAVE, options.MIN, options.MAX})) == (4, 9)
    assert saved_result([4, 5, 9], frozenset({options.SAVE, options.MAX, options.COUNT})) == (
        4, 5, 9)
    assert saved_result([], frozenset({options.SAVE})) == ()


def test_sort_and_thread(view: View) -> None:
    by_date = (ms.SortCriterion(ms.SortKey.DATE),)
    assert _sorted(view, q.And(()), (), True, by_date, False) == [2, 1, 3]
    by_size = (ms.SortCriterion(ms.SortKey.SIZE, reverse=True),)
    assert _sorted(view, q.And(()), (), True, by_size, True) == [3, 2, 1]  # uids
    threads = _threads(view, q.And(()), (), True, mt.ThreadAlgorithm.REFERENCES, False)
    assert thread_trees(threads) == (ThreadTree((1, 2)), ThreadTree((3,)))


def test_thread_trees_keep_the_shape() -> None:
    deep = mt.Thread((1,), (mt.Thread((2,), (mt.Thread((4,)), mt.Thread((5,)))), mt.Thread((3,))))
    assert thread_trees([deep]) == (ThreadTree((1,), (
        ThreadTree((2,), (ThreadTree((4,)), ThreadTree((5,)))), ThreadTree((3,)))),)
    chain = mt.Thread((1,))
    for n in range(2, 3000):  # no recursion, however deep
        chain = mt.Thread((n,), (chain, mt.Thread((n + 10_000,))))
    assert thread_trees([chain])[0].numbers == (2999,)


def test_cached_many(view: View) -> None:
    folder = view.folder
    folder.cache(1, 9, b"one")
    folder.cache(3, 9, b"three")
    assert folder.cached_many([3, 2, 1, 77], 9) == {1: b"one", 3: b"three"}
