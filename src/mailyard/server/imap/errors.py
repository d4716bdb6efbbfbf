"""Store errors as IMAP answers: each ``StoreError`` carries its RFC 5530
code; the handlers turn it into ``NO [code] reason`` through ``code_of``."""

from __future__ import annotations

import errno
from typing import Final

from mailyard.maildir.errors import ErrorCode, StoreError
from mailyard.proto.imap.responses import Code

__all__ = ["DISK_FULL", "code_of", "os_error_answer"]

_CODES: Final = {
    ErrorCode.CANNOT: Code.CANNOT,
    ErrorCode.NONEXISTENT: Code.NONEXISTENT,
    ErrorCode.ALREADYEXISTS: Code.ALREADYEXISTS,
    ErrorCode.OVERQUOTA: Code.OVERQUOTA,
    ErrorCode.LIMIT: Code.LIMIT,
    ErrorCode.EXPUNGEISSUED: Code.EXPUNGEISSUED,
    ErrorCode.INUSE: Code.INUSE,
}
DISK_FULL: Final = frozenset({errno.ENOSPC, errno.EDQUOT})


def code_of(exc: StoreError) -> Code:
    return _CODES.get(exc.code, Code.CANNOT)


def os_error_answer(exc: OSError) -> tuple[Code, str]:
    """A server-side failure: a full disk is told as such (Dovecot says
    OVERQUOTA too), anything else as temporary (RFC 5530 UNAVAILABLE)."""
    if exc.errno in DISK_FULL:
        return Code.OVERQUOTA, "not enough disk space"
    return Code.UNAVAILABLE, "temporary failure; try again later"
