"""The engine contract, writes: updates, upserts, indexes, atomicity, TTL."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from joist.core.db.engine import Collection, DuplicateKeyError, Index, UpdateResult
from joist.core.errors import ExistsError, ValidationError
from tests.contract.conftest import MakeColl


def snapshot(coll: Collection) -> list[dict[str, Any]]:
    return coll.find({}, sort=[("_id", 1)])


# -- update operators ------------------------------------------------------------------

def test_set_and_unset_with_dotted_paths(coll: Collection) -> None:
    coll.insert_one({"_id": "d", "a": {"b": 1, "c": 2}, "x": 1})
    r = coll.update_one({"_id": "d"}, {"$set": {"a.b": 10, "n.m.o": "new"},
                                       "$unset": {"a.c": "", "x": 1, "nothere.z": 1}})
    assert r == UpdateResult(matched=1, modified=1)
    assert coll.find_one({"_id": "d"}) == {"_id": "d", "a": {"b": 10}, "n": {"m": {"o": "new"}}}


@pytest.mark.mongomock_gap(
    "$set of 'a.b' where 'a' is the number 5 is accepted silently instead of refused "
    "(MongoDB: PathNotViable)")
def test_set_through_a_non_document_is_refused(coll: Collection) -> None:
    coll.insert_one({"_id": "d", "a": 5, "tags": [{"k": 1}]})
    before = snapshot(coll)
    for bad in ({"$set": {"a.b": 1}}, {"$set": {"tags.k": 2}}, {"$inc": {"a.b": 1}}):
        with pytest.raises(ValidationError):
            coll.update_one({"_id": "d"}, bad)
    assert snapshot(coll) == before


@pytest.mark.mongomock_gap(
    "$inc on a string field raises TypeError inside mongomock instead of a WriteError")
def test_inc(coll: Collection) -> None:
    coll.insert_one({"_id": "d", "i": 1, "f": 1.5, "s": "x"})
    coll.update_one({"_id": "d"}, {"$inc": {"i": 2, "f": 1, "new": -3, "sub.n": 1}})
    assert coll.find_one({"_id": "d"}) == {"_id": "d", "i": 3, "f": 2.5, "s": "x", "new": -3,
                                           "sub": {"n": 1}}
    with pytest.raises(ValidationError):
        coll.update_one({"_id": "d"}, {"$inc": {"s": 1}})
    with pytest.raises(ValidationError):
        coll.update_one({"_id": "d"}, {"$inc": {"i": "1"}})
    assert coll.find_one({"_id": "d"})["i"] == 3  # type: ignore[index]


def test_min_and_max(coll: Collection) -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    coll.insert_one({"_id": "d", "lo": 5, "hi": 5, "t": t0})
    coll.update_one({"_id": "d"}, {"$min": {"lo": 3, "t": t0 + timedelta(days=1)},
                                   "$max": {"hi": 4, "new": 7}})
    assert coll.find_one({"_id": "d"}) == {"_id": "d", "lo": 3, "hi": 5, "t": t0, "new": 7}
    coll.update_one({"_id": "d"}, {"$max": {"hi": 9.5}, "$min": {"t": t0 - timedelta(days=1)}})
    assert coll.find_one({"_id": "d"}) == {"_id": "d", "lo": 3, "hi": 9.5,
                                           "t": t0 - timedelta(days=1), "new": 7}


@pytest.mark.mongomock_gap(
    "$addToSet with $each adds a value repeated inside $each twice")
def test_push_and_add_to_set(coll: Collection) -> None:
    coll.insert_one({"_id": "d", "tags": ["a"]})
    coll.update_one({"_id": "d"}, {"$push": {"tags": "a", "new": {"k": 1}}})
    coll.update_one({"_id": "d"}, {"$push": {"tags": {"$each": ["b", "c"]}}})
    assert coll.find_one({"_id": "d"}) == {"_id": "d", "tags": ["a", "a", "b", "c"],
                                           "new": [{"k": 1}]}
    coll.update_one({"_id": "d"}, {"$addToSet": {"tags": {"$each": ["c", "d", "d"]},
                                                 "new": {"k": 1}, "set": 1.0}})
    coll.update_one({"_id": "d"}, {"$addToSet": {"set": 1, "new": {"k": 1, "j": 2}}})
    assert coll.find_one({"_id": "d"}) == {"_id": "d", "tags": ["a", "a", "b", "c", "d"],
                                           "new": [{"k": 1}, {"k": 1, "j": 2}], "set": [1.0]}
    with pytest.raises(ValidationError):
        coll.update_one({"_id": "d"}, {"$push": {"_id": 1}})
    with pytest.raises(ValidationError):
        coll.update_one({"_id": "d"}, {"$push": {"tags": {"$each": [1], "$slice": 2}}})


@pytest.mark.mongomock_gap(
    "$push onto a string field raises AttributeError inside mongomock instead of a "
    "WriteError")
def test_push_onto_a_non_array_is_refused(coll: Collection) -> None:
    coll.insert_one({"_id": "d", "s": "x"})
    with pytest.raises(ValidationError):
        coll.update_one({"_id": "d"}, {"$push": {"s": 1}})
    assert coll.find_one({"_id": "d"}) == {"_id": "d", "s": "x"}


def test_pull(coll: Collection) -> None:
    u1, u2 = ObjectId(), ObjectId()
    coll.insert_one({"_id": "d", "nums": [1, 5, 7, 5, 9], "tags": ["a", "b", "a"],
                     "users": [{"id": u1, "level": 1}, {"id": u2, "level": 2}, "x"]})
    coll.update_one({"_id": "d"}, {"$pull": {"tags": "a", "nums": {"$gte": 7},
                                             "users": {"id": u1}, "missing": 1}})
    assert coll.find_one({"_id": "d"}) == {"_id": "d", "nums": [1, 5, 5], "tags": ["b"],
                                           "users": [{"id": u2, "level": 2}, "x"]}
    coll.update_one({"_id": "d"}, {"$pull": {"nums": {"$in": [1, 5]},
                                             "users": {"level": {"$gt": 1}}}})
    assert coll.find_one({"_id": "d"}) == {"_id": "d", "nums": [], "tags": ["b"],
                                           "users": ["x"]}


@pytest.mark.parametrize("bad", [
    {}, {"a": 1}, {"$set": {"a": 1}, "b": 2}, {"$rename": {"a": "b"}},
    {"$set": {"_id": "other"}}, {"$unset": {"_id": 1}}, {"$set": {"a": 1, "a.b": 2}},
    {"$set": {"a": 1}, "$inc": {"a": 1}}, {"$set": {"a.0": 1}}, {"$set": {"$a": 1}},
    {"$set": {"a": {"$b": 1}}}, {"$set": 5}, {"$set": {"a": float("inf")}},
])
def test_bad_updates_are_refused(coll: Collection, bad: dict[str, Any]) -> None:
    coll.insert_one({"_id": "d", "a": 0})
    with pytest.raises(ValidationError):
        coll.update_one({"_id": "d"}, bad)
    with pytest.raises(ValidationError):
        coll.find_one_and_update({"_id": "d"}, bad)
    assert snapshot(coll) == [{"_id": "d", "a": 0}]


def test_setting_id_to_the_same_value_is_allowed(coll: Collection) -> None:
    coll.insert_one({"_id": "d"})
    coll.update_one({"_id": "d"}, {"$set": {"_id": "d", "k": 1}})
    assert snapshot(coll) == [{"_id": "d", "k": 1}]


def test_update_counts(coll: Collection) -> None:
    coll.insert_many([{"_id": str(i), "g": i % 2, "v": 0} for i in range(6)])
    assert coll.update_many({"g": 1}, {"$set": {"v": 1}}) == UpdateResult(3, 3)
    assert coll.update_many({"v": 1}, {"$set": {"v": 1}}) == UpdateResult(3, 0)
    assert coll.update_one({"g": 0}, {"$set": {"v": 0}}) == UpdateResult(1, 0)
    assert coll.update_one({"g": 5}, {"$set": {"v": 0}}) == UpdateResult(0, 0)
    assert coll.count({"v": 1}) == 3
    assert coll.update_many({}, {"$inc": {"v": 1}}).modified == 6


def test_set_on_insert_only_on_insert(coll: Collection) -> None:
    coll.insert_one({"_id": "d", "n": 1})
    coll.update_one({"_id": "d"}, {"$setOnInsert": {"created": 1}, "$inc": {"n": 1}},
                    upsert=True)
    assert snapshot(coll) == [{"_id": "d", "n": 2}]


# -- upserts -------------------------------------------------------------------------

def test_upsert_seeds_the_filter_equalities(coll: Collection) -> None:
    r = coll.update_one({"name": "x", "meta.k": 2, "size": {"$gt": 1}, "e": {"$eq": "q"},
                         "$and": [{"z": 3}], "$or": [{"o": 1}], "tags": {"$in": [1, 2]}},
                        {"$set": {"v": 1}, "$setOnInsert": {"c": True}}, upsert=True)
    assert r.matched == 0 and r.modified == 0 and isinstance(r.upserted_id, ObjectId)
    assert coll.find_one({"_id": r.upserted_id}) == {
        "_id": r.upserted_id, "name": "x", "meta": {"k": 2}, "e": "q", "z": 3, "v": 1,
        "c": True}
    again = coll.update_one({"name": "x"}, {"$set": {"v": 2}}, upsert=True)
    assert again == UpdateResult(1, 1) and coll.count() == 1


def test_upsert_with_id_in_filter(coll: Collection) -> None:
    doc = coll.find_one_and_update({"_id": "k"}, {"$inc": {"n": 1}}, upsert=True)
    assert doc == {"_id": "k", "n": 1}
    assert coll.find_one_and_update({"_id": "k"}, {"$inc": {"n": 1}}, upsert=True) == \
        {"_id": "k", "n": 2}
    assert coll.find_one_and_update({"_id": "j"}, {"$inc": {"n": 1}}, upsert=True,
                                    return_document="before") is None
    assert coll.count() == 2


def test_find_one_and_update(coll: Collection) -> None:
    coll.insert_many([{"_id": "a", "p": 3, "s": "q"}, {"_id": "b", "p": 1, "s": "q"},
                      {"_id": "c", "p": 2, "s": "q"}])
    got = coll.find_one_and_update({"s": "q"}, {"$set": {"s": "r"}}, sort=[("p", 1)],
                                   return_document="before")
    assert got == {"_id": "b", "p": 1, "s": "q"}
    got = coll.find_one_and_update({"s": "q"}, {"$set": {"s": "r"}}, sort=[("p", -1)],
                                   projection=["s"])
    assert got == {"_id": "a", "s": "r"}
    assert coll.find_one_and_update({"s": "nope"}, {"$set": {"s": "r"}}) is None
    assert coll.count({"s": "r"}) == 2


def test_replace_one(coll: Collection) -> None:
    coll.insert_one({"_id": "d", "a": 1, "b": 2})
    new = {"c": 3}
    assert coll.replace_one({"a": 1}, new) == UpdateResult(1, 1)
    assert new == {"c": 3}
    assert snapshot(coll) == [{"_id": "d", "c": 3}]
    assert coll.replace_one({"_id": "d"}, {"_id": "d", "c": 3}) == UpdateResult(1, 0)
    with pytest.raises(ValidationError):
        coll.replace_one({"_id": "d"}, {"_id": "other"})
    with pytest.raises(ValidationError):
        coll.replace_one({"_id": "d"}, {"$set": {"c": 4}})
    r = coll.replace_one({"_id": "e"}, {"x": 1}, upsert=True)
    assert r.upserted_id == "e" and coll.find_one({"_id": "e"}) == {"_id": "e", "x": 1}
    assert coll.replace_one({"_id": "zz"}, {"x": 1}) == UpdateResult(0, 0)


def test_delete(coll: Collection) -> None:
    coll.insert_many([{"_id": str(i), "g": i % 3} for i in range(9)])
    assert coll.delete_one({"g": 1}) == 1
    assert coll.count({"g": 1}) == 2
    assert coll.delete_one({"g": 7}) == 0
    assert coll.delete_many({"g": {"$in": [0, 1]}}) == 5
    assert coll.delete_many({}) == 3
    assert coll.count() == 0


# -- indexes -------------------------------------------------------------------------

def test_unique_index_refuses_duplicates_and_changes_nothing(make_coll: MakeColl) -> None:
    users = make_coll(indexes=[Index((("login", 1),), unique=True, name="login")])
    users.insert_one({"_id": "a", "login": "ann"})
    users.insert_one({"_id": "b", "login": "bob"})
    before = snapshot(users)
    with pytest.raises(DuplicateKeyError) as err:
        users.insert_one({"_id": "c", "login": "ann"})
    assert err.value.field == "login" and isinstance(err.value, ExistsError)
    with pytest.raises(DuplicateKeyError):
        users.update_one({"_id": "b"}, {"$set": {"login": "ann"}})
    with pytest.raises(DuplicateKeyError):
        users.find_one_and_update({"_id": "b"}, {"$set": {"login": "ann"}})
    with pytest.raises(DuplicateKeyError):
        users.update_many({}, {"$set": {"login": "same"}})
    with pytest.raises(DuplicateKeyError):
        users.replace_one({"_id": "b"}, {"login": "ann"})
    with pytest.raises(DuplicateKeyError):
        users.update_one({"login": "cat"}, {"$set": {"x": 1}, "$setOnInsert": {"login": "ann"}},
                         upsert=True)
    assert snapshot(users) == before


def test_duplicate_id(coll: Collection) -> None:
    coll.insert_one({"_id": "a", "v": 1})
    with pytest.raises(DuplicateKeyError) as err:
        coll.insert_one({"_id": "a", "v": 2})
    assert err.value.field == "_id_"
    assert snapshot(coll) == [{"_id": "a", "v": 1}]


def test_insert_many_is_all_or_nothing(make_coll: MakeColl) -> None:
    c = make_coll(indexes=[Index((("k", 1),), unique=True)])
    c.insert_one({"_id": "x", "k": 0})
    with pytest.raises(DuplicateKeyError) as err:
        c.insert_many([{"_id": "a", "k": 1}, {"_id": "b", "k": 2}, {"_id": "c", "k": 1}])
    assert err.value.field == "k_1"
    with pytest.raises(DuplicateKeyError):
        c.insert_many([{"_id": "a", "k": 5}, {"_id": "x", "k": 6}])
    assert snapshot(c) == [{"_id": "x", "k": 0}]
    assert c.insert_many([{"_id": "a", "k": 1}, {"_id": "b", "k": 2}]) == ["a", "b"]


def test_compound_unique_index(make_coll: MakeColl) -> None:
    c = make_coll(indexes=[Index((("parentId", 1), ("name", 1)), unique=True)])
    p, q = ObjectId(), ObjectId()
    c.insert_many([{"parentId": p, "name": "a"}, {"parentId": q, "name": "a"},
                   {"parentId": p, "name": "b"}])
    with pytest.raises(DuplicateKeyError) as err:
        c.insert_one({"parentId": q, "name": "a"})
    assert err.value.field == "parentId_1_name_1"
    assert c.count() == 3


def test_unique_index_counts_missing_as_null(make_coll: MakeColl) -> None:
    c = make_coll(indexes=[Index((("k", 1),), unique=True)])
    c.insert_one({"_id": "a"})
    with pytest.raises(DuplicateKeyError):
        c.insert_one({"_id": "b", "k": None})
    with pytest.raises(DuplicateKeyError):
        c.insert_one({"_id": "c"})
    c.insert_one({"_id": "d", "k": 1})
    with pytest.raises(DuplicateKeyError):
        c.update_one({"_id": "d"}, {"$unset": {"k": 1}})
    assert snapshot(c) == [{"_id": "a"}, {"_id": "d", "k": 1}]


@pytest.mark.mongomock_gap(
    "its $type does not take a list of types (TypeError: unhashable type 'list' in "
    "filtering._type_op), so it cannot evaluate the partial filter the engine gives a "
    "unique sparse index")
def test_sparse_unique_index_ignores_missing_and_null(make_coll: MakeColl) -> None:
    c = make_coll(indexes=[Index((("sha", 1),), unique=True, sparse=True)])
    c.insert_many([{"_id": "a"}, {"_id": "b"}, {"_id": "c", "sha": None},
                   {"_id": "d", "sha": None}, {"_id": "e", "sha": "x"}])
    with pytest.raises(DuplicateKeyError):
        c.insert_one({"_id": "f", "sha": "x"})
    assert c.count() == 5
    assert [d["_id"] for d in c.find({"sha": "x"})] == ["e"]
    assert {d["_id"] for d in c.find({"sha": None})} == {"a", "b", "c", "d"}


def test_collection_is_idempotent_and_keeps_data(make_coll: MakeColl) -> None:
    ix = [Index((("k", 1),), unique=True)]
    first = make_coll(indexes=ix, name="same")
    first.insert_one({"_id": "a", "k": 1})
    second = make_coll(indexes=ix, name="same")
    assert second.count() == 1
    with pytest.raises(DuplicateKeyError):
        second.insert_one({"_id": "b", "k": 1})


def test_drop_collection(engine: Any, make_coll: MakeColl) -> None:
    c = make_coll(name="dropme")
    c.insert_one({"_id": "a"})
    engine.drop_collection("dropme")
    assert make_coll(name="dropme").count() == 0


# -- atomicity -----------------------------------------------------------------------

def run_threads(n: int, target: Any) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def run(i: int) -> None:
        try:
            start.wait()
            target(i)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


def test_concurrent_counter_increments_are_atomic(coll: Collection) -> None:
    threads, per_thread = 8, 50

    def work(_: int) -> None:
        for _ in range(per_thread):
            coll.find_one_and_update({"_id": "counter"}, {"$inc": {"n": 1}}, upsert=True)

    run_threads(threads, work)
    assert coll.find_one({"_id": "counter"}) == {"_id": "counter", "n": threads * per_thread}


def test_concurrent_claims_take_each_job_once(coll: Collection) -> None:
    jobs = 200
    coll.insert_many([{"_id": f"job{i:03d}", "state": "queued", "prio": i % 7}
                      for i in range(jobs)])
    claimed: list[list[str]] = [[] for _ in range(6)]

    def work(worker: int) -> None:
        while True:
            job = coll.find_one_and_update({"state": "queued"},
                                           {"$set": {"state": "taken", "by": worker}},
                                           sort=[("prio", 1), ("_id", 1)])
            if job is None:
                return
            assert job["by"] == worker
            claimed[worker].append(job["_id"])

    run_threads(len(claimed), work)
    every = Counter(j for jobs_of in claimed for j in jobs_of)
    assert len(every) == jobs and set(every.values()) == {1}
    for worker, mine in enumerate(claimed):
        assert coll.count({"by": worker}) == len(mine)


# -- TTL -----------------------------------------------------------------------------

def test_purge_expired(engine: Any, make_coll: MakeColl) -> None:
    c = make_coll(ttl_field="expires")
    now = datetime.now(UTC)
    c.insert_many([{"_id": "old", "expires": now - timedelta(hours=1)},
                   {"_id": "older", "expires": now - timedelta(days=400)},
                   {"_id": "future", "expires": now + timedelta(hours=1)},
                   {"_id": "none"}, {"_id": "notdate", "expires": "2000-01-01"}])
    purged = engine.purge_expired()
    assert 0 <= purged <= 2  # a server may have purged some on its own already
    assert {d["_id"] for d in c.find()} == {"future", "none", "notdate"}
    assert engine.purge_expired() == 0


# -- grouped writes ---------------------------------------------------------------------

def test_grouped_writes_give_the_same_results(engine: Any, make_coll: MakeColl) -> None:
    """Any engine: a group's calls land as they would one by one, nested
    groups included; an error inside leaves the block as usual."""
    coll = make_coll(indexes=(Index((("name", 1),), unique=True),))
    with engine.grouped():
        coll.insert_one({"_id": "a", "name": "a", "n": 0})
        with engine.grouped():
            coll.update_one({"_id": "a"}, {"$inc": {"n": 2}})
        assert coll.find_one({"_id": "a"}) == {"_id": "a", "name": "a", "n": 2}
    assert coll.find_one({"_id": "a"}) == {"_id": "a", "name": "a", "n": 2}
    with pytest.raises(DuplicateKeyError), engine.grouped():
        coll.insert_one({"_id": "b", "name": "a"})
    assert coll.find_one({"_id": "b"}) is None
