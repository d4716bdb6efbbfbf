"""The IMAP handlers' small pure helpers, and the IDLE watcher."""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Callable
from pathlib import Path

from mailyard.config import ImapConfig
from mailyard.maildir.errors import FolderExists, MessageGone, NoSuchFolder, OverQuota, StoreError
from mailyard.maildir.folder import Folder
from mailyard.maildir.quota import QuotaLimits, QuotaUsage
from mailyard.maildir.transfer import CopyResult
from mailyard.maildir.values import StoreMode
from mailyard.proto.imap import commands as c
from mailyard.proto.imap.responses import Code, CopyUid, QuotaResource
from mailyard.proto.imap.sequence import SequenceSet
from mailyard.server.imap.errors import code_of, os_error_answer
from mailyard.server.imap.mailboxes import status_items
from mailyard.server.imap.quota import quota_response
from mailyard.server.imap.selected import vanished_in
from mailyard.server.imap.setup import core_config
from mailyard.server.imap.state import Selected
from mailyard.server.imap.transfer import copyuid
from mailyard.server.imap.watcher import FolderWatcher, folder_stamp
from tests.maildir.storehelp import age, deliver_to


def test_vanished_limited_to_known_uids() -> None:
    assert vanished_in([(2, 5), (9, 9)], None) == ((2, 5), (9, 9))
    assert vanished_in([(2, 5), (9, 9)], SequenceSet.parse("1:3,9:*")) == ((2, 3), (9, 9))
    assert vanished_in([], SequenceSet.parse("1:*")) == ()


def test_copyuid_pairs_by_position() -> None:
    assert copyuid(CopyResult(7, ())) is None
    code = copyuid(CopyResult(7, ((1, 10), (2, 11), (5, 12))))
    assert code == CopyUid(7, SequenceSet.parse("1:2,5"), SequenceSet.parse("10:12"))


def test_quota_response_units() -> None:
    usage = QuotaUsage(2049, 3, QuotaLimits(10 * 1024 + 512, 100))
    # RFC 9208 §5.1: units of 1024 octets; usage rounded up, the limit down.
    assert quota_response(usage).resources == (QuotaResource("STORAGE", 3, 10),
                                               QuotaResource("MESSAGE", 3, 100))
    assert quota_response(QuotaUsage(0, 0, QuotaLimits(None, 5))).resources == (
        QuotaResource("MESSAGE", 0, 5),)


def test_status_items_in_the_order_asked() -> None:
    items = (c.StatusItem.UIDNEXT, c.StatusItem.MESSAGES, c.StatusItem.APPENDLIMIT)
    assert status_items(4, 1, 9, 77, 2, 0, 1234, 5, 1000, items) == (
        (c.StatusItem.UIDNEXT, 9), (c.StatusItem.MESSAGES, 4), (c.StatusItem.APPENDLIMIT, 1000))


def test_error_codes() -> None:
    assert code_of(NoSuchFolder("x")) is Code.NONEXISTENT
    assert code_of(FolderExists("x")) is Code.ALREADYEXISTS
    assert code_of(OverQuota("x")) is Code.OVERQUOTA
    assert code_of(MessageGone("x")) is Code.EXPUNGEISSUED
    assert code_of(StoreError("x")) is Code.CANNOT
    assert os_error_answer(OSError(errno.ENOSPC, "full"))[0] is Code.OVERQUOTA
    assert os_error_answer(OSError(errno.EIO, "io"))[0] is Code.UNAVAILABLE


def test_core_config_follows_the_connection() -> None:
    plain = core_config(ImapConfig(), "mx.example", starttls=True, login_without_tls=False)
    assert plain.features.starttls and not plain.features.login_without_tls
    assert plain.limits.max_append_size == ImapConfig().max_append_size
    assert core_config(ImapConfig(), "mx.example", starttls=True,
                       login_without_tls=False) is plain  # one shared value


def test_flags_are_reused_and_follow_keywords(tmp_path: Path) -> None:
    deliver_to(tmp_path / "box")
    folder = Folder.open(str(tmp_path / "box"))
    view = folder.view()
    selected = Selected("INBOX", folder, view, readonly=False)
    first = selected.flags(0b10000, True)
    assert first.flags == ("\\Seen", "\\Recent") and selected.flags(0b10000, True) is first
    view.store(view.uids, StoreMode.ADD, ["$Label"])
    assert "$Label" in selected.flags(1 << 6, False).flags
    folder.close()


def test_folder_stamp_moves_and_settles(tmp_path: Path) -> None:
    box = tmp_path / "box"
    deliver_to(box)
    age(box)
    now = time.time_ns()
    stamp, settled = folder_stamp(str(box), now)
    assert settled
    deliver_to(box)
    again, settled = folder_stamp(str(box), time.time_ns())
    assert again != stamp and not settled
    assert folder_stamp(str(tmp_path / "gone"), now)[0] == (0,) * 9


def test_watcher_wakes_the_idlers_of_a_changed_folder(tmp_path: Path) -> None:
    box, other = tmp_path / "box", tmp_path / "other"
    deliver_to(box)
    deliver_to(other)
    age(box)
    age(other)

    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        watcher = FolderWatcher(lambda work: loop.run_in_executor(None, work), interval=0.01)
        woken: list[str] = []
        changed = asyncio.Event()

        def wake(name: str) -> Callable[[], None]:
            def call() -> None:
                woken.append(name)
                changed.set()
            return call

        box_wake, other_wake = wake("box"), wake("other")
        watcher.watch(str(box), box_wake)
        watcher.watch(str(other), other_wake)
        deliver_to(box)
        await asyncio.wait_for(changed.wait(), 5)
        watcher.unwatch(str(box), box_wake)
        watcher.unwatch(str(other), other_wake)
        await watcher.stop()
        return woken

    woken = asyncio.run(scenario())
    # Only the folder that changed wakes its sessions (the other one's stamps
    # were settled from the first look).
    assert woken and set(woken) == {"box"}
