"""Structured logs: one line per event, ``event key=value ...``.

``event("smtp.accept", id=qid, size=n)`` is the one way to log. Values are
quoted when they contain spaces or quotes, and control characters are
escaped, so a client cannot forge log lines. Never pass a password.

Lines go to stderr by default (journald, or multilog under daemontools), or
to a file rotated by size (``[log] file``): several processes append to the
same file, and the one that finds it full rotates it under a lock, so the
others only reopen (``_SharedRotatingHandler``).

Every event, whatever the log level, is also handed to the event hook when
one is set (``set_event_hook``): that is how ``mailyard.observe`` counts
connections, deliveries and failures without a second call at each site.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import logging.handlers
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Final

__all__ = ["EventHook", "configure", "event", "format_kv", "logger", "set_event_hook"]

logger: Final = logging.getLogger("mailyard")

EventHook = Callable[[str, Mapping[str, object]], None]

_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_MAX_VALUE: Final = 300  # long client-supplied values are cut
_FILE_MODE: Final = 0o640  # logs name users and addresses: not world-readable

_hook: EventHook | None = None


def _render(value: object) -> str:
    text = str(value)
    if len(text) > _MAX_VALUE:
        text = text[:_MAX_VALUE] + "..."
    needs_quotes = not text or any(ch in text for ch in ' "=') or not text.isprintable()
    if not needs_quotes:
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in escaped)
    return f'"{escaped}"'


def format_kv(name: str, fields: Mapping[str, object]) -> str:
    """``name k=v k=v``, values quoted and escaped; None values left out."""
    return " ".join([name, *(f"{k}={_render(v)}" for k, v in fields.items() if v is not None)])


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "event": getattr(record, "event_name", record.getMessage()),
        }
        payload.update(getattr(record, "event_fields", {}))
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = f"{stamp}Z {record.levelname.lower()} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _SharedRotatingHandler(logging.handlers.RotatingFileHandler):
    """A size-rotated file that several processes append to (multilog's job).

    Lines are appended (O_APPEND), so processes do not overwrite each other.
    The size is read from the open file, which costs one fstat and no path
    lookup per line. The process that finds the file full takes an flock on
    ``<file>.lock`` and, if nobody rotated it meanwhile (the name still
    points at its open file), renames file → file.1 → … → file.<keep>;
    every other process then finds its old file full, sees under the same
    lock that the name points elsewhere, and just reopens.
    """

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     _FILE_MODE)
        return os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace")

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        if self.maxBytes <= 0:
            return False
        if self.stream is None:
            self.stream = self._open()
        return os.fstat(self.stream.fileno()).st_size >= self.maxBytes

    def doRollover(self) -> None:
        lock_fd = os.open(self.baseFilename + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                          _FILE_MODE)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            if self._still_ours():
                super().doRollover()
            else:
                if self.stream is not None:
                    self.stream.close()
                self.stream = self._open()
        finally:
            os.close(lock_fd)

    def _still_ours(self) -> bool:
        """True if the file's name still points at the file we write."""
        if self.stream is None:
            return True
        try:
            named = os.stat(self.baseFilename)
        except FileNotFoundError:
            return False
        mine = os.fstat(self.stream.fileno())
        return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)


def configure(
    level: str = "info",
    fmt: str = "text",
    *,
    file: str | None = None,
    max_bytes: int = 0,
    keep: int = 5,
) -> None:
    """Send mailyard's log lines to stderr, or to ``file`` rotated at
    ``max_bytes`` (0: never) keeping ``keep`` old files, in the chosen format."""
    handler: logging.Handler
    if file:
        handler = _SharedRotatingHandler(file, maxBytes=max_bytes, backupCount=keep,
                                         encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    for old in logger.handlers:
        if old is not handler and isinstance(old, logging.FileHandler):
            old.close()
    logger.handlers[:] = [handler]
    logger.setLevel(_LEVELS.get(level, logging.INFO))
    logger.propagate = False


def set_event_hook(hook: EventHook | None) -> EventHook | None:
    """Hand every later event to ``hook`` (None: to nobody); returns the old hook."""
    global _hook
    old, _hook = _hook, hook
    return old


def _run_hook(hook: EventHook, name: str, fields: Mapping[str, object]) -> None:
    try:
        hook(name, fields)
    except (OSError, ValueError, TypeError, KeyError):
        # Counting must never break the work being counted: the hook goes,
        # the logs stay, and the reason is logged once.
        set_event_hook(None)
        with contextlib.suppress(OSError):
            logger.warning("metrics.disabled", exc_info=True)


def event(
    name: str, *, level: int = logging.INFO, exc_info: bool = False, **fields: object
) -> None:
    """Log one event line (and count it, when a hook is set)."""
    hook = _hook
    if hook is None and not logger.isEnabledFor(level):
        return
    present = {k: v for k, v in fields.items() if v is not None}
    if hook is not None:
        _run_hook(hook, name, present)
    if not logger.isEnabledFor(level):
        return
    logger.log(
        level,
        format_kv(name, present),
        exc_info=exc_info,
        extra={"event_name": name, "event_fields": present},
    )
