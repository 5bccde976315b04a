"""The assetstore adapter contract: every backend must pass these tests.

Fixtures live in ``conftest_assetstore.py``; add a backend there.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import signal
import threading
from typing import Any

import conftest_assetstore
import pytest
from bson import ObjectId
from conftest_assetstore import AdapterFactory, Ledger, LineReader, MiB, payload, spawn

from joist.core.assetstores.base import AssetstoreAdapter, Capacity, ProblemKind
from joist.core.errors import ConflictError, CoreError, NotFoundError, StorageError, ValidationError

# The fixtures come from there too (bound here so pytest sees them).
assetstore_factory = conftest_assetstore.assetstore_factory
assetstore = conftest_assetstore.assetstore
ledger = conftest_assetstore.ledger


def sha512(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


def read_all(adapter: AssetstoreAdapter, blob: dict[str, Any]) -> bytes:
    with adapter.open_read(blob) as reader:
        return reader.read_at(0, reader.size + 1)


def check_blob(adapter: AssetstoreAdapter, blob: dict[str, Any], data: bytes) -> None:
    assert blob["size"] == len(data)
    if "sha512" in blob:
        assert blob["sha512"] == sha512(data)
    assert read_all(adapter, blob) == data


class FailingStream:
    """Gives ``fail_after`` bytes of ``data``, then raises like a dropped client."""

    def __init__(self, data: bytes, fail_after: int) -> None:
        self.data, self.pos, self.fail_after = data, 0, fail_after

    def read(self, size: int) -> bytes:
        if self.pos >= self.fail_after:
            raise ConnectionResetError("client went away")
        block = self.data[self.pos:min(self.pos + size, self.fail_after)]
        self.pos += len(block)
        return block


# -- uploads -------------------------------------------------------------------
def test_one_shot_upload(ledger: Ledger) -> None:
    data = payload(3 * MiB + 17)
    upload = ledger.begin(len(data))
    assert isinstance(upload["state"], dict)
    assert ledger.write(upload, 0, data) == len(data)
    assert ledger.adapter.upload_offset(upload) == len(data)
    blob = ledger.finalize(upload)
    check_blob(ledger.adapter, blob, data)
    ledger.assert_clean()


@pytest.mark.parametrize("chunk", [1, 4096, MiB - 1, MiB + 7])
def test_chunked_upload(ledger: Ledger, chunk: int) -> None:
    data = payload(2 * MiB + 3 if chunk > 1 else 5000, seed=chunk)
    upload = ledger.begin(len(data))
    for offset in range(0, len(data), chunk):
        part = data[offset:offset + chunk]
        # Alternate "length given" and "read to EOF" streams.
        length = len(part) if (offset // chunk) % 2 else None
        assert ledger.write(upload, offset, part, length) == offset + len(part)
    check_blob(ledger.adapter, ledger.finalize(upload), data)
    ledger.assert_clean()


def test_length_limits_what_is_read(ledger: Ledger) -> None:
    data = payload(3000)
    upload = ledger.begin(len(data))
    stream = io.BytesIO(data + b"trailing bytes of the next request")
    assert ledger.write(upload, 0, stream, len(data)) == len(data)
    assert stream.tell() == len(data)
    check_blob(ledger.adapter, ledger.finalize(upload), data)


def test_resume_after_restart(assetstore_factory: AdapterFactory, ledger: Ledger) -> None:
    data = payload(5 * MiB + 1)
    upload = ledger.begin(len(data))
    ledger.write(upload, 0, data[:2 * MiB])
    stale_record = dict(upload, received=0)  # the record update was lost in the crash
    ledger.adapter = assetstore_factory.open()  # a restarted process
    offset = ledger.adapter.upload_offset(stale_record)
    assert offset == 2 * MiB
    with pytest.raises(ConflictError):
        ledger.write(stale_record, 0, data)
    ledger.write(stale_record, offset, data[offset:])
    ledger.uploads[upload["_id"]] = stale_record
    check_blob(ledger.adapter, ledger.finalize(stale_record), data)
    ledger.assert_clean()


@pytest.mark.parametrize("wrong", [0, 999, 1001, 10_000])
def test_wrong_offset_refused(ledger: Ledger, wrong: int) -> None:
    data = payload(3000)
    upload = ledger.begin(len(data))
    ledger.write(upload, 0, data[:1000])
    with pytest.raises(ConflictError) as info:
        ledger.write(upload, wrong, data[wrong:wrong + 500] or b"x")
    assert str(info.value) == f"Server has received 1000 bytes, but client sent offset {wrong}."
    assert ledger.adapter.upload_offset(upload) == 1000
    ledger.write(upload, 1000, data[1000:])
    check_blob(ledger.adapter, ledger.finalize(upload), data)
    ledger.assert_clean()


@pytest.mark.parametrize("announced", [True, False])
def test_too_many_bytes_refused(ledger: Ledger, announced: bool) -> None:
    data = payload(3 * MiB)
    upload = ledger.begin(len(data))
    ledger.write(upload, 0, data[:MiB])
    extra = data[MiB:] + b"one too many"
    with pytest.raises(ValidationError, match=r"^Received too many bytes\.$"):
        ledger.write(upload, MiB, extra, len(extra) if announced else None)
    assert ledger.adapter.upload_offset(upload) == MiB
    ledger.write(upload, MiB, data[MiB:])
    check_blob(ledger.adapter, ledger.finalize(upload), data)
    ledger.assert_clean()


def test_interrupted_chunk_rolls_back(ledger: Ledger) -> None:
    data = payload(6 * MiB)
    upload = ledger.begin(len(data))
    ledger.write(upload, 0, data[:MiB])
    stream = FailingStream(data[MiB:], fail_after=2 * MiB + 5)
    with pytest.raises(CoreError) as info:
        ledger.write(upload, MiB, stream, len(data) - MiB)
    assert not isinstance(info.value, ConflictError)
    assert stream.pos == 2 * MiB + 5  # the failure came midway, after real writes
    assert ledger.adapter.upload_offset(upload) == MiB
    ledger.assert_clean()
    ledger.write(upload, MiB, data[MiB:])
    check_blob(ledger.adapter, ledger.finalize(upload), data)
    ledger.assert_clean()


def test_short_stream_rolls_back(ledger: Ledger) -> None:
    data = payload(2 * MiB)
    upload = ledger.begin(len(data))
    with pytest.raises(ValidationError):
        ledger.write(upload, 0, data[:MiB + 10], len(data))  # announced more than sent
    assert ledger.adapter.upload_offset(upload) == 0
    ledger.write(upload, 0, data)
    check_blob(ledger.adapter, ledger.finalize(upload), data)


def test_finalize_incomplete_refused(ledger: Ledger) -> None:
    upload = ledger.begin(100)
    ledger.write(upload, 0, b"x" * 40)
    with pytest.raises(ConflictError):
        ledger.finalize(upload)
    assert ledger.adapter.upload_offset(upload) == 40
    ledger.assert_clean()


def test_abort_removes_everything(ledger: Ledger) -> None:
    upload = ledger.begin(3 * MiB)
    ledger.write(upload, 0, payload(2 * MiB))
    ledger.abort(upload)
    with pytest.raises(NotFoundError):
        ledger.adapter.upload_offset(upload)
    with pytest.raises(NotFoundError):
        ledger.write(upload, 2 * MiB, payload(MiB))
    ledger.abort(upload)  # idempotent
    assert ledger.adapter.check(set()) == []
    ledger.assert_clean()


def test_zero_byte_upload(ledger: Ledger) -> None:
    upload = ledger.begin(0)
    assert ledger.adapter.upload_offset(upload) == 0
    assert ledger.write(upload, 0, b"") == 0
    blob = ledger.finalize(upload)
    check_blob(ledger.adapter, blob, b"")
    with ledger.adapter.open_read(blob) as reader:
        assert reader.size == 0
        assert reader.read_at(0, 10) == b""
        assert reader.read() == b""
    ledger.assert_clean()


# -- reads ---------------------------------------------------------------------
def test_ranged_reads(ledger: Ledger) -> None:
    data = payload(3 * MiB + 5)
    blob = ledger.upload(data)
    n = len(data)
    ranges = [(0, 0), (0, 1), (0, n), (0, n + 100), (1, 10), (MiB - 1, 2), (n - 1, 1),
              (n - 1, 100), (n, 0), (n, 10), (n + 1000, 10), (12345, 2 * MiB)]
    with ledger.adapter.open_read(blob) as reader:
        assert reader.size == n and reader.seekable() and reader.readable()
        for offset, size in ranges:
            assert reader.read_at(offset, size) == data[offset:offset + size], (offset, size)
        with pytest.raises(ValidationError):
            reader.read_at(-1, 10)
        with pytest.raises(ValidationError):
            reader.seek(-1)
        assert reader.seek(n - 10) == n - 10
        assert reader.read(100) == data[-10:]
        assert reader.read(100) == b""
        reader.seek(-20, io.SEEK_END)
        buf = bytearray(8)
        assert reader.readinto(buf) == 8 and bytes(buf) == data[-20:-12]
        assert reader.tell() == n - 12
        reader.seek(5)
        assert io.BufferedReader(reader).read(7) == data[5:12]


def test_iter_range_blocks(ledger: Ledger) -> None:
    """``iter_range`` on every backend: the span's bytes in blocks of at most
    ``block_size``, short at the end, the same with a reused buffer."""
    data = payload(2 * MiB + 3)
    blob = ledger.upload(data)
    n = len(data)
    spans = [(0, 0, MiB), (0, n, MiB), (0, n + 100, MiB), (1, 2 * MiB, MiB), (n - 1, 5, 2),
             (n, 10, MiB), (n + 7, 10, MiB), (MiB - 3, 7, 4), (12345, 70_000, 65_536)]
    with ledger.adapter.open_read(blob) as reader:
        for offset, length, block in spans:
            want = data[offset:offset + length]
            blocks = list(reader.iter_range(offset, length, block))
            assert all(isinstance(b, bytes) and 0 < len(b) <= block for b in blocks)
            assert b"".join(blocks) == want, (offset, length, block)
            copied = [bytes(b) for b in reader.iter_range(offset, length, block, reuse=True)]
            assert b"".join(copied) == want, (offset, length, block)
        with pytest.raises(ValidationError):
            reader.iter_range(-1, 10)


def test_concurrent_positional_reads(ledger: Ledger) -> None:
    data = payload(2 * MiB)
    blob = ledger.upload(data)
    errors: list[str] = []
    with ledger.adapter.open_read(blob) as reader:
        def worker(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(200):
                offset, size = rng.randrange(len(data) + 10), rng.randrange(70_000)
                if reader.read_at(offset, size) != data[offset:offset + size]:
                    errors.append(f"{offset}+{size}")
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []


def test_open_read_missing_bytes(ledger: Ledger) -> None:
    blob = ledger.upload(b"will vanish")
    ledger.remove(blob)
    with pytest.raises(StorageError):
        ledger.adapter.open_read(blob)


# -- references ----------------------------------------------------------------
def test_dedup_and_reference_counting(ledger: Ledger) -> None:
    if not ledger.adapter.capabilities.dedup:
        pytest.skip("adapter does not deduplicate")
    data = payload(MiB + 3, seed=7)
    first, second = ledger.upload(data), ledger.upload(data, chunk=MiB)
    assert first == second
    assert len(ledger.factory.stored_blobs()) == 1
    ledger.assert_clean()
    ledger.remove(first)
    assert read_all(ledger.adapter, second) == data
    ledger.assert_clean()
    ledger.remove(second)
    assert ledger.factory.stored_blobs() == set()
    with pytest.raises(StorageError):
        ledger.adapter.open_read(second)
    ledger.assert_clean()


def test_add_reference(ledger: Ledger) -> None:
    data = payload(1000, seed=3)
    original = ledger.upload(data)
    copy = ledger.copy(original)
    ledger.assert_clean()
    ledger.remove(original)
    assert read_all(ledger.adapter, copy) == data
    ledger.assert_clean()
    ledger.remove(copy)
    assert ledger.factory.stored_blobs() == set()
    ledger.assert_clean()


def test_concurrent_identical_uploads(assetstore_factory: AdapterFactory,
                                      ledger: Ledger) -> None:
    data, threads = payload(3 * MiB, seed=11), 8
    blobs: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)
    lock = threading.Lock()

    def worker(adapter: AssetstoreAdapter) -> None:
        try:
            upload = {"_id": str(ObjectId()), "size": len(data), "received": 0}
            upload["state"] = adapter.begin_upload(upload)
            barrier.wait()
            for offset in range(0, len(data), MiB):
                _, upload["state"] = adapter.write_chunk(
                    upload, offset, io.BytesIO(data[offset:offset + MiB]))
            blob = adapter.finalize_upload(upload)
            adapter.forget_upload(upload)
            with lock:
                blobs.append(blob)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    # Half share the fixture's adapter, half have their own (another "process").
    adapters = [ledger.adapter if i % 2 else assetstore_factory.open() for i in range(threads)]
    workers = [threading.Thread(target=worker, args=(a,)) for a in adapters]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert errors == []
    assert len(blobs) == threads and all(b == blobs[0] for b in blobs)
    ledger.files.extend(blobs)
    assert len(assetstore_factory.stored_blobs()) == 1
    ledger.assert_clean()
    for blob in list(ledger.files)[:-1]:
        ledger.remove(blob)
        assert read_all(ledger.adapter, blobs[0]) == data
    ledger.remove(ledger.files[-1])
    assert assetstore_factory.stored_blobs() == set()
    ledger.assert_clean()


def test_finalize_and_delete_races_never_lose_referenced_bytes(
        assetstore_factory: AdapterFactory, ledger: Ledger) -> None:
    """Threads upload, read and release the same content over and over: a
    finalize that dedups against bytes a concurrent delete is removing must
    not end up with a reference to nothing."""
    data, rounds = payload(64 * 1024, seed=13), 25
    failures: list[str] = []

    def churn(adapter: AssetstoreAdapter) -> None:
        for i in range(rounds):
            upload = {"_id": str(ObjectId()), "size": len(data), "received": 0}
            try:
                upload["state"] = adapter.begin_upload(upload)
                adapter.write_chunk(upload, 0, io.BytesIO(data))
                blob = adapter.finalize_upload(upload)
                adapter.forget_upload(upload)
                if read_all(adapter, blob) != data:
                    failures.append(f"round {i}: wrong bytes")
                adapter.delete(blob)
            except CoreError as exc:
                failures.append(f"round {i}: {exc!r}")

    workers = [threading.Thread(target=churn, args=(assetstore_factory.open(),))
               for _ in range(4)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert failures == []
    assert assetstore_factory.stored_blobs() == set()
    ledger.assert_clean()


def test_capacity(assetstore: AssetstoreAdapter) -> None:
    capacity = assetstore.capacity()
    assert isinstance(capacity, Capacity)
    for value in (capacity.total, capacity.free, capacity.used):
        assert value is None or (isinstance(value, int) and value >= 0)
    if capacity.total is not None and capacity.free is not None:
        assert capacity.free <= capacity.total


def test_local_path_matches_capability(ledger: Ledger) -> None:
    blob = ledger.upload(b"local or not")
    path = ledger.adapter.local_path(blob)
    if ledger.adapter.capabilities.local_path:
        assert path is not None and os.path.isabs(path)
        with open(path, "rb") as f:
            assert f.read() == b"local or not"
    else:
        assert path is None


# -- crashes -------------------------------------------------------------------
@pytest.mark.parametrize("then", ["abandon", "resume"])
def test_killed_mid_upload(assetstore_factory: AdapterFactory, ledger: Ledger,
                           then: str) -> None:
    """A real child process is SIGKILLed inside write_chunk: nothing partial is
    visible, and the leftovers are either resumable or a stale temp that
    ``repair`` clears."""
    size, first, stall_after = 6 * MiB + 1, 2 * MiB, 2 * MiB
    upload_id = str(ObjectId())
    child = spawn("child_upload_then_stall", {
        "adapter": assetstore_factory.child_args(), "upload_id": upload_id, "size": size,
        "seed": 5, "first": first, "stall_after": stall_after})
    try:
        lines = LineReader(child)
        state = json.loads(lines.next())
        assert lines.next() == "stalled"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert assetstore_factory.stored_blobs() == set()

    upload = {"_id": upload_id, "size": size, "received": first, "state": state}
    adapter = ledger.adapter = assetstore_factory.open()
    if then == "abandon":  # the upload record is gone: only a stale temp remains
        problems = adapter.check(set(), {})
        assert [(p.kind, p.ref) for p in problems] == [(ProblemKind.STALE_TEMP, upload_id)]
        assert adapter.repair(problems, live_references={}) == []
        assert adapter.check(set(), {}) == []
        with pytest.raises(NotFoundError):
            adapter.upload_offset(upload)
    else:  # the record survives: the bytes that reached the disk count
        ledger.uploads[upload_id] = upload
        ledger.assert_clean()
        offset = adapter.upload_offset(upload)
        assert first <= offset <= first + stall_after
        data = payload(size, seed=5)
        ledger.write(upload, offset, data[offset:])
        check_blob(adapter, ledger.finalize(upload), data)
    ledger.assert_clean()
