"""A tiny test-only IMAP response reader: one response (line plus the
literals it announces) into nested Python values, so encoder output can be
checked by meaning. Atoms are ``str``, numbers ``int``, strings (quoted or
literal) ``bytes``, NIL ``None``, parenthesised lists ``list``;
``[`` ``]`` and ``<n>`` stay inside atoms (BODY[...] is one token)."""

from __future__ import annotations

import re

__all__ = ["ResponseSyntaxError", "read_response", "split_responses"]

_LITERAL = re.compile(rb"~?\{(\d+)\}\r\n")
_ATOM = re.compile(rb"[^ ()\"{\r\n]+")


class ResponseSyntaxError(ValueError):
    pass


Value = str | int | bytes | None | list["Value"]


def read_response(data: bytes) -> tuple[list[Value], bytes]:
    """The tokens of the first response in ``data`` and what follows it."""
    stack: list[list[Value]] = [[]]
    pos = 0
    while True:
        if pos >= len(data):
            raise ResponseSyntaxError("response does not end with CRLF")
        ch = data[pos : pos + 1]
        if ch == b"\r":
            if data[pos : pos + 2] != b"\r\n" or len(stack) != 1:
                raise ResponseSyntaxError(f"bad line end at {pos}")
            return stack[0], data[pos + 2 :]
        if ch == b" ":
            pos += 1
        elif ch == b"(":
            stack.append([])
            pos += 1
        elif ch == b")":
            if len(stack) == 1:
                raise ResponseSyntaxError("unbalanced )")
            inner = stack.pop()
            stack[-1].append(inner)
            pos += 1
        elif ch == b'"':
            pos = _quoted(data, pos, stack[-1])
        elif ch in (b"{", b"~") and _LITERAL.match(data, pos):
            match = _LITERAL.match(data, pos)
            assert match is not None
            size = int(match.group(1))
            start = match.end()
            if start + size > len(data):
                raise ResponseSyntaxError("literal runs past the data")
            stack[-1].append(data[start : start + size])
            pos = start + size
        else:
            match = _ATOM.match(data, pos)
            if match is None:
                raise ResponseSyntaxError(f"unexpected {ch!r} at {pos}")
            word = match.group()
            pos = match.end()
            if word == b"NIL":
                stack[-1].append(None)
            elif word.isdigit():
                stack[-1].append(int(word))
            else:
                stack[-1].append(word.decode("utf-8"))


def _quoted(data: bytes, pos: int, into: list[Value]) -> int:
    out = bytearray()
    pos += 1
    while pos < len(data):
        ch = data[pos]
        if ch == 0x22:
            into.append(bytes(out))
            return pos + 1
        if ch == 0x5C:
            pos += 1
            if pos >= len(data) or data[pos] not in b'"\\':
                raise ResponseSyntaxError("bad escape in quoted string")
            ch = data[pos]
        elif ch in (0x0D, 0x0A, 0x00):
            raise ResponseSyntaxError("CR/LF/NUL in quoted string")
        out.append(ch)
        pos += 1
    raise ResponseSyntaxError("unterminated quoted string")


def split_responses(data: bytes) -> list[list[Value]]:
    out = []
    while data:
        tokens, data = read_response(data)
        out.append(tokens)
    return out
