"""Parts of the FUSE gateway that need no mount: the chunk cache (over a blob
reader without a descriptor), directory paging, the reader pool, attributes,
and the operations class called directly (keep_cache and stale handles,
read-only refusals at the gateway's own level)."""

from __future__ import annotations

import errno
import io
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from joist.admin.bootstrap import App
from joist.core.acl import SYSTEM
from joist.core.assetstores.localio import LocalBlobReader
from joist.core.hierarchy import Node
from joist.gateways.fuse import MountOptions
from joist.gateways.fuse import attrs as fattrs
from joist.gateways.fuse.cache import Listings, Stamped
from joist.gateways.fuse.chunkcache import ChunkCache
from joist.gateways.fuse.errors import FuseError
from joist.gateways.fuse.handles import DirHandle, ReaderPool
from joist.gateways.fuse.operations import JoistOperations
from tests import world as w
from tests.s3env import s3_switch_on
from tests.world import World, build_world


class HiddenDescriptor:
    """A real filesystem blob reader with its descriptor hidden, standing in
    for an S3 or GridFS reader (none of which exists here yet): ``fileno()``
    fails as it does for any blob with no local file. It counts backend reads."""

    def __init__(self, path: Path) -> None:
        self._inner = LocalBlobReader(str(path))
        self.calls: list[tuple[int, int]] = []
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._inner.size

    def read_at(self, offset: int, size: int) -> bytes:
        with self._lock:
            self.calls.append((offset, size))
        return self._inner.read_at(offset, size)

    def fileno(self) -> int:
        raise io.UnsupportedOperation("no local descriptor")

    def close(self) -> None:
        self._inner.close()


@pytest.fixture
def blob(tmp_path: Path) -> Iterator[tuple[bytes, HiddenDescriptor]]:
    data = os.urandom(4096 * 3 + 1234)
    path = tmp_path / "blob"
    path.write_bytes(data)
    reader = HiddenDescriptor(path)
    yield data, reader
    reader.close()


def test_chunk_cache_reads_right_bytes_and_hits(tmp_path: Path,
                                                blob: tuple[bytes, HiddenDescriptor]) -> None:
    data, reader = blob
    with pytest.raises(io.UnsupportedOperation):
        reader.fileno()
    cache = ChunkCache(tmp_path / "cache", 1 << 20, chunk_size=4096)
    ranges = [(0, 10), (4090, 20), (0, len(data)), (8000, 9000), (len(data) - 5, 100),
              (len(data), 10), (len(data) + 7, 10), (5, 0)]
    for offset, size in ranges:
        assert cache.read("k1", reader, offset, size) == data[offset:offset + size]
    assert len(reader.calls) == 4  # each chunk fetched once, the last (short) one too
    for offset, size in ranges:
        assert cache.read("k1", reader, offset, size) == data[offset:offset + size]
    assert len(reader.calls) == 4  # all served from the cache
    assert cache.hits > 0 and cache.misses == 4
    cache.close()


def test_chunk_cache_keys_by_content(tmp_path: Path, blob: tuple[bytes, HiddenDescriptor]
                                     ) -> None:
    data, reader = blob
    other_path = tmp_path / "other"
    other_path.write_bytes(bytes(reversed(data)))
    other = HiddenDescriptor(other_path)
    cache = ChunkCache(tmp_path / "cache", 1 << 20, chunk_size=4096)
    assert cache.read("sha512:a", reader, 0, 100) == data[:100]
    assert cache.read("sha512:b", other, 0, 100) == bytes(reversed(data))[:100]
    other.close()
    cache.close()


def test_chunk_cache_fetches_a_cold_chunk_once(tmp_path: Path,
                                               blob: tuple[bytes, HiddenDescriptor]) -> None:
    data, reader = blob
    cache = ChunkCache(tmp_path / "cache", 1 << 20, chunk_size=4096)
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(
        cache.read("k", reader, 100, 50))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [data[100:150]] * 8
    assert reader.calls == [(0, 4096)]
    cache.close()


