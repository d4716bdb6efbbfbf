"""The one encoder: golden renderings of every response, and round trips
through a test-only response reader (strings, literals, lists, names)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.proto.imap import responses as r
from mailyard.proto.imap.commands import StatusItem
from mailyard.proto.imap.encoder import Encoder, Output
from mailyard.proto.imap.errors import Status
from mailyard.proto.imap.fetchspec import FetchAttr, Section, SectionText
from mailyard.proto.imap.sequence import SequenceSet
from mailyard.proto.imap.utf7 import decode_mailbox
from mailyard.proto.imap.values import (
    Address,
    Disposition,
    Envelope,
    MultiPart,
    SinglePart,
    ThreadTree,
)
from tests.proto.imap.respparse import read_response, split_responses


def render(response: r.Untagged, *, utf8: bool = False, tag: str | None = "A1") -> bytes:
    enc = Encoder()
    enc.utf8 = utf8
    out = Output()
    enc.untagged(response, out, tag)
    return out.take()


S = SequenceSet.parse

GOLDEN: list[tuple[r.Untagged, bytes]] = [
    (r.Exists(23), b"* 23 EXISTS"),
    (r.Recent(5), b"* 5 RECENT"),
    (r.Expunge(3), b"* 3 EXPUNGE"),
    (r.Vanished(S("41,43:116"), earlier=True), b"* VANISHED (EARLIER) 41,43:116"),
    (r.Vanished(S("405")), b"* VANISHED 405"),
    (r.Flags(("\\Answered", "\\Seen", "$Junk")), b"* FLAGS (\\Answered \\Seen $Junk)"),
    (
        r.Condition(Status.OK, "UIDs valid", r.UidValidity(3857529045)),
        b"* OK [UIDVALIDITY 3857529045] UIDs valid",
    ),
    (
        r.Condition(Status.OK, "", r.PermanentFlags(("\\Deleted", "\\Seen", "\\*"))),
        b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] OK",
    ),
    (r.Condition(Status.NO, "disk", r.Code.OVERQUOTA), b"* NO [OVERQUOTA] disk"),
    (
        r.Condition(Status.OK, "moved", r.CopyUid(38505, S("304,319:320"), S("3956:3958"))),
        b"* OK [COPYUID 38505 304,319:320 3956:3958] moved",
    ),
    (
        r.Condition(Status.OK, "x", r.HighestModSeq(715194045007)),
        b"* OK [HIGHESTMODSEQ 715194045007] x",
    ),
    (r.Condition(Status.OK, "x", r.UidNext(4392)), b"* OK [UIDNEXT 4392] x"),
    (r.Condition(Status.OK, "x", r.Unseen(12)), b"* OK [UNSEEN 12] x"),
    (r.Condition(Status.OK, "x", r.BadCharset()), b"* OK [BADCHARSET (UTF-8 US-ASCII)] x"),
    (r.Condition(Status.OK, "x", r.Modified(S("7,9"))), b"* OK [MODIFIED 7,9] x"),
    (r.Condition(Status.OK, "x", r.AppendUid(38505, S("3955"))), b"* OK [APPENDUID 38505 3955] x"),
    (r.SearchResult([2, 3, 6]), b"* SEARCH 2 3 6"),
    (r.SearchResult([]), b"* SEARCH"),
    (r.SearchResult([1], modseq=917162500), b"* SEARCH 1 (MODSEQ 917162500)"),
    (r.SortResult([5, 3, 4, 1, 2]), b"* SORT 5 3 4 1 2"),
    (r.ESearchResult(True, min=2, count=3), b'* ESEARCH (TAG "A1") UID MIN 2 COUNT 3'),
    (r.ESearchResult(False, all=S("2,10:11"), correlate=False), b"* ESEARCH ALL 2,10:11"),
    (r.ESearchResult(False, count=0), b'* ESEARCH (TAG "A1") COUNT 0'),
    (
        r.ThreadResult(
            (ThreadTree((2,)), ThreadTree((3, 6), (ThreadTree((4, 23)), ThreadTree((44, 7, 96)))))
        ),
        b"* THREAD (2)(3 6 (4 23)(44 7 96))",
    ),
    (r.ThreadResult((ThreadTree((), (ThreadTree((3,)), ThreadTree((5,)))),)), b"* THREAD ((3)(5))"),
    (
        r.ThreadResult((ThreadTree((1,), (ThreadTree((2,), (ThreadTree((3,)),)),)),)),
        b"* THREAD (1 2 3)",
    ),
    (r.ThreadResult(()), b"* THREAD"),
    (r.ListResponse("INBOX", ("\\HasNoChildren",)), b'* LIST (\\HasNoChildren) "/" "INBOX"'),
    (r.ListResponse("Entwürfe", ("\\Drafts",)), b'* LIST (\\Drafts) "/" "Entw&APw-rfe"'),
    (
        r.ListResponse("Foo", (), childinfo=("SUBSCRIBED",)),
        b'* LIST () "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))',
    ),
    (r.ListResponse("New", (), oldname="Old"), b'* LIST () "/" "New" ("OLDNAME" ("Old"))'),
    (r.ListResponse("", ("\\Noselect",), delimiter="/"), b'* LIST (\\Noselect) "/" ""'),
    (r.ListResponse("x", (), delimiter=None), b'* LIST () NIL "x"'),
    (r.LsubResponse("a b", ()), b'* LSUB () "/" "a b"'),
    (
        r.StatusResponse("blurdybloop", ((StatusItem.MESSAGES, 231), (StatusItem.UIDNEXT, 44292))),
        b'* STATUS "blurdybloop" (MESSAGES 231 UIDNEXT 44292)',
    ),
    (r.QuotaResponse("", (r.QuotaResource("STORAGE", 10, 512),)), b'* QUOTA "" (STORAGE 10 512)'),
    (r.QuotaRootResponse("INBOX", ("",)), b'* QUOTAROOT "INBOX" ""'),
    (r.CapabilityResponse(("IMAP4rev1", "IDLE")), b"* CAPABILITY IMAP4rev1 IDLE"),
    (r.EnabledResponse(("CONDSTORE",)), b"* ENABLED CONDSTORE"),
    (r.EnabledResponse(()), b"* ENABLED"),
    (r.NamespaceResponse(), b'* NAMESPACE (("" "/")) NIL NIL'),
    (r.IdResponse(None), b"* ID NIL"),
    (r.IdResponse((("name", "mailyard"),)), b'* ID ("name" "mailyard")'),
    (
        r.FetchResponse(
            12,
            (
                r.FlagsData(("\\Seen",)),
                r.UidData(4827313),
                r.SizeData(44827),
                r.ModSeqData(624140003),
            ),
        ),
        b"* 12 FETCH (FLAGS (\\Seen) UID 4827313 RFC822.SIZE 44827 MODSEQ (624140003))",
    ),
    (
        r.FetchResponse(
            1,
            (
                r.InternalDateData(
                    datetime(1996, 7, 17, 2, 44, 25, tzinfo=timezone(-timedelta(hours=7)))
                ),
            ),
        ),
        b'* 1 FETCH (INTERNALDATE "17-Jul-1996 02:44:25 -0700")',
    ),
    (
        r.FetchResponse(1, (r.InternalDateData(86400 * 3),)),
        b'* 1 FETCH (INTERNALDATE " 4-Jan-1970 00:00:00 +0000")',
    ),
    (
        r.FetchResponse(2, (r.SectionData(Section(), b"Hi\r\n"),)),
        b"* 2 FETCH (BODY[] {4}\r\nHi\r\n)",
    ),
    (
        r.FetchResponse(
            2,
            (r.SectionData(Section((1, 2), SectionText.HEADER_FIELDS, ("FROM", "X Y")), None, 0),),
        ),
        b'* 2 FETCH (BODY[1.2.HEADER.FIELDS (FROM "X Y")]<0> NIL)',
    ),
    (r.FetchResponse(2, (r.BinaryData((1,), b"a\x00b"),)), b"* 2 FETCH (BINARY[1] ~{3}\r\na\x00b)"),
    (r.FetchResponse(2, (r.BinaryData((1,), b"ab", 5),)), b"* 2 FETCH (BINARY[1]<5> {2}\r\nab)"),
    (r.FetchResponse(2, (r.BinarySizeData((1, 2), 88),)), b"* 2 FETCH (BINARY.SIZE[1.2] 88)"),
    (
        r.FetchResponse(2, (r.Rfc822Data(FetchAttr.RFC822_HEADER, b"A: b\r\n\r\n"),)),
        b"* 2 FETCH (RFC822.HEADER {8}\r\nA: b\r\n\r\n)",
    ),
]


@pytest.mark.parametrize(("response", "wire"), GOLDEN, ids=[type(g[0]).__name__ for g in GOLDEN])
def test_golden(response: r.Untagged, wire: bytes) -> None:
    assert render(response) == wire + b"\r\n"
    read_response(render(response))  # well-formed for a reader too


ENVELOPE = Envelope(
    date="Wed, 17 Jul 1996 02:23:25 -0700 (PDT)",
    subject="IMAP4rev1 WG mtg summary and minutes",
    from_=(Address("Terry Gray", None, "gray", "cac.washington.edu"),),
    sender=(Address("Terry Gray", None, "gray", "cac.washington.edu"),),
    reply_to=(Address("Terry Gray", None, "gray", "cac.washington.edu"),),
    to=(Address(None, None, "imap", "cac.washington.edu"),),
    cc=(
        Address(None, None, "minutes", "CNRI.Reston.VA.US"),
        Address("John Klensin", None, "KLENSIN", "MIT.EDU"),
    ),
    bcc=None,
    in_reply_to=None,
    message_id="<B27397-0100000@cac.washington.edu>",
)


def test_envelope_rfc3501_example() -> None:
    # RFC 3501 §8's example ENVELOPE.
    wire = render(r.FetchResponse(12, (r.EnvelopeData(ENVELOPE),)))
    assert wire == (
        b'* 12 FETCH (ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes"'
        b' (("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu"))'
        b' (("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu"))'
        b' ((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL'
        b' "<B27397-0100000@cac.washington.edu>"))\r\n'
    )


TEXT = SinglePart("TEXT", "PLAIN", (("CHARSET", "US-ASCII"),), None, None, "7BIT", 3028, lines=92)


def test_body_and_bodystructure() -> None:
    assert render(r.FetchResponse(1, (r.BodyStructureData(TEXT, extensible=False),))) == (
        b'* 1 FETCH (BODY ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92))\r\n'
    )
    assert render(r.FetchResponse(1, (r.BodyStructureData(TEXT),))) == (
        b'* 1 FETCH (BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92'
        b" NIL NIL NIL NIL))\r\n"
    )
    attachment = SinglePart("APPLICATION", "PDF", (("NAME", "a.pdf"),), None, None, "BASE64", 100,
                            disposition=Disposition("attachment", (("FILENAME", "a.pdf"),)),
                            language=("en", "de"), location="http://x/")  # fmt: skip
    inner = SinglePart("MESSAGE", "RFC822", (), None, None, "7BIT", 50, lines=3,
                       envelope=Envelope(subject="hi"), body=TEXT)  # fmt: skip
    multi = MultiPart((TEXT, attachment, inner), "MIXED", (("BOUNDARY", "xx"),))
    wire = render(r.FetchResponse(1, (r.BodyStructureData(multi),)))
    assert wire == (
        b'* 1 FETCH (BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92 NIL NIL NIL NIL)'
        b'("APPLICATION" "PDF" ("NAME" "a.pdf") NIL NIL "BASE64" 100 NIL ("attachment" ("FILENAME" "a.pdf"))'
        b' ("en" "de") "http://x/")'
        b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 50 (NIL "hi" NIL NIL NIL NIL NIL NIL NIL NIL)'
        b' ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92 NIL NIL NIL NIL) 3 NIL NIL NIL NIL)'
        b' "MIXED" ("BOUNDARY" "xx") NIL NIL NIL))\r\n'
    )
    _tokens, rest = read_response(wire)
    assert rest == b""


def test_string_forms() -> None:
    enc = Encoder()
    assert enc.string("plain") == b'"plain"'
    assert enc.string('a"b\\c') == b'"a\\"b\\\\c"'
    assert enc.string("two\r\nlines") == b"{10}\r\ntwo\r\nlines"
    assert enc.string("x" * 1025).startswith(b"{1025}\r\n")
    assert enc.string("é") == b"{2}\r\n\xc3\xa9"
    enc.utf8 = True
    assert enc.string("é") == b'"\xc3\xa9"'
    assert enc.string(b"\xff") == b"{1}\r\n\xff"  # not UTF-8: a literal even then
    assert enc.nstring(None) == b"NIL"
    assert enc.astring("INBOX") == b"INBOX"
    assert enc.astring("a b") == b'"a b"'
    assert enc.astring("") == b'""'


def test_mailbox_names_follow_utf8_mode() -> None:
    name = "Entwürfe/日本"
    assert render(r.StatusResponse(name, ())) == b'* STATUS "Entw&APw-rfe/&ZeVnLA-" ()\r\n'
    assert (
        render(r.StatusResponse(name, ()), utf8=True) == '* STATUS "Entwürfe/日本" ()\r\n'.encode()
    )


@pytest.mark.parametrize(
    "response",
    [
        r.Condition(Status.OK, "a\r\nb"),
        r.Condition(Status.BYE, "x"),
        r.Flags(("bad flag",)),
        r.Exists(-1),
        r.Vanished(SequenceSet()),
        r.Vanished(SequenceSet(saved=True)),
        r.ListResponse("x", ("(",)),
    ],
)
def test_invalid_values_raise(response: r.Untagged) -> None:
    with pytest.raises(ValueError):
        render(response)


def test_large_payload_is_not_copied() -> None:
    payload = memoryview(b"x" * 100_000)
    enc = Encoder()
    out = Output()
    enc.untagged(r.FetchResponse(1, (r.SectionData(Section(), payload),)), out)
    parts = out.take_parts()
    assert any(part is payload for part in parts)
    assert b"".join(parts) == b"* 1 FETCH (BODY[] {100000}\r\n" + b"x" * 100_000 + b")\r\n"


def test_rollback() -> None:
    out = Output()
    out.write(b"keep")
    mark = out.mark()
    out.write(b"drop")
    out.write_payload(b"y" * 10_000)
    out.write(b"more")
    out.rollback(mark)
    assert out.take() == b"keep"


# -- round trips through the test reader --------------------------------------------------


@given(st.binary(max_size=2000).filter(lambda b: b"\x00" not in b))
def test_string_round_trip(data: bytes) -> None:
    enc = Encoder()
    tokens, rest = read_response(b"* X " + enc.string(data) + b"\r\n")
    assert tokens == ["*", "X", data] and rest == b""


@given(
    st.text(max_size=200).filter(
        lambda t: "\x00" not in t and not any(0xD800 <= ord(ch) <= 0xDFFF for ch in t)
    ),
    st.booleans(),
)
def test_mailbox_round_trip(name: str, utf8: bool) -> None:
    wire = render(r.StatusResponse(name, ()), utf8=utf8)
    tokens, _ = read_response(wire)
    raw = tokens[2]
    assert isinstance(raw, bytes)
    assert (raw.decode("utf-8") if utf8 else decode_mailbox(raw.decode("ascii"))) == name


nested = st.recursive(
    st.none() | st.binary(max_size=30).filter(lambda b: b"\x00" not in b),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=20,
)


def _render_value(enc: Encoder, value: object) -> bytes:
    if value is None:
        return b"NIL"
    if isinstance(value, bytes):
        return enc.string(value)
    assert isinstance(value, list)
    return b"(" + b" ".join(_render_value(enc, v) for v in value) + b")"


@given(nested)
def test_nested_value_round_trip(value: object) -> None:
    enc = Encoder()
    tokens, rest = read_response(b"* X " + _render_value(enc, value) + b"\r\n")
    assert tokens == ["*", "X", value] and rest == b""


@given(
    st.lists(
        st.tuples(st.integers(1, 10**6), st.sampled_from([(), ("\\Seen",), ("\\Seen", "$Junk")])),
        max_size=20,
    )
)
def test_fetch_lines_parse(rows: list[tuple[int, tuple[str, ...]]]) -> None:
    enc = Encoder()
    out = Output()
    for uid, flags in rows:
        enc.untagged(r.FetchResponse(uid, (r.UidData(uid), r.FlagsData(flags))), out)
    parsed = split_responses(out.take())
    assert [p[1] for p in parsed] == [uid for uid, _ in rows]
    assert [p[3][3] for p in parsed] == [list(flags) for _, flags in rows]


# -- the nested form mailyard.message produces renders like the typed form -------------


def _nested_envelope(env: Envelope) -> tuple:
    def addrs(a):
        return tuple((x.name, x.adl, x.mailbox, x.host) for x in a) if a else None

    return (env.date, env.subject, addrs(env.from_), addrs(env.sender), addrs(env.reply_to),
            addrs(env.to), addrs(env.cc), addrs(env.bcc), env.in_reply_to, env.message_id)  # fmt: skip


def _params(p):
    return tuple(x for pair in p for x in pair) if p else None


def _tail(part):
    d = part.disposition
    lang = (
        None
        if not part.language
        else part.language[0]
        if len(part.language) == 1
        else part.language
    )
    return ((d.type, _params(d.params)) if d else None, lang, part.location)


def _nested_body(body, extensible: bool) -> tuple:
    if isinstance(body, MultiPart):
        parts = tuple(_nested_body(p, extensible) for p in body.parts)
        return (*parts, body.subtype) + ((_params(body.params), *_tail(body)) if extensible else ())
    fields = (
        body.type,
        body.subtype,
        _params(body.params),
        body.id,
        body.description,
        body.encoding,
        body.size,
    )
    if body.envelope is not None and body.body is not None:
        fields += (
            _nested_envelope(body.envelope),
            _nested_body(body.body, extensible),
            body.lines or 0,
        )
    elif body.lines is not None:
        fields += (body.lines,)
    return fields + ((body.md5, *_tail(body)) if extensible else ())


def test_nested_forms_render_like_typed_ones() -> None:
    enc = Encoder()
    assert enc.envelope_value(_nested_envelope(ENVELOPE)) == enc.envelope(ENVELOPE)
    attachment = SinglePart("APPLICATION", "PDF", (("NAME", "a.pdf"),), None, None, "BASE64", 100,
                            disposition=Disposition("attachment", (("FILENAME", "a.pdf"),)),
                            language=("en", "de"), location="http://x/")  # fmt: skip
    inner = SinglePart("MESSAGE", "RFC822", (), None, None, "7BIT", 50, lines=3,
                       envelope=ENVELOPE, body=MultiPart((TEXT, TEXT), "ALTERNATIVE"))  # fmt: skip
    for body in (
        TEXT,
        attachment,
        inner,
        MultiPart((TEXT, attachment, inner), "MIXED", (("BOUNDARY", "x"),)),
    ):
        for extensible in (True, False):
            assert enc.body_value(_nested_body(body, extensible), extensible) == enc.body(
                body, extensible
            )
    wire = render(r.FetchResponse(1, (r.EnvelopeData(_nested_envelope(ENVELOPE)),
                                      r.BodyStructureData(_nested_body(inner, True)))))  # fmt: skip
    assert read_response(wire)[1] == b""


@pytest.mark.parametrize("bad", [(), (1, 2), ("a",) * 9, object(), (True,)])
def test_nested_forms_reject_nonsense(bad: object) -> None:
    enc = Encoder()
    with pytest.raises(ValueError):
        enc.envelope_value(bad)  # type: ignore[arg-type]
    if bad not in (("a",) * 9, (1, 2)):  # well-formed lists, if meaningless bodies
        with pytest.raises(ValueError):
            enc.body_value(bad, True)  # type: ignore[arg-type]
