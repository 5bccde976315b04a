"""Fixtures and helpers for the assetstore adapter contract suite.

Each backend plugs in through an ``AdapterFactory``: it builds adapters over
one backend (a fresh instance = a restarted process), lists the blobs that are
physically stored, and tells a child process how to build the same adapter.
S3 and GridFS add a factory class and a name in ``FACTORIES``.

GridFS runs on mongomock (no MongoDB server can be installed on the CI machine;
see ``tests/mongo_stand_in.py``), and also on the server ``JOIST_TEST_MONGO_URI``
names when it is set.
"""

from __future__ import annotations

import abc
import collections
import hashlib
import io
import json
import os
import queue
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from joist.core.assetstores.base import AssetstoreAdapter
from joist.core.assetstores.filesystem import BLOB_REFS_SPEC, SHA512_RE, FilesystemAssetstore
from joist.core.assetstores.gridfs import GridFSAssetstore
from joist.core.db.engine import Engine
from joist.core.db.sqlite import SQLiteEngine
from tests.mongo_stand_in import REAL_URI, LockedMongoClient, enable_gridfs, fresh_db_name

MiB = 1 << 20


def open_engine(path: Path | str) -> Engine:
    """The embedded metadata store (a new connection each time)."""
    return SQLiteEngine(path)


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic bytes that do not compress or repeat across seeds."""
    return random.Random(seed).randbytes(size)


class AdapterFactory(abc.ABC):
    """Builds adapters over one backend that lives as long as the test."""

    name: str

    @abc.abstractmethod
    def open(self) -> AssetstoreAdapter:
        """A new adapter instance: nothing shared in memory with earlier ones."""

    @abc.abstractmethod
    def stored_blobs(self) -> set[str]:
        """Keys of the blobs the backend physically holds."""

    @abc.abstractmethod
    def child_args(self) -> dict[str, Any]:
        """JSON that ``build_adapter`` turns into the same adapter in a child."""

    def blob_key(self, blob: dict[str, Any]) -> str:
        return blob["sha512"]

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release what the factory opened."""


class FilesystemFactory(AdapterFactory):
    name = "filesystem"

    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "assetstore"
        self.db = tmp / "meta.db"
        self.engines: list[Engine] = []

    def open(self) -> FilesystemAssetstore:
        engine = open_engine(self.db)  # a new connection, as a restarted process has
        self.engines.append(engine)
        return FilesystemAssetstore(self.root, refs=engine.collection(BLOB_REFS_SPEC),
                                    assetstore_id="as-test")

    def stored_blobs(self) -> set[str]:
        return {name for _, _, names in os.walk(self.root) for name in names
                if SHA512_RE.match(name)}

    def child_args(self) -> dict[str, Any]:
        return {"kind": self.name, "root": str(self.root), "db": str(self.db),
                "id": "as-test"}

    def close(self) -> None:
        for engine in self.engines:
            engine.close()


class S3Factory(AdapterFactory):
    """An S3 assetstore on a fresh bucket of the session's moto server (a real
    HTTP S3 endpoint on 127.0.0.1; see ``tests/s3env.py``)."""

    name = "s3"

    def __init__(self, tmp: Path) -> None:
        from tests.s3env import shared_moto
        self.moto = shared_moto()
        self.bucket = self.moto.new_bucket("contract")
        self.db = tmp / "meta.db"
        self.engines: list[Engine] = []

    def open(self) -> AssetstoreAdapter:
        engine = open_engine(self.db)
        self.engines.append(engine)
        return _s3_adapter(self.child_args(), engine)

    def stored_blobs(self) -> set[str]:
        """SHA-512 of every blob object (hashed here: the bytes, not the books)."""
        from joist.core.assetstores.s3_keys import UploadKeys
        client, keys = self.moto.client(), UploadKeys("")
        found = set()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for obj in page.get("Contents") or ():
                if keys.parse_blob(obj["Key"]) is not None:
                    body = client.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"]
                    found.add(hashlib.sha512(body.read()).hexdigest())
        return found

    def child_args(self) -> dict[str, Any]:
        return {"kind": self.name, "fields": self.moto.fields(self.bucket),
                "db": str(self.db), "id": "as-test"}

    def close(self) -> None:
        for engine in self.engines:
            engine.close()


