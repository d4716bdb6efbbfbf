"""The POP3 maildrop keeps the shared uid list and maildirsize current (issue 3)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mailyard.maildir import names
from mailyard.maildir.drop import Maildrop
from mailyard.maildir.folder import Folder
from mailyard.maildir.quota import Quota, QuotaLimits
from tests.maildir.storehelp import deliver_to, read_uidlist


def test_pop3_gives_uids_and_records_deletions(tmp_path: Path) -> None:
    box = tmp_path / "box"
    delivered = [deliver_to(box, b"m%d\r\n" % i) for i in range(3)]
    Quota(str(box)).set_limits(QuotaLimits(storage=1000))
    with Maildrop.open(str(box)) as drop:
        assert [e.uid for e in drop.entries] == [names.uidl_for(n) for n in delivered]
        assert [line.split()[1] for line in read_uidlist(box)[1:]] == ["1", "2", "3"]
        drop.delete([1])
    folder = Folder.open(str(box))
    folder.sync()
    assert list(folder.uids) == [1, 3]
    assert folder.vanished_since(0) == [(2, 2)]
    assert read_uidlist(box)[-1].startswith("X 2 ")
    assert Quota(str(box)).usage().storage == 8


def test_a_broken_uid_list_does_not_stop_pop3(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    box = tmp_path / "box"
    deliver_to(box)
    (box / "mailyard-uidlist").mkdir()  # cannot be opened as a file
    with caplog.at_level(logging.WARNING, logger="mailyard"), Maildrop.open(str(box)) as drop:
        assert len(drop.entries) == 1
        drop.delete([0])
    assert "pop3.uidlist_failed" in caplog.text
