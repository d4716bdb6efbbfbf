"""Every limit at its edge and one past it (MODELS §7.5 habit 3), checked
before a literal octet is read."""

from __future__ import annotations

from mailyard.proto.imap import commands as c
from mailyard.proto.imap.settings import ImapLimits
from tests.proto.imap.helpers import LOGIN, SELECT, lines, make_core, run, tagged


def test_line_length_edge() -> None:
    core = make_core(max_line_length=1024, max_command_size=4096)
    ok = b"a NOOP " + b"x" * (1024 - 9) + b"\r\n"
    assert len(ok) == 1024
    result = run([ok], core=core)
    assert tagged(result, "a").startswith("a BAD")  # too long is fine, NOOP takes no args
    assert not result.closed
    result = run([b"b NOOP " + b"x" * (1024 - 8) + b"\r\n"], core=core)
    assert result.lines == ["* BYE [TOOBIG] Command line too long"]
    assert result.closed


def test_literal_size_edge(feed) -> None:
    result = feed(SELECT + b"a SEARCH SUBJECT {100}\r\n" + b"x" * 100 + b"\r\n",
                  core=make_core(max_literal_size=100))  # fmt: skip
    assert result.lines[-2:] == ["+ Ready for literal data", "a OK SEARCH completed"]
    result = feed(b"a LOGIN {101}\r\n", core=make_core(max_literal_size=100))
    assert result.lines[-1] == "a BAD [TOOBIG] literal too large"


def test_literal_count_edge() -> None:
    two = SELECT + b"a SEARCH SUBJECT {1+}\r\nx BODY {1+}\r\ny\r\n"
    result = run([two], core=make_core(max_literals=2))
    assert tagged(result, "a") == "a OK SEARCH completed"
    three = SELECT + b"a SEARCH SUBJECT {1+}\r\nx BODY {1+}\r\ny TEXT {1+}\r\nz\r\nb NOOP\r\n"
    result = run([three], core=make_core(max_literals=2))
    assert tagged(result, "a") == "a BAD [LIMIT] too many literals in one command"
    assert tagged(result, "b") == "b OK NOOP completed"  # the refused literal was skipped


def test_nesting_depth_edge() -> None:
    core = make_core(max_depth=3)
    result = run([SELECT + lines("a SEARCH (((ALL)))", "b SEARCH ((((ALL))))",
                                 "c SEARCH NOT NOT NOT ALL", "d SEARCH NOT NOT NOT NOT ALL")], core=core)  # fmt: skip
    assert tagged(result, "a") == "a OK SEARCH completed"
    assert tagged(result, "b") == "b BAD search criteria nested too deeply"
    assert tagged(result, "c") == "c OK SEARCH completed"
    assert tagged(result, "d") == "d BAD search criteria nested too deeply"


def test_deep_nesting_never_overflows() -> None:
    result = run([SELECT + b"a SEARCH " + b"(" * 5000 + b"ALL" + b")" * 5000 + b"\r\n"],
                 core=make_core(max_line_length=65536))  # fmt: skip
    assert tagged(result, "a") == "a BAD search criteria nested too deeply"


def test_command_size_edge() -> None:
    limits = {"max_line_length": 1024, "max_command_size": 1024 + 50, "max_literal_size": 2000}
    # The first line counts with its CRLF; the literal must fit in what is left.
    first = b"a LOGIN {%d}\r\n"
    room = 1024 + 50 - len(first % 1000)
    ok = run([(first % room) + b"x" * room + b" y\r\n"], core=make_core(**limits))
    assert tagged(ok, "a").startswith("a NO")  # reached the adapter: wrong password
    too = run([(first % (room + 1)) + b"b NOOP\r\n"], core=make_core(**limits))
    assert too.lines[0] == "a BAD [TOOBIG] command too large"
    assert tagged(too, "b") == "b OK NOOP completed"


def test_append_size_edge(feed) -> None:
    result = feed(LOGIN + b"a APPEND INBOX {100}\r\n" + b"x" * 100 + b"\r\n",
                  core=make_core(max_append_size=100))  # fmt: skip
    assert result.commands[-1] == c.Append("INBOX", (), None, 100, True)
    assert tagged(result, "a") == "a OK APPEND completed"
    result = feed(
        LOGIN + b"a APPEND INBOX {101}\r\nb NOOP\r\n", core=make_core(max_append_size=100)
    )
    assert result.lines[-2:] == ["a NO [TOOBIG] message too large", "b OK NOOP completed"]
    # A non-synchronising one is read and dropped to stay in step (RFC 7888 §4).
    result = feed(LOGIN + b"a APPEND INBOX {101+}\r\n" + b"y" * 101 + b"\r\nb NOOP\r\n",
                  core=make_core(max_append_size=100))  # fmt: skip
    assert result.lines[-2:] == ["a NO [TOOBIG] message too large", "b OK NOOP completed"]
    assert not any(isinstance(x, c.Append) for x in result.commands)


