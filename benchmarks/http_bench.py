"""REST gateway benchmark: Joist side by side with nginx on loopback (issue 4).

Serves the same 1 GiB file and the same 2,000 files of 4 KiB through Joist's
``/api/v1`` and through nginx (serving the very same bytes from disk), in one
run, and prints the ratios against the issue's targets:

* 1 GiB download (curl to /dev/null): Joist >= 90% of nginx's throughput;
* 1 GiB upload through girder-client: >= 150 MB/s;
* 4 KiB downloads, 8 concurrent keep-alive clients (wrk): >= 25% of nginx's req/s;
  also printed: a bare cheroot app on the same files (the ceiling for any
  cheroot application), and the same downloads by 8 Python ``requests``
  sessions (what girder-client users meet; the client is then the limit);
* ``GET item?folderId=`` for a page of 50 in a folder of 100,000 items: < 10 ms.

Needs nginx, curl and wrk (Debian packages; install them by hand, they are not
part of ``make test``). Run by hand:

    .venv/bin/python benchmarks/http_bench.py [--big-mb 1024] [--small 2000]
                                              [--items 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import girder_client
import requests

from joist.admin.bootstrap import App, build_app
from joist.admin.server import Server
from joist.core.acl import SYSTEM, Principal
from joist.core.clock import utcnow
from joist.core.settings import load_settings

PASSWORD = "benchmark password"
NGINX_CONF = """
{user}
worker_processes auto;
daemon off;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    types {{ application/octet-stream bin; }}
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
    }}
}}
"""
WRK_SCRIPT = """
local paths = {{}}
for line in io.lines("{paths}") do paths[#paths + 1] = line end
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1], {{["Girder-Token"] = "{token}"}})
end
"""


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


# ---------------------------------------------------------------- set-up

def start_joist(data: Path) -> tuple[App, Server]:
    settings = load_settings(env={}, search=False, overrides={
        "data_dir": str(data), "security.bcrypt_rounds": 4, "assetstore.reserve_mb": 0,
        "server.port": 0, "webdav.enabled": False})
    app = build_app(settings, env={})
    server = Server(app)
    server.start()
    return app, server


def make_big_file(path: Path, size: int) -> None:
    block = os.urandom(16 << 20)
    with path.open("wb") as out:
        written = 0
        while written < size:
            part = block[:min(len(block), size - written)]
            out.write(part)
            written += len(part)


def _item_doc(folder: dict[str, Any], name: str, owner: Any) -> dict[str, Any]:
    now = utcnow()
    return {"name": name, "lowerName": name.lower(), "description": "",
            "folderId": folder["_id"], "baseParentType": folder["baseParentType"],
            "baseParentId": folder["baseParentId"], "creatorId": owner, "created": now,
            "updated": now, "size": 0, "meta": {}, "fileCount": 0}


def fill_folder(app: App, owner: dict[str, Any], folder: dict[str, Any], count: int) -> None:
    """``count`` empty items, written straight to the store (fast set-up)."""
    batch: list[dict[str, Any]] = []
    for n in range(count):
        batch.append(_item_doc(folder, f"item {n:07d}", owner["_id"]))
        if len(batch) == 5000:
            app.store.items.insert_many(batch)
            batch = []
    if batch:
        app.store.items.insert_many(batch)
    # What ItemService.create keeps up to date item by item.
    app.services.tree.sizes.count_items(folder["_id"], count)


class BareCheroot:
    """The ceiling for any cheroot application: the same small files read from
    disk by a WSGI app that does nothing else (no auth, no store)."""

    def __init__(self, root: Path) -> None:
        from cheroot import wsgi

        def serve(environ: dict[str, Any], start: Any) -> list[bytes]:
            data = (root / environ["PATH_INFO"].lstrip("/")).read_bytes()
            start("200 OK", [("Content-Type", "application/octet-stream"),
                             ("Content-Length", str(len(data)))])
            return [data]

        self.server = wsgi.Server(("127.0.0.1", 0), serve, numthreads=32)
        self.server.prepare()
        import threading
        threading.Thread(target=self.server.serve, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.bind_addr[1]}"

    def stop(self) -> None:
        self.server.stop()


class Nginx:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        (root / "www").mkdir(exist_ok=True)
        conf = root / "nginx.conf"
        # As root, nginx's workers would drop to "nobody" and could not read the
        # assetstore's 0600 blobs.
        user = "user root;" if os.geteuid() == 0 else ""
        conf.write_text(NGINX_CONF.format(root=root, port=self.port, user=user))
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(root)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_http(self.url)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# ---------------------------------------------------------------- measurements

def curl_speed(url: str, token: str | None = None) -> float:
    """Bytes per second of one download to /dev/null."""
    cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download} %{http_code}", url]
    if token:
        cmd[1:1] = ["-H", f"Girder-Token: {token}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
    if out[1] != "200":
        raise RuntimeError(f"{url}: HTTP {out[1]}")
    return float(out[0])


def wrk_rps(base: str, paths: list[str], work: Path, token: str, seconds: int,
            clients: int = 8) -> float:
    listing = work / f"paths-{abs(hash(base))}.txt"
    listing.write_text("\n".join(paths) + "\n")
    script = work / f"wrk-{abs(hash(base))}.lua"
    script.write_text(WRK_SCRIPT.format(paths=listing, token=token))
    out = subprocess.run(["wrk", "-t", "2", "-c", str(clients), "-d", f"{seconds}s",
                          "-s", str(script), base], capture_output=True, text=True,
                         check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(out)


PY_CLIENTS = """
import sys, threading, time, requests
base, token, listing, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
paths = open(listing).read().split()
counts = [0] * 8
def run(i):
    session, n = requests.Session(), i
    session.headers["Girder-Token"] = token
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        r = session.get(base + paths[n % len(paths)])
        if r.status_code != 200:
            raise SystemExit(f"HTTP {r.status_code}")
        counts[i] += 1
        n += 8
threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(sum(counts) / seconds)
"""


def python_rps(base: str, paths: list[str], work: Path, token: str, seconds: int) -> float:
    """Requests per second of 8 keep-alive ``requests`` sessions (what
    girder-client uses) in one client process: the load generator is then
    the limit for nginx, as it is for a Python user of either server."""
    listing = work / f"paths-py-{abs(hash(base))}.txt"
    listing.write_text("\n".join(paths) + "\n")
    out = subprocess.run([sys.executable, "-c", PY_CLIENTS, base, token, str(listing),
                          str(seconds)], capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


UPLOADER = """
import json, sys, time, girder_client
api, token, folder, path = sys.argv[1:5]
client = girder_client.GirderClient(apiUrl=api)
client.setToken(token)
start = time.perf_counter()
doc = client.uploadFileToFolder(folder, path)
print(json.dumps({"seconds": time.perf_counter() - start, "id": doc["_id"]}))
"""


def upload_in_subprocess(api: str, token: str, folder: str,
                         path: Path) -> tuple[dict[str, Any], float]:
    """girder-client in its own process (as a user runs it), timed around the
    upload call only."""
    out = subprocess.run([sys.executable, "-c", UPLOADER, api, token, folder, str(path)],
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return {"_id": result["id"]}, float(result["seconds"])


def best_of(repeat: int, run: Callable[[], float]) -> tuple[float, list[float]]:
    runs = [run() for _ in range(repeat)]
    return max(runs), runs


def listing_ms(url: str, token: str, folder: str, offset: int, n: int = 50) -> float:
    with requests.Session() as session:
        session.headers["Girder-Token"] = token
        params = {"folderId": folder, "limit": 50, "offset": offset}
        session.get(url, params=params).raise_for_status()  # warm
        times = []
        for _ in range(n):
            start = time.perf_counter()
            reply = session.get(url, params=params)
            times.append((time.perf_counter() - start) * 1000)
            assert len(reply.json()) == 50
    return statistics.median(times)


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


# ---------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--big-mb", type=int, default=1024)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--small-kb", type=int, default=4)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per run")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    for tool in ("nginx", "curl", "wrk"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is needed (apt-get install {tool})")
    work = Path(tempfile.mkdtemp(prefix="joist-http-bench-"))
    app, server = start_joist(work / "joist")
    nginx = Nginx(work / "nginx")
    try:
        api = server.url + "/api/v1/"
        svc = app.services
        admin = svc.users.create(SYSTEM, login="admin", email="admin@example.org",
                                 first_name="A", last_name="D", password=PASSWORD)
        owner = Principal.from_user(admin)
        client = girder_client.GirderClient(apiUrl=api)
        client.authenticate("admin", PASSWORD)
        token = client.token
        home = svc.folders.list(owner, "user", admin["_id"], name="Public")[0][0]

        # -- 1 GiB upload through girder-client (64 MiB chunks)
        size = args.big_mb << 20
        source = work / "big.bin"
        make_big_file(source, size)
        big, upload_s = upload_in_subprocess(api, token, str(home["_id"]), source)
        upload_mbs = size / upload_s / 1e6
        record = app.store.get("file", big["_id"])
        blob_path = svc.assetstores.for_file(record).local_path(record)
        assert blob_path is not None
        os.link(blob_path, nginx.root / "www" / "big.bin")  # the very same bytes

        # -- 2,000 small files: the same bytes on both sides
        small_dir = nginx.root / "www" / "small"
        small_dir.mkdir()
        folder = svc.folders.create(owner, "folder", home["_id"], "small")
        joist_paths, nginx_paths = [], []
        for n in range(args.small):
            data = os.urandom(args.small_kb << 10)
            (small_dir / f"{n:05d}.bin").write_bytes(data)
            step = svc.uploads.begin(owner, "folder", folder["_id"], f"{n:05d}.bin",
                                     len(data))
            done = svc.uploads.write(owner, step.upload["_id"], 0, io.BytesIO(data),
                                     len(data))  # type: ignore[index]
            joist_paths.append(f"/api/v1/file/{done.file['_id']}/download")  # type: ignore[index]
            nginx_paths.append(f"/small/{n:05d}.bin")

        # -- 100,000 items in one folder
        many = svc.folders.create(owner, "folder", home["_id"], "many")
        fill_folder(app, admin, many, args.items)

        # -- measurements, interleaved so both sides see the same machine state
        big_url = f"{api}file/{big['_id']}/download"
        curl_speed(big_url, token)
        curl_speed(nginx.url + "/big.bin")  # both warm in the page cache
        joist_big, joist_runs = best_of(args.repeat, lambda: curl_speed(big_url, token))
        nginx_big, nginx_runs = best_of(args.repeat, lambda: curl_speed(nginx.url + "/big.bin"))
        joist_rps = wrk_rps(server.url, joist_paths, work, token, args.seconds)
        nginx_rps = wrk_rps(nginx.url, nginx_paths, work, token, args.seconds)
        bare = BareCheroot(nginx.root / "www")
        try:
            bare_rps = wrk_rps(bare.url, nginx_paths, work, token, args.seconds)
            py_rps = {name: python_rps(url, paths, work, token, args.seconds)
                      for name, url, paths in (("joist", server.url, joist_paths),
                                               ("nginx", nginx.url, nginx_paths),
                                               ("bare", bare.url, nginx_paths))}
        finally:
            bare.stop()
        list_first = listing_ms(api + "item", token, str(many["_id"]), 0)
        list_deep = listing_ms(api + "item", token, str(many["_id"]), args.items // 2)

        mb = 1e6
        print(f"\nJoist REST gateway vs nginx on loopback ({os.cpu_count()} CPUs)\n")
        print(f"{'measure':44} {'joist':>12} {'nginx':>12} {'ratio':>7} {'target':>8}")
        ratio = joist_big / nginx_big
        print(f"{'1 GiB download, MB/s (best of ' + str(args.repeat) + ')':44} "
              f"{joist_big / mb:12.0f} {nginx_big / mb:12.0f} {ratio:7.2f} {'>= 0.90':>8}"
              f"  {_verdict(ratio >= 0.9)}")
        print(f"{'  runs':44} {' '.join(f'{r / mb:.0f}' for r in joist_runs):>12} "
              f"{' '.join(f'{r / mb:.0f}' for r in nginx_runs):>12}")
        ratio = joist_rps / nginx_rps
        print(f"{f'{args.small_kb} KiB downloads, 8 clients, req/s':44} {joist_rps:12.0f} "
              f"{nginx_rps:12.0f} {ratio:7.2f} {'>= 0.25':>8}  {_verdict(ratio >= 0.25)}")
        print(f"{'  bare cheroot app, same files, req/s':44} {bare_rps:12.0f} {'':>12} "
              f"{bare_rps / nginx_rps:7.2f}  (the ceiling for a cheroot app)")
        print(f"{'  8 Python requests clients instead, req/s':44} {py_rps['joist']:12.0f} "
              f"{py_rps['nginx']:12.0f} {py_rps['joist'] / py_rps['nginx']:7.2f}  "
              f"(bare cheroot {py_rps['bare'] / py_rps['nginx']:.2f}; the client is the limit)")
        print(f"{'1 GiB upload via girder-client, MB/s':44} {upload_mbs:12.0f} {'':>12} "
              f"{'':>7} {'>= 150':>8}  {_verdict(upload_mbs >= 150)}")
        print(f"{f'GET item, page of 50 of {args.items:,}, ms (offset 0)':44} "
              f"{list_first:12.2f} {'':>12} {'':>7} {'< 10':>8}  {_verdict(list_first < 10)}")
        print(f"{f'  same, offset {args.items // 2:,}, ms':44} {list_deep:12.2f}")
    finally:
        nginx.stop()
        server.stop()
        app.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
