"""Vacation replies after delivery (dispatch/vacation.py), through MessageProcessor."""

from __future__ import annotations

import shutil

from mailyard.directory.model import Alias, Vacation
from mailyard.message.address import parse_address
from tests.dispatch.conftest import BIRTH, CONTENT, Site, mail_in, parse_mail

NOW = BIRTH + 5.0
DAY = 86400.0
ALICE = "alice@example.test"


def set_vacation(site: Site, **changes: object) -> None:
    values: dict[str, object] = {"address": parse_address(ALICE), "subject": "Away",
                                 "body": "Back on Monday.\n", "interval_days": 7}
    values.update(changes)
    site.directory.set_vacation(Vacation(**values))  # type: ignore[arg-type]


def replies(site: Site, ids: tuple[str, ...]) -> list[tuple[str, tuple[str, ...], bytes]]:
    found = []
    for qid in ids:
        message = site.queue.load(qid)
        if dict(message.envelope.extra).get("kind") != "auto-reply":
            continue
        with site.queue.open_body(qid) as body:
            found.append((message.envelope.sender, message.envelope.recipients, body.read()))
    return found


def send(site: Site, content: bytes = CONTENT, sender: str = "sender@example.org",
         now: float = NOW, to: str = ALICE) -> list[tuple[str, tuple[str, ...], bytes]]:
    verdict = site.processor().process(site.enqueue([to], content, sender=sender), now)
    assert verdict.finished
    return replies(site, verdict.injected)


def test_reply_once_per_sender_per_interval(site: Site) -> None:
    set_vacation(site)
    ((sender, recipients, data),) = send(site)
    assert sender == "" and recipients == ("sender@example.org",)  # RFC 3834 §3.3
    reply = parse_mail(data)
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["In-Reply-To"] == "<t1@example.org>"
    assert reply["Subject"] == "Away"
    assert send(site, now=NOW + DAY) == []  # same sender within 7 days
    assert len(send(site, sender="other@example.org", now=NOW + DAY)) == 1
    assert len(send(site, now=NOW + 8 * DAY)) == 1  # the interval is over
    assert len(mail_in(site.maildir(ALICE))) == 4  # every message was delivered


def test_no_reply_to_lists_bulk_null_or_when_not_addressed(site: Site) -> None:
    set_vacation(site)
    assert send(site, b"List-Id: <l.example.org>\r\n" + CONTENT) == []
    assert send(site, b"Precedence: bulk\r\n" + CONTENT) == []
    assert send(site, b"Auto-Submitted: auto-generated\r\n" + CONTENT) == []
    assert send(site, sender="") == []
    assert send(site, sender="MAILER-DAEMON@example.org") == []
    assert send(site, CONTENT.replace(b"To: alice@example.test", b"To: x@example.org")) == []
    assert len(mail_in(site.maildir(ALICE))) == 6


def test_an_alias_of_the_user_counts_as_addressed_but_a_list_does_not(site: Site) -> None:
    set_vacation(site)
    site.directory.add_alias(Alias(parse_address("al@example.test"), (ALICE,)))
    site.directory.add_alias(Alias(parse_address("list@example.test"), (ALICE,),
                                   owner="owner@example.test"))
    to_alias = CONTENT.replace(b"To: alice@example.test", b"To: al@example.test")
    to_list = CONTENT.replace(b"To: alice@example.test", b"To: list@example.test")
    assert len(send(site, to_alias, sender="a@example.org")) == 1
    assert send(site, to_list, sender="b@example.org") == []


def test_inactive_vacation_sends_nothing(site: Site) -> None:
    set_vacation(site, end=NOW - 1)
    assert send(site) == []
    set_vacation(site, start=NOW + DAY)
    assert send(site) == []
    set_vacation(site, enabled=False)
    assert send(site) == []


def test_a_vacation_failure_never_fails_the_delivery(site: Site) -> None:
    set_vacation(site)
    qid = site.enqueue([ALICE])
    tmp = site.root / "queue" / "tmp"
    shutil.rmtree(tmp)
    tmp.write_bytes(b"")  # the reply cannot be queued
    try:
        verdict = site.processor().process(qid, NOW)
    finally:
        tmp.unlink()
        tmp.mkdir()
    assert verdict.finished and verdict.injected == ()
    assert len(mail_in(site.maildir(ALICE))) == 1
