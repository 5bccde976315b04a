"""Real mounts (``joist mount`` in a subprocess, ``/dev/fuse``) used as
programs use them: ``ls -lR``, ``cat``, ``cmp``, ``stat``, xattrs, denials,
read-only refusals, the stats file, mount records, and the ways a mount ends."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from joist.admin.bootstrap import build_app
from joist.admin.server import Server
from joist.core.acl import SYSTEM
from tests import world as w
from tests.conftest import make_settings
from tests.gateways.fuse.fuse_harness import (
    MountSite,
    is_mounted,
    mount_site,
    needs_fuse,
    run_cli,
    wait_for,
)
from tests.gateways.webdav.davclient import Dav
from tests.world import upload_bytes

pytestmark = needs_fuse

DATA = "user/alice/Private/data"
BIG = os.urandom(1 << 20) * 3 + os.urandom(12345)
MANY = 600
LINK = "https://example.org/some/where"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MountSite]:
    with mount_site(tmp_path_factory.mktemp("fuse")) as site:
        svc, world = site.app.services, site.world
        alice = world.principal("alice")
        data = world.docs["data"]
        upload_bytes(site.app, alice, "folder", data, "big.bin", BIG)
        item = site.app.store.items.find_one({"folderId": data["_id"], "name": "a.txt"})
        svc.items.set_metadata(alice, item, {"color": "blue", "tags": ["x", 1]})
        links = svc.items.create(alice, data, "links")
        svc.files.create_link(alice, links, "home", LINK)
        many = svc.folders.create(alice, "folder", data["_id"], "many")
        for i in range(MANY):
            svc.items.create(alice, many, f"entry-{i:04d}")
        yield site


def _view(site: MountSite, login: str = "alice") -> Any:
    # The mount process changes things too: no path cached in this process.
    site.app.hierarchy.cache.clear()
    return site.app.hierarchy.view(site.world.principal(login))


def test_ls_cat_and_cmp_show_the_originals(site: MountSite, tmp_path: Path) -> None:
    root = site.mount("alice").root
    listing = subprocess.run(["ls", "-lR", str(root / "user/alice")], capture_output=True,
                             text=True, check=True).stdout
    for name in ("a.txt", "big.bin", "multi", "x.bin", "leaf.txt", "odd\\-name", "readme.txt"):
        assert name in listing
    view = _view(site)
    compared = 0
    for folder, _dirs, files in os.walk(root / "user/alice/Private/data/deep"):
        for name in files:
            path = Path(folder) / name
            with view.open_read("/" + str(path.relative_to(root))) as reader:
                assert path.read_bytes() == reader.read()
            compared += 1
    assert compared == 1
    original = tmp_path / "big.bin"
    original.write_bytes(BIG)
    assert subprocess.run(["cmp", str(original), str(root / DATA / "big.bin")]).returncode == 0
    cat = subprocess.run(["cat", str(root / DATA / "a.txt"), str(root / DATA / "multi/x.bin")],
                         capture_output=True, check=True).stdout
    assert cat == w.A_TXT + w.X_BIN


def test_stat_fields(site: MountSite) -> None:
    root = site.mount("alice").root
    node = _view(site).stat("/" + DATA + "/a.txt")
    info = os.stat(root / DATA / "a.txt")
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o444
    assert info.st_size == len(w.A_TXT) and info.st_nlink == 1
    assert info.st_mtime_ns == round(node.mtime * 1000) * 1_000_000
    assert info.st_uid == os.getuid() and info.st_blksize == 1 << 20
    assert info.st_blocks == (len(w.A_TXT) + 511) // 512
    folder = os.stat(root / DATA)
    assert stat.S_ISDIR(folder.st_mode) and stat.S_IMODE(folder.st_mode) == 0o555
    inodes = {entry.name: entry.inode() for entry in os.scandir(root / DATA)}
    assert inodes["a.txt"] == info.st_ino == os.stat(root / DATA / "a.txt").st_ino
    assert len(set(inodes.values())) == len(inodes)
    assert os.statvfs(root).f_namemax == 255


def test_xattrs_show_hash_and_metadata(site: MountSite) -> None:
    path = site.mount("alice").root / DATA / "a.txt"
    node = _view(site).stat("/" + DATA + "/a.txt")
    names = os.listxattr(path)
    assert "user.joist.sha512" in names and "user.joist.meta.color" in names
    assert os.getxattr(path, "user.joist.sha512").decode() == node.sha512
    assert os.getxattr(path, "user.joist.meta.color") == b"blue"
    assert json.loads(os.getxattr(path, "user.joist.meta.tags")) == ["x", 1]
    assert os.getxattr(path, "user.joist.id").decode() == str(node.ref)
    with pytest.raises(OSError) as info:
        os.getxattr(path, "user.joist.meta.nope")
    assert info.value.errno == errno.ENODATA
    with pytest.raises(OSError) as info:
        os.getxattr(path, "security.selinux")
    assert info.value.errno in (errno.ENOTSUP, errno.ENODATA)


def test_link_files_are_symlinks(site: MountSite) -> None:
    link = site.mount("alice").root / DATA / "links/home"
    assert stat.S_ISLNK(os.lstat(link).st_mode)
    assert os.readlink(link) == LINK


def test_denied_answers_as_missing(site: MountSite) -> None:
    bob = site.mount("bobby").root
    for path in (DATA + "/a.txt", "user/alice/Private", DATA + "/no-such-file"):
        with pytest.raises(FileNotFoundError):
            os.stat(bob / path)
    assert "Private" not in os.listdir(bob / "user/alice")
    assert (bob / "user/alice/Public/readme.txt").read_bytes() == w.README


@pytest.mark.parametrize("attempt", [
    lambda p: os.open(p / DATA / "a.txt", os.O_RDWR),
    lambda p: os.open(p / DATA / "new.txt", os.O_WRONLY | os.O_CREAT),
    lambda p: os.mkdir(p / DATA / "dir"),
    lambda p: os.unlink(p / DATA / "a.txt"),
    lambda p: os.rmdir(p / DATA / "deep"),
    lambda p: os.rename(p / DATA / "a.txt", p / DATA / "b.txt"),
    lambda p: os.truncate(p / DATA / "a.txt", 0),
    lambda p: os.setxattr(p / DATA / "a.txt", "user.joist.meta.k", b"v"),
    lambda p: os.chmod(p / DATA / "a.txt", 0o600),
    lambda p: os.utime(p / DATA / "a.txt"),
    lambda p: os.symlink("x", p / DATA / "sym"),
    lambda p: os.open(p / ".joist-stats", os.O_WRONLY),
])
def test_read_only_mount_refuses_writes_with_erofs(site: MountSite, attempt: Any) -> None:
    root = site.mount("alice").root
    with pytest.raises(OSError) as info:
        attempt(root)
    assert info.value.errno == errno.EROFS
    assert (root / DATA / "a.txt").read_bytes() == w.A_TXT


def test_reads_at_and_past_the_end(site: MountSite) -> None:
    path = site.mount("alice").root / DATA / "big.bin"
    fd = os.open(path, os.O_RDONLY)
    try:
        assert os.pread(fd, 100, len(BIG) - 10) == BIG[-10:]
        assert os.pread(fd, 100, len(BIG)) == b""
        assert os.pread(fd, 100, len(BIG) + (1 << 30)) == b""
        assert os.pread(fd, 1 << 20, 12345) == BIG[12345:12345 + (1 << 20)]
    finally:
        os.close(fd)


def test_large_folder_lists_whole(site: MountSite) -> None:
    names = os.listdir(site.mount("alice").root / DATA / "many")
    assert sorted(names) == [f"entry-{i:04d}" for i in range(MANY)]


def test_stats_file_counts(site: MountSite) -> None:
    root = site.mount("alice").root
    before = json.loads((root / ".joist-stats").read_text())
    (root / DATA / "multi/y.bin").read_bytes()
    after = json.loads((root / ".joist-stats").read_text())
    assert after["opens"] > before["opens"] and after["bytes_read"] > before["bytes_read"]
    assert after["principal"] == "alice" and after["read_only"] is True
    assert {"lookups", "reads", "lookup_cache_hits", "requests"} <= set(after)
    assert sorted(os.listdir(root)) == ["collection", "user"]  # not listed, but there


def test_record_and_local_path_while_mounted(site: MountSite) -> None:
    mount = site.mount("carol")
    records = wait_for(lambda: [m for m in site.app.services.mounts.records(SYSTEM)
                                if m["path"] == str(mount.point)], "the mount record")
    assert records[0]["pid"] == mount.proc.pid and records[0]["principal"]["login"] == "carol"
    node = site.app.hierarchy.view(SYSTEM).stat("/collection/shared/docs/report.txt")
    local = site.app.services.mounts.local_path(site.world.principal("carol"), node.file_id,
                                                site.app.hierarchy.view)
    # Any live mount whose principal reads the file may answer (alice's does too).
    live = {m["path"] for m in site.app.services.mounts.records(SYSTEM) if not m["stale"]}
    assert local is not None and str(mount.point) in live
    assert local.endswith("/collection/shared/docs/report.txt")
    assert local.removesuffix("/collection/shared/docs/report.txt") in live
    assert Path(local).read_bytes() == w.REPORT
    bob_only = site.app.services.mounts.local_path(
        SYSTEM, site.app.hierarchy.view(SYSTEM).stat("/collection/secret/vault/hidden.txt")
        .file_id, site.app.hierarchy.view)
    assert bob_only is None  # no live mount's principal may read it


def test_sigterm_unmounts_and_removes_the_record(site: MountSite) -> None:
    mount = site.start("alice")
    wait_for(lambda: any(m["pid"] == mount.proc.pid
                         for m in site.app.services.mounts.records(SYSTEM)), "the record")
    assert mount.terminate() == 0
    assert not is_mounted(mount.point)
    assert all(m["pid"] != mount.proc.pid for m in site.app.services.mounts.records(SYSTEM))


def test_killed_mount_leaves_no_mount_and_its_record_is_cleaned(site: MountSite) -> None:
    mount = site.start("alice")
    wait_for(lambda: any(m["pid"] == mount.proc.pid
                         for m in site.app.services.mounts.records(SYSTEM)), "the record")
    mount.proc.kill()
    mount.proc.wait(timeout=20)
    wait_for(lambda: not is_mounted(mount.point), "auto_unmount after SIGKILL")
    listed = run_cli(["mount", "--list"], site.env())
    assert listed.returncode == 0, listed.stderr
    assert str(mount.point) not in listed.stdout
    assert all(m["pid"] != mount.proc.pid for m in site.app.services.mounts.records(SYSTEM))


def test_unmount_command(site: MountSite) -> None:
    mount = site.start("alice")
    done = run_cli(["mount", str(mount.point), "-u"], site.env())
    assert done.returncode == 0, done.stderr
    assert mount.proc.wait(timeout=20) == 0
    assert not is_mounted(mount.point)


def test_bad_mount_points_and_credentials(site: MountSite, tmp_path: Path) -> None:
    busy = site.mount("alice").point
    full = tmp_path / "full"
    full.mkdir()
    (full / "f").write_text("x")
    afile = tmp_path / "afile"
    afile.write_text("x")
    empty = tmp_path / "empty"
    empty.mkdir()
    token = {"JOIST_TOKEN": site.token("alice")}
    cases = [
        ([str(full), "--admin"], {}, "not empty"),
        ([str(afile), "--admin"], {}, "not a directory"),
        ([str(tmp_path / "missing"), "--admin"], {}, "does not exist"),
        ([str(busy), "--admin"], {}, "already mounted"),
        ([str(empty)], {}, "--user LOGIN or --admin"),
        ([str(empty), "--user", "alice"], {}, "No credentials"),
        ([str(empty), "--user", "bobby"], token, "not valid for bobby"),
        ([str(empty), "--user", "alice"], {"JOIST_TOKEN": "wrong"}, "not valid"),
        ([str(empty), "--user", "alice", "--key-file", str(tmp_path / "nokey")], {},
         "Cannot read the key file"),
    ]
    for args, extra, message in cases:
        done = run_cli(["mount", *args], site.env(**extra))
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
    unreachable = run_cli(["--data-dir", str(afile), "mount", str(empty), "--admin"],
                          site.env())
    assert unreachable.returncode == 1 and "store cannot be opened" in unreachable.stderr
    assert not is_mounted(empty) and os.listdir(empty) == []


def test_api_key_from_a_file_and_from_the_environment(site: MountSite, tmp_path: Path
                                                      ) -> None:
    key = site.app.services.auth.api_keys.create(site.world.principal("carol"))["key"]
    key_file = tmp_path / "key"
    key_file.write_text(key + "\n")
    by_file = site.start("carol", "--key-file", str(key_file), env=site.env())
    by_env = site.start("carol", env=site.env(JOIST_API_KEY=key))
    for mount in (by_file, by_env):
        assert (mount.root / "collection/shared/docs/report.txt").read_bytes() == w.REPORT
        assert "secret" not in os.listdir(mount.root / "collection")
        assert mount.terminate() == 0
    assert key not in by_file.log() + by_env.log()  # secrets never reach the log


def _replace(site: MountSite, path: str, data: bytes) -> None:
    with _view(site).open_write(path) as writer:
        writer.write(data)


@pytest.mark.parametrize("mode", [(), ("--direct-io",)], ids=["page-cache", "direct-io"])
def test_a_file_replaced_while_open_is_never_a_mix(site: MountSite, mode: tuple[str, ...]
                                                   ) -> None:
    mount = site.start("alice", *mode)
    try:
        old = BIG
        new = bytes(b ^ 0xFF for b in old[:4096]) * (len(old) // 4096) + old[-(len(old) % 4096):]
        path = mount.root / DATA / "big.bin"
        fd = os.open(path, os.O_RDONLY)
        try:
            assert os.pread(fd, 65536, 0) == old[:65536]
            _replace(site, "/" + DATA + "/big.bin", new)

            def fresh() -> bool:
                got = path.read_bytes()
                assert got in (old, new), "a mix of old and new bytes"
                return got == new
            wait_for(fresh, "the new version through a new open")
            for offset in (65536, 1 << 20, len(old) - 100):
                try:
                    assert os.pread(fd, 4096, offset) == old[offset:offset + 4096]
                except OSError as exc:  # failing cleanly is the other allowed answer
                    assert exc.errno in (errno.ESTALE, errno.EIO)
                    assert not mode  # a direct-io handle keeps reading its own version
        finally:
            os.close(fd)
            _replace(site, "/" + DATA + "/big.bin", BIG)
    finally:
        mount.stop()


def test_chunk_cache_pages_are_kept_until_a_webdav_put_replaces_the_file(
        site: MountSite) -> None:
    """Reads through the chunk cache (the path of S3 and GridFS blobs) keep the
    kernel's pages across opens while the file is unchanged; once another
    process replaced it (a WebDAV PUT), the very next open reads the new bytes."""
    path = "/" + DATA + "/cached.bin"
    old, new = os.urandom(300_000), os.urandom(200_000)
    _replace(site, path, old)
    mount = site.start("alice", "--chunk-cache", "always")
    # A server of its own on the mount's store (SQLite on every engine: the
    # mount is another process).
    app = build_app(make_settings(site.data_dir, **{"server.port": 0}), env={})
    server = Server(app)
    try:
        server.start()
        mounted = mount.root / path.lstrip("/")
        assert mounted.read_bytes() == old
        assert mounted.read_bytes() == old
        counters = json.loads((mount.root / ".joist-stats").read_text())
        assert counters["chunk_reads"] >= 1 and counters["fd_reads"] == 0
        assert counters["page_cache_kept"] >= 1  # the second open kept the kernel's copy
        dav = Dav(server.url + "/dav", ("alice", w.PASSWORD))
        try:
            assert dav.request("PUT", path, data=new).status_code in (200, 201, 204)
        finally:
            dav.close()
        assert mounted.read_bytes() == new  # no wait: the open itself sees the change
        assert mounted.read_bytes() == new
    finally:
        server.stop()
        app.close()
        mount.stop()


def test_a_file_deleted_while_open(site: MountSite) -> None:
    view = _view(site)
    with view.open_write("/" + DATA + "/doomed.txt") as writer:
        writer.write(b"doomed" * 1000)
    root = site.mount("alice").root
    fd = os.open(root / DATA / "doomed.txt", os.O_RDONLY)
    try:
        view.remove("/" + DATA + "/doomed.txt")
        try:
            assert os.pread(fd, 6000, 0) == b"doomed" * 1000
        except OSError as exc:
            assert exc.errno in (errno.ESTALE, errno.EIO, errno.ENOENT)
        wait_for(lambda: not (root / DATA / "doomed.txt").exists(), "the removal to show")
    finally:
        os.close(fd)


def test_direct_io_mount_reads_the_same_bytes(site: MountSite) -> None:
    root = site.mount("alice", "--direct-io").root
    assert (root / DATA / "big.bin").read_bytes() == BIG
    assert json.loads((root / ".joist-stats").read_text())["direct_io"] is True


@pytest.fixture
def rw(tmp_path: Path) -> Iterator[MountSite]:
    with mount_site(tmp_path / "rw") as site:
        yield site


def test_writable_mount_edits_in_place(rw: MountSite) -> None:
    root = rw.mount("alice", "--rw").root
    a = root / DATA / "a.txt"
    with open(a, "ab") as f:
        f.write(b"appended")
    assert a.read_bytes() == w.A_TXT + b"appended"
    with open(a, "r+b") as f:
        f.seek(6)
        f.write(b"FILE")
    assert a.read_bytes()[:16] == b"alpha FILE\nalpha"
    os.truncate(a, 10)
    assert a.read_bytes() == b"alpha FILE"
    assert _view(rw).open_read("/" + DATA + "/a.txt").read() == b"alpha FILE"
    os.setxattr(a, "user.joist.meta.stage", b'{"n": 2}')
    assert _view(rw).stat("/" + DATA + "/a.txt").meta["stage"] == {"n": 2}
    os.removexattr(a, "user.joist.meta.stage")
    assert "stage" not in _view(rw).stat("/" + DATA + "/a.txt").meta
    with pytest.raises(OSError) as info:
        os.rename(root / DATA / "odd\\-name", root / DATA / "deep")
    assert info.value.errno == errno.ENOTEMPTY
    assert (root / DATA / "deep/d1/d2/d3/leaf.txt").read_bytes() == w.LEAF


def test_writable_mount_denies_at_open(rw: MountSite) -> None:
    root = rw.mount("carol", "--rw").root
    with pytest.raises(PermissionError):
        open(root / "collection/shared/docs/new.txt", "wb")  # noqa: SIM115 - must fail
    with pytest.raises(PermissionError):
        open(root / "collection/shared/docs/report.txt", "r+b")  # noqa: SIM115
    assert "new.txt" not in os.listdir(root / "collection/shared/docs")


def test_admin_mount_sees_everything(site: MountSite) -> None:
    root = site.mount("--admin").root
    assert {"shared", "secret"} <= set(os.listdir(root / "collection"))
    assert (root / "collection/secret/vault/hidden.txt").read_bytes() == w.HIDDEN
    assert json.loads((root / ".joist-stats").read_text())["principal"] == "system"


def test_a_new_item_made_elsewhere_shows_at_the_next_listing(site: MountSite) -> None:
    """The mount keeps listings while the store stands still: an item another
    process creates (REST's POST /item, an empty one) must end that at once."""
    mount = site.mount("alice")
    folder = mount.root / DATA
    before = set(os.listdir(folder))
    assert "made-elsewhere" not in before
    svc, data = site.app.services, site.world.docs["data"]
    svc.items.create(site.world.principal("alice"), data, "made-elsewhere")
    assert set(os.listdir(folder)) == before | {"made-elsewhere"}
    assert (folder / "made-elsewhere").is_dir()