def _s3_adapter(args: dict[str, Any], engine: Engine) -> AssetstoreAdapter:
    from joist.core.assetstores.s3 import S3Assetstore
    return S3Assetstore.from_document({"_id": args["id"], **args["fields"]}, engine)


class GridFSFactory(AdapterFactory):
    """GridFS on mongomock: every ``open()`` shares the one in-memory "server"."""

    name = "gridfs"

    def __init__(self, tmp: Path) -> None:
        enable_gridfs()  # pymongo's GridOut (deep checks) must accept mongomock objects
        self.client = self.connect()
        self.db_name = fresh_db_name("joist_gridfs")

    def connect(self) -> Any:
        return LockedMongoClient()

    def open(self) -> GridFSAssetstore:
        return GridFSAssetstore(self.client.get_database(self.db_name), bucket="fs",
                                assetstore_id="as-test", lease_s=2.0)

    def stored_blobs(self) -> set[str]:
        files = self.client.get_database(self.db_name).get_collection("fs.files")
        return {doc["metadata"]["sha512"] for doc in files.find({})}

    def child_args(self) -> dict[str, Any]:
        pytest.skip("mongomock lives in this process's memory: a child process cannot "
                    "reach it (this test runs against a real server when "
                    "JOIST_TEST_MONGO_URI is set)")


class GridFSServerFactory(GridFSFactory):
    """GridFS on the real MongoDB server of ``JOIST_TEST_MONGO_URI``."""

    name = "gridfs-server"

    def connect(self) -> Any:
        import pymongo
        return pymongo.MongoClient(REAL_URI, tz_aware=True, serverSelectionTimeoutMS=10_000)

    def child_args(self) -> dict[str, Any]:
        return {"kind": "gridfs", "uri": REAL_URI, "db": self.db_name}

    def close(self) -> None:
        self.client.drop_database(self.db_name)
        self.client.close()


def _gridfs_adapter(args: dict[str, Any]) -> AssetstoreAdapter:
    import pymongo
    client = pymongo.MongoClient(args["uri"], tz_aware=True)
    return GridFSAssetstore(client.get_database(args["db"]), bucket="fs",
                            assetstore_id="as-test", lease_s=2.0)


FACTORIES = {"filesystem": FilesystemFactory, "s3": S3Factory}
FACTORIES["gridfs"] = GridFSFactory
if REAL_URI:
    FACTORIES["gridfs-server"] = GridFSServerFactory


def build_adapter(args: dict[str, Any]) -> AssetstoreAdapter:
    """The adapter ``child_args`` describes (run in a child process)."""
    if args["kind"] == "filesystem":
        engine = open_engine(args["db"])
        return FilesystemAssetstore(args["root"], refs=engine.collection(BLOB_REFS_SPEC),
                                    assetstore_id=args["id"])
    if args["kind"] == "s3":
        return _s3_adapter(args, open_engine(args["db"]))
    if args["kind"] == "gridfs":
        return _gridfs_adapter(args)
    raise ValueError(args["kind"])


