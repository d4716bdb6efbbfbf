"""ENABLE (RFC 5161) and what it changes: UTF8=ACCEPT / IMAP4rev2 names
and strings (RFC 6855, RFC 9051 §5.1), CONDSTORE (RFC 7162 §3.1) and
QRESYNC (§3.2) bookkeeping."""

from __future__ import annotations

from mailyard.proto.imap import commands as c
from mailyard.proto.imap.events import Command
from mailyard.proto.imap.responses import ListResponse
from mailyard.proto.imap.search import TextKey, TextWhere
from mailyard.proto.imap.server import ImapServer
from tests.proto.imap.helpers import LOGIN, SELECT, default_answer, lines, make_core, run, tagged


def test_enable_lists_what_it_enabled(feed) -> None:
    core_result = feed(
        LOGIN + lines("e ENABLE condstore X-UNKNOWN UTF8=ACCEPT", "f ENABLE CONDSTORE QRESYNC")
    )
    assert core_result.lines[-4:] == [
        "* ENABLED CONDSTORE UTF8=ACCEPT", "e OK ENABLE completed",
        "* ENABLED QRESYNC", "f OK ENABLE completed",
    ]  # fmt: skip


def test_enable_properties() -> None:
    core = make_core()
    run([LOGIN + lines("e ENABLE QRESYNC IMAP4rev2")], core=core)
    assert core.enabled == {"QRESYNC", "IMAP4rev2"}
    assert core.qresync and core.condstore and core.utf8 and core.imap4rev2


def test_enable_only_offered_extensions() -> None:
    core = make_core(qresync=False, condstore=False, utf8_accept=False, imap4rev2=False)
    result = run([LOGIN + lines("e ENABLE QRESYNC CONDSTORE UTF8=ACCEPT IMAP4rev2")], core=core)
    assert result.lines[-2] == "* ENABLED"
    assert not core.enabled


def test_utf8_names_after_enable() -> None:
    name = "Entwürfe".encode()
    result = run([LOGIN + b"a SELECT " + name + b"\r\n"])
    assert tagged(result, "a").startswith("a NO mailbox name is not modified UTF-7")
    result = run([LOGIN + lines("e ENABLE UTF8=ACCEPT") + b'a SELECT "' + name + b'"\r\n'])
    assert result.commands[-1] == c.Select("Entwürfe")
    # "&" is just a character once names are UTF-8.
    result = run([LOGIN + lines("e ENABLE UTF8=ACCEPT", "a CREATE A&B")])
    assert result.commands[-1] == c.Create("A&B")


def test_responses_follow_utf8() -> None:
    def answer(core: ImapServer, event) -> None:
        if isinstance(event, Command) and isinstance(event.body, c.List):
            core.send(ListResponse("Entwürfe", ("\\Drafts",)))
        default_answer(core, event)

    result = run([LOGIN + lines('l LIST "" *')], answer=answer)
    assert result.lines[-2] == '* LIST (\\Drafts) "/" "Entw&APw-rfe"'
    result = run([LOGIN + lines("e ENABLE IMAP4rev2", 'l LIST "" *')], answer=answer)
    assert result.lines[-2] == '* LIST (\\Drafts) "/" "Entwürfe"'


def test_search_charset_rules() -> None:
    result = run([SELECT + lines("a SEARCH CHARSET KOI8-R ALL")])
    assert tagged(result, "a") == "a NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset KOI8-R"
    result = run(
        [LOGIN + lines("e ENABLE UTF8=ACCEPT", "s SELECT INBOX", "a SEARCH CHARSET UTF-8 ALL")]
    )
    assert tagged(result, "a") == "a BAD SEARCH CHARSET is not allowed after ENABLE UTF8=ACCEPT"
    result = run([LOGIN + lines("e ENABLE IMAP4rev2", "s SELECT INBOX", "a SEARCH CHARSET UTF-8 ALL")])
    assert tagged(result, "a") == "a OK SEARCH completed"
    result = run(
        [
            LOGIN
            + lines("e ENABLE UTF8=ACCEPT", "s SELECT INBOX")
            + 'a SEARCH SUBJECT "été"\r\n'.encode()
        ]
    )
    assert result.commands[-1] == c.Search(False, TextKey(TextWhere.SUBJECT, "été"))


def _events(data: bytes) -> list[Command]:
    return [e for e in run([data]).events if isinstance(e, Command)]


def test_condstore_enabling_commands_announce_once() -> None:
    # RFC 7162 §3.1: the first CONDSTORE enabling command in the selected
    # state wants HIGHESTMODSEQ; later ones do not.
    events = _events(SELECT + lines("a FETCH 1 (FLAGS MODSEQ)", "b FETCH 1 MODSEQ"))
    assert [e.condstore_enabled for e in events] == [False, False, True, False]
    events = _events(SELECT + lines("a STORE 1 (UNCHANGEDSINCE 5) +FLAGS \\Seen"))
    assert events[-1].condstore_enabled
    events = _events(SELECT + lines("a SEARCH MODSEQ 5"))
    assert events[-1].condstore_enabled
    events = _events(SELECT + lines("a STATUS INBOX (HIGHESTMODSEQ)"))
    assert events[-1].condstore_enabled
    # Not when no mailbox is selected, and not for SELECT (CONDSTORE) itself.
    events = _events(LOGIN + lines("a STATUS INBOX (HIGHESTMODSEQ)", "b SELECT INBOX (CONDSTORE)"))
    assert [e.condstore_enabled for e in events] == [False, False, False]


def test_condstore_property_follows_implicit_enabling() -> None:
    core = make_core()
    run([SELECT + lines("a FETCH 1 MODSEQ")], core=core)
    assert core.condstore and "CONDSTORE" not in core.enabled


def test_qresync_select_needs_enable() -> None:
    result = run([LOGIN + lines("a SELECT INBOX (QRESYNC (1 2))")])
    assert tagged(result, "a") == "a BAD QRESYNC needs ENABLE QRESYNC first"


def test_closed_code_on_reselect() -> None:
    result = run([SELECT + lines("b SELECT Other")])
    assert result.lines[-2:] == ["* OK [CLOSED] previous mailbox closed", "b OK SELECT completed"]
    result = run([SELECT + lines("b SELECT Other")], core=make_core(qresync=False, imap4rev2=False))
    assert result.lines[-1] == "b OK SELECT completed"
    assert "[CLOSED]" not in result.output.decode()


def test_enable_not_in_selected_state() -> None:
    assert tagged(run([SELECT + lines("e ENABLE CONDSTORE")]), "e") == (
        "e BAD ENABLE not allowed in the SELECTED state"
    )
