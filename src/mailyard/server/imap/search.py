"""SEARCH and UID SEARCH (RFC 9051 §6.4.4) with ESEARCH (RFC 4731),
SEARCHRES (RFC 5182) and MODSEQ (RFC 7162 §3.1.5)."""

from __future__ import annotations

from dataclasses import dataclass

from mailyard.maildir.view import View
from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.events import Command
from mailyard.proto.imap.responses import ESearchResult, SearchResult
from mailyard.proto.imap.search import ReturnOption, SearchKey
from mailyard.server.imap.fetch import row_numbers
from mailyard.server.imap.matcher import Candidates, Loader, compile_key, has_modseq, need_of
from mailyard.server.imap.numbers import uid_set
from mailyard.server.imap.state import Session
from mailyard.server.imap.updates import complete

__all__ = ["Found", "run_search", "saved_result", "search"]


@dataclass(frozen=True, slots=True)
class Found:
    """The matching messages, in sequence order: uids and sequence numbers,
    their dates and sizes (SORT needs them), and the highest mod-sequence
    among them when a MODSEQ key asked for it."""

    uids: list[int]
    numbers: list[int]
    modseq: int | None


def run_search(view: View, key: SearchKey, saved: tuple[int, ...], recent: bool) -> Found:
    """Evaluate ``key`` over the session's messages (in the io pool)."""
    folder = view.folder
    uids = view.uids
    columns = folder.columns(uids)
    numbers = list(row_numbers(uids, ((0, len(uids)),), len(uids), columns.uids))
    cand = Candidates(columns, numbers, len(uids), uids[-1] if len(uids) else 0,
                      view.is_recent if recent else (lambda uid: False),
                      folder.keywords, saved)
    level = need_of(key)
    loader = Loader(folder, columns, level) if level is not None else None
    test = compile_key(key, cand, loader)
    hits = [index for index in range(len(numbers)) if test(index)]
    modseq = None
    if has_modseq(key) and hits:
        modseq = max(columns.modseqs[index] for index in hits)
    return Found([columns.uids[i] for i in hits], [numbers[i] for i in hits], modseq)


def saved_result(found: list[int], returns: frozenset[ReturnOption]) -> tuple[int, ...]:
    """RFC 5182 §2.1: SAVE keeps the result; with only MIN and/or MAX beside
    it, just those."""
    if not found:
        return ()
    if returns & {ReturnOption.ALL, ReturnOption.COUNT} or not returns & {
            ReturnOption.MIN, ReturnOption.MAX}:
        return tuple(found)
    kept = []
    if ReturnOption.MIN in returns:
        kept.append(found[0])
    if ReturnOption.MAX in returns and found[-1] not in kept:
        kept.append(found[-1])
    return tuple(kept)


async def search(s: Session, cmd: Command) -> None:
    body = cmd.body
    assert isinstance(body, c.Search)
    selected = s.sel
    found = await s.io(run_search, selected.view, body.criteria, selected.saved,
                       s.recent_flags)
    numbers = found.uids if body.uid else found.numbers
    returns = body.returns
    if returns is None:
        s.core.send(SearchResult(numbers, found.modseq))
        await complete(s, cmd)
        return
    if ReturnOption.SAVE in returns:
        selected.saved = saved_result(found.uids, returns)
    asked = returns - {ReturnOption.SAVE}
    if asked:
        # RFC 4731 §3.1: MIN, MAX and ALL only when something matched.
        s.core.send(ESearchResult(
            body.uid,
            min=numbers[0] if numbers and ReturnOption.MIN in asked else None,
            max=numbers[-1] if numbers and ReturnOption.MAX in asked else None,
            all=uid_set(numbers) if numbers and ReturnOption.ALL in asked else None,
            count=len(numbers) if ReturnOption.COUNT in asked else None,
            modseq=found.modseq,
        ))
    await complete(s, cmd, Status.OK)
