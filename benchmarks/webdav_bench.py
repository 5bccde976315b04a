"""WebDAV side by side: Joist's gateway, nginx (dav + dav_ext), wsgidav's own
filesystem provider and ``rclone serve webdav``, over the same data on the same
disk, in one run.

    .venv/bin/python benchmarks/webdav_bench.py [--size-mib 1024] [--entries 2000]

Needs curl, nginx and its dav_ext module (Debian: ``apt-get install nginx-light
libnginx-mod-http-dav-ext``) and, for the rclone column, ``rclone`` (skipped,
saying so, when missing). Every server listens on 127.0.0.1 only and is
stopped at the end. Prints figures and the issue's targets as ratios:

- 1 GiB GET and PUT: Joist >= 90% of nginx's throughput;
- PROPFIND depth 1 of 2,000 entries: Joist <= half of wsgidav-fs's time
  (the median of repeated requests; the first, before any server kept the
  listing, is printed beside it and compared with rclone's first);
- tree walk (PROPFIND of every folder, GET of every file): Joist >= 0.5 of
  nginx's files per second;
- every figure: Joist at least as fast as rclone (ratio >= 1.0).

It also prints Joist's server CPU time (user + system, from /proc) per walk,
per request of the walk and per PROPFIND: figures that, unlike the ratios,
hold on a machine busy with other work.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import rclone_peer

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
LOGIN, PASSWORD = "bench", "bench-password-1"
NGINX_MODULE = "/usr/lib/nginx/modules/ngx_http_dav_ext_module.so"

JOIST_SERVER = textwrap.dedent("""
    import sys, threading, signal
    from joist.admin.bootstrap import build_app
    from joist.admin.server import Server
    from joist.core.settings import load_settings
    s = load_settings(env={}, search=False, overrides={
        "data_dir": sys.argv[1], "server.port": 0, "server.threads": 16,
        "assetstore.reserve_mb": 0, "security.bcrypt_rounds": 4,
        "sftp.enabled": False})  # not measured here; port 8022 may be taken
    app = build_app(s, env={})
    srv = Server(app); srv.start()
    from joist.core.memory import freeze_startup
    freeze_startup()  # as `joist serve` does once started
    print(srv.url + "/dav", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    stop.wait()
    srv.stop(); app.close()
""")

WSGIDAV_SERVER = textwrap.dedent("""
    import sys, threading, signal
    from cheroot import wsgi
    from wsgidav.wsgidav_app import WsgiDAVApp
    app = WsgiDAVApp({"provider_mapping": {"/": sys.argv[1]}, "block_size": 1 << 20,
        "simple_dc": {"user_mapping": {"*": True}}, "verbose": 0,
        "logging": {"enable": False}, "property_manager": True, "lock_storage": True,
        "http_authenticator": {"accept_digest": False, "default_to_digest": False}})
    srv = wsgi.Server(("127.0.0.1", 0), app, numthreads=16)
    srv.prepare()
    print("http://127.0.0.1:%d" % srv.bind_addr[1], flush=True)
    threading.Thread(target=srv.serve, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    stop.wait()
    srv.stop()
""")


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            req = urllib.request.Request(url, method="OPTIONS")
            urllib.request.urlopen(req, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # an answer (Joist asks OPTIONS for credentials): the server is up
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


class Target:
    def __init__(self, name: str, base: str, prefix: str, auth: str | None) -> None:
        self.name, self.base, self.prefix, self.auth = name, base.rstrip("/"), prefix, auth

    def url(self, rel: str) -> str:
        return self.base + self.prefix + rel

    def curl(self, *args: str) -> str:
        cmd = ["curl", "-s", "-S", "--fail", *(["-u", self.auth] if self.auth else []), *args]
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


# ---------------------------------------------------------------- data

def make_data(plain: Path, size_mib: int, entries: int, dirs: int, files: int) -> None:
    plain.mkdir(parents=True)
    block = os.urandom(1 << 20)
    with open(plain / "big.bin", "wb") as out:
        for i in range(size_mib):
            out.write(block[i % 97:] + block[:i % 97])
    (plain / "many").mkdir()
    for i in range(entries):
        (plain / "many" / f"f{i:05d}.txt").write_bytes(b"x" * 1024)
    (plain / "tree").mkdir()
    for d in range(dirs):
        sub = plain / "tree" / f"d{d:03d}"
        sub.mkdir()
        for f in range(files):
            (sub / f"f{f:04d}.dat").write_bytes(os.urandom(4096))


def import_into_joist(data_dir: Path, plain: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from joist.admin.bootstrap import build_app
    from joist.core.acl import SYSTEM, Principal
    from joist.core.settings import load_settings

    settings = load_settings(env={}, search=False, overrides={
        "data_dir": str(data_dir), "assetstore.reserve_mb": 0, "security.bcrypt_rounds": 4})
    with build_app(settings, env={}) as app:
        user = app.services.users.create(SYSTEM, login=LOGIN, email="bench@example.org",
                                         first_name="B", last_name="B", password=PASSWORD)
        view = app.hierarchy.view(Principal.from_user(user))
        base = "/user/bench/Private"
        for path in sorted(plain.rglob("*")):
            target = base + "/" + path.relative_to(plain).as_posix()
            if path.is_dir():
                view.mkdir(target)
            else:
                with open(path, "rb") as src, view.open_write(target) as writer:
                    writer.write_from(src, path.stat().st_size)


# ---------------------------------------------------------------- servers

def start(cmd: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line:
        proc.kill()
        raise RuntimeError(f"{cmd[0]} did not start")
    return proc, line


def start_nginx(work: Path, plain: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    (work / "nginx" / "tmp").mkdir(parents=True)
    conf = work / "nginx" / "nginx.conf"
    # Workers must read and write the data as we do (as root, nginx would
    # otherwise drop to "nobody").
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    conf.write_text(textwrap.dedent(f"""
        load_module {NGINX_MODULE};
        {user}
        worker_processes 2;
        pid {work}/nginx/nginx.pid;
        error_log {work}/nginx/error.log warn;
        events {{ worker_connections 1024; }}
        http {{
            access_log off;
            sendfile on;
            client_max_body_size 0;
            client_body_temp_path {work}/nginx/tmp;
            server {{
                listen 127.0.0.1:{port};
                root {plain};
                dav_methods PUT DELETE MKCOL COPY MOVE;
                dav_ext_methods PROPFIND OPTIONS;
                create_full_put_path on;
            }}
        }}
    """))
    proc = subprocess.Popen(["nginx", "-p", str(work / "nginx"), "-c", str(conf),
                             "-g", "daemon off;"], text=True)
    return proc, f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------- measures

def server_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def best_time(fn, repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def get_big(t: Target, size: int) -> float:
    seconds = float(t.curl("-o", "/dev/null", "-w", "%{time_total}", t.url("/big.bin")))
    return size / seconds / 2**20


def put_big(t: Target, source: Path, size: int, index: int) -> float:
    url = t.url(f"/upload-{index}.bin")
    seconds = float(t.curl("-T", str(source), "-o", "/dev/null", "-w", "%{time_total}", url))
    t.curl("-X", "DELETE", "-o", "/dev/null", url)
    return size / seconds / 2**20


def propfind_ms(t: Target, rel: str, repeat: int) -> tuple[float, float]:
    """(the first PROPFIND, the median of the ones after it), in ms: a server
    may keep a listing for the next identical request (Joist for at most its
    ``cache_ttl`` and only while nothing changed, rclone for its dir-cache-time)."""
    parts = urlsplit(t.url(rel))
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    headers = {"Depth": "1"}
    if t.auth:
        import base64
        headers["Authorization"] = "Basic " + base64.b64encode(t.auth.encode()).decode()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        conn.request("PROPFIND", parts.path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 207, (t.name, resp.status)
        times.append(time.perf_counter() - start)
    conn.close()
    return times[0] * 1000, statistics.median(times[1:]) * 1000


def tree_walk(t: Target, work: Path, dirs: int, files: int) -> float:
    """Files per second: one curl, keep-alive, PROPFIND of each folder then
    GET of each of its files."""
    lines = []
    for d in range(dirs):
        lines += [f'url = "{t.url(f"/tree/d{d:03d}/")}"', 'request = "PROPFIND"',
                  'header = "Depth: 1"', 'output = "/dev/null"', "next"]
        for f in range(files):
            lines += [f'url = "{t.url(f"/tree/d{d:03d}/f{f:04d}.dat")}"',
                      'output = "/dev/null"', "next"]
    config = work / f"walk-{t.name}.cfg"
    config.write_text("\n".join(lines[:-1]) + "\n")
    start = time.perf_counter()
    t.curl("-K", str(config))
    return dirs * files / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--dirs", type=int, default=20)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="work directory (default: a temp dir)")
    args = parser.parse_args()
    for tool in ("curl", "nginx"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (see the module docstring)")
    work = Path(tempfile.mkdtemp(prefix="joist-davbench-", dir=args.dir))
    procs: list[subprocess.Popen[str]] = []
    peers = contextlib.ExitStack()
    try:
        plain = work / "plain"
        print(f"data in {work}: {args.size_mib} MiB file, {args.entries} entries, "
              f"{args.dirs}x{args.files} tree", flush=True)
        make_data(plain, args.size_mib, args.entries, args.dirs, args.files)
        import_into_joist(work / "joist", plain)
        joist, joist_url = start([PYTHON, "-c", JOIST_SERVER, str(work / "joist")])
        procs.append(joist)
        wsgidav, wsgidav_url = start([PYTHON, "-c", WSGIDAV_SERVER, str(plain)])
        procs.append(wsgidav)
        nginx, nginx_url = start_nginx(work, plain)
        procs.append(nginx)
        for url in (joist_url + "/", wsgidav_url + "/", nginx_url + "/"):
            wait_ready(url)
        targets = [Target("joist", joist_url, "/user/bench/Private", f"{LOGIN}:{PASSWORD}"),
                   Target("nginx", nginx_url, "", None),
                   Target("wsgidav-fs", wsgidav_url, "", None)]
        if rclone_peer.available():
            rclone_url = peers.enter_context(rclone_peer.serve_webdav(plain, work))
            targets.append(Target("rclone", rclone_url, "", None))
        else:
            print("rclone is not installed: no rclone column (apt-get install rclone)")
        size = args.size_mib << 20
        rows: dict[str, dict[str, float]] = {t.name: {} for t in targets}
        cpu: dict[str, float] = {}  # Joist's server CPU (user+sys): survives a loaded machine
        for t in targets:
            r = rows[t.name]
            r["get"] = max(get_big(t, size) for _ in range(args.repeat))
            r["put"] = max(put_big(t, plain / "big.bin", size, i) for i in range(args.repeat))
            start_cpu = server_cpu(joist.pid)
            r["propfind_first"], r["propfind"] = propfind_ms(t, "/many/", 5 * args.repeat)
            mid_cpu = server_cpu(joist.pid)
            r["walk"] = max(tree_walk(t, work, args.dirs, args.files)
                            for _ in range(args.repeat))
            if t.name == "joist":
                cpu["propfind"] = (mid_cpu - start_cpu) / (5 * args.repeat)
                cpu["walk"] = (server_cpu(joist.pid) - mid_cpu) / args.repeat
        print(f"\n{'server':<12}{'GET MiB/s':>12}{'PUT MiB/s':>12}"
              f"{'PROPFIND ms':>14}{'first PROPFIND':>16}{'walk files/s':>14}")
        for name, r in rows.items():
            print(f"{name:<12}{r['get']:>12.0f}{r['put']:>12.0f}"
                  f"{r['propfind']:>14.1f}{r['propfind_first']:>16.1f}{r['walk']:>14.0f}")
        print(f"joist server CPU: {cpu['walk'] * 1000:.0f} ms per walk "
              f"({cpu['walk'] * 1e6 / (args.dirs * (args.files + 1)):.0f} us per request), "
              f"{cpu['propfind'] * 1000:.1f} ms per PROPFIND of {args.entries}")
        j, n, w = rows["joist"], rows["nginx"], rows["wsgidav-fs"]
        checks = [
            ("GET vs nginx", j["get"] / n["get"], ">=", 0.90),
            ("PUT vs nginx", j["put"] / n["put"], ">=", 0.90),
            ("PROPFIND time vs wsgidav-fs", j["propfind"] / w["propfind"], "<=", 0.50),
            ("tree walk vs nginx", j["walk"] / n["walk"], ">=", 0.50),
        ]
        if "rclone" in rows:
            rc = rows["rclone"]
            print(f"peer: {rclone_peer.version()}")
            checks += [
                ("GET vs rclone", j["get"] / rc["get"], ">=", 1.0),
                ("PUT vs rclone", j["put"] / rc["put"], ">=", 1.0),
                ("PROPFIND speed vs rclone", rc["propfind"] / j["propfind"], ">=", 1.0),
                ("first PROPFIND vs rclone", rc["propfind_first"] / j["propfind_first"],
                 ">=", 1.0),
                ("tree walk vs rclone", j["walk"] / rc["walk"], ">=", 1.0),
            ]
        print()
        for label, ratio, op, target in checks:
            ok = ratio >= target if op == ">=" else ratio <= target
            print(f"{label:<30}{ratio:>8.2f}  target {op} {target:.2f}  "
                  f"{'met' if ok else 'MISSED'}")
        print(f"(wsgidav-fs vs nginx: GET {w['get'] / n['get']:.2f}, "
              f"PROPFIND {w['propfind'] / n['propfind']:.1f}x slower, "
              f"walk {w['walk'] / n['walk']:.2f})")
    finally:
        peers.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
