"""scan.list_messages: what counts as a message file (dot files, symlinks, directories and
names with control characters do not), the same on the fast path and the checked one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mailyard.maildir import scan

_NAME_CHARS = st.sampled_from(["a", "1", ".", ":", ",", "=", " ", "\t", "\x7f", "é", "\u2028"])
_names = st.lists(st.text(_NAME_CHARS, min_size=1, max_size=8), max_size=12, unique=True)


def _expected(names: list[str]) -> list[str]:
    return sorted(n for n in names if not n.startswith(".") and n.isprintable())


def test_skips_what_is_not_a_message(tmp_path: Path) -> None:
    for name in ("1700.M1P2Q3.host,S=5:2,S", "plain", ".hidden", "bad\x01name"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "subdir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "plain")
    assert sorted(scan.list_messages(str(tmp_path))) == ["1700.M1P2Q3.host,S=5:2,S", "plain"]
    assert sorted(scan._checked(str(tmp_path))) == sorted(scan.list_messages(str(tmp_path)))


@settings(max_examples=60, deadline=None)
@given(_names)
def test_fast_path_agrees_with_the_rule(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as where:
        made = []
        for name in names:
            if name in (".", ".."):
                continue
            try:
                with open(os.path.join(where, name), "wb"):
                    made.append(name)
            except OSError:
                continue
        assert sorted(scan.list_messages(where)) == _expected(made)
        assert sorted(scan._checked(where)) == _expected(made)
