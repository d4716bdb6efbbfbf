"""qmail's control folder imported: hosted domains created, the rest reported.

The control files are read as they are (small text files, at most a
megabyte each); the plan (qmail.py) decides. Only hosted domains (and,
with ``--owners``, their owners) go into the directory; the host name,
size limit and routes are printed as mailyard.toml lines for the operator
to paste, since the configuration file is theirs.
"""

from __future__ import annotations

import os
from typing import Final

from mailyard.directory import admin
from mailyard.directory.errors import DirectoryError
from mailyard.directory.store import Directory
from mailyard.importers.apply_vmailmgr import LOCKED_HASH
from mailyard.importers.qmail import CONTROL_FILES, QmailControl, QmailPlan, parse_control
from mailyard.importers.report import Created, ImportReport, Progress, Unmapped, no_progress

__all__ = ["apply_qmail", "read_control"]

_MAX_FILE: Final = 1 << 20
_ASSIGN: Final = "assign"


def _read_text(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(_MAX_FILE).decode("utf-8", "replace")
    except FileNotFoundError:
        return None


def read_control(control_dir: str, users_dir: str | None = None) -> QmailControl:
    """Read the control files present in ``control_dir`` and ``users_dir/assign``."""
    files: dict[str, str] = {}
    for name in CONTROL_FILES:
        text = _read_text(os.path.join(control_dir, name))
        if text is not None:
            files[name] = text
    assign = None if users_dir is None else _read_text(os.path.join(users_dir, _ASSIGN))
    return parse_control(files, assign)


def _owner(directory: Directory, name: str, dry_run: bool, made: set[str],
           created: list[Created]) -> None:
    if name in made or directory.get_owner(name) is not None:
        return
    if not dry_run:
        admin.add_owner(directory, name, LOCKED_HASH)
    made.add(name)
    created.append(Created("owner", name, f"login disabled until `mailyard owner passwd {name}`"))


def apply_qmail(directory: Directory, plan: QmailPlan, *, dry_run: bool = False,
                progress: Progress = no_progress) -> ImportReport:
    """Create the planned domains (and owners); report the rest."""
    created: list[Created] = []
    unmapped = list(plan.unmapped)
    made: set[str] = set()
    for done, domain in enumerate(plan.domains, 1):
        progress(done, len(plan.domains))
        if directory.get_domain(domain.name) is not None:
            unmapped.append(Unmapped(f"domain {domain.name}", "exists already; left as it is"))
            continue
        try:
            if domain.owner is not None:
                _owner(directory, domain.owner, dry_run, made, created)
            if not dry_run:
                admin.add_domain(directory, domain.name, owner=domain.owner)
        except DirectoryError as exc:
            unmapped.append(Unmapped(f"domain {domain.name}", str(exc)))
            continue
        created.append(Created("domain", domain.name,
                               f"prefix {domain.prefix}, owner {domain.owner or '-'}"))
    notes: tuple[str, ...] = ()
    if plan.config:
        notes = ("add to mailyard.toml:", *plan.config)
    return ImportReport(tuple(created), tuple(unmapped), notes, dry_run)
