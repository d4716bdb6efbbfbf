"""The client side: packages and requests as a QMTP/QMQP client sends them.

``message`` is always CRLF mail (what our queue holds). For QMTP's
encoding #1 it is sent as it is, behind the CR marker; for encoding #2 and
for QMQP its CR LF line ends become LF. For mail without bare LF (which is
all CRLF mail) the server's conversion (lineends.py) gives the very same
bytes back: the round trip the tests check.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailyard.proto.qmtp.lineends import LineEnding
from mailyard.proto.qmtp.netstring import encode_netstring

__all__ = ["encode_qmqp_request", "encode_qmtp_package"]


def _lf_lines(message: bytes) -> bytes:
    return message.replace(b"\r\n", b"\n")


def encode_qmtp_package(
    message: bytes, sender: bytes, recipients: Sequence[bytes],
    *, line_ending: LineEnding = LineEnding.CRLF,
) -> bytes:
    """One QMTP package (QMTP §4): message, sender, recipient list."""
    body = message if line_ending is LineEnding.CRLF else _lf_lines(message)
    listed = b"".join(encode_netstring(r) for r in recipients)
    return (encode_netstring(line_ending.marker + body) + encode_netstring(sender)
            + encode_netstring(listed))


def encode_qmqp_request(message: bytes, sender: bytes, recipients: Sequence[bytes]) -> bytes:
    """One QMQP request: a netstring of the message, sender and recipient netstrings."""
    inner = [encode_netstring(_lf_lines(message)), encode_netstring(sender)]
    inner += [encode_netstring(r) for r in recipients]
    return encode_netstring(b"".join(inner))
