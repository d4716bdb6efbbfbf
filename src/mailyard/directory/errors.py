"""Directory errors: one-line messages a user can read (the CLI prints them as is)."""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "DirectoryError",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "StorageError",
]


class DirectoryError(Exception):
    """Base of every directory error; ``str(exc)`` is one presentable line."""


class NotFound(DirectoryError):
    """No such domain, owner or mailbox."""


class AlreadyExists(DirectoryError):
    """The domain, owner or mailbox exists already."""


class PermissionDenied(DirectoryError):
    """The actor may not touch this domain (an owner manages only its own)."""


class InvalidInput(DirectoryError):
    """A name, address or request that cannot be accepted as given."""


class StorageError(DirectoryError):
    """The database cannot be read or written (locked, read-only, full, too new)."""
