"""The supervisor end to end: workers, restarts, watchdog, privileges, reload, ctl.

Real server processes on loopback. Which worker holds a connection is read
from /proc (the server side of the TCP connection is a socket inode that
exactly one worker has open), so the tests know whose sessions a kill must
end and whose it must leave alone.
"""

from __future__ import annotations

import imaplib
import json
import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from mailyard.cli.control_client import control
from tests.e2e.server import (
    HOSTNAME,
    PASSWORD,
    ServerProcess,
    imap_state,
    tls_client_context,
)

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="dropping privileges needs root (CI runs as root)")
REPO = Path(__file__).resolve().parents[2]


def state_with(path: Path, server: str, *, tls: bool = False) -> Path:
    """An IMAP test state folder with a [server] section."""
    state = imap_state(path, tls=tls)
    config = state / "mailyard.toml"
    config.write_text(config.read_text() + f"[server]\n{server}\n")
    return state


def status(server: ServerProcess) -> dict[str, Any]:
    return control(str(server.state / "run" / "control.sock"), "status")


def wait_until(what: str, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def workers(server: ServerProcess, role: str) -> list[dict[str, Any]]:
    return [w for w in status(server)["workers"] if w["role"] == role and not w["retiring"]]


def uids(pid: int) -> list[int]:
    """Real, effective, saved and filesystem uid of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return [int(x) for x in line.split()[1:]]
    raise AssertionError(f"no Uid line for {pid}")


def _descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *_descendants(int(child))]
    return found


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def holder(server_port: int, client: socket.socket, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the server side of ``client``'s connection."""
    client_port = client.getsockname()[1]
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (int(local.rsplit(":", 1)[1], 16) == server_port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port):
                inode = fields[9]
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except FileNotFoundError:
                continue
    return None


def imap_login(server: ServerProcess, user: str) -> imaplib.IMAP4:
    client = imaplib.IMAP4(*server.address("imap"), timeout=30)
    client.login(user, PASSWORD)
    return client


def log_has(server: ServerProcess, name: str, **fields: object) -> bool:
    wanted = [f"{k}={v}" for k, v in fields.items()]
    return any(f" {name} " in f"{line} " and all(w in line.split() for w in wanted)
               for line in (server.state / "server.log").read_text(errors="replace").splitlines())


@pytest.fixture
def open_tmp(tmp_path: Path) -> Iterator[Path]:
    """A folder an unprivileged worker can reach (pytest's own are root's, mode 0700)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="mailyard-supervise-", dir="/tmp"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def two_imap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    state = state_with(tmp_path_factory.mktemp("supervise") / "state", "imap_workers = 2")
    proc = ServerProcess(state).start()
    yield proc
    assert proc.stop() == 0, proc.log_tail()


def test_one_process_per_job_children_of_the_supervisor(two_imap: ServerProcess) -> None:
    assert two_imap.proc is not None
    reply = status(two_imap)
    roles = sorted((w["role"], w["index"]) for w in reply["workers"])
    assert roles == [("mailbox", 0), ("mailbox", 1), ("smtp", 0)]
    pids = [w["pid"] for w in reply["workers"]] + [reply["delivery"]["pid"]]
    assert len(set(pids)) == 4
    assert all(parent_of(pid) == two_imap.proc.pid for pid in pids)
    # Both mailbox workers serve IMAP, only the first POP3 (pop3_workers = 1).
    services = {w["index"]: w["services"] for w in reply["workers"] if w["role"] == "mailbox"}
    assert services == {0: ["pop3", "imap"], 1: ["imap"]}
    pid_file = two_imap.state / "run" / "mailyard.pid"
    assert pid_file.read_text() == f"{two_imap.proc.pid}\n"


def test_sigkilled_worker_is_restarted_and_other_sessions_continue(
        two_imap: ServerProcess) -> None:
    mailbox = workers(two_imap, "mailbox")
    pids = [w["pid"] for w in mailbox]
    port = two_imap.address("imap")[1]
    smtp = smtplib.SMTP(*two_imap.address("smtp"), timeout=30)
    smtp.ehlo("client.example")
    sessions: list[tuple[imaplib.IMAP4, int]] = []
    for n in range(1, 25):
        client = imap_login(two_imap, f"i{n}@example.test")
        client.select("INBOX")
        pid = holder(port, client.sock, pids)
        assert pid is not None and pid in pids
        sessions.append((client, pid))
        if {p for _, p in sessions} == set(pids) and len(sessions) >= 4:
            break
    victim = sessions[0][1]
    survivors = [c for c, p in sessions if p != victim]
    os.kill(victim, signal.SIGKILL)
    wait_until("a new mailbox worker", lambda: victim not in
               [w["pid"] for w in workers(two_imap, "mailbox")] and
               all(w["pid"] for w in workers(two_imap, "mailbox")))
    # Sessions of the other worker and of the SMTP side go on as if nothing happened.
    for client in survivors:
        assert client.noop()[0] == "OK"
        assert client.select("INBOX")[0] == "OK"
    assert smtp.noop()[0] == 250
    smtp.quit()
    # The victim's own sessions are gone with it.
    for client, pid in sessions:
        if pid == victim:
            with pytest.raises((imaplib.IMAP4.abort, OSError)):
                client.noop()
    for client in survivors:
        client.logout()
    replaced = next(w for w in workers(two_imap, "mailbox") if w["pid"] not in pids)
    assert replaced["restarts"] == 1
    assert log_has(two_imap, "worker.exited", pid=victim, code=-9)
    for n in range(4):  # new connections are served, by either worker
        imap_login(two_imap, f"i{n + 1}@example.test").logout()


def test_a_stuck_worker_is_killed_by_the_watchdog(tmp_path: Path) -> None:
    state = state_with(tmp_path / "state", "watchdog = 2")
    server = ServerProcess(state).start()
    try:
        (smtp_worker,) = workers(server, "smtp")
        os.kill(smtp_worker["pid"], signal.SIGSTOP)  # alive, silent: a hung event loop
        wait_until("the watchdog's restart", lambda: workers(server, "smtp")[0]["pid"]
                   not in (None, smtp_worker["pid"]))
        assert log_has(server, "worker.watchdog", pid=smtp_worker["pid"])
        with smtplib.SMTP(*server.address("smtp"), timeout=30) as smtp:
            assert smtp.ehlo()[0] == 250
    finally:
        assert server.stop() == 0, server.log_tail()


def _free_low_port() -> int:
    for port in range(1000, 900, -1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port below 1024 on loopback")


@needs_root
def test_workers_drop_to_the_configured_user_after_binding(open_tmp: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    low = _free_low_port()
    state = state_with(open_tmp / "state", 'user = "nobody"')
    config = state / "mailyard.toml"
    config.write_text(config.read_text().replace('[imap]\nlisten = ["127.0.0.1:0"]',
                                                 f'[imap]\nlisten = ["127.0.0.1:{low}"]'))
    server = ServerProcess(state).start()
    try:
        assert server.proc is not None
        assert server.address("imap") == ("127.0.0.1", low)  # bound as root
        assert uids(server.proc.pid)[0] == 0  # the supervisor keeps root to restart workers
        reply = status(server)
        for worker in reply["workers"]:
            assert uids(worker["pid"]) == [nobody.pw_uid] * 4, worker
            assert worker["user"] == "nobody"
        # The delivery worker's children are forks (no interpreter to run as
        # nobody, which cannot even enter /root where this one may live).
        delivery = reply["delivery"]["pid"]
        wait_until("the delivery worker's drop", lambda: uids(delivery) == [nobody.pw_uid] * 4)
        wait_until("the local delivery children", lambda: len(_descendants(delivery)) >= 2)
        assert all(uids(pid) == [nobody.pw_uid] * 4 for pid in _descendants(delivery))
        assert {w["role"] for w in reply["workers"]} == {"smtp", "queue", "mailbox"}
        client = imap_login(server, "i1@example.test")
        assert client.select("INBOX")[0] == "OK"
        assert client.append("INBOX", None, None, b"Subject: as nobody\r\n\r\nhi\r\n")[0] == "OK"
        client.logout()
        # The parts the workers write are theirs; configuration and key stay root's.
        for part in ("mail", "queue", "run", "directory.sqlite"):
            assert (state / part).stat().st_uid == nobody.pw_uid, part
        assert (state / "mailyard.toml").stat().st_uid == 0
    finally:
        assert server.stop() == 0, server.log_tail()


def _serial(client: imaplib.IMAP4_SSL) -> int:
    der = client.sock.getpeercert(binary_form=True)  # type: ignore[attr-defined]
    return x509.load_der_x509_certificate(der).serial_number


def test_sighup_reload_takes_new_user_and_certificate_keeping_sessions(open_tmp: Path) -> None:
    from mailyard.server.tls import generate_self_signed

    state = state_with(open_tmp / "state", "", tls=True)
    server = ServerProcess(state).start()
    try:
        assert server.proc is not None
        old_pids = {w["pid"] for w in status(server)["workers"]}
        session = imaplib.IMAP4_SSL(*server.address("imaps"),
                                    ssl_context=tls_client_context(state), timeout=30)
        session.login("i1@example.test", PASSWORD)
        assert session.select("INBOX")[0] == "OK"
        old_serial = _serial(session)
        generate_self_signed(HOSTNAME, str(state / "tls" / "cert.pem"),
                             str(state / "tls" / "key.pem"))
        config = state / "mailyard.toml"
        if ROOT:
            config.write_text(config.read_text() + 'user = "nobody"\n')
        server.proc.send_signal(signal.SIGHUP)
        wait_until("the reload", lambda: log_has(server, "reloaded"))
        fresh = [w for w in status(server)["workers"] if not w["retiring"]]
        assert not {w["pid"] for w in fresh} & old_pids
        if ROOT:
            nobody = pwd.getpwnam("nobody").pw_uid
            assert all(uids(w["pid"]) == [nobody] * 4 for w in fresh)
        # The session under way is untouched: same connection, same worker.
        assert session.noop()[0] == "OK"
        assert session.append("INBOX", None, None, b"Subject: after\r\n\r\nreload\r\n")[0] == "OK"
        assert session.select("INBOX") == ("OK", [b"1"])
        newcomer = imaplib.IMAP4_SSL(*server.address("imaps"),
                                     ssl_context=tls_client_context(state), timeout=30)
        assert _serial(newcomer) != old_serial
        newcomer.login("i2@example.test", PASSWORD)
        newcomer.logout()
        session.logout()
        # With its last session gone the retired worker ends.
        wait_until("the retired workers to end", lambda: not any(
            w["retiring"] for w in status(server)["workers"]))
    finally:
        assert server.stop() == 0, server.log_tail()


def test_a_reload_with_a_broken_config_keeps_the_running_workers(tmp_path: Path) -> None:
    state = state_with(tmp_path / "state", "")
    server = ServerProcess(state).start()
    try:
        assert server.proc is not None
        before = {w["pid"] for w in status(server)["workers"]}
        config = state / "mailyard.toml"
        config.write_text(config.read_text() + "imap_workers = 0\n")
        server.proc.send_signal(signal.SIGHUP)
        wait_until("the refused reload", lambda: log_has(server, "reload.failed"))
        assert {w["pid"] for w in status(server)["workers"]} == before
        imap_login(server, "i1@example.test").logout()
    finally:
        assert server.stop() == 0, server.log_tail()


def mailyard(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mailyard", "--state", str(state), *args],
                          capture_output=True, text=True, timeout=90, check=False)


def test_ctl_status_reload_stop(tmp_path: Path) -> None:
    state = state_with(tmp_path / "state", "")
    server = ServerProcess(state).start()
    try:
        assert server.proc is not None
        shown = mailyard(state, "ctl", "status")
        assert shown.returncode == 0, shown.stderr
        assert f"server pid {server.proc.pid}" in shown.stdout and "mailbox[0]" in shown.stdout
        data = json.loads(mailyard(state, "ctl", "status", "--json").stdout)
        assert data["pid"] == server.proc.pid
        assert mailyard(state, "ctl", "reload").returncode == 0
        wait_until("the reload", lambda: log_has(server, "reloaded"))
        stopped = mailyard(state, "ctl", "stop", "--wait")
        assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
        assert server.proc.wait(10) == 0
        assert not (state / "run" / "mailyard.pid").exists()
        gone = mailyard(state, "ctl", "status")
        assert gone.returncode == 1 and "no server is running" in gone.stderr
    finally:
        server.kill()


def test_readiness_and_stop_reach_the_notify_socket(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    state = state_with(tmp_path / "state", "")
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        listener.settimeout(30)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        server = ServerProcess(state).start()
        try:
            assert server.proc is not None
            ready = listener.recv(4096).decode().split("\n")
            assert "READY=1" in ready and f"MAINPID={server.proc.pid}" in ready
            server.proc.send_signal(signal.SIGTERM)
            assert "STOPPING=1" in listener.recv(4096).decode().split("\n")
            assert server.proc.wait(30) == 0
        finally:
            server.kill()


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    binary = Path(sys.executable).parent / "mailyard"
    if not binary.exists():
        pytest.skip(f"no mailyard console script next to {sys.executable}")
    unit = (REPO / "contrib" / "systemd" / "mailyard.service").read_text()
    assert "Type=notify" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit
    # The unit names the installed binary; verify a copy that names this one.
    copy = tmp_path / "mailyard.service"
    copy.write_text(unit.replace("/usr/local/bin/mailyard", str(binary)))
    result = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_init_script_starts_reports_reloads_and_stops(tmp_path: Path) -> None:
    state = state_with(tmp_path / "state", "")
    script = REPO / "contrib" / "init.d" / "mailyard"
    env = dict(os.environ, MAILYARD_BIN=str(Path(sys.executable).parent / "mailyard"),
               MAILYARD_STATE=str(state), MAILYARD_LOG=str(state / "server.log"))
    if not Path(env["MAILYARD_BIN"]).exists():
        pytest.skip(f"no mailyard console script next to {sys.executable}")

    def run(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["sh", str(script), action], env=env, capture_output=True,
                              text=True, timeout=120, check=False)

    pid_file = state / "run" / "mailyard.pid"
    try:
        started = run("start")
        assert started.returncode == 0, started.stdout + started.stderr
        pid = int(pid_file.read_text())
        assert run("status").stdout.strip() == f"mailyard is running (pid {pid})"
        assert run("reload").returncode == 0
        stopped = run("stop")
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        assert run("status").returncode == 3
    finally:
        if pid_file.exists():
            with_pid = int(pid_file.read_text())
            os.kill(with_pid, signal.SIGKILL)


def test_serve_check_says_which_workers_run_as_whom(tmp_path: Path) -> None:
    state = state_with(tmp_path / "state", 'imap_workers = 3')
    result = mailyard(state, "serve", "--check")
    assert result.returncode == 0, result.stderr
    assert "workers: smtp, 3 mailbox (imap 3, pop3 1), delivery; as the invoking user" in (
        result.stdout)
    config = state / "mailyard.toml"
    config.write_text(config.read_text() + 'user = "no-such-user-mailyard"\n')
    refused = mailyard(state, "serve", "--check")
    assert refused.returncode == 1 and "no such user" in refused.stderr
    started = mailyard(state, "serve")  # the same check stops a start, in one line
    assert started.returncode == 1 and "no such user" in started.stderr
    assert "Traceback" not in started.stderr
