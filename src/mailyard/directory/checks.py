"""Value checks of the admin operations: each refusal is one InvalidInput line.

Pure functions (no directory access): the admin modules call them before
they touch the store, so a bad value never gets as far as a transaction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final

from mailyard.directory.errors import InvalidInput
from mailyard.directory.model import MAX_ALIAS_TARGETS
from mailyard.message.address import Address, AddressError, parse_address

__all__ = [
    "EXTENSION_CHARS",
    "MAX_DISPLAY_NAME",
    "checked_bool",
    "checked_count",
    "checked_extension_chars",
    "checked_target",
    "checked_targets",
    "checked_text",
    "checked_time",
]

# The separators an extension address may use: qmail's "-", the common "+",
# and the few other characters some sites use ("=" and "_" by Exim users,
# "." rarely). All are atext (RFC 5322 §3.2.3), so user<sep>ext stays a plain local part.
EXTENSION_CHARS: Final = "+-=_."
MAX_DISPLAY_NAME: Final = 256


def checked_target(text: str, what: str) -> str:
    """One target address, canonical as ``str(Address)`` writes it."""
    try:
        return str(parse_address(text.strip()))
    except AddressError as exc:
        raise InvalidInput(f"invalid {what} {text!r}: {exc}") from exc


def checked_targets(
    targets: Iterable[str],
    what: str,
    *,
    minimum: int = 0,
    itself: Address | None = None,
) -> tuple[str, ...]:
    """Targets parsed, canonical, duplicates (by address key) removed, order kept.

    ``itself``: the address the targets belong to; naming it would make a
    loop, so it is refused.
    """
    seen: set[tuple[str, str]] = set()
    out: list[str] = []
    for text in targets:
        canonical = checked_target(text, what)
        key = parse_address(canonical).key
        if itself is not None and key == itself.key:
            raise InvalidInput(f"{itself} cannot be a {what} of itself")
        if key not in seen:
            seen.add(key)
            out.append(canonical)
        if len(out) > MAX_ALIAS_TARGETS:
            raise InvalidInput(f"at most {MAX_ALIAS_TARGETS} {what}s are allowed")
    if len(out) < minimum:
        raise InvalidInput(f"at least {minimum} {what} is needed")
    return tuple(out)


def checked_count(value: object, what: str) -> int | None:
    """A byte or message count: an integer ≥ 0, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be a whole number, got {value!r}")
    if value < 0:
        raise InvalidInput(f"{what} cannot be negative")
    return value


def checked_time(value: object, what: str) -> float | None:
    """A point in time (epoch seconds, finite, not before 1970), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{what} must be a time, got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidInput(f"{what} must be a time after 1970, got {value!r}")
    return seconds


def checked_bool(value: object, what: str) -> bool:
    """A yes/no setting: a real bool."""
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} must be yes or no, got {value!r}")
    return value


def checked_text(
    value: object, what: str, max_length: int, *, single_line: bool = True, empty: bool = True
) -> str:
    """Text without control characters (line breaks and tabs allowed when not single-line)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text")
    if not empty and not value.strip():
        raise InvalidInput(f"{what} cannot be empty")
    if len(value) > max_length:
        raise InvalidInput(f"{what} is longer than {max_length} characters")
    allowed = "" if single_line else "\r\n\t"
    for ch in value:
        if (ch < " " or ch == "\x7f") and ch not in allowed:
            raise InvalidInput(f"{what} contains a control character ({ch!r})")
    return value


def checked_extension_chars(value: object) -> str:
    """The extension separators of a domain: a subset of EXTENSION_CHARS, or ""."""
    if not isinstance(value, str):
        raise InvalidInput("extension characters must be text")
    bad = sorted(set(value) - set(EXTENSION_CHARS))
    if bad:
        raise InvalidInput(
            f"extension characters may only be {' '.join(EXTENSION_CHARS)}, not {''.join(bad)!r}"
        )
    # Duplicates dropped, the order given kept (it does not change the meaning).
    return "".join(dict.fromkeys(value))
