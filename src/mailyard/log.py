"""Structured logs: one line per event, ``event key=value ...``.

``event("smtp.accept", id=qid, size=n)`` is the one way to log. Values are
quoted when they contain spaces or quotes, and control characters are
escaped, so a client cannot forge log lines. Never pass a password.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Final

__all__ = ["configure", "event", "format_kv", "logger"]

logger: Final = logging.getLogger("mailyard")

_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_MAX_VALUE: Final = 300  # long client-supplied values are cut


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


def format_kv(name: str, fields: dict[str, object]) -> str:
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


def configure(level: str = "info", fmt: str = "text") -> None:
    """Send mailyard's log lines to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _TextFormatter())
    logger.handlers[:] = [handler]
    logger.setLevel(_LEVELS.get(level, logging.INFO))
    logger.propagate = False


def event(
    name: str, *, level: int = logging.INFO, exc_info: bool = False, **fields: object
) -> None:
    """Log one event line."""
    if not logger.isEnabledFor(level):
        return
    present = {k: v for k, v in fields.items() if v is not None}
    logger.log(
        level,
        format_kv(name, present),
        exc_info=exc_info,
        extra={"event_name": name, "event_fields": present},
    )
