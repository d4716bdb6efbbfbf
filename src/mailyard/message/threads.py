"""THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 §3).

Pure. (Named ``threads`` so it is never mistaken for the stdlib module.)
The adapter gives one ``ThreadItem`` per message that matched the search
criteria: ``number`` (sequence number or UID, what to report),
``position`` (the sequence number: ties, and which of two messages with
the same Message-ID counts), the cached ``envelope`` (Subject, Date,
Message-ID, In-Reply-To), the raw ``references`` field value (References:
is not part of ENVELOPE, so the store caches it alongside; see
``cache.MessageSummary``) and ``internal_date``.

``thread(items, algorithm)`` returns the threads as ``Thread`` values in
the shape of RFC 5256 §4 ``thread-list``: ``members`` is the chain of
messages each the parent of the next, ``children`` the sub-threads where
the chain splits (none, or two or more). A thread whose root is a dummy
(a parent that is not among the items, RFC 5256 example ``((3)(5))``) has
no members. ``thread_tokens`` walks threads into a flat stream of numbers
and ``ThreadMark.OPEN`` / ``CLOSE``, without recursion, for the encoder.

Every step is iterative, so a thread thousands of messages deep costs no
recursion; loops in References are refused as RFC 5256 says, and a
message never becomes its own parent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final

from mailyard.message.envelope import Envelope
from mailyard.message.sorting import sent_timestamp
from mailyard.message.subject import base_subject, collation_key

__all__ = [
    "Thread",
    "ThreadAlgorithm",
    "ThreadItem",
    "ThreadMark",
    "message_ids",
    "thread",
    "thread_tokens",
]

_MSG_ID: Final = re.compile(rb"<([^<>]*)>")
_SPACE_INSIDE: Final = re.compile(rb"<[^<>]*\s[^<>]*>")
_MAX_REFERENCES: Final = 1000  # References beyond this many are ignored


class ThreadAlgorithm(Enum):
    ORDEREDSUBJECT = "ORDEREDSUBJECT"
    REFERENCES = "REFERENCES"


class ThreadMark(Enum):
    OPEN = "("
    CLOSE = ")"


@dataclass(frozen=True, slots=True)
class ThreadItem:
    number: int
    position: int
    envelope: Envelope
    references: bytes | None
    internal_date: float


@dataclass(frozen=True, slots=True)
class Thread:
    members: tuple[int, ...]
    children: tuple[Thread, ...] = ()


@dataclass(frozen=True, slots=True)
class _Message:
    number: int
    position: int
    sent: float
    subject: str  # collation key of the base subject
    is_reply: bool
    message_id: str | None
    references: tuple[str, ...]


def _normalise(inner: bytes) -> str:
    """RFC 5256 §3: one form per Message ID, whatever the quoting."""
    text = b"".join(inner.split())
    local, at, domain = text.rpartition(b"@")
    if at and len(local) >= 2 and local.startswith(b'"') and local.endswith(b'"'):
        local = re.sub(rb"\\(.)", rb"\1", local[1:-1])
        text = local + b"@" + domain
    return text.decode("latin-1")


def message_ids(value: bytes | None) -> tuple[str, ...]:
    """The normalised Message IDs in a field value, in order."""
    if not value:
        return ()
    found = _MSG_ID.findall(value)
    if b'"' not in value and _SPACE_INSIDE.search(value) is None:
        # Nothing to normalise: decode all at once ("<" cannot occur inside).
        return tuple(ident for ident in b"<".join(found).decode("latin-1").split("<") if ident)
    return tuple(ident for ident in map(_normalise, found) if ident)


def _prepare(item: ThreadItem) -> _Message:
    envelope = item.envelope
    subject = base_subject(envelope.subject)
    own = message_ids(envelope.message_id)
    own_id = own[0] if own else None
    # RFC 5256 §3: References if it holds a valid Message ID, else the first
    # one of In-Reply-To; a message never refers to itself.
    refs = message_ids(item.references)[-_MAX_REFERENCES:]
    if not refs:
        refs = message_ids(envelope.in_reply_to)[:1]
    return _Message(
        number=item.number,
        position=item.position,
        sent=sent_timestamp(envelope, item.internal_date),
        subject=collation_key(subject.text),
        is_reply=subject.is_reply,
        message_id=own_id,
        references=tuple(ref for ref in refs if ref != own_id),
    )


# -- ORDEREDSUBJECT ------------------------------------------------------------------


def _ordered_subject(messages: list[_Message]) -> tuple[Thread, ...]:
    messages.sort(key=lambda m: (m.subject, m.sent, m.position))
    groups: list[list[_Message]] = []
    for message in messages:
        if groups and groups[-1][0].subject == message.subject:
            groups[-1].append(message)
        else:
            groups.append([message])
    groups.sort(key=lambda group: (group[0].sent, group[0].position))
    threads: list[Thread] = []
    for first, *rest in groups:
        if len(rest) <= 1:
            threads.append(Thread((first.number, *(m.number for m in rest))))
        else:
            # RFC 5256 §3: later messages are all children of the first.
            threads.append(Thread((first.number,), tuple(Thread((m.number,)) for m in rest)))
    return tuple(threads)


# -- REFERENCES --------------------------------------------------------------------


class _Container:
    """A node of the thread tree under construction (mutable by design)."""

    __slots__ = ("children", "message", "parent")

    def __init__(self, message: _Message | None = None) -> None:
        self.message = message
        self.parent: _Container | None = None
        self.children: list[_Container] = []


def _would_loop(parent: _Container, child: _Container) -> bool:
    """Whether making ``parent`` the parent of ``child`` creates a loop."""
    if parent is child:
        return True
    if not child.children:  # a leaf cannot be an ancestor: no walk needed
        return False
    node: _Container | None = parent
    while node is not None:
        if node is child:
            return True
        node = node.parent
    return False


def _unlink(child: _Container) -> None:
    if child.parent is not None:
        child.parent.children.remove(child)
        child.parent = None


def _link(parent: _Container, child: _Container) -> None:
    _unlink(child)
    child.parent = parent
    parent.children.append(child)


def _build(messages: list[_Message]) -> list[_Container]:
    """Steps (1) and (2): link by references; return the root set."""
    table: dict[str, _Container] = {}
    for index, message in enumerate(sorted(messages, key=lambda m: m.position)):
        key = message.message_id
        if key is None or (key in table and table[key].message is not None):
            key = f"<unique {index}>"  # cannot clash: real IDs hold no "<"
        container = table.setdefault(key, _Container())
        container.message = message
        previous: _Container | None = None
        for ref in message.references:  # step (1)(A)
            current = table.get(ref)
            if current is None:
                current = table[ref] = _Container()
            if (
                previous is not None
                and current.parent is None
                and not _would_loop(previous, current)
            ):
                _link(previous, current)
            previous = current
        _unlink(container)  # step (1)(B)
        if previous is not None and not _would_loop(previous, container):
            _link(previous, container)
    return [container for container in table.values() if container.parent is None]


def _descendants_first(roots: Iterable[_Container]) -> list[_Container]:
    """Every container below ``roots``, each after all of its descendants."""
    order: list[_Container] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.children)
    order.reverse()
    return order


def _pruned(siblings: list[_Container], parent: _Container | None) -> list[_Container]:
    """Step (3) for one set of siblings whose own subtrees are pruned."""
    kept: list[_Container] = []
    for node in siblings:
        if node.message is not None:
            kept.append(node)
        elif node.children and parent is None and len(node.children) > 1:
            kept.append(node)  # promoting would make them children of the root
        else:
            for child in node.children:
                child.parent = parent
                kept.append(child)
    return kept


def _sort_key(node: _Container) -> tuple[float, int]:
    message = node.message if node.message is not None else node.children[0].message
    assert message is not None  # below a dummy there are only messages
    return (message.sent, message.position)


def _subject(node: _Container) -> str:
    message = node.message if node.message is not None else node.children[0].message
    return "" if message is None else message.subject


def _subject_table(roots: list[_Container]) -> dict[str, _Container]:
    """Step (5)(B): one root-level container per base subject."""
    table: dict[str, _Container] = {}
    for node in roots:
        subject = _subject(node)
        if not subject:
            continue
        old = table.get(subject)
        # A dummy beats a message, a first message beats a reply.
        replaces = old is None or (
            old.message is not None
            and (node.message is None or (old.message.is_reply and not node.message.is_reply))
        )
        if replaces:
            table[subject] = node
    return table


def _merge(roots: list[_Container]) -> list[_Container]:
    """Step (5)(C): gather root-level threads that share a base subject."""
    table = _subject_table(roots)
    slots: list[_Container | None] = list(roots)
    where = {id(node): index for index, node in enumerate(roots)}
    for node in roots:
        subject = _subject(node)
        if not subject or where.get(id(node)) is None:
            continue
        held = table[subject]
        if held is node:
            continue
        slots[where.pop(id(node))] = None
        if held.message is None and node.message is None:
            for child in node.children:
                child.parent = held
            held.children.extend(node.children)
        elif held.message is None:
            _link(held, node)
        elif node.message is None:
            # Not reachable after (5)(B), which prefers dummies; kept as the
            # mirror of the rule above so no dummy can end up below the root.
            index = where.pop(id(held))
            _link(node, held)
            slots[index] = node
            where[id(node)] = index
            table[subject] = node
        elif node.message.is_reply and not held.message.is_reply:
            _link(held, node)
        else:
            dummy = _Container()
            index = where.pop(id(held))
            _link(dummy, held)
            _link(dummy, node)
            slots[index] = dummy
            where[id(dummy)] = index
            table[subject] = dummy
    return [node for node in slots if node is not None]


def _freeze(root: _Container) -> Thread:
    """The container tree as ``Thread`` values, built bottom-up."""
    chains: dict[int, tuple[tuple[int, ...], list[_Container]]] = {}
    order: list[_Container] = []
    stack = [root]
    while stack:
        head = stack.pop()
        order.append(head)
        members = [] if head.message is None else [head.message.number]
        node = head
        while len(node.children) == 1:
            node = node.children[0]
            if node.message is not None:
                members.append(node.message.number)
        chains[id(head)] = (tuple(members), node.children)
        stack.extend(node.children)
    built: dict[int, Thread] = {}
    for head in reversed(order):
        chain, branches = chains[id(head)]
        built[id(head)] = Thread(chain, tuple(built[id(branch)] for branch in branches))
    return built[id(root)]


def _references(messages: list[_Message]) -> tuple[Thread, ...]:
    roots = _build(messages)
    for node in _descendants_first(roots):  # step (3)
        node.children = _pruned(node.children, node)
    roots = _pruned(roots, None)
    for node in roots:  # step (4)
        node.children.sort(key=_sort_key)
    roots.sort(key=_sort_key)
    roots = _merge(roots)
    for node in _descendants_first(roots):  # step (6), youngest siblings first
        node.children.sort(key=_sort_key)
    roots.sort(key=_sort_key)
    return tuple(_freeze(root) for root in roots)


def thread(items: Sequence[ThreadItem], algorithm: ThreadAlgorithm) -> tuple[Thread, ...]:
    """Thread ``items`` with ``algorithm`` (see the module doc)."""
    messages = [_prepare(item) for item in items]
    if algorithm is ThreadAlgorithm.ORDEREDSUBJECT:
        return _ordered_subject(messages)
    return _references(messages)


def thread_tokens(threads: Iterable[Thread]) -> Iterator[int | ThreadMark]:
    """``(3 6 (4 23)(44 7 96))`` as OPEN 3 6 OPEN 4 23 CLOSE OPEN 44 7 96
    CLOSE CLOSE: each thread is OPEN, its members, its children, CLOSE."""
    stack: list[Thread | ThreadMark] = list(reversed(list(threads)))
    while stack:
        item = stack.pop()
        if isinstance(item, ThreadMark):
            yield item
            continue
        yield ThreadMark.OPEN
        yield from item.members
        stack.append(ThreadMark.CLOSE)
        stack.extend(reversed(item.children))
