"""Security checks: password brute force is throttled (the allowed rate is
printed), the MX port is no open relay for the classic tricks, and no user,
login or folder name reaches outside its place in the state folder."""

from __future__ import annotations

import base64
import imaplib
import os
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.drills.common import SCALE
from tests.e2e.server import PASSWORD, ServerProcess, maildir
from tests.e2e.test_limits_e2e import Client, write_state

WRONG = "Wrong-Horse-4417"
MAX_FAILURES, WINDOW, DELAY, ACCOUNT_FAILURES = 5, 300.0, 0.2, 10


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    state = write_state(
        tmp_path_factory.mktemp("security") / "state",
        smtp={"listen": ["127.0.0.1:0"], "relay_networks": []},
        submission={"listen": ["127.0.0.1:0"]},
        tls={"loopback_plaintext_auth": True},
        login={"default_domain": "example.test", "max_failures": MAX_FAILURES,
               "failure_window": WINDOW, "failure_delay": DELAY,
               "max_account_failures": ACCOUNT_FAILURES})
    from mailyard.config import load_config
    from mailyard.server.tls import ensure_self_signed

    ensure_self_signed(load_config(str(state)))  # submission listens only with a certificate
    proc = ServerProcess(state).start()
    yield proc
    assert proc.stop() == 0, proc.log_tail()


# -- brute force ------------------------------------------------------------------------


def pop3_try(server: ServerProcess, source: str, user: str, password: str) -> bytes:
    client = Client(server.address("pop3"), source)
    client.line()
    client.send(f"USER {user}\r\nPASS {password}\r\nQUIT\r\n".encode())
    client.line()
    answer = client.line()
    client.close()
    return answer


def imap_try(server: ServerProcess, source: str, user: str, password: str) -> bytes:
    client = Client(server.address("imap"), source)
    client.line()
    quoted = user.replace("\\", "\\\\").replace('"', '\\"')
    client.send(f'a LOGIN "{quoted}" "{password}"\r\nb LOGOUT\r\n'.encode())
    while not (line := client.line()).startswith(b"a ") and line:
        pass
    client.close()
    return line


def smtp_auth_try(server: ServerProcess, source: str, user: str, password: str) -> bytes:
    client = Client(server.address("submission"), source)
    client.line()
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    client.send(f"EHLO brute.example\r\nAUTH PLAIN {token}\r\nQUIT\r\n".encode())
    client.reply()
    answer = client.reply()
    client.close()
    return answer


TRIES = {"pop3": (pop3_try, b"-ERR [AUTH]"), "imap": (imap_try, b"a NO [AUTHENTICATIONFAILED]"),
         "smtp-auth": (smtp_auth_try, b"535")}


@pytest.mark.parametrize("protocol", list(TRIES))
def test_brute_force_is_throttled(server: ServerProcess, protocol: str) -> None:
    attempt, checked_prefix = TRIES[protocol]
    source = {"pop3": "127.0.0.51", "imap": "127.0.0.52", "smtp-auth": "127.0.0.53"}[protocol]
    user = {"pop3": "alice@example.test", "imap": "bob@example.test",
            "smtp-auth": "carol@example.net"}[protocol]
    started = time.monotonic()
    answers = [attempt(server, source, user, WRONG) for _ in range(SCALE.brute_attempts)]
    seconds = time.monotonic() - started
    checked = sum(a.startswith(checked_prefix) for a in answers)
    right_refused = not attempt(server, source, user, PASSWORD).startswith(
        {"pop3": b"+OK", "imap": b"a OK", "smtp-auth": b"235"}[protocol])
    print(f"\nbrute force over {protocol}: {len(answers)} wrong passwords in {seconds:.1f}s, "
          f"{checked} checked, {len(answers) - checked} refused unchecked; allowed: "
          f"{MAX_FAILURES} per {WINDOW:.0f}s per address = {MAX_FAILURES * 60 / WINDOW:.1f} "
          f"attempts/min (and {ACCOUNT_FAILURES * 60 / WINDOW:.1f}/min per account from "
          f"anywhere); the right password while throttled refused: {right_refused}; "
          f"sample throttled answer {answers[-1].strip()!r}")
    assert checked == MAX_FAILURES, answers
    assert right_refused


def test_account_throttle_across_addresses(server: ServerProcess) -> None:
    """A distributed attack on one login: after max_account_failures from
    many addresses, even the right password from a fresh address waits."""
    answers = [pop3_try(server, f"127.0.1.{n}", "pm@example.test", WRONG)
               for n in range(1, ACCOUNT_FAILURES + 3)]
    checked = sum(a.startswith(b"-ERR [AUTH]") for a in answers)
    fresh = pop3_try(server, "127.0.1.200", "pm@example.test", PASSWORD)
    print(f"\nbrute force on one account from {len(answers)} addresses: {checked} checked; the "
          f"right password from a fresh address then: {fresh.strip()!r}")
    assert checked == ACCOUNT_FAILURES
    assert not fresh.startswith(b"+OK")


# -- open relay ---------------------------------------------------------------------------

