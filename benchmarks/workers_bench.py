"""`joist serve --workers N` benchmark (issue 18 item 1): server CPU per request
and per GiB against a bare cheroot app in the same run, throughput per core,
and 1 worker against 2.

Every server runs in its own process, so its CPU time is read from ``/proc``
(user + system, the supervisor and all workers summed) around each load:

* small GETs: 4 KiB files by ``GET /api/v1/file/:id/download`` with a token,
  8 keep-alive clients (wrk); server CPU ms per 1,000 requests, and req/s;
* large GETs: one file of ``--big-mb`` by curl, ``--big-runs`` times; server
  CPU seconds per GiB served, and MB/s;
* the same with the server pinned to core 0 and the load generator to core 1
  (``taskset``): the per-core figure;
* bare cheroot: a WSGI app that reads the same files from disk and nothing
  else (no auth, no store), 32 threads, in its own process: the ceiling.

Model for N cores: a worker is a single-threaded Python process for its
Python work, so N workers can give N times the per-core throughput as long as
the CPU per request does not grow with N (coordination through the store:
the change-counter read, SQLite locks). The figure to compare is therefore
``CPU per 1,000 GETs`` with 2 workers against 1 worker: within 10% means N
workers reach N x 0.9 of the per-core throughput, given N cores for them and
more for the clients (this machine has 2 cores, so only the CPU figures, not
the 2-worker throughput, can show it; the load average is printed beside).

Run by hand (needs wrk, curl and taskset):

    .venv/bin/python benchmarks/workers_bench.py [--small 500] [--big-mb 256]
                                                 [--seconds 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from joist.admin.bootstrap import build_app
from joist.core.acl import SYSTEM, Principal
from joist.core.settings import load_settings

PASSWORD = "benchmark password"
WRK_SCRIPT = """
local paths = {{}}
for line in io.lines("{paths}") do paths[#paths + 1] = line end
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1], {{["Girder-Token"] = "{token}"}})
end
"""
TICKS = os.sysconf("SC_CLK_TCK")
BARE = r"""
import sys, threading
from pathlib import Path
from cheroot import wsgi
root = Path(sys.argv[1])
def serve(environ, start):
    path = root / environ["PATH_INFO"].lstrip("/")
    size = path.stat().st_size
    start("200 OK", [("Content-Type", "application/octet-stream"),
                     ("Content-Length", str(size))])
    with path.open("rb") as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                break
            yield block
