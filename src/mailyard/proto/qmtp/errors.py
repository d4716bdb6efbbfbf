"""The two ways a QMTP/QMQP exchange goes wrong.

``QmtpProtocolError``: the client sent something that is not a netstring
where one belongs (a length with a leading zero or a non-digit, a missing
colon or comma, a length over the ceiling, an inner netstring running past
the one around it, an unknown end-of-line marker). Neither protocol has a
reply for "bad syntax": the only answer is to close the connection, so the
core raises this once and is closed from then on.

``QmtpUsageError``: the adapter misused the core (answered when nothing
awaited an answer, or with the wrong number of responses). It is a bug in
the caller, never caused by the client.
"""

from __future__ import annotations

__all__ = ["NetstringError", "QmtpProtocolError", "QmtpUsageError"]


class QmtpProtocolError(ValueError):
    """The client broke the framing; close the connection (the text is for the log)."""


class NetstringError(QmtpProtocolError):
    """Malformed netstring (cr.yp.to/proto/netstrings.txt)."""


class QmtpUsageError(RuntimeError):
    """The adapter called the core out of turn."""
