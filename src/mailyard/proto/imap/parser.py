"""Client commands from an assembled ``Pending`` command (RFC 9051 §6, §9).

``parse_command`` dispatches on the verb and reads the arguments with a
``Cursor``; every refusal is a ``CommandError`` with a precise reason (BAD
for syntax, NO [BADCHARSET] / NO for refused values). Extension syntax is
accepted only while its feature is on, so nothing works that CAPABILITY
does not announce. ``append_prefix`` reads APPEND's arguments up to its
message literal, which the core streams instead of collecting.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeAlias

from mailyard.proto.imap import commands as c
from mailyard.proto.imap.errors import CommandError, Status
from mailyard.proto.imap.fetchspec import FetchAttr, parse_fetch_items
from mailyard.proto.imap.lexer import Cursor, decode_text
from mailyard.proto.imap.parselist import parse_create, parse_list, parse_select, parse_status_items
from mailyard.proto.imap.reader import Pending
from mailyard.proto.imap.responses import BadCharset
from mailyard.proto.imap.search import (
    ReturnOption,
    parse_return_options,
    parse_search,
    parse_sort_criteria,
)
from mailyard.proto.imap.settings import ImapFeatures

__all__ = [
    "AppendPrefix",
    "AuthenticateStart",
    "ParseContext",
    "Parsed",
    "append_prefix",
    "handlers",
    "parse_command",
]


@dataclass(frozen=True, slots=True)
class ParseContext:
    features: ImapFeatures
    max_depth: int
    utf8: bool  # UTF8=ACCEPT or IMAP4rev2 enabled
    rev2: bool  # IMAP4rev2 enabled
    qresync: bool  # QRESYNC enabled (RFC 7162 §3.2.3)
    max_id_fields: int = 30
    utf8_accept: bool = False  # UTF8=ACCEPT itself enabled (RFC 6855 §3)


@dataclass(frozen=True, slots=True)
class AuthenticateStart:
    """AUTHENTICATE's arguments; the core runs the SASL exchange."""

    mechanism: str
    initial: bytes | None  # RFC 4959 SASL-IR: base64 or "="


@dataclass(frozen=True, slots=True)
class AppendPrefix:
    mailbox: str
    flags: tuple[str, ...]
    date: datetime | None
    utf8: bool  # RFC 6855 §4 "UTF8 (" precedes the literal


@dataclass(frozen=True, slots=True)
class Parsed:
    body: c.CommandBody | c.CoreCommand | AuthenticateStart
    condstore: bool = False  # RFC 7162 §3.1: a CONDSTORE enabling command


_Handler: TypeAlias = Callable[[Cursor, ParseContext, bool], Parsed]
_CHARSETS: Final = frozenset({"UTF-8", "US-ASCII"})


def parse_command(pending: Pending, ctx: ParseContext) -> Parsed:
    """The typed command, or CommandError."""
    handler = handlers(ctx.features).get(pending.verb)
    if handler is None:
        raise CommandError(f"unknown command {pending.verb}")
    cur = Cursor(pending.texts, pending.literals, utf8=ctx.utf8, start=pending.start)
    return handler(cur, ctx, pending.verb.startswith("UID "))


def append_prefix(pending: Pending, ctx: ParseContext) -> AppendPrefix | None:
    """APPEND's arguments before its message literal; None if the literal
    being announced is the mailbox name itself (``APPEND {5}``)."""
    cur = Cursor(pending.texts, pending.literals, utf8=ctx.utf8, start=pending.start)
    if cur.remaining() == b" ":
        return None
    cur.sp()
    mailbox = cur.mailbox()
    cur.sp()
    flags: tuple[str, ...] = ()
    if cur.peek() == 0x28:
        flags = cur.flag_list()
        cur.sp()
    date = None
    if cur.peek() == 0x22:
        date = cur.date_time()
        cur.sp()
    # RFC 6855 §4: APPEND … UTF8 (literal8) once UTF8=ACCEPT is enabled.
    utf8 = cur.take(b"UTF8 (")
    if utf8 and not ctx.features.utf8_accept:
        raise CommandError("UTF8 APPEND data needs UTF8=ACCEPT")
    if cur.remaining() != b"":
        raise CommandError("invalid APPEND arguments before the message")
    return AppendPrefix(mailbox, flags, date, utf8)


# -- simple commands --------------------------------------------------------------------


