"""Netstrings (D. J. Bernstein, cr.yp.to/proto/netstrings.txt): ``<len>:<bytes>,``.

``len`` is the decimal length of the bytes, in ASCII digits, without extra
leading zeros (a length starts with "0" only when it is 0). QMTP and QMQP
frame everything in netstrings, so a peer declares every size before
sending the bytes: ``LengthReader`` checks the declared length against a
ceiling digit by digit, before a single content byte is read.

``encode_netstring`` and ``split_netstrings`` are the client side (tests,
and anyone who talks to a QMTP/QMQP server).
"""

from __future__ import annotations

from typing import Final

from mailyard.proto.qmtp.errors import NetstringError

__all__ = ["LengthReader", "encode_netstring", "split_netstrings"]

_ZERO: Final = 0x30
_NINE: Final = 0x39
_COLON: Final = 0x3A
_COMMA: Final = 0x2C


def encode_netstring(data: bytes) -> bytes:
    """``data`` as one netstring."""
    return b"%d:%b," % (len(data), data)


class LengthReader:
    """The ``<len>:`` prefix of one netstring, fed one octet at a time.

    ``feed`` returns the length once the colon arrives, None before. It
    raises ``NetstringError`` on the first octet that cannot belong to a
    valid prefix: a non-digit, a colon with no digits in front, a leading
    zero followed by more digits, or a value above ``ceiling`` (seen as soon
    as the digits so far exceed it, so the digit count stays bounded too).
    """

    __slots__ = ("_ceiling", "_digits", "_value")

    def __init__(self, ceiling: int) -> None:
        if ceiling < 0:
            raise ValueError("ceiling must be >= 0")
        self._ceiling = ceiling
        self._value = 0
        self._digits = 0

    @property
    def started(self) -> bool:
        """True once a digit was read (EOF now cuts a netstring short)."""
        return self._digits > 0

    def feed(self, octet: int) -> int | None:
        if _ZERO <= octet <= _NINE:
            if self._digits and self._value == 0:
                raise NetstringError("netstring length with a leading zero")
            self._value = self._value * 10 + (octet - _ZERO)
            self._digits += 1
            if self._value > self._ceiling:
                raise NetstringError(f"netstring length over {self._ceiling}")
            return None
        if octet == _COLON and self._digits:
            return self._value
        raise NetstringError("malformed netstring length")


def split_netstrings(data: bytes, ceiling: int = 1 << 30) -> tuple[list[bytes], bytes]:
    """The complete netstrings at the start of ``data`` and what follows them.

    The rest is an incomplete netstring (wait for more bytes); anything that
    cannot become one raises ``NetstringError``.
    """
    found: list[bytes] = []
    pos = 0
    while pos < len(data):
        reader = LengthReader(ceiling)
        at = pos
        length: int | None = None
        while length is None and at < len(data):
            length = reader.feed(data[at])
            at += 1
        if length is None or at + length >= len(data):
            break  # the prefix, the bytes or the comma are still to come
        if data[at + length] != _COMMA:
            raise NetstringError("netstring not ended by a comma")
        found.append(data[at : at + length])
        pos = at + length + 1
    return found, data[pos:]
