"""Documents read by id are kept while nobody commits (core/db/sqlite_rows.py):
reused without a statement, dropped by any commit from any connection, never
seen or filled by a thread inside its own write, bounded by bytes."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from joist.core.db.engine import CollectionSpec
from joist.core.db.sqlite import SQLiteEngine
from joist.core.db.sqlite_rows import LARGEST, RowCache

ITEMS = CollectionSpec("item")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[SQLiteEngine]:
    eng = SQLiteEngine(tmp_path / "joist.sqlite")
    yield eng
    eng.close()


def statements(engine: SQLiteEngine, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every by-id statement the engine runs from now on."""
    ran: list[Any] = []
    real = engine.read_one

    def counted(sql: str, params: Any) -> Any:
        ran.append(params)
        return real(sql, params)
    monkeypatch.setattr(engine, "read_one", counted)
    return ran


def test_a_second_read_runs_no_statement_until_a_commit(
        engine: SQLiteEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    items = engine.collection(ITEMS)
    oid = items.insert_one({"name": "a", "meta": {"k": [1, 2]}})
    ran = statements(engine, monkeypatch)
    first = items.find_one({"_id": oid})
    assert items.find_one({"_id": oid}) == first == {"_id": oid, "name": "a",
                                                     "meta": {"k": [1, 2]}}
    assert len(ran) == 1
    items.insert_one({"name": "other"})  # any commit, to any document
    assert items.find_one({"_id": oid}) == first
    assert len(ran) == 2


def test_every_caller_gets_its_own_document(engine: SQLiteEngine) -> None:
    items = engine.collection(ITEMS)
    oid = items.insert_one({"name": "a", "meta": {"k": [1]}})
    doc = items.find_one({"_id": oid})
    assert doc is not None
    doc["name"] = "changed"
    doc["meta"]["k"].append(2)
    assert items.find_one({"_id": oid}) == {"_id": oid, "name": "a", "meta": {"k": [1]}}


def test_commits_by_other_connections_and_processes_are_seen(
        engine: SQLiteEngine, tmp_path: Path) -> None:
    items = engine.collection(ITEMS)
    oid = items.insert_one({"name": "a"})
    assert items.find_one({"_id": oid}) == {"_id": oid, "name": "a"}
    other = SQLiteEngine(tmp_path / "joist.sqlite")  # as another process would
    try:
        other.collection(ITEMS).update_one({"_id": oid}, {"$set": {"name": "b"}})
    finally:
        other.close()
    assert items.find_one({"_id": oid}) == {"_id": oid, "name": "b"}
    raw = sqlite3.connect(tmp_path / "joist.sqlite")  # no engine at all
    try:
        with raw:
            raw.execute('DELETE FROM "item"')
    finally:
        raw.close()
    assert items.find_one({"_id": oid}) is None


def test_a_group_sees_its_own_writes_and_a_rollback_leaves_no_trace(
        engine: SQLiteEngine) -> None:
    items = engine.collection(ITEMS)
    oid = items.insert_one({"name": "a"})
    assert items.find_one({"_id": oid}) == {"_id": oid, "name": "a"}  # now kept
    seen_elsewhere: list[Any] = []
    with pytest.raises(RuntimeError), engine.grouped():
        items.update_one({"_id": oid}, {"$set": {"name": "uncommitted"}})
        # this thread reads its own write, not the kept row ...
        assert items.find_one({"_id": oid}) == {"_id": oid, "name": "uncommitted"}
        # ... and another thread still reads the committed one
        reader = threading.Thread(target=lambda: seen_elsewhere.append(
            items.find_one({"_id": oid})))
        reader.start()
        reader.join(timeout=30)
        raise RuntimeError("undo the group")
    assert seen_elsewhere == [{"_id": oid, "name": "a"}]
    assert items.find_one({"_id": oid}) == {"_id": oid, "name": "a"}


def test_the_cache_is_bounded_by_bytes() -> None:
    cache = RowCache(budget=1000)
    for n in range(50):
        cache.put("t", f"id{n}", 7, "x" * 100)
    assert cache.get("t", "id49", 7) == "x" * 100
    assert cache.get("t", "id0", 7) is None  # the oldest went first
    assert cache.get("t", "id49", 8) is None  # read at another counter: not fresh
    kept = sum(cache.get("t", f"id{n}", 7) is not None for n in range(50))
    assert kept == 10
    cache.put("t", "big", 7, "y" * (LARGEST + 1))
    assert cache.get("t", "big", 7) is None
    assert cache.get("t", "id49", 7) is not None  # a refused text evicts nothing


def test_an_unknown_id_is_none_and_not_kept(
        engine: SQLiteEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    items = engine.collection(ITEMS)
    ran = statements(engine, monkeypatch)
    missing = ObjectId()
    assert items.find_one({"_id": missing}) is None
    assert items.find_one({"_id": missing}) is None
    assert len(ran) == 2
