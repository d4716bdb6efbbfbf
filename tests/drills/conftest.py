"""Reliability drills (issue 7): the ``drill`` marker, applied to every test here.

``MAILYARD_DRILLS=long`` (``make drills``) scales the drills up; the default
short form keeps this folder within CI's budget. Run one form with
``pytest -s -m drill tests/drills`` to see the printed results.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "drill: a reliability drill (tests/drills); MAILYARD_DRILLS=long scales it up")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/drills/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.drill)
