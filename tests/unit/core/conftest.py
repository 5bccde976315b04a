"""Fixtures shared by the core unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from joist.admin.bootstrap import App, build_app


@pytest.fixture
def other(app: App) -> Iterator[App]:
    """A second process on the same store (mongomock: the same client)."""
    second = build_app(app.settings, env={})
    try:
        yield second
    finally:
        second.close()
