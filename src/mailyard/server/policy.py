"""Who may send mail to whom: the recipient rules every receiver applies.

One decision, used by SMTP (server/smtpd.py, at RCPT) and by QMTP and
QMQP (server/qmtpd.py, per envelope recipient), so a recipient that one
door refuses is refused by all of them:

* one of our mailboxes: accepted;
* ``postmaster`` (RFC 5321 §4.5.1) at any domain we handle, or at our own
  host name: accepted, and mapped to the configured postmaster, mailbox or
  not;
* a domain we do not host: relayed only for clients in ``relay_networks``
  (qmail's RELAYCLIENT), authenticated users (RFC 6409 §3.3) and callers
  that are trusted as a whole (QMQP's configured clients); otherwise
  refused, and logged;
* one of our domains without such a mailbox: refused.

Each protocol renders the verdict in its own words (a 250/550/554 reply, a
K or D response).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mailyard.directory.resolve import LocalMailbox, NotLocal, UnknownLocal, resolve
from mailyard.log import event
from mailyard.message.address import Address
from mailyard.server.context import ServerContext

__all__ = ["RcptDecision", "RcptVerdict", "check_recipient"]


class RcptVerdict(enum.Enum):
    LOCAL = "local"  # one of our mailboxes
    POSTMASTER = "postmaster"  # RFC 5321 §4.5.1, sent to the configured postmaster
    RELAY = "relay"  # not ours, and this client may relay
    RELAY_DENIED = "relay denied"  # not ours, and this client may not relay
    UNKNOWN = "unknown"  # our domain, no such mailbox

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
) -> RcptDecision:
    """Decide on one recipient; a refused relay is logged as ``<service>.relay_denied``."""
    target = resolve(ctx.directory.snapshot(), recipient)
    if isinstance(target, LocalMailbox):
        return RcptDecision(RcptVerdict.LOCAL, str(recipient))
    if recipient.local.lower() == "postmaster" and (
        isinstance(target, UnknownLocal) or recipient.domain == ctx.config.hostname.lower()
    ):
        # RFC 5321 §4.5.1: "postmaster" must be accepted for every domain we
        # handle (and for <Postmaster> itself), mailbox or not; it goes to
        # the configured postmaster.
        return RcptDecision(RcptVerdict.POSTMASTER, ctx.config.postmaster_address)
    if isinstance(target, NotLocal):
        if authenticated or trusted or ctx.relay_allowed(client_ip):
            return RcptDecision(RcptVerdict.RELAY, str(recipient))
        event(f"{service}.relay_denied", ip=client_ip, rcpt=str(recipient))
        return RcptDecision(RcptVerdict.RELAY_DENIED, None)
    return RcptDecision(RcptVerdict.UNKNOWN, None)
