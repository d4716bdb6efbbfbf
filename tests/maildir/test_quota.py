"""Maildir++ quota with real files: usage, checks, recalculation (README.maildirquota)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mailyard.maildir.deliver import ensure_maildir
from mailyard.maildir.errors import OverQuota
from mailyard.maildir.quota import RECALC_SIZE, Quota, QuotaLimits, QuotaUsage
from tests.maildir.storehelp import deliver_to, plant


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "box"
    ensure_maildir(str(path))
    return path


def test_no_maildirsize_means_no_quota(root: Path) -> None:
    quota = Quota(str(root))
    assert quota.usage() is None
    quota.check(10**12, 10**6)
    quota.record(5, 1)
    assert not (root / "maildirsize").exists()


def test_recalculation_counts_folders_but_not_trash(root: Path) -> None:
    deliver_to(root, b"x" * 10)
    ensure_maildir(str(root / ".Sent"))
    deliver_to(root / ".Sent", b"y" * 20)
    plant(root / ".Sent", "cur", "no-size-field:2,S", b"z" * 7)
    for trash in (".Trash", ".Trash.Old"):
        ensure_maildir(str(root / trash))
        deliver_to(root / trash, b"t" * 1000)
    quota = Quota(str(root))
    usage = quota.set_limits(QuotaLimits(storage=1000, messages=10))
    assert usage == QuotaUsage(37, 3, QuotaLimits(1000, 10))
    assert (root / "maildirsize").read_text() == "1000S,10C\n37 3\n"
    quota.record(100, 1)
    quota.record(-10, -1)
    assert quota.usage() == QuotaUsage(127, 3, QuotaLimits(1000, 10))


def test_checks(root: Path) -> None:
    quota = Quota(str(root))
    quota.set_limits(QuotaLimits(storage=100, messages=2))
    quota.check(100, 1)
    with pytest.raises(OverQuota):
        quota.check(101, 1)
    quota.record(60, 1)
    quota.record(0, 1)
    with pytest.raises(OverQuota):
        quota.check(1, 1)  # the message count is full
    quota.check(0, 0)


def test_stale_file_is_recounted_before_refusing(root: Path) -> None:
    quota = Quota(str(root))
    quota.set_limits(QuotaLimits(storage=100))
    with open(root / "maildirsize", "a") as handle:
        handle.write("500 5\n")  # wrong: nothing is in the Maildir
    with pytest.raises(OverQuota):
        quota.check(1, 1)  # fresh file: believed
    old = time.time() - 16 * 60
    os.utime(root / "maildirsize", (old, old))
    quota.check(1, 1)  # older than 15 minutes: counted again first
    assert quota.usage() == QuotaUsage(0, 0, QuotaLimits(100, None))


def test_big_or_broken_file_is_recounted(root: Path) -> None:
    deliver_to(root, b"abc")
    quota = Quota(str(root))
    quota.set_limits(QuotaLimits(messages=50))
    grown = 0
    while (root / "maildirsize").stat().st_size >= grown:
        grown = (root / "maildirsize").stat().st_size
        quota.record(1, 0)  # wrong lines: nothing was delivered
    # The append that took it past 5,120 octets recounted the Maildir.
    assert grown > RECALC_SIZE - 10
    assert quota.usage() == QuotaUsage(3, 1, QuotaLimits(None, 50))
    with open(root / "maildirsize", "a") as handle:
        handle.write("what is this\n")
    assert quota.usage() == QuotaUsage(3, 1, QuotaLimits(None, 50))
