"""Mailbox commands with structured arguments: LIST in all its forms
(RFC 9051 §6.3.9, RFC 5258 LIST-EXTENDED, RFC 6154 SPECIAL-USE, RFC 5819
LIST-STATUS), STATUS data items (RFC 9051 §6.3.11, RFC 8438, RFC 7162,
RFC 7889), SELECT/EXAMINE parameters (RFC 7162) and CREATE (RFC 6154 §3)."""

from __future__ import annotations

from typing import Final

from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import CommandError
from mailyard.proto.imap.lexer import Cursor
from mailyard.proto.imap.settings import ImapFeatures

__all__ = ["parse_create", "parse_list", "parse_select", "parse_status_items"]

_BASE_SELECT: Final = frozenset({c.ListSelect.SUBSCRIBED, c.ListSelect.SPECIAL_USE})


def parse_status_items(cur: Cursor, features: ImapFeatures) -> tuple[c.StatusItem, ...]:
    """ "(" status-att *(SP status-att) ")", each known and offered."""
    offered = {
        c.StatusItem.SIZE: features.status_size,
        c.StatusItem.HIGHESTMODSEQ: features.condstore,
        c.StatusItem.APPENDLIMIT: features.appendlimit,
        c.StatusItem.DELETED: features.imap4rev2,
    }
    words = cur.paren_list("status item")
    if not words:
        raise CommandError("STATUS needs at least one item")
    items: list[c.StatusItem] = []
    for word in words:
        try:
            item = c.StatusItem(word)
        except ValueError:
            raise CommandError(f"unknown status item {word}") from None
        if not offered.get(item, True):
            raise CommandError(f"unknown status item {word}")
        items.append(item)
    return tuple(dict.fromkeys(items))


def parse_list(cur: Cursor, features: ImapFeatures) -> tuple[c.List, bool]:
    """The LIST command and whether it asked for HIGHESTMODSEQ (CONDSTORE)."""
    cur.sp()
    extended = False
    selection: frozenset[c.ListSelect] = frozenset()
    if cur.peek() == 0x28 and features.list_extended:
        extended = True
        selection = _selection(cur, features)
        cur.sp()
    reference = cur.reference()
    cur.sp()
    if cur.peek() == 0x28 and features.list_extended:
        extended = True
        patterns = _patterns(cur)
    else:
        patterns = (cur.list_mailbox(),)
    returns = c.ListReturn()
    if cur.maybe_sp():
        if not features.list_extended or not cur.take(b"RETURN "):
            raise CommandError("expected RETURN options")
        extended = True
        returns = _returns(cur, features)
    cur.end()
    body = c.List(reference, patterns, selection, returns, extended)
    return body, c.StatusItem.HIGHESTMODSEQ in returns.status


def _selection(cur: Cursor, features: ImapFeatures) -> frozenset[c.ListSelect]:
    """RFC 5258 §3.1; RECURSIVEMATCH needs a base option beside it."""
    chosen: set[c.ListSelect] = set()
    for word in cur.paren_list("selection option"):
        try:
            option = c.ListSelect(word)
        except ValueError:
            raise CommandError(f"unknown LIST selection option {word}") from None
        if option is c.ListSelect.SPECIAL_USE and not features.special_use:
            raise CommandError(f"unknown LIST selection option {word}")
        chosen.add(option)
    if c.ListSelect.RECURSIVEMATCH in chosen and not chosen & _BASE_SELECT:
        raise CommandError("RECURSIVEMATCH needs another selection option")  # RFC 5258 §3.1
    return frozenset(chosen)


def _patterns(cur: Cursor) -> tuple[str, ...]:
    cur.expect(b"(", "( before patterns")
    patterns = [cur.list_mailbox()]
    while cur.more("patterns"):
        patterns.append(cur.list_mailbox())
    return tuple(patterns)


def _returns(cur: Cursor, features: ImapFeatures) -> c.ListReturn:
    """RFC 5258 §3.2 return options, RFC 5819 STATUS (…)."""
    cur.expect(b"(", "( before return options")
    subscribed = children = special_use = False
    status: tuple[c.StatusItem, ...] = ()
    while not cur.take(b")"):
        if subscribed or children or special_use or status:
            cur.sp()
        word = cur.atom("return option").upper()
        if word == "SUBSCRIBED":
            subscribed = True
        elif word == "CHILDREN":
            children = True
        elif word == "SPECIAL-USE" and features.special_use:
            special_use = True
        elif word == "STATUS" and features.list_status and not status:
            cur.sp()
            status = parse_status_items(cur, features)
        else:
            raise CommandError(f"unknown LIST return option {word}")
    return c.ListReturn(subscribed, children, special_use, status)


def parse_select(
    cur: Cursor, features: ImapFeatures, *, qresync_enabled: bool, read_only: bool
) -> c.Select:
    """SELECT / EXAMINE mailbox [SP "(" select-param *(SP select-param) ")"]
    (RFC 4466 §2.4; CONDSTORE RFC 7162 §3.1.8, QRESYNC §3.2.5)."""
    cur.sp()
    mailbox = cur.mailbox()
    condstore = False
    qresync = None
    if cur.maybe_sp():
        cur.expect(b"(", "( before SELECT parameters")
        while True:
            name = cur.atom("SELECT parameter").upper()
            if name == "CONDSTORE" and features.condstore:
                condstore = True
            elif name == "QRESYNC" and features.qresync and qresync is None:
                if not qresync_enabled:
                    # RFC 7162 §3.2.5: only after ENABLE QRESYNC.
                    raise CommandError("QRESYNC needs ENABLE QRESYNC first")
                cur.sp()
                qresync = _qresync_params(cur)
                condstore = True
            else:
                raise CommandError(f"unknown SELECT parameter {name}")
            if not cur.more("SELECT parameters"):
                break
    cur.end()
    return c.Select(mailbox, read_only, condstore, qresync)


def _qresync_params(cur: Cursor) -> c.QresyncParams:
    """RFC 7162 §3.2.5: "(" uidvalidity SP mod-sequence-value [SP known-uids]
    [SP seq-match-data] ")"."""
    cur.expect(b"(", "( before QRESYNC parameters")
    uidvalidity = cur.number("UIDVALIDITY", nonzero=True)
    cur.sp()
    modseq = cur.number("mod-sequence", wide=True, nonzero=True)
    known = seqs = seq_uids = None
    if cur.maybe_sp() and cur.peek() != 0x28:
        known = cur.sequence_set()
        cur.maybe_sp()
    if cur.take(b"("):
        seqs = cur.sequence_set()
        cur.sp()
        seq_uids = cur.sequence_set()
        cur.expect(b")", ") after known sequence set")
    cur.expect(b")", ") after QRESYNC parameters")
    return c.QresyncParams(uidvalidity, modseq, known, seqs, seq_uids)


def parse_create(cur: Cursor, features: ImapFeatures) -> c.Create:
    cur.sp()
    mailbox = cur.mailbox()
    uses: tuple[str, ...] = ()
    if cur.maybe_sp():
        # RFC 6154 §3 / RFC 4466 create-param: "(" "USE" SP "(" flags ")" ")".
        if not features.create_special_use:
            raise CommandError("CREATE parameters are not supported")
        cur.expect(b"(USE ", "(USE")
        uses = cur.flag_list()
        cur.expect(b")", ") after CREATE parameters")
    cur.end()
    return c.Create(mailbox, uses)
