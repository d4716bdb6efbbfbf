"""Creating a state folder: layout, a commented configuration, a certificate."""

from __future__ import annotations

import os
import socket
from typing import Final

from mailyard import fsio
from mailyard.config import CONFIG_NAME, load_config
from mailyard.dispatch.srskey import ensure_secret
from mailyard.queue.store import Queue
from mailyard.server.tls import ensure_self_signed

__all__ = ["CONFIG_TEMPLATE", "init_state"]

CONFIG_TEMPLATE: Final = """\
# mailyard configuration. Every key is optional; the values shown commented
# out are the defaults. Reference: docs/configuration.md.

hostname = "{hostname}"          # name in greetings, Received: lines and bounces
{postmaster_line}

[smtp]
# MX port. Production: [":25"]. Loopback only by default.
listen = ["127.0.0.1:2525"]
# max_message_size = 52428800     # octets, announced with SIZE, enforced while streaming
# max_recipients = 1000
# max_line_length = 1000          # octets incl. CRLF (RFC 5321 §4.5.3.1.6)
# max_command_line = 1000
# max_commands = 10000            # per connection
# max_bad_commands = 20           # then 421 and the connection is closed
# max_connections = 200
# max_connections_per_ip = 20
# timeout_command = 300.0         # seconds (RFC 5321 §4.5.3.2)
# timeout_data_block = 180.0
# relay_networks = []             # CIDRs allowed to relay without AUTH, e.g. ["127.0.0.0/8"]
# auth = false                    # offer AUTH (under TLS) on the MX port too; users may then relay

[submission]
# Mail from your users' programs (RFC 6409): AUTH required, over TLS only.
# STARTTLS port; production [":587"]:
listen = ["127.0.0.1:2587"]
# Implicit-TLS port (SMTPS, RFC 8314); production [":465"]:
listen_tls = ["127.0.0.1:2465"]
# sender_check = "strict"         # sender and From: must be the user's own address; or "off"
# max_header_size = 262144        # octets of header section held back for the checks
# max_connections = 200
# max_connections_per_ip = 20

[tls]
# One certificate for every service; relative paths are inside the state
# folder. `mailyard init` made a self-signed one; replace both files with a
# real certificate (the chain after it) and send SIGHUP to reload.
# cert = "tls/cert.pem"
# key = "tls/key.pem"
# min_version = "1.2"             # or "1.3"
# handshake_timeout = 30.0
# loopback_plaintext_auth = false # allow AUTH without TLS from 127.0.0.1/::1 (tests, demos)

[pop3]
listen = ["127.0.0.1:2110"]
# Implicit-TLS port (POP3S, RFC 8314); production [":995"]:
listen_tls = ["127.0.0.1:2995"]
# timeout_idle = 600.0            # RFC 1939 §3: at least ten minutes
# max_connections = 200
# max_connections_per_ip = 20

[imap]
# IMAP4rev1/IMAP4rev2; STARTTLS (and LOGINDISABLED until then) with a
# certificate. Production [":143"]:
listen = ["127.0.0.1:2143"]
# Implicit-TLS port (IMAPS, RFC 8314); production [":993"]:
listen_tls = ["127.0.0.1:2993"]
# max_connections = 200
# max_connections_per_ip = 20
# timeout_unauthenticated = 60.0  # seconds before login
# timeout_authenticated = 1800.0  # RFC 9051 §5.4: at least 30 minutes
# timeout_idle = 1800.0           # during IDLE (RFC 2177: clients renew within 29 minutes)
# max_line_length = 65536         # octets incl. CRLF
# max_literal_size = 65536        # any literal but an APPEND message
# max_command_size = 262144
# max_append_size = 67108864      # announced as APPENDLIMIT (RFC 7889)
# max_bad_commands = 20
# max_commands = 1000000

[login]
# A bare user name (no @domain) logs into this domain ...
default_domain = "{default_domain}"
# ... or into the domain given here for the local address the client reached
# (VMailMgr-style IP-based hosting):
# by_address = {{ "192.0.2.10" = "example.com" }}
# max_failures = 5                # per client address within failure_window
# max_account_failures = 10       # per login name within failure_window, from any address
# failure_window = 300.0
# failure_delay = 1.0             # seconds added to every failed login

[queue]
# lifetime = 604800               # seconds before a message that cannot be delivered bounces
# retry_skip_local = 10           # qmail's schedule: next = birth + (isqrt(age) + skip)^2
# retry_skip_remote = 20
# rescan_interval = 300.0
# delay_warning = 0.0             # seconds before a "delayed" notice to the sender; 0 = never

[delivery]
# "hold" keeps mail for other hosts queued (mailyard queue list) until an
# operator sets "deliver"; then `mailyard queue flush` sends what waits.
remote = "hold"
# local_concurrency = 4          # local delivery processes working at once
# remote_concurrency = 20        # SMTP sessions to other hosts at once
# per_destination = 5            # of those, to one domain or route
# helo = ""                      # EHLO name; "" = hostname
# resolver = []                  # nameservers "addr[:port]"; [] = /etc/resolv.conf

# Static routes (qmail's smtproutes): a domain -> "host:port"; "" is the
# default route (a smarthost), ".example.com" its subdomains.
# [delivery.routes]
# "" = "smtp.provider.example:587"
# "partner.example" = {{ host = "mx.partner.example", tls = "required" }}
# "" = {{ host = "smtp.provider.example", port = 465, tls = "implicit",
#        user = "me", password_file = "/etc/mailyard/smarthost.pw" }}

# QMTP (qmail-qmtpd) and QMQP (qmail-qmqpd), off by default.
# [qmtp]
# listen = [":209"]
# [qmqp]
# listen = [":628"]
# clients = ["192.0.2.0/24"]     # the hosts that may hand mail to this central queue

[forwarding]
# Mail forwarded to other hosts (aliases, lists, forwards) gets an SRS
# envelope sender so the receiver's SPF check passes; bounces to those
# addresses come back here and go on to the original sender.
# srs = true
# srs_domain = ""                 # domain of the SRS addresses; "" = hostname
# srs_max_age_days = 21           # older SRS addresses are refused

[quota]
# grace = "1d"                    # over quota: deferred this long after arrival, then bounced
# warn_percent = 90               # warn the user (once a day) past this usage; 0 = never

[log]
# level = "info"                  # debug, info, warning, error
# format = "text"                 # text (event key=value) or json
# file = ""                       # "" = stderr (journald); else a file rotated by size
# max_bytes = 16777216            # rotate past this size; 0 = never
# keep = 5                        # rotated files kept

[server]
# Started as root, mailyard binds its ports, then runs the SMTP side as
# `user` and delivery, IMAP and POP3 as `mail_user` (docs/supervision.md).
# user = "mailyard"
# mail_user = "vmail"
# imap_workers = 1                # "auto" = one per core (faster under load)
# pop3_workers = 1
# watchdog = "60s"                # a worker silent this long is restarted
# stop_grace = "10s"
# event_loop = "asyncio"          # or "uvloop" (pip install 'mailyard[uvloop]')

[metrics]
# listen = "127.0.0.1:9154"       # Prometheus /metrics; "" = off

# Access rules per client network, first match wins (docs/access.md):
# [[access]]
# network = "192.0.2.0/24"
# action = "deny"
# [[access]]
# network = "10.0.0.0/8"
# services = ["smtp"]
# relay = true
"""


def init_state(
    state_dir: str, hostname: str | None, default_domain: str = "", postmaster: str = ""
) -> bool:
    """Create the state folder layout, configuration and a self-signed
    certificate for the host name; False if the folder was initialised."""
    config_path = os.path.join(state_dir, CONFIG_NAME)
    if os.path.exists(config_path):
        return False
    fsio.ensure_dir(state_dir)
    for sub in ("mail", "run", "tls"):
        fsio.ensure_dir(os.path.join(state_dir, sub))
    Queue(os.path.join(state_dir, "queue")).ensure_layout()
    host = hostname or socket.getfqdn()
    postmaster_line = (
        f'postmaster = "{postmaster}"   # double bounces and mail to postmaster'
        if postmaster
        else f'# postmaster = "postmaster@{host}"   # double bounces and mail to postmaster;\n'
        "#   make it a local mailbox"
    )
    text = CONFIG_TEMPLATE.format(
        hostname=host, default_domain=default_domain, postmaster_line=postmaster_line
    )
    fsio.write_file_atomic(state_dir, CONFIG_NAME, [text.encode()], mode=0o600)
    ensure_secret(state_dir)  # the SRS key: every delivery process must share one
    ensure_self_signed(load_config(state_dir))
    return True
