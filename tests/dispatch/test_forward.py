"""Forwarding in a delivery pass: aliases, lists, forwards with and without a copy,
SRS, loops, duplicates, extensions into folders, refused mailboxes.

Real queue, real directory, real Maildirs (tests/dispatch/conftest.py's site);
the copies a pass queues are loaded and delivered by further passes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mailyard.directory.model import Alias, DomainSettings
from mailyard.dispatch.forward import SrsSettings
from mailyard.dispatch.process import MessageProcessor
from mailyard.maildir.deliver import extension_folder
from mailyard.message import srs
from mailyard.message.address import parse_address
from mailyard.queue.store import Outcome, RecipientState
from tests.dispatch.conftest import (
    BIRTH,
    CONTENT,
    Site,
    delivered,
    delivery_status,
    mail_in,
    parse_mail,
)

SENDER = "sender@example.org"
NOW = BIRTH + 5.0
SECRET = b"k" * 32
SRS_DOMAIN = "mx.example.test"


def srs_on(enabled: bool = True) -> SrsSettings:
    return SrsSettings(enabled=enabled, domain=SRS_DOMAIN, max_age_days=21,
                       load_secret=lambda: SECRET)


def processor(site: Site, **changes: object) -> MessageProcessor:
    changes.setdefault("srs", srs_on())
    return site.processor(**changes)


def add_alias(site: Site, address: str, *targets: str, owner: str | None = None) -> None:
    site.directory.add_alias(Alias(parse_address(address), tuple(targets), owner))


def set_forwards(site: Site, address: str, forwards: tuple[str, ...], keep: bool) -> None:
    mailbox = site.directory.get_mailbox(parse_address(address))
    assert mailbox is not None
    site.directory.save_mailbox_settings(
        dataclasses.replace(mailbox, forwards=forwards, keep_copy=keep))


def copies(site: Site, ids: tuple[str, ...]) -> list[tuple[str, tuple[str, ...], bytes]]:
    """(sender, recipients, data) of each queued copy."""
    found = []
    for qid in ids:
        message = site.queue.load(qid)
        with site.queue.open_body(qid) as body:
            found.append((message.envelope.sender, message.envelope.recipients, body.read()))
    return found


def run_all(site: Site, proc: MessageProcessor, ids: tuple[str, ...]) -> None:
    """Deliver queued copies (and what they queue in turn) to the end."""
    pending = list(ids)
    while pending:
        verdict = proc.process(pending.pop(0), NOW)
        pending += verdict.injected


def test_alias_to_three_targets_queues_one_copy_per_sender(site: Site) -> None:
    add_alias(site, "team@example.test", "alice@example.test", "bob@example.test",
              "carol@example.net")
    qid = site.enqueue(["team@example.test"])
    proc = processor(site)
    verdict = proc.process(qid, NOW)
    assert verdict.finished
    found = copies(site, verdict.injected)
    # Local targets keep the sender; the remote one gets an SRS sender (SPF).
    assert len(found) == 2
    assert found[0][:2] == (SENDER, ("alice@example.test", "bob@example.test"))
    srs_sender, remote, data = found[1]
    assert remote == ("carol@example.net",)
    assert srs_sender.startswith("SRS0=") and srs_sender.endswith("@" + SRS_DOMAIN)
    assert srs.reverse(srs_sender, SECRET, NOW) == SENDER
    assert data == b"Delivered-To: team@example.test\r\n" + CONTENT
    run_all(site, proc, verdict.injected[:1])
    expected = delivered(SENDER, "alice@example.test",
                         b"Delivered-To: team@example.test\r\n" + CONTENT)
    assert mail_in(site.maildir("alice@example.test")) == [expected]
    assert len(mail_in(site.maildir("bob@example.test"))) == 1


def test_srs_off_keeps_the_sender_for_remote_targets(site: Site) -> None:
    add_alias(site, "team@example.test", "alice@example.test", "carol@example.net")
    verdict = processor(site, srs=srs_on(False)).process(site.enqueue(["team@example.test"]),
                                                          NOW)
    assert [(s, r) for s, r, _ in copies(site, verdict.injected)] == [
        (SENDER, ("alice@example.test", "carol@example.net"))]


def test_a_sender_of_our_own_domain_is_not_rewritten(site: Site) -> None:
    add_alias(site, "team@example.test", "carol@example.net")
    qid = site.enqueue(["team@example.test"], sender="bob@example.test")
    verdict = processor(site).process(qid, NOW)
    assert [s for s, _, _ in copies(site, verdict.injected)] == ["bob@example.test"]


def test_list_owner_becomes_the_envelope_sender(site: Site) -> None:
    add_alias(site, "list@example.test", "alice@example.test", "carol@example.net",
              owner="list-owner@example.test")
    verdict = processor(site).process(site.enqueue(["list@example.test"]), NOW)
    assert [(s, r) for s, r, _ in copies(site, verdict.injected)] == [
        ("list-owner@example.test", ("alice@example.test", "carol@example.net"))]


def test_null_sender_stays_null(site: Site) -> None:
    add_alias(site, "team@example.test", "alice@example.test", "carol@example.net")
    qid = site.enqueue(["team@example.test"], sender="")
    verdict = processor(site).process(qid, NOW)
    assert [(s, r) for s, r, _ in copies(site, verdict.injected)] == [
        ("", ("alice@example.test", "carol@example.net"))]


def test_delivered_to_loop_is_stopped(site: Site) -> None:
    add_alias(site, "team@example.test", "alice@example.test")
    content = b"Delivered-To: Team@example.test\r\n" + CONTENT
    verdict = processor(site).process(site.enqueue(["team@example.test"], content), NOW)
    (bounce_id,) = verdict.injected
    _, *groups = delivery_status(parse_mail(copies(site, (bounce_id,))[0][2]))
    assert [(g["final-recipient"], g["status"]) for g in groups] == [
        ("rfc822; team@example.test", "5.4.6")]
    assert mail_in(site.maildir("alice@example.test")) == []


def test_forward_loop_between_two_mailboxes_ends_in_a_bounce(site: Site) -> None:
    set_forwards(site, "alice@example.test", ("bob@example.test",), keep=False)
    set_forwards(site, "bob@example.test", ("alice@example.test",), keep=False)
    proc = processor(site)
    pending = [site.enqueue(["alice@example.test"])]
    bounces = []
    for _ in range(10):
        if not pending:
            break
        qid = pending.pop(0)
        kind = dict(site.queue.load(qid).envelope.extra).get("kind")
        if kind == "bounce":
            bounces.append(qid)
            continue
        pending += proc.process(qid, NOW).injected
    assert not pending and len(bounces) == 1


def test_mailbox_reached_directly_and_through_a_list_gets_one_copy(site: Site) -> None:
    add_alias(site, "team@example.test", "alice@example.test", "bob@example.test")
    add_alias(site, "all@example.test", "team@example.test", "bob@example.test")
    qid = site.enqueue(["alice@example.test", "team@example.test", "all@example.test"])
    proc = processor(site)
    verdict = proc.process(qid, NOW)
    assert verdict.finished
    assert [r for _, r, _ in copies(site, verdict.injected)] == [("bob@example.test",)]
    run_all(site, proc, verdict.injected)
    assert len(mail_in(site.maildir("alice@example.test"))) == 1
    assert len(mail_in(site.maildir("bob@example.test"))) == 1


def test_expansion_with_nothing_left_is_done(site: Site) -> None:
    add_alias(site, "team@example.test", "alice@example.test")
    verdict = processor(site).process(
        site.enqueue(["alice@example.test", "team@example.test"]), NOW)
    assert verdict.finished and verdict.injected == ()
    assert len(mail_in(site.maildir("alice@example.test"))) == 1


def test_forward_without_copy(site: Site) -> None:
    set_forwards(site, "alice@example.test", ("carol@example.net",), keep=False)
    verdict = processor(site).process(site.enqueue(["alice@example.test"]), NOW)
    assert verdict.finished
    assert [r for _, r, _ in copies(site, verdict.injected)] == [("carol@example.net",)]
    assert mail_in(site.maildir("alice@example.test")) == []


def test_forward_with_copy(site: Site) -> None:
    set_forwards(site, "alice@example.test", ("carol@example.net",), keep=True)
    verdict = processor(site).process(site.enqueue(["alice@example.test"]), NOW)
    assert verdict.finished
    assert [r for _, r, _ in copies(site, verdict.injected)] == [("carol@example.net",)]
    assert mail_in(site.maildir("alice@example.test")) == [
        delivered(SENDER, "alice@example.test")]


def test_a_retry_after_a_failed_copy_does_not_forward_again(site: Site) -> None:
    set_forwards(site, "alice@example.test", ("carol@example.net",), keep=True)
    new = site.maildir("alice@example.test") / "new"
    new.rmdir()
    new.write_bytes(b"not a directory")  # the kept copy fails temporarily
    qid = site.enqueue(["alice@example.test"])
    proc = processor(site)
    first = proc.process(qid, NOW)
    assert not first.finished and len(first.injected) == 1
    (status,) = site.queue.load(qid).statuses
    assert status.state is RecipientState.PENDING
    assert f"[forwarded as {first.injected[0]}]" in (status.last_error or "")
    new.unlink()
    new.mkdir()
    second = proc.process(qid, NOW + 600)
    assert second.finished and second.injected == ()
    assert len(mail_in(site.maildir("alice@example.test"))) == 1


def test_marker_recorded_before_a_crash_prevents_a_second_forward(site: Site) -> None:
    add_alias(site, "team@example.test", "carol@example.net")
    qid = site.enqueue(["team@example.test"])
    # What a crash right after the copies were queued leaves in the record.
    site.queue.record(qid, [(0, Outcome("T", "4.0.0 queued [forwarded as abc123]"))])
    verdict = processor(site).process(qid, NOW)
    assert verdict.finished and verdict.injected == ()


def test_srs_bounce_is_reversed_to_the_original_sender(site: Site) -> None:
    address = srs.forward("someone@example.org", SECRET, NOW, SRS_DOMAIN)
    qid = site.enqueue([address], sender="", extra=(("kind", "bounce"),))
    verdict = processor(site).process(qid, NOW + 3600)
    assert verdict.finished
    assert [(s, r) for s, r, _ in copies(site, verdict.injected)] == [
        ("", ("someone@example.org",))]


def test_forged_srs_address_is_refused(site: Site) -> None:
    forged = "SRS0=abcd=AA=example.org=victim@" + SRS_DOMAIN
    verdict = processor(site).process(site.enqueue([forged]), NOW)
    (bounce_id,) = verdict.injected
    _, *groups = delivery_status(parse_mail(copies(site, (bounce_id,))[0][2]))
    assert [g["status"] for g in groups] == ["5.1.1"]


def make_folder(box: Path, dirname: str) -> None:
    for sub in ("cur", "new", "tmp"):
        (box / dirname / sub).mkdir(parents=True, exist_ok=True)
    (box / dirname / "maildirfolder").write_bytes(b"")


@pytest.mark.parametrize(("address", "folder"), [
    ("alice+lists@example.test", ".Lists"),
    ("alice+LISTS@example.test", ".Lists"),
    ("alice+nothere@example.test", None),
    ("alice+trash@example.test", None),
    ("alice+.lists@example.test", None),
])
def test_extension_files_into_an_existing_folder(site: Site, address: str,
                                                 folder: str | None) -> None:
    box = site.maildir("alice@example.test")
    make_folder(box, ".Lists")
    make_folder(box, ".Trash")
    assert processor(site).process(site.enqueue([address]), NOW).finished
    target = box / folder if folder else box
    assert len(mail_in(target)) == 1
    others = [box, box / ".Lists", box / ".Trash"]
    assert sum(len(mail_in(b)) for b in others) == 1


@pytest.mark.parametrize("extension", ["..", "../x", ".Lists", "a/b", "Lists.", "", "x\x00"])
def test_extension_folder_refuses_unsafe_names(tmp_path: Path, extension: str) -> None:
    make_folder(tmp_path, ".Lists")
    assert extension_folder(str(tmp_path), extension) is None
    assert extension_folder(str(tmp_path), "lists") == str(tmp_path / ".Lists")


def test_extension_of_a_forward_with_copy_files_the_copy(site: Site) -> None:
    set_forwards(site, "alice@example.test", ("carol@example.net",), keep=True)
    box = site.maildir("alice@example.test")
    make_folder(box, ".lists")
    assert processor(site).process(site.enqueue(["alice+lists@example.test"]), NOW).finished
    assert len(mail_in(box / ".lists")) == 1 and mail_in(box) == []


def test_catch_all(site: Site) -> None:
    site.directory.set_domain_settings(
        "example.test", DomainSettings(catch_all=("bob@example.test",)))
    proc = processor(site)
    verdict = proc.process(site.enqueue(["whoever@example.test"]), NOW)
    run_all(site, proc, verdict.injected)
    (data,) = mail_in(site.maildir("bob@example.test"))
    assert b"Delivered-To: whoever@example.test\r\n" in data


@pytest.mark.parametrize("change", [{"receive": False}, {"expires": BIRTH - 1}])
def test_a_mailbox_that_does_not_accept_mail_bounces_5_2_1(site: Site,
                                                           change: dict[str, object]) -> None:
    mailbox = site.directory.get_mailbox(parse_address("alice@example.test"))
    assert mailbox is not None
    site.directory.save_mailbox_settings(dataclasses.replace(mailbox, **change))  # type: ignore[arg-type]
    verdict = processor(site).process(site.enqueue(["alice@example.test"]), NOW)
    (bounce_id,) = verdict.injected
    _, *groups = delivery_status(parse_mail(copies(site, (bounce_id,))[0][2]))
    assert [g["status"] for g in groups] == ["5.2.1"]