class Ledger:
    """Stands in for the upload and file records a service would keep, in the
    order the contract asks of callers, so ``check`` can be given the truth."""

    def __init__(self, factory: AdapterFactory, adapter: AssetstoreAdapter) -> None:
        self.factory = factory
        self.adapter = adapter
        self.uploads: dict[str, dict[str, Any]] = {}
        self.files: list[dict[str, Any]] = []

    def begin(self, size: int) -> dict[str, Any]:
        upload = {"_id": str(ObjectId()), "size": size, "received": 0, "state": {}}
        upload["state"] = self.adapter.begin_upload(upload)
        self.uploads[upload["_id"]] = upload
        return upload

    def write(self, upload: dict[str, Any], offset: int, data: bytes | Any,
              length: int | None = None) -> int:
        stream = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
        received, state = self.adapter.write_chunk(upload, offset, stream, length)
        upload.update(received=received, state=state)
        return received

    def finalize(self, upload: dict[str, Any]) -> dict[str, Any]:
        blob = self.adapter.finalize_upload(upload)
        self.files.append(blob)
        del self.uploads[upload["_id"]]
        self.adapter.forget_upload(upload)  # as the upload service does
        return blob

    def upload(self, data: bytes, chunk: int | None = None) -> dict[str, Any]:
        upload = self.begin(len(data))
        step = chunk or max(1, len(data))
        for offset in range(0, len(data), step):
            self.write(upload, offset, data[offset:offset + step])
        return self.finalize(upload)

    def abort(self, upload: dict[str, Any]) -> None:
        self.adapter.abort_upload(upload)
        self.uploads.pop(upload["_id"], None)

    def copy(self, blob: dict[str, Any]) -> dict[str, Any]:
        self.adapter.add_reference(blob)  # count first, then the record
        self.files.append(dict(blob))
        return self.files[-1]

    def remove(self, blob: dict[str, Any]) -> None:
        self.files.remove(blob)  # the record first, then the reference
        self.adapter.delete(blob)

    @property
    def live_uploads(self) -> set[str]:
        return set(self.uploads)

    @property
    def live_references(self) -> dict[str, int]:
        return dict(collections.Counter(self.factory.blob_key(b) for b in self.files))

    def assert_clean(self) -> None:
        problems = self.adapter.check(self.live_uploads, self.live_references)
        assert problems == []
        expected = {self.factory.blob_key(b) for b in self.files}
        assert self.factory.stored_blobs() == expected


@pytest.fixture(params=sorted(FACTORIES))
def assetstore_factory(request: pytest.FixtureRequest,
                       tmp_path: Path) -> Iterator[AdapterFactory]:
    factory = FACTORIES[request.param](tmp_path)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def assetstore(assetstore_factory: AdapterFactory) -> AssetstoreAdapter:
    return assetstore_factory.open()


@pytest.fixture
def ledger(assetstore_factory: AdapterFactory, assetstore: AssetstoreAdapter) -> Ledger:
    return Ledger(assetstore_factory, assetstore)


# -- child processes -----------------------------------------------------------
CHILD_BOOT = (
    "import importlib.util, json, sys\n"
    "spec = importlib.util.spec_from_file_location('conftest_assetstore_child', sys.argv[1])\n"
    "mod = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(mod)\n"
    "getattr(mod, sys.argv[2])(json.loads(sys.argv[3]))\n"
)


def spawn(function: str, args: dict[str, Any]) -> subprocess.Popen[str]:
    """Run ``function(args)`` of this module in a new Python process."""
    return subprocess.Popen(
        [sys.executable, "-c", CHILD_BOOT, __file__, function, json.dumps(args)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)


class LineReader:
    """Lines from a child's stdout, waited for with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=lambda: [self._lines.put(x) for x in stdout],
                         daemon=True).start()

    def next(self, timeout: float = 30.0) -> str:
        try:
            return self._lines.get(timeout=timeout).rstrip("\n")
        except queue.Empty:
            raise AssertionError(f"no line from the child within {timeout}s") from None


class _StallingStream:
    """Hands out ``data`` up to ``stall_after`` bytes, says so on stdout, then
    blocks for ever: a client that stops mid-chunk."""

    def __init__(self, data: bytes, stall_after: int) -> None:
        self.data, self.pos, self.stall_after = data, 0, stall_after

    def read(self, size: int) -> bytes:
        if self.pos >= self.stall_after:
            print("stalled", flush=True)
            sys.stdin.readline()  # the parent kills us here
            raise SystemExit("not killed")
        block = self.data[self.pos:min(self.pos + size, self.stall_after)]
        self.pos += len(block)
        return block


def child_upload_then_stall(args: dict[str, Any]) -> None:
    """Begin an upload, write a first chunk, then stall inside a second one."""
    adapter = build_adapter(args["adapter"])
    data = payload(args["size"], args["seed"])
    upload = {"_id": args["upload_id"], "size": len(data), "received": 0, "state": {}}
    upload["state"] = adapter.begin_upload(upload)
    print(json.dumps(upload["state"]), flush=True)
    first = args["first"]
    adapter.write_chunk(upload, 0, io.BytesIO(data[:first]))
    stream = _StallingStream(data[first:], args["stall_after"])
    adapter.write_chunk(upload, first, stream, len(data) - first)  # type: ignore[arg-type]


def wait_until(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)  # a polling interval, not synchronisation
