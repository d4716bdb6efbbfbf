"""MAIL and RCPT arguments: paths and ESMTP parameters checked against the
offered extensions. Pure; raises ``GrammarError`` with the reply to send.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from mailyard.message.address import Address, AddressError, canonical_domain, parse_path
from mailyard.proto.smtp.grammar import (
    GrammarError,
    parse_params,
    split_mail,
    split_rcpt,
)
from mailyard.proto.smtp.replies import R552_SIZE_EXCEEDED, R553_NON_ASCII_ADDRESS, Reply
from mailyard.proto.smtp.settings import Features, SmtpLimits

__all__ = ["MailArgs", "parse_mail", "parse_rcpt", "postmaster_address", "safe_text"]

R555_UNSUPPORTED_PARAM: Final = Reply(555, "5.5.4", "unsupported MAIL/RCPT parameter")
R501_BAD_SIZE: Final = Reply(501, "5.5.4", "syntax: SIZE=<number>")
R501_BAD_BODY: Final = Reply(501, "5.5.4", "syntax: BODY=7BIT|8BITMIME|BINARYMIME")
R501_SMTPUTF8_VALUE: Final = Reply(501, "5.5.4", "SMTPUTF8 takes no value")

_BODY_TYPES: Final = frozenset({"7BIT", "8BITMIME"})  # RFC 6152 §2
_MAX_SIZE_DIGITS: Final = 20


@dataclass(frozen=True, slots=True)
class MailArgs:
    sender: Address | None  # None: null reverse-path <> (RFC 5321 §4.5.5)
    params: dict[str, str | None]
    smtputf8: bool
    binarymime: bool


def safe_text(text: str, limit: int = 120) -> str:
    """Client-influenced text made fit for a reply line (printable, short)."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text)
    return cleaned[:limit]


def _check_size(value: str | None, limits: SmtpLimits) -> None:
    # RFC 1870 §6: SIZE=<number of octets>; refuse at MAIL when too big.
    if value is None or not value.isascii() or not value.isdigit():
        raise GrammarError(R501_BAD_SIZE)
    if len(value) > _MAX_SIZE_DIGITS or int(value) > limits.max_message_size:
        raise GrammarError(R552_SIZE_EXCEEDED)


def _check_body(value: str | None, features: Features) -> bool:
    """RFC 6152 BODY=7BIT/8BITMIME, RFC 3030 §3 BODY=BINARYMIME; True if binary."""
    body = (value or "").upper()
    if body == "BINARYMIME":
        if not features.chunking:
            raise GrammarError(R555_UNSUPPORTED_PARAM)
        return True
    if body not in _BODY_TYPES:
        raise GrammarError(R501_BAD_BODY)
    return False


def _check_mail_params(
    params: dict[str, str | None], limits: SmtpLimits, features: Features
) -> bool:
    """Validate MAIL parameters; return whether the body is BINARYMIME."""
    binary = False
    for key, value in params.items():
        if key == "SIZE":
            _check_size(value, limits)
        elif key == "BODY":
            binary = _check_body(value, features)
        elif key == "SMTPUTF8" and features.smtputf8:
            # RFC 6531 §3.4: the SMTPUTF8 parameter has no value.
            if value is not None:
                raise GrammarError(R501_SMTPUTF8_VALUE)
        elif key == "AUTH" and features.auth_mechanisms:
            pass  # RFC 4954 §5: accepted; the value is the adapter's business
        else:
            raise GrammarError(R555_UNSUPPORTED_PARAM)
    return binary


def _parse_address(path: str, *, utf8: bool, enhanced: str, what: str) -> Address:
    if not utf8 and not path.isascii():
        raise GrammarError(R553_NON_ASCII_ADDRESS)
    try:
        return parse_path(path, utf8=utf8)
    except AddressError as exc:
        reply = Reply(501, enhanced, f"bad {what} address: {safe_text(str(exc))}")
        raise GrammarError(reply) from None


def parse_mail(arg: str, limits: SmtpLimits, features: Features) -> MailArgs:
    """``FROM:<path> [params]`` (RFC 5321 §4.1.1.2)."""
    path, ptext = split_mail(arg)
    params = parse_params(ptext)
    binary = _check_mail_params(params, limits, features)
    smtputf8 = "SMTPUTF8" in params
    sender = None
    if path != "<>":
        # RFC 3463: X.1.7 bad sender's mailbox address syntax.
        sender = _parse_address(path, utf8=smtputf8, enhanced="5.1.7", what="sender")
    return MailArgs(sender, params, smtputf8, binary)


def parse_rcpt(
    arg: str, *, utf8: bool, postmaster: Address | None
) -> tuple[Address, dict[str, str | None]]:
    """``TO:<path> [params]`` (RFC 5321 §4.1.1.3); no RCPT parameters are offered."""
    path, ptext = split_rcpt(arg)
    params = parse_params(ptext)
    if params:
        raise GrammarError(R555_UNSUPPORTED_PARAM)
    # RFC 5321 §4.5.1: <Postmaster> without a domain must be accepted.
    if postmaster is not None and path.lower() == "<postmaster>":
        return postmaster, params
    # RFC 3463: X.1.3 bad destination mailbox address syntax.
    return _parse_address(path, utf8=utf8, enhanced="5.1.3", what="recipient"), params


def postmaster_address(hostname: str) -> Address | None:
    """The address ``<Postmaster>`` stands for (RFC 5321 §4.5.1), if the
    hostname is a valid domain."""
    try:
        return Address("postmaster", canonical_domain(hostname))
    except AddressError:
        return None
