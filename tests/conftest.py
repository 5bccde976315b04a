"""Shared fixtures: a real embedded App (SQLite + filesystem assetstore) per test.

``JOIST_TEST_ENGINE=mongo`` runs the same tests on the MongoDB engine instead:
against mongomock (no MongoDB server can be installed on the CI machine), or
against the server ``JOIST_TEST_MONGO_URI`` names, one fresh database per test
(see ``tests/mongo_stand_in.py``). For instance::

    JOIST_TEST_ENGINE=mongo .venv/bin/python -m pytest tests/unit/core/auth/test_auth.py
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from joist.admin import bootstrap
from joist.admin.bootstrap import App, build_app
from joist.core.db.engine import Engine
from joist.core.settings import Settings, load_settings
from tests.mongo_stand_in import REAL_URI, LockedMongoClient, fresh_db_name, real_uri
from tests.s3env import select_test_assetstore, stop_shared_moto

# Fast bcrypt for tests (production uses the schema default, 12); servers a test
# starts bind free ports, SFTP included.
TEST_OVERRIDES = {"security.bcrypt_rounds": 4, "assetstore.reserve_mb": 0, "sftp.port": 0}
ENGINE = os.environ.get("JOIST_TEST_ENGINE", "sqlite")
if ENGINE not in ("sqlite", "mongo"):
    raise pytest.UsageError(f"JOIST_TEST_ENGINE must be sqlite or mongo, not {ENGINE!r}")


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    return load_settings(env={}, search=False,
                         overrides={"data_dir": str(data_dir), **TEST_OVERRIDES, **overrides})


def site_app(data_dir: Path, *, like: App | None = None, **overrides: object) -> App:
    """An App for a server the test runs in its own process, on the engine
    ``JOIST_TEST_ENGINE`` names: the gateway suites run on MongoDB this way
    (mongomock, or the ``JOIST_TEST_MONGO_URI`` server). ``like``: another App
    whose store this one shares (a second server). Tests that hand the store to
    another process skip on mongomock, which lives in this one."""
    client = None
    if ENGINE == "mongo" and like is not None:
        overrides = {"database.engine": "mongo", "database.uri": like.settings.database.uri,
                     **overrides}
        client = None if REAL_URI else like.engine.client  # type: ignore[attr-defined]
    elif ENGINE == "mongo":
        name = fresh_db_name()
        uri = real_uri(name) if REAL_URI else f"mongodb://127.0.0.1:27017/{name}"
        overrides = {"database.engine": "mongo", "database.uri": uri, **overrides}
        client = None if REAL_URI else LockedMongoClient()
    return build_app(make_settings(data_dir, **overrides), env={}, mongo_client=client)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    if ENGINE == "mongo":
        name = fresh_db_name()
        uri = real_uri(name) if REAL_URI else f"mongodb://127.0.0.1:27017/{name}"
        return make_settings(tmp_path / "data", **{"database.engine": "mongo",
                                                    "database.uri": uri})
    return make_settings(tmp_path / "data")


@pytest.fixture
def app(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    client = None
    if settings.database.engine == "mongo" and not REAL_URI:
        client = LockedMongoClient()
        # mongomock keeps the data in the client object: any other App the test
        # builds on these settings (a "second process") must reach the same one.
        open_engine = bootstrap.open_engine

        def open_shared(settings: Settings, *, mongo_client: Any = None) -> Engine:
            return open_engine(settings, mongo_client=mongo_client or client)

        monkeypatch.setattr(bootstrap, "open_engine", open_shared)
    application = build_app(settings, env={}, mongo_client=client)
    try:
        select_test_assetstore(application)  # JOIST_TEST_ASSETSTORE=s3: uploads go to S3
        yield application
    finally:
        if settings.database.engine == "mongo" and REAL_URI:
            application.engine.client.drop_database(  # type: ignore[attr-defined]
                application.engine.database_name)  # type: ignore[attr-defined]
        application.close()


@pytest.fixture(scope="session", autouse=True)
def _shared_moto_server() -> Iterator[None]:
    """Stops the moto S3 server that S3 tests start on first use (tests/s3env.py)."""
    yield
    stop_shared_moto()


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running the `joist` CLI against a fresh data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOIST_")}
    env.update(JOIST_DATA_DIR=str(tmp_path / "data"), JOIST_SECURITY__BCRYPT_ROUNDS="4",
               JOIST_ASSETSTORE__RESERVE_MB="0", JOIST_SFTP__PORT="0",
               HOME=str(tmp_path / "home"))
    return env
