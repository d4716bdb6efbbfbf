"""mailyard.log: event lines, JSON, the event hook, and a shared rotated file."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from mailyard import log
from mailyard.log import configure, event, set_event_hook


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    handlers = list(log.logger.handlers)
    level = log.logger.level
    yield
    for handler in log.logger.handlers:
        if handler not in handlers:
            handler.close()
    log.logger.handlers[:] = handlers
    log.logger.setLevel(level)
    set_event_hook(None)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_text_lines_to_a_file(tmp_path: Path) -> None:
    path = tmp_path / "mailyard.log"
    configure("info", "text", file=str(path))
    event("smtp.connect", ip="127.0.0.1", note='a "quoted"\nline', empty=None)
    event("hidden", level=logging.DEBUG)
    (line,) = _lines(path)
    assert line.endswith(' info smtp.connect ip=127.0.0.1 note="a \\"quoted\\"\\x0aline"')
    assert path.stat().st_mode & 0o777 == 0o640


def test_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "mailyard.log"
    configure("debug", "json", file=str(path))
    event("delivery", id="q1", result="ok", size=12)
    (line,) = _lines(path)
    data = json.loads(line)
    assert data["event"] == "delivery" and data["level"] == "info"
    assert data["id"] == "q1" and data["size"] == 12


def test_rotation_keeps_so_many_files(tmp_path: Path) -> None:
    path = tmp_path / "mailyard.log"
    configure("info", "text", file=str(path), max_bytes=4096, keep=2)
    for n in range(400):
        event("line", n=n, pad="x" * 40)
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock"))
    assert names == ["mailyard.log", "mailyard.log.1", "mailyard.log.2"]
    # At most one line past the limit, since the size is checked before writing.
    for name in names:
        assert (tmp_path / name).stat().st_size < 4096 + 200
    assert _lines(path)[-1].endswith("n=399 pad=" + "x" * 40)


def test_processes_share_one_rotated_file(tmp_path: Path) -> None:
    # Three processes log into one small file at once: every line lands
    # somewhere in the kept files, none twice, none torn.
    path = tmp_path / "mailyard.log"
    code = (
        "import sys; from mailyard.log import configure, event; "
        "configure('info', 'text', file=sys.argv[1], max_bytes=4096, keep=200); "
        "[event('line', who=sys.argv[2], n=n) for n in range(600)]"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), str(who)])
             for who in range(3)]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    lines = [line for p in tmp_path.glob("mailyard.log*") if not p.name.endswith(".lock")
             for line in _lines(p)]
    seen = sorted(line.split(" line ", 1)[1] for line in lines)
    assert seen == sorted(f"who={w} n={n}" for w in range(3) for n in range(600))


def test_the_hook_sees_every_event(tmp_path: Path) -> None:
    configure("error", "text", file=str(tmp_path / "x.log"))
    seen: list[tuple[str, dict[str, object]]] = []

    def hook(name: str, fields: Mapping[str, object]) -> None:
        seen.append((name, dict(fields)))

    assert set_event_hook(hook) is None
    event("smtp.connect", ip="127.0.0.1", user=None)
    assert seen == [("smtp.connect", {"ip": "127.0.0.1"})]
    assert _lines(tmp_path / "x.log") == []  # below the level: counted, not logged


def test_a_failing_hook_is_dropped_and_logging_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    configure("info", "text", file=str(path))

    def hook(name: str, fields: Mapping[str, object]) -> None:
        raise OSError("disk full")

    set_event_hook(hook)
    event("one")
    event("two")
    lines = _lines(path)
    assert any("metrics.disabled" in line for line in lines)
    assert lines[-1].endswith(" info two")
    assert set_event_hook(None) is None


def test_log_section_keys(tmp_path: Path) -> None:
    from mailyard.config import ConfigError, LogConfig, load_config

    (tmp_path / "mailyard.toml").write_text(
        '[log]\nfile = "logs.txt"\nmax_bytes = 8192\nkeep = 3\nformat = "json"\n')
    config = load_config(str(tmp_path)).log
    assert (config.file, config.max_bytes, config.keep) == ("logs.txt", 8192, 3)
    assert LogConfig(max_bytes=0).max_bytes == 0  # never rotate
    with pytest.raises(ConfigError, match="keep"):
        LogConfig(keep=0)
    with pytest.raises(ConfigError, match="max_bytes"):
        LogConfig(max_bytes=100)
