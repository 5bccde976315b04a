"""A throwaway Redis server (Debian's ``redis-server``) on 127.0.0.1, for the
Celery job runner's tests: started on a free port with no persistence, ready
when it answers PING, stopped (and killed if need be) at the end."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.ldap_server import free_port

START_DEADLINE = 20.0


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """Yield the URL of a running Redis server (database 0)."""
    import redis
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir), "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
        deadline = time.monotonic() + START_DEADLINE
        while True:
            assert proc.poll() is None, "redis-server exited"
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
