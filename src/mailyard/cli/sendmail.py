"""``mailyard sendmail`` / ``mailyard-sendmail``: the sendmail-compatible injector.

Programs (cron, PHP's mail(), mailx, git send-email …) call ``sendmail``
with a message on stdin. This reads it, prepares it (message/inject.py),
writes it into the queue through the same straight paper path as SMTP
(``Queue.begin`` … ``commit``) and tells the running server's delivery
worker at once; if the server is not running, the worker's start-up scan
finds the message. Linked as /usr/sbin/sendmail it must behave like
sendmail, so flags are parsed sendmail's way (``-fsender`` and ``-f sender``,
``-oi``, clustered ``-ti``), unknown ``-o`` and ``-B``/``-N``/``-R``/``-v``
options are accepted and ignored, and exit codes are sysexits.h's.

Supported: ``-t`` (recipients from To/Cc/Bcc, Bcc removed), ``-f``/``-r``
(envelope sender; ``<>`` is the null sender), ``-F`` (full name for a
missing From:), ``-i``/``-oi`` (a line holding only "." does not end the
message), ``-odq``/``-odi``/``-odb`` (accepted: mail is always queued and
delivered at once), ``-bm`` (the default mode). Not supported, refused with
EX_USAGE: ``-bs`` (SMTP on stdin), ``-bp`` (use ``mailyard queue list``).
"""

from __future__ import annotations

import getpass
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Final

from mailyard.cli.control_client import ControlError, control
from mailyard.config import Config, ConfigError, load_config
from mailyard.message.address import Address, AddressError, parse_address
from mailyard.message.inject import InjectError, prepare_message
from mailyard.queue.store import Envelope, Queue

__all__ = ["SendmailArgs", "SendmailUsage", "main", "parse_args", "run"]

# sysexits.h
EX_OK: Final = 0
EX_USAGE: Final = 64
EX_DATAERR: Final = 65
EX_NOINPUT: Final = 66
EX_SOFTWARE: Final = 70
EX_CANTCREAT: Final = 73
EX_TEMPFAIL: Final = 75
EX_CONFIG: Final = 78

_IGNORED_WITH_VALUE: Final = frozenset("BNRLOXhC")  # -B type, -N dsn, -R ret, -L tag, …
_IGNORED_FLAGS: Final = frozenset("vUGnmexq")


class SendmailUsage(ValueError):
    """The command line is not one we accept (exit EX_USAGE)."""


@dataclass
class SendmailArgs:
    read_recipients: bool = False  # -t
    sender: str | None = None  # -f / -r
    full_name: str | None = None  # -F
    dot_ends: bool = True  # without -i, a lone "." line ends the message
    recipients: list[str] = field(default_factory=list)


def _option_value(arg: str, argv: list[str], i: int) -> tuple[str, int]:
    """The value of ``-xVALUE`` or ``-x VALUE``; the next index."""
    if len(arg) > 2:
        return arg[2:], i + 1
    if i + 1 >= len(argv):
        raise SendmailUsage(f"option {arg} needs a value")
    return argv[i + 1], i + 2


def _cluster(arg: str, args: SendmailArgs) -> None:
    for letter in arg[1:]:
        if letter == "t":
            args.read_recipients = True
        elif letter == "i":
            args.dot_ends = False
        elif letter not in _IGNORED_FLAGS:
            raise SendmailUsage(f"unknown option -{letter}")


def parse_args(argv: list[str]) -> SendmailArgs:
    args = SendmailArgs()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            args.recipients += argv[i + 1 :]
            break
        if not arg.startswith("-") or arg == "-":
            args.recipients.append(arg)
            i += 1
            continue
        letter = arg[1]
        if letter in "fr":
            args.sender, i = _option_value(arg, argv, i)
        elif letter == "F":
            args.full_name, i = _option_value(arg, argv, i)
        elif letter == "o":
            value, i = _option_value(arg, argv, i)
            if value == "i":
                args.dot_ends = False  # -oi; other -o options are sendmail.cf tuning
        elif letter == "b":
            mode, i = _option_value(arg, argv, i)
            if mode not in {"m", "d"}:
                raise SendmailUsage(f"-b{mode} is not supported (only -bm)")
        elif letter == "d" or letter in _IGNORED_WITH_VALUE:
            _, i = _option_value(arg, argv, i)
        else:
            _cluster(arg, args)
            i += 1
    return args


def _read_message(stream: object, limit: int, dot_ends: bool) -> bytes:
    """stdin up to ``limit`` octets (+1 to notice more); the lone-dot rule."""
    reader = getattr(stream, "buffer", stream)
    chunks: list[bytes] = []
    size = 0
    for line in reader:  # type: ignore[attr-defined]
        if dot_ends and line.rstrip(b"\r\n") == b".":
            break
        chunks.append(line)
        size += len(line)
        if size > limit:
            break
    return b"".join(chunks)


def _sender(args: SendmailArgs, config: Config) -> Address | None:
    text = args.sender
    if text is None:
        text = f"{os.environ.get('MAILUSER') or getpass.getuser()}@{config.hostname}"
    text = text.strip()
    if text in {"", "<>"}:
        return None
    try:
        return parse_address(text.removeprefix("<").removesuffix(">"))
    except AddressError as exc:
        raise SendmailUsage(f"invalid sender address {text!r}: {exc}") from exc


def run(argv: list[str], state_dir: str, stdin: object = None) -> int:
    """Inject one message; the exit status (messages go to stderr)."""
    def fail(code: int, text: str) -> int:
        sys.stderr.write(f"mailyard-sendmail: {text}\n")
        return code

    try:
        args = parse_args(argv)
        config = load_config(state_dir)
        sender = _sender(args, config)
    except SendmailUsage as exc:
        return fail(EX_USAGE, str(exc))
    except ConfigError as exc:
        return fail(EX_CONFIG, f"configuration: {exc}")
    limit = config.smtp.max_message_size
    raw = _read_message(stdin if stdin is not None else sys.stdin, limit, args.dot_ends)
    if len(raw) > limit:
        return fail(EX_DATAERR, f"message larger than {limit} octets")
    queue = Queue(config.path("queue"))
    qid = queue.new_id()
    try:
        queue.ensure_layout()  # a state folder whose server never ran yet
    except OSError as exc:
        return fail(EX_CANTCREAT, f"cannot use the queue: {exc.strerror or exc}")
    now = time.time()
    try:
        prepared = prepare_message(
            raw, recipients=args.recipients, read_recipients=args.read_recipients,
            sender=sender, full_name=args.full_name, now=now,
            message_id=f"{qid}@{config.hostname}",
            trace=f"(mailyard-sendmail invoked by uid {os.getuid()})",
        )
    except InjectError as exc:
        return fail(EX_USAGE if "no recipients" in str(exc) else EX_DATAERR, str(exc))
    envelope = Envelope(prepared.sender, prepared.recipients, now,
                        smtputf8=not (prepared.sender + "".join(prepared.recipients)).isascii())
    try:
        writer = queue.begin(envelope, qid)
        try:
            writer.write(prepared.data)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    except OSError as exc:
        return fail(EX_TEMPFAIL if exc.errno else EX_CANTCREAT,
                    f"cannot queue the message: {exc.strerror or exc}")
    try:
        control(config.path("run", "control.sock"), f"notify {qid}")
    except ControlError:
        pass  # no server running: its start-up scan delivers the message
    return EX_OK


def main() -> None:
    """The ``mailyard-sendmail`` console script (state: $MAILYARD_STATE or ./var)."""
    sys.exit(run(sys.argv[1:], os.path.abspath(os.environ.get("MAILYARD_STATE", "./var"))))
