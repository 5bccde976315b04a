"""Random checks that an engine agrees with the pure-Python reference.

``query.matches``, ``query.sort_key`` and ``query.apply_update`` define the
semantics; for SQLite this checks the SQL translation and the value encoding,
for MongoDB it checks the reference itself against the server.

Documents respect the declared-array rule: only ``tags`` and ``items`` (the
declared array fields) ever hold arrays.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from joist.core.db import query
from joist.core.db.codec import norm_datetime
from joist.core.db.engine import Collection
from joist.core.errors import ValidationError
from tests.contract.conftest import MakeColl

ARRAYS = ("tags", "items")
OIDS = [ObjectId(f"{i:024x}") for i in (1, 2, 0xFFFFFF)]
T0 = datetime(2024, 1, 1, tzinfo=UTC)
DATES = [T0, T0 + timedelta(milliseconds=1, microseconds=700), T0 - timedelta(days=30),
         datetime(2024, 1, 1, 0, 0, 0, 1000)]  # the last one naive (UTC)

texts = st.text(alphabet="ab{}[]\x1eSO\u00e9", max_size=3)
numbers = st.one_of(st.integers(-2, 3), st.sampled_from([0.5, 1.0, -1.5, 2.0, 0.0]))
scalars = st.one_of(st.none(), st.booleans(), numbers, texts, st.sampled_from(OIDS),
                    st.sampled_from(DATES))
range_values = st.one_of(numbers, texts, st.sampled_from(OIDS), st.sampled_from(DATES))
small_docs = st.dictionaries(st.sampled_from(["x", "y"]), scalars, max_size=2)
values = st.one_of(scalars, small_docs)
elements = st.one_of(scalars, st.lists(scalars, max_size=2))
items = st.one_of(st.dictionaries(st.sampled_from(["k", "v"]), scalars, max_size=2), scalars)
documents = st.fixed_dictionaries({}, optional={
    "a": values, "b": scalars, "n": values,
    "tags": st.one_of(st.none(), st.lists(elements, max_size=3)),
    "items": st.one_of(st.none(), st.lists(items, max_size=3)),
})
PATTERNS = ["^a", "^ab", "a", "b$", "^\\{", "^a.*b", "^a|b", "^$", "^O", "^\\x1e", "é", "^[ab]+$"]


def conditions(path: str) -> st.SearchStrategy[Any]:
    through = path.startswith("items.")
    eq = scalars.filter(lambda v: v is not None) if through else (
        values if path in ("n", "a") else scalars)
    ops = [
        eq,
        st.fixed_dictionaries({"$eq": eq}),
        st.fixed_dictionaries({"$ne": eq}),
        st.fixed_dictionaries({"$in": st.lists(eq, max_size=3)}),
        st.fixed_dictionaries({"$nin": st.lists(eq, max_size=3)}),
        st.fixed_dictionaries({"$exists": st.booleans()}),
        st.fixed_dictionaries({"$regex": st.sampled_from(PATTERNS)},
                              optional={"$options": st.just("i")}),
        st.dictionaries(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), range_values,
                        min_size=1, max_size=2),
    ]
    if path == "tags":
        ops.append(st.lists(scalars, max_size=2))  # whole-array equality
        ops.append(st.fixed_dictionaries({"$elemMatch": st.dictionaries(
            st.sampled_from(["$gt", "$lte", "$ne"]), range_values, min_size=1, max_size=2)}))
    if path == "items":
        ops.append(st.fixed_dictionaries({"$elemMatch": st.one_of(
            st.fixed_dictionaries({"k": scalars}), st.fixed_dictionaries(
                {"k": st.fixed_dictionaries({"$in": st.lists(scalars, max_size=2)})},
                optional={"v": st.fixed_dictionaries({"$gte": range_values})}))}))
    return st.one_of(ops)


PATHS = ["a", "b", "n", "n.x", "n.y", "_id", "tags", "items", "items.k", "items.v"]
field_filters = st.sampled_from(PATHS).flatmap(
    lambda p: st.fixed_dictionaries({p: conditions(p)}))
simple_filters = st.lists(field_filters, min_size=1, max_size=2).map(
    lambda fs: {k: v for f in fs for k, v in f.items()})
filters = st.one_of(
    simple_filters,
    st.builds(lambda op, subs: {op: subs}, st.sampled_from(["$and", "$or", "$nor"]),
              st.lists(simple_filters, min_size=1, max_size=3)),
)

# JOIST_HYPOTHESIS_EXAMPLES=5000 for a longer hunt.
SETTINGS = settings(max_examples=int(os.environ.get("JOIST_HYPOTHESIS_EXAMPLES", "250")),
                    deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@pytest.fixture
def pcoll(make_coll: MakeColl) -> Collection:
    return make_coll(array_fields=ARRAYS)


def load(coll: Collection, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    coll.delete_many({})
    stored = [{"_id": f"d{i}", **d} for i, d in enumerate(docs)]
    coll.insert_many([dict(d) for d in stored])
    return stored


@pytest.mark.mongomock_gap(
    "its matching uses Python's == (docs=[{'a': False}] match {'a': 0}) and ignores sub-"
    "document field order; the named tests of test_engine_contract.py show each gap")
@SETTINGS
@given(docs=st.lists(documents, max_size=10), fs=st.lists(filters, min_size=1, max_size=4))
def test_find_agrees_with_matches(pcoll: Collection, docs: list[dict[str, Any]],
                                  fs: list[dict[str, Any]]) -> None:
    stored = load(pcoll, docs)
    for f in fs:
        try:
            query.validate_filter(f, array_fields=frozenset(ARRAYS))
        except ValidationError:
            assume(False)
        expected = {d["_id"] for d in stored if query.matches(d, f)}
        assert {d["_id"] for d in pcoll.find(f)} == expected, f
        assert pcoll.count(f) == len(expected), f


sortable = st.fixed_dictionaries({}, optional={
    "s": st.one_of(st.none(), texts), "num": st.one_of(st.none(), numbers),
    "t": st.sampled_from(DATES), "o": st.sampled_from(OIDS)})
sort_specs = st.lists(st.tuples(st.sampled_from(["s", "num", "t", "o"]), st.sampled_from([1, -1])),
                      min_size=1, max_size=3, unique_by=lambda k: k[0])


@SETTINGS
@given(docs=st.lists(sortable, max_size=12), spec=sort_specs, skip=st.integers(0, 3),
       limit=st.integers(0, 5))
def test_sort_agrees_with_sort_key(pcoll: Collection, docs: list[dict[str, Any]],
                                   spec: list[tuple[str, int]], skip: int, limit: int) -> None:
    stored = load(pcoll, docs)
    full = [*spec, ("_id", 1)]
    expected = [d["_id"] for d in sorted(stored, key=query.sort_key(full))]
    expected = expected[skip:skip + limit] if limit else expected[skip:]
    assert [d["_id"] for d in pcoll.find({}, sort=full, skip=skip, limit=limit)] == expected


update_paths = st.sampled_from(["a", "b", "n.x", "tags", "items"])
update_args: dict[str, st.SearchStrategy[Any]] = {
    "$set": values, "$unset": st.just(""), "$inc": numbers, "$min": range_values,
    "$max": range_values, "$push": scalars, "$addToSet": scalars,
    "$pull": st.one_of(scalars, st.fixed_dictionaries({"$gte": range_values})),
}
updates = st.dictionaries(
    st.sampled_from(sorted(update_args)),
    st.just(None), min_size=1, max_size=2,
).flatmap(lambda ops: st.fixed_dictionaries({
    op: st.dictionaries(update_paths, update_args[op], min_size=1, max_size=1)
    for op in ops}))


@pytest.mark.mongomock_gap(
    "its update operators crash with TypeError on a path through null ({'n': None} with "
    "{'$addToSet': {'n.x': None}} or {'$pull': {'n.x': None}}) instead of refusing or "
    "ignoring it")
@SETTINGS
@given(doc=documents, update=updates)
def test_update_agrees_with_apply_update(pcoll: Collection, doc: dict[str, Any],
                                         update: dict[str, Any]) -> None:
    (stored,) = load(pcoll, [doc])
    before = pcoll.find_one({"_id": "d0"})
    try:
        query.validate_update(update)
    except ValidationError:
        assume(False)
    try:
        expected = query.apply_update(stored, update)
    except ValidationError:
        with pytest.raises(ValidationError):
            pcoll.update_one({"_id": "d0"}, update)
        assert pcoll.find_one({"_id": "d0"}) == before
        return
    assume(all(isinstance(expected.get(k, []), list | type(None)) for k in ARRAYS))
    assume(not any(isinstance(expected.get(k), list) for k in ("a", "b")))
    pcoll.update_one({"_id": "d0"}, update)
    got = pcoll.find_one({"_id": "d0"})
    assert got is not None
    assert query.matches(got, {"_id": "d0"})
    assert _canon(got) == _canon(expected)


def _canon(value: Any) -> Any:
    """Comparable form: datetimes as stored (UTC, milliseconds)."""
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canon(v) for v in value]
    if isinstance(value, datetime):
        return norm_datetime(value)
    return value
