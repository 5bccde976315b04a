"""Shared fixtures: a real embedded App (SQLite + filesystem assetstore) per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from joist.admin.bootstrap import App, build_app
from joist.core.settings import Settings, load_settings

# Fast bcrypt for tests; production uses the schema default (12).
TEST_OVERRIDES = {"security.bcrypt_rounds": 4, "assetstore.reserve_mb": 0}


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    return load_settings(env={}, search=False,
                         overrides={"data_dir": str(data_dir), **TEST_OVERRIDES, **overrides})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    application = build_app(settings, env={})
    try:
        yield application
    finally:
        application.close()


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running the `joist` CLI against a fresh data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOIST_")}
    env.update(JOIST_DATA_DIR=str(tmp_path / "data"), JOIST_SECURITY__BCRYPT_ROUNDS="4",
               JOIST_ASSETSTORE__RESERVE_MB="0", HOME=str(tmp_path / "home"))
    return env
