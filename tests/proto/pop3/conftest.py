"""Fixtures for the POP3 core tests: every test that takes ``feed`` runs with
the input whole and byte by byte."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.proto.pop3.helpers import Result, run
from tests.proto.splitting import SPLITTERS


@pytest.fixture(params=sorted(SPLITTERS))
def feed(request: pytest.FixtureRequest) -> Callable[..., Result]:
    splitter = SPLITTERS[request.param]

    def _feed(data: bytes, **kwargs: object) -> Result:
        return run(splitter(data), **kwargs)  # type: ignore[arg-type]

    return _feed
