"""S3 faults: an endpoint that goes down mid-transfer, one that stops
answering, wrong credentials, a bucket that vanished. Each gives a clear
error, commits nothing half-way, and the operation can be retried.

The endpoint is moto's server mode on 127.0.0.1, run in this process so that
it can stop and come back with its buckets, behind a TCP proxy that resets
the connections in flight when it "goes down" (stopping moto alone lets the
requests it is already serving finish).
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from joist.core.errors import StorageError, ValidationError
from tests.s3env import BucketStore, FaultProxy, MotoS3

MiB = 1 << 20


class Endpoint:
    def __init__(self) -> None:
        self.moto = MotoS3().start()
        self.proxy = FaultProxy(self.moto.port)

    def outage(self) -> None:
        """moto stops (refusing connections) and what it was serving is cut."""
        self.moto.stop()
        self.proxy.cut()

    def restore(self) -> None:
        self.moto.start()
        self.proxy.heal()

    def close(self) -> None:
        self.proxy.close()
        self.moto.stop()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    made = Endpoint()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def store(tmp_path: Path, endpoint: Endpoint) -> Iterator[BucketStore]:
    made = BucketStore(tmp_path, endpoint.moto, endpoint.proxy.url, readTimeout=1,
                       connectTimeout=1)
    try:
        yield made
    finally:
        made.close()


class Tripwire:
    """A client stream that calls ``fire`` once ``after`` bytes were read."""

    def __init__(self, data: bytes, after: int, fire: Any) -> None:
        self.stream, self.after, self.fire, self.pos = io.BytesIO(data), after, fire, 0

    def read(self, size: int = -1) -> bytes:
        if self.fire is not None and self.pos >= self.after:
            fire, self.fire = self.fire, None
            fire()
        block = self.stream.read(size if size >= 0 else -1)
        self.pos += len(block)
        return block


def begin(adapter: Any, size: int) -> dict[str, Any]:
    upload = {"_id": str(ObjectId()), "size": size, "received": 0, "state": {}}
    upload["state"] = adapter.begin_upload(upload)
    return upload


def write(adapter: Any, upload: dict[str, Any], offset: int, stream: Any, length: int) -> None:
    upload["received"], upload["state"] = adapter.write_chunk(upload, offset, stream, length)


def test_endpoint_down_mid_part_commits_nothing_then_resumes(
        store: BucketStore, endpoint: Endpoint) -> None:
    adapter = store.open()
    data = random.Random(1).randbytes(14 * MiB)
    upload = begin(adapter, len(data))
    write(adapter, upload, 0, io.BytesIO(data[:6 * MiB]), 6 * MiB)
    chunk = data[6 * MiB:12 * MiB]
    with pytest.raises(StorageError, match="S3 endpoint") as info:
        write(adapter, upload, 6 * MiB, Tripwire(chunk, 3 * MiB, endpoint.outage), len(chunk))
    assert "Traceback" not in str(info.value) and "testing" not in str(info.value)
    assert adapter.upload_offset(upload) == 6 * MiB  # the journal is in the metadata store
    with pytest.raises(StorageError):  # still down: the retry fails cleanly too
        write(adapter, upload, 6 * MiB, io.BytesIO(chunk), len(chunk))
    assert adapter.upload_offset(upload) == 6 * MiB
    endpoint.restore()
    write(adapter, upload, 6 * MiB, io.BytesIO(chunk), len(chunk))
    write(adapter, upload, 12 * MiB, io.BytesIO(data[12 * MiB:]), 2 * MiB)
    blob = adapter.finalize_upload(upload)
    assert blob["sha512"] == hashlib.sha512(data).hexdigest()
    with adapter.open_read(blob) as reader:
        assert reader.read_at(0, len(data)) == data
    assert store.multiparts() == []
    assert adapter.check(set(), {blob["sha512"]: 1}) == []


def test_endpoint_down_during_finalize_can_be_retried(
        store: BucketStore, endpoint: Endpoint) -> None:
    adapter = store.open()
    data = random.Random(2).randbytes(9 * MiB)
    upload = begin(adapter, len(data))
    write(adapter, upload, 0, io.BytesIO(data[:6 * MiB]), 6 * MiB)
    write(adapter, upload, 6 * MiB, io.BytesIO(data[6 * MiB:]), 3 * MiB)
    endpoint.outage()
    with pytest.raises(StorageError):
        adapter.finalize_upload(upload)
    assert store.open().upload_offset(upload) == len(data)
    endpoint.restore()
    blob = adapter.finalize_upload(upload)
    with adapter.open_read(blob) as reader:
        assert reader.read_at(0, len(data)) == data


def test_endpoint_that_stops_answering_times_out(store: BucketStore,
                                                 endpoint: Endpoint) -> None:
    adapter = store.open()
    data = b"late bytes" * 1000
    upload = begin(adapter, len(data))
    endpoint.proxy.cut()  # no pooled connection survives...
    endpoint.proxy.stall()  # ...and new ones are accepted, never answered
    with pytest.raises(StorageError, match=r"did not answer in time|cannot be reached"):
        write(adapter, upload, 0, io.BytesIO(data), len(data))
    assert adapter.upload_offset(upload) == 0
    endpoint.proxy.cut()
    endpoint.proxy.heal()
    write(adapter, upload, 0, io.BytesIO(data), len(data))
    blob = adapter.finalize_upload(upload)
    with adapter.open_read(blob) as reader:
        assert reader.read_at(0, len(data)) == data


def test_reads_resume_after_a_connection_is_cut(store: BucketStore,
                                                endpoint: Endpoint) -> None:
    adapter = store.open()
    data = random.Random(3).randbytes(6 * MiB)
    upload = begin(adapter, len(data))
    write(adapter, upload, 0, io.BytesIO(data), len(data))
    blob = adapter.finalize_upload(upload)
    with adapter.open_read(blob) as reader:
        got = [reader.read_at(0, MiB), reader.read_at(MiB, MiB)]  # now one open GET
        endpoint.proxy.cut()
        endpoint.proxy.heal()
        got += [reader.read_at(offset, MiB) for offset in range(2 * MiB, 6 * MiB, MiB)]
    assert b"".join(got) == data


def test_wrong_credentials(tmp_path: Path, store: BucketStore, endpoint: Endpoint) -> None:
    from joist.core.assetstores.registry import AssetstoreRegistry
    from joist.core.db.sqlite import SQLiteEngine
    from joist.core.store import Store
    adapter = store.open()
    upload = begin(adapter, 6)
    engine = SQLiteEngine(tmp_path / "registry.db")
    endpoint.moto.enforce_auth(True)  # from now on moto knows none of our keys
    try:
        registry = AssetstoreRegistry(Store(engine).assetstores, engine)
        with pytest.raises(ValidationError, match="refused the credentials"):
            registry.create_s3("wrong", store.fields)
        assert registry.list() == []
        with pytest.raises(StorageError, match="refused the credentials"):
            write(adapter, upload, 0, io.BytesIO(b"secret"), 6)
        assert adapter.upload_offset(upload) == 0
    finally:
        endpoint.moto.enforce_auth(False)
        engine.close()
    write(adapter, upload, 0, io.BytesIO(b"secret"), 6)
    with adapter.open_read(adapter.finalize_upload(upload)) as reader:
        assert reader.read_at(0, 6) == b"secret"


def test_bucket_gone_behind_our_back(store: BucketStore) -> None:
    adapter = store.open()
    upload = begin(adapter, 4)
    store.s3().delete_bucket(Bucket=store.bucket)
    with pytest.raises(StorageError, match="does not exist"):
        write(adapter, upload, 0, io.BytesIO(b"lost"), 4)
    assert adapter.upload_offset(upload) == 0
    store.s3().create_bucket(Bucket=store.bucket)
    write(adapter, upload, 0, io.BytesIO(b"back"), 4)
    assert adapter.finalize_upload(upload)["size"] == 4
