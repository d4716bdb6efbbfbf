"""Fixtures for the IMAP core tests: ``feed`` runs input whole and byte by byte."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.proto.imap.helpers import Result, run
from tests.proto.splitting import SPLITTERS


@pytest.fixture(params=sorted(SPLITTERS))
def feed(request: pytest.FixtureRequest) -> Callable[..., Result]:
    splitter = SPLITTERS[request.param]

    def _feed(data: bytes, **kwargs: object) -> Result:
        return run(splitter(data), **kwargs)  # type: ignore[arg-type]

    return _feed
