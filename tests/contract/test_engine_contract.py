"""The engine contract, reads: every engine must pass this (see conftest.py).

Writes, indexes and concurrency are in ``test_engine_contract_writes.py``;
random agreement with ``query.matches`` in ``test_engine_properties.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from bson import ObjectId

from joist.core.db import query
from joist.core.db.engine import Collection
from joist.core.errors import ValidationError

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
OIDS = sorted(ObjectId() for _ in range(3))


def ids(coll: Collection, filter: dict[str, Any] | None = None) -> set[str]:
    return {d["_id"] for d in coll.find(filter)}


def ordered(coll: Collection, filter: dict[str, Any] | None = None, **kw: Any) -> list[str]:
    return [d["_id"] for d in coll.find(filter, **kw)]


@pytest.fixture
def kinds(coll: Collection) -> Collection:
    """One document per kind of value in ``v``."""
    coll.insert_many([
        {"_id": "int0", "v": 0}, {"_id": "int1", "v": 1}, {"_id": "int5", "v": 5},
        {"_id": "float", "v": 2.5}, {"_id": "neg", "v": -3},
        {"_id": "true", "v": True}, {"_id": "false", "v": False},
        {"_id": "str", "v": "abc"}, {"_id": "empty", "v": ""},
        {"_id": "brace", "v": "{x}"}, {"_id": "tagged", "v": "\x1eO" + "0" * 24},
        {"_id": "date", "v": T0}, {"_id": "oid", "v": OIDS[1]},
        {"_id": "null", "v": None}, {"_id": "missing"},
        {"_id": "obj", "v": {"x": 1}}, {"_id": "bytes", "v": b"\x00\x01"},
    ])
    return coll


# -- values -------------------------------------------------------------------------

def test_insert_assigns_object_id_in_place_and_round_trips(coll: Collection) -> None:
    doc: dict[str, Any] = {"name": "a", "n": {"x": [1, 2.5, None, True, "s"]}}
    _id = coll.insert_one(doc)
    assert isinstance(_id, ObjectId) and doc["_id"] == _id
    assert coll.find_one({"_id": _id}) == doc


def test_string_ids_and_token_like_ids(coll: Collection) -> None:
    token = "f" * 64
    assert coll.insert_one({"_id": token, "k": 1}) == token
    assert coll.find_one({"_id": token}) == {"_id": token, "k": 1}
    assert coll.find_one({"_id": "f" * 63}) is None


def test_datetimes_are_utc_aware_and_truncated_to_milliseconds(coll: Collection) -> None:
    precise = datetime(2024, 1, 2, 3, 4, 5, 123987, tzinfo=UTC)
    paris = datetime(2024, 1, 2, 4, 4, 5, 123000, tzinfo=timezone(timedelta(hours=1)))
    naive = datetime(2024, 1, 2, 3, 4, 5, 123000)
    coll.insert_one({"_id": "d", "a": precise, "b": paris, "c": naive, "l": [precise]})
    got = coll.find_one({"_id": "d"})
    expected = datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
    assert got is not None
    for key in ("a", "b", "c"):
        assert got[key] == expected
        assert got[key].utcoffset() == timedelta(0)
    assert got["l"] == [expected]
    assert ids(coll, {"a": precise}) == {"d"}  # query values are truncated too
    assert ids(coll, {"b": naive}) == {"d"}
    assert ids(coll, {"a": {"$gt": expected - timedelta(milliseconds=1)}}) == {"d"}
    assert ids(coll, {"a": {"$gt": expected}}) == set()


def test_object_ids_round_trip_and_compare(coll: Collection) -> None:
    coll.insert_many([{"_id": f"o{i}", "ref": oid} for i, oid in enumerate(OIDS)])
    assert coll.find_one({"ref": OIDS[1]}) == {"_id": "o1", "ref": OIDS[1]}
    assert ids(coll, {"ref": {"$gte": OIDS[1]}}) == {"o1", "o2"}
    assert ids(coll, {"ref": {"$lt": OIDS[1]}}) == {"o0"}
    assert ids(coll, {"ref": str(OIDS[1])}) == set()  # a string is not an ObjectId


@pytest.mark.parametrize("text", ["\x1e", "\x1eO" + "a" * 24, "\x1eD2024-01-01T00:00:00.000",
                                  "\x1eS", "\x1eSx", "\x1eB", "a\x1eb"])
def test_strings_starting_with_the_tag_round_trip(coll: Collection, text: str) -> None:
    doc = {"_id": text, "s": text, "tags": [text, {"t": text}], "n": {"t": text}}
    coll.insert_one(doc)
    assert coll.find_one({"_id": text}) == doc
    assert ids(coll, {"s": text}) == {text}
    assert ids(coll, {"tags": text}) == {text}
    assert ids(coll, {"s": {"$in": [text, "zzz"]}}) == {text}
    assert ids(coll, {"s": {"$gte": text, "$lte": text}}) == {text}
    assert ids(coll, {"n": {"t": text}}) == {text}
    assert ids(coll, {"s": {"$regex": "^" + text.replace("\x1e", "\\x1e")}}) == {text}


def test_bytes_round_trip(coll: Collection) -> None:
    coll.insert_one({"_id": "b", "raw": b"\x00\xffdata"})
    assert coll.find_one({"raw": b"\x00\xffdata"}) == {"_id": "b", "raw": b"\x00\xffdata"}


@pytest.mark.parametrize("bad", [{"v": {1, 2}}, {"v": float("nan")}, {"v": object()},
                                 {"v": "nul\x00"}])
def test_unstorable_values_are_refused(coll: Collection, bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        coll.insert_one(dict(bad))
    assert coll.count() == 0


# -- equality, null, kinds -----------------------------------------------------------

@pytest.mark.mongomock_gap(
    "its equality uses Python's ==, so {'v': 1} matches True (MongoDB keeps bool and number"
    " apart)")
def test_equality_keeps_kinds_apart(kinds: Collection) -> None:
    assert ids(kinds, {"v": 1}) == {"int1"}
    assert ids(kinds, {"v": 1.0}) == {"int1"}
    assert ids(kinds, {"v": True}) == {"true"}
    assert ids(kinds, {"v": 0}) == {"int0"}
    assert ids(kinds, {"v": False}) == {"false"}
    assert ids(kinds, {"v": "{x}"}) == {"brace"}
    assert ids(kinds, {"v": '{"x":1}'}) == set()  # not the object {"x": 1}
    assert ids(kinds, {"v": "\x1eO" + "0" * 24}) == {"tagged"}
    assert ids(kinds, {"v": {"$eq": T0}}) == {"date"}
    assert ids(kinds, {"v": OIDS[1]}) == {"oid"}
    assert ids(kinds, {"v": b"\x00\x01"}) == {"bytes"}


def test_none_means_null_or_missing(kinds: Collection) -> None:
    assert ids(kinds, {"v": None}) == {"null", "missing"}
    assert ids(kinds, {"v": {"$eq": None}}) == {"null", "missing"}
    assert "null" not in ids(kinds, {"v": {"$ne": None}})
    assert len(ids(kinds, {"v": {"$ne": None}})) == kinds.count() - 2
    assert ids(kinds, {"v": {"$exists": False}}) == {"missing"}
    assert "null" in ids(kinds, {"v": {"$exists": True}})
    assert ids(kinds, {"v": {"$in": [None, 5]}}) == {"null", "missing", "int5"}
    assert "missing" in ids(kinds, {"v": {"$nin": [5]}})


@pytest.mark.mongomock_gap(
    "it compares sub-documents as Python dicts, ignoring field order, so {'x': 1, 'y': 2} "
    "matches {'y': 2, 'x': 1}")
def test_whole_subdocument_equality_is_ordered(coll: Collection) -> None:
    coll.insert_many([{"_id": "xy", "n": {"x": 1, "y": 2}}, {"_id": "yx", "n": {"y": 2, "x": 1}},
                      {"_id": "xf", "n": {"x": 1.0, "y": 2}}, {"_id": "x", "n": {"x": 1}}])
    assert ids(coll, {"n": {"x": 1, "y": 2}}) == {"xy", "xf"}
    assert ids(coll, {"n": {"y": 2, "x": 1}}) == {"yx"}
    assert ids(coll, {"n": {"$in": [{"x": 1}, {"z": 0}]}}) == {"x"}
    assert ids(coll, {"n": {"$ne": {"x": 1}}}) == {"xy", "yx", "xf"}
    assert ids(coll, {"n.x": 1}) == {"xy", "yx", "xf", "x"}


@pytest.mark.mongomock_gap(
    "{'a.b': None} does not match a document whose 'a' is the number 5 (for MongoDB the "
    "path leads nowhere, so it is missing and null matches)")
def test_dotted_paths(coll: Collection) -> None:
    coll.insert_many([{"_id": "deep", "a": {"b": {"c": 3}}}, {"_id": "flat", "a": 5},
                      {"_id": "none", "a": {"b": None}}, {"_id": "empty", "a": {}}])
    assert ids(coll, {"a.b.c": 3}) == {"deep"}
    assert ids(coll, {"a.b.c": {"$gte": 1}}) == {"deep"}
    assert ids(coll, {"a.b": None}) == {"flat", "none", "empty"}
    assert ids(coll, {"a.b": {"$exists": True}}) == {"deep", "none"}
    assert ids(coll, {"a.b.c": {"$ne": 3}}) == {"flat", "none", "empty"}


# -- comparisons ---------------------------------------------------------------------

def test_comparisons_follow_type_bracketing(kinds: Collection) -> None:
    assert ids(kinds, {"v": {"$gt": 0}}) == {"int1", "int5", "float"}
    assert ids(kinds, {"v": {"$gte": 0}}) == {"int0", "int1", "int5", "float"}
    assert ids(kinds, {"v": {"$lt": 1}}) == {"int0", "neg"}
    assert ids(kinds, {"v": {"$lte": 1}}) == {"int0", "int1", "neg"}
    assert ids(kinds, {"v": {"$gt": -100, "$lt": 2}}) == {"int0", "int1", "neg"}
    assert ids(kinds, {"v": {"$gte": ""}}) == {"str", "empty", "brace", "tagged"}
    assert ids(kinds, {"v": {"$gt": "a"}}) == {"str", "brace"}
    assert ids(kinds, {"v": {"$lt": "b"}}) == {"str", "empty", "tagged"}
    assert ids(kinds, {"v": {"$lt": "\x1f"}}) == {"empty", "tagged"}
    assert ids(kinds, {"v": {"$lte": T0}}) == {"date"}
    assert ids(kinds, {"v": {"$gt": T0 - timedelta(days=1)}}) == {"date"}
    assert ids(kinds, {"v": {"$gt": OIDS[0]}}) == {"oid"}
    assert ids(kinds, {"v": {"$lt": OIDS[2]}}) == {"oid"}


@pytest.mark.mongomock_gap(
    "its $nin uses Python's ==, so $nin [1, 0] also excludes True and False")
def test_in_and_nin(kinds: Collection) -> None:
    assert ids(kinds, {"v": {"$in": [1, "abc", T0, True]}}) == {"int1", "str", "date", "true"}
    assert ids(kinds, {"v": {"$in": []}}) == set()
    assert ids(kinds, {"v": {"$nin": []}}) == ids(kinds)
    assert ids(kinds, {"v": {"$nin": [1, 0, None]}}) == ids(kinds) - {
        "int1", "int0", "null", "missing"}
    many = [*range(100, 200), 5]
    assert ids(kinds, {"v": {"$in": many}}) == {"int5"}
    assert ids(kinds, {"_id": {"$in": ["str", "oid", "nope"]}}) == {"str", "oid"}


@pytest.mark.mongomock_gap(
    "its equality uses Python's ==, so {'v': 1} inside $or matches True")
def test_logical_operators(kinds: Collection) -> None:
    assert ids(kinds, {"$or": [{"v": 1}, {"v": "abc"}]}) == {"int1", "str"}
    assert ids(kinds, {"$and": [{"v": {"$gt": 0}}, {"v": {"$lt": 2}}]}) == {"int1"}
    assert ids(kinds, {"$nor": [{"v": {"$gte": 0}}, {"v": None}]}) == ids(kinds) - {
        "int0", "int1", "int5", "float", "null", "missing"}
    assert ids(kinds, {"$or": [{"_id": "str"}], "v": "abc"}) == {"str"}


def test_regex(coll: Collection) -> None:
    coll.insert_many([{"_id": "a", "s": "Alpha"}, {"_id": "b", "s": "alphabet"},
                      {"_id": "c", "s": "beta.alpha"}, {"_id": "d", "s": 42},
                      {"_id": "e", "s": {"alpha": 1}}, {"_id": "f", "tags": ["xalpha", "y"]},
                      {"_id": "g", "s": "al"}, {"_id": "h", "s": "[alpha]"}])
    assert ids(coll, {"s": {"$regex": "^al"}}) == {"b", "g"}
    assert ids(coll, {"s": {"$regex": "^alp"}}) == {"b"}
    assert ids(coll, {"s": {"$regex": "^al", "$options": "i"}}) == {"a", "b", "g"}
    assert ids(coll, {"s": {"$regex": "alpha"}}) == {"b", "c", "h"}
    assert ids(coll, {"s": {"$regex": r"^beta\.a"}}) == {"c"}
    assert ids(coll, {"s": {"$regex": r"^\[al"}}) == {"h"}
    assert ids(coll, {"s": {"$regex": "a$"}}) == {"a", "c"}
    assert ids(coll, {"s": {"$regex": "^alx?"}}) == {"b", "g"}
    assert ids(coll, {"s": {"$regex": "^alp|beta"}}) == {"b", "c"}
    assert ids(coll, {"tags": {"$regex": "^xa"}}) == {"f"}
    assert ids(coll, {"_id": {"$regex": "^[ab]$"}}) == {"a", "b"}


# -- arrays --------------------------------------------------------------------------

@pytest.fixture
def arrays(coll: Collection) -> Collection:
    coll.insert_many([
        {"_id": "ab", "tags": ["a", "b"], "groups": [OIDS[0], OIDS[1]]},
        {"_id": "b", "tags": ["b"], "groups": [OIDS[1]]},
        {"_id": "empty", "tags": [], "groups": []},
        {"_id": "nums", "tags": [1, 5, 9]},
        {"_id": "nested", "tags": [["a", "b"], "c"]},
        {"_id": "withnull", "tags": [None, "z"]},
        {"_id": "none"},
        {"_id": "acl", "access": {"users": [{"id": "u1", "level": 0},
                                            {"id": "u2", "level": 2}]}},
        {"_id": "acl2", "access": {"users": [{"id": "u1", "level": 2}, "junk"]}},
    ])
    return coll


def test_array_equality_matches_any_element(arrays: Collection) -> None:
    assert ids(arrays, {"tags": "b"}) == {"ab", "b"}
    assert ids(arrays, {"groups": OIDS[0]}) == {"ab"}
    assert ids(arrays, {"tags": {"$in": ["a", "c"]}}) == {"ab", "nested"}
    assert ids(arrays, {"tags": ["a", "b"]}) == {"ab", "nested"}  # whole array or element
    assert ids(arrays, {"tags": ["b", "a"]}) == set()
    assert ids(arrays, {"tags": []}) == {"empty"}
    assert ids(arrays, {"tags": None}) == {"withnull", "none", "acl", "acl2"}


def test_array_negations_mean_no_element(arrays: Collection) -> None:
    assert ids(arrays, {"tags": {"$ne": "b"}}) == ids(arrays) - {"ab", "b"}
    assert ids(arrays, {"tags": {"$nin": ["a", "z"]}}) == ids(arrays) - {"ab", "withnull"}
    assert "empty" in ids(arrays, {"tags": {"$ne": None}})
    assert "withnull" not in ids(arrays, {"tags": {"$ne": None}})


def test_array_comparisons_match_any_element(arrays: Collection) -> None:
    assert ids(arrays, {"tags": {"$gt": 8}}) == {"nums"}
    # Each condition may be met by a different element...
    assert ids(arrays, {"tags": {"$gt": 4, "$lt": 2}}) == {"nums"}
    # ...unless $elemMatch asks for one element meeting both.
    assert ids(arrays, {"tags": {"$elemMatch": {"$gt": 4, "$lt": 2}}}) == set()
    assert ids(arrays, {"tags": {"$elemMatch": {"$gt": 4, "$lt": 6}}}) == {"nums"}
    # $elemMatch needs an array: never a missing or null field.
    arrays.insert_one({"_id": "nulltags", "tags": None})
    assert ids(arrays, {"tags": {"$elemMatch": {"$ne": 1}}}) == {
        "ab", "b", "nested", "withnull", "nums"}
    assert ids(arrays, {"tags": {"$exists": True}}) == ids(arrays) - {"none", "acl", "acl2"}


def test_elem_match_on_subdocuments(arrays: Collection) -> None:
    assert ids(arrays, {"access.users": {"$elemMatch": {"id": "u1", "level": {"$gte": 1}}}}) \
        == {"acl2"}
    # Without $elemMatch the two conditions may hold on different elements.
    assert ids(arrays, {"access.users.id": "u1", "access.users.level": {"$gte": 1}}) \
        == {"acl", "acl2"}
    assert ids(arrays, {"access.users.id": "u2"}) == {"acl"}
    assert ids(arrays, {"access.users.id": {"$in": ["u2", "u9"]}}) == {"acl"}
    assert ids(arrays, {"access.users.id": {"$ne": "u2"}}) == ids(arrays) - {"acl"}
    assert ids(arrays, {"access.users.level": {"$exists": True}}) == {"acl", "acl2"}
    assert ids(arrays, {"access.users.level": {"$exists": False}}) == ids(arrays) - {
        "acl", "acl2"}
    assert ids(arrays, {"access.users": {"$elemMatch": {"$or": [{"level": 2}, {"id": "x"}]}}}) \
        == {"acl", "acl2"}
    assert ids(arrays, {"access.users": {"$elemMatch": {"id": None}}}) == set()


# -- refusals ------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    {"$where": "1"}, {"v": {"$type": 2}}, {"v": {"$not": {"$gt": 1}}}, {"v": {"$size": 1}},
    {"v": {"$gt": 1, "w": 2}}, {"v": {"$regex": "a", "$options": "m"}},
    {"v": {"$options": "i"}}, {"v": {"$exists": 1}}, {"v": {"$gt": None}},
    {"v": {"$gt": [1]}}, {"v": {"$gt": True}}, {"v": {"$in": 5}}, {"$or": []},
    {"$or": {"v": 1}}, {"a.0": 1}, {"a..b": 1}, {"": 1}, {"v": {"$regex": "("}},
    {"v": {"$elemMatch": {"$gt": 1}}},  # v is not a declared array
    {"access.users.id": None}, {"access.users.id": {"$in": ["u", None]}},
    {"tags": {"$elemMatch": {"$elemMatch": {"$gt": 1}}}}, {"v": float("nan")},
])
def test_filters_outside_the_subset_are_refused(coll: Collection, bad: dict[str, Any]) -> None:
    coll.insert_one({"_id": "x", "v": 1})
    with pytest.raises(ValidationError):
        coll.find(bad)
    with pytest.raises(ValidationError):
        query.validate_filter(bad, array_fields=coll.spec.array_fields)


# -- sort, skip, limit, projection, count, distinct -----------------------------------

def test_sort_puts_missing_and_null_first_ascending(coll: Collection) -> None:
    coll.insert_many([{"_id": "b", "n": 2}, {"_id": "m"}, {"_id": "a", "n": 1.5},
                      {"_id": "z", "n": None}, {"_id": "c", "n": -7}])
    assert ordered(coll, sort=[("n", 1), ("_id", 1)]) == ["m", "z", "c", "a", "b"]
    assert ordered(coll, sort=[("n", -1), ("_id", -1)]) == ["b", "a", "c", "z", "m"]
    assert ordered(coll, sort=[("_id", -1)]) == ["z", "m", "c", "b", "a"]


def test_sort_strings_dates_and_compound_keys(coll: Collection) -> None:
    coll.insert_many([
        {"_id": "1", "p": 1, "s": "b", "t": T0},
        {"_id": "2", "p": 1, "s": "a", "t": T0 + timedelta(milliseconds=1)},
        {"_id": "3", "p": 2, "s": "B", "t": T0 - timedelta(days=400)},
        {"_id": "4", "p": 2, "s": "é", "t": T0 + timedelta(days=1)},
        {"_id": "5", "p": 1, "s": "a", "t": T0 - timedelta(seconds=1)},
    ])
    assert ordered(coll, sort=[("s", 1), ("_id", 1)]) == ["3", "2", "5", "1", "4"]
    assert ordered(coll, sort=[("t", 1)]) == ["3", "5", "1", "2", "4"]
    assert ordered(coll, sort=[("p", -1), ("s", 1), ("_id", -1)]) == ["3", "4", "5", "2", "1"]
    assert ordered(coll, {"p": 1}, sort=[("s", 1), ("_id", 1)], skip=1, limit=1) == ["5"]
    assert ordered(coll, sort=[("_id", 1)], skip=3) == ["4", "5"]
    assert ordered(coll, sort=[("_id", 1)], limit=0) == ["1", "2", "3", "4", "5"]
    assert ordered(coll, sort=[("_id", 1)], skip=10) == []
    first = coll.find_one({"p": 2}, sort=[("t", -1)])
    assert first is not None and first["_id"] == "4"


@pytest.mark.parametrize("bad", [[("a", 2)], [("a", True)], [("a.0", 1)], "a", [("tags", 1)],
                                 [("access.users.id", 1)], [("a", 1), ("a", -1)]])
def test_bad_sorts_are_refused(coll: Collection, bad: Any) -> None:
    with pytest.raises(ValidationError):
        coll.find({}, sort=bad)


def test_bad_skip_and_limit_are_refused(coll: Collection) -> None:
    for kw in ({"skip": -1}, {"limit": -1}):
        with pytest.raises(ValidationError):
            coll.find({}, **kw)


@pytest.mark.mongomock_gap(
    "projecting 'items.k' through an array that holds a non-document element raises "
    "AttributeError inside mongomock")
def test_projection(coll: Collection) -> None:
    coll.insert_one({"_id": "p", "a": 1, "b": {"c": 2, "d": 3}, "e": 4,
                     "items": [{"k": 1, "v": 2}, {"v": 3}, 7]})
    assert coll.find_one({}, projection=["a"]) == {"_id": "p", "a": 1}
    assert coll.find_one({}, projection=["b.c", "e"]) == {"_id": "p", "b": {"c": 2}, "e": 4}
    assert coll.find_one({}, projection=["items.k"]) == {"_id": "p", "items": [{"k": 1}, {}]}
    assert coll.find({}, projection=["zzz"]) == [{"_id": "p"}]
    with pytest.raises(ValidationError):
        coll.find({}, projection=["b", "b.c"])


def test_count(kinds: Collection) -> None:
    assert kinds.count() == 17
    assert kinds.count({}) == 17
    assert kinds.count({"v": {"$gte": 1}}) == 3


def test_distinct(arrays: Collection) -> None:
    got = arrays.distinct("tags")
    assert sorted(got, key=repr) == sorted(["a", "b", 1, 5, 9, ["a", "b"], "c", None, "z"],
                                           key=repr)
    assert sorted(arrays.distinct("tags", {"_id": {"$in": ["ab", "b"]}})) == ["a", "b"]
    assert sorted(arrays.distinct("access.users.id")) == ["u1", "u2"]
    assert sorted(arrays.distinct("_id", {"tags": "b"})) == ["ab", "b"]
    assert arrays.distinct("nothing") == []


def test_distinct_on_scalars_keeps_null_and_kinds(kinds: Collection) -> None:
    got = kinds.distinct("v")
    assert len(got) == 16  # every document but the one missing v
    assert None in got and True in got and 1 in got
    assert sum(1 for v in got if v is True or (type(v) is int and v == 1)) == 2
