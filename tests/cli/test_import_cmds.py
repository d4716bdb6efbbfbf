"""`mailyard import qmail | vmailmgr | courier` end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from passlib.hash import md5_crypt

from mailyard.importers.vmailmgr import VpwEntry
from mailyard.maildir.folders import INBOX
from mailyard.maildir.mailstore import Mailstore
from tests.cli.conftest import Cli
from tests.importers.fixtures import courier_folder, vmailmgr_home


def test_import_qmail_prints_plan_config_and_unmapped(tmp_path: Path, empty_cli: Cli) -> None:
    control = tmp_path / "control"
    control.mkdir()
    (control / "me").write_text("mx.old.test\n")
    (control / "virtualdomains").write_text("example.com:vmail\nx@y.test:joe\n")
    (control / "smtproutes").write_text(":smart.test:2525\n")
    (control / "databytes").write_text("2000000\n")
    dry = empty_cli.ok("import", "qmail", "--control", str(control), "--dry-run")
    assert "would create" in dry and "example.com" in dry
    assert '"" = "smart.test:2525"' in dry and "max_message_size = 2000000" in dry
    data = json.loads(empty_cli.ok("import", "qmail", "--control", str(control), "--json"))
    assert [c["item"] for c in data["created"]] == ["example.com"]
    assert data["unmapped"][0]["item"] == "virtualdomains: x@y.test:joe"
    assert 'hostname = "mx.old.test"' in data["config"]
    assert "example.com" in empty_cli.ok("domain", "list")


def test_import_vmailmgr_then_courier(tmp_path: Path, empty_cli: Cli) -> None:
    home = vmailmgr_home(tmp_path / "example.com", [
        VpwEntry("bob", md5_crypt.hash("pw"), "./users/bob", (), "Bob")])
    maildir = home / "users" / "bob"
    courier_folder(maildir, 4242, [("cur", "1100000001.a.host:2,S", 7)])
    dry = json.loads(empty_cli.ok("import", "vmailmgr", str(home), "--dry-run", "--json"))
    assert dry["dry_run"] and dry["domain"] == "example.com"
    out = empty_cli.ok("import", "vmailmgr", str(home), "--owner", "acme")
    assert "bob@example.com" in out and "acme" in out
    report = json.loads(empty_cli.ok("import", "courier", str(maildir), "--user",
                                     "bob@example.com", "--json"))
    assert report["created"][0]["detail"].startswith("UIDVALIDITY 4242")
    folder = Mailstore(str(empty_cli.mail / "example.com" / "bob")).folder(INBOX)
    folder.sync()
    assert (folder.uidvalidity, list(folder.uids)) == (4242, [7])


def test_import_courier_refuses_another_maildir(tmp_path: Path, cli: Cli) -> None:
    other = tmp_path / "other"
    courier_folder(other, 1, [])
    message = cli.fails("import", "courier", str(other), "--user", "ann@a.test")
    assert "is not the Maildir of ann@a.test" in message
    assert "no such mailbox" in cli.fails("import", "courier", str(other), "--user", "x@a.test")


def test_import_vmailmgr_needs_a_domain_name(tmp_path: Path, empty_cli: Cli) -> None:
    home = vmailmgr_home(tmp_path / "not a domain", [])
    assert "--domain" in empty_cli.fails("import", "vmailmgr", str(home))
