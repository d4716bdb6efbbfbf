"""Configuration of one IMAP server core: limits and features (plain values),
and the CAPABILITY list derived from them and the session's state — so
what is advertised and what is accepted cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Final

from mailyard.proto.sasl import MAX_RESPONSE_LINE, MECHANISMS

__all__ = [
    "LITERAL_MINUS_MAX",
    "ImapFeatures",
    "ImapLimits",
    "ImapServerConfig",
    "SessionView",
    "capabilities",
]

LITERAL_MINUS_MAX: Final = 4096  # RFC 7888 §5: LITERAL- non-synchronising literals
# RFC 9051 Appendix E: extensions folded into IMAP4rev2 (LITERAL- too).
_REV2_NEEDS: Final = (
    "namespace", "unselect", "uidplus", "esearch", "searchres", "idle", "list_extended",
    "list_status", "move", "binary", "special_use", "children", "status_size",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ImapLimits:
    """A named limit on every read (MODELS §7.5 habit 3); octets unless said.

    Line length: RFC 7162 §4 (updating RFC 2683 §3.2.1.5) asks servers to
    take lines of at least 8192 octets; QRESYNC known-uid sets and long UID
    lists from clients that do not compress them go well beyond that, so 64
    KiB (Dovecot's default too), CRLF included. Literals outside APPEND
    carry passwords, mailbox names and search strings: 64 KiB is plenty.
    """

    max_line_length: int = 65536
    max_literal_size: int = 65536  # any literal but APPEND's message
    max_literals: int = 64  # per command (APPEND's message included)
    max_depth: int = 32  # nesting of parentheses / NOT / OR in one command
    max_command_size: int = 262144  # lines + small literals of one command
    max_append_size: int = 64 * 1024 * 1024  # advertised as APPENDLIMIT=n (RFC 7889)
    max_discard: int = 128 * 1024 * 1024  # a refused non-sync literal larger: BYE
    max_auth_line: int = MAX_RESPONSE_LINE  # SASL responses (RFC 4959: may exceed lines)
    max_bad_commands: int = 20  # BAD responses per connection tolerated; one more: BYE
    max_commands: int = 1_000_000  # per connection, then BYE
    append_chunk: int = 65536  # largest AppendData event
    max_id_fields: int = 30  # RFC 2971 §3.3: 30 field-value pairs
    # Autologout (RFC 9051 §5.4: at least 30 minutes once authenticated;
    # "shorter before login"): the adapter runs the timer, ``core.timeout``
    # says which applies.
    timeout_unauthenticated: float = 60.0
    timeout_authenticated: float = 30 * 60.0
    timeout_idle: float = 30 * 60.0  # RFC 2177: clients re-IDLE within 29 minutes

    def __post_init__(self) -> None:
        for item in fields(self):
            if getattr(self, item.name) <= 0:
                raise ValueError(f"ImapLimits.{item.name} must be positive")
        if self.max_line_length < 1024 or self.max_auth_line < 64:
            raise ValueError("ImapLimits line limits are too small")
        if self.max_command_size < self.max_line_length:
            raise ValueError("max_command_size must hold at least one line")
        if self.timeout_authenticated < 30 * 60:
            raise ValueError("RFC 9051 §5.4: the authenticated autologout is at least 30 min")


@dataclass(frozen=True, slots=True)
class ImapFeatures:
    """What this listener offers. Each flag turns a capability and its
    syntax on or off together; turn off what the adapter cannot do."""

    imap4rev2: bool = True  # RFC 9051 (ENABLE IMAP4rev2)
    starttls: bool = False  # RFC 9051 §6.2.1; the adapter must be able to do TLS
    login_without_tls: bool = True  # else LOGINDISABLED until TLS (RFC 9051 §6.2.3)
    sasl_mechanisms: tuple[str, ...] = ("PLAIN",)  # AUTH=…; subset of PLAIN, LOGIN
    literal: str = "LITERAL+"  # "LITERAL+", "LITERAL-" (RFC 7888) or "" (neither)
    idle: bool = True  # RFC 2177
    namespace: bool = True  # RFC 2342
    uidplus: bool = True  # RFC 4315
    move: bool = True  # RFC 6851
    unselect: bool = True  # RFC 3691
    children: bool = True  # RFC 3348
    special_use: bool = True  # RFC 6154
    create_special_use: bool = False  # RFC 6154 §3 CREATE (USE (…))
    list_extended: bool = True  # RFC 5258
    list_status: bool = True  # RFC 5819
    quota: bool = True  # RFC 9208 (QUOTA=RES-STORAGE, QUOTA=RES-MESSAGE)
    esearch: bool = True  # RFC 4731
    searchres: bool = True  # RFC 5182 ($ and RETURN (SAVE)): the adapter keeps the result
    condstore: bool = True  # RFC 7162 §3.1
    qresync: bool = True  # RFC 7162 §3.2 (needs condstore)
    sort: bool = True  # RFC 5256
    thread: tuple[str, ...] = ("ORDEREDSUBJECT", "REFERENCES")  # RFC 5256
    utf8_accept: bool = True  # RFC 6855
    status_size: bool = True  # RFC 8438
    binary: bool = True  # RFC 3516
    appendlimit: bool = True  # RFC 7889
    id_fields: tuple[tuple[str, str], ...] = (("name", "mailyard"),)  # RFC 2971 reply

    def __post_init__(self) -> None:
        for mechanism in self.sasl_mechanisms:
            if mechanism not in MECHANISMS:
                raise ValueError(f"unsupported SASL mechanism {mechanism!r}")
        if self.literal not in ("LITERAL+", "LITERAL-", ""):
            raise ValueError("literal must be LITERAL+, LITERAL- or empty")
        if self.qresync and not self.condstore:
            raise ValueError("QRESYNC needs CONDSTORE (RFC 7162 §3.2)")
        for algorithm in self.thread:
            if algorithm not in ("ORDEREDSUBJECT", "REFERENCES"):
                raise ValueError(f"unsupported THREAD algorithm {algorithm!r}")
        if self.list_status and not self.list_extended:
            raise ValueError("LIST-STATUS needs LIST-EXTENDED (RFC 5819 §1)")
        if self.create_special_use and not self.special_use:
            raise ValueError("CREATE-SPECIAL-USE needs SPECIAL-USE")
        if self.imap4rev2:
            missing = [name for name in _REV2_NEEDS if not getattr(self, name)]
            if missing or not self.literal:
                # RFC 9051 §1 / Appendix E: these extensions are part of IMAP4rev2.
                raise ValueError(f"IMAP4rev2 needs {', '.join(missing) or 'LITERAL-'}")


@dataclass(frozen=True, slots=True)
class ImapServerConfig:
    hostname: str
    limits: ImapLimits = field(default_factory=ImapLimits)
    features: ImapFeatures = field(default_factory=ImapFeatures)

    def __post_init__(self) -> None:
        if not self.hostname or not self.hostname.isprintable() or " " in self.hostname:
            raise ValueError("hostname must be one printable token")


@dataclass(frozen=True, slots=True)
class SessionView:
    """What CAPABILITY depends on besides the configuration."""

    authenticated: bool
    tls_active: bool


def capabilities(config: ImapServerConfig, view: SessionView) -> tuple[str, ...]:
    """The CAPABILITY list (RFC 9051 §7.2.2) for the session as it stands.

    Before login only what helps to log in is shown with the basics
    (RFC 9051 §6.1.1: the list may change after login and STARTTLS);
    STARTTLS and AUTH= disappear once they cannot be used.
    """
    f = config.features
    caps = ["IMAP4rev1"]
    if f.imap4rev2:
        caps.append("IMAP4rev2")
    if not view.authenticated:
        if f.starttls and not view.tls_active:
            caps.append("STARTTLS")
        if view.tls_active or f.login_without_tls:
            caps += [f"AUTH={m}" for m in f.sasl_mechanisms]
            if f.sasl_mechanisms:
                caps.append("SASL-IR")  # RFC 4959
        else:
            caps.append("LOGINDISABLED")  # RFC 9051 §6.2.3
    caps += ["ENABLE", "ID"]  # RFC 5161, RFC 2971
    if f.literal:
        caps.append(f.literal)
    if not view.authenticated:
        return tuple(caps)
    caps += _authenticated_caps(config)
    return tuple(caps)


def _authenticated_caps(config: ImapServerConfig) -> list[str]:
    f = config.features
    table = (
        (f.idle, "IDLE"), (f.namespace, "NAMESPACE"), (f.uidplus, "UIDPLUS"),
        (f.move, "MOVE"), (f.unselect, "UNSELECT"), (f.children, "CHILDREN"),
        (f.special_use, "SPECIAL-USE"), (f.create_special_use, "CREATE-SPECIAL-USE"),
        (f.list_extended, "LIST-EXTENDED"), (f.list_status, "LIST-STATUS"),
        (f.quota, "QUOTA"), (f.quota, "QUOTA=RES-STORAGE"), (f.quota, "QUOTA=RES-MESSAGE"),
        (f.esearch, "ESEARCH"), (f.searchres, "SEARCHRES"), (f.condstore, "CONDSTORE"),
        (f.qresync, "QRESYNC"), (f.sort, "SORT"), (f.utf8_accept, "UTF8=ACCEPT"),
        (f.status_size, "STATUS=SIZE"), (f.binary, "BINARY"),
    )  # fmt: skip
    caps = [name for on, name in table if on]
    caps += [f"THREAD={a}" for a in f.thread]
    if f.appendlimit:
        caps.append(f"APPENDLIMIT={config.limits.max_append_size}")
    return caps
