"""SORT and THREAD (RFC 5256) over the cached summaries.

The search criteria pick the messages (matcher.py); their ENVELOPE (and
References, for THREAD=REFERENCES) come from the store's blob cache,
parsed once per message ever. The ordering is ``mailyard.message.sorting``
and ``threads``; this module converts values and answers.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailyard.maildir.errors import MessageGone
from mailyard.maildir.folder import Folder
from mailyard.maildir.view import View
from mailyard.message import sorting as ms
from mailyard.message import threads as mt
from mailyard.message.cache import MessageSummary, encode_summary
from mailyard.message.envelope import Envelope
from mailyard.proto.imap import commands as c
from mailyard.proto.imap.events import Command
from mailyard.proto.imap.responses import SortResult, ThreadResult
from mailyard.proto.imap.search import SearchKey
from mailyard.proto.imap.values import ThreadTree
from mailyard.server.imap.content import SUMMARY_KIND, summary_from
from mailyard.server.imap.matcher import PREFETCH
from mailyard.server.imap.search import run_search
from mailyard.server.imap.state import Session
from mailyard.server.imap.updates import complete

__all__ = ["sort", "thread", "thread_trees"]

_EMPTY = Envelope(None, None, (), (), (), (), (), (), None, None)


def _summaries(folder: Folder, uids: Sequence[int]) -> list[MessageSummary | None]:
    """The cached summaries (read PREFETCH at a time); parsed and cached if missing."""
    out: list[MessageSummary | None] = []
    for start in range(0, len(uids), PREFETCH):
        chunk = uids[start:start + PREFETCH]
        blobs = folder.cached_many(chunk, SUMMARY_KIND)
        for uid in chunk:
            summary, _ = summary_from(blobs.get(uid), None)
            if summary is None:
                summary = _parse(folder, uid)
            out.append(summary)
    return out


def _parse(folder: Folder, uid: int) -> MessageSummary | None:
    try:
        with folder.open_message(uid) as handle:
            summary, fresh = summary_from(None, handle.read())
    except MessageGone:
        return None
    if fresh and summary is not None:
        try:
            folder.cache(uid, SUMMARY_KIND, encode_summary(summary))
        except ValueError:
            pass  # too large to cache
    return summary


def _sorted(view: View, key: SearchKey, saved: tuple[int, ...], recent: bool,
            criteria: tuple[ms.SortCriterion, ...], uid: bool) -> list[int]:
    found = run_search(view, key, saved, recent)
    folder = view.folder
    columns = folder.columns(found.uids)
    summaries = _summaries(folder, found.uids)
    dates = dict(zip(columns.uids, columns.dates, strict=True))
    sizes = dict(zip(columns.uids, columns.sizes, strict=True))
    items = [
        ms.SortItem(u if uid else n, n, (m.envelope if m else _EMPTY), dates.get(u, 0),
                    sizes.get(u, 0))
        for u, n, m in zip(found.uids, found.numbers, summaries, strict=True)
    ]
    return ms.sort_numbers(items, criteria)


async def sort(s: Session, cmd: Command) -> None:
    body = cmd.body
    assert isinstance(body, c.Sort)
    selected = s.sel
    criteria = tuple(ms.SortCriterion(ms.SortKey(k.key.value), k.reverse)
                     for k in body.criteria)
    numbers = await s.io(_sorted, selected.view, body.search, selected.saved,
                         s.recent_flags, criteria, body.uid)
    s.core.send(SortResult(numbers))
    await complete(s, cmd)


def _threads(view: View, key: SearchKey, saved: tuple[int, ...], recent: bool,
             algorithm: mt.ThreadAlgorithm, uid: bool) -> tuple[mt.Thread, ...]:
    found = run_search(view, key, saved, recent)
    folder = view.folder
    columns = folder.columns(found.uids)
    dates = dict(zip(columns.uids, columns.dates, strict=True))
    items = [
        mt.ThreadItem(u if uid else n, n, (m.envelope if m else _EMPTY),
                      m.references if m else None, dates.get(u, 0))
        for u, n, m in zip(found.uids, found.numbers, _summaries(folder, found.uids),
                           strict=True)
    ]
    return mt.thread(items, algorithm)


def thread_trees(threads: Sequence[mt.Thread]) -> tuple[ThreadTree, ...]:
    """``message.threads`` values as the core's, bottom-up (no recursion)."""
    order: list[mt.Thread] = []
    stack = list(threads)
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.children)
    built: dict[int, ThreadTree] = {}
    for node in reversed(order):
        built[id(node)] = ThreadTree(node.members,
                                     tuple(built[id(child)] for child in node.children))
    return tuple(built[id(node)] for node in threads)


async def thread(s: Session, cmd: Command) -> None:
    body = cmd.body
    assert isinstance(body, c.Thread)
    selected = s.sel
    algorithm = mt.ThreadAlgorithm(body.algorithm.value)
    threads = await s.io(_threads, selected.view, body.search, selected.saved,
                         s.recent_flags, algorithm, body.uid)
    s.core.send(ThreadResult(thread_trees(threads)))
    await complete(s, cmd)
