"""The store's errors: each one says which IMAP response code it stands for.

The IMAP adapter answers a ``StoreError`` with ``NO [<code>] <reason>``
(RFC 5530 response codes); nothing else about the error reaches a client.
An ``OSError`` that escapes the store is a server-side failure (a full disk,
an I/O error): the adapter answers it with a temporary ``NO`` and logs it.
"""

from __future__ import annotations

import enum

__all__ = [
    "ErrorCode",
    "FolderExists",
    "FolderNameError",
    "FolderReset",
    "KeywordLimit",
    "MessageGone",
    "NoSuchFolder",
    "OverQuota",
    "StoreError",
]


class ErrorCode(enum.Enum):
    """RFC 5530 §3 response codes (the text between the brackets)."""

    CANNOT = "CANNOT"
    NONEXISTENT = "NONEXISTENT"
    ALREADYEXISTS = "ALREADYEXISTS"
    OVERQUOTA = "OVERQUOTA"
    LIMIT = "LIMIT"
    EXPUNGEISSUED = "EXPUNGEISSUED"
    INUSE = "INUSE"


class StoreError(Exception):
    """A refusal the client is told about: ``NO [code] reason``."""

    code: ErrorCode = ErrorCode.CANNOT

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FolderNameError(StoreError):
    """A folder name that could escape the Maildir or break its layout."""

    code = ErrorCode.CANNOT


class NoSuchFolder(StoreError):
    """RFC 3501 §6.3.1 and others: the mailbox does not exist (or went away)."""

    code = ErrorCode.NONEXISTENT


class FolderExists(StoreError):
    """RFC 3501 §6.3.3/§6.3.5: the target name exists already."""

    code = ErrorCode.ALREADYEXISTS


class FolderReset(StoreError):
    """The folder's uid list was lost and recreated: UIDVALIDITY changed.

    RFC 3501 §2.3.1.1: a session must not go on with the old UIDs; the
    adapter closes the mailbox (or the connection) when it sees this.
    """

    code = ErrorCode.CANNOT


class OverQuota(StoreError):
    """RFC 9208 §4.4 / RFC 5530: the operation would exceed the quota."""

    code = ErrorCode.OVERQUOTA


class KeywordLimit(StoreError):
    """Maildir keeps at most 26 keywords per folder (the letters a-z)."""

    code = ErrorCode.LIMIT


class MessageGone(StoreError):
    """RFC 5530 EXPUNGEISSUED: the message was expunged by someone else."""

    code = ErrorCode.EXPUNGEISSUED
