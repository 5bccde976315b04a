"""The cost of the event system on the hot paths (issue 16): small REST GETs and
small WebDAV PUTs against a server with no handlers bound, and against one with
trivial handlers bound on every event those paths fire (``rest.get.item/:id``
before and after, ``model.item|file.save*``, ``data.process``), as an enabled
plugin would bind them.

    .venv/bin/python benchmarks/events_bench.py [--seconds 5] [--repeat 3]

Each configuration runs in its own server process on 127.0.0.1 (one data
directory, so the same data), alternately, best of ``--repeat``; the client is
this process, sequential over one keep-alive connection. Prints requests per
second and the ratio bound/unbound; the target is at most 5% slower.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit

SERVER = textwrap.dedent("""
    import sys, threading, signal
    from joist.admin.bootstrap import build_app
    from joist.admin.server import Server
    from joist.core.acl import SYSTEM, Principal
    from joist.core.settings import load_settings
    s = load_settings(env={}, search=False, overrides={
        "data_dir": sys.argv[1], "server.port": 0, "server.threads": 8,
        "sftp.enabled": False, "assetstore.reserve_mb": 0, "security.bcrypt_rounds": 4})
    app = build_app(s, env={})
    svc = app.services
    user = svc.users.by_login("bench") or svc.users.create(
        SYSTEM, login="bench", email="bench@example.org", first_name="B", last_name="B",
        password="bench-password-1")
    me = Principal.from_user(user)
    public = svc.folders.list(me, "user", user["_id"], name="Public")[0][0]
    found = svc.items.list(me, public["_id"], name="probe")[0]
    item = found[0] if found else svc.items.create(me, public, "probe")
    if sys.argv[2] == "bound":
        def noop(event):
            pass
        for name in ("rest.get.item/:id.before", "rest.get.item/:id.after",
                     "model.item.save", "model.item.save.created", "model.item.save.after",
                     "model.file.save", "model.file.save.created", "model.file.save.after",
                     "data.process"):
            svc.events.bind(name, "bench", noop)
    token = svc.auth.login_token(user)["_id"]
    srv = Server(app); srv.start()
    print(srv.url, token, item["_id"], flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    stop.wait()
    srv.stop(); app.close()
""")
AUTH = "Basic " + base64.b64encode(b"bench:bench-password-1").decode()


def start(data: Path, mode: str) -> tuple[subprocess.Popen[str], str, str, str]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(data), mode],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url, token, item = proc.stdout.readline().split()
    return proc, url, token, item


def rate(seconds: float, request: object) -> int:
    done, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        request()  # type: ignore[operator]
        done += 1
    return done


def server_cpu(pid: int) -> float:
    """CPU seconds the server process used (user + system): unlike wall-clock
    rates, not moved by other work on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(data: Path, mode: str, seconds: float, round_no: int) -> dict[str, float]:
    """Per operation: client-side rate and server CPU microseconds per request."""
    proc, url, token, item = start(data, mode)
    try:
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        counter = [0]

        def get() -> None:
            conn.request("GET", f"/api/v1/item/{item}", headers={"Girder-Token": token})
            reply = conn.getresponse()
            reply.read()
            assert reply.status == 200, reply.status

        def put() -> None:
            counter[0] += 1
            name = f"/dav/user/bench/Public/{mode}-{round_no}-{counter[0]}.bin"
            conn.request("PUT", name, body=b"x" * 4096, headers={"Authorization": AUTH})
            reply = conn.getresponse()
            reply.read()
            assert reply.status in (201, 204), reply.status

        rate(0.5, get)  # warm up
        put()
        out: dict[str, float] = {}
        for label, request in (("get", get), ("put", put)):
            cpu = server_cpu(proc.pid)
            done = rate(seconds, request)
            out[label + "_rate"] = done / seconds
            out[label + "_cpu_us"] = (server_cpu(proc.pid) - cpu) / done * 1e6
        conn.close()
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def in_process(seconds: float, repeat: int) -> None:
    """The same GET through the REST WSGI app called directly (no sockets, no
    client): the dispatch's own cost, with much less noise than over HTTP."""
    import io

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from joist.admin.bootstrap import build_app
    from joist.core.acl import SYSTEM, Principal
    from joist.core.settings import load_settings
    from joist.gateways.http import make_rest_app

    with tempfile.TemporaryDirectory(prefix="joist-events-bench-") as work:
        settings = load_settings(env={}, search=False, overrides={
            "data_dir": work, "security.bcrypt_rounds": 4, "assetstore.reserve_mb": 0})
        with build_app(settings, env={}) as app:
            svc = app.services
            user = svc.users.create(SYSTEM, login="bench", email="b@example.org",
                                    first_name="B", last_name="B", password="bench-pass-1")
            me = Principal.from_user(user)
            public = svc.folders.list(me, "user", user["_id"], name="Public")[0][0]
            item = svc.items.create(me, public, "probe")
            token = svc.auth.login_token(user)["_id"]
            rest = make_rest_app(svc, app.hierarchy, app.settings)
            environ = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/item/{item['_id']}",
                       "QUERY_STRING": "", "HTTP_GIRDER_TOKEN": str(token),
                       "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
                       "wsgi.url_scheme": "http", "SCRIPT_NAME": "/api/v1"}

            def call() -> None:
                env = {**environ, "wsgi.input": io.BytesIO(b"")}
                b"".join(rest(env, lambda status, headers, exc=None: None))

            def noop(event: object) -> None:
                pass

            # CPU time of this process per call, rounds interleaved, median: on a
            # shared machine wall-clock rates swing more than the effect measured.
            costs: dict[str, list[float]] = {"none": [], "bound": []}
            calls = max(1000, int(seconds * 5000))
            for _ in range(repeat):
                for mode in ("none", "bound"):
                    for name in ("rest.get.item/:id.before", "rest.get.item/:id.after"):
                        if mode == "bound":
                            svc.events.bind(name, "bench", noop)
                        else:
                            svc.events.unbind(name, "bench")
                    rate(0.1, call)
                    started = time.process_time()
                    for _ in range(calls):
                        call()
                    costs[mode].append((time.process_time() - started) / calls * 1e6)
            none, bound = statistics.median(costs["none"]), statistics.median(costs["bound"])
            ratio = none / bound
            print(f"in-process GET item/:id (CPU per request, median of {repeat}): unbound "
                  f"{none:6.1f} us  bound {bound:6.1f} us  speed ratio {ratio:.3f} "
                  f"(target >= 0.95: {'ok' if ratio >= 0.95 else 'MISSED'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    in_process(args.seconds, max(args.repeat, 5))
    with tempfile.TemporaryDirectory(prefix="joist-events-bench-") as work:
        data = Path(work) / "data"
        runs: dict[str, list[dict[str, float]]] = {"none": [], "bound": []}
        for round_no in range(args.repeat):
            # alternate which goes first: the store grows with every PUT
            for mode in (("none", "bound") if round_no % 2 == 0 else ("bound", "none")):
                got = measure(data, mode, args.seconds, round_no)
                runs[mode].append(got)
                print(f"round {round_no + 1} {mode:5}: GET item {got['get_rate']:7.0f}/s "
                      f"({got['get_cpu_us']:6.0f} us CPU)   PUT 4 KiB {got['put_rate']:6.0f}/s "
                      f"({got['put_cpu_us']:6.0f} us CPU)", flush=True)
    for label, key in (("REST GET item/:id", "get"), ("WebDAV PUT 4 KiB", "put")):
        none = statistics.median(r[key + "_cpu_us"] for r in runs["none"])
        bound = statistics.median(r[key + "_cpu_us"] for r in runs["bound"])
        ratio = none / bound
        verdict = "ok" if ratio >= 0.95 else "MISSED"
        print(f"{label:18}: server CPU per request, median: unbound {none:6.0f} us  "
              f"bound {bound:6.0f} us  speed ratio {ratio:.3f} (target >= 0.95: {verdict})")


if __name__ == "__main__":
    main()
