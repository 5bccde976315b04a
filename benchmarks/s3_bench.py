"""S3 assetstore throughput: a 1 GiB upload and download through Joist's REST
API with an S3 assetstore, against boto3 talking to the same S3 endpoint
directly, in the same run.

    .venv/bin/python benchmarks/s3_bench.py [--size-mib 1024] [--rounds 1]

The S3 endpoint is moto's server mode on 127.0.0.1 (a child process), Joist
runs in another child process (``Server``: REST on 127.0.0.1, port 0), and
this process is the client. Every server is stopped at the end.

- upload: girder-client's ``uploadFile`` (64 MiB chunks, one S3 part each)
  vs boto3's ``upload_fileobj`` (its default transfer manager: 8 MiB parts on
  10 threads), both from the same local file;
- download: ``GET file/{id}/download`` with the bytes proxied by Joist (the
  ``joist.s3.redirect_downloads`` setting off) and redirected to a presigned
  URL (on), vs the faster of boto3's ``download_fileobj`` and one streamed
  ``get_object``; bodies are read and dropped.

Rounds alternate boto3 and Joist, one object in moto at a time (moto slows
down as it holds more), and the best of each is kept.

Target (issue 8): Joist >= 70% of boto3's throughput both ways.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import girder_client
import requests
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
LOGIN, PASSWORD = "bench", "bench-password-1"
MiB = 1 << 20
TARGET = 0.70

MOTO_SERVER = textwrap.dedent("""
    import logging, sys
    from moto.server import ThreadedMotoServer
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()
    server.stop()
""")

JOIST_SERVER = textwrap.dedent("""
    import logging, sys
    from joist.admin.bootstrap import build_app
    from joist.admin.server import Server
    from joist.core.acl import SYSTEM
    from joist.core.settings import load_settings
    data_dir, endpoint, bucket, login, password = sys.argv[1:6]
    logging.basicConfig(level=logging.WARNING)
    s = load_settings(env={}, search=False, overrides={
        "data_dir": data_dir, "server.port": 0, "server.threads": 8,
        "assetstore.reserve_mb": 0, "security.bcrypt_rounds": 4, "webdav.enabled": False})
    app = build_app(s, env={})
    app.assetstores.create_s3("bench", {"bucket": bucket, "service": endpoint,
                              "accessKeyId": "bench", "secret": "bench"}, current=True)
    user = app.services.users.create(SYSTEM, login=login, email=login + "@example.org",
                                     first_name="B", last_name="B", password=password,
                                     admin=True)
    srv = Server(app)
    srv.start()
    print(srv.url, flush=True)
    sys.stdin.read()
    srv.stop()
    app.close()
""")


@contextlib.contextmanager
def child(code: str, *args: str) -> Iterator[str]:
    """Run ``code`` in a child process; yields the first line it prints; stops it
    (closing its stdin) on the way out."""
    proc = subprocess.Popen([PYTHON, "-c", code, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line:
            raise RuntimeError(f"the child process failed to start: {code.split()[2]}")
        yield line
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def make_source(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 64 * MiB))
            f.write(block)
            left -= len(block)


class Sink:
    """A writable file object that drops what it gets (counting it)."""

    def __init__(self) -> None:
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return len(data)


def stream_get(session: requests.Session, url: str, size: int, *,
               redirects: bool) -> None:
    with session.get(url, stream=True, allow_redirects=redirects, timeout=600) as reply:
        reply.raise_for_status()
        got = sum(len(block) for block in reply.iter_content(MiB))
    if got != size:
        raise RuntimeError(f"downloaded {got} bytes, expected {size}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds, alternating boto3 and Joist (best of each kept)")
    args = parser.parse_args()
    size = args.size_mib * MiB
    speeds: dict[str, list[float]] = {}

    def measure(name: str, action: Callable[[], Any]) -> None:
        start = time.perf_counter()
        action()
        speeds.setdefault(name, []).append(size / (time.perf_counter() - start) / 1e6)

    with tempfile.TemporaryDirectory(prefix="s3bench-") as tmp, \
            child(MOTO_SERVER) as port:
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench",
                          config=Config(s3={"addressing_style": "path"}))
        s3.create_bucket(Bucket="reference")
        s3.create_bucket(Bucket="joist")
        source = Path(tmp) / "source.bin"
        make_source(source, size)
        print(f"{args.size_mib} MiB, moto at {endpoint}, best of {args.rounds} rounds")
        with child(JOIST_SERVER, str(Path(tmp) / "data"), endpoint, "joist", LOGIN,
                   PASSWORD) as url:
            api = url + "/api/v1"
            client = girder_client.GirderClient(apiUrl=api)
            client.authenticate(LOGIN, PASSWORD)
            folder = next(client.listFolder(client.get("user/me")["_id"], "user",
                                            name="Private"))
            session = requests.Session()
            session.headers["Girder-Token"] = client.token

            def redirect(on: bool) -> None:
                session.put(f"{api}/system/setting", timeout=30, params={
                    "key": "joist.s3.redirect_downloads",
                    "value": "true" if on else "false"}).raise_for_status()

            for _ in range(args.rounds):
                # The same state of moto for both (one object at a time): moto
                # slows down as it holds more.
                measure("boto3 upload_fileobj", lambda: _boto_upload(s3, source))
                measure("boto3 download_fileobj",
                        lambda: s3.download_fileobj("reference", "object", Sink()))
                measure("boto3 get_object", lambda: _boto_stream(s3, size))
                s3.delete_object(Bucket="reference", Key="object")
                uploaded: dict[str, Any] = {}

                def joist_up(into: dict[str, Any] = uploaded) -> None:
                    with open(source, "rb") as f:
                        into.update(client.uploadFile(folder["_id"], f, "big.bin", size,
                                                      parentType="folder"))

                measure("joist upload", joist_up)
                download = f"{api}/file/{uploaded['_id']}/download"
                redirect(False)
                measure("joist download (proxied)",
                        lambda u=download: stream_get(session, u, size, redirects=False))
                redirect(True)
                measure("joist download (redirect)",
                        lambda u=download: stream_get(session, u, size, redirects=True))
                client.delete(f"item/{uploaded['itemId']}")
    best = {name: max(values) for name, values in speeds.items()}
    boto_up = best["boto3 upload_fileobj"]
    boto_down = max(best["boto3 download_fileobj"], best["boto3 get_object"])
    print("best MB/s: " + ", ".join(f"{k} {v:.1f}" for k, v in best.items()))
    print(f"{'':26}{'Joist MB/s':>11}{'boto3 MB/s':>11}{'ratio':>7}   target >= {TARGET:.0%}")
    for name, ref in (("joist upload", boto_up), ("joist download (proxied)", boto_down),
                      ("joist download (redirect)", boto_down)):
        ratio = best[name] / ref
        print(f"{name:26}{best[name]:11.1f}{ref:11.1f}{ratio:7.2f}   "
              f"{'ok' if ratio >= TARGET else 'MISSED'}")
    print("(boto3 reference: upload_fileobj for uploads; the faster of download_fileobj "
          "and one streamed get_object for downloads)")
    return 0


def _boto_upload(s3: Any, source: Path) -> None:
    with open(source, "rb") as f:
        s3.upload_fileobj(f, "reference", "object")


def _boto_stream(s3: Any, size: int) -> None:
    body = s3.get_object(Bucket="reference", Key="object")["Body"]
    got = sum(len(block) for block in iter(lambda: body.read(MiB), b""))
    if got != size:
        raise RuntimeError(f"downloaded {got} bytes, expected {size}")


if __name__ == "__main__":
    sys.exit(main())
