"""The chunk cache as blobs with no local file meet it (S3 on moto), called
through the operations class: right bytes at every offset and at random ones,
warm reads answered with a chunk file's descriptor, a file replaced while its
chunks are cached, and read-ahead (fetched in the background, cancelled and
waited for on release)."""

from __future__ import annotations

import errno
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from joist.admin.bootstrap import App
from joist.gateways.fuse import MountOptions
from joist.gateways.fuse.chunkcache import CachedSource, ChunkCache
from joist.gateways.fuse.errors import FuseError
from joist.gateways.fuse.operations import JoistOperations
from joist.gateways.fuse.readahead import Prefetcher, ReadAhead
from tests.gateways.fuse.test_fuse_units import Fi, Kernel
from tests.s3env import shared_moto
from tests.world import World, build_world

STEP = 64 << 10                    # chunk size of these tests
PATH = "/user/alice/Private/data/chunked.bin"
DATA = random.Random(18).randbytes(5 * STEP + 777)


def _deadline_wait(check: Any, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


@pytest.fixture
def s3_world(app: App) -> World:
    world = build_world(app)
    moto = shared_moto()
    app.assetstores.create_s3("chunks S3", moto.fields(moto.new_bucket("chunks")),
                              current=True)
    app.services.settings.set("joist.s3.redirect_downloads", False)
    _write(world, DATA)
    return world


def _write(world: World, data: bytes) -> None:
    with world.app.hierarchy.view(world.principal("alice")).open_write(PATH) as writer:
        writer.write(data)
    world.app.hierarchy.cache.clear()  # as if the path cache's second had passed


@pytest.fixture
def ops(s3_world: World, tmp_path: Path) -> Iterator[JoistOperations]:
    view = s3_world.app.hierarchy.view(s3_world.principal("alice"), read_only=True)
    options = MountOptions(mountpoint=tmp_path / "mnt", cache_dir=tmp_path / "cache",
                           chunk_size=STEP, chunk_read_ahead=3)
    operations = JoistOperations(view, options, kernel=Kernel())  # type: ignore[arg-type]
    yield operations
    operations.destroy("/")


def _read(ops: JoistOperations, fi: Fi, offset: int, size: int) -> bytes:
    return ops.read(PATH, size, offset, fi)


def test_s3_blob_reads_through_the_cache_at_every_offset(ops: JoistOperations) -> None:
    fi = Fi()
    ops.open(PATH, fi)
    handle = ops.handles.get(fi.fh)
    assert handle.fd is None and handle.source is not None  # S3: no local descriptor
    for size in (1, 4096, STEP, 3 * STEP):
        for offset in range(0, len(DATA) + 2, 4093):
            assert _read(ops, fi, offset, size) == DATA[offset:offset + size], (offset, size)
    # A read inside one chunk is answered with the chunk file's descriptor.
    located = ops._read(fi, 4096, STEP + 100)
    assert isinstance(located, tuple)
    fd, position, length = located
    assert (position, length) == (100, 4096)
    assert os.pread(fd, length, position) == DATA[STEP + 100:STEP + 4196]
    ops.release(PATH, fi)
    counters = ops.stats.snapshot()
    assert counters["chunk_cache_misses"] <= 6  # each chunk fetched once (or ahead)
    assert counters["fd_reads"] == 0


def test_random_reads_and_a_second_open_from_the_warm_cache(ops: JoistOperations) -> None:
    rng = random.Random(4)
    for _ in range(2):
        fi = Fi()
        ops.open(PATH, fi)
        for _ in range(300):
            offset = rng.randrange(0, len(DATA) + 10)
            size = rng.choice((1, 511, 4096, STEP - 1, STEP + 3, 2 * STEP))
            assert _read(ops, fi, offset, size) == DATA[offset:offset + size], (offset, size)
        ops.release(PATH, fi)
    assert ops.stats.snapshot()["chunk_cache_misses"] == 6  # 6 chunks, each fetched once


def test_a_blob_replaced_while_cached_reads_its_new_bytes(s3_world: World,
                                                          ops: JoistOperations) -> None:
    old = Fi()
    ops.open(PATH, old)
    assert _read(ops, old, 0, len(DATA)) == DATA   # every chunk cached now
    new_data = bytes(b ^ 0xFF for b in DATA)       # same size, other bytes
    _write(s3_world, new_data)
    ops._nodes.clear()                             # the attribute timeout passed
    fi = Fi()
    ops.open(PATH, fi)
    for offset in range(0, len(new_data), 7919):
        assert _read(ops, fi, offset, 5000) == new_data[offset:offset + 5000]
    ops.release(PATH, fi)
    # The old handle read through the page cache: it must not go on with its bytes.
    with pytest.raises(FuseError) as raised:
        _read(ops, old, 0, 10)
    assert raised.value.errno == errno.ESTALE
    ops.release(PATH, old)


def test_sequential_reads_fetch_the_next_chunks_in_the_background(
        ops: JoistOperations) -> None:
    fi = Fi()
    ops.open(PATH, fi)
    assert _read(ops, fi, 0, 4096) == DATA[:4096]
    cache = ops._chunk_cache()
    key = ops.handles.get(fi.fh).source.content_key
    _deadline_wait(lambda: all(cache.has(key, i) for i in (1, 2, 3)))
    assert _read(ops, fi, STEP, 3 * STEP) == DATA[STEP:4 * STEP]
    ops.release(PATH, fi)
    assert ops.stats.snapshot()["chunk_read_ahead"] >= 3


def test_chunks_read_ahead_are_not_fetched_again_by_the_read(tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path / "cache", 1 << 30, chunk_size=STEP)
    prefetcher = Prefetcher(cache, workers=2)
    source = GatedSource(DATA)
    source.go.set()
    cached = CachedSource(cache, "k", source, ReadAhead(prefetcher, "k", source, depth=3))
    try:
        assert cached.read(0, 100) == DATA[:100]
        _deadline_wait(lambda: all(cache.has("k", i) for i in (1, 2, 3)))
        assert sorted(source.calls) == [0, 1, 2, 3]
        for index in (1, 2, 3):                 # each read queues more ahead...
            assert cached.read(index * STEP, STEP) == DATA[index * STEP:(index + 1) * STEP]
        cached.close()
        # ...but none of the chunks read was fetched a second time.
        assert sorted(i for i in source.calls if i <= 3) == [0, 1, 2, 3]
    finally:
        prefetcher.close()
        cache.close()


class GatedSource:
    """A blob reader whose reads of chunks past the first wait for ``go``."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[int] = []
        self.events: list[str] = []
        self.started = threading.Event()
        self.go = threading.Event()

    @property
    def size(self) -> int:
        return len(self.data)

    def read_at(self, offset: int, size: int) -> bytes:
        self.calls.append(offset // STEP)
        if offset >= STEP:
            self.started.set()
            assert self.go.wait(30)
            self.events.append(f"fetched {offset // STEP}")
        return self.data[offset:offset + size]


def test_release_cancels_queued_read_ahead_and_waits_for_running(tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path / "cache", 1 << 30, chunk_size=STEP)
    prefetcher = Prefetcher(cache, workers=1)
    source = GatedSource(DATA)
    cached = CachedSource(cache, "k", source, ReadAhead(prefetcher, "k", source, depth=4))
    try:
        assert cached.read(0, 100) == DATA[:100]    # queues chunks 1-4, one worker
        assert source.started.wait(30)              # chunk 1 is being fetched
        closer = threading.Thread(target=lambda: (cached.close(),
                                                  source.events.append("closed")))
        closer.start()
        source.go.set()
        closer.join(30)
        assert not closer.is_alive()
        assert source.events == ["fetched 1", "closed"]  # waited for the running fetch
        prefetcher.close()
        assert sorted(source.calls) == [0, 1]       # chunks 2-4 were never fetched
        assert cache.has("k", 1) and not cache.has("k", 2)
    finally:
        source.go.set()
        prefetcher.close()
        cache.close()


def test_a_descriptor_handed_out_stays_open_until_its_thread_moves_on(
        tmp_path: Path) -> None:
    cache = ChunkCache(tmp_path / "cache", 4 * STEP, chunk_size=STEP)  # 2 open at most
    source = GatedSource(DATA)
    source.go.set()
    try:
        fd, position, length = cache.locate("k", source, 10, 100) or (-1, 0, 0)
        others: list[Any] = []

        def elsewhere() -> None:  # another worker thread reads the other chunks
            for index in range(1, 5):
                others.append(cache.locate("k", source, index * STEP, 10))
            cache.release_thread()

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join(30)
        assert len(others) == 4 and len(cache._open) <= 2  # chunk 0 left the open set
        # ...but the descriptor this thread handed out still reads chunk 0.
        assert os.pread(fd, length, position) == DATA[10:110]
        cache.release_thread()
        assert all(chunk.leases == 0 for chunk in cache._open.values())
    finally:
        cache.close()
