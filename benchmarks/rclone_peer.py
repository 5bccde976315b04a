"""rclone as the peer in the gateway benchmarks: ``serve webdav``, ``serve sftp``
and ``mount`` over the plain directory that holds the same bytes as Joist's
store, each on 127.0.0.1 only and stopped when its ``with`` block ends.

Debian's ``rclone`` (``apt-get install rclone``) is enough; the benchmarks skip
the peer, saying so, when it is missing. Every server runs with rclone's
defaults except where a flag makes the work the same as Joist's (the mount's
chunk-cache run uses ``--vfs-cache-mode full``, rclone's on-disk read cache).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RCLONE = shutil.which("rclone")
START_DEADLINE = 30.0


def available() -> bool:
    return RCLONE is not None


def version() -> str:
    if RCLONE is None:
        return "not installed"
    out = subprocess.run([RCLONE, "version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else "unknown"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rclone exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"rclone did not listen on {port} in {START_DEADLINE:.0f} s")


@contextmanager
def _running(args: list[str], work: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """``rclone args`` with its own config and cache dirs under ``work`` (a user's
    ~/.config/rclone must not change what is measured) and its log in a file."""
    assert RCLONE is not None, "rclone is not installed"
    home = work / f"rclone-{name}"
    home.mkdir(parents=True, exist_ok=True)
    log = home / "rclone.log"
    env = {**os.environ, "RCLONE_CONFIG": str(home / "rclone.conf"),
           "RCLONE_CACHE_DIR": str(home / "cache"), "XDG_CACHE_HOME": str(home / "cache")}
    with open(log, "wb") as out:
        proc = subprocess.Popen([RCLONE, *args, "--log-file", str(log)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@contextmanager
def serve_webdav(root: Path, work: Path) -> Iterator[str]:
    """``rclone serve webdav root`` without authentication; yields its base URL."""
    port = _free_port()
    with _running(["serve", "webdav", str(root), "--addr", f"127.0.0.1:{port}"],
                  work, "webdav") as proc:
        _wait_port(proc, port, work / "rclone-webdav" / "rclone.log")
        yield f"http://127.0.0.1:{port}"


@contextmanager
def serve_sftp(root: Path, work: Path, authorized_keys: Path) -> Iterator[tuple[int, int]]:
    """``rclone serve sftp root`` with public-key login; yields (pid, port)."""
    port = _free_port()
    host_key = work / "rclone-sftp" / "host_key"
    host_key.parent.mkdir(parents=True, exist_ok=True)
    if not host_key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
                       check=True)
    with _running(["serve", "sftp", str(root), "--addr", f"127.0.0.1:{port}",
                   "--key", str(host_key), "--authorized-keys", str(authorized_keys)],
                  work, "sftp") as proc:
        _wait_port(proc, port, work / "rclone-sftp" / "rclone.log")
        yield proc.pid, port


@contextmanager
def mount(root: Path, point: Path, work: Path, *extra: str) -> Iterator[Path]:
    """``rclone mount root point``; yields the mount point once the kernel has it."""
    point.mkdir(parents=True, exist_ok=True)
    name = f"mount-{point.name}"
    with _running(["mount", str(root), str(point), *extra], work, name) as proc:
        try:
            deadline = time.monotonic() + START_DEADLINE
            while not os.path.ismount(point):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("rclone mount failed: " + (
                        work / f"rclone-{name}" / "rclone.log").read_text(errors="replace"))
                time.sleep(0.02)
            yield point
        finally:
            subprocess.run(["fusermount3", "-u", str(point)], check=False,
                           capture_output=True)
