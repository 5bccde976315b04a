"""Fuzzing the FUSE gateway's operations (issue 12, item 6) without a mount:
the kernel hands paths over as bytes, which the binding decodes as UTF-8 with
``surrogateescape``, so odd names arrive as text with lone surrogates. Every
operation must return or raise a ``FuseError`` with a meaningful errno, never
EIO (FUSE's word for "the server failed"), and log no unexpected failure."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joist.admin.bootstrap import App, build_app
from joist.core.errors import NotFoundError
from joist.gateways.fuse import MountOptions
from joist.gateways.fuse.errors import FuseError
from joist.gateways.fuse.operations import JoistOperations
from tests.conftest import make_settings
from tests.gateways.fuse.fuse_harness import mount_site, needs_fuse
from tests.security.fuzzkit import FUZZ, LogWatch, json_text, odd_bytes, odd_text, watching_logs
from tests.world import A_TXT, build_world

SCRATCH = "/user/alice/Private/scratch"
READ_BASES = ["", "/user", "/user/alice/Private/data", "/user/alice/Private/data/a.txt",
              "/collection/shared", "/collection/secret", "/.joist-stats"]


class Fi:
    """What ``fuse_file_info`` carries for the operations class."""

    def __init__(self, flags: int) -> None:
        self.flags, self.fh = flags, 0
        self.keep_cache = self.direct_io = self.noflush = 0


@dataclass(repr=False)
class Target:
    app: App
    ops: JoistOperations
    watch: LogWatch

    def refresh(self) -> None:
        view = self.ops.view
        with contextlib.suppress(NotFoundError):
            view.remove(SCRATCH, recursive=True)
        view.mkdir(SCRATCH)
        with view.open_write(SCRATCH + "/f.txt") as writer:
            writer.write(b"0123456789")
        self.app.hierarchy.cache.clear()


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    root: Path = tmp_path_factory.mktemp("fuzzfuse")
    app = build_app(make_settings(root / "data"), env={})
    try:
        world = build_world(app)
        view = app.hierarchy.view(world.principal("alice"))
        options = MountOptions(mountpoint=root / "mnt",
                               cache_dir=root / "cache", staging_dir=root / "stage")
        ops = JoistOperations(view, options)
        try:
            with watching_logs() as watch:
                fuzz = Target(app, ops, watch)
                fuzz.refresh()
                yield fuzz
        finally:
            ops.destroy("/")
    finally:
        app.close()


# A name as the kernel's bytes decoded by the binding.
names = st.one_of(odd_text.map(lambda t: t.replace("/", "")),
                  odd_bytes.map(lambda b: b.replace(b"/", b"").decode("utf-8",
                                                                      "surrogateescape")),
                  st.sampled_from(["f.txt", "a.txt", "data", "\udcff", "a\udc80b"]))


def _read(ops: JoistOperations, path: str, n: int) -> None:
    fi = Fi(os.O_RDONLY)
    ops.open(path, fi)
    try:
        ops.read(path, n % (1 << 20), n, fi)
    finally:
        ops.release(path, fi)


def _list(ops: JoistOperations, path: str, _n: int) -> None:
    fh = ops.opendir(path)
    try:
        ops.readdir(path, fh)
    finally:
        ops.releasedir(path, fh)


def _write(ops: JoistOperations, path: str, n: int) -> None:
    fi = Fi(os.O_WRONLY | os.O_CREAT)
    ops.create(path, 0o644, fi)
    try:
        ops.write(path, b"x" * (n % 100), n % 1000, fi)
        ops.flush(path, fi)
    finally:
        ops.release(path, fi)


READS: dict[str, Callable[[JoistOperations, str, int], Any]] = {
    "getattr": lambda o, p, n: o.getattr(p),
    "access": lambda o, p, n: o.access(p, n % 8),
    "readlink": lambda o, p, n: o.readlink(p),
    "statfs": lambda o, p, n: o.statfs(p),
    "listxattr": lambda o, p, n: o.listxattr(p),
    "getxattr": lambda o, p, n: o.getxattr(p, "user.joist.meta.\udcff" if n % 2 else
                                           "user.joist.id"),
    "read": _read,
    "list": _list,
}
WRITES: dict[str, Callable[[JoistOperations, str, int], Any]] = {
    "create": _write,
    "mkdir": lambda o, p, n: o.mkdir(p, n % 0o10000),
    "unlink": lambda o, p, n: o.unlink(p),
    "rmdir": lambda o, p, n: o.rmdir(p),
    "rename": lambda o, p, n: o.rename(p, SCRATCH + "/f.txt" if n % 2 else p + "2"),
    "rename-in": lambda o, p, n: o.rename(SCRATCH + "/f.txt", p),
    "truncate": lambda o, p, n: o.truncate(p, n % (1 << 40)),
    "chmod": lambda o, p, n: o.chmod(p, n),
    "utimens": lambda o, p, n: o.utimens(p, (n, n)),
    "removexattr": lambda o, p, n: o.removexattr(p, "user.joist.meta.k"),
}


def _verdict(target: Target, operation: str, path: str, call: Callable[[], Any]) -> None:
    try:
        call()
    except FuseError as exc:
        assert exc.errno != errno.EIO, (operation, path)
    logged = target.watch.take()
    assert not logged, (operation, path, logged)


@FUZZ
@given(operation=st.sampled_from(sorted(READS)), base=st.sampled_from(READ_BASES),
       tail=st.lists(names, max_size=2), number=st.integers(0, 1 << 62))
def test_reads(target: Target, operation: str, base: str, tail: list[str],
               number: int) -> None:
    path = "/".join([base, *tail]) or "/"
    _verdict(target, operation, path, lambda: READS[operation](target.ops, path, number))


@FUZZ
@given(operation=st.sampled_from(sorted(WRITES)), tail=st.lists(names, min_size=1, max_size=2),
       number=st.integers(0, 1 << 62))
def test_writes(target: Target, operation: str, tail: list[str], number: int) -> None:
    if operation in ("rename", "rename-in", "unlink", "rmdir"):
        target.refresh()
    path = "/".join([SCRATCH, *tail])
    _verdict(target, operation, path, lambda: WRITES[operation](target.ops, path, number))


@FUZZ
@given(name=st.one_of(st.just("user.joist.meta."), names.map(lambda n: "user.joist.meta." + n),
                      names), value=st.one_of(
    json_text.map(lambda t: t.encode("utf-8", "surrogatepass")), odd_bytes))
def test_xattrs(target: Target, name: str, value: bytes) -> None:
    path = SCRATCH + "/f.txt"
    _verdict(target, "setxattr", name, lambda: target.ops.setxattr(path, name, value, 0))


# ---------------------------------------------------------------- through a real mount

ODD_NAMES = [b"\xff.txt", b"a\xc3", b"\xed\xa0\x80", b"caf\xc3\xa9.txt", b"\xe2\x80\xae.txt",
             b"x" * 255, b"\x1b[1m", b"new\nline"]


MOUNT_ACTIONS: dict[str, Callable[[bytes, bytes], Any]] = {
    "create": lambda d, n: os.close(os.open(d + n, os.O_CREAT | os.O_WRONLY, 0o644)),
    "mkdir": lambda d, n: os.mkdir(d + n + b".d"),
    "stat": lambda d, n: os.stat(d + n),
    "listdir": lambda d, n: os.listdir(d + n),
    "rename": lambda d, n: os.rename(d + b"a.txt", d + n),
    "setxattr": lambda d, n: os.setxattr(d + b"a.txt", b"user.joist.meta." + n,
                                         b'{"a":' * 80 + b"1" + b"}" * 80),
}


@needs_fuse
def test_odd_names_through_a_mount(tmp_path: Path) -> None:
    """The kernel's own bytes: names that are not UTF-8 are refused with
    EINVAL, valid ones work, and the mount logs no unexpected failure."""
    with mount_site(tmp_path / "site") as site:
        mount = site.mount("alice", "--rw")
        data = os.fsencode(mount.root) + b"/user/alice/Private/data/"
        for name in ODD_NAMES:
            valid = _valid(name)
            for what, action in MOUNT_ACTIONS.items():
                try:
                    action(data, name)
                except OSError as exc:
                    assert exc.errno != errno.EIO, (what, name, exc)
                    if not valid:
                        assert exc.errno in (errno.EINVAL, errno.ENOENT, errno.ENOTDIR,
                                             errno.ENAMETOOLONG), (what, name, exc)
                else:
                    assert valid or what in ("listdir",), (what, name, "accepted")
                if what == "rename" and os.path.exists(data + name):
                    os.rename(data + name, data + b"a.txt")  # back for the next name
        with open(data + b"a.txt", "rb") as handle:
            assert handle.read() == A_TXT
        assert "unexpectedly" not in mount.log(), mount.log()[-2000:]


def _valid(name: bytes) -> bool:
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(ord(ch) < 32 for ch in text)
