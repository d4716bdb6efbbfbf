"""Every command parsed from bytes into its typed form (RFC 9051 §6 and the
extensions), fed whole, byte by byte and split at random points."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.proto.imap import commands as c
from mailyard.proto.imap.events import Command
from mailyard.proto.imap.fetchspec import (
    BinarySection,
    BinarySize,
    BodySection,
    FetchAttr,
    Partial,
    Section,
    SectionText,
)
from mailyard.proto.imap.search import (
    And,
    DateKey,
    DateWhich,
    FlagKey,
    HeaderKey,
    ModSeqKey,
    Not,
    Or,
    ReturnOption,
    SequenceKey,
    SizeKey,
    SortCriterion,
    SortKey,
    TextKey,
    TextWhere,
)
from mailyard.proto.imap.sequence import SequenceSet
from tests.proto.imap.helpers import (
    LOGIN,
    SELECT,
    lines,
    make_core,
    parse_one,
    run,
    tagged,
)
from tests.proto.splitting import split_at

S = SequenceSet.parse
ALL = frozenset({ReturnOption.ALL})

# (state, command line, expected body)
CASES: list[tuple[str, bytes, c.CommandBody]] = [
    ("none", b"a LOGIN bob secret", c.Login("bob", "secret")),
    ("none", b'a LOGIN "b\\"o\\\\b" "p w"', c.Login('b"o\\b', "p w")),
    ("none", b"a login {3}\r\nbob {6+}\r\nsecret", c.Login("bob", "secret")),
    ("none", b"a STARTTLS", c.StartTls()),
    ("auth", b"a SELECT inbox", c.Select("INBOX")),
    ("auth", b"a SELECT INBOX/Sub", c.Select("INBOX/Sub")),
    ("auth", b"a EXAMINE Drafts", c.Select("Drafts", read_only=True)),
    ("auth", b"a SELECT x (CONDSTORE)", c.Select("x", condstore=True)),
    ("auth", b"a SELECT &ZeVnLIqe-", c.Select("\u65e5\u672c\u8a9e")),
    ("auth", b"a CREATE foo/bar", c.Create("foo/bar")),
    ("auth", b"a DELETE foo", c.Delete("foo")),
    ("auth", b"a RENAME foo bar", c.Rename("foo", "bar")),
    ("auth", b"a SUBSCRIBE foo", c.Subscribe("foo")),
    ("auth", b"a UNSUBSCRIBE foo", c.Unsubscribe("foo")),
    ("auth", b'a LIST "" *', c.List("", ("*",))),
    ("auth", b'a LIST "" ""', c.List("", ("",))),
    ("auth", b"a LIST ~/Mail/ %", c.List("~/Mail/", ("%",))),
    (
        "auth",
        b'a LIST (SUBSCRIBED RECURSIVEMATCH) "" ("INBOX" foo*) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))',
        c.List(
            "",
            ("INBOX", "foo*"),
            frozenset({c.ListSelect.SUBSCRIBED, c.ListSelect.RECURSIVEMATCH}),
            c.ListReturn(children=True, status=(c.StatusItem.MESSAGES, c.StatusItem.UNSEEN)),
            extended=True,
        ),
    ),
    (
        "auth",
        b'a LIST (SPECIAL-USE) "" * RETURN (SPECIAL-USE SUBSCRIBED)',
        c.List(
            "",
            ("*",),
            frozenset({c.ListSelect.SPECIAL_USE}),
            c.ListReturn(subscribed=True, special_use=True),
            extended=True,
        ),
    ),
    ("auth", b'a LSUB "" *', c.Lsub("", "*")),
    (
        "auth",
        b"a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN SIZE HIGHESTMODSEQ DELETED APPENDLIMIT)",
        c.Status(
            "INBOX",
            tuple(
                c.StatusItem(w)
                for w in [
                    "MESSAGES",
                    "RECENT",
                    "UIDNEXT",
                    "UIDVALIDITY",
                    "UNSEEN",
                    "SIZE",
                    "HIGHESTMODSEQ",
                    "DELETED",
                    "APPENDLIMIT",
                ]
            ),
        ),
    ),
    ("auth", b"a IDLE", c.Idle()),
    ("auth", b'a GETQUOTA ""', c.GetQuota("")),
    ("auth", b"a GETQUOTAROOT INBOX", c.GetQuotaRoot("INBOX")),
    ("auth", b'a SETQUOTA "" (STORAGE 512)', c.SetQuota("", (("STORAGE", 512),))),
    ("auth", b"a NOOP", c.Noop()),
    ("selected", b"a CHECK", c.Check()),
    ("selected", b"a CLOSE", c.Close()),
    ("selected", b"a UNSELECT", c.Unselect()),
    ("selected", b"a EXPUNGE", c.Expunge()),
    ("selected", b"a UID EXPUNGE 3:5,7", c.Expunge(S("3:5,7"))),
    ("selected", b"a FETCH 1:* FLAGS", c.Fetch(False, S("1:*"), (FetchAttr.FLAGS,))),
    (
        "selected",
        b"a FETCH 2 ALL",
        c.Fetch(
            False,
            S("2"),
            (FetchAttr.FLAGS, FetchAttr.INTERNALDATE, FetchAttr.RFC822_SIZE, FetchAttr.ENVELOPE),
        ),
    ),
    (
        "selected",
        b"a UID FETCH 1:* (FLAGS RFC822.SIZE INTERNALDATE)",
        c.Fetch(
            True,
            S("1:*"),
            (FetchAttr.UID, FetchAttr.FLAGS, FetchAttr.RFC822_SIZE, FetchAttr.INTERNALDATE),
        ),
    ),
    (
        "selected",
        b"a FETCH 1 (BODY[] BODY.PEEK[1.2.HEADER.FIELDS (From to)]<0.2048> BODY[TEXT] BODY[2.MIME] BODY[3]<5.10>)",
        c.Fetch(
            False,
            S("1"),
            (
                BodySection(Section()),
                BodySection(
                    Section((1, 2), SectionText.HEADER_FIELDS, ("FROM", "TO")),
                    Partial(0, 2048),
                    True,
                ),
                BodySection(Section((), SectionText.TEXT)),
                BodySection(Section((2,), SectionText.MIME)),
                BodySection(Section((3,)), Partial(5, 10)),
            ),
        ),
    ),
    (
        "selected",
        b"a FETCH 1 (BINARY[1] BINARY.PEEK[1.2]<0.100> BINARY.SIZE[2] BODYSTRUCTURE BODY RFC822.HEADER RFC822.TEXT RFC822)",
        c.Fetch(
            False,
            S("1"),
            (
                BinarySection((1,)),
                BinarySection((1, 2), Partial(0, 100), True),
                BinarySize((2,)),
                FetchAttr.BODYSTRUCTURE,
                FetchAttr.BODY,
                FetchAttr.RFC822_HEADER,
                FetchAttr.RFC822_TEXT,
                FetchAttr.RFC822,
            ),
        ),
    ),
    (
        "selected",
        b'a FETCH 1 BODY[HEADER.FIELDS.NOT ("X-Spam" {4}\r\nDate)]',
        c.Fetch(
            False,
            S("1"),
            (BodySection(Section((), SectionText.HEADER_FIELDS_NOT, ("X-SPAM", "DATE"))),),
        ),
    ),
    (
        "selected",
        b"a FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)",
        c.Fetch(False, S("1:*"), (FetchAttr.FLAGS, FetchAttr.MODSEQ), changed_since=12345),
    ),
    ("selected", b"a FETCH 1 MODSEQ", c.Fetch(False, S("1"), (FetchAttr.MODSEQ,))),
    (
        "selected",
        b"a STORE 1:3 +FLAGS (\\Seen \\deleted $Junk)",
        c.Store(False, S("1:3"), c.StoreMode.ADD, ("\\Seen", "\\Deleted", "$Junk")),
    ),
    (
        "selected",
        b"a UID STORE 5 -FLAGS.SILENT \\Flagged",
        c.Store(True, S("5"), c.StoreMode.REMOVE, ("\\Flagged",), silent=True),
    ),
    (
        "selected",
        b"a STORE 1 (UNCHANGEDSINCE 99) FLAGS ()",
        c.Store(False, S("1"), c.StoreMode.REPLACE, (), unchanged_since=99),
    ),
    ("selected", b"a COPY 1:2 Trash", c.Copy(False, S("1:2"), "Trash")),
    ("selected", b"a UID COPY 10 Trash", c.Copy(True, S("10"), "Trash")),
    ("selected", b"a MOVE 1 Junk", c.Move(False, S("1"), "Junk")),
    ("selected", b"a UID MOVE 1:* Junk", c.Move(True, S("1:*"), "Junk")),
    ("selected", b"a SEARCH ALL", c.Search(False, And(()))),
    (
        "selected",
        b"a UID SEARCH RETURN (MIN COUNT) UNSEEN",
        c.Search(True, FlagKey("\\Seen", False), frozenset({ReturnOption.MIN, ReturnOption.COUNT})),
    ),
    ("selected", b"a SEARCH RETURN () ALL", c.Search(False, And(()), ALL)),
    (
        "selected",
        b"a SEARCH CHARSET utf-8 SUBJECT {5}\r\n\xc3\xa9t\xc3\xa9",
        c.Search(False, TextKey(TextWhere.SUBJECT, "été"), charset="UTF-8"),
    ),
    (
        "selected",
        b'a SEARCH OR FROM "a b" NOT (SEEN FLAGGED) 2:4,*',
        c.Search(
            False,
            And(
                (
                    Or(
                        TextKey(TextWhere.FROM, "a b"),
                        Not(And((FlagKey("\\Seen"), FlagKey("\\Flagged")))),
                    ),
                    SequenceKey(S("2:4,*")),
                )
            ),
        ),
    ),
    (
        "selected",
        b'a SEARCH NEW OLD KEYWORD $Junk UNKEYWORD foo HEADER X-Tag "" LARGER 100 SMALLER 9',
        c.Search(
            False,
            And(
                (
                    And((FlagKey("\\Recent"), FlagKey("\\Seen", False))),
                    FlagKey("\\Recent", False),
                    FlagKey("$Junk"),
                    FlagKey("foo", False),
                    HeaderKey("X-TAG", ""),
                    SizeKey(True, 100),
                    SizeKey(False, 9),
                )
            ),
        ),
    ),
    (
        "selected",
        b'a SEARCH SINCE 1-Feb-1994 SENTBEFORE "17-Jul-1996" UID 1:5 MODSEQ 620162338',
        c.Search(
            False,
            And(
                (
                    DateKey(DateWhich.INTERNAL, "SINCE", date(1994, 2, 1)),
                    DateKey(DateWhich.SENT, "BEFORE", date(1996, 7, 17)),
                    SequenceKey(S("1:5"), uid=True),
                    ModSeqKey(620162338),
                )
            ),
        ),
    ),
    (
        "selected",
        b'a SEARCH MODSEQ "/flags/\\\\draft" all 620162338',
        c.Search(False, ModSeqKey(620162338, "/flags/\\draft", "ALL")),
    ),
    (
        "selected",
        b"a SORT (REVERSE DATE SUBJECT) UTF-8 ALL",
        c.Sort(
            False,
            (SortCriterion(SortKey.DATE, True), SortCriterion(SortKey.SUBJECT)),
            And(()),
            "UTF-8",
        ),
    ),
    (
        "selected",
        b"a UID SORT (ARRIVAL) US-ASCII SEEN",
        c.Sort(True, (SortCriterion(SortKey.ARRIVAL),), FlagKey("\\Seen"), "US-ASCII"),
    ),
    (
        "selected",
        b"a THREAD REFERENCES UTF-8 ALL",
        c.Thread(False, c.ThreadAlgorithm.REFERENCES, And(()), "UTF-8"),
    ),
    (
        "selected",
        b"a UID THREAD orderedsubject UTF-8 1:*",
        c.Thread(True, c.ThreadAlgorithm.ORDEREDSUBJECT, SequenceKey(S("1:*")), "UTF-8"),
    ),
]


@pytest.mark.parametrize(
    ("state", "line", "expected"), CASES, ids=[x[1][:40].decode("latin-1") for x in CASES]
)
def test_command_parses(state: str, line: bytes, expected: c.CommandBody) -> None:
    assert parse_one(line + b"\r\n", state=state, starttls=True) == expected


def test_append_parses() -> None:
    result = run(
        [
            LOGIN
            + b'a APPEND saved-messages (\\Seen $X) " 7-Feb-1994 21:52:25 -0800" {5+}\r\nhello\r\n'
        ]
    )
    append = result.commands[-1]
    zone = timezone(-timedelta(hours=8))
    assert append == c.Append(
        "saved-messages", ("\\Seen", "$X"), datetime(1994, 2, 7, 21, 52, 25, tzinfo=zone), 5, False
    )
    assert result.appended == b"hello"


def test_append_mailbox_as_literal() -> None:
    result = run([LOGIN + b"a APPEND {5}\r\n", b"INBOX {3}\r\n", b"abc\r\n"])
    assert result.commands[-1] == c.Append("INBOX", (), None, 3, True)
    assert result.appended == b"abc"
    assert result.lines[-3:] == [
        "+ Ready for literal data",
        "+ Ready for append literal",
        "a OK APPEND completed",
    ]


def test_qresync_select_parses() -> None:
    data = LOGIN + lines(
        "e ENABLE QRESYNC",
        "a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:10 11:20)))",
    )
    body = run([data]).commands[-1]
    assert body == c.Select(
        "INBOX",
        False,
        True,
        c.QresyncParams(67890007, 20050715194045000, S("41,43:211,214:541"), S("1:10"), S("11:20")),
    )


def test_uid_fetch_vanished_needs_qresync() -> None:
    line = b"a UID FETCH 1:* FLAGS (CHANGEDSINCE 5 VANISHED)"
    result = run([LOGIN + lines("e ENABLE QRESYNC", "s SELECT INBOX") + line + b"\r\n"])
    assert result.commands[-1] == c.Fetch(
        True, S("1:*"), (FetchAttr.UID, FetchAttr.FLAGS, FetchAttr.MODSEQ), 5, True
    )
    result = run([SELECT + line + b"\r\n"])
    assert tagged(result, "a").startswith("a BAD")


def test_id_and_client_id() -> None:
    core = make_core()
    result = run([lines('a ID ("name" "sodr" "version" NIL)', "b ID NIL")], core=core)
    assert result.lines == [
        '* ID ("name" "mailyard")',
        "a OK ID completed",
        '* ID ("name" "mailyard")',
        "b OK ID completed",
    ]
    assert core.client_id is None
    core = make_core()
    run([lines('a ID ("name" "sodr" "version" NIL)')], core=core)
    assert core.client_id == (("name", "sodr"), ("version", None))


def test_uid_fetch_includes_uid_and_search_in_rev2_is_esearch() -> None:
    data = LOGIN + lines("e ENABLE IMAP4rev2", "s SELECT INBOX", "a SEARCH UNSEEN")
    assert run([data]).commands[-1] == c.Search(False, FlagKey("\\Seen", False), ALL)


# -- streaming: the same commands split anywhere -------------------------------------

# CLOSE and UNSELECT would leave the selected state half-way.
_IN_PIPELINE = [line for state, line, body in CASES
                if state == "selected" and not isinstance(body, c.Close | c.Unselect)]  # fmt: skip
PIPELINE = SELECT + b"".join(line + b"\r\n" for line in _IN_PIPELINE)


def _bodies(chunks: list[bytes]) -> list[c.CommandBody]:
    return [e.body for e in run(chunks).events if isinstance(e, Command)]


def test_pipeline_bytewise_equals_whole() -> None:
    whole = _bodies([PIPELINE])
    assert len(whole) == 2 + len(_IN_PIPELINE)
    assert _bodies([PIPELINE[i : i + 1] for i in range(len(PIPELINE))]) == whole


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, len(PIPELINE)), max_size=12))
def test_pipeline_random_splits(cuts: list[int]) -> None:
    assert _bodies(split_at(PIPELINE, cuts)) == _bodies([PIPELINE])


def test_searchres_saved_results() -> None:
    # RFC 5182: RETURN (SAVE) keeps the result; "$" names it later.
    saved = SequenceSet(saved=True)
    body = parse_one(b"a UID SEARCH RETURN (SAVE) SEEN\r\n")
    assert body == c.Search(True, FlagKey("\\Seen"), frozenset({ReturnOption.SAVE}))
    assert parse_one(b"a FETCH $ FLAGS\r\n") == c.Fetch(False, saved, (FetchAttr.FLAGS,))
    assert parse_one(b"a UID COPY $ Trash\r\n") == c.Copy(True, saved, "Trash")
    assert parse_one(b"a SEARCH UID $\r\n") == c.Search(False, SequenceKey(saved, uid=True))
    off = make_core(searchres=False, imap4rev2=False)
    result = run([SELECT + lines("a FETCH $ FLAGS", "b SEARCH RETURN (SAVE) ALL")], core=off)
    assert tagged(result, "a") == "a BAD saved search results ($) are not available"
    assert tagged(result, "b") == "b BAD RETURN (SAVE) is not available"