RELAY_TRICKS = [
    ("plain foreign domain", "<victim@evil.example>"),
    ("percent hack", "<victim%evil.example@example.test>"),
    ("percent hack, our host", "<victim%evil.example@mx.example.test>"),
    ("source route", "<@example.test:victim@evil.example>"),
    ("source route, two hops", "<@example.test,@mx.example.test:victim@evil.example>"),
    ("quoted local part with @", '<"victim@evil.example"@example.test>'),
    ("quoted local part with %", '<"victim%evil.example"@example.test>'),
    ("user@domain@other", "<victim@evil.example@example.test>"),
    ("bang path", "<evil.example!victim@example.test>"),
    ("IP literal", "<victim@[192.0.2.1]>"),
    ("IP literal of loopback", "<victim@[127.0.0.1]>"),
    ("IPv6 literal", "<victim@[IPv6:2001:db8::1]>"),
    ("trailing dot", "<victim@evil.example.>"),
    ("foreign domain in upper case", "<VICTIM@EVIL.EXAMPLE>"),
    ("empty RCPT", "<>"),
    ("no angle brackets", "victim@evil.example"),
]


def test_mx_port_is_not_an_open_relay(server: ServerProcess) -> None:
    rows = []
    with smtplib.SMTP(*server.address("smtp"), timeout=30,
                      source_address=("127.0.0.60", 0)) as smtp:
        smtp.ehlo("relay-test.example")
        for name, rcpt in RELAY_TRICKS:
            smtp.rset()
            assert smtp.mail("spammer@evil.example")[0] == 250
            code, text = smtp.docmd("RCPT TO:" + rcpt)
            rows.append((name, rcpt, code, text.decode(errors="replace")))
        # Not even a DATA gets through after refused recipients.
        code, _ = smtp.docmd("DATA")
    width = max(len(r[0]) for r in rows)
    print("\nopen relay tricks at RCPT on the MX port (relay_networks = []):")
    for name, rcpt, reply_code, text in rows:
        print(f"  {name:<{width}}  {rcpt:<52} {reply_code} {text}")
    assert all(reply_code >= 500 for _, _, reply_code, _ in rows), rows
    assert code >= 500
    assert not [p for p in (server.state / "queue" / "mess").iterdir()]


# -- path traversal -----------------------------------------------------------------------

LOGIN_NAMES = ["../x", "../../etc/passwd", "alice@../example.test", "../alice@example.test",
               "alice@example.test/../bob", "alice/../bob@example.test", "/etc/passwd",
               "alice%../../x", "alice:../example.test", "..%example.test",
               ".@example.test", "alice@.", "alice@example.test\\..\\bob"]
FOLDERS = ["../../etc", "/abs", ".hidden", "a/../b", "..", "../bob", "INBOX/../../x",
           "a/./b", "~root", "a\\..\\b", "a/b/../../../c", ".", "x/..", "&AC4-&AC4-/x"]


def snapshot_tree(root: Path) -> set[str]:
    return {os.path.relpath(os.path.join(d, n), root) for d, dirs, names in os.walk(root)
            for n in dirs + names}


def test_no_path_traversal_through_names(server: ServerProcess) -> None:
    state = server.state
    outside_before = snapshot_tree(state.parent)
    logins = []
    for n, name in enumerate(LOGIN_NAMES, 1):
        # One client address per name: the throttle must not hide the answer.
        pop = pop3_try(server, f"127.0.2.{n}", name, PASSWORD)
        imap = imap_try(server, f"127.0.3.{n}", name, PASSWORD)
        logins.append((name, pop.strip(), imap.strip()))
    imap = imaplib.IMAP4(*server.address("imap"), timeout=30)
    imap.login("alice@example.test", PASSWORD)
    folders = []
    for folder in FOLDERS:
        quoted = '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
        try:
            typ, data = imap.create(quoted)
            answer = data[0]
        except imaplib.IMAP4.error as exc:  # BAD: refused before it was a name
            typ, answer = "BAD", str(exc).encode()
        try:
            selected = imap.select(quoted)[0]
        except imaplib.IMAP4.error:
            selected = "BAD"
        folders.append((folder, typ, answer, selected))
    imap.logout()
    print("\npath traversal: login names (POP3 answer | IMAP answer)")
    for name, pop_answer, imap_answer in logins:
        print(f"  {name!r:<34} {pop_answer!r} | {imap_answer!r}")
    print("path traversal: IMAP folder names (CREATE, SELECT)")
    for folder, typ, text, selected in folders:
        print(f"  {folder!r:<22} CREATE {typ} {text!r}; SELECT {selected}")
    # The traversal names may only have made folders inside alice's Maildir.
    outside_after = snapshot_tree(state.parent)
    box = os.path.relpath(maildir(state, "alice@example.test"), state.parent)
    escaped = sorted(p for p in outside_after - outside_before
                     if not p.startswith(box + os.sep) and not p.startswith(
                         os.path.join("state", "queue")) and not p.startswith(
                         os.path.join("state", "run")) and p != os.path.join("state", "server.log"))
    assert escaped == [], escaped
    for name, pop_answer, imap_answer in logins:
        assert not pop_answer.startswith(b"+OK") and not imap_answer.startswith(b"a OK"), name
    for folder, _, _, _ in folders:
        for part in Path(maildir(state, "alice@example.test")).iterdir():
            assert ".." not in part.name.split("."), (folder, part.name)
