from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import ServerProcess, provision, write_config


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    state = tmp_path_factory.mktemp("state")
    write_config(state)
    provision(state)
    proc = ServerProcess(state).start()
    yield proc
    proc.stop()


@pytest.fixture
def fresh_state(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    write_config(state)
    provision(state)
    return state
