"""FUSE gateway benchmark: a Joist mount against the same bytes on the local disk.

Builds an embedded store (SQLite + filesystem assetstore) holding a 1 GiB file
and 2,000 small files (20 folders of 100, 1-8 KiB), writes the same bytes to a
plain directory on the same disk, mounts the store twice as a normal user
(`joist mount`, in a subprocess: once plain, once `--direct-io`) and times,
side by side, in one run:

* ``cat`` of the 1 GiB file: the local page-cache read (reference); through
  the mount on a fresh open after the kernel's copy was evicted (fadvise
  DONTNEED on the mounted file; the blob itself stays cached, like the
  reference); and a re-read (the kernel page cache kept across opens);
* ``dd bs=1M`` of it on the ``--direct-io`` mount, against ``dd bs=1M`` locally;
* ``ls -lR`` of the 2,000 files, with the dentry and inode caches dropped
  before each run (``echo 2 > /proc/sys/vm/drop_caches``, root only) and warm;
* ``cat`` of the 2,000 files (one ``cat`` with every path), cold and warm;
* ``cat`` of the 1 GiB file through the on-disk chunk cache (``--chunk-cache
  always``, the path of blobs with no local file): cold (a fresh mount and an
  empty cache), warm (a new open of the unchanged file: the kernel keeps its
  pages, ``keep_cache``) and warm with the kernel's copy evicted first (every
  read answered from the cache's chunk files).

The peer, ``rclone mount`` of the plain directory (``apt-get install rclone``;
skipped, saying so, when missing), does the same work: with its defaults, and
with ``--vfs-cache-mode full`` (its on-disk read cache) for the chunk-cache
rows. rclone 1.60 has no direct-I/O mount: its dd row is on the plain mount.

Each figure is the median of ``--runs`` runs (at least 5) with its spread
(min-max); ratios are local time / mount time (1.0 = as fast as local), and
rclone time / Joist time (>= 1.0: Joist is at least as fast).
Targets: first cat >= 0.1, dd --direct-io >= 0.4, re-read >= 0.8, ls -lR >= 0.3,
small-file cat (cold) >= 0.2, chunk cache warm >= 0.3; Joist / rclone >= 1.0.

Run by hand, as root:  .venv/bin/python benchmarks/fuse_bench.py [--runs 5] [--dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import rclone_peer

from joist.admin.bootstrap import App, build_app
from joist.core.acl import SYSTEM, Principal
from joist.core.settings import load_settings

Row = tuple[str, list[float], list[float], list[float] | None, int | None]

GIB = 1 << 30
BLOCK = os.urandom(1 << 20)
SMALL_DIRS, SMALL_PER_DIR = 20, 100
TARGETS = {"cat 1 GiB, first": 0.1, "cat 1 GiB, re-read": 0.8, "dd bs=1M --direct-io": 0.4,
           "ls -lR 2,000 files, cold": 0.3, "cat 2,000 files, cold": 0.2,
           "cat 1 GiB, chunk cache warm": 0.3}
PEER_TARGET = 1.0  # rclone time / Joist time


def _settings(data: Path) -> Any:
    return load_settings(env={}, search=False, overrides={
        "data_dir": str(data), "security.bcrypt_rounds": 4, "assetstore.reserve_mb": 0})


class _Stream:
    """``size`` bytes of repeated random blocks, read in pieces (no 1 GiB in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        out = (BLOCK * (n // len(BLOCK) + 1))[:n]
        self.left -= len(out)
        return out


def _upload(app: App, who: Principal, folder: dict[str, Any], name: str, data: Any,
            size: int) -> None:
    step = app.services.uploads.begin(who, "folder", folder["_id"], name, size)
    if step.upload is not None:
        app.services.uploads.write(who, step.upload["_id"], 0, data, size)


def build(root: Path) -> tuple[Path, str]:
    """The store under ``root/data`` and the same bytes under ``root/local``;
    returns the local root and a token for the mounting user."""
    local = root / "local"
    with build_app(_settings(root / "data")) as app:
        svc = app.services
        user = svc.users.create(SYSTEM, login="bench", email="bench@example.org",
                                first_name="B", last_name="N", password="password")
        who = Principal.from_user(user)
        public = svc.folders.list(who, "user", user["_id"], name="Public")[0][0]
        big = local / "big"
        big.mkdir(parents=True)
        with open(big / "one-gib.bin", "wb") as out:
            for _ in range(GIB // len(BLOCK)):
                out.write(BLOCK)
        big_folder = svc.folders.create(who, "folder", public["_id"], "big")
        _upload(app, who, big_folder, "one-gib.bin", _Stream(GIB), GIB)
        small = svc.folders.create(who, "folder", public["_id"], "small")
        for d in range(SMALL_DIRS):
            folder = svc.folders.create(who, "folder", small["_id"], f"dir{d:02d}")
            (local / "small" / f"dir{d:02d}").mkdir(parents=True)
            for f in range(SMALL_PER_DIR):
                data = os.urandom(1024 + (d * SMALL_PER_DIR + f) * 37 % 7168)
                (local / "small" / f"dir{d:02d}" / f"file{f:03d}.dat").write_bytes(data)
                _upload(app, who, folder, f"file{f:03d}.dat", _BytesReader(data), len(data))
        token = svc.auth.login_token(user)["_id"]
    return local, str(token)


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        n = len(self.data) - self.pos if n < 0 else n
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out


@contextmanager
def mounted(root: Path, token: str, name: str, *extra: str) -> Iterator[Path]:
    point = root / name
    point.mkdir(exist_ok=True)
    env = {**os.environ, "JOIST_TOKEN": token, "JOIST_DATA_DIR": str(root / "data"),
           "JOIST_FUSE__CHUNK_CACHE_MB": "2048"}
    log = open(root / f"{name}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "joist.admin.cli", "mount", str(point),
                             "--user", "bench", *extra], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not os.path.ismount(point):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mount failed: {(root / f'{name}.log').read_text()}")
            time.sleep(0.02)
        yield point / "user" / "bench" / "Public"
    finally:
        subprocess.run(["fusermount3", "-u", str(point)], check=False, capture_output=True)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _sh(command: str) -> None:
    subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL)


def _drop_dentries() -> None:
    Path("/proc/sys/vm/drop_caches").write_text("2\n")


def _evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def timed(runs: int, command: str, before: Callable[[], None] | None = None) -> list[float]:
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        _sh(command)
        times.append(time.perf_counter() - start)
    return times


def _fmt(times: list[float], size: int | None = None) -> str:
    med = statistics.median(times)
    if size:
        rates = sorted(size / t / 1e6 for t in times)
        return f"{size / med / 1e6:8.0f} MB/s ({rates[0]:.0f}-{rates[-1]:.0f})"
    return f"{med * 1000:8.1f} ms ({min(times) * 1000:.1f}-{max(times) * 1000:.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", help="work directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    runs = max(args.runs, 5)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="joist-fuse-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    try:
        saved = root / "token.txt"
        if saved.exists():  # --dir of an earlier run: reuse its store
            local, token = root / "local", saved.read_text()
        else:
            print(f"building the store in {root} ...", flush=True)
            local, token = build(root)
            saved.write_text(token)
        peer = rclone_peer.available()
        print(f"peer: {rclone_peer.version()}" if peer else
              "rclone is not installed: no rclone column (apt-get install rclone)", flush=True)
        big_local = local / "big" / "one-gib.bin"
        with contextlib.ExitStack() as mounts:
            mnt = mounts.enter_context(mounted(root, token, "mnt"))
            direct = mounts.enter_context(mounted(root, token, "mnt-direct", "--direct-io"))
            rc = mounts.enter_context(rclone_peer.mount(local, root / "mnt-rclone", root)) \
                if peer else None

            def both(command: str, where: str, before: Callable[[Path], None] | None = None,
                     base: Path = mnt) -> tuple[list[float], list[float] | None]:
                def run(top: Path) -> list[float]:
                    path = top / where
                    return timed(runs, command.format(path),
                                 None if before is None else (lambda: before(path)))
                return run(base), None if rc is None else run(rc)

            big = "big/one-gib.bin"
            _sh(f"cat {big_local} > /dev/null")  # the reference reads from page cache
            _sh(f"cat {mnt / big} > /dev/null")  # and so does the blob behind the mount
            ref = timed(runs, f"cat {big_local} > /dev/null")
            rows.append(("cat 1 GiB, first", ref, *both("cat {} > /dev/null", big, _evict), GIB))
            rows.append(("cat 1 GiB, re-read", ref, *both("cat {} > /dev/null", big), GIB))
            dd = "dd if={} of=/dev/null bs=1M status=none"
            rows.append(("dd bs=1M --direct-io", timed(runs, dd.format(big_local)),
                         *both(dd, big, base=direct), GIB))
            for label, command in (("ls -lR 2,000 files", "ls -lR {} > /dev/null"),
                                   ("cat 2,000 files",
                                    "find {} -type f -print0 | xargs -0 cat > /dev/null")):
                for state, before in (("cold", _drop_dentries), ("warm", None)):
                    drop = None if before is None else (lambda _p, b=before: b())
                    rows.append((f"{label}, {state}",
                                 timed(runs, command.format(local / "small"), before),
                                 *both(command, "small", drop), None))
            stats = json.loads((mnt.parents[2] / ".joist-stats").read_text())
        # The chunk cache (blobs with no local file: S3, GridFS), forced on for the
        # local blob: cold = a fresh mount and an empty cache per run; warm = a
        # new open of the unchanged file (keep_cache); evicted = the kernel's copy
        # evicted, every chunk on the cache's disk. rclone's peer is its VFS cache
        # in full mode, the same work.
        cold, warm, evicted, chunk_stats = _chunk_cache_runs(runs, lambda run, cache: mounted(
            root, token, f"mnt-chunks-{run}", "--chunk-cache", "always", "--cache-dir",
            str(cache)), root, lambda p: p / "big" / "one-gib.bin")
        peer_cold = peer_warm = peer_evicted = None
        if peer:
            peer_cold, peer_warm, peer_evicted, _ = _chunk_cache_runs(
                runs, lambda run, cache: rclone_peer.mount(
                    local, root / f"mnt-rclone-chunks-{run}", root, "--vfs-cache-mode", "full",
                    "--cache-dir", str(cache)), root, lambda p: p / "big" / "one-gib.bin",
                joist=False)
        rows.append(("cat 1 GiB, chunk cache cold", ref, cold, peer_cold, GIB))
        rows.append(("cat 1 GiB, chunk cache warm", ref, warm, peer_warm, GIB))
        rows.append(("chunk cache warm, evicted", ref, evicted, peer_evicted, GIB))
        _report(rows)
        print("chunk cache counters:", json.dumps({k: chunk_stats.get(k) for k in (
            "chunk_reads", "chunk_cache_hits", "chunk_cache_misses", "page_cache_kept")}))
        print("\nmount counters:", json.dumps({k: stats[k] for k in (
            "lookups", "lookup_cache_hits", "readdirs", "opens", "page_cache_kept", "reads",
            "fd_reads", "bytes_read", "xattr_reads")}))
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def _chunk_cache_runs(runs: int, mount: Callable[[int, Path], Any], root: Path,
                      file_in: Callable[[Path], Path], joist: bool = True,
                      ) -> tuple[list[float], list[float], list[float], Any]:
    """Cold reads (a fresh mount and cache per run) and, on the last mount, warm
    ones: re-opens of the unchanged file (the kernel may keep its pages), then
    re-opens after evicting the kernel's copy (the cache's own disk). Returns
    them with the last Joist mount's counters ({} for the peer)."""
    cold: list[float] = []
    warm: list[float] = []
    evicted: list[float] = []
    stats: Any = None
    for run in range(runs):
        cache = root / f"chunks-{run}"
        with mount(run, cache) as top:
            path = file_in(top)
            cold += timed(1, f"cat {path} > /dev/null")
            if run == runs - 1:
                warm = timed(runs, f"cat {path} > /dev/null")
                evicted = timed(runs, f"cat {path} > /dev/null", lambda p=path: _evict(p))
                if joist:  # the yielded path is <point>/user/bench/Public
                    stats = json.loads((top.parents[2] / ".joist-stats").read_text())
        shutil.rmtree(cache, ignore_errors=True)
    return cold, warm, evicted, stats or {}


def _report(rows: list[Row]) -> None:
    print(f"\n{'measure':28} {'local':>28} {'joist mount':>28} {'ratio':>6} {'target':12}"
          f" {'rclone mount':>28} {'joist/rclone':>12}")
    for label, ref_times, ours, peer, size in rows:
        ratio = statistics.median(ref_times) / statistics.median(ours)
        target = TARGETS.get(label)
        verdict = "" if target is None else \
            f">= {target} {'ok' if ratio >= target else 'MISSED'}"
        line = f"{label:28} {_fmt(ref_times, size):>28} {_fmt(ours, size):>28} " \
               f"{ratio:6.2f} {verdict:12}"
        if peer:
            versus = statistics.median(peer) / statistics.median(ours)
            line += f" {_fmt(peer, size):>28} {versus:6.2f} " \
                    f"{'ok' if versus >= PEER_TARGET else 'MISSED'}"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
