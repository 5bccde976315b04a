"""Mount records in the store (``core/services/mounts.py``): register, list,
unregister, stale records of killed processes, the Girder setting, and the
local mount path of a file."""

from __future__ import annotations

import datetime as _dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from joist.admin.bootstrap import App
from joist.core.acl import SYSTEM, Principal
from joist.core.errors import AccessDeniedError, AuthenticationError
from joist.core.services.mounts import STALE_AFTER_SECONDS, MountService
from tests.world import World, build_world


@pytest.fixture
def world(app: App) -> World:
    return build_world(app)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def test_register_list_unregister(world: World) -> None:
    mounts = world.app.services.mounts
    alice = world.principal("alice")
    record = mounts.register("/mnt/x", alice, read_only=True)
    listed = mounts.records(SYSTEM)
    assert [(m["path"], m["pid"], m["principal"]["login"], m["stale"]) for m in listed] == \
        [("/mnt/x", os.getpid(), "alice", False)]
    assert listed[0]["host"] == mounts.host and listed[0]["readOnly"] is True
    setting = world.app.services.settings.get("core.girder_mount_information")
    assert setting["path"] == "/mnt/x"  # Girder's single setting follows the newest mount
    assert mounts.heartbeat(record["_id"])
    mounts.unregister(record["_id"])
    assert mounts.records(SYSTEM) == []
    assert world.app.services.settings.get("core.girder_mount_information") is None
    assert not mounts.heartbeat(record["_id"])


def test_only_site_admins_list_mounts(world: World) -> None:
    with pytest.raises(AccessDeniedError):
        world.app.services.mounts.records(world.principal("alice"))
    with pytest.raises(AuthenticationError):
        world.app.services.mounts.records(Principal.anonymous())


def test_a_killed_process_leaves_a_stale_record_that_is_cleaned(world: World) -> None:
    mounts = world.app.services.mounts
    live = mounts.register("/mnt/live", SYSTEM, read_only=True)
    dead = mounts.register("/mnt/dead", SYSTEM, read_only=True, pid=_dead_pid())
    assert not mounts.is_stale(live) and mounts.is_stale(dead)
    removed = mounts.clean_stale()
    assert [r["path"] for r in removed] == ["/mnt/dead"]
    assert [m["path"] for m in mounts.records(SYSTEM)] == ["/mnt/live"]
    # The Girder setting, which named the dead mount, falls back to the live one.
    assert world.app.services.settings.get("core.girder_mount_information")["path"] == \
        "/mnt/live"


def test_a_recycled_pid_is_not_taken_for_the_mount(world: World) -> None:
    mounts = world.app.services.mounts
    record = mounts.register("/mnt/x", SYSTEM, read_only=True)
    world.app.store.mounts.update_one({"_id": record["_id"]},
                                      {"$set": {"procStart": "1"}})  # another process
    assert mounts.is_stale(world.app.store.mounts.find_one({"_id": record["_id"]}))


def test_records_of_other_hosts_go_stale_by_heartbeat(app: App, world: World) -> None:
    now = [_dt.datetime.now(_dt.UTC)]
    svc = app.services
    other = MountService(app.store, svc.tree, svc.settings, host="elsewhere",
                         clock=lambda: now[0])
    here = MountService(app.store, svc.tree, svc.settings, clock=lambda: now[0])
    record = other.register("/mnt/far", SYSTEM, read_only=True, pid=1)
    assert not here.is_stale(record)  # its pid means nothing here: only time tells
    now[0] += _dt.timedelta(seconds=STALE_AFTER_SECONDS + 1)
    assert here.is_stale(app.store.mounts.find_one({"_id": record["_id"]}))
    assert [r["path"] for r in here.clean_stale()] == ["/mnt/far"]


def test_principal_of_a_record_is_rebuilt_from_the_store(world: World) -> None:
    mounts = world.app.services.mounts
    alice = mounts.register("/m/a", world.principal("alice"), read_only=True)
    admin = mounts.register("/m/s", SYSTEM, read_only=True)
    anon = mounts.register("/m/n", Principal.anonymous(), read_only=True)
    assert mounts.principal_of(alice).user_id == world.users["alice"]["_id"]
    assert mounts.principal_of(admin).is_site_admin
    assert mounts.principal_of(anon).is_anonymous
    world.app.store.users.update_one({"_id": world.users["alice"]["_id"]},
                                     {"$set": {"status": "disabled"}})
    assert mounts.principal_of(alice).is_anonymous


def _file(world: World, path: str) -> dict[str, Any]:
    node = world.app.hierarchy.view(SYSTEM).stat(path)
    file = world.app.store.files.find_one({"_id": node.file_id})
    assert file is not None
    return file


def test_local_path_of_a_file(world: World, tmp_path: Path) -> None:
    mounts = world.app.services.mounts
    view_for = world.app.hierarchy.view
    report = _file(world, "/collection/shared/docs/report.txt")
    hidden = _file(world, "/collection/secret/vault/hidden.txt")
    carol, bobby = world.principal("carol"), world.principal("bobby")
    assert mounts.local_path(carol, report["_id"], view_for) is None  # nothing mounted
    mounts.register(tmp_path / "bobs", bobby, read_only=True)
    mounts.register(tmp_path / "carols", carol, read_only=True)
    # Only a mount whose principal reads the file answers; unvalidated: no stat.
    assert mounts.local_path(carol, report["_id"], view_for, validate=False) == \
        str(tmp_path / "carols" / "collection/shared/docs/report.txt")
    # Validated: the path must exist with the file's size (no real mount here).
    assert mounts.local_path(carol, report["_id"], view_for) is None
    fake = tmp_path / "carols" / "collection/shared/docs/report.txt"
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"x" * report["size"])
    assert mounts.local_path(carol, report["_id"], view_for) == str(fake)
    # The asking principal must be able to read the file itself.
    with pytest.raises(AccessDeniedError):
        mounts.local_path(bobby, report["_id"], view_for)
    assert mounts.local_path(SYSTEM, hidden["_id"], view_for, validate=False) is None
