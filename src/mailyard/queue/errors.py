"""The queue's two error types, shared by every queue module."""

from __future__ import annotations

__all__ = ["QueueCorrupt", "QueueNotFound"]


class QueueNotFound(LookupError):
    """No committed message has this id (never queued, completed or deleted)."""


class QueueCorrupt(ValueError):
    """A queue file exists but does not decode; left for the operator."""
