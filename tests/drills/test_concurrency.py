"""Concurrency on one mailbox (DESIGN §4): local delivery, an IMAP client
that expunges, one that flags, and a POP3 client that retrieves and deletes,
all at once. Afterwards every delivered message is either still there or
was removed by a client that said so; nothing is there twice; UIDs ascend
strictly and none is reused (uid list, IMAP and POP3 UIDL); the saved index
agrees with a rebuild from the Maildir and its uid list.
"""

from __future__ import annotations

import imaplib
import itertools
import poplib
import random
import re
import shutil
import smtplib
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mailyard.maildir.folder import Folder
from tests.drills.common import SCALE, files, queue_empty, wait_until
from tests.e2e.server import PASSWORD, ServerProcess, maildir, provision, write_config

USER = "bob@example.test"
SUBJECT = re.compile(rb"Subject: conc (\d+)")
UID = re.compile(rb"UID (\d+)")


class Worker(threading.Thread):
    """Runs ``step`` until told to stop; counts rounds and keeps the errors."""

    def __init__(self, name: str, step: Callable[[], None], stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.step, self.stop_event = step, stop
        self.rounds = 0
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.step()
                self.rounds += 1
            except (OSError, imaplib.IMAP4.error, poplib.error_proto, smtplib.SMTPException,
                    AssertionError) as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.05)