def _plain(body: c.CommandBody | c.CoreCommand) -> _Handler:
    def handler(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
        cur.end()
        return Parsed(body)

    return handler


def _one_mailbox(kind: Callable[[str], c.CommandBody]) -> _Handler:
    def handler(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
        cur.sp()
        mailbox = cur.mailbox()
        cur.end()
        return Parsed(kind(mailbox))

    return handler


def _login(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
    cur.sp()
    username = cur.text("user name")
    cur.sp()
    password = cur.text("password")
    cur.end()
    return Parsed(c.Login(username, password))


def _authenticate(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
    cur.sp()
    mechanism = cur.atom("SASL mechanism").upper()
    initial = None
    if cur.maybe_sp():
        initial = cur.astring("initial response")  # RFC 4959: base64 or "="
    cur.end()
    return Parsed(AuthenticateStart(mechanism, initial))


def _enable(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
    caps = []
    while not cur.at_end():
        cur.sp()
        caps.append(cur.atom("capability").upper())
    if not caps:
        raise CommandError("ENABLE needs at least one capability")  # RFC 5161 §3.1
    return Parsed(c.Enable(tuple(caps)))


def _id(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
    """RFC 2971 §4: "ID" SP ("(" *(string SP nstring) ")" / "NIL")."""
    cur.sp()
    if cur.take(b"NIL"):
        cur.end()
        return Parsed(c.Id(None))
    cur.expect(b"(", "( or NIL")
    fields: list[tuple[str, str | None]] = []
    while not cur.take(b")"):
        if fields:
            cur.sp()
        key = decode_text(cur.string("field name"), "ID field")
        cur.sp()
        value = cur.nstring("field value")
        # RFC 2971 §3.3: fields up to 30 octets, values up to 1024, 30 pairs.
        if len(key) > 30 or (value is not None and len(value) > 1024):
            raise CommandError("ID field or value too long")
        fields.append((key, None if value is None else decode_text(value, "ID value")))
        if len(fields) > ctx.max_id_fields:
            raise CommandError("too many ID fields")
    cur.end()
    return Parsed(c.Id(tuple(fields)))


# -- authenticated state ---------------------------------------------------------------


def _select(read_only: bool) -> _Handler:
    def handler(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
        body = parse_select(cur, ctx.features, qresync_enabled=ctx.qresync, read_only=read_only)
        return Parsed(body, condstore=body.condstore)

    return handler


def _create(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
    return Parsed(parse_create(cur, ctx.features))


def _rename(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
    cur.sp()
    old = cur.mailbox()
    cur.sp()
    new = cur.mailbox()
    cur.end()
    return Parsed(c.Rename(old, new))


def _lsub(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
    cur.sp()
    reference = cur.reference()
    cur.sp()
    pattern = cur.list_mailbox()
    cur.end()
    return Parsed(c.Lsub(reference, pattern))


def _list(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
    body, condstore = parse_list(cur, ctx.features)
    return Parsed(body, condstore=condstore)


def _status(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
    cur.sp()
    mailbox = cur.mailbox()
    cur.sp()
    items = parse_status_items(cur, ctx.features)
    cur.end()
    condstore = c.StatusItem.HIGHESTMODSEQ in items
    return Parsed(c.Status(mailbox, items), condstore=condstore)


def _append(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
    raise CommandError("APPEND needs a message literal")


def _getquota(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
    cur.sp()
    root = cur.text("quota root")
    cur.end()
    return Parsed(c.GetQuota(root))


def _setquota(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
    """RFC 9208 §4.1: quota-root SP "(" [resource SP number *(SP …)] ")"."""
    cur.sp()
    root = cur.text("quota root")
    cur.sp()
    cur.expect(b"(", "( before quota limits")
    limits: list[tuple[str, int]] = []
    while not cur.take(b")"):
        if limits:
            cur.sp()
        name = cur.atom("quota resource").upper()
        cur.sp()
        limits.append((name, cur.number("quota limit", wide=True)))
    cur.end()
    return Parsed(c.SetQuota(root, tuple(limits)))


# -- selected state ------------------------------------------------------------------------


def _uid_expunge(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
    cur.sp()
    uids = cur.sequence_set(saved=ctx.features.searchres)
    cur.end()
    return Parsed(c.Expunge(uids))


def _charset(cur: Cursor, ctx: ParseContext) -> str:
    name = decode_text(cur.astring("charset"), "charset").upper()
    if name not in _CHARSETS:
        raise CommandError(f"unsupported charset {name}", Status.NO, BadCharset())
    return name


def _search(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
    cur.sp()
    returns = None
    if cur.take(b"RETURN "):
        if not ctx.features.esearch:
            raise CommandError("SEARCH RETURN needs ESEARCH")
        returns = parse_return_options(cur, save=ctx.features.searchres)
        cur.sp()
    charset = None
    if cur.take(b"CHARSET "):
        if ctx.utf8_accept:
            # RFC 6855 §3: no CHARSET once UTF8=ACCEPT is enabled (IMAP4rev2
            # alone keeps it, RFC 9051 §6.4.4).
            raise CommandError("SEARCH CHARSET is not allowed after ENABLE UTF8=ACCEPT")
        charset = _charset(cur, ctx)
        cur.sp()
    criteria, modseq = parse_search(cur, max_depth=ctx.max_depth, saved=ctx.features.searchres)
    if modseq and not ctx.features.condstore:
        raise CommandError("unknown search key MODSEQ")
    if returns is None and ctx.rev2:
        returns = frozenset({ReturnOption.ALL})  # RFC 9051 §6.4.4: IMAP4rev2 answers ESEARCH
    return Parsed(c.Search(uid, criteria, returns, charset), condstore=modseq)


def _fetch(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
    f = ctx.features
    cur.sp()
    sequence = cur.sequence_set(saved=f.searchres)
    cur.sp()
    items = list(parse_fetch_items(cur, binary=f.binary))
    if FetchAttr.MODSEQ in items and not f.condstore:
        raise CommandError("unknown fetch attribute MODSEQ")
    changed_since = None
    vanished = False
    if cur.maybe_sp():
        changed_since, vanished = _fetch_modifiers(cur, ctx, uid)
    cur.end()
    if changed_since is not None and FetchAttr.MODSEQ not in items:
        items.append(FetchAttr.MODSEQ)  # RFC 7162 §3.1.4.1
    if uid and FetchAttr.UID not in items:
        items.insert(0, FetchAttr.UID)  # RFC 9051 §6.4.9: UID FETCH always returns UID
    condstore = changed_since is not None or FetchAttr.MODSEQ in items
    body = c.Fetch(uid, sequence, tuple(items), changed_since, vanished)
    return Parsed(body, condstore=condstore)


def _fetch_modifiers(cur: Cursor, ctx: ParseContext, uid: bool) -> tuple[int | None, bool]:
    """RFC 7162 §3.1.4.1 (CHANGEDSINCE n) and §3.2.6 (VANISHED)."""
    if not ctx.features.condstore:
        raise CommandError("FETCH modifiers are not supported")
    cur.expect(b"(", "( before FETCH modifiers")
    changed_since = None
    vanished = False
    while True:
        word = cur.atom("FETCH modifier").upper()
        if word == "CHANGEDSINCE" and changed_since is None:
            cur.sp()
            changed_since = cur.number("mod-sequence", wide=True)
        elif word == "VANISHED" and ctx.features.qresync and not vanished:
            vanished = True
        else:
            raise CommandError(f"unknown or repeated FETCH modifier {word}")
        if not cur.more("FETCH modifiers"):
            break
    if vanished and not (uid and ctx.qresync and changed_since is not None):
        # RFC 7162 §3.2.6: only in UID FETCH, with CHANGEDSINCE, after ENABLE QRESYNC.
        raise CommandError("VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC")
    return changed_since, vanished


def _store(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
    cur.sp()
    sequence = cur.sequence_set(saved=ctx.features.searchres)
    cur.sp()
    unchanged_since = None
    if cur.take(b"("):
        # RFC 7162 §3.1.3: STORE seq (UNCHANGEDSINCE n) …
        if not ctx.features.condstore or not cur.take(b"UNCHANGEDSINCE "):
            raise CommandError("unknown STORE modifier")
        unchanged_since = cur.number("mod-sequence", wide=True)
        cur.expect(b")", ") after STORE modifier")
        cur.sp()
    mode = (
        c.StoreMode.ADD
        if cur.take(b"+")
        else c.StoreMode.REMOVE
        if cur.take(b"-")
        else (c.StoreMode.REPLACE)
    )
    cur.expect(b"FLAGS", "FLAGS")
    silent = cur.take(b".SILENT")
    cur.sp()
    if cur.peek() == 0x28:
        flags = cur.flag_list()
    else:
        found = [cur.flag()]
        while cur.maybe_sp():
            found.append(cur.flag())
        flags = tuple(dict.fromkeys(found))
    cur.end()
    body = c.Store(uid, sequence, mode, flags, silent, unchanged_since)
    return Parsed(body, condstore=unchanged_since is not None)


def _copy_move(kind: type[c.Copy] | type[c.Move]) -> _Handler:
    def handler(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
        cur.sp()
        sequence = cur.sequence_set(saved=ctx.features.searchres)
        cur.sp()
        mailbox = cur.mailbox()
        cur.end()
        return Parsed(kind(uid, sequence, mailbox))

    return handler


def _sort(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
    cur.sp()
    criteria = parse_sort_criteria(cur)
    cur.sp()
    charset = _charset(cur, ctx)
    cur.sp()
    search, modseq = parse_search(cur, max_depth=ctx.max_depth, saved=ctx.features.searchres)
    return Parsed(c.Sort(uid, criteria, search, charset), condstore=modseq)


def _thread(cur: Cursor, ctx: ParseContext, uid: bool) -> Parsed:
    cur.sp()
    name = cur.atom("threading algorithm").upper()
    if name not in ctx.features.thread:
        raise CommandError(f"unknown threading algorithm {name}")
    cur.sp()
    charset = _charset(cur, ctx)
    cur.sp()
    search, modseq = parse_search(cur, max_depth=ctx.max_depth, saved=ctx.features.searchres)
    body = c.Thread(uid, c.ThreadAlgorithm(name), search, charset)
    return Parsed(body, condstore=modseq)


_BASE: Final[dict[str, _Handler]] = {
    "CAPABILITY": _plain(c.Capability()),
    "NOOP": _plain(c.Noop()),
    "LOGOUT": _plain(c.Logout()),
    "ID": _id,
    "AUTHENTICATE": _authenticate,
    "LOGIN": _login,
    "ENABLE": _enable,
    "SELECT": _select(read_only=False),
    "EXAMINE": _select(read_only=True),
    "CREATE": _create,
    "DELETE": _one_mailbox(c.Delete),
    "RENAME": _rename,
    "SUBSCRIBE": _one_mailbox(c.Subscribe),
    "UNSUBSCRIBE": _one_mailbox(c.Unsubscribe),
    "LIST": _list,
    "LSUB": _lsub,
    "STATUS": _status,
    "APPEND": _append,
    "CHECK": _plain(c.Check()),
    "CLOSE": _plain(c.Close()),
    "EXPUNGE": _plain(c.Expunge()),
    "SEARCH": _search,
    "FETCH": _fetch,
    "STORE": _store,
    "COPY": _copy_move(c.Copy),
    "UID SEARCH": _search,
    "UID FETCH": _fetch,
    "UID STORE": _store,
    "UID COPY": _copy_move(c.Copy),
}

# Commands that exist only while their extension is offered.
_OPTIONAL: Final[tuple[tuple[str, str, _Handler], ...]] = (
    ("starttls", "STARTTLS", _plain(c.StartTls())),
    ("namespace", "NAMESPACE", _plain(c.Namespace())),
    ("idle", "IDLE", _plain(c.Idle())),
    ("unselect", "UNSELECT", _plain(c.Unselect())),
    ("uidplus", "UID EXPUNGE", _uid_expunge),
    ("move", "MOVE", _copy_move(c.Move)),
    ("move", "UID MOVE", _copy_move(c.Move)),
    ("sort", "SORT", _sort),
    ("sort", "UID SORT", _sort),
    ("thread", "THREAD", _thread),
    ("thread", "UID THREAD", _thread),
    ("quota", "GETQUOTA", _getquota),
    ("quota", "GETQUOTAROOT", _one_mailbox(c.GetQuotaRoot)),
    ("quota", "SETQUOTA", _setquota),
)


@functools.lru_cache(maxsize=16)
def handlers(features: ImapFeatures) -> dict[str, _Handler]:
    """The verbs this configuration understands, with their parsers."""
    table = dict(_BASE)
    for flag, verb, handler in _OPTIONAL:
        if getattr(features, flag):
            table[verb] = handler
    return table
