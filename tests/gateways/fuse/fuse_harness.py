"""Real mounts for the FUSE tests: ``joist mount`` in a subprocess against
``/dev/fuse``, over a world built in the test process (same data directory).

Every mount a test starts is stopped by the fixture that started it, even on
failure: SIGTERM first (the clean way), then ``fusermount3 -uz`` and a kill.
Waits poll with a deadline; nothing sleeps for synchronisation.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from joist.admin.bootstrap import App, build_app
from tests.conftest import make_settings
from tests.s3env import select_test_assetstore
from tests.world import World, build_world

DEADLINE = 20.0


def fuse_available() -> bool:
    return os.path.exists("/dev/fuse") and shutil.which("fusermount3") is not None


needs_fuse = pytest.mark.skipif(not fuse_available(),
                                reason="no /dev/fuse or fusermount3 on this machine")


def wait_for(predicate: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """Poll ``predicate`` until it is truthy; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    delay = 0.005
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def is_mounted(point: Path) -> bool:
    target = os.fsencode(os.path.abspath(point))
    with open("/proc/self/mountinfo", "rb") as info:
        return any(line.split()[4] == target for line in info if len(line.split()) > 4)


def cli_env(data_dir: Path, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOIST_")}
    env.update(JOIST_DATA_DIR=str(data_dir), JOIST_SECURITY__BCRYPT_ROUNDS="4",
               JOIST_ASSETSTORE__RESERVE_MB="0", HOME=str(home), **extra)
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 60
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "joist.admin.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class MountProc:
    point: Path
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def root(self) -> Path:
        return self.point

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_mounted(self) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"joist mount exited {self.proc.returncode}:\n"
                                     f"{self.log()}")
            return is_mounted(self.point)
        wait_for(ready, f"the mount at {self.point}")

    def terminate(self) -> int:
        """SIGTERM and wait: the mount must go away by itself."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=DEADLINE)
        wait_for(lambda: not is_mounted(self.point), "the unmount")
        return code

    def stop(self) -> None:
        """Whatever state it is in: no process and no mount left."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=DEADLINE)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=DEADLINE)
        finally:
            if is_mounted(self.point):
                subprocess.run(["fusermount3", "-uz", str(self.point)], check=False,
                               capture_output=True)


@dataclass
class MountSite:
    """A world, and mounts of it as its users (started on demand, one per
    login and mode, all stopped by ``close``)."""

    app: App
    world: World
    base: Path
    tokens: dict[str, str] = field(default_factory=dict)
    mounts: dict[tuple[Any, ...], MountProc] = field(default_factory=dict)
    counter: int = 0

    @property
    def data_dir(self) -> Path:
        return self.app.settings.data_path

    def env(self, **extra: str) -> dict[str, str]:
        return cli_env(self.data_dir, self.base / "home", **extra)

    def token(self, login: str) -> str:
        if login not in self.tokens:
            user = self.world.users[login]
            self.tokens[login] = str(self.app.services.auth.login_token(user)["_id"])
        return self.tokens[login]

    def start(self, login: str | None, *args: str, env: dict[str, str] | None = None,
              wait: bool = True) -> MountProc:
        """A new mount process (not shared)."""
        self.counter += 1
        point = self.base / f"mnt{self.counter}"
        point.mkdir()
        if login is None:
            who = ["--user", "anonymous"]
            extra: dict[str, str] = {}
        elif login == "--admin":
            who, extra = ["--admin"], {}
        else:
            who, extra = ["--user", login], {"JOIST_TOKEN": self.token(login)}
        log_path = self.base / f"mnt{self.counter}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "joist.admin.cli", "mount", str(point), *who, *args],
                env=env or self.env(**extra), stdout=log, stderr=subprocess.STDOUT)
        mount = MountProc(point, proc, log_path)
        self.mounts[("own", self.counter)] = mount
        if wait:
            try:
                mount.wait_mounted()
            except BaseException:
                mount.stop()
                raise
        return mount

    def mount(self, login: str | None, *args: str) -> MountProc:
        """The shared mount for ``login`` with ``args`` (started once)."""
        key = (login, *args)
        if key not in self.mounts:
            mount = self.start(login, *args)
            self.mounts[key] = self.mounts.pop(("own", self.counter))
            return mount
        return self.mounts[key]

    def close(self) -> None:
        errors = []
        for mount in list(self.mounts.values()):
            try:
                mount.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(exc)
        self.mounts.clear()
        self.app.close()
        if errors:
            raise errors[0]


@contextmanager
def mount_site(base: Path) -> Iterator[MountSite]:
    base.mkdir(parents=True, exist_ok=True)
    (base / "home").mkdir(exist_ok=True)
    app = build_app(make_settings(base / "data"), env={})
    select_test_assetstore(app)  # JOIST_TEST_ASSETSTORE=s3: uploads go to S3
    site = MountSite(app, build_world(app), base)
    try:
        yield site
    finally:
        site.close()


class MountFs:
    """``FsClient`` of the hierarchy contract over a mounted directory: plain
    ``os`` calls and ``open``, as any program would use the mount."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _p(self, path: str) -> str:
        return str(self.root) + path

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(self._p(path)))

    def isdir(self, path: str) -> bool:
        return stat.S_ISDIR(os.stat(self._p(path)).st_mode)

    def size(self, path: str) -> int:
        return os.stat(self._p(path)).st_size

    def read(self, path: str, offset: int = 0, size: int | None = None) -> bytes:
        with open(self._p(path), "rb") as f:
            f.seek(offset)
            return f.read() if size is None else f.read(size)

    def write(self, path: str, data: bytes) -> None:
        with open(self._p(path), "wb") as f:
            f.write(data)

    def mkdir(self, path: str) -> None:
        os.mkdir(self._p(path))

    def remove(self, path: str) -> None:
        os.remove(self._p(path))

    def rmdir(self, path: str) -> None:
        os.rmdir(self._p(path))

    def rename(self, src: str, dst: str) -> None:
        os.rename(self._p(src), self._p(dst))


__all__ = ["MountFs", "MountProc", "MountSite", "cli_env", "fuse_available", "is_mounted",
           "mount_site", "needs_fuse", "run_cli", "wait_for"]