class Books:
    """What the clients saw and did, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked: set[int] = set()
        self.removed: set[int] = set()
        self.removed_by: dict[int, str] = {}  # number -> "imap" / "pop3"
        self.uid_of: dict[int, set[int]] = {}  # uid -> numbers seen under it
        self.uidl_of: dict[bytes, set[int]] = {}
        self.unordered: list[list[int]] = []

    def saw_uid(self, uid: int, number: int) -> None:
        with self.lock:
            self.uid_of.setdefault(uid, set()).add(number)


def fetch_numbers(imap: imaplib.IMAP4, uids: str) -> dict[int, int]:
    """uid -> message number for a UID set (what FETCH returned)."""
    typ, data = imap.uid("FETCH", uids, "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK", data
    found = {}
    for item in data:
        if isinstance(item, tuple):
            uid, subject = UID.search(item[0]), SUBJECT.search(item[1])
            if uid and subject:
                found[int(uid[1])] = int(subject[1])
    return found


def search_uids(imap: imaplib.IMAP4, books: Books) -> list[int]:
    typ, data = imap.uid("SEARCH", "ALL")
    assert typ == "OK", data
    uids = [int(x) for x in (data[0] or b"").split()]
    if uids != sorted(set(uids)):
        with books.lock:
            books.unordered.append(uids)
    return uids


def imap_session(server: ServerProcess) -> imaplib.IMAP4:
    imap = imaplib.IMAP4(*server.address("imap"), timeout=30)
    imap.login(USER, PASSWORD)
    imap.select("INBOX")
    return imap


def expunger(server: ServerProcess, books: Books, rng: random.Random) -> Callable[[], None]:
    imap = imap_session(server)

    def step() -> None:
        uids = search_uids(imap, books)
        if not uids:
            imap.noop()
            return
        uid = rng.choice(uids)
        numbers = fetch_numbers(imap, str(uid))
        if uid not in numbers:
            return  # gone meanwhile (POP3 took it)
        books.saw_uid(uid, numbers[uid])
        imap.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
        typ, data = imap.uid("EXPUNGE", str(uid))
        assert typ == "OK", data
        typ, data = imap.uid("SEARCH", "UID", str(uid))
        if typ == "OK" and not (data[0] or b"").split():
            with books.lock:
                books.removed.add(numbers[uid])
                books.removed_by[numbers[uid]] = f"imap uid {uid}"

    return step


def flagger(server: ServerProcess, books: Books, rng: random.Random) -> Callable[[], None]:
    imap = imap_session(server)

    def step() -> None:
        uids = search_uids(imap, books)
        if not uids:
            imap.noop()
            return
        chosen = sorted(set(rng.sample(uids, min(5, len(uids)))))
        for uid, number in fetch_numbers(imap, ",".join(map(str, chosen))).items():
            books.saw_uid(uid, number)
        how = rng.choice(["+FLAGS.SILENT", "-FLAGS.SILENT"])
        imap.uid("STORE", ",".join(map(str, chosen)), how, "(\\Flagged \\Seen)")

    return step


def popper(server: ServerProcess, books: Books, rng: random.Random) -> Callable[[], None]:
    def step() -> None:
        pop = poplib.POP3(*server.address("pop3"), timeout=30)
        pop.user(USER)
        pop.pass_(PASSWORD)
        _, listing, _ = pop.uidl()
        entries = [line.split() for line in listing]
        taken: list[int] = []
        for msg, uidl in rng.sample(entries, min(2, len(entries))):
            try:
                _, lines, _ = pop.retr(int(msg))
            except poplib.error_proto:
                continue  # expunged by IMAP meanwhile: RFC 1939 allows -ERR
            found = SUBJECT.search(b"\r\n".join(lines))
            assert found, lines[:5]
            number = int(found[1])
            with books.lock:
                books.uidl_of.setdefault(uidl, set()).add(number)
            pop.dele(int(msg))
            taken.append(number)
        answer = pop.quit()
        if answer.startswith(b"+OK"):
            with books.lock:
                books.removed.update(taken)
                books.removed_by.update((n, f"pop3 ({answer!r})") for n in taken)

    return step


def deliverer(server: ServerProcess, books: Books) -> Callable[[], None]:
    counter = iter(range(10**9))

    def step() -> None:
        with smtplib.SMTP(*server.address("smtp"), timeout=30) as smtp:
            for _ in range(10):
                n = next(counter)
                smtp.sendmail("s@example.org", [USER],
                              f"Subject: conc {n}\r\n\r\nbody {n}\r\n".encode())
                with books.lock:
                    books.acked.add(n)

    return step


def present(box: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for sub in ("new", "cur"):
        for path in files(box / sub):
            found = SUBJECT.search(path.read_bytes())
            assert found, f"not a drill message: {path}"
            counts[int(found[1])] = counts.get(int(found[1]), 0) + 1
    return counts


def snapshot(path: Path) -> list[tuple[int, str, tuple[str, ...], int]]:
    """(uid, base name, flags, size) of every message, as the store sees it."""
    folder = Folder.open(str(path))
    try:
        folder.sync()
        return [(s.uid, Path(s.path).name.split(":")[0], tuple(sorted(s.flags)), s.size)
                for s in folder.sources(folder.uids)]
    finally:
        folder.close()


def journal_uids(box: Path) -> list[int]:
    """The uids of the ``A`` lines of the uid list, in file order."""
    lines = (box / "mailyard-uidlist").read_bytes().split(b"\n")[1:]
    return [int(line.split()[1]) for line in lines if line.startswith(b"A ")]


def test_concurrent_clients_on_one_mailbox(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_config(state, sections={"tls": "loopback_plaintext_auth = true"})
    provision(state)
    server = ServerProcess(state).start()
    books, stop = Books(), threading.Event()
    rng = random.Random(11)
    try:
        deliver = deliverer(server, books)
        deliver()  # something to work on from the start
        workers = [Worker("deliver", deliver, stop),
                   Worker("expunge", expunger(server, books, random.Random(rng.random())), stop),
                   Worker("flag", flagger(server, books, random.Random(rng.random())), stop),
                   Worker("pop3", popper(server, books, random.Random(rng.random())), stop)]
        for worker in workers:
            worker.start()
        stop.wait(SCALE.concurrency_seconds)
        stop.set()
        for worker in workers:
            worker.join(60)
        wait_until("the queue to drain", lambda: queue_empty(state))
    finally:
        assert server.stop() == 0, server.log_tail()
    box = maildir(state, USER)
    _check(box, books, workers, tmp_path)


def _check(box: Path, books: Books, workers: list[Worker], tmp_path: Path) -> None:
    counts = present(box)
    lost = sorted(books.acked - set(counts) - books.removed)
    duplicated = sorted(n for n, c in counts.items() if c > 1)
    resurrected = sorted(set(counts) & books.removed)
    reused = {uid: nums for uid, nums in books.uid_of.items() if len(nums) > 1}
    uidl_reused = {u: nums for u, nums in books.uidl_of.items() if len(nums) > 1}
    journal = journal_uids(box)
    ascending = all(a < b for a, b in itertools.pairwise(journal))
    with_index = snapshot(box)
    rebuilt_box = tmp_path / "rebuilt"
    shutil.copytree(box, rebuilt_box)
    for cache in ("mailyard-index", "mailyard-cache"):
        (rebuilt_box / cache).unlink(missing_ok=True)
    rebuilt = snapshot(rebuilt_box)
    on_disk = sorted(p.name.split(":")[0] for sub in ("new", "cur") for p in files(box / sub))
    rounds = " ".join(f"{w.name}={w.rounds}/{len(w.errors)}err" for w in workers)
    print(f"\nconcurrency drill ({SCALE.concurrency_seconds:.0f}s): delivered={len(books.acked)} "
          f"removed={len(books.removed)} present={len(counts)} lost={len(lost)} "
          f"duplicated={len(duplicated)} resurrected={len(resurrected)} uids_reused={len(reused)} "
          f"uidl_reused={len(uidl_reused)} journal_ascending={ascending} "
          f"index_matches_rebuild={with_index == rebuilt} rounds(ok/errors): {rounds}")
    for number in resurrected:
        print(f"  still present although removed by {books.removed_by[number]}: {number}")
    for worker in workers:
        for error in worker.errors[:3]:
            print(f"  {worker.name} error: {error}")
    assert lost == [], lost[:20]
    assert duplicated == [] and resurrected == [], (duplicated[:20], resurrected[:20])
    assert reused == {} and uidl_reused == {} and books.unordered == []
    assert ascending
    assert with_index == rebuilt
    assert sorted(base for _, base, _, _ in with_index) == on_disk
    assert all(w.rounds > 0 for w in workers), rounds
