"""Code loaded before the privilege drop: when it is needed, and what it loads.

The end-to-end proof is tests/e2e/test_privsep_e2e.py (mail in koi8-r,
iso-2022-jp, big5 and cp1256 searched through a worker dropped to a user
who cannot read this machine's interpreter). Here: the permission check
against mode bits, and the preload itself in a fresh interpreter, so this
process's modules do not hide a missing one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailyard.server.preload import code_folders, preload_for, readable_by
from mailyard.server.privileges import Identity

NOBODY = Identity("nobody", 65534, 65534, (65534,))
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the preload only runs as root")


def test_code_folders_name_the_stdlib_and_mailyard() -> None:
    folders = code_folders()
    assert os.path.dirname(os.__file__) in folders
    import mailyard

    assert os.path.dirname(os.path.dirname(mailyard.__file__ or "")) in folders


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder anyone may reach: /var/tmp, as pytest's own are root's, mode 0700."""
    folder = Path(tempfile.mkdtemp(prefix="mailyard-preload-", dir="/var/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_readable_by_follows_the_mode_bits(open_folder: Path) -> None:
    top = open_folder / "top"
    inner = top / "inner"
    inner.mkdir(parents=True)
    top.chmod(0o755)
    inner.chmod(0o755)
    assert readable_by(str(inner), NOBODY)
    top.chmod(0o711)  # search only above: still readable below
    assert readable_by(str(inner), NOBODY)
    assert not readable_by(str(top), NOBODY)  # but not listable itself
    top.chmod(0o700)  # like /root: nothing below can be reached
    assert not readable_by(str(inner), NOBODY)
    owner = Identity("owner", top.stat().st_uid, 65534, ())
    assert readable_by(str(inner), owner)
    top.chmod(0o750)
    group = Identity("member", 65533, 65532, (top.stat().st_gid,))
    assert readable_by(str(inner), group)
    assert not readable_by(str(open_folder / "missing"), NOBODY)


def test_no_drop_no_preload() -> None:
    assert preload_for(None).modules == 0
    assert preload_for(Identity("root", 0, 0, ())).modules == 0


_SCRIPT = """
import sys
import mailyard.server.preload as preload
from mailyard.server.privileges import Identity
preload.code_folders = lambda: [sys.argv[1]]
done = preload.preload_for(Identity("nobody", 65534, 65534, (65534,)), ["no_such_mod"])
wanted = ["encodings.koi8_r", "encodings.iso2022_jp", "encodings.idna", "email.headerregistry",
          "dns.rdtypes.IN.A", "dns.rdtypes.ANY.MX", "mailyard.proto.imap.search",
          "concurrent.futures.thread"]
print(done.blocked, done.modules, [name for name in wanted if name not in sys.modules],
      [name for name in sys.modules if name.startswith(("mailyard.cli", "click", "rich"))])
"""


@needs_root
def test_an_unreadable_folder_loads_every_codec_and_record_type(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(locked)], capture_output=True,
                         text=True, timeout=120, check=True).stdout.split(" ", 2)
    assert out[0] == str(locked)
    assert int(out[1]) > 300
    # Nothing wanted is missing, and nothing of the command line was loaded.
    assert out[2].strip() == "[] []"


@needs_root
def test_a_readable_interpreter_loads_nothing(open_folder: Path) -> None:
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(open_folder)], capture_output=True,
                         text=True, timeout=120, check=True).stdout.split(" ", 2)
    assert out[:2] == ["None", "0"]
