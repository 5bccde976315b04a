"""Fixtures of the engine contract suite.

Every test here runs once per entry of ``ENGINE_FACTORIES``. To put another
engine through the suite, add one factory: a context manager that takes a
fresh temporary directory and yields an open ``Engine`` on an empty store,
closing it afterwards.

The MongoDB engine runs here twice over: always on mongomock, since no MongoDB
server can be installed on the CI machine, and on a real server when
``JOIST_TEST_MONGO_URI`` is set (see ``tests/mongo_stand_in.py`` and the
README). A test that meets a gap of mongomock's carries
``@pytest.mark.mongomock_gap("what mongomock gets wrong")`` and is skipped
there, and only there.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from joist.core.db.engine import Collection, CollectionSpec, Engine, Index
from joist.core.db.mongo import MongoEngine
from joist.core.db.sqlite import SQLiteEngine
from tests.mongo_stand_in import REAL_URI, LockedMongoClient, fresh_db_name, real_uri

EngineFactory = Callable[[Path], AbstractContextManager[Engine]]


@contextlib.contextmanager
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = SQLiteEngine(tmp_path / "contract.sqlite")
    try:
        yield engine
    finally:
        engine.close()


@contextlib.contextmanager
def mongomock_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = MongoEngine(f"mongodb://127.0.0.1/{fresh_db_name()}", client=LockedMongoClient())
    try:
        yield engine
    finally:
        engine.close()


@contextlib.contextmanager
def mongo_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = MongoEngine(real_uri(fresh_db_name()), server_selection_timeout_s=10)
    try:
        yield engine
    finally:
        engine.client.drop_database(engine.database_name)
        engine.close()


ENGINE_FACTORIES: dict[str, EngineFactory] = {
    "sqlite": sqlite_engine,
    "mongomock": mongomock_engine,
}
if REAL_URI:
    ENGINE_FACTORIES["mongo"] = mongo_engine


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mongomock_gap(reason): skipped on mongomock only, "
                                       "for the reason given (a gap of mongomock's)")


@pytest.fixture(params=sorted(ENGINE_FACTORIES))
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    gap = request.node.get_closest_marker("mongomock_gap")
    if gap is not None and request.param == "mongomock":
        pytest.skip(f"mongomock gap: {gap.args[0]}")
    with ENGINE_FACTORIES[request.param](tmp_path) as eng:
        yield eng


MakeColl = Callable[..., Collection]


@pytest.fixture
def make_coll(engine: Engine) -> MakeColl:
    """``make_coll(indexes=(), array_fields=(), ttl_field=None, name=None)``."""
    counter = itertools.count()

    def make(indexes: Iterable[Index] = (), array_fields: Iterable[str] = (),
             ttl_field: str | None = None, name: str | None = None) -> Collection:
        spec = CollectionSpec(name or f"c{next(counter)}", tuple(indexes),
                              frozenset(array_fields), ttl_field)
        return engine.collection(spec)

    return make


@pytest.fixture
def coll(make_coll: MakeColl) -> Collection:
    """A collection declaring the array fields the tests use."""
    return make_coll(array_fields=("tags", "groups", "access.users", "items"))
