"""Who may send mail to whom: the recipient rules every receiver applies.

One decision, used by SMTP (server/smtpd.py, at RCPT) and by QMTP and
QMQP (server/qmtpd.py, per envelope recipient), so a recipient that one
door refuses is refused by all of them:

* one of our mailboxes, aliases, extension addresses, catch-alls or
  domain-alias addresses (directory/resolve.py decides): accepted;
* a mailbox that does not take mail now (receiving off, expired): refused
  with 550 5.2.1; a declared SIZE above the mailbox's own limit: 552 5.3.4
  (RFC 1870 §6.1 allows the refusal at RCPT);
* ``postmaster`` (RFC 5321 §4.5.1) at any domain we handle, or at our own
  host name: accepted, and mapped to the configured postmaster, mailbox or
  not;
* a domain we do not host: relayed only for clients in ``relay_networks``
  (qmail's RELAYCLIENT), authenticated users (RFC 6409 §3.3) and callers
  that are trusted as a whole (QMQP's configured clients); otherwise
  refused, and logged;
* one of our domains without such a mailbox: refused;
* an SRS address (``SRS0=…``/``SRS1=…``) at the SRS domain or our host
  name: accepted when its hash and age check out (a bounce of mail we
  forwarded; delivery reverses it), refused otherwise, so forged SRS
  addresses never reach the queue.

Each protocol renders the verdict in its own words (a 250/550/554 reply, a
K or D response).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from mailyard.directory.model import Mailbox, Snapshot
from mailyard.directory.resolve import (
    Forward,
    LocalMailbox,
    NotLocal,
    Refused,
    UnknownLocal,
    resolve,
)
from mailyard.config import Config
from mailyard.dispatch.srskey import load_secret
from mailyard.log import event
from mailyard.message.srs import is_srs, reverse_recipient
from mailyard.message.address import Address
from mailyard.server.context import ServerContext

__all__ = ["RcptDecision", "RcptVerdict", "check_recipient", "size_limit"]


class RcptVerdict(enum.Enum):
    LOCAL = "local"  # one of our mailboxes
    POSTMASTER = "postmaster"  # RFC 5321 §4.5.1, sent to the configured postmaster
    RELAY = "relay"  # not ours, and this client may relay
    RELAY_DENIED = "relay denied"  # not ours, and this client may not relay
    UNKNOWN = "unknown"  # our domain, no such mailbox
    DISABLED = "disabled"  # a mailbox that does not take mail now
    TOO_BIG = "too big"  # the declared SIZE exceeds the mailbox's limit

    @property
    def accepted(self) -> bool:
        return self in (RcptVerdict.LOCAL, RcptVerdict.POSTMASTER, RcptVerdict.RELAY)


@dataclass(frozen=True, slots=True)
class RcptDecision:
    verdict: RcptVerdict
    # What goes into the envelope when accepted; None when refused.
    address: str | None


def check_recipient(
    ctx: ServerContext,
    recipient: Address,
    *,
    client_ip: str,
    authenticated: bool = False,
    trusted: bool = False,
    service: str = "smtp",
    declared_size: int | None = None,
) -> RcptDecision:
    """Decide on one recipient; a refused relay is logged as ``<service>.relay_denied``."""
    now = time.time()
    if is_srs(str(recipient)) and recipient.domain in _srs_domains(ctx.config):
        secret = _srs_secret(ctx.config.state_dir)
        valid = secret is not None and reverse_recipient(
            str(recipient), secret, now, ctx.config.forwarding.srs_max_age_days
        ) is not None
        return RcptDecision(RcptVerdict.LOCAL if valid else RcptVerdict.UNKNOWN,
                            str(recipient) if valid else None)
    snapshot = ctx.directory.snapshot()
    target = resolve(snapshot, recipient, now)
    if isinstance(target, LocalMailbox | Forward):
        mailbox = target.mailbox if isinstance(target, LocalMailbox) else target.keep
        if declared_size and mailbox is not None:
            limit = size_limit(snapshot, mailbox)
            if limit and declared_size > limit:
                return RcptDecision(RcptVerdict.TOO_BIG, None)
        return RcptDecision(RcptVerdict.LOCAL, str(recipient))
    if isinstance(target, Refused):
        return RcptDecision(RcptVerdict.DISABLED, None)
    if recipient.local.lower() == "postmaster" and (
        isinstance(target, UnknownLocal) or recipient.domain == ctx.config.hostname.lower()
    ):
        # RFC 5321 §4.5.1: "postmaster" must be accepted for every domain we
        # handle (and for <Postmaster> itself), mailbox or not; it goes to
        # the configured postmaster.
        return RcptDecision(RcptVerdict.POSTMASTER, ctx.config.postmaster_address)
    if isinstance(target, NotLocal):
        if authenticated or trusted or ctx.relay_allowed(client_ip, service):
            return RcptDecision(RcptVerdict.RELAY, str(recipient))
        event(f"{service}.relay_denied", ip=client_ip, rcpt=str(recipient))
        return RcptDecision(RcptVerdict.RELAY_DENIED, None)
    return RcptDecision(RcptVerdict.UNKNOWN, None)


def size_limit(snapshot: Snapshot, mailbox: Mailbox) -> int | None:
    """The mailbox's message size limit: its own, else its domain's; 0/None = none."""
    if mailbox.max_message_size is not None:
        return mailbox.max_message_size or None
    domain = snapshot.domains.get(mailbox.address.domain)
    return domain.settings.max_message_size if domain is not None else None


def _srs_domains(config: Config) -> set[str]:
    """Where our SRS addresses live: the configured SRS domain and the host name."""
    return {d.lower() for d in (config.forwarding.srs_domain, config.hostname) if d}


_SECRETS: dict[str, bytes] = {}


def _srs_secret(state_dir: str) -> bytes | None:
    """The SRS secret, read once per state folder (it never changes once made)."""
    secret = _SECRETS.get(state_dir)
    if secret is None:
        secret = load_secret(state_dir)
        if secret is not None:
            _SECRETS[state_dir] = secret
    return secret
