"""The protocol core's configuration from ``[imap]`` (pure).

Features are the core's defaults (IMAP4rev2 and every extension of issue
3, whose duties the handlers fulfil) except what depends on the
connection: STARTTLS is offered on a plain listener when a certificate is
configured, and logins without TLS are allowed only where the ``[tls]``
plaintext rule allows them (RFC 9051 §6.2.3: LOGINDISABLED until then).
"""

from __future__ import annotations

import functools

from mailyard.config import ImapConfig
from mailyard.proto.imap.settings import ImapFeatures, ImapLimits, ImapServerConfig

__all__ = ["core_config"]


@functools.lru_cache(maxsize=16)
def core_config(imap: ImapConfig, hostname: str, *, starttls: bool,
                login_without_tls: bool) -> ImapServerConfig:
    """One shared value per kind of connection (a session keeps a reference only)."""
    limits = ImapLimits(
        max_line_length=imap.max_line_length,
        max_literal_size=imap.max_literal_size,
        max_command_size=imap.max_command_size,
        max_append_size=imap.max_append_size,
        max_bad_commands=imap.max_bad_commands,
        max_commands=imap.max_commands,
        timeout_unauthenticated=imap.timeout_unauthenticated,
        timeout_authenticated=imap.timeout_authenticated,
        timeout_idle=imap.timeout_idle,
    )
    features = ImapFeatures(starttls=starttls, login_without_tls=login_without_tls)
    return ImapServerConfig(hostname, limits, features)
