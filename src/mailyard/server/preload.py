"""Load, before a worker drops its privileges, the code Python loads on first use.

A worker loads its code as root and then runs as an unprivileged user
(server/privileges.py). Python still reads files after that: a codec is
imported the first time a message in that charset is decoded
(``encodings.koi8_r``), dnspython imports the module of a record type
when it first parses one (``dns.rdtypes.IN.MX``), the email package
imports its parts as they are needed. Where the interpreter or the
virtualenv lies in a folder the worker's user may not enter (an install
under ``/root``, mode 0700, as pipx or pyenv make as root), each of those
first uses would fail in the middle of serving a client.

So before the drop the worker asks whether its user could read the
folders the code comes from; when it could not, it imports everything it
may ever need while it still can. That costs a few megabytes and a
fraction of a second at start, paid only where it is needed.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Final

from mailyard.log import event
from mailyard.server.privileges import Identity, granted

__all__ = ["Preloaded", "code_folders", "preload_for", "readable_by"]

# Packages whose parts are imported on first use, walked whole. Ours
# except what only the command line uses; the stdlib's codecs and email
# package; dnspython's record types.
_WALKED: Final = ("mailyard", "encodings", "email", "dns")
_SKIPPED: Final = ("mailyard.cli", "mailyard.importers", "mailyard.__main__",
                   "encodings.mbcs", "encodings.oem",  # Windows only
                   "dns.quic", "dns.doh", "dns.asyncquery", "dns.win32util")
# Single modules the stdlib imports lazily on paths the workers take.
_SINGLE: Final = ("concurrent.futures.thread", "concurrent.futures.process",
                  "unicodedata", "quopri", "uu", "html", "mimetypes", "zoneinfo")


@dataclass(frozen=True, slots=True)
class Preloaded:
    """What ``preload_for`` did: the folder that forced it and the counts."""

    blocked: str | None
    modules: int
    unavailable: int = 0

    def report(self, role: str, who: Identity | None) -> None:
        """Log it, once the process's logging is set up (nothing when nothing was done)."""
        if self.blocked is not None and who is not None:
            event("server.preload", role=role, user=who.name, unreadable=self.blocked,
                  modules=self.modules, unavailable=self.unavailable)


def code_folders() -> list[str]:
    """The folders the running code is read from: the stdlib, the
    extension modules, and where mailyard and its dependencies lie."""
    folders = {os.path.dirname(os.__file__)}
    for name in ("_ssl", "mailyard", "dns", "argon2"):
        module = sys.modules.get(name)
        origin = getattr(module, "__file__", None) if module is not None else None
        if origin:
            folder = os.path.dirname(origin)
            # A package's own folder: its parent is where its siblings are.
            folders.add(os.path.dirname(folder) if origin.endswith("__init__.py") else folder)
    return sorted(folders)


def readable_by(path: str, who: Identity) -> bool:
    """Could ``who`` list and read ``path``: search permission on every
    folder above it, read and search on the folder itself (mode bits, as
    the kernel checks them for a non-root user)."""
    current = os.path.abspath(path)
    wanted = stat.S_IROTH | stat.S_IXOTH  # read and search, as "other" bits
    while True:
        try:
            st = os.stat(current)
        except OSError:
            return False
        if granted(st, who) & wanted != wanted:
            return False
        wanted = stat.S_IXOTH  # above the folder itself only search is needed
        parent = os.path.dirname(current)
        if parent == current:
            return True
        current = parent


def _walk(package: str) -> Iterator[str]:
    """``package`` and every module below it, skipped ones left out before
    anything of theirs is imported (a package's ``__init__`` runs when it
    is walked into)."""
    try:
        root: ModuleType = importlib.import_module(package)
    except Exception:  # an optional part whose own dependency is missing
        return
    yield package
    for info in pkgutil.iter_modules(getattr(root, "__path__", []), f"{package}."):
        if info.name.startswith(_SKIPPED):
            continue
        if info.ispkg:
            yield from _walk(info.name)
        else:
            yield info.name


def _import_all(names: Iterable[str]) -> tuple[int, int]:
    """Import each of ``names``: how many were loaded, how many could not be
    (optional parts whose own dependency is missing: nothing will use them)."""
    loaded = failed = 0
    for name in names:
        if name.startswith(_SKIPPED):
            continue
        try:
            importlib.import_module(name)
        except Exception:
            failed += 1
        else:
            loaded += 1
    return loaded, failed


def preload_for(who: Identity | None, extra: Iterable[str] = ()) -> Preloaded:
    """Before dropping to ``who``: when it could not read the code's
    folders, import everything a worker may need (``extra``: modules the
    configuration chose, such as uvloop). Nothing to do for no drop."""
    if who is None or os.geteuid() != 0 or who.uid == 0:
        return Preloaded(None, 0)
    blocked = next((f for f in code_folders() if not readable_by(f, who)), None)
    if blocked is None:
        return Preloaded(None, 0)
    names = [name for package in _WALKED for name in _walk(package)]
    loaded, failed = _import_all([*names, *_SINGLE, *extra])
    return Preloaded(blocked, loaded, failed)
