"""Values typed on the command line: sizes ("500M"), counts, dates, and their display.

Sizes count in bytes with binary multiples, as quotas always have
(Maildir++ and VMailMgr quotas are bytes; ``10k`` is 10240): a whole number
with an optional unit ``k``, ``M``, ``G`` or ``T`` (any case, optionally
followed by ``B`` or ``iB``). Dates are ISO 8601: a date alone
(``2025-06-01``, midnight local time) or a date and time
(``2025-06-01T18:30``, local time unless it carries ``Z`` or an offset).

A value that does not parse is a usage error (click's ``BadParameter``:
one ``Error: Invalid value for '--quota': …`` line, exit status 2), as for
any other malformed option; a value that parses but is refused by the
directory is a CliError (exit status 1).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Final, TypeAlias

import click

__all__ = [
    "MAX_SIZE",
    "LimitCallback",
    "WhenCallback",
    "format_size",
    "format_when",
    "limit_option",
    "parse_count",
    "parse_size",
    "parse_when",
    "when_option",
]

# SQLite's INTEGER is a signed 64-bit number.
MAX_SIZE: Final = 2**63 - 1
_UNITS: Final = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}
_SIZE: Final = re.compile(r"([0-9]+) *([kmgt]?)(?:i?b)?", re.IGNORECASE | re.ASCII)
_DATE_ONLY: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DISPLAY_UNITS: Final = (("T", 4), ("G", 3), ("M", 2), ("k", 1))


def parse_size(text: str) -> int:
    """Bytes from ``"500M"``, ``"2G"``, ``"10k"``, ``"1234"`` (see module doc)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a size: use bytes or a number with k, M, G or T")
    value: int = int(match.group(1)) * 1024 ** _UNITS[match.group(2).lower()]
    if value > MAX_SIZE:
        raise ValueError(f"{text!r} is too large")
    return value


def format_size(value: int) -> str:
    """The shortest exact spelling ``parse_size`` reads back: ``"500M"``, ``"1536"``."""
    for unit, power in _DISPLAY_UNITS:
        if value and value % 1024**power == 0:
            return f"{value // 1024**power}{unit}"
    return str(value)


def parse_count(text: str) -> int:
    """A whole number ≥ 0 (a message count)."""
    stripped = text.strip()
    if not stripped.isascii() or not stripped.isdigit():
        raise ValueError(f"{text!r} is not a whole number")
    value = int(stripped)
    if value > MAX_SIZE:
        raise ValueError(f"{text!r} is too large")
    return value


def parse_when(text: str) -> float:
    """Epoch seconds of an ISO 8601 date or date-time (see module doc)."""
    stripped = text.strip()
    try:
        if _DATE_ONLY.fullmatch(stripped):
            day = dt.date.fromisoformat(stripped)
            moment = dt.datetime(day.year, day.month, day.day)
        else:
            moment = dt.datetime.fromisoformat(stripped)
        # A naive datetime is local time; timestamp() applies the local offset.
        seconds = moment.timestamp()
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueError(
            f"{text!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+HH:MM]"
        ) from exc
    if seconds < 0:
        raise ValueError(f"{text!r} is before 1970")
    return seconds


def format_when(seconds: float) -> str:
    """Local time with its offset, to the second: what ``parse_when`` reads back."""
    moment = dt.datetime.fromtimestamp(int(seconds)).astimezone()
    return moment.isoformat(timespec="seconds")


# click callbacks (not ParamType subclasses: ParamType became generic in
# click 8.2 and we support 8.1): option value -> checked value or None.
LimitCallback: TypeAlias = Callable[[click.Context, click.Parameter, str | None], int | str | None]
WhenCallback: TypeAlias = Callable[[click.Context, click.Parameter, str | None], float | str | None]


def limit_option(kind: str, keywords: tuple[str, ...]) -> tuple[str, LimitCallback]:
    """The metavar and the callback of a size or count option that also takes ``keywords``.

    The callback gives the number, one of the keywords (lowercase), or None
    when the option was not given.
    """
    metavar = "|".join(("SIZE" if kind == "size" else "N", *keywords))

    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> int | str | None:
        if value is None:
            return None
        text = value.strip()
        if text.lower() in keywords:
            return text.lower()
        try:
            return parse_size(text) if kind == "size" else parse_count(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from exc

    return metavar, convert


def when_option(*, never: bool) -> tuple[str, WhenCallback]:
    """The metavar and the callback of a date option (``never`` allowed when asked)."""

    def convert(
        ctx: click.Context, param: click.Parameter, value: str | None
    ) -> float | str | None:
        if value is None:
            return None
        text = value.strip()
        if never and text.lower() == "never":
            return "never"
        try:
            return parse_when(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from exc

    return ("DATE|never" if never else "DATE"), convert
