"""When is an unfinished upload abandoned? Never while a process writes it (it
holds the temp file's lock) or while the process that owns a streaming upload
lives; at once when that process is gone; after the idle time otherwise.
In process, on either engine (``JOIST_TEST_ENGINE=mongo``)."""

from __future__ import annotations

import fcntl
import io
import os
import subprocess
import sys

from joist.admin.bootstrap import App
from joist.core import processes
from joist.core.services.check import Checker
from tests.s3env import local_blobs_only
from tests.world import World, build_world


def _temp(app: App, upload: dict) -> str:
    return app.services.assetstores.adapter(upload["assetstoreId"]).temp_path(
        str(upload["_id"]))


def _abandoned(app: App, max_idle: float) -> list[str]:
    checker = Checker(app.services, max_idle=max_idle)
    return [str(f.ref) for f in checker.check() if f.kind == "abandoned-upload"]


@local_blobs_only  # the filesystem writer's lock; on S3 only age and owner tell
def test_a_locked_upload_is_never_abandoned(app: App) -> None:
    world: World = build_world(app)
    app.services.settings.set("core.upload_minimum_chunk_size", 0)
    alice, folder = world.principal("alice"), world.docs["public"]
    step = app.services.uploads.begin(alice, "folder", folder["_id"], "x.bin", 10)
    assert step.upload is not None
    upload_id = str(step.upload["_id"])
    app.services.uploads.write(alice, upload_id, 0, io.BytesIO(b"12345"), 5)
    fd = os.open(_temp(app, step.upload), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a writer in another process holds it
        assert _abandoned(app, max_idle=0) == []
        checker = Checker(app.services, max_idle=0)
        assert checker.repair(checker.check()) == []
        assert app.store.uploads.find_one({"_id": step.upload["_id"]}) is not None
    finally:
        os.close(fd)
    # Idle for a day it stays, until an idle time of 0 says otherwise.
    assert _abandoned(app, max_idle=86400) == []
    checker = Checker(app.services)
    assert [f.kind for f in checker.check()] == []
    assert [s.activity.temp_bytes for s in checker.in_progress] == [5]
    checker = Checker(app.services, max_idle=0)
    found = checker.check()
    assert [(f.kind, str(f.ref)) for f in found] == [("abandoned-upload", upload_id)]
    assert "5 bytes of temporary data" in found[0].detail
    assert checker.repair(found) == []
    assert app.store.uploads.find_one({"_id": step.upload["_id"]}) is None
    assert not os.path.exists(_temp(app, step.upload))
    assert Checker(app.services, max_idle=0).check() == []


def test_a_streaming_upload_lives_and_dies_with_its_process(app: App) -> None:
    world: World = build_world(app)
    writer = app.hierarchy.view(world.principal("alice")).open_write(
        "/user/alice/Public/stream.bin")
    writer.write(b"x" * 1000)
    upload = writer._upload
    assert upload["owner"] == processes.identity()
    assert _abandoned(app, max_idle=0) == []  # this process may still finish it
    # The same upload owned by a process that has exited: abandoned at once.
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_owner = {**processes.identity(), "pid": int(gone.stdout)}
    dead_owner["start"] = "0"  # a reused pid would not match either
    assert processes.is_alive(dead_owner) is False
    app.store.uploads.update_one({"_id": upload["_id"]},
                                          {"$set": {"owner": dead_owner}})
    assert _abandoned(app, max_idle=86400) == [str(upload["_id"])]
    # Another machine's (or container's) process cannot be asked: only age tells.
    for elsewhere in ({"host": "elsewhere"}, {"pidns": -1}):
        app.store.uploads.update_one(
            {"_id": upload["_id"]}, {"$set": {"owner": {**dead_owner, **elsewhere}}})
        assert _abandoned(app, max_idle=86400) == []
        assert _abandoned(app, max_idle=0) == [str(upload["_id"])]
    writer.abort()
    assert Checker(app.services, max_idle=0).check() == []
