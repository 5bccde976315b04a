"""Fixtures of the engine contract suite.

Every test here runs once per entry of ``ENGINE_FACTORIES``. To put another
engine through the suite, add one factory: a context manager that takes a
fresh temporary directory and yields an open ``Engine`` on an empty store,
closing it afterwards. For instance, for a MongoDB engine::

    @contextlib.contextmanager
    def mongomock_engine(tmp_path: Path) -> Iterator[Engine]:
        engine = MongoEngine(mongomock.MongoClient(), database=tmp_path.name)
        try:
            yield engine
        finally:
            engine.close()

    ENGINE_FACTORIES["mongomock"] = mongomock_engine
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from joist.core.db.engine import Collection, CollectionSpec, Engine, Index
from joist.core.db.sqlite import SQLiteEngine

EngineFactory = Callable[[Path], AbstractContextManager[Engine]]


@contextlib.contextmanager
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = SQLiteEngine(tmp_path / "contract.sqlite")
    try:
        yield engine
    finally:
        engine.close()


ENGINE_FACTORIES: dict[str, EngineFactory] = {
    "sqlite": sqlite_engine,
}


@pytest.fixture(params=sorted(ENGINE_FACTORIES))
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
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
