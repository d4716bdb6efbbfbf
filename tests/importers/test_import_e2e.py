"""Import a VMailMgr domain and its Courier UIDs, then read them over IMAP from a real server."""

from __future__ import annotations

import imaplib
import re
from pathlib import Path

from passlib.hash import md5_crypt

from mailyard.directory.store import Directory
from mailyard.importers.apply_courier import import_courier
from mailyard.importers.apply_vmailmgr import apply_vmailmgr, read_passwd_cdb
from mailyard.importers.courier import KeywordList
from mailyard.importers.vmailmgr import VpwEntry, plan_vmailmgr
from tests.e2e.server import PASSWORD, ServerProcess, write_config
from tests.importers.fixtures import courier_folder, vmailmgr_home


def test_imap_select_shows_courier_uidvalidity_uids_and_keywords(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_config(state, sections={"tls": "loopback_plaintext_auth = true"})
    home = vmailmgr_home(tmp_path / "vhome", [
        VpwEntry("dave", md5_crypt.hash(PASSWORD), "./users/dave", (), "Dave")])
    box = home / "users" / "dave"
    courier_folder(box, 555000111, [
        ("cur", "1100000001.a.host:2,S", 3),
        ("cur", "1100000002.b.host:2,", 8),
    ], KeywordList(("$Label2",), {"1100000002.b.host": ("$Label2",)}), nextuid=12)
    directory = Directory.open(str(state / "directory.sqlite"))
    try:
        entries, _ = read_passwd_cdb(str(home))
        plan = plan_vmailmgr(entries, "example.test", str(home))
        result = apply_vmailmgr(directory, str(state / "mail"), plan, home=str(home))
        assert result.unmapped == ()
    finally:
        directory.close()
    assert import_courier(str(state / "mail" / "example.test" / "dave")).unmapped == ()

    server = ServerProcess(state).start()
    try:
        client = imaplib.IMAP4(*server.address("imap"), timeout=30)
        client.login("dave@example.test", PASSWORD)  # an MD5-crypt hash from VMailMgr
        typ, _ = client.select("INBOX")
        assert typ == "OK"
        assert client.untagged_responses["UIDVALIDITY"] == [b"555000111"]
        typ, data = client.uid("FETCH", "1:*", "(FLAGS)")
        assert typ == "OK"
        fetched = {int(m.group(1)): m.group(2) for item in data if isinstance(item, bytes)
                   for m in [re.search(rb"UID (\d+) FLAGS \(([^)]*)\)", item)] if m}
        assert sorted(fetched) == [3, 8]
        assert b"\\Seen" in fetched[3] and b"$Label2" in fetched[8]
        client.logout()
    finally:
        assert server.stop() == 0, server.log_tail()
