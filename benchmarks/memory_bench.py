"""Memory of a real `joist serve` and `joist mount` while one big folder is listed.

Builds an embedded store with one folder of ``--items`` items (default 100,000;
inserted straight through the store, as ``core_bench`` does), starts a real
``joist serve`` (REST, WebDAV, SFTP) and a real ``joist mount`` on it, then
lists the folder three times through each gateway:

* REST: ``GET /api/v1/item?folderId=...`` in pages of ``--page`` (1,000);
* WebDAV: one ``PROPFIND`` of depth 1 (allprop);
* SFTP: ``listdir_attr`` (paramiko);
* FUSE: ``ls -l`` of the mounted folder (plus ``ls -l`` of a local directory of
  as many empty files, the reference).

It prints each listing's time (median of the passes, min-max), the CPU time
the server or mount spent on it (unlike wall time, not inflated by other work
on the machine), and the RSS of the server and of the mount (``VmRSS`` and
``VmHWM`` from /proc/<pid>/status): at start, after each gateway, at the peak,
and settled (after 12 s idle, two of the reclaimer's sweeps). Issue 18 item
7's target: at most 300 MiB for the server after every gateway has listed the
folder three times, listing times no worse.

Run by hand:  .venv/bin/python benchmarks/memory_bench.py [--items 1000000] [--passes 3]
(the FUSE part needs /dev/fuse and fusermount3; ``--only rest,dav,sftp`` skips it).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paramiko
from bson import ObjectId

from joist.admin.bootstrap import build_app
from joist.core.acl import SYSTEM, Principal
from joist.core.clock import utcnow
from joist.core.settings import load_settings

LOGIN, PASSWORD = "bench", "bench-password-1"
BATCH = 5000
MIB = 1 << 20


def _item(folder: dict[str, Any], name: str, owner: ObjectId) -> dict[str, Any]:
    now = utcnow()
    return {"name": name, "lowerName": name.lower(), "description": "",
            "folderId": folder["_id"], "baseParentType": folder["baseParentType"],
            "baseParentId": folder["baseParentId"], "creatorId": owner, "created": now,
            "updated": now, "size": 0, "meta": {}, "fileCount": 0}


def build(data: Path, items: int) -> tuple[str, str]:
    """The store under ``data``: user ``bench`` with ``items`` items in
    Public/big. Returns the folder id and a token of the user."""
    settings = load_settings(env={}, search=False, overrides={
        "data_dir": str(data), "security.bcrypt_rounds": 4, "assetstore.reserve_mb": 0})
    with build_app(settings) as app:
        svc = app.services
        user = svc.users.create(SYSTEM, login=LOGIN, email="bench@example.org",
                                first_name="B", last_name="N", password=PASSWORD)
        who = Principal.from_user(user)
        public = svc.folders.list(who, "user", user["_id"], name="Public")[0][0]
        big = svc.folders.create(who, "folder", public["_id"], "big")
        for start in range(0, items, BATCH):
            app.store.items.insert_many([_item(big, f"item{i:08d}", user["_id"])
                                         for i in range(start, min(items, start + BATCH))])
        svc.tree.sizes.count_items(big["_id"], items)  # as ItemService.create does
        token = svc.auth.login_token(user)["_id"]
    return str(big["_id"]), str(token)


# ------------------------------------------------------------------ memory
def memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid``: unlike wall time, not inflated by
    other work on the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settled(pid: int, seconds: int = 12) -> float:
    """RSS after ``seconds`` idle: two of the reclaimer's sweeps (memory.reclaim_interval,
    5 s by default) have had their chance to give memory back."""
    for _ in range(seconds):
        time.sleep(1.0)
    return memory(pid)[0]


# ------------------------------------------------------------------ processes
def _env(data: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "JOIST_DATA_DIR": str(data), "JOIST_SECURITY__BCRYPT_ROUNDS": "4",
            "JOIST_ASSETSTORE__RESERVE_MB": "0", "JOIST_SFTP__PORT": "0", **extra}


@contextmanager
def serving(root: Path, data: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, int]]:
    """A real ``joist serve``; yields (process, base URL, SFTP port)."""
    log_path = root / "serve.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    # One process (--workers 1): the figure is the RSS of `joist serve` per process.
    proc = subprocess.Popen([sys.executable, "-m", "joist.admin.cli", "serve", "--port", "0",
                             "--workers", "1"],
                            env=_env(data), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        url, sftp_port = "", 0
        while not (url and sftp_port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve failed: {log_path.read_text()}")
            for line in log_path.read_text().splitlines():
                if line.startswith("Joist is running. REST API: "):
                    url = line.split(": ", 1)[1].removesuffix("/api/v1")
                elif line.startswith("SFTP (read-only): sftp -P "):
                    sftp_port = int(line.split()[4])
            time.sleep(0.05)
        yield proc, url, sftp_port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextmanager
def mounted(root: Path, data: Path, token: str) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    point = root / "mnt"
    point.mkdir(exist_ok=True)
    log = open(root / "mount.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "joist.admin.cli", "mount", str(point),
                             "--user", LOGIN], env=_env(data, JOIST_TOKEN=token),
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not os.path.ismount(point):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mount failed: {(root / 'mount.log').read_text()}")
            time.sleep(0.05)
        yield proc, point / "user" / LOGIN / "Public" / "big"
    finally:
        subprocess.run(["fusermount3", "-u", str(point)], check=False, capture_output=True)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# ------------------------------------------------------------------ listings
def list_rest(url: str, token: str, folder_id: str, page: int) -> int:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    total = 0
    try:
        for offset in range(0, 10**9, page):
            conn.request("GET", f"/api/v1/item?folderId={folder_id}&limit={page}"
                                f"&offset={offset}&sort=lowerName",
                         headers={"Girder-Token": token})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"REST {resp.status}: {body[:200]!r}")
            got = len(json.loads(body))
            total += got
            if got < page:
                return total
    finally:
        conn.close()
    return total


def list_dav(url: str) -> int:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    auth = base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()
    try:
        conn.request("PROPFIND", f"/dav/user/{LOGIN}/Public/big/",
                     headers={"Depth": "1", "Authorization": f"Basic {auth}"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 207:
            raise RuntimeError(f"PROPFIND {resp.status}: {body[:200]!r}")
        return body.count(b"<D:response>") - 1
    finally:
        conn.close()


@contextmanager
def sftp_client(port: int) -> Iterator[paramiko.SFTPClient]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    transport = paramiko.Transport(sock)
    try:
        transport.connect(username=LOGIN, password=PASSWORD)
        client = paramiko.SFTPClient.from_transport(transport)
        assert client is not None
        yield client
    finally:
        transport.close()


def list_sftp(port: int) -> int:
    with sftp_client(port) as client:
        return len(client.listdir_attr(f"/user/{LOGIN}/Public/big"))


def list_ls(path: Path) -> int:
    out = subprocess.run(["ls", "-l", str(path)], check=True, capture_output=True).stdout
    return out.count(b"\n") - 1  # the "total" line


def timed(passes: int, fn: Callable[[], int], expect: int, pid: int | None = None
          ) -> tuple[list[float], list[float]]:
    """Wall times of ``passes`` listings, and the CPU time ``pid`` spent on each."""
    times, cpu = [], []
    for _ in range(passes):
        before = cpu_seconds(pid) if pid else 0.0
        start = time.perf_counter()
        got = fn()
        times.append(time.perf_counter() - start)
        cpu.append(cpu_seconds(pid) - before if pid else 0.0)
        if got != expect:
            raise RuntimeError(f"listed {got} entries, expected {expect}")
    return times, cpu


def _fmt(times: list[float]) -> str:
    return f"{statistics.median(times):6.2f} s ({min(times):.2f}-{max(times):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--only", default="rest,dav,sftp,fuse",
                        help="comma-separated gateways to list through (default: all)")
    parser.add_argument("--dir", help="work directory (default: a temporary one)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="joist-memory-", dir=args.dir))
    try:
        data = root / "data"
        start = time.perf_counter()
        folder_id, token = build(data, args.items)
        print(f"built {args.items:,} items in {time.perf_counter() - start:.1f} s")
        only = set(args.only.split(","))
        fuse = "fuse" in only and os.path.exists("/dev/fuse") and shutil.which("fusermount3")
        rows: list[tuple[str, tuple[list[float], list[float]]]] = []
        with serving(root, data) as (proc, url, sftp_port):
            base = settled(proc.pid, 3)
            print(f"server RSS at start: {base:.0f} MiB")
            steps: list[tuple[str, str, Callable[[], int]]] = [
                ("rest", f"REST pages of {args.page:,}",
                 lambda: list_rest(url, token, folder_id, args.page)),
                ("dav", "WebDAV PROPFIND depth 1", lambda: list_dav(url)),
                ("sftp", "SFTP listdir_attr", lambda: list_sftp(sftp_port))]
            for key, name, fn in steps:
                if key not in only:
                    continue
                rows.append((name, timed(args.passes, fn, args.items, proc.pid)))
                rss, hwm = memory(proc.pid)
                print(f"  {name:28} {_fmt(rows[-1][1][0])}   server RSS {rss:6.0f} MiB, "
                      f"peak {hwm:6.0f} MiB")
            if fuse:
                local = root / "local"
                local.mkdir()
                for i in range(args.items):
                    (local / f"item{i:08d}").touch()
                rows.append(("ls -l, local directory", timed(args.passes,
                                                             lambda: list_ls(local),
                                                             args.items)))
                with mounted(root, data, token) as (mount, path):
                    mount_base = memory(mount.pid)[0]
                    rows.append(("FUSE ls -l", timed(args.passes, lambda: list_ls(path),
                                                     args.items, mount.pid)))
                    m_rss, m_hwm = memory(mount.pid)
                    m_after = settled(mount.pid)
                print(f"  {'FUSE ls -l':28} {_fmt(rows[-1][1][0])}   mount RSS {mount_base:.0f} -> "
                      f"{m_rss:.0f} MiB, peak {m_hwm:.0f} MiB, settled {m_after:.0f} MiB")
            rss, hwm = memory(proc.pid)
            after = settled(proc.pid)
        print("load average (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
        print(f"\nserver RSS: start {base:.0f} MiB, after the work {rss:.0f} MiB, "
              f"settled {after:.0f} MiB, peak {hwm:.0f} MiB (target: <= 300 MiB)")
        print(f"\n{'listing of ' + format(args.items, ',') + ' entries':30} "
              f"{'wall, median (min-max) of ' + str(args.passes):30} CPU of the server/mount")
        for name, (times, cpu) in rows:
            print(f"{name:30} {_fmt(times):30} {_fmt(cpu) if any(cpu) else '-'}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
