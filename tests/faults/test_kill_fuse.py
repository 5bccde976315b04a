"""A `joist mount --rw` killed while it streams a closed file into the store:
the file never appears, `joist check` reports the abandoned upload and its
temporary bytes (its process is gone), `--repair` removes them, and writing
the file again through a new mount works. Every other file is unchanged."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.world as w
from tests.gateways.fuse.fuse_harness import MountSite, mount_site, needs_fuse, run_cli, wait_for

pytestmark = needs_fuse

NEW = os.urandom(2 << 20)
POINT = "upload.stream.after_append"
UNCHANGED = {"/user/alice/Public/readme.txt": w.README,
             "/user/alice/Private/data/a.txt": w.A_TXT,
             "/user/alice/Private/data/multi/x.bin": w.X_BIN,
             "/collection/shared/docs/report.txt": w.REPORT}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[MountSite]:
    with mount_site(tmp_path / "site") as site:
        yield site


def _read(site: MountSite, path: str) -> bytes:
    site.app.hierarchy.cache.clear()  # the mount process wrote: no cached lookups
    view = site.app.hierarchy.view(site.world.principal("admin"))
    with view.open_read(path) as reader:
        return reader.read()


def test_killed_fuse_write(site: MountSite) -> None:
    env = site.env(JOIST_TOKEN=site.token("alice"), JOIST_FAULT_POINTS=POINT)
    mount = site.start("alice", "--rw", env=env)
    target = "user/alice/Public/fuse.bin"
    with contextlib.suppress(OSError), open(mount.root / target, "wb") as f:
        f.write(NEW)  # committed on close: the mount dies there
    assert mount.proc.wait(timeout=30) == -signal.SIGKILL
    assert f"fault point {POINT} reached" in mount.log()
    mount.stop()  # the dead mount's mountpoint goes too

    cli = site.env()
    found = run_cli(["check"], cli)
    assert found.returncode == 1, found.stdout + found.stderr
    assert "abandoned-upload" in found.stdout and "its process is gone" in found.stdout
    assert f"{len(NEW)} bytes of temporary data" in found.stdout
    assert run_cli(["check", "--repair"], cli).returncode == 0
    clean = run_cli(["check"], cli)
    assert clean.returncode == 0 and clean.stdout.startswith("OK"), clean.stdout
    assert os.listdir(site.data_dir / "assetstore" / "temp") == []
    site.app.hierarchy.cache.clear()
    with pytest.raises(FileNotFoundError):
        site.app.hierarchy.view(site.world.principal("alice")).stat("/" + target)

    again = site.start("alice", "--rw", env=site.env(JOIST_TOKEN=site.token("alice")))
    (again.root / target).write_bytes(NEW)
    wait_for(lambda: _read(site, "/" + target) == NEW, "the rewritten file")
    for path, data in UNCHANGED.items():
        assert _read(site, path) == data, path