def test_chunk_cache_stays_within_its_bound(tmp_path: Path) -> None:
    path = tmp_path / "big"
    data = os.urandom(4 << 20)
    path.write_bytes(data)
    reader = HiddenDescriptor(path)
    limit = 1 << 20
    cache = ChunkCache(tmp_path / "cache", limit, chunk_size=64 << 10)
    for offset in range(0, len(data), 64 << 10):
        assert cache.read("big", reader, offset, 64 << 10) == data[offset:offset + (64 << 10)]
    # diskcache culls on every store: what stays is the limit plus its index.
    assert cache.volume() < limit + (512 << 10)
    reader.close()
    cache.close()


def _entries(n: int) -> Any:
    calls: list[int] = []

    def listing(first: int) -> Iterator[tuple[str, dict[str, Any], int]]:
        calls.append(first)
        for index in range(first, n):
            yield f"e{index}", {"st_mode": stat.S_IFREG}, index + 1

    return listing, calls


def test_dir_handle_pages_on_and_seeks_back() -> None:
    listing, calls = _entries(1000)
    handle = DirHandle("/x", listing)
    got: list[str] = []
    offset = 0
    for _ in range(100):
        page = handle.page(offset)
        if not page:
            break
        taken = page[:37]  # the kernel takes what fits, then asks from the last cookie
        got += [name for name, _, _ in taken]
        offset = taken[-1][2]
    assert got == [f"e{i}" for i in range(1000)]
    assert calls == [0]  # read on without listing again
    assert [e[0] for e in handle.page(0)[:2]] == ["e0", "e1"]  # rewinddir lists again
    assert [e[0] for e in handle.page(500)[:1]] == ["e500"]   # a seek lists from there
    assert calls == [0, 0, 500]
    assert handle.page(1000) == []


def test_stamped_values_serve_only_their_view_and_generation() -> None:
    cache: Stamped[str] = Stamped(10, 60.0)
    view, other_view = object(), object()   # views of other rights are other objects
    cache.keep("/x", "node", (view, 1))
    assert cache.fresh("/x", (view, 1)) == "node"
    assert cache.fresh("/x", (view, 2)) is None        # the store changed since
    assert cache.fresh("/x", (other_view, 1)) is None  # derived under other rights
    off: Stamped[str] = Stamped(10, 0.0)               # a lifetime of 0 keeps nothing
    off.keep("/x", "node", (view, 1))
    assert off.fresh("/x", (view, 1)) is None


def test_listings_are_bounded_by_the_rows_they_hold() -> None:
    listings = Listings(60.0, max_rows=100)
    stamp = (object(), 1)
    for name in ("a", "b", "c"):
        listings.keep(f"/{name}", [name] * 40, stamp)
    assert listings.fresh("/a", stamp) is None           # oldest out: 120 rows > 100
    assert listings.fresh("/b", stamp) == ["b"] * 40 and listings.fresh("/c", stamp)
    listings.keep("/huge", ["x"] * 101, stamp)           # never kept at all
    assert listings.fresh("/huge", stamp) is None and len(listings) == 2


def test_reader_pool_never_closes_a_held_reader() -> None:
    closed: list[str] = []

    class Fake:
        def __init__(self, name: str) -> None:
            self.name = name

        def close(self) -> None:
            closed.append(self.name)

    pool = ReaderPool(idle_max=1)
    a = pool.add("a", Fake("a"), "/a")  # type: ignore[arg-type]
    assert pool.take("a") is a and pool.known("/a")
    pool.give_back("a")
    assert closed == []                 # still held once
    b = pool.add("b", Fake("b"), "/b")  # type: ignore[arg-type]
    pool.give_back("a")                 # idle now
    pool.give_back("b")                 # idle too: over the bound, the oldest goes
    assert closed == ["a"] and b is not None
    assert pool.take("a") is None and pool.take("b") is b
    pool.give_back("b")
    pool.clear()
    assert closed == ["a", "b"]


