"""A bounded load run against a real ``joist serve`` (issue 12, "keep it fixed").

16 clients (threads, each with its own keep-alive ``requests`` session) do a
fixed, seeded amount of mixed work against one server process on 127.0.0.1:

- REST reads: a page of a folder's items, a 4 KiB file download;
- WebDAV reads: GET of a 4 KiB file, PROPFIND depth 1 of a 100-entry folder;
- small writes: a REST one-shot upload of 4 KiB, a WebDAV PUT of 4 KiB (each
  client writes its own names, so no write conflicts on purpose).

Prints requests/s, p50/p95/p99 latency, errors, and the server's resident
memory before and after the run. The reference measured when the issue was
filed: 196 requests/s, p99 725 ms, 0 errors, RSS 103 -> 131 MiB.

    .venv/bin/python benchmarks/load_bench.py [--clients 16] [--ops 200] [--seed 1]

The server is the real ``joist serve`` (SFTP off), started on port 0 in a
temporary data directory and stopped at the end. Not a test: nothing here is
asserted on time.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from joist.admin.bootstrap import build_app
from joist.core.acl import SYSTEM, Principal
from joist.core.settings import load_settings

LOGIN, PASSWORD = "loader", "load-bench-password-1"
FILES = 100  # 4 KiB files in the shared read folder (also the PROPFIND size)
SMALL = 4096
# (kind, weight): reads dominate, as on a real server.
MIX = [("rest-list", 20), ("rest-download", 20), ("dav-get", 20), ("dav-propfind", 10),
       ("rest-upload", 15), ("dav-put", 15)]


def prepare(data_dir: Path) -> None:
    """The user and the read folder, made in-process before the server starts."""
    settings = load_settings(env={}, search=False, overrides={
        "data_dir": str(data_dir), "assetstore.reserve_mb": 0})
    with build_app(settings, env={}) as app:
        user = app.services.users.create(SYSTEM, login=LOGIN, email="load@example.org",
                                         first_name="L", last_name="B", password=PASSWORD)
        view = app.hierarchy.view(Principal.from_user(user))
        view.mkdir("/user/loader/Private/read")
        view.mkdir("/user/loader/Private/write")
        for i in range(FILES):
            with view.open_write(f"/user/loader/Private/read/f{i:03d}.txt") as writer:
                writer.write(os.urandom(SMALL))


def start_server(data_dir: Path, threads: int) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "JOIST_DATA_DIR": str(data_dir), "JOIST_SFTP__ENABLED": "false",
           "JOIST_ASSETSTORE__RESERVE_MB": "0", "JOIST_SERVER__THREADS": str(threads)}
    joist = Path(sys.executable).with_name("joist")
    # One process, as the reference figures were taken (and its RSS is the server's);
    # benchmarks/workers_bench.py measures `--workers`.
    proc = subprocess.Popen([str(joist), "serve", "--host", "127.0.0.1", "--port", "0",
                             "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    assert proc.stdout is not None
    for _ in range(20):  # the banner's first lines
        line = proc.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+)/api/v1", line)
        if found:
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain
            return proc, found.group(1)
        if not line:
            break
    proc.kill()
    raise RuntimeError("joist serve did not start")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Client:
    def __init__(self, base: str, number: int, seed: int, folders: dict[str, str],
                 file_ids: list[str]) -> None:
        self.base, self.number = base, number
        self.rng = random.Random(seed * 1000 + number)
        self.folders, self.file_ids = folders, file_ids
        self.session = requests.Session()
        self.dav = requests.Session()
        self.dav.auth = (LOGIN, PASSWORD)
        self.latencies: list[float] = []
        self.kinds: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.writes = 0

    def login(self) -> None:
        reply = self.session.get(self.base + "/api/v1/user/authentication",
                                 auth=(LOGIN, PASSWORD), timeout=60)
        reply.raise_for_status()
        self.session.headers["Girder-Token"] = reply.json()["authToken"]["token"]
        self.dav.request("PROPFIND", self.base + "/dav/user/loader/Private/",
                         headers={"Depth": "0"}, timeout=60).raise_for_status()

    def one(self, kind: str) -> requests.Response:
        api, dav = self.base + "/api/v1/", self.base + "/dav/user/loader/Private/"
        pick = self.rng.randrange(FILES)
        if kind == "rest-list":
            return self.session.get(api + "item", params={
                "folderId": self.folders["read"], "limit": 50,
                "offset": self.rng.choice((0, 50))}, timeout=60)
        if kind == "rest-download":
            return self.session.get(api + f"file/{self.file_ids[pick]}/download", timeout=60)
        if kind == "dav-get":
            return self.dav.get(dav + f"read/f{pick:03d}.txt", timeout=60)
        if kind == "dav-propfind":
            return self.dav.request("PROPFIND", dav + "read/", headers={"Depth": "1"},
                                    timeout=60)
        self.writes += 1
        name = f"c{self.number:02d}-{self.writes:04d}.bin"
        body = self.rng.randbytes(SMALL)
        if kind == "rest-upload":
            return self.session.post(api + "file", params={
                "parentType": "folder", "parentId": self.folders["write"], "name": name,
                "size": SMALL}, data=body, timeout=60)
        return self.dav.put(dav + "write/" + name, data=body, timeout=60)

    def run(self, ops: int) -> None:
        kinds, weights = zip(*MIX, strict=True)
        for _ in range(ops):
            kind = self.rng.choices(kinds, weights)[0]
            started = time.perf_counter()
            try:
                reply = self.one(kind)
                _ = reply.content
                ok = reply.status_code < 400
            except requests.RequestException:
                ok = False
            self.latencies.append(time.perf_counter() - started)
            self.kinds[kind] += 1
            if not ok:
                self.errors[kind] += 1

    def close(self) -> None:
        self.session.close()
        self.dav.close()


def lookup(base: str) -> tuple[dict[str, str], list[str]]:
    """Folder ids and the read files' ids, through the REST API."""
    with requests.Session() as session:
        reply = session.get(base + "/api/v1/user/authentication", auth=(LOGIN, PASSWORD),
                            timeout=60)
        session.headers["Girder-Token"] = reply.json()["authToken"]["token"]
        me = session.get(base + "/api/v1/user/me", timeout=60).json()
        private = session.get(base + "/api/v1/folder", params={
            "parentType": "user", "parentId": me["_id"], "name": "Private"},
            timeout=60).json()[0]
        folders = {}
        for name in ("read", "write"):
            folders[name] = session.get(base + "/api/v1/folder", params={
                "parentType": "folder", "parentId": private["_id"], "name": name},
                timeout=60).json()[0]["_id"]
        items = session.get(base + "/api/v1/item", params={
            "folderId": folders["read"], "limit": 0}, timeout=60).json()
        ids = {}
        for item in items:
            ids[item["name"]] = session.get(base + f"/api/v1/item/{item['_id']}/files",
                                            timeout=60).json()[0]["_id"]
    return folders, [ids[f"f{i:03d}.txt"] for i in range(FILES)]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--ops", type=int, default=200, help="requests per client")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=32, help="server worker threads")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="joist-load-") as tmp:
        data_dir = Path(tmp) / "data"
        prepare(data_dir)
        proc, base = start_server(data_dir, args.threads)
        try:
            folders, file_ids = lookup(base)
            clients = [Client(base, n, args.seed, folders, file_ids)
                       for n in range(args.clients)]
            for client in clients:
                client.login()
            rss_before = rss_mib(proc.pid)
            threads = [threading.Thread(target=c.run, args=(args.ops,)) for c in clients]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            rss_after = rss_mib(proc.pid)
            for client in clients:
                client.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    latencies = [x for c in clients for x in c.latencies]
    kinds = sum((c.kinds for c in clients), Counter())
    errors = sum((c.errors for c in clients), Counter())
    print(f"clients {args.clients}, {args.ops} requests each, seed {args.seed}, "
          f"server threads {args.threads}")
    print(f"  requests        {len(latencies):8d}   in {elapsed:.1f} s")
    print(f"  requests/s      {len(latencies) / elapsed:8.0f}")
    print(f"  latency p50     {percentile(latencies, 0.50) * 1000:8.1f} ms")
    print(f"  latency p95     {percentile(latencies, 0.95) * 1000:8.1f} ms")
    print(f"  latency p99     {percentile(latencies, 0.99) * 1000:8.1f} ms")
    print(f"  latency mean    {statistics.fmean(latencies) * 1000:8.1f} ms")
    print(f"  errors          {sum(errors.values()):8d}   "
          + (", ".join(f"{k} {v}" for k, v in sorted(errors.items())) or ""))
    print(f"  server RSS      {rss_before:8.0f} -> {rss_after:.0f} MiB")
    print("  mix             " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    print("  reference (issue 12): 196 requests/s, p99 725 ms, 0 errors, "
          "RSS 103 -> 131 MiB")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
