"""SQLite-specific behaviour: query plans, encoding, connections, processes."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st

from joist.core.db import codec
from joist.core.db.engine import CollectionSpec, DuplicateKeyError, Index
from joist.core.db.sqlite import SQLiteEngine
from joist.core.db.sqlite_sql import literal_prefix
from joist.core.errors import StorageError, ValidationError

FOLDERS = CollectionSpec("folder", indexes=(
    Index((("parentId", 1), ("lowerName", 1), ("_id", 1))),
    Index((("parentId", 1), ("name", 1)), unique=True),
), array_fields=frozenset({"groups", "access.users"}))
USERS = CollectionSpec("user", indexes=(Index((("login", 1),), unique=True, name="login"),))
FILES = CollectionSpec("file", indexes=(Index((("sha512", 1),), sparse=True),))
TOKENS = CollectionSpec("token", ttl_field="expires")
COUNTERS = CollectionSpec("counter")
RACE = CollectionSpec("race", indexes=(Index((("key", 1),), unique=True, name="key"),))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "joist.sqlite"


@pytest.fixture
def engine(db_path: Path) -> Iterator[SQLiteEngine]:
    eng = SQLiteEngine(db_path)
    yield eng
    eng.close()


# -- query plans ---------------------------------------------------------------------

@pytest.fixture
def populated(engine: SQLiteEngine) -> SQLiteEngine:
    parents = [ObjectId() for _ in range(20)]
    folders = engine.collection(FOLDERS)
    folders.insert_many([{"parentId": parents[i % 20], "name": f"F{i}", "lowerName": f"f{i}",
                          "groups": [i % 3]} for i in range(2000)])
    engine.collection(USERS).insert_many([{"login": f"u{i}"} for i in range(500)])
    engine.collection(FILES).insert_many([{"sha512": f"{i:0128x}"} if i % 2 else {}
                                          for i in range(500)])
    engine.collection(TOKENS).insert_many([{"_id": f"{i:064x}"} for i in range(500)])
    return engine


def plan(engine: SQLiteEngine, spec: CollectionSpec, filter: dict[str, Any],
         **kw: Any) -> str:
    return " | ".join(engine.collection(spec).explain(filter, **kw))


@pytest.mark.parametrize(("spec", "filter", "kw", "index"), [
    (FOLDERS, {"parentId": ObjectId()}, {"sort": [("lowerName", 1), ("_id", 1)],
                                         "skip": 50, "limit": 10},
     "folder$parentId_1_lowerName_1__id_1"),
    (FOLDERS, {"parentId": ObjectId()}, {"sort": [("lowerName", -1), ("_id", -1)], "limit": 5},
     "folder$parentId_1_lowerName_1__id_1"),
    (FOLDERS, {"parentId": ObjectId(), "lowerName": {"$gt": "f5"}},
     {"sort": [("lowerName", 1), ("_id", 1)], "limit": 5}, "folder$parentId_1_lowerName_1__id_1"),
    (FOLDERS, {"parentId": ObjectId(), "lowerName": {"$regex": "^f1"}},
     {"sort": [("lowerName", 1), ("_id", 1)]}, "folder$parentId_1_lowerName_1__id_1"),
    (FOLDERS, {"parentId": ObjectId(), "name": "F7"}, {}, "folder$parentId_1_name_1"),
    (FOLDERS, {"parentId": {"$in": [ObjectId(), ObjectId()]}, "name": "F7"}, {},
     "folder$parentId_1_name_1"),
    (USERS, {"login": "u7"}, {}, "user$login"),
    (FILES, {"sha512": "ab" * 64}, {"limit": 1}, "file$sha512_1"),
    (TOKENS, {"_id": "a" * 64}, {}, "sqlite_autoindex_token_1"),
    (TOKENS, {"_id": {"$in": [f"{i:064x}" for i in range(100)]}}, {},
     "sqlite_autoindex_token_1"),
    (TOKENS, {"expires": {"$lt": datetime.now(UTC)}}, {}, "token$ttl"),
])
def test_hot_queries_use_an_index_and_no_sort_step(
        populated: SQLiteEngine, spec: CollectionSpec, filter: dict[str, Any],
        kw: dict[str, Any], index: str) -> None:
    got = plan(populated, spec, filter, **kw)
    assert f"USING INDEX {index} (" in got or f"USING COVERING INDEX {index} (" in got, got
    assert "TEMP B-TREE" not in got and not got.startswith("SCAN"), got


def test_array_membership_is_a_json_each_scan(populated: SQLiteEngine) -> None:
    # Documented: SQLite cannot index array elements.
    got = plan(populated, FOLDERS, {"groups": 1})
    assert got.startswith("SCAN folder") and "VIRTUAL TABLE" in got


# -- encoding ------------------------------------------------------------------------

def test_encoded_forms() -> None:
    oid = ObjectId("0123456789abcdef01234567")
    dt = datetime(2024, 2, 3, 4, 5, 6, 789999, tzinfo=UTC)
    text = codec.encode_doc({"_id": oid, "t": dt, "s": "\x1ex", "b": b"hi", "k": "plain"})
    assert codec.decode_json(text) == {"_id": oid, "t": dt.replace(microsecond=789000),
                                       "s": "\x1ex", "b": b"hi", "k": "plain"}
    assert codec.encode_scalar(oid) == "\x1eO0123456789abcdef01234567"
    assert codec.encode_scalar(dt) == "\x1eD2024-02-03T04:05:06.789"
    assert codec.encode_scalar(datetime(5, 1, 1)) == "\x1eD0005-01-01T00:00:00.000"
    assert codec.encode_scalar("\x1ex") == "\x1eS\x1ex"
    assert codec.encode_scalar(b"hi") == "\x1eBaGk="


def test_tricky_keys_and_quotes_take_the_slow_path_correctly() -> None:
    doc = {"\x1ekey": "\x1e", "q": 'say "\x1e', "l": [["\x1eD"]], "n": {"x": "\x1eO"}}
    assert codec.decode_json(codec.encode_doc(doc)) == doc


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**53, 2**53),
              st.floats(allow_nan=False, allow_infinity=False),
              st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
              st.builds(ObjectId), st.binary(max_size=8),
              st.datetimes(timezones=st.just(UTC)).map(codec.norm_datetime)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text("ab\x1e\"", max_size=3), inner,
                                            max_size=3)),
    max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(doc=st.dictionaries(st.text("ab\x1e\"_", max_size=4), json_values, max_size=4))
def test_codec_round_trips(doc: dict[str, Any]) -> None:
    assert codec.decode_json(codec.encode_doc(doc)) == doc


safe_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                    max_size=4)


@settings(max_examples=300, deadline=None)
@given(a=st.one_of(safe_text, st.just("\x1e")), b=safe_text)
def test_string_encoding_preserves_order(a: str, b: str) -> None:
    ea, eb = codec.encode_scalar(a), codec.encode_scalar(b)
    assert (a < b) == (ea < eb) and (a == b) == (ea == eb)
    # Code point order is UTF-8 byte order, which is what SQLite compares.
    assert (ea < eb) == (ea.encode() < eb.encode())


@settings(max_examples=300, deadline=None)
@given(a=st.datetimes(timezones=st.just(UTC)), b=st.datetimes(timezones=st.just(UTC)))
def test_datetime_encoding_preserves_order(a: datetime, b: datetime) -> None:
    na, nb = codec.norm_datetime(a), codec.norm_datetime(b)
    assert (na < nb) == (codec.encode_scalar(a) < codec.encode_scalar(b))


@pytest.mark.parametrize(("pattern", "expected"), [
    ("^abc", ("abc", True)), ("^ab.c", ("ab", False)), ("^abc?", ("ab", False)),
    ("^ab+", ("ab", False)), (r"^a\.b", ("a.b", True)), (r"^a\d", ("a", False)),
    ("abc", ("", False)), ("^", ("", True)), ("^a{2}", ("", False)), ("^ab$", ("ab", False)),
    ("^abc|x", ("", False)), ("^a(?:b|c)", ("", False)), (r"^a\|b", ("", False)),
])
def test_literal_prefix(pattern: str, expected: tuple[str, bool]) -> None:
    assert literal_prefix(pattern) == expected


# -- engine specifics ----------------------------------------------------------------

def test_memory_databases_are_refused() -> None:
    with pytest.raises(ValidationError):
        SQLiteEngine(":memory:")


def test_ids_must_be_object_ids_or_strings(engine: SQLiteEngine) -> None:
    c = engine.collection(COUNTERS)
    with pytest.raises(ValidationError):
        c.insert_one({"_id": 5})
    assert c.count() == 0


def test_field_names_needing_quotes(engine: SQLiteEngine) -> None:
    c = engine.collection(CollectionSpec("odd", indexes=(Index((("it's a", 1),)),)))
    c.insert_many([{"_id": "a", "it's a": {"1x": 1}}, {"_id": "b", "it's a": 2}])
    assert [d["_id"] for d in c.find({"it's a.1x": 1})] == ["a"]
    assert [d["_id"] for d in c.find({"it's a": 2})] == ["b"]
    with pytest.raises(ValidationError):
        c.find({'a"b': 1})


def test_indexes_on_arrays(engine: SQLiteEngine) -> None:
    with pytest.raises(ValidationError):
        engine.collection(CollectionSpec("g", indexes=(Index((("groups", 1),), unique=True),),
                                         array_fields=frozenset({"groups"})))
    c = engine.collection(CollectionSpec("g2", indexes=(Index((("groups", 1),)),),
                                         array_fields=frozenset({"groups"})))
    c.insert_one({"groups": [1, 2]})
    assert c.count({"groups": 2}) == 1


def test_changed_index_definition_is_rebuilt(engine: SQLiteEngine) -> None:
    plain = CollectionSpec("ix", indexes=(Index((("k", 1),), name="k"),))
    unique = CollectionSpec("ix", indexes=(Index((("k", 1),), name="k", unique=True),))
    engine.collection(plain).insert_many([{"_id": "a", "k": 1}, {"_id": "b", "k": 1}])
    with pytest.raises(DuplicateKeyError):
        engine.collection(unique)
    engine.collection(plain).delete_one({"_id": "b"})
    c = engine.collection(unique)
    with pytest.raises(DuplicateKeyError):
        c.insert_one({"k": 1})
    with engine.connection() as conn:
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'ix$k'").fetchone()
    assert sql[0].startswith("CREATE UNIQUE INDEX")


def test_opportunistic_purge_at_most_once_per_interval(engine: SQLiteEngine) -> None:
    c = engine.collection(TOKENS)
    past = datetime.now(UTC) - timedelta(minutes=1)
    c.insert_one({"_id": "first"})  # the first write purges
    c.insert_one({"_id": "old1", "expires": past})
    c.insert_one({"_id": "old2", "expires": past})
    assert c.count() == 3  # within the interval: no purge
    c._next_purge = 0.0  # type: ignore[attr-defined]  # the interval has passed
    c.insert_one({"_id": "new", "expires": past + timedelta(hours=1)})
    assert [d["_id"] for d in c.find(sort=[("_id", 1)])] == ["first", "new"]


def test_purge_counts_exactly(engine: SQLiteEngine) -> None:
    c = engine.collection(TOKENS)
    now = datetime.now(UTC)
    c._next_purge = float("inf")  # type: ignore[attr-defined]
    c.insert_many([{"expires": now - timedelta(seconds=i + 1)} for i in range(5)]
                  + [{"expires": now + timedelta(hours=1)}])
    assert engine.purge_expired() == 5
    assert c.count() == 1


def test_memory_settings_are_applied_to_every_connection(db_path: Path) -> None:
    with SQLiteEngine(db_path, connections=4, cache_mib=32, mmap_mib=16) as eng:
        held = []
        for _ in range(4):  # all four connections of the pool, at once
            cm = eng.connection()
            held.append((cm, cm.__enter__()))
        try:
            for _cm, conn in held:
                assert conn.execute("PRAGMA cache_size").fetchone()[0] == -8 * 1024  # KiB
                assert conn.execute("PRAGMA mmap_size").fetchone()[0] == 16 << 20
        finally:
            for cm, _conn in reversed(held):
                cm.__exit__(None, None, None)


def test_the_settings_reach_the_engine(tmp_path: Path) -> None:
    from joist.admin.bootstrap import open_engine
    from joist.core.settings import load_settings
    settings = load_settings(env={}, search=False, overrides={
        "data_dir": str(tmp_path), "database.sqlite_connections": 2,
        "database.sqlite_cache_mib": 10, "database.sqlite_mmap_mib": 0})
    eng = open_engine(settings)
    try:
        assert isinstance(eng, SQLiteEngine) and eng.max_connections == 2
        with eng.connection() as conn:
            assert conn.execute("PRAGMA cache_size").fetchone()[0] == -5 * 1024
            assert conn.execute("PRAGMA mmap_size").fetchone()[0] == 0
    finally:
        eng.close()


def test_more_threads_than_connections_share_the_pool(db_path: Path) -> None:
    eng = SQLiteEngine(db_path, connections=3)
    c = eng.collection(COUNTERS)
    guard = threading.Lock()
    in_use, most, seen = [0], [0], set()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(40):
                with eng.connection() as conn:
                    with guard:
                        in_use[0] += 1
                        most[0] = max(most[0], in_use[0])
                        seen.add(id(conn))
                    conn.execute('SELECT count(*) FROM "counter"').fetchone()
                    with guard:
                        in_use[0] -= 1
                c.find_one_and_update({"_id": "n"}, {"$inc": {"v": 1}}, upsert=True)
                assert c.find_one({"_id": "n"})["v"] >= 1
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(12)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert not any(t.is_alive() for t in threads)
        assert most[0] <= 3 and len(seen) <= 3
        assert c.find_one({"_id": "n"}) == {"_id": "n", "v": 12 * 40}
    finally:
        eng.close()


def test_a_thread_waits_for_a_free_connection(db_path: Path) -> None:
    eng = SQLiteEngine(db_path, connections=1, busy_timeout_s=0.2)
    c = eng.collection(COUNTERS)
    c.insert_one({"_id": "a"})
    errors: list[BaseException] = []
    try:
        with eng.connection():
            t = threading.Thread(target=lambda: _capture(errors, c.find))
            t.start()
            t.join(timeout=30)
            assert len(errors) == 1 and isinstance(errors[0], StorageError)
            assert "busy" in str(errors[0])
            assert c.count() == 1  # this thread's own connection is lent to it again
        got: list[Any] = []
        with eng.connection():
            t = threading.Thread(target=lambda: got.append(c.find()))
            t.start()
        t.join(timeout=30)  # given back at the end of the block: the waiter goes on
        assert got == [[{"_id": "a"}]]
        with eng.grouped():  # a write inside a group reuses the group's connection
            c.insert_one({"_id": "b"})
            assert c.count() == 2
    finally:
        eng.close()


def test_close_closes_every_connection(engine: SQLiteEngine) -> None:
    conns: list[sqlite3.Connection] = []
    ready, done = threading.Barrier(2), threading.Event()

    def worker() -> None:
        with engine.connection() as conn:
            conns.append(conn)
            ready.wait(timeout=30)
            done.wait(timeout=30)

    t = threading.Thread(target=worker)
    t.start()
    ready.wait(timeout=30)
    engine.close()
    done.set()
    t.join(timeout=30)
    with pytest.raises(sqlite3.ProgrammingError):
        conns[0].execute("SELECT 1")
    errors: list[BaseException] = []
    _capture(errors, lambda: engine.collection(COUNTERS))
    assert len(errors) == 1 and isinstance(errors[0], StorageError)


def _capture(errors: list[BaseException], fn: Any) -> None:
    try:
        fn()
    except BaseException as exc:
        errors.append(exc)


def test_a_held_write_lock_times_out_cleanly(db_path: Path) -> None:
    eng = SQLiteEngine(db_path, busy_timeout_s=0.05)
    c = eng.collection(COUNTERS)
    c.insert_one({"_id": "a"})
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StorageError):
            c.insert_one({"_id": "b"})
        assert [d["_id"] for d in c.find()] == ["a"]  # readers are not blocked
    finally:
        other.execute("ROLLBACK")
        other.close()
    c.insert_one({"_id": "b"})
    assert c.count() == 2
    eng.close()


def test_readers_do_not_block_writers(engine: SQLiteEngine, db_path: Path) -> None:
    c = engine.collection(COUNTERS)
    c.insert_one({"_id": "a"})
    reader = sqlite3.connect(db_path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute('SELECT count(*) FROM "counter"').fetchone()[0] == 1
    c.insert_one({"_id": "b"})  # would time out if the reader blocked it
    assert reader.execute('SELECT count(*) FROM "counter"').fetchone()[0] == 1  # snapshot
    reader.execute("COMMIT")
    reader.close()
    assert c.count() == 2


def test_a_dropped_table_is_a_storage_error(engine: SQLiteEngine, db_path: Path) -> None:
    c = engine.collection(COUNTERS)
    with SQLiteEngine(db_path) as other:
        other.drop_collection("counter")
    with pytest.raises(StorageError):
        c.find()


# -- several processes ---------------------------------------------------------------

def _count_worker(path: str, n: int, barrier: Any) -> None:
    with SQLiteEngine(path) as eng:
        c = eng.collection(COUNTERS)
        barrier.wait(timeout=60)
        for _ in range(n):
            c.find_one_and_update({"_id": "n"}, {"$inc": {"v": 1}}, upsert=True)


def _race_worker(path: str, keys: int, barrier: Any, results: Any) -> None:
    won = []
    with SQLiteEngine(path) as eng:
        c = eng.collection(RACE)
        barrier.wait(timeout=60)
        for k in range(keys):
            try:
                c.insert_one({"key": k, "pid": os.getpid()})
                won.append(k)
            except DuplicateKeyError as exc:
                assert exc.field == "key"
    results.put(won)


def _run_processes(target: Any, args: tuple[Any, ...], n: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(n)
    procs = [ctx.Process(target=target, args=(*args, barrier)) for _ in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * n


def _run_race(path: str, keys: int, n: int) -> list[list[int]]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_race_worker, args=(path, keys, barrier, results))
             for _ in range(n)]
    for p in procs:
        p.start()
    won = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * n
    return won


@pytest.mark.slow
def test_counters_are_exact_across_processes(db_path: Path) -> None:
    SQLiteEngine(db_path).close()
    _run_processes(_count_worker, (str(db_path), 300), 3)
    with SQLiteEngine(db_path) as eng:
        assert eng.collection(COUNTERS).find_one({"_id": "n"}) == {"_id": "n", "v": 900}


@pytest.mark.slow
def test_unique_index_holds_across_racing_processes(db_path: Path) -> None:
    keys = 300
    SQLiteEngine(db_path).close()
    won = _run_race(str(db_path), keys, 2)
    assert sorted(won[0] + won[1]) == list(range(keys))  # each key won exactly once
    with SQLiteEngine(db_path) as eng:
        c = eng.collection(RACE)
        assert c.count() == keys
        assert sorted(c.distinct("key")) == list(range(keys))


# -- grouped writes: one transaction ----------------------------------------------------

def _counted(engine: SQLiteEngine) -> Any:
    spec = CollectionSpec("g", (Index((("name", 1),), unique=True),))
    return engine.collection(spec)


def test_a_group_commits_together_and_others_see_nothing_before(
        engine: SQLiteEngine, tmp_path: Path) -> None:
    coll = _counted(engine)
    other = SQLiteEngine(engine.path)
    try:
        seen = other.collection(CollectionSpec("g", (Index((("name", 1),), unique=True),)))
        with engine.grouped():
            coll.insert_one({"_id": "a", "name": "a", "n": 0})
            coll.update_one({"_id": "a"}, {"$inc": {"n": 1}})
            assert coll.find_one({"_id": "a"})["n"] == 1  # this thread sees its writes
            assert seen.find_one({"_id": "a"}) is None  # another connection does not yet
        assert seen.find_one({"_id": "a"}) == {"_id": "a", "name": "a", "n": 1}
    finally:
        other.close()


def test_an_error_leaving_a_group_undoes_all_of_it(engine: SQLiteEngine) -> None:
    coll = _counted(engine)
    coll.insert_one({"_id": "x", "name": "x"})
    with pytest.raises(RuntimeError), engine.grouped():
        coll.insert_one({"_id": "a", "name": "a"})
        coll.update_one({"_id": "x"}, {"$set": {"k": 1}})
        raise RuntimeError("boom")
    assert coll.find({}) == [{"_id": "x", "name": "x"}]


def test_a_failed_call_caught_inside_a_group_rolls_the_group_back(
        engine: SQLiteEngine) -> None:
    """A call may fail half-way (a unique check after its INSERT); catching
    its error must not commit the half."""
    coll = _counted(engine)
    coll.insert_one({"_id": "x", "name": "x"})
    with pytest.raises(StorageError, match="rolled back"), engine.grouped():
        coll.insert_one({"_id": "a", "name": "a"})
        with pytest.raises(DuplicateKeyError):
            coll.insert_one({"_id": "b", "name": "x"})
    assert coll.find({}, sort=[("_id", 1)]) == [{"_id": "x", "name": "x"}]
    coll.insert_one({"_id": "c", "name": "c"})  # the connection is usable again
    assert coll.count({}) == 2


def _child_uses_its_own_connections(eng: SQLiteEngine, results: Any) -> None:
    fresh = not eng._opened and not eng._idle  # the parent's were dropped at fork
    c = eng.collection(COUNTERS)
    c.insert_one({"_id": "child"})
    results.put((fresh, c.count()))


def test_a_forked_child_opens_its_own_connections(engine: SQLiteEngine) -> None:
    c = engine.collection(COUNTERS)
    c.insert_one({"_id": "parent"})
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    proc = ctx.Process(target=_child_uses_its_own_connections, args=(engine, results))
    proc.start()
    try:
        assert results.get(timeout=60) == (True, 2)
    finally:
        proc.join(timeout=60)
    assert proc.exitcode == 0
    assert c.count() == 2  # the parent's pool still works
