from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailyard.directory.passwords import hash_password
from mailyard.directory.store import Directory

PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def hashed() -> str:
    # One argon2id hash at the real cost (~0.1 s), shared by every test.
    return hash_password(PASSWORD)


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "directory.sqlite")


@pytest.fixture
def directory(db_path: str) -> Iterator[Directory]:
    d = Directory.open(db_path)
    yield d
    d.close()


@pytest.fixture
def mail_root(tmp_path: Path) -> str:
    root = tmp_path / "mail"
    root.mkdir()
    return str(root)
