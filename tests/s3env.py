"""A real S3 endpoint for tests: moto's server mode on 127.0.0.1, port 0 (no S3
is reachable from CI), plus a TCP proxy that can cut or stall the connection
to it, and the ``JOIST_TEST_ASSETSTORE=s3`` switch that runs whole suites with
an S3 assetstore as the current one.

``MotoS3`` runs the server in this process: moto keeps its buckets in this
process's memory, shared by every server instance, so a server stopped and
started again on its port finds them again (fault tests need that). The
session's shared server (``shared_moto``) runs in a child process instead, so
that its CPU and memory are not counted as the tests' (memory tests trace the
whole process).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from joist.core.assetstores.registry import S3

CREDENTIALS = {"accessKeyId": "testing", "secret": "testing"}
_buckets = itertools.count()

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise


class _S3Endpoint:
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, url: str | None = None) -> Any:
        """A plain boto3 client (cached: making one costs ~0.1 s)."""
        import boto3
        from botocore.config import Config
        url = url or self.url
        cache = self.__dict__.setdefault("_clients", {})
        if url not in cache:
            cache[url] = boto3.client(
                "s3", endpoint_url=url, region_name="us-east-1",
                aws_access_key_id="testing", aws_secret_access_key="testing",
                config=Config(retries={"total_max_attempts": 1}))
        return cache[url]

    def new_bucket(self, stem: str = "joist") -> str:
        name = f"{stem}-{os.getpid()}-{next(_buckets)}-{uuid.uuid4().hex[:6]}"
        self.client().create_bucket(Bucket=name)
        return name

    def fields(self, bucket: str, url: str | None = None, **extra: Any) -> dict[str, Any]:
        """Assetstore document fields for ``bucket`` (short timeouts for tests)."""
        return {"bucket": bucket, "service": url or self.url, "region": "us-east-1",
                **CREDENTIALS, "connectTimeout": 2, "readTimeout": 5, "attempts": 2, **extra}

    def enforce_auth(self, enforce: bool) -> None:
        """Make moto check credentials (then every key we use is unknown)."""
        value = "0" if enforce else "inf"
        reply = requests.post(f"{self.url}/moto-api/reset-auth", data=value, timeout=10)
        reply.raise_for_status()


class MotoS3(_S3Endpoint):
    """A moto S3 server in this process; ``stop`` refuses connections until
    ``start`` (same port, same buckets)."""

    def __init__(self) -> None:
        self.port = 0
        self._server: Any = None

    def start(self) -> MotoS3:
        from moto.server import ThreadedMotoServer  # only S3 tests pay for the import
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self.port = server.get_host_and_port()[1]
        self._server = server
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
            inner = getattr(server, "_server", None)
            if inner is not None:
                inner.server_close()  # refuse new connections, not just ignore them

    @property
    def running(self) -> bool:
        return self._server is not None


_CHILD = """
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.WARNING)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # until the parent closes it (or dies)
server.stop()
"""


class MotoProcess(_S3Endpoint):
    """A moto S3 server in a child process (see the module docstring)."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
        try:
            assert self._proc.stdout is not None
            line = self._proc.stdout.readline()  # the child prints once it listens
            self.port = int(line)
        except BaseException:
            self._proc.kill()
            self._proc.wait()
            raise

    def stop(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


_shared: MotoProcess | None = None
_shared_lock = threading.Lock()


def shared_moto() -> MotoProcess:
    """The session's moto server, started on first use (the session fixture
    in ``tests/conftest.py`` stops it)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = MotoProcess()
        return _shared


def stop_shared_moto() -> None:
    global _shared
    with _shared_lock:
        if _shared is not None:
            _shared.stop()
            _shared = None


def s3_switch_on() -> bool:
    return os.environ.get("JOIST_TEST_ASSETSTORE", "").lower() == "s3"


# For tests that look at the filesystem assetstore's own files (blob files,
# descriptors, the disk's capacity): with S3 current there are none to see.
local_blobs_only = pytest.mark.skipif(
    s3_switch_on(),
    reason="checks the embedded filesystem assetstore itself (its files, descriptors, "
           "capacity, or being the only store); S3 is current")


def select_test_assetstore(app: Any) -> None:
    """With ``JOIST_TEST_ASSETSTORE=s3``: new uploads of ``app`` go to an S3
    assetstore on its own bucket (once per store: a second app on the same
    store finds it current already)."""
    if not s3_switch_on():
        return
    doc, _ = app.assetstores.current()
    if doc.get("type") == S3:
        return
    moto = shared_moto()
    app.assetstores.create_s3("Test S3", moto.fields(moto.new_bucket("suite")), current=True)
    # The suites check the bytes Joist serves; redirects have tests of their own.
    app.services.settings.set("joist.s3.redirect_downloads", False)


class BucketStore:
    """An S3 adapter on a fresh bucket of ``moto`` (reached at ``url``, e.g. a
    ``FaultProxy``), its metadata in a SQLite file; ``open()`` builds a new
    adapter, as another process would."""

    def __init__(self, tmp: Path, moto: _S3Endpoint, url: str | None = None,
                 **fields: Any) -> None:
        self.moto = moto
        self.bucket = moto.new_bucket("unit")
        self.fields = moto.fields(self.bucket, url, **fields)
        self.db = tmp / "meta.db"
        self.engines: list[Any] = []

    def open(self) -> Any:
        from joist.core.assetstores.s3 import S3Assetstore
        from joist.core.db.sqlite import SQLiteEngine
        engine = SQLiteEngine(self.db)
        self.engines.append(engine)
        return S3Assetstore.from_document({"_id": "as-s3", **self.fields}, engine)

    def s3(self) -> Any:
        return self.moto.client()

    def keys(self) -> set[str]:
        return {o["Key"] for o in self.s3().list_objects_v2(Bucket=self.bucket)
                .get("Contents") or ()}

    def multiparts(self) -> list[dict[str, Any]]:
        return self.s3().list_multipart_uploads(Bucket=self.bucket).get("Uploads") or []

    def close(self) -> None:
        for engine in self.engines:
            engine.close()


class FaultProxy:
    """A TCP proxy on 127.0.0.1:0 in front of ``port``: ``cut()`` resets every
    open connection and every new one, ``stall()`` accepts and never answers
    (an endpoint that times out), ``heal()`` forwards again."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.mode = "pass"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        self.mode = "cut"
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            _reset(conn)

    def stall(self) -> None:
        self.mode = "stall"

    def heal(self) -> None:
        self.mode = "pass"

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == "cut":
                _reset(client)
                continue
            with self._lock:
                self._conns.append(client)
            if self.mode == "stall":
                continue  # held open, never answered, reset by cut()/close()
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._conns.append(upstream)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        live = {a, b}
        with contextlib.suppress(OSError, ValueError):
            while live and not self._closed:
                ready, _, _ = select.select(list(live), [], [], 0.5)
                for sock in ready:
                    data = sock.recv(1 << 16)
                    if data:
                        peers[sock].sendall(data)
                    else:  # pass the half-close on; a reset could drop unread replies
                        live.discard(sock)
                        with contextlib.suppress(OSError):
                            peers[sock].shutdown(socket.SHUT_WR)
        for sock in (a, b):
            with contextlib.suppress(OSError):
                sock.close()


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()