def test_attributes_from_nodes() -> None:
    folder = Node("/c/f", "f", "folder", True, ref="0" * 24, mtime=1.5)  # type: ignore[arg-type]
    file = Node("/c/f/a", "a", "item", False, size=1000, ref="1" * 24,  # type: ignore[arg-type]
                file_id="2" * 24, sha512="ab" * 64, meta={"k": "v", "n": [1, 2]})  # type: ignore[arg-type]
    link = Node("/c/f/l", "l", "file", False, ref="3" * 24,  # type: ignore[arg-type]
                link_url="https://example.org/x")
    d = fattrs.node_attrs(folder, writable=False, uid=1, gid=2)
    assert stat.S_ISDIR(d["st_mode"]) and d["st_mode"] & 0o777 == 0o555
    assert d["st_mtime"] == 1_500_000_000
    f = fattrs.node_attrs(file, writable=True, uid=1, gid=2)
    assert stat.S_ISREG(f["st_mode"]) and f["st_mode"] & 0o777 == 0o644
    assert f["st_size"] == 1000 and f["st_blocks"] == 2
    ln = fattrs.node_attrs(link, writable=False, uid=1, gid=2)
    assert stat.S_ISLNK(ln["st_mode"]) and ln["st_size"] == len("https://example.org/x")
    assert len({fattrs.inode(n) for n in (folder, file, link)}) == 3
    assert fattrs.inode(file) == fattrs.inode(file) >= 16
    assert fattrs.xattr_names(file) == ["user.joist.id", "user.joist.sha512",
                                        "user.joist.meta.k", "user.joist.meta.n"]
    assert fattrs.xattr_value(file, "user.joist.sha512") == b"ab" * 64
    assert fattrs.xattr_value(file, "user.joist.meta.k") == b"v"
    assert fattrs.xattr_value(file, "user.joist.meta.n") == b"[1, 2]"
    assert fattrs.xattr_value(file, "user.joist.meta.none") is None
    assert fattrs.parse_meta_value(b'{"a": 1}') == {"a": 1}
    assert fattrs.parse_meta_value(b"plain text") == "plain text"


# ---------------------------------------------------------------- operations


class Fi:
    """What ``fuse_file_info`` carries for the operations class."""

    def __init__(self, flags: int = os.O_RDONLY) -> None:
        self.flags, self.fh = flags, 0
        self.keep_cache = self.direct_io = self.noflush = 0


class Kernel:
    """Records what the operations would tell the kernel."""

    def __init__(self) -> None:
        self.now: list[str] = []
        self.later: list[str] = []
        self.sent = 0

    def invalidate_now(self, path: str) -> None:
        self.now.append(path)

    def invalidate(self, path: str) -> None:
        self.later.append(path)


@pytest.fixture
def world(app: App) -> World:
    return build_world(app)


def _ops(world: World, tmp_path: Path, *, read_only: bool = True, **kw: Any
         ) -> JoistOperations:
    view = world.app.hierarchy.view(world.principal("alice"), read_only=read_only)
    options = MountOptions(mountpoint=tmp_path / "mnt",
                           cache_dir=tmp_path / "cache", staging_dir=tmp_path / "stage", **kw)
    return JoistOperations(view, options, kernel=Kernel())  # type: ignore[arg-type]


A_TXT = "/user/alice/Private/data/a.txt"


def _replace(world: World, path: str, data: bytes) -> None:
    view = world.app.hierarchy.view(world.principal("alice"))
    with view.open_write(path) as writer:
        writer.write(data)
    world.app.hierarchy.cache.clear()  # as if the path cache's second had passed


