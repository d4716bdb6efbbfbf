"""The command-line grammar (commands.py): examples, a hypothesis round
trip, and the never-crash property (any bytes: a Command or CommandError)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailyard.proto.pop3.commands import (
    ARITY,
    Command,
    CommandError,
    parse_command,
    parse_count,
    parse_message_number,
)


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (b"STAT", Command("STAT", ())),
        (b"list 3", Command("LIST", ("3",))),
        (b"TOP  1   10 ", Command("TOP", ("1", "10"))),
        (b"PASS  two  spaces ", Command("PASS", (" two  spaces ",))),
        (b"PASS tab\there", Command("PASS", ("tab\there",))),
        ("USER jöe@exämple.test".encode(), Command("USER", ("jöe@exämple.test",))),
        (b"AUTH PLAIN AGJvYgBzZWNyZXQ=", Command("AUTH", ("PLAIN", "AGJvYgBzZWNyZXQ="))),
        (b"AUTH", Command("AUTH", ())),
    ],
)
def test_parse_examples(line: bytes, command: Command) -> None:
    assert parse_command(line) == command


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"", "unknown command"),
        (b"ST", "unknown command"),
        (b"STATS", "unknown command"),
        (b"ST4T", "unknown command"),
        (b" STAT", "unknown command"),
        (b"APOP bob 0123", "unknown command"),  # APOP is not offered
        (b"STAT x", "syntax error"),
        (b"PASS", "syntax error"),
        (b"PASS ", "syntax error"),
        (b"USER a\x7fb", "syntax error"),
        (b"USER \xc3", "syntax error"),
        ("USER a\u00a0b c".encode(), "syntax error"),  # NBSP is not a separator
    ],
)
def test_parse_errors(line: bytes, text: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_command(line)
    assert info.value.response.text == text


def test_nbsp_stays_inside_an_argument() -> None:
    assert parse_command("USER a\u00a0b".encode()).args == ("a\u00a0b",)


def test_numbers() -> None:
    assert parse_message_number("007") == 7
    assert parse_message_number("9" * 20) == 2**31 - 1  # clamped, still "no such message"
    assert parse_count("0") == 0
    for bad in ("", "-1", "+1", "1.0", "x", "1 ", "٣", "9" * 21):
        with pytest.raises(CommandError):
            parse_message_number(bad)
        with pytest.raises(CommandError):
            parse_count(bad)


_ARG_CHARS = st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"))
args_text = st.text(_ARG_CHARS, min_size=1, max_size=12)


@st.composite
def commands(draw: st.DrawFn) -> Command:
    verb = draw(st.sampled_from(sorted(ARITY)))
    low, high = ARITY[verb]
    if verb == "PASS":
        text = draw(st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1))
        return Command(verb, (text,))
    args = draw(st.lists(args_text, min_size=low, max_size=high))
    return Command(verb, tuple(args))


@given(commands(), st.sampled_from([str.upper, str.lower, str.title]), st.integers(1, 3))
def test_round_trip(command: Command, case, spaces: int) -> None:
    if command.verb == "PASS":
        line = case("PASS") + " " + command.args[0]  # the rest of the line, as is
    else:
        line = case(command.verb) + "".join(" " * spaces + arg for arg in command.args)
    assert parse_command(line.encode()) == command


@given(st.binary(max_size=80))
def test_never_crashes(line: bytes) -> None:
    try:
        command = parse_command(line)
    except CommandError as exc:
        assert not exc.response.ok
    else:
        low, high = ARITY[command.verb]
        assert low <= len(command.args) <= high
