"""LIST, LSUB and LIST-EXTENDED answers from the folder tree (pure).

RFC 9051 §6.3.9 (RFC 3501 §6.3.8): the reference is joined to each
pattern, ``*`` matches anything and ``%`` anything but the hierarchy
delimiter; ``INBOX`` is case-insensitive. RFC 5258 adds selection options
(SUBSCRIBED, SPECIAL-USE, RECURSIVEMATCH, REMOTE), return options and
CHILDINFO; RFC 6154 the special-use attributes; RFC 3348 \\HasChildren /
\\HasNoChildren.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from mailyard.maildir.mailstore import FolderEntry
from mailyard.proto.imap import commands as c
from mailyard.proto.imap.responses import ListResponse, LsubResponse

__all__ = ["Listed", "list_answer", "lsub_answer", "pattern_matcher"]

DELIMITER: Final = "/"
INBOX: Final = "INBOX"


@dataclass(frozen=True, slots=True)
class Listed:
    """One LIST line; ``selectable`` says whether LIST-STATUS may follow it."""

    response: ListResponse
    selectable: bool


def _regex(pattern: str) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append("[^/]*")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


class pattern_matcher:
    """Match folder names against LIST patterns (reference already joined)."""

    __slots__ = ("_inbox", "_plain")

    def __init__(self, patterns: Iterable[str]) -> None:
        listed = list(patterns)
        self._plain = [_regex(p) for p in listed]
        # RFC 9051 §5.1: INBOX is case-insensitive, so the part of a pattern
        # that may spell it is compared upper-cased for names under INBOX.
        self._inbox = [_regex(_upper_inbox(p)) for p in listed]

    def __call__(self, name: str) -> bool:
        if name == INBOX or name.startswith(INBOX + DELIMITER):
            return any(r.fullmatch(name) for r in self._inbox)
        return any(r.fullmatch(name) for r in self._plain)


def _upper_inbox(pattern: str) -> str:
    head = pattern[:5]
    cut = next((i for i, ch in enumerate(head) if not ch.isalpha()), len(head))
    if pattern[:cut].upper() == INBOX[:cut]:
        return pattern[:cut].upper() + pattern[cut:]
    return pattern


def _join(reference: str, pattern: str) -> str:
    """RFC 9051 §6.3.9: the reference and the pattern are concatenated
    (``LIST Work/ %`` lists the children of Work)."""
    return reference + pattern


def _children(name: str, names: Sequence[str]) -> bool:
    prefix = name + DELIMITER
    return any(n.startswith(prefix) for n in names)


def list_answer(entries: Sequence[FolderEntry], subscriptions: Sequence[str], body: c.List, *,
                rev2: bool) -> list[Listed]:
    """The LIST lines for ``body`` (everything but ``LIST "" ""``)."""
    match = pattern_matcher(_join(body.reference, p) for p in body.patterns)
    known = {e.name: e for e in entries}
    names = [e.name for e in entries]
    subscribed = set(subscriptions)
    selection = body.selection
    returns = body.returns
    # RFC 5258 §3.1: SUBSCRIBED lists subscribed names, existing or not, and
    # implies the SUBSCRIBED return option.
    by_subscription = c.ListSelect.SUBSCRIBED in selection
    show_subscribed = returns.subscribed or by_subscription
    recursive = c.ListSelect.RECURSIVEMATCH in selection
    extended = body.extended or rev2
    candidates = sorted(set(names) | (subscribed if by_subscription else set()))
    out: list[Listed] = []
    for name in candidates:
        if not match(name):
            continue
        entry = known.get(name)
        exists = entry is not None and entry.exists
        childinfo: tuple[str, ...] = ()
        if by_subscription:
            sub_children = recursive and _children(name, sorted(subscribed))
            if name not in subscribed and not sub_children:
                continue
            if sub_children:
                childinfo = ("SUBSCRIBED",)  # RFC 5258 §3.5
        special = entry.special_use if entry is not None else ()
        if c.ListSelect.SPECIAL_USE in selection and not special:
            continue
        attributes: list[str] = []
        if not exists:
            # RFC 5258 §3.4 / RFC 9051 §7.3.1: \NonExistent implies \Noselect.
            attributes.append("\\NonExistent" if extended else "\\Noselect")
        has_children = entry.has_children if entry is not None else _children(name, names)
        attributes.append("\\HasChildren" if has_children else "\\HasNoChildren")
        attributes.extend(special)
        if show_subscribed and name in subscribed:
            attributes.append("\\Subscribed")
        response = ListResponse(name, tuple(attributes),
                                childinfo=childinfo if body.extended else ())
        out.append(Listed(response, exists))
    return out


def lsub_answer(subscriptions: Sequence[str], entries: Sequence[FolderEntry],
                body: c.Lsub) -> list[LsubResponse]:
    """RFC 3501 §6.3.9: subscribed names matching the pattern; one that is
    not a mailbox (any more) is listed \\Noselect. When the pattern ends in
    "%", the levels above a subscribed name that match it are listed too,
    \\Noselect unless subscribed themselves ("foo" for a subscribed "foo/bar")."""
    pattern = _join(body.reference, body.pattern)
    match = pattern_matcher([pattern])
    existing = {e.name for e in entries if e.exists}
    subscribed = set(subscriptions)
    answer = {name: name not in existing for name in subscribed if match(name)}
    if pattern.endswith("%"):
        for name in subscribed:
            levels = name.split(DELIMITER)
            for depth in range(1, len(levels)):
                parent = DELIMITER.join(levels[:depth])
                if parent not in subscribed and match(parent):
                    answer.setdefault(parent, True)
    return [
        LsubResponse(name, ("\\Noselect",) if noselect else ())
        for name, noselect in sorted(answer.items())
    ]