def test_keep_cache_only_while_unchanged_and_old_handles_go_stale(
        world: World, tmp_path: Path) -> None:
    ops = _ops(world, tmp_path)
    first, second = Fi(), Fi()
    ops.open(A_TXT, first)
    assert first.keep_cache == 0      # nothing of it in the kernel yet
    ops.open(A_TXT, second)
    assert second.keep_cache == 1     # same version: the kernel keeps its pages
    assert ops.read(A_TXT, 5, 0, first) == w.A_TXT[:5]
    _replace(world, A_TXT, b"new bytes entirely")
    third = Fi()
    ops.open(A_TXT, third)
    assert ops.kernel.now == [A_TXT]  # type: ignore[attr-defined]
    # Old handles still see the page cache: the new one reads around it.
    assert third.direct_io == 1 and third.keep_cache == 0
    assert ops.read(A_TXT, 100, 0, third) == b"new bytes entirely"
    for old in (first, second):       # never a mix: the old handles fail cleanly
        with pytest.raises(FuseError) as info:
            ops.read(A_TXT, 5, 5, old)
        assert info.value.errno == errno.ESTALE
    for fi in (first, second, third):
        ops.release(A_TXT, fi)
    fourth, fifth = Fi(), Fi()
    ops.open(A_TXT, fourth)           # alone again: cached, old pages dropped
    ops.open(A_TXT, fifth)
    assert (fourth.direct_io, fourth.keep_cache) == (0, 0)
    assert (fifth.direct_io, fifth.keep_cache) == (0, 1)
    ops.release(A_TXT, fourth)
    ops.release(A_TXT, fifth)
    assert ops.handles.count() == 0


def test_an_open_after_a_replace_by_another_process_reads_the_new_bytes(
        world: World, tmp_path: Path) -> None:
    """Core's path cache still names the bytes the other process released:
    ``view.open_read`` looks the path up afresh, with no cache clear here."""
    from joist.admin.bootstrap import build_app
    world.app.services.settings.set("joist.hierarchy.cache_ttl", 60.0)
    first, fi = _ops(world, tmp_path / "one"), Fi()
    first.open(A_TXT, fi)                        # primes this process's path cache
    assert first.read(A_TXT, len(w.A_TXT), 0, fi) == w.A_TXT
    first.release(A_TXT, fi)
    other = build_app(world.app.settings, env={})  # a second process on the same store
    try:
        with other.hierarchy.view(world.principal("alice")).open_write(A_TXT) as writer:
            writer.write(b"from another process")
    finally:
        other.close()
    second, fi = _ops(world, tmp_path / "two"), Fi()  # a mount with nothing of its own
    second.open(A_TXT, fi)
    assert second.read(A_TXT, 100, 0, fi) == b"from another process"
    second.release(A_TXT, fi)


