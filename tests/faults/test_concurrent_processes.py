"""No lost byte under concurrent writers, through a real FUSE mount (``--rw``)
and across two ``joist serve`` processes on one data directory (issue 12,
items 1 and 7). SQLite only: the mount and the servers are other processes,
and mongomock lives in one process's memory.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from joist.admin.bootstrap import build_app
from joist.core.services.check import Checker
from tests.conftest import ENGINE, make_settings
from tests.faults.writers import FOLDER, ROUNDS, WRITERS, at_once, content
from tests.gateways.fuse.fuse_harness import MountSite, mount_site, needs_fuse
from tests.gateways.http.test_rest_two_processes import Process, _start, _stop
from tests.world import PASSWORD, build_world

pytestmark = pytest.mark.skipif(
    ENGINE == "mongo",
    reason="SQLite only: the engine does not change what these test (the reference "
           "protocol is engine-independent, and test_concurrent_writers.py runs every "
           "gateway write path on the MongoDB engine)")


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[tuple[MountSite, Path]]:
    with mount_site(tmp_path / "m") as site:
        mount = site.start("alice", "--rw")
        folder = mount.root / FOLDER.lstrip("/")
        for i in range(WRITERS):
            (folder / f"KEEP{i}.txt").write_bytes(content(i))
        (folder / "T.txt").write_bytes(content(0))
        yield site, folder


def _assert_store_intact(site: MountSite, folder: Path) -> None:
    for i in range(WRITERS):
        assert (folder / f"KEEP{i}.txt").read_bytes() == content(i)
    view = site.app.hierarchy.view(site.world.principal("alice"))
    for i in range(WRITERS):
        with view.open_read(f"{FOLDER}/KEEP{i}.txt") as reader:
            assert reader.read() == content(i)
    problems = Checker(site.app.services).check()
    assert problems == [], "\n".join(map(str, problems))


@needs_fuse
def test_fuse_rw_writers(mounted: tuple[MountSite, Path]) -> None:
    site, folder = mounted
    for rnd in range(ROUNDS):
        def write(i: int, rnd: int = rnd) -> None:
            with open(folder / "T.txt", "wb") as f:
                f.write(content(i + rnd))
        failures = [r for r in at_once(WRITERS, write) if r is not None]
        assert not failures, failures
        assert (folder / "T.txt").read_bytes() in [content(i) for i in range(WRITERS)]
    _assert_store_intact(site, folder)


@needs_fuse
def test_fuse_renames_of_one_source(mounted: tuple[MountSite, Path]) -> None:
    """Eight renames of one file to eight names: one succeeds, seven ENOENT."""
    site, folder = mounted
    for rnd in range(3):
        (folder / "M.txt").write_bytes(content(rnd))

        def rename(i: int, rnd: int = rnd) -> str:
            try:
                os.rename(folder / "M.txt", folder / f"moved{rnd}-{i}.txt")
            except OSError as exc:
                return errno.errorcode[exc.errno or 0]
            return "ok"
        results = at_once(WRITERS, rename)
        assert sorted(results) == ["ENOENT"] * (WRITERS - 1) + ["ok"], results
        names = sorted(p.name for p in folder.iterdir() if p.name.startswith(f"moved{rnd}-"))
        assert names == [f"moved{rnd}-{results.index('ok')}.txt"]
        assert (folder / names[0]).read_bytes() == content(rnd)
    _assert_store_intact(site, folder)


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[Process, Process, dict[str, str]]]:
    data = tmp_path / "data"
    with build_app(make_settings(data), env={}) as app:
        build_world(app)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOIST_")}
    env.update(JOIST_DATA_DIR=str(data), JOIST_SECURITY__BCRYPT_ROUNDS="4",
               JOIST_ASSETSTORE__RESERVE_MB="0", JOIST_SFTP__ENABLED="false",
               HOME=str(tmp_path / "home"))
    started: list[Process] = []
    try:
        started.append(_start(env, "one"))
        started.append(_start(env, "two"))
        yield started[0], started[1], env
    finally:
        for process in started:
            _stop(process.proc)


def test_two_processes_webdav_writers(two: tuple[Process, Process, dict[str, str]]) -> None:
    one, other, env = two
    bases = [p.url + "/dav" + FOLDER for p in (one, other)]
    auth = ("alice", PASSWORD)
    for i in range(WRITERS):
        assert requests.put(f"{bases[i % 2]}/KEEP{i}.txt", data=content(i), auth=auth,
                            timeout=60).status_code == 201
    for rnd in range(ROUNDS):
        def churn(i: int, rnd: int = rnd) -> int:
            base = bases[(i + rnd) % 2]
            if i % 4 == 3:
                return requests.request(
                    "COPY", f"{base}/KEEP{(i + rnd) % WRITERS}.txt", auth=auth, timeout=60,
                    headers={"Destination": base + "/T.txt", "Overwrite": "T"}).status_code
            if i % 4 == 1 and rnd % 2:
                return requests.delete(base + "/T.txt", auth=auth, timeout=60).status_code
            return requests.put(base + "/T.txt", data=content(i + rnd), auth=auth,
                                timeout=60).status_code
        outcomes = at_once(WRITERS, churn)
        assert set(outcomes) <= {201, 204, 404}, (outcomes, "".join(one.log[-40:]))
    for base in bases:
        for i in range(WRITERS):
            got = requests.get(f"{base}/KEEP{i}.txt", auth=auth, timeout=60)
            assert got.status_code == 200 and got.content == content(i)
    check = subprocess.run([sys.executable, "-m", "joist.admin.cli", "check"], env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "OK" in check.stdout
