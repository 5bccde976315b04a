"""A `joist serve` subprocess with fault points armed, and the data directory
it runs on: what the kill-point tests start, kill, restart and check."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

JOIST = [sys.executable, "-m", "joist.admin.cli"]
START_SECONDS = 60.0
DIE_SECONDS = 30.0


def cli_env(data_dir: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOIST_")}
    env.update(JOIST_DATA_DIR=str(data_dir), JOIST_SECURITY__BCRYPT_ROUNDS="4",
               JOIST_ASSETSTORE__RESERVE_MB="0", JOIST_SFTP__ENABLED="false",
               HOME=str(home))
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*JOIST, *args], env=env, text=True, capture_output=True,
                          timeout=120, check=False)


@dataclass
class Server:
    """One `joist serve` process; ``output`` collects what it printed."""

    proc: subprocess.Popen[str]
    api: str
    dav: str
    lines: queue.Queue[str]
    output: list[str] = field(default_factory=list)

    def drain(self) -> str:
        for _ in range(100_000):
            try:
                self.output.append(self.lines.get_nowait())
            except queue.Empty:
                break
        return "".join(self.output)

    def wait_killed_at(self, point: str) -> None:
        """The process must die by SIGKILL at ``point``."""
        code = self.proc.wait(timeout=DIE_SECONDS)
        said = f"fault point {point} reached"
        deadline = time.monotonic() + 5  # the pump thread may lag behind the exit
        while said not in self.drain() and time.monotonic() < deadline:
            with suppress(queue.Empty):
                self.output.append(self.lines.get(timeout=0.1))
        assert code == -signal.SIGKILL, (code, self.drain())
        assert said in self.drain()


@contextmanager
def serve(env: dict[str, str], points: tuple[str, ...] = (), *,
          graceful: bool = True) -> Iterator[Server]:
    """`joist serve` on a free port with ``points`` armed; stopped on exit
    (``graceful=False``: killed, when nothing it does matters any more)."""
    env = {**env, "JOIST_FAULT_POINTS": ",".join(points)}
    # One process: the fault point's SIGKILL must end the server, not one of
    # several workers that its supervisor would restart.
    proc = subprocess.Popen([*JOIST, "serve", "--port", "0", "--workers", "1"], env=env,
                            text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        banner, deadline = "", time.monotonic() + START_SECONDS
        while "Data directory" not in banner:
            assert time.monotonic() < deadline and proc.poll() is None, banner
            with suppress(queue.Empty):
                banner += lines.get(timeout=0.5)
        rest = re.search(r"REST API: (http://\S+/api/v1)", banner)
        dav = re.search(r"WebDAV: (http://\S+/dav)", banner)
        assert rest and dav, banner
        server = Server(proc, rest.group(1), dav.group(1), lines, [banner])
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


class Rest:
    """A REST session as alice (her token survives restarts: it is stored)."""

    def __init__(self, server: Server, token: str | None = None,
                 auth: tuple[str, str] | None = None) -> None:
        self.api = server.api
        self.http = requests.Session()
        if token is None:
            assert auth is not None
            reply = self.http.get(f"{self.api}/user/authentication", auth=auth, timeout=30)
            reply.raise_for_status()
            token = reply.json()["authToken"]["token"]
        self.token = token
        self.http.headers["Girder-Token"] = token

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, f"{self.api}/{path}", timeout=60, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        reply = self.call(method, path, **kwargs)
        assert reply.status_code == 200, (method, path, reply.status_code, reply.text)
        return reply.json()

    def download(self, file_id: Any) -> bytes:
        reply = self.call("GET", f"file/{file_id}/download")
        assert reply.status_code == 200, reply.text
        return reply.content

    def close(self) -> None:
        self.http.close()


def copy_tree(template: Path, target: Path) -> None:
    shutil.copytree(template, target, symlinks=True)