def test_appendlimit_is_advertised() -> None:
    core = make_core(max_append_size=12345)
    result = run([LOGIN + lines("c CAPABILITY")], core=core)
    assert "APPENDLIMIT=12345" in result.lines[-2].split()


def test_bad_command_budget() -> None:
    core = make_core(max_bad_commands=3)
    result = run([lines("a BOGUS", "b BOGUS", "c BOGUS", "d BOGUS", "e NOOP")], core=core)
    assert result.lines == [
        "a BAD unknown command BOGUS", "b BAD unknown command BOGUS",
        "c BAD unknown command BOGUS", "* BYE Too many invalid commands",
    ]  # fmt: skip
    assert result.closed


def test_command_count_budget() -> None:
    core = make_core(max_commands=3)
    result = run([lines("a NOOP", "b NOOP", "c NOOP", "d NOOP")], core=core)
    assert result.lines == ["a OK NOOP completed", "b OK NOOP completed", "c OK NOOP completed",
                            "* BYE Too many commands"]  # fmt: skip


def test_literal_minus_edge() -> None:
    core = make_core(literal="LITERAL-")
    body = b"x" * 4096
    result = run([SELECT + b"a SEARCH TEXT {4096+}\r\n" + body + b"\r\n"], core=core)
    assert tagged(result, "a") == "a OK SEARCH completed"
    core = make_core(literal="LITERAL-")
    result = run(
        [SELECT + b"a SEARCH TEXT {4097+}\r\n" + b"x" * 4097 + b"\r\nb NOOP\r\n"], core=core
    )
    assert tagged(result, "a") == "a BAD [TOOBIG] non-synchronizing literal too large"
    assert tagged(result, "b") == "b OK NOOP completed"
    caps = run([lines("c CAPABILITY")], core=make_core(literal="LITERAL-")).lines[0].split()
    assert "LITERAL-" in caps and "LITERAL+" not in caps


def test_no_nonsync_literals_when_neither_offered() -> None:
    core = make_core(literal="", imap4rev2=False)
    result = run([b"a LOGIN {3+}\r\nbob secret\r\nb NOOP\r\n"], core=core)
    assert result.lines == [
        "a BAD non-synchronizing literals are not supported",
        "b OK NOOP completed",
    ]


def test_discard_limit() -> None:
    core = make_core(max_discard=1000, max_literal_size=10)
    result = run([b"a LOGIN {1000+}\r\n" + b"z" * 1000 + b" x\r\nb NOOP\r\n"], core=core)
    assert result.lines == ["a BAD [TOOBIG] literal too large", "b OK NOOP completed"]
    core = make_core(max_discard=1000, max_literal_size=10)
    result = run([b"a LOGIN {1001+}\r\n"], core=core)
    assert result.lines == [
        "a BAD [TOOBIG] literal too large",
        "* BYE [TOOBIG] Literal too large to skip",
    ]
    assert result.closed


def test_discarded_command_with_more_literals() -> None:
    # The refused command goes on with more non-sync literals: all skipped.
    core = make_core(max_literal_size=5)
    data = b"a LOGIN {6+}\r\nabcdef {3+}\r\nxyz\r\nb NOOP\r\n"
    result = run([data], core=core)
    assert result.lines == ["a BAD [TOOBIG] literal too large", "b OK NOOP completed"]


def test_sasl_line_limit() -> None:
    core = make_core(max_auth_line=64)
    result = run([b"a AUTHENTICATE PLAIN\r\n" + b"A" * 80 + b"\r\nb NOOP\r\n"], core=core)
    assert result.lines == ["+ ", "a BAD SASL response too long", "b OK NOOP completed"]


def test_id_limits() -> None:
    pairs = " ".join(f'"k{i}" "v"' for i in range(31))
    result = run([lines(f"a ID ({pairs})", 'b ID ("' + "k" * 31 + '" "v")')])
    assert result.lines == ["a BAD too many ID fields", "b BAD ID field or value too long"]


def test_limits_validate() -> None:
    import pytest

    for bad in ({"max_line_length": 100}, {"max_literals": 0}, {"timeout_authenticated": 60.0},
                {"max_command_size": 2000}):  # fmt: skip
        with pytest.raises(ValueError):
            ImapLimits(**bad)  # type: ignore[arg-type]


def test_features_validate() -> None:
    import pytest

    from mailyard.proto.imap.settings import ImapFeatures

    for bad in ({"idle": False}, {"literal": ""}, {"literal": "LITERAL*"}, {"condstore": False},
                {"sasl_mechanisms": ("GSSAPI",)}, {"thread": ("X",)},
                {"list_extended": False, "imap4rev2": False}):  # fmt: skip
        with pytest.raises(ValueError):
            ImapFeatures(**bad)  # type: ignore[arg-type]
    ImapFeatures(idle=False, imap4rev2=False)
