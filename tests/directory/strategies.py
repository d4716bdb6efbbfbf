"""Hypothesis strategies shared by the directory tests."""

from __future__ import annotations

from hypothesis import strategies as st

from mailyard.message.address import AddressError, validate_localpart

_LABEL = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)

domains = st.builds(lambda a, b: f"{a}.{b}", _LABEL, st.sampled_from(["test", "example", "org"]))

# Local parts: mostly the usual characters, sometimes anything printable
# (dots in odd places, "%", "/", non-ASCII, quotes, spaces).
_USUAL = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+=-"


def _valid(local: str) -> bool:
    try:
        validate_localpart(local, utf8=True)
    except AddressError:
        return False
    return True


locals_ = st.one_of(
    st.text(_USUAL, min_size=1, max_size=20),
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20),
).filter(_valid)


def swap_ascii_case(text: str) -> str:
    return "".join(c.swapcase() if c.isascii() else c for c in text)
