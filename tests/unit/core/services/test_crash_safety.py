"""Interrupted work leaves a consistent store: killed uploads, aborted writers,
a full disk. `joist check` finds nothing wrong afterwards."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from joist.admin.bootstrap import App, build_app
from joist.core.errors import QuotaError
from joist.core.services.check import Checker
from tests.conftest import make_settings
from tests.world import World, build_world

CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from tests.conftest import make_settings
    from joist.admin.bootstrap import build_app
    from joist.core.acl import Principal
    app = build_app(make_settings(Path({data!r})), env={{}})
    alice = Principal.from_user(app.store.users.find_one({{"login": "alice"}}))
    folder = app.store.folders.find_one({{"name": "data"}})
    step = app.services.uploads.begin(alice, "folder", folder["_id"], "big.bin", 64 << 20)
    print(step.upload["_id"], flush=True)

    class Slow:
        def read(self, n=-1):
            time.sleep(0.01)  # a slow client; the parent kills us mid-stream
            return b"x" * 65536

    app.services.uploads.write(alice, step.upload["_id"], 0, Slow(), 64 << 20)
""")


def _check(app: App) -> list[str]:
    return [str(f) for f in Checker(app.services).check()]


def test_killed_upload_leaves_store_consistent_and_resumable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    app = build_app(make_settings(data), env={})
    try:
        world = build_world(app)
        script = CHILD.format(root=str(Path(__file__).resolve().parents[4]), data=str(data))
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                 text=True)
        try:
            assert child.stdout is not None
            upload_id = child.stdout.readline().strip()
            temp = data / "assetstore" / "temp" / f"{upload_id}.part"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # poll until bytes are in flight
                if temp.exists() and temp.stat().st_size > 1 << 20:
                    break
                time.sleep(0.02)
            assert temp.exists() and temp.stat().st_size > 1 << 20
            child.send_signal(signal.SIGKILL)
            child.wait(30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(30)
        assert app.store.items.find_one({"name": "big.bin"}) is None  # nothing visible
        assert _check(app) == []  # a live, resumable upload is not a problem
        alice = world.principal("alice")
        offset = app.services.uploads.offset(alice, upload_id)
        assert 0 < offset < 64 << 20
        rest = (64 << 20) - offset
        done = app.services.uploads.write(alice, upload_id, offset, io.BytesIO(b"x" * rest),
                                          rest)
        assert done.file is not None and done.file["size"] == 64 << 20
        assert _check(app) == []
    finally:
        app.close()


def test_aborted_writer_and_failed_stream_leave_nothing(app: App) -> None:
    world = build_world(app)
    view = app.hierarchy.view(world.principal("alice"))
    path = "/user/alice/Private/data/partial.bin"

    class Broken:
        def __init__(self) -> None:
            self.calls = 0

        def read(self, n: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 3:
                raise ConnectionResetError("client went away")
            return b"y" * 1000

    with pytest.raises(OSError), view.open_write(path) as writer:
        writer.write(b"first part")
        writer.write_from(Broken(), 10_000)  # type: ignore[arg-type]
    assert not view.exists(path)
    assert app.store.uploads.count() == 0
    assert _check(app) == []


def test_disk_full_during_upload(tmp_path: Path) -> None:
    """A real ENOSPC: the assetstore on a 2 MiB tmpfs (we run as root here)."""
    mount = tmp_path / "small"
    mount.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                         capture_output=True, timeout=30)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        app = build_app(make_settings(tmp_path / "data", **{"assetstore.root": str(mount)}),
                        env={})
        try:
            world: World = build_world(app)
            view = app.hierarchy.view(world.principal("alice"))
            with pytest.raises(QuotaError), \
                    view.open_write("/user/alice/Private/data/huge.bin") as writer:
                for _ in range(64):
                    writer.write(os.urandom(64 << 10))
            assert not view.exists("/user/alice/Private/data/huge.bin")
            assert _check(app) == []
            with view.open_write("/user/alice/Private/data/fits.bin") as writer:
                writer.write(b"still works")
            with view.open_read("/user/alice/Private/data/fits.bin") as reader:
                assert reader.read() == b"still works"
        finally:
            app.close()
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)
