"""The real `python -m mailyard` process: exit statuses, stderr, stdin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _mailyard(state: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailyard", "--state", str(state), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_real_process_round_trip_and_error_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert _mailyard(state, "init", "--hostname", "mx.example.test").returncode == 0
    assert _mailyard(state, "domain", "add", "example.test").returncode == 0
    added = _mailyard(
        state, "user", "add", "joe@example.test", "--password-stdin", "--json", stdin="pw\n"
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["maildir"] == "example.test/joe"
    assert (state / "mail" / "example.test" / "joe" / "new").is_dir()
    listed = _mailyard(state, "user", "list", "--json")
    assert [m["address"] for m in json.loads(listed.stdout)] == ["joe@example.test"]

    duplicate = _mailyard(
        state, "user", "add", "joe@example.test", "--password-stdin", stdin="pw\n"
    )
    assert duplicate.returncode == 1
    assert duplicate.stdout == ""
    assert duplicate.stderr == "mailyard: mailbox joe@example.test already exists\n"

    unknown = _mailyard(state, "domain", "show", "nowhere.test")
    assert (unknown.returncode, unknown.stderr) == (1, "mailyard: no such domain nowhere.test\n")