def test_listed_nodes_serve_opens_until_another_process_changes_the_store(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nodes and listings outlive the kernel's 1 s timeouts only while the
    store's change counters stand still: a re-open costs no path resolution,
    and a change committed by another process is seen by the next open."""
    from joist.admin.bootstrap import build_app
    ops = _ops(world, tmp_path)
    folder = A_TXT.rsplit("/", 1)[0]

    def listing() -> list[str]:
        fh = ops.opendir(folder)
        try:
            return [row[0] for row in ops.readdir(folder, fh)]
        finally:
            ops.releasedir(folder, fh)

    assert "a.txt" in listing()
    fi = Fi()
    ops.open(A_TXT, fi)                          # opens the blob (a pooled reader after)
    ops.release(A_TXT, fi)
    resolved: list[str] = []
    view = ops.view
    for name in ("stat", "open_read", "listdir"):
        real = getattr(view, name)
        monkeypatch.setattr(view, name, lambda path, *a, _r=real, **k: (
            resolved.append(path), _r(path, *a, **k))[1])
    fi = Fi()
    ops.open(A_TXT, fi)
    assert ops.read(A_TXT, len(w.A_TXT), 0, fi) == w.A_TXT
    ops.release(A_TXT, fi)
    assert "a.txt" in listing() and ops.getattr(A_TXT)["st_size"] == len(w.A_TXT)
    assert resolved == []                        # served from the mount's own caches
    other = build_app(world.app.settings, env={})  # a second process on the same store
    try:
        with other.hierarchy.view(world.principal("alice")).open_write(A_TXT) as writer:
            writer.write(b"changed elsewhere")
        with other.hierarchy.view(world.principal("alice")).open_write(
                folder + "/new.txt") as writer:
            writer.write(b"new")
    finally:
        other.close()
    fi = Fi()
    ops.open(A_TXT, fi)
    assert ops.read(A_TXT, 100, 0, fi) == b"changed elsewhere"
    ops.release(A_TXT, fi)
    assert "new.txt" in listing()
    assert A_TXT in resolved and folder in resolved


def test_direct_io_handles_keep_reading_their_version(world: World, tmp_path: Path) -> None:
    ops = _ops(world, tmp_path, direct_io=True)
    old = Fi()
    ops.open(A_TXT, old)
    assert old.direct_io == 1 and old.keep_cache == 0
    _replace(world, A_TXT, b"replacement")
    new = Fi()
    ops.open(A_TXT, new)
    try:
        assert ops.read(A_TXT, 10_000, 0, old) == w.A_TXT   # its own bytes, whole
    except OSError:
        # An assetstore with no local file (S3) drops the old bytes with their
        # last reference: the old handle then fails cleanly, never reads a mix.
        assert s3_switch_on()
    assert ops.read(A_TXT, 100, 0, new) == b"replacement"
    ops.release(A_TXT, old)
    ops.release(A_TXT, new)


def test_reads_through_the_chunk_cache(world: World, tmp_path: Path) -> None:
    # "always" sends even local blobs through the cache: the path a blob with
    # no descriptor takes (see HiddenDescriptor for the cache against one).
    ops = _ops(world, tmp_path, chunk_cache="always")
    path = "/collection/shared/docs/report.txt"
    for _ in range(2):
        fi = Fi()
        ops.open(path, fi)
        got = b"".join(ops.read(path, 4096, off, fi) for off in range(0, len(w.REPORT), 4096))
        ops.release(path, fi)
        assert got == w.REPORT
    counters = ops.stats.snapshot()
    assert counters["chunk_reads"] > 0 and counters["fd_reads"] == 0
    assert counters["chunk_cache_misses"] == 1 and counters["chunk_cache_hits"] >= 1


def test_no_descriptor_means_no_fd_reads(world: World, tmp_path: Path) -> None:
    ops = _ops(world, tmp_path)
    blob = tmp_path / "b"
    blob.write_bytes(b"x" * 10)
    hidden = HiddenDescriptor(blob)
    assert ops._descriptor(hidden) is None
    hidden.close()


@pytest.mark.parametrize("call", [
    lambda o: o.mkdir("/user/alice/Private/new", 0o755),
    lambda o: o.unlink(A_TXT),
    lambda o: o.rmdir("/user/alice/Private/data/deep"),
    lambda o: o.rename(A_TXT, "/user/alice/Private/data/b.txt"),
    lambda o: o.create("/user/alice/Private/data/n.txt", 0o644, Fi(os.O_WRONLY)),
    lambda o: o.open(A_TXT, Fi(os.O_WRONLY)),
    lambda o: o.open(A_TXT, Fi(os.O_RDWR)),
    lambda o: o.truncate(A_TXT, 0),
    lambda o: o.setxattr(A_TXT, "user.joist.meta.k", b"v", 0),
    lambda o: o.removexattr(A_TXT, "user.joist.meta.k"),
    lambda o: o.chmod(A_TXT, 0o600),
    lambda o: o.utimens(A_TXT, None),
])
def test_read_only_operations_refuse_with_erofs(world: World, tmp_path: Path, call: Any
                                                ) -> None:
    ops = _ops(world, tmp_path)
    with pytest.raises(FuseError) as info:
        call(ops)
    assert info.value.errno == errno.EROFS
    assert ops.read(A_TXT, 4, 0, _opened(ops, A_TXT)) == w.A_TXT[:4]


def _opened(ops: JoistOperations, path: str) -> Fi:
    fi = Fi()
    ops.open(path, fi)
    return fi


def test_heartbeat_keeps_the_record_and_ends_on_revoked_credentials(
        world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from joist.gateways.fuse import mount as mount_module

    unmounted: list[Path] = []
    monkeypatch.setattr(mount_module, "unmount",
                        lambda path, lazy=False: unmounted.append(path))
    valid = [True]
    view = world.app.hierarchy.view(world.principal("alice"), read_only=True)
    mounts = world.app.services.mounts
    mount = mount_module.Mount(view, MountOptions(mountpoint=tmp_path / "m"), mounts,
                               still_valid=lambda: valid[0])
    record = mounts.register(tmp_path / "m", view.principal, read_only=True)
    mount._record = record
    assert mount.beat() and unmounted == []
    world.app.store.mounts.delete_one({"_id": record["_id"]})  # cleaned by mistake
    assert mount.beat()
    assert [r["path"] for r in mounts.records(SYSTEM)] == [str(tmp_path / "m")]
    valid[0] = False                                          # e.g. the API key revoked
    assert not mount.beat() and unmounted == [tmp_path / "m"]


def test_a_revoked_mount_answers_eacces_and_commits_nothing(world: World,
                                                            tmp_path: Path) -> None:
    auth = world.app.services.auth
    key = auth.api_keys.create(world.principal("alice"))
    live = auth.live(auth.secret_grant("alice", key["key"]))
    view = world.app.hierarchy.view(live.principal())
    options = MountOptions(mountpoint=tmp_path / "mnt",
                           cache_dir=tmp_path / "cache", staging_dir=tmp_path / "stage")
    ops = JoistOperations(view, options, kernel=Kernel(), live=live)  # type: ignore[arg-type]
    reader = _opened(ops, A_TXT)
    assert ops.read(A_TXT, 4, 0, reader) == w.A_TXT[:4]
    fi = Fi(os.O_WRONLY)
    ops.create("/user/alice/Private/data/late.txt", 0o644, fi)
    ops.write(None, b"late bytes", 0, fi)
    still_open = Fi(os.O_WRONLY)
    ops.create("/user/alice/Private/data/open.txt", 0o644, still_open)
    ops.write(None, b"open bytes", 0, still_open)
    auth.api_keys.delete(world.principal("alice"), key["_id"])
    for call in (lambda: ops.getattr(A_TXT), lambda: ops.read(A_TXT, 4, 0, reader),
                 lambda: ops.open(A_TXT, Fi()), lambda: ops.flush(None, fi),
                 lambda: ops.readdir("/user/alice", 0)):
        with pytest.raises(FuseError) as info:
            call()
        assert info.value.errno == errno.EACCES
    ops.release(None, fi)  # frees the handle; the commit is refused and logged
    ops.release(A_TXT, reader)
    assert ops.handles.count() == 1
    ops.destroy("/")  # a handle still open at unmount is not committed either
    assert not world.app.hierarchy.view(SYSTEM).exists("/user/alice/Private/data/open.txt")
    assert not world.app.hierarchy.view(SYSTEM).exists("/user/alice/Private/data/late.txt")


def test_a_mount_follows_a_change_of_rights(world: World, tmp_path: Path) -> None:
    auth = world.app.services.auth
    carol = world.users["carol"]
    live = auth.live(auth.token_grant(str(auth.login_token(carol)["_id"])))
    view = world.app.hierarchy.view(live.principal(), read_only=True)
    options = MountOptions(mountpoint=tmp_path / "mnt",
                           cache_dir=tmp_path / "cache", staging_dir=tmp_path / "stage")
    ops = JoistOperations(view, options, kernel=Kernel(), live=live)  # type: ignore[arg-type]
    report = "/collection/shared/docs/report.txt"
    assert ops.getattr(report)["st_size"] == len(w.REPORT)
    world.app.services.groups.remove_member(SYSTEM, world.docs["team"], carol)
    with pytest.raises(FuseError) as info:
        ops.open(report, Fi())
    assert info.value.errno == errno.ENOENT  # not revoked: fewer rights
    assert ops.view.principal.groups == frozenset()


def test_expired_nodes_and_listings_are_swept(world: World, tmp_path: Path) -> None:
    ops = _ops(world, tmp_path)
    folder = A_TXT.rsplit("/", 1)[0]
    fh = ops.opendir(folder)
    names = [row[0] for row in ops.readdir(folder, fh)]
    ops.releasedir(folder, fh)
    assert "a.txt" in names
    ops.getattr(A_TXT)
    assert len(ops._nodes) >= 1 and len(ops._listings) == 1
    assert ops.sweep_caches() == 0  # nothing has expired yet
    assert ops.sweep_caches(now=time.monotonic() + 3600) >= 2
    assert len(ops._nodes) == 0 and len(ops._listings) == 0
    assert ops.getattr(A_TXT)["st_size"] == len(w.A_TXT)  # looked up afresh