server = wsgi.Server(("127.0.0.1", 0), serve, numthreads=32)
server.prepare()
print(server.bind_addr[1], flush=True)
server.serve()
"""


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    return total


def tree(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        kids = []
    return [pid, *(int(k) for k in kids)]


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def pinned(cpu: str | None, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *cmd] if cpu is not None else cmd


# ---------------------------------------------------------------- servers
@contextmanager
def joist_server(data: Path, workers: int, cpu: str | None,
                 python: str | None = None) -> Iterator[tuple[str, int]]:
    """``python``: another checkout's interpreter (a baseline without
    ``--workers``: one process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOIST_")}
    env.update(JOIST_DATA_DIR=str(data), JOIST_SFTP__ENABLED="false",
               JOIST_WEBDAV__ENABLED="false")
    options = [] if python else ["--workers", str(workers)]
    cmd = pinned(cpu, [python or sys.executable, "-m", "joist.admin.cli", "serve",
                       "--port", "0", *options])
    proc = subprocess.Popen(cmd, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        url = ""
        deadline = time.monotonic() + 120
        for line in proc.stdout:  # ends: the banner comes, or the process exits
            found = re.search(r"REST API: (http://\S+)/api/v1", line)
            if found:
                url = found.group(1)
            if "Data directory" in line or time.monotonic() > deadline:
                break
        if not url:
            raise RuntimeError("joist serve did not start")
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def bare_server(root: Path, cpu: str | None) -> Iterator[tuple[str, int]]:
    proc = subprocess.Popen(pinned(cpu, [sys.executable, "-c", BARE, str(root)]), text=True,
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# ---------------------------------------------------------------- loads
def wrk(base: str, paths: list[str], work: Path, token: str, seconds: int,
        cpu: str | None) -> tuple[int, float]:
    listing = work / "paths.txt"
    listing.write_text("\n".join(paths) + "\n")
    script = work / "wrk.lua"
    script.write_text(WRK_SCRIPT.format(paths=listing, token=token))
    out = subprocess.run(pinned(cpu, ["wrk", "-t", "2", "-c", "8", "-d", f"{seconds}s",
                                      "-s", str(script), base]),
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    done = re.search(r"(\d+) requests in", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not done or not rate:
        raise RuntimeError(out)
    return int(done.group(1)), float(rate.group(1))


def curl(url: str, token: str, cpu: str | None) -> float:
    out = subprocess.run(pinned(cpu, ["curl", "-s", "-o", "/dev/null", "-H",
                                      f"Girder-Token: {token}", "-w",
                                      "%{speed_download} %{http_code}", url]),
                         capture_output=True, text=True, check=True).stdout.split()
    if out[1] != "200":
        raise RuntimeError(f"{url}: HTTP {out[1]}")
    return float(out[0])


def measure(pid: int, run: Callable[[], tuple[int, float]]) -> tuple[float, int, float]:
    """(server CPU seconds, units of work, rate) of one load."""
    pids = tree(pid)
    before = cpu_seconds(pids)
    units, rate = run()
    return cpu_seconds(pids) - before, units, rate


# ---------------------------------------------------------------- main
def setup(work: Path, small: int, big_mb: int) -> tuple[str, list[str], list[str], str]:
    """A data directory with ``small`` 4 KiB files and one big file, the same
    bytes under ``work/www`` for the bare app; returns (token, joist paths,
    bare paths, big file id)."""
    settings = load_settings(env={}, search=False, overrides={
        "data_dir": str(work / "data"), "security.bcrypt_rounds": 4,
        "assetstore.reserve_mb": 0})
    www = work / "www"
    www.mkdir()
    with build_app(settings, env={}) as app:
        svc = app.services
        admin = svc.users.create(SYSTEM, login="admin", email="admin@example.org",
                                 first_name="A", last_name="D", password=PASSWORD)
        owner = Principal.from_user(admin)
        home = svc.folders.list(owner, "user", admin["_id"], name="Public")[0][0]
        joist_paths, bare_paths = [], []
        for n in range(small):
            data = os.urandom(4096)
            (www / f"{n:05d}.bin").write_bytes(data)
            step = svc.uploads.begin(owner, "folder", home["_id"], f"{n:05d}.bin", len(data))
            assert step.upload is not None
            done = svc.uploads.write(owner, step.upload["_id"], 0, io.BytesIO(data), len(data))
            assert done.file is not None
            joist_paths.append(f"/api/v1/file/{done.file['_id']}/download")
            bare_paths.append(f"/{n:05d}.bin")
        source = work / "big.src"
        block = os.urandom(1 << 20)
        with source.open("wb") as out:
            for _ in range(big_mb):
                out.write(block)
        step = svc.uploads.begin(owner, "folder", home["_id"], "big.bin", big_mb << 20)
        assert step.upload is not None
        with source.open("rb") as stream:
            done = svc.uploads.write(owner, step.upload["_id"], 0, stream, big_mb << 20)
        source.unlink()
        assert done.file is not None
        big_id = str(done.file["_id"])
        record = app.store.get("file", big_id)
        local = svc.assetstores.for_file(record).local_path(record)
        assert local is not None
        os.link(local, www / "big.bin")
        token = str(svc.auth.login_token(admin)["_id"])
    return token, joist_paths, bare_paths, big_id


def run_case(work: Path, workers: int, server_cpu: str | None, client_cpu: str | None,
             token: str, paths: list[str], big_id: str, gib: float,
             args: argparse.Namespace) -> tuple[float, float, float, float]:
    """One server started, measured and stopped: (CPU ms per 1,000 small GETs,
    GET/s, CPU s per GiB, MB/s)."""
    baseline = args.baseline_python if workers < 0 else None
    server = bare_server(work / "www", server_cpu) if workers == 0 else \
        joist_server(work / "data", abs(workers), server_cpu, baseline)
    with server as (url, pid):
        big_url = url + ("/big.bin" if workers == 0 else f"/api/v1/file/{big_id}/download")
        wrk(url, paths, work, token, 1, client_cpu)  # warm
        cpu_small, count, rps = measure(
            pid, lambda: wrk(url, paths, work, token, args.seconds, client_cpu))
        curl(big_url, token, client_cpu)  # warm the page cache

        def big() -> tuple[int, float]:
            speeds = [curl(big_url, token, client_cpu) for _ in range(args.big_runs)]
            return args.big_runs, statistics.median(speeds)

        cpu_big, _, mbs = measure(pid, big)
    return cpu_small / count * 1000 * 1000, rps, cpu_big / gib, mbs / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--big-mb", type=int, default=256)
    parser.add_argument("--big-runs", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-python", metavar="PYTHON",
                        help="also run another checkout's `joist serve` (its venv's python), "
                             "one process, as the before figure")
    args = parser.parse_args()
    for tool in ("wrk", "curl", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed")
    work = Path(tempfile.mkdtemp(prefix="joist-workers-bench-"))
    try:
        token, joist_paths, bare_paths, big_id = setup(work, args.small, args.big_mb)
        gib = (args.big_mb << 20) * args.big_runs / (1 << 30)
        rows: list[tuple[str, list[tuple[float, float, float, float]]]] = []
        cases = [("bare cheroot", 0, None, None), ("joist 1 worker", 1, None, None),
                 ("joist 2 workers", 2, None, None),
                 ("bare cheroot, pinned", 0, "0", "1"),
                 ("joist 1 worker, pinned", 1, "0", "1"),
                 ("joist 2 workers, both on core 0", 2, "0", "1")]
        if args.baseline_python:
            cases[1:1] = [("baseline, 1 process", -1, None, None)]
            cases.insert(-2, ("baseline, 1 process, pinned", -1, "0", "1"))
        for name, workers, server_cpu, client_cpu in cases:
            runs = [run_case(work, workers, server_cpu, client_cpu, token,
                             bare_paths if workers == 0 else joist_paths, big_id, gib, args)
                    for _ in range(args.repeat)]
            rows.append((name, runs))
            print(f"  done: {name} (load average {load_average()})", file=sys.stderr)
        print(f"\n`joist serve --workers` vs bare cheroot, {os.cpu_count()} CPUs, load average "
              f"{load_average()} (figures under load are indicative only)\n")
        print(f"{'server':34} {'CPU ms/1k GETs':>16} {'GET/s':>14} {'CPU s/GiB':>14} "
              f"{'MB/s':>14}")
        for name, runs in rows:
            cells = []
            for i in range(4):
                values = [r[i] for r in runs]
                spread = (max(values) - min(values)) / 2
                cells.append(f"{statistics.median(values):8.1f}±{spread:<5.1f}")
            print(f"{name:34} {cells[0]:>16} {cells[1]:>14} {cells[2]:>14} {cells[3]:>14}")
        medians = {name: statistics.median(r[0] for r in runs) for name, runs in rows}
        print(f"\nCPU per small GET, joist 1 worker / bare cheroot: "
              f"{medians['joist 1 worker'] / medians['bare cheroot']:.2f} (target <= 1.3)")
        print(f"CPU per small GET, 2 workers / 1 worker: "
              f"{medians['joist 2 workers'] / medians['joist 1 worker']:.2f} "
              f"(model: N workers give N x per-core GET/s if this stays <= 1.1)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
