"""Quota at delivery: limits from the directory, grace then bounce, domain totals,
the size limit, the 90% warning, and maildirsize kept exact under concurrent
deliveries in several processes."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mailyard.directory.model import DomainSettings
from mailyard.dispatch.process import MessageProcessor
from mailyard.maildir.deliver import ensure_maildir
from mailyard.maildir.quota import FILE_NAME, Quota, QuotaLimits, count_maildir
from mailyard.message.address import parse_address
from mailyard.queue.store import RecipientState
from tests.dispatch.conftest import BIRTH, CONTENT, Site, delivery_status, mail_in, parse_mail

NOW = BIRTH + 5.0
HOUR = 3600.0
ALICE = "alice@example.test"


def set_mailbox(site: Site, address: str, **changes: object) -> None:
    mailbox = site.directory.get_mailbox(parse_address(address))
    assert mailbox is not None
    site.directory.save_mailbox_settings(dataclasses.replace(mailbox, **changes))  # type: ignore[arg-type]


def processor(site: Site, **changes: object) -> MessageProcessor:
    changes.setdefault("quota_grace", 2 * HOUR)
    return site.processor(**changes)


def definition(site: Site, address: str) -> str:
    return (site.maildir(address) / FILE_NAME).read_text().splitlines()[0]


def statuses(site: Site, qid: str) -> list[tuple[RecipientState, str | None]]:
    return [(s.state, s.last_error) for s in site.queue.load(qid).statuses]


def bounce_statuses(site: Site, bounce_id: str) -> list[str]:
    with site.queue.open_body(bounce_id) as body:
        _, *groups = delivery_status(parse_mail(body.read()))
    return [g["status"] for g in groups]


def test_mailbox_limits_become_the_maildirsize_definition(site: Site) -> None:
    site.directory.set_domain_settings("example.test", DomainSettings(quota_bytes=50000))
    set_mailbox(site, ALICE, quota_messages=20)
    set_mailbox(site, "bob@example.test", quota_bytes=0)  # explicitly unlimited
    proc = processor(site)
    assert proc.process(site.enqueue([ALICE, "bob@example.test"]), NOW).finished
    assert definition(site, ALICE) == "50000S,20C"
    assert not (site.maildir("bob@example.test") / FILE_NAME).exists()
    usage = Quota(str(site.maildir(ALICE))).usage()
    assert usage is not None and usage.messages == 1
    assert usage.storage == count_maildir(str(site.maildir(ALICE)))[0]
    # The administrator lowers the quota: the next delivery rewrites the definition.
    set_mailbox(site, ALICE, quota_messages=10)
    assert proc.process(site.enqueue([ALICE]), NOW).finished
    assert definition(site, ALICE) == "50000S,10C"


def test_over_quota_is_deferred_within_grace_then_bounced(site: Site) -> None:
    set_mailbox(site, ALICE, quota_messages=1)
    proc = processor(site)
    assert proc.process(site.enqueue([ALICE]), NOW).finished
    qid = site.enqueue([ALICE])
    verdict = proc.process(qid, NOW)
    assert not verdict.finished and verdict.next_attempt is not None
    ((state, error),) = statuses(site, qid)
    assert state is RecipientState.PENDING and error is not None
    assert error.startswith("4.2.2") and "full" in error
    # After the grace period (counted from the message's birth): a bounce.
    late = proc.process(qid, BIRTH + 2 * HOUR + 1)
    assert late.finished
    (bounce_id,) = late.injected
    assert bounce_statuses(site, bounce_id) == ["5.2.2"]
    box = site.maildir(ALICE)
    assert len(mail_in(box)) - len(warnings_in(box)) == 1


def test_grace_of_zero_bounces_at_once(site: Site) -> None:
    set_mailbox(site, ALICE, quota_bytes=10)
    verdict = processor(site, quota_grace=0.0).process(site.enqueue([ALICE]), NOW)
    assert verdict.finished
    assert bounce_statuses(site, verdict.injected[0]) == ["5.2.2"]


def test_domain_total_is_enforced(site: Site) -> None:
    site.directory.set_domain_settings("example.test", DomainSettings(
        total_quota_bytes=len(CONTENT) * 3))
    proc = processor(site)
    assert proc.process(site.enqueue([ALICE, "bob@example.test"]), NOW).finished
    qid = site.enqueue([ALICE])
    assert not proc.process(qid, NOW).finished
    ((_, error),) = statuses(site, qid)
    assert error is not None and error.startswith("4.2.2") and "domain" in error


def test_message_size_limit_bounces_5_2_3(site: Site) -> None:
    site.directory.set_domain_settings("example.test", DomainSettings(max_message_size=10))
    set_mailbox(site, "bob@example.test", max_message_size=0)
    verdict = processor(site).process(site.enqueue([ALICE, "bob@example.test"]), NOW)
    assert verdict.finished
    assert bounce_statuses(site, verdict.injected[0]) == ["5.2.3"]
    assert mail_in(site.maildir(ALICE)) == []
    assert len(mail_in(site.maildir("bob@example.test"))) == 1


def warnings_in(box: Path) -> list[bytes]:
    return [m for m in mail_in(box) if b"Subject: Your mailbox is nearly full" in m]


def test_ninety_percent_warning_once_a_day(site: Site) -> None:
    set_mailbox(site, ALICE, quota_messages=10)
    proc = processor(site)
    box = site.maildir(ALICE)
    for _ in range(8):
        assert proc.process(site.enqueue([ALICE]), NOW).finished
    assert warnings_in(box) == []
    # The 9th message reaches 90%: one warning, from MAILER-DAEMON, auto-generated.
    assert proc.process(site.enqueue([ALICE]), NOW).finished
    (warning,) = warnings_in(box)
    message = parse_mail(warning)
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["From"].addresses[0].username == "MAILER-DAEMON"
    assert (box / "quotawarn").stat().st_mtime == NOW
    # More mail the same day: no second warning (the queue defers the rest).
    proc.process(site.enqueue([ALICE]), NOW + HOUR)
    assert len(warnings_in(box)) == 1
    # A day later, after the user made room: warned again.
    # (The warning counts too: 9 messages and it fill the ten.)
    os.unlink(box / "new" / sorted(os.listdir(box / "new"))[0])
    Quota(str(box)).recalculate()
    assert proc.process(site.enqueue([ALICE]), NOW + 25 * HOUR).finished
    assert len(warnings_in(box)) == 2


def test_no_warning_when_turned_off(site: Site) -> None:
    set_mailbox(site, ALICE, quota_messages=2)
    proc = processor(site, quota_warn_percent=0)
    for _ in range(2):
        assert proc.process(site.enqueue([ALICE]), NOW).finished
    assert warnings_in(site.maildir(ALICE)) == []


_WORKER = textwrap.dedent("""
    import io, sys
    from mailyard.maildir.deliver_quota import deliver_counted
    from mailyard.maildir.quota import Quota
    root, count, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    for i in range(count):
        if mode == "recount":
            Quota(root).recalculate()
            continue
        data = b"x" * (100 + i % 50)
        deliver_counted(root, root, b"", io.BytesIO(data), len(data), hostname="h.test")
""")


@pytest.mark.parametrize("recounting", [False, True])
def test_maildirsize_stays_exact_under_concurrent_delivery(tmp_path: Path,
                                                           recounting: bool) -> None:
    root = tmp_path / "box"
    ensure_maildir(str(root))
    Quota(str(root)).set_limits(QuotaLimits(10**9, 10**6))
    jobs = [[sys.executable, "-c", _WORKER, str(root), "150", "deliver"] for _ in range(4)]
    if recounting:
        jobs.append([sys.executable, "-c", _WORKER, str(root), "40", "recount"])
    procs = [subprocess.Popen(job) for job in jobs]
    assert [p.wait(120) for p in procs] == [0] * len(procs)
    usage = Quota(str(root)).usage()  # from the file's lines, no recount
    assert usage is not None
    assert (usage.storage, usage.messages) == count_maildir(str(root))
    assert usage.messages == 600
