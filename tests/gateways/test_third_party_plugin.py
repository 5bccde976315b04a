"""Issue 16 item 2 end to end: a third-party plugin package, found through the
``joist.plugins`` entry point, enabled through ``PUT system/plugins``, answers
its route after a restart of ``joist serve`` and its ``data.process`` handler
records REST uploads and FUSE writes (inside the mount's own process); the CLI
lists, disables it, and the next start no longer loads it.

The package is a temporary directory with the module and a ``*.dist-info``
holding ``entry_points.txt``, put on ``PYTHONPATH`` of the subprocesses only:
the venv is never touched, and pytest removes the directory. Every server and
mount the test starts is stopped in ``finally``.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.gateways.fuse.fuse_harness import MountProc, fuse_available, wait_for
from tests.serve_process import JOIST, joist_serve

PASSWORD = "plugin-tester"
PLUGIN = '''
"""A third-party Joist plugin, as a package of its own would ship it."""
from joist.core.db.engine import CollectionSpec, Index
from joist.core.plugins import Plugin, RouteParam


class ProbePlugin(Plugin):
    name = "probe"
    description = "Records processed uploads (a test plugin)."
    version = "1.0"
    url = "https://example.org/probe"

    def load(self, info):
        records = info.collection(CollectionSpec(
            "probe_record", indexes=(Index((("fileId", 1),)),)))

        def processed(event):
            file = event.info["file"]
            records.insert_one({"fileId": str(file["_id"]), "name": file["name"],
                                "size": file["size"]})

        info.bind("data.process", processed)
        info.register_setting("probe.greeting", "hello", str, "What probe/hello says.")

        def hello(ctx, who):
            return {"greeting": ctx.services.settings.get("probe.greeting"), "who": who}

        def listing(ctx):
            return [{k: v for k, v in r.items() if k != "_id"}
                    for r in records.find({}, sort=[("_id", 1)])]

        info.add_route("GET", "probe/hello", hello, summary="Say hello.",
                       scope="core.data.read", params=[RouteParam("who", default="world")],
                       description="The probe plugin.")
        info.add_route("GET", "probe/records", listing, summary="What was processed.",
                       scope="core.data.read", access="admin")
'''


def _package(root: Path) -> Path:
    """The plugin package, installed the way pip lays one out."""
    (root / "joist_probe_plugin").mkdir(parents=True)
    (root / "joist_probe_plugin" / "__init__.py").write_text(PLUGIN)
    info = root / "joist_probe_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: joist-probe-plugin\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[joist.plugins]\nprobe = joist_probe_plugin:ProbePlugin\n")
    return root


@contextlib.contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """``joist serve`` on a free port; yields the API root; stopped on exit."""
    with joist_serve(env) as banner:
        found = re.search(r"REST API: (http://\S+/api/v1)", banner)
        assert found, banner
        yield found.group(1) + "/"


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([*JOIST, *args], env=env, input=stdin, text=True,
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _token(api: str, login: str) -> str:
    reply = requests.get(api + "user/authentication", auth=(login, PASSWORD), timeout=10)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["authToken"]["token"])


def _public(api: str, headers: dict[str, str]) -> str:
    me = requests.get(api + "user/me", headers=headers, timeout=10).json()
    folders = requests.get(api + "folder", headers=headers, timeout=10, params={
        "parentType": "user", "parentId": me["_id"], "name": "Public"}).json()
    return str(folders[0]["_id"])


@pytest.fixture
def env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    path = _package(tmp_path / "site-packages")
    extra = cli_env.get("PYTHONPATH")
    return {**cli_env, "JOIST_SFTP__ENABLED": "false", "JOIST_WEBDAV__ENABLED": "false",
            "PYTHONPATH": str(path) + (":" + extra if extra else "")}


def test_a_third_party_plugin_is_enabled_loaded_and_disabled(
        env: dict[str, str], tmp_path: Path) -> None:
    _cli(env, "user", "create", "admin", "--email", "admin@example.org", "--password-stdin",
         stdin=PASSWORD + "\n")
    listed = json.loads(_cli(env, "plugin", "list", "--json"))
    assert listed["all"]["probe"]["description"] == "Records processed uploads (a test plugin)."
    assert listed["enabled"] == [] and listed["loaded"] == []

    with serving(env) as api:
        headers = {"Girder-Token": _token(api, "admin")}
        assert requests.get(api + "probe/hello", headers=headers, timeout=10).status_code != 200
        state = requests.get(api + "system/plugins", headers=headers, timeout=10).json()
        assert state["all"]["probe"]["version"] == "1.0" and state["loaded"] == []
        bad = requests.put(api + "system/plugins", headers=headers, timeout=10,
                           data={"plugins": json.dumps(["probe", "nope"])})
        assert bad.status_code == 400 and "nope" in bad.json()["message"]
        reply = requests.put(api + "system/plugins", headers=headers, timeout=10,
                             data={"plugins": json.dumps(["probe"])})
        assert reply.status_code == 200, reply.text
        assert reply.json()["value"] == ["probe"] and reply.json()["restartRequired"] is True
        # takes effect at the next start, as Girder
        assert requests.get(api + "probe/hello", headers=headers, timeout=10).status_code != 200

    with serving(env) as api:
        headers = {"Girder-Token": _token(api, "admin")}
        state = requests.get(api + "system/plugins", headers=headers, timeout=10).json()
        assert state["enabled"] == ["probe"] and state["loaded"] == ["probe"]
        assert "failed" not in state
        hello = requests.get(api + "probe/hello", params={"who": "joist"}, timeout=10)
        assert hello.status_code == 200 and hello.json() == {"greeting": "hello",
                                                             "who": "joist"}
        paths = requests.get(api + "describe", timeout=10).json()["paths"]
        assert "/probe/hello" in paths and "/probe/records" in paths
        assert requests.get(api + "probe/records", timeout=10).status_code == 401  # admin only

        folder = _public(api, headers)
        made = requests.post(api + "file", headers=headers, timeout=10, data=b"r" * 10,
                             params={"parentType": "folder", "parentId": folder,
                                     "name": "rest.bin", "size": 10}).json()
        records = requests.get(api + "probe/records", headers=headers, timeout=10).json()
        assert records == [{"fileId": made["_id"], "name": "rest.bin", "size": 10}]

        if fuse_available():
            _fuse_write(env, tmp_path, _token(api, "admin"))
            def fuse_record() -> list[Any]:
                got = requests.get(api + "probe/records", headers=headers, timeout=10).json()
                return [r for r in got if r["name"] == "fuse.txt"]
            found = wait_for(fuse_record, "the FUSE write's data.process record")
            assert [(r["name"], r["size"]) for r in found] == [("fuse.txt", 5)]

    out = _cli(env, "plugin", "disable", "probe")
    assert "take effect when the server restarts" in out
    listed = json.loads(_cli(env, "plugin", "list", "--json"))
    assert listed["enabled"] == [] and listed["loaded"] == []
    with serving(env) as api:
        assert requests.get(api + "probe/hello", timeout=10).status_code != 200

    refused = subprocess.run([*JOIST, "plugin", "enable", "nope"], env=env, text=True,
                             capture_output=True, timeout=60, check=False)
    assert refused.returncode == 1
    assert "Required plugin nope is not installed" in refused.stderr
    assert "take effect when the server restarts" in _cli(env, "plugin", "enable", "probe")
    table = _cli(env, "plugin", "list")
    assert re.search(r"^probe\s+yes\s+yes\s+1\.0\s", table, re.MULTILINE), table


def _fuse_write(env: dict[str, str], tmp_path: Path, token: str) -> None:
    """Write a file through a real read-write mount (its own process, which
    loads the enabled plugin) and stop the mount: the close commits it."""
    point = tmp_path / "mnt"
    point.mkdir()
    log_path = tmp_path / "mount.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*JOIST, "mount", str(point), "--user", "admin", "--rw"],
                                env={**env, "JOIST_TOKEN": token}, stdout=log,
                                stderr=subprocess.STDOUT)
    mount = MountProc(point, proc, log_path)
    try:
        mount.wait_mounted()
        with open(point / "user/admin/Public/fuse.txt", "wb") as f:
            f.write(b"fused")
        assert mount.terminate() == 0, mount.log()
    finally:
        mount.stop()
