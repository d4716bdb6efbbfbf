"""A small in-memory mail store answering the IMAP core's events, for the
golden transcripts and tests: what server/imapd.py does over Maildir,
reduced to lists in memory. It answers only with typed responses (never
protocol text), which is also a check that the core's API suffices.

The same transcripts run against the live server
(tests/e2e/test_imap_transcripts_live.py), so where the real server makes a
choice the RFCs leave open, this store makes the same one: the flags it
defines ($Forwarded too) and their order, [UNSEEN] on an IMAP4rev1 SELECT,
one mod-sequence per change (all messages of one STORE, EXPUNGE or COPY
share it), \\Recent for messages APPENDed to the selected mailbox, EXPUNGE
responses highest number first, superiors created by CREATE, \\Subscribed
with the SUBSCRIBED selection, the store's refusal texts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mailyard.proto.imap import commands as c
from mailyard.proto.imap import responses as r
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.events import AppendData, AppendEnd, Command, Event, IdleDone
from mailyard.proto.imap.sequence import SequenceSet
from mailyard.proto.imap.server import ImapServer
from tests.proto.imap.fakefetch import fetch_items, flag_list, matches

SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "$Forwarded")


@dataclass
class Message:
    uid: int
    flags: set[str]
    date: datetime
    data: bytes
    modseq: int


@dataclass
class Mailbox:
    name: str
    uidvalidity: int
    special: str | None = None
    messages: list[Message] = field(default_factory=list)
    uidnext: int = 1
    modseq: int = 1
    expunged: list[tuple[int, int]] = field(default_factory=list)  # (uid, modseq)
    recent: set[int] = field(default_factory=set)  # uids \Recent in the session

    def add(self, flags: set[str], date: datetime, data: bytes) -> Message:
        self.modseq += 1
        message = Message(self.uidnext, set(flags), date, data, self.modseq)
        self.uidnext += 1
        self.messages.append(message)
        return message


@dataclass
class FakeStore:
    users: dict[str, str] = field(default_factory=lambda: {"bob": "secret"})
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    subscribed: set[str] = field(default_factory=lambda: {"INBOX"})
    quota_kb: int = 1024
    selected: Mailbox | None = None
    _appending: tuple[c.Append, bytearray] | None = None

    def __post_init__(self) -> None:
        if "INBOX" not in self.mailboxes:
            self.mailboxes["INBOX"] = Mailbox("INBOX", 1000)

    def mailbox(self, name: str, special: str | None = None) -> Mailbox:
        box = self.mailboxes.setdefault(name, Mailbox(name, 1000 + len(self.mailboxes), special))
        box.special = special or box.special
        return box

    # -- events ------------------------------------------------------------------------

    def answer(self, core: ImapServer, event: Event) -> None:
        if isinstance(event, AppendData):
            assert self._appending is not None
            self._appending[1].extend(event.data)
        elif isinstance(event, AppendEnd):
            self._append_end(core)
        elif isinstance(event, IdleDone):
            core.finish(Status.OK)
        elif isinstance(event, Command):
            handler = getattr(self, "_" + type(event.body).__name__.lower(), None)
            if handler is None:
                core.finish(Status.OK)
            else:
                handler(core, event)

    def _login(self, core: ImapServer, event: Command) -> None:
        body = event.body
        assert isinstance(body, c.Login | c.Authenticate)
        if self.users.get(body.username) == body.password:
            core.finish(Status.OK)
        else:
            core.finish(Status.NO, r.Code.AUTHENTICATIONFAILED, "invalid credentials")

    _authenticate = _login

    def _idle(self, core: ImapServer, event: Command) -> None:
        pass  # updates would be pushed with core.send(); the transcript sends DONE

    def _setquota(self, core: ImapServer, event: Command) -> None:
        core.finish(Status.NO, r.Code.CANNOT, "quotas are set by the administrator")

    # -- mailboxes ------------------------------------------------------------------------

    def _select(self, core: ImapServer, event: Command) -> None:
        body = event.body
        assert isinstance(body, c.Select)
        self.selected = None
        box = self.mailboxes.get(body.mailbox)
        if box is None:
            core.finish(Status.NO, r.Code.NONEXISTENT, f"mailbox {body.mailbox!r} does not exist")
            return
        self.selected = box
        updates: list[r.Untagged] = [r.Flags(SYSTEM_FLAGS), r.Exists(len(box.messages))]
        if not core.imap4rev2:
            updates.append(r.Recent(len(box.recent)))
            unseen = [n for n, m in enumerate(box.messages, 1) if "\\Seen" not in m.flags]
            if unseen:  # RFC 3501 §6.3.1 (IMAP4rev1 only)
                updates.append(r.Condition(Status.OK, "first unseen", r.Unseen(unseen[0])))
        updates += [
            r.Condition(Status.OK, "UIDs valid", r.UidValidity(box.uidvalidity)),
            r.Condition(Status.OK, "predicted next UID", r.UidNext(box.uidnext)),
            r.Condition(Status.OK, "limited", r.PermanentFlags((*SYSTEM_FLAGS, "\\*"))),
        ]
        if body.condstore or core.condstore:
            updates.append(r.Condition(Status.OK, "highest", r.HighestModSeq(box.modseq)))
        core.send(*updates)
        if body.qresync is not None and body.qresync.uidvalidity == box.uidvalidity:
            since = body.qresync.modseq
            gone = [uid for uid, modseq in box.expunged if modseq > since]
            if gone:
                core.send(r.Vanished(SequenceSet.from_numbers(sorted(gone)), earlier=True))
            for number, message in enumerate(box.messages, 1):
                if message.modseq > since:
                    core.send(r.FetchResponse(number, (
                        r.UidData(message.uid), r.FlagsData(flag_list(message, box)),
                        r.ModSeqData(message.modseq))))  # fmt: skip
        code = r.Code.READ_ONLY if body.read_only else r.Code.READ_WRITE
        core.finish(Status.OK, code, "EXAMINE completed" if body.read_only else "SELECT completed")

    def _create(self, core: ImapServer, event: Command) -> None:
        body = event.body
        assert isinstance(body, c.Create)
        if body.mailbox in self.mailboxes:
            core.finish(Status.NO, r.Code.ALREADYEXISTS, f"mailbox {body.mailbox!r} exists already")
            return
        # RFC 3501 §6.3.3: the superiors a name needs are created too.
        parts = body.mailbox.split("/")
        for depth in range(1, len(parts) + 1):
            self.mailbox("/".join(parts[:depth]))
        core.finish(Status.OK)

    def _delete(self, core: ImapServer, event: Command) -> None:
        body = event.body
        assert isinstance(body, c.Delete)
        if body.mailbox == "INBOX":
            core.finish(Status.NO, r.Code.CANNOT, "INBOX cannot be deleted")
        elif self.mailboxes.pop(body.mailbox, None) is None:
            core.finish(Status.NO, r.Code.NONEXISTENT, f"mailbox {body.mailbox!r} does not exist")
        else:
            self.subscribed.discard(body.mailbox)
            core.finish(Status.OK)

    def _rename(self, core: ImapServer, event: Command) -> None:
        body = event.body
        assert isinstance(body, c.Rename)
        if body.old not in self.mailboxes:
            core.finish(Status.NO, r.Code.NONEXISTENT, f"mailbox {body.old!r} does not exist")
        elif body.new in self.mailboxes:
            core.finish(Status.NO, r.Code.ALREADYEXISTS, f"mailbox {body.new!r} exists already")
        else:
            box = self.mailboxes.pop(body.old)
            box.name = body.new
            self.mailboxes[body.new] = box
            core.finish(Status.OK)

    def _subscribe(self, core: ImapServer, event: Command) -> None:
        assert isinstance(event.body, c.Subscribe)
        self.subscribed.add(event.body.mailbox)
        core.finish(Status.OK)

    def _unsubscribe(self, core: ImapServer, event: Command) -> None:
        assert isinstance(event.body, c.Unsubscribe)
        self.subscribed.discard(event.body.mailbox)
        core.finish(Status.OK)

    def _list(self, core: ImapServer, event: Command) -> None:
        body = event.body
        assert isinstance(body, c.List)
        if body.patterns == ("",):
            core.send(r.ListResponse("", ("\\Noselect",)))  # RFC 9051 §6.3.9
            core.finish(Status.OK)
            return
        names = [n for n in sorted(self.mailboxes) if any(
            _pattern(body.reference + p).fullmatch(n) for p in body.patterns)]  # fmt: skip
        subscribed_only = c.ListSelect.SUBSCRIBED in body.selection
        if subscribed_only:
            names = [n for n in names if n in self.subscribed]
        for name in names:
            core.send(r.ListResponse(name, self._attributes(name, body)))
            if body.returns.status:
                core.send(self._status_of(self.mailboxes[name], body.returns.status))
        core.finish(Status.OK)

    def _attributes(self, name: str, body: c.List) -> tuple[str, ...]:
        children = any(other.startswith(name + "/") for other in self.mailboxes)
        attributes = ["\\HasChildren" if children else "\\HasNoChildren"]
        special = self.mailboxes[name].special
        if special:
            attributes.append(special)
        # RFC 5258 §3.1: the SUBSCRIBED selection implies the return option.
        listed = body.returns.subscribed or c.ListSelect.SUBSCRIBED in body.selection
        if listed and name in self.subscribed:
            attributes.append("\\Subscribed")
        return tuple(attributes)

    def _lsub(self, core: ImapServer, event: Command) -> None:
        body = event.body
        assert isinstance(body, c.Lsub)
        pattern = _pattern(body.reference + body.pattern)
        for name in sorted(self.subscribed):
            if pattern.fullmatch(name):
                core.send(r.LsubResponse(name, ()))
        core.finish(Status.OK)

    def _status(self, core: ImapServer, event: Command) -> None:
        body = event.body
        assert isinstance(body, c.Status)
        box = self.mailboxes.get(body.mailbox)
        if box is None:
            core.finish(Status.NO, r.Code.NONEXISTENT, f"mailbox {body.mailbox!r} does not exist")
            return
        core.send(self._status_of(box, body.items))
        core.finish(Status.OK)

    def _status_of(self, box: Mailbox, items: tuple[c.StatusItem, ...]) -> r.StatusResponse:
        values = {
            c.StatusItem.MESSAGES: len(box.messages),
            c.StatusItem.RECENT: 0,
            c.StatusItem.UIDNEXT: box.uidnext,
            c.StatusItem.UIDVALIDITY: box.uidvalidity,
            c.StatusItem.UNSEEN: sum("\\Seen" not in m.flags for m in box.messages),
            c.StatusItem.DELETED: sum("\\Deleted" in m.flags for m in box.messages),
            c.StatusItem.SIZE: sum(len(m.data) for m in box.messages),
            c.StatusItem.HIGHESTMODSEQ: box.modseq,
            c.StatusItem.APPENDLIMIT: 67108864,
        }
        return r.StatusResponse(box.name, tuple((item, values[item]) for item in items))

    def _append(self, core: ImapServer, event: Command) -> None:
        body = event.body
        assert isinstance(body, c.Append)
        if body.mailbox not in self.mailboxes:
            core.finish(Status.NO, r.Code.TRYCREATE, "no such mailbox")
            return
        self._appending = (body, bytearray())
        core.accept_append()

    def _append_end(self, core: ImapServer) -> None:
        assert self._appending is not None
        body, data = self._appending
        self._appending = None
        box = self.mailboxes[body.mailbox]
        date = body.date or datetime(2024, 1, 1, tzinfo=UTC)
        message = box.add(set(body.flags), date, bytes(data))
        if box is self.selected:
            box.recent.add(message.uid)  # RFC 3501 §6.3.11: appended messages are \Recent
            core.send(r.Exists(len(box.messages)))
            if not core.imap4rev2:
                core.send(r.Recent(len(box.recent)))
        core.finish(
            Status.OK, r.AppendUid(box.uidvalidity, SequenceSet.of_range(message.uid, message.uid))
        )

    def _getquota(self, core: ImapServer, event: Command) -> None:
        core.send(self._quota())
        core.finish(Status.OK)

    def _getquotaroot(self, core: ImapServer, event: Command) -> None:
        assert isinstance(event.body, c.GetQuotaRoot)
        core.send(r.QuotaRootResponse(event.body.mailbox, ("",)), self._quota())
        core.finish(Status.OK)

    def _quota(self) -> r.QuotaResponse:
        used = sum(len(m.data) for b in self.mailboxes.values() for m in b.messages)
        count = sum(len(b.messages) for b in self.mailboxes.values())
        return r.QuotaResponse("", (r.QuotaResource("STORAGE", (used + 1023) // 1024, self.quota_kb),
                                    r.QuotaResource("MESSAGE", count, 1000)))  # fmt: skip

    # -- the selected mailbox -----------------------------------------------------------

    def _box(self) -> Mailbox:
        assert self.selected is not None
        return self.selected

    def numbers(self, uid: bool, sequence: SequenceSet) -> list[int]:
        """Message numbers (1-based) named by a sequence or UID set."""
        box = self._box()
        if not uid:
            return [n for n in sequence.iter(len(box.messages)) if n <= len(box.messages)]
        largest = box.messages[-1].uid if box.messages else 0
        return [i for i, m in enumerate(box.messages, 1) if sequence.contains(m.uid, largest)]

    def _close(self, core: ImapServer, event: Command) -> None:
        box = self._box()
        if not core.read_only:
            box.messages = [m for m in box.messages if "\\Deleted" not in m.flags]
        self.selected = None
        core.finish(Status.OK)

    def _unselect(self, core: ImapServer, event: Command) -> None:
        self.selected = None
        core.finish(Status.OK)

    def _expunge(self, core: ImapServer, event: Command) -> None:
        body = event.body
        assert isinstance(body, c.Expunge)
        if core.read_only:
            core.finish(Status.NO, r.Code.CANNOT, "mailbox is read-only")
            return
        wanted = set(self.numbers(True, body.uids)) if body.uids is not None else None
        self.expunge(core, lambda n, m: "\\Deleted" in m.flags and (wanted is None or n in wanted))
        core.finish(Status.OK)

    def expunge(self, core: ImapServer, doomed) -> None:
        box = self._box()
        keep: list[Message] = []
        gone: list[int] = []
        numbers: list[int] = []
        modseq = box.modseq + 1  # one mod-sequence for the whole EXPUNGE
        for number, message in enumerate(box.messages, 1):
            if doomed(number, message):
                box.modseq = modseq
                box.expunged.append((message.uid, modseq))
                gone.append(message.uid)
                numbers.append(number)
            else:
                keep.append(message)
        box.messages = keep
        if core.qresync and gone:
            core.send(r.Vanished(SequenceSet.from_numbers(gone)))
        elif not core.qresync:
            # Highest first: each number is still right when the client reads it.
            core.send(*(r.Expunge(n) for n in reversed(numbers)))

    def _search(self, core: ImapServer, event: Command) -> None:
        body = event.body
        assert isinstance(body, c.Search)
        box = self._box()
        found = [(n, m) for n, m in enumerate(box.messages, 1) if matches(body.criteria, n, m, box)]
        numbers = [m.uid if body.uid else n for n, m in found]
        if body.returns is None:
            core.send(r.SearchResult(numbers))
        else:
            core.send(_esearch(body, numbers))
        core.finish(Status.OK)

    def _fetch(self, core: ImapServer, event: Command) -> None:
        body = event.body
        assert isinstance(body, c.Fetch)
        box = self._box()
        if body.vanished and body.changed_since is not None:
            gone = [uid for uid, modseq in box.expunged if modseq > body.changed_since]
            if gone:
                core.send(r.Vanished(SequenceSet.from_numbers(gone), earlier=True))
        for number in self.numbers(body.uid, body.sequence):
            message = box.messages[number - 1]
            if body.changed_since is not None and message.modseq <= body.changed_since:
                continue
            core.send(
                r.FetchResponse(number, fetch_items(body.items, message, box, core.read_only))
            )
        core.finish(Status.OK)

    def _store(self, core: ImapServer, event: Command) -> None:
        body = event.body
        assert isinstance(body, c.Store)
        box = self._box()
        modified: list[int] = []
        modseq = box.modseq + 1  # one mod-sequence for every message this STORE changes
        for number in self.numbers(body.uid, body.sequence):
            message = box.messages[number - 1]
            if body.unchanged_since is not None and message.modseq > body.unchanged_since:
                modified.append(message.uid if body.uid else number)
                continue
            flags = set(body.flags)
            new = {c.StoreMode.REPLACE: flags, c.StoreMode.ADD: message.flags | flags,
                   c.StoreMode.REMOVE: message.flags - flags}[body.mode]  # fmt: skip
            if new != message.flags:
                box.modseq = modseq
                message.flags, message.modseq = new, modseq
            if not body.silent:
                items: list[r.FetchData] = [r.FlagsData(flag_list(message, box))]
                if body.uid:
                    items.insert(0, r.UidData(message.uid))
                if core.condstore:
                    items.append(r.ModSeqData(message.modseq))
                core.send(r.FetchResponse(number, tuple(items)))
        code = r.Modified(SequenceSet.from_numbers(modified)) if modified else None
        core.finish(Status.OK, code)

    def _copy(self, core: ImapServer, event: Command) -> None:
        self._transfer(core, event, move=False)

    def _move(self, core: ImapServer, event: Command) -> None:
        self._transfer(core, event, move=True)

    def _transfer(self, core: ImapServer, event: Command, *, move: bool) -> None:
        body = event.body
        assert isinstance(body, c.Copy | c.Move)
        target = self.mailboxes.get(body.mailbox)
        if target is None:
            core.finish(Status.NO, r.Code.TRYCREATE, "no such mailbox")
            return
        box = self._box()
        chosen = self.numbers(body.uid, body.sequence)
        source = [box.messages[n - 1].uid for n in chosen]
        copies = [target.add(box.messages[n - 1].flags, box.messages[n - 1].date,
                             box.messages[n - 1].data) for n in chosen]  # fmt: skip
        if copies:  # one mod-sequence for the whole COPY, as the real store
            target.modseq = copies[0].modseq
            for copy in copies:
                copy.modseq = target.modseq
        dest = [copy.uid for copy in copies]
        code = r.CopyUid(target.uidvalidity, SequenceSet.from_numbers(source),
                         SequenceSet.from_numbers(dest)) if source else None  # fmt: skip
        if not move:
            core.finish(Status.OK, code)
            return
        if code is not None:
            core.send(r.Condition(Status.OK, "moved", code))  # RFC 6851 §4.3
        doomed = set(chosen)
        self.expunge(core, lambda n, m: n in doomed)
        core.finish(Status.OK)

    def _sort(self, core: ImapServer, event: Command) -> None:
        body = event.body
        assert isinstance(body, c.Sort)
        box = self._box()
        found = [(n, m) for n, m in enumerate(box.messages, 1) if matches(body.search, n, m, box)]
        for criterion in reversed(body.criteria):
            key = {"ARRIVAL": lambda p: p[1].date, "SIZE": lambda p: len(p[1].data)}.get(
                criterion.key.value, lambda p: p[0]
            )
            found.sort(key=key, reverse=criterion.reverse)
        core.send(r.SortResult([m.uid if body.uid else n for n, m in found]))
        core.finish(Status.OK)

    def _thread(self, core: ImapServer, event: Command) -> None:
        from mailyard.proto.imap.values import ThreadTree

        body = event.body
        assert isinstance(body, c.Thread)
        box = self._box()
        found = [(n, m) for n, m in enumerate(box.messages, 1) if matches(body.search, n, m, box)]
        core.send(r.ThreadResult(tuple(ThreadTree((m.uid if body.uid else n,)) for n, m in found)))
        core.finish(Status.OK)


def _pattern(pattern: str) -> re.Pattern[str]:
    """RFC 9051 §6.3.9: "*" matches anything, "%" anything but the delimiter."""
    out = "".join(".*" if ch == "*" else "[^/]*" if ch == "%" else re.escape(ch) for ch in pattern)
    return re.compile(out, re.IGNORECASE if pattern.upper().startswith("INBOX") else 0)


def _esearch(body: c.Search, numbers: list[int]) -> r.ESearchResult:
    returns = body.returns or frozenset()
    names = {o.value for o in returns}
    return r.ESearchResult(
        body.uid,
        min=min(numbers) if numbers and "MIN" in names else None,
        max=max(numbers) if numbers and "MAX" in names else None,
        all=SequenceSet.from_numbers(numbers) if numbers and "ALL" in names else None,
        count=len(numbers) if "COUNT" in names else None,
    )
