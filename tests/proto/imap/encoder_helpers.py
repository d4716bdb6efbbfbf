"""Test-only helpers writing client syntax."""

from __future__ import annotations

import re

__all__ = ["client_string"]

_ATOM = re.compile(r"[!#$&'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+")


def client_string(value: str) -> str:
    """An astring as a client would write it: atom, quoted, or literal+."""
    if _ATOM.fullmatch(value) and value.upper() != "NIL":
        return value
    if value.isascii() and "\\" not in value and '"' not in value and value.isprintable():
        return '"' + value + '"'
    raw = value.encode("utf-8")
    return f"{{{len(raw)}+}}\r\n" + value
