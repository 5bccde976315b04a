"""MongoDB engine specifics: the URI, the indexes it declares, and how driver
errors reach callers. The port's behaviour is in ``tests/contract/``.

No MongoDB server can be installed on the CI machine, so mongomock stands in
for one (``tests/mongo_stand_in.py``); the connection-failure test uses the
real driver against a port nobody listens on.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from pymongo import errors as mongo_errors

from joist.core.db.engine import CollectionSpec, DuplicateKeyError, Index
from joist.core.db.mongo import MongoEngine, database_name
from joist.core.db.mongo_collection import duplicate_key_error, mongo_errors_mapped
from joist.core.errors import StorageError, ValidationError
from joist.core.store import specs
from tests.mongo_stand_in import LockedMongoClient, fresh_db_name


@pytest.fixture
def engine() -> Iterator[MongoEngine]:
    with MongoEngine(f"mongodb://127.0.0.1/{fresh_db_name()}",
                     client=LockedMongoClient()) as eng:
        yield eng  # type: ignore[misc]


@pytest.mark.parametrize("uri,name", [
    ("mongodb://127.0.0.1:27017", "joist"), ("mongodb://h/", "joist"),
    ("mongodb://a:1,b:2/meta?replicaSet=rs0", "meta"),
    ("mongodb+srv://user:p%40ss@cluster.example.org/prod", "prod"),
])
def test_the_uri_path_names_the_database(uri: str, name: str) -> None:
    assert database_name(uri) == name


@pytest.mark.parametrize("uri", ["http://h/db", "mongodb:///db", "mongodb://h/a.b",
                                 "mongodb://h/a$b", "mongodb://h/" + "x" * 64, "nonsense"])
def test_bad_uris_are_refused(uri: str) -> None:
    with pytest.raises(ValidationError):
        database_name(uri)


def test_declared_indexes_are_created_once_and_follow_changes(engine: MongoEngine) -> None:
    engine.collection(specs.THROTTLE)
    engine.collection(specs.FILE)
    raw = engine.database
    throttle = raw["throttle"].index_information()
    # The declared index on the TTL field is the TTL index (MongoDB allows one per key).
    assert throttle["expires_1"]["expireAfterSeconds"] == 0 and "ttl" not in throttle
    files = raw["file"].index_information()
    assert files["sha512_1"].get("sparse") is True and "unique" not in files["sha512_1"]
    assert files["itemId_1_name_1__id_1"]["key"] == [("itemId", 1), ("name", 1), ("_id", 1)]
    # A changed declaration replaces the index; an unchanged one is left alone.
    first = CollectionSpec("c", indexes=(Index((("k", 1),), name="k"),))
    engine.collection(first).insert_one({"_id": "a", "k": 1})
    changed = CollectionSpec("c", indexes=(Index((("k", 1),), unique=True, name="k"),),
                             ttl_field="when")
    coll = engine.collection(changed)
    info = raw["c"].index_information()
    assert info["k"].get("unique") is True and info["ttl"]["key"] == [("when", 1)]
    with pytest.raises(DuplicateKeyError) as err:
        coll.insert_one({"_id": "b", "k": 1})
    assert err.value.field == "k"
    assert coll.count() == 1


def test_unique_indexes_through_arrays_are_refused_as_on_sqlite(engine: MongoEngine) -> None:
    spec = CollectionSpec("d", indexes=(Index((("tags", 1),), unique=True),),
                          array_fields=frozenset({"tags"}))
    with pytest.raises(ValidationError):
        engine.collection(spec)


def test_a_server_names_the_index_of_a_duplicate_key() -> None:
    exc = mongo_errors.DuplicateKeyError(
        'E11000 duplicate key error collection: joist.user index: email_1 dup key: '
        '{ email: "a@example.org" }', 11000)
    error = duplicate_key_error(exc, None, "user")
    assert isinstance(error, DuplicateKeyError) and error.field == "email_1"


@pytest.mark.parametrize("exc,kind", [
    (mongo_errors.NotPrimaryError("not primary"), StorageError),
    (mongo_errors.AutoReconnect("connection reset"), StorageError),
    (mongo_errors.WriteError("Cannot apply $inc to a value of non-numeric type", 14),
     ValidationError),
    (mongo_errors.OperationFailure("interrupted at shutdown", 11600), StorageError),
    (mongo_errors.OperationFailure("unknown operator: $foo", 2), ValidationError),
])
def test_driver_errors_become_core_errors(exc: Exception, kind: type) -> None:
    with pytest.raises(kind) as info, mongo_errors_mapped():
        raise exc
    assert type(info.value) is kind
    if kind is StorageError and not isinstance(exc, mongo_errors.OperationFailure):
        assert "try again" in str(info.value)  # a step-down or a cut: retry it


def test_an_unreachable_server_is_a_clear_storage_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = MongoEngine(f"mongodb://127.0.0.1:{port}/joist", server_selection_timeout_s=0.3)
    try:
        with pytest.raises(StorageError, match="unavailable, try again"):
            engine.collection(specs.USER)
    finally:
        engine.close()
