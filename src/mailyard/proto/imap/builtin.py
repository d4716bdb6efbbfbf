"""What the core answers without the adapter, and the session facts those
answers depend on: CAPABILITY (RFC 9051 §6.1.1), NAMESPACE (RFC 2342),
ID (RFC 2971), ENABLE (RFC 5161), LOGOUT (RFC 9051 §6.1.3), and the
checks that refuse a login before TLS when the listener requires it.
"""

from __future__ import annotations

from typing import Final

from mailyard.proto.imap import commands as c
from mailyard.proto.imap.encoder import Encoder, Output
from mailyard.proto.imap.errors import CommandError, Status
from mailyard.proto.imap.responses import (
    CapabilityResponse,
    Code,
    Condition,
    EnabledResponse,
    IdResponse,
    NamespaceResponse,
)
from mailyard.proto.imap.settings import ImapServerConfig, SessionView, capabilities
from mailyard.proto.imap.states import State

__all__ = ["Session"]

# ENABLE-able extensions by their upper-cased names -> canonical spelling.
_ENABLEABLE: Final = {
    "CONDSTORE": "CONDSTORE",
    "QRESYNC": "QRESYNC",
    "UTF8=ACCEPT": "UTF8=ACCEPT",
    "IMAP4REV2": "IMAP4rev2",
}


class Session:
    """Per-connection facts shared by the core and its answers."""

    def __init__(self, config: ImapServerConfig, encoder: Encoder) -> None:
        self.config = config
        self._enc = encoder
        self.enabled: set[str] = set()
        self.condstore = False  # RFC 7162 §3.1: explicitly or implicitly enabled
        self.tls_active = False
        self.client_id: tuple[tuple[str, str | None], ...] | None = None

    @property
    def utf8(self) -> bool:
        return self._enc.utf8

    def capabilities(self, state: State) -> tuple[str, ...]:
        view = SessionView(state in (State.AUTHENTICATED, State.SELECTED), self.tls_active)
        return capabilities(self.config, view)

    def answer(
        self,
        tag: str,
        body: c.Capability | c.Namespace | c.Id | c.Enable,
        state: State,
        out: Output,
    ) -> None:
        if isinstance(body, c.Capability):
            self._enc.untagged(CapabilityResponse(self.capabilities(state)), out)
        elif isinstance(body, c.Namespace):
            self._enc.untagged(NamespaceResponse(), out)  # RFC 2342 §5: "" and "/"
        elif isinstance(body, c.Id):
            self.client_id = body.fields
            fields = self.config.features.id_fields
            self._enc.untagged(IdResponse(fields or None), out)
        else:
            new = self._enable(body.capabilities)
            self._enc.untagged(EnabledResponse(new), out)
        verb = type(body).__name__.upper()
        self._enc.tagged(tag, Status.OK, None, f"{verb} completed", out)

    def _enable(self, requested: tuple[str, ...]) -> tuple[str, ...]:
        """RFC 5161 §3.1: unknown names are ignored; ENABLED lists what this
        command newly enabled."""
        f = self.config.features
        offered = {
            "CONDSTORE": f.condstore,
            "QRESYNC": f.qresync,
            "UTF8=ACCEPT": f.utf8_accept,
            "IMAP4rev2": f.imap4rev2,
        }
        new: list[str] = []
        for name in requested:
            canonical = _ENABLEABLE.get(name)
            if canonical is None or not offered[canonical] or canonical in self.enabled:
                continue
            self.enabled.add(canonical)
            new.append(canonical)
        if "QRESYNC" in self.enabled or "CONDSTORE" in self.enabled:
            self.condstore = True  # RFC 7162 §3.2.3: QRESYNC implies CONDSTORE
        if self.enabled & {"UTF8=ACCEPT", "IMAP4rev2"}:
            # RFC 6855 §3 / RFC 9051 §5.1: names and strings in UTF-8 from now on.
            self._enc.utf8 = True
        return tuple(new)

    def logout(self, tag: str, out: Output) -> None:
        self._enc.bye(f"{self.config.hostname} logging out", None, out)
        self._enc.tagged(tag, Status.OK, None, "LOGOUT completed", out)

    def announce_closed(self, out: Output) -> None:
        """RFC 7162 §3.2.11 / RFC 9051 §7.1: SELECT while selected closes the
        previous mailbox first."""
        f = self.config.features
        if f.qresync or f.imap4rev2:
            self._enc.untagged(Condition(Status.OK, "previous mailbox closed", Code.CLOSED), out)

    def _plaintext_refused(self) -> bool:
        return not (self.tls_active or self.config.features.login_without_tls)

    def check_login_allowed(self) -> None:
        if self._plaintext_refused():
            # RFC 9051 §6.2.3: LOGINDISABLED; RFC 5530 PRIVACYREQUIRED.
            raise CommandError("LOGIN needs TLS", Status.NO, Code.PRIVACYREQUIRED)

    def check_authenticate(self, mechanism: str) -> None:
        if mechanism not in self.config.features.sasl_mechanisms:
            # RFC 9051 §6.2.2: an unsupported mechanism gets NO.
            raise CommandError(f"unsupported mechanism {mechanism}", Status.NO)
        if self._plaintext_refused():
            raise CommandError("AUTHENTICATE needs TLS", Status.NO, Code.PRIVACYREQUIRED)
