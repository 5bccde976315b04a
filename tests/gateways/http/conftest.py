"""Fixtures of the REST tests: the shared world (``tests.world``) behind a real
cheroot server on 127.0.0.1, port 0, stopped by the fixture even on failure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateways.http.restsite import RestSite, running_site


@pytest.fixture
def site(tmp_path: Path) -> Iterator[RestSite]:
    """A fresh server and world per test: for tests that change things."""
    with running_site(tmp_path / "data") as rest:
        yield rest


@pytest.fixture(scope="module")
def ro_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestSite]:
    """One server per module for tests that only read (cheaper)."""
    with running_site(tmp_path_factory.mktemp("ro") / "data") as rest:
        yield rest
