"""Kill the server at each named fault point of each write path, restart it on
the same data directory, and require: nothing partial is visible, the
interrupted work completes on retry or can be cancelled, `joist check
--repair` (the real CLI) leaves `joist check` with nothing to report and no
temporary bytes behind, and every file reads back byte-identical.

The server is a `joist serve` subprocess with ``JOIST_FAULT_POINTS`` armed
(core/faults.py): it SIGKILLs itself at the point, as a crash would. Each
case runs on its own SQLite data directory: the crash is of a process, so
the MongoDB engine's stand-in (process memory) cannot take part.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from joist.admin.bootstrap import build_app
from joist.core import faults
from joist.core.acl import Principal
from tests.conftest import make_settings
from tests.faults.killable import Rest, Server, cli_env, run_cli, serve
from tests.world import upload_bytes

PASSWORD = "alice-password-1"
MiB = 1 << 20


def _content(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


A, B = _content(1, 300 * 1024), _content(2, 200 * 1024)
NEW = _content(3, 3 * MiB)  # > one 1 MiB block: mid-write points fire inside it
Key = tuple[str, str]  # (item name, file name) under alice/Public


@dataclass
class Site:
    env: dict[str, str]
    data: Path
    folder_id: str
    files: dict[str, str]      # baseline file name -> file id
    copies_item: str           # an empty item copies go to
    token: str | None = None

    @property
    def temp_dir(self) -> Path:
        return self.data / "assetstore" / "temp"


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """A data directory holding alice (admin) and, in her Public folder:
    a1.bin and a2.bin sharing one blob (A), b.bin (B) and an empty item."""
    settings = make_settings(tmp_path / "data")
    with build_app(settings, env={}) as app:
        svc = app.services
        user = svc.users.create(Principal.anonymous(), login="alice",
                                email="alice@example.org", first_name="A", last_name="L",
                                password=PASSWORD, admin=True, check_policy=False)
        alice = Principal.from_user(user)
        public = app.store.folders.find_one({"parentId": user["_id"], "name": "Public"})
        assert public is not None
        files = {name: str(upload_bytes(app, alice, "folder", public, name, data)["_id"])
                 for name, data in (("a1.bin", A), ("a2.bin", A), ("b.bin", B))}
        copies = svc.items.create(alice, public, "copies")
    assert Path(settings.assetstore_root) == tmp_path / "data" / "assetstore"
    return Site(cli_env(tmp_path / "data", tmp_path / "home"), tmp_path / "data",
                str(public["_id"]), files, str(copies["_id"]))


BASELINE: dict[Key, bytes] = {("a1.bin", "a1.bin"): A, ("a2.bin", "a2.bin"): A,
                              ("b.bin", "b.bin"): B}


def contents(rest: Rest, site: Site) -> dict[Key, bytes]:
    """Every file under alice/Public, read back whole."""
    out: dict[Key, bytes] = {}
    for item in rest.ok("GET", "item", params={"folderId": site.folder_id, "limit": 0}):
        for file in rest.ok("GET", f"item/{item['_id']}/files", params={"limit": 0}):
            out[(item["name"], file["name"])] = rest.download(file["_id"])
    return out


@dataclass(frozen=True)
class Case:
    point: str
    path: str      # the write path driven into the point
    resolve: str   # what the test does after the restart

    def __str__(self) -> str:
        return f"{self.path}-{self.point}-{self.resolve}"


CASES = [
    *(Case(p, "rest-upload", "retry") for p in (
        "upload.chunk.mid_write", "upload.chunk.after_write",
        "upload.finalize.before_rename", "upload.finalize.after_rename",
        "upload.finalize.after_refcount", "upload.finalize.after_record")),
    # the same, for an upload committed unhashed (a pending blob)
    *(Case(p, "rest-upload", "retry-deferred") for p in (
        "upload.finalize.after_rename", "upload.finalize.after_refcount")),
    Case("upload.finalize.after_rename", "rest-upload", "cancel"),
    Case("upload.finalize.after_rename", "rest-upload", "check"),
    Case("upload.chunk.mid_write", "rest-upload", "system-uploads"),
    Case("upload.replace.after_update", "rest-replace", "retry"),
    *(Case(p, "dav-put", "reput") for p in (
        "upload.chunk.mid_write", "upload.stream.after_append", "upload.stream.at_finish")),
    *(Case(p, "dav-overwrite", "reput") for p in (
        "upload.finalize.after_rename", "upload.finalize.after_refcount")),
    Case("file.copy.after_reference", "copy", "retry"),
    Case("file.delete.after_record", "delete", "none"),
    # a large upload committed unhashed; its background hand-over dies
    *(Case(p, "handover", "restart") for p in (
        "blob.handover.after_link", "blob.handover.after_count",
        "blob.handover.after_record")),
]
# new content (linked to its address) or A again (deduplicated onto a1/a2's blob)
HANDOVER_DATA = {"blob.handover.after_link": NEW, "blob.handover.after_count": A,
                 "blob.handover.after_record": NEW}
DEFER_HASH = str(256 * 1024)  # below A's and NEW's sizes: both uploads are deferred
TARGET: dict[str, Key] = {"rest-upload": ("new.bin", "new.bin"),
                          "rest-replace": ("b.bin", "b.bin"),
                          "dav-put": ("new.bin", "new.bin"),
                          "dav-overwrite": ("a1.bin", "a1.bin"),
                          "copy": ("copies", "a1.bin"),
                          "handover": ("new.bin", "new.bin")}


def test_every_fault_point_has_a_case() -> None:
    assert {c.point for c in CASES} == set(faults.POINTS)


def _dav_url(server: Server, name: str) -> str:
    return f"{server.dav}/user/alice/Public/{name}"


def _doomed(call: Any) -> None:
    """A request the server dies in the middle of: no answer comes."""
    with pytest.raises(requests.RequestException):
        call()


def _crash(case: Case, server: Server, rest: Rest, site: Site) -> str | None:
    """Drive ``case.path`` into the armed point; returns the upload id, if any."""
    if case.path in ("rest-upload", "rest-replace"):
        if case.path == "rest-upload":
            upload = rest.ok("POST", "file", params={
                "parentType": "folder", "parentId": site.folder_id, "name": "new.bin",
                "size": len(NEW)})
        else:
            upload = rest.ok("PUT", f"file/{site.files['b.bin']}/contents",
                             params={"size": len(NEW)})
        _doomed(lambda: rest.call("POST", "file/chunk", data=NEW, params={
            "uploadId": upload["_id"], "offset": 0}))
        return str(upload["_id"])
    if case.path in ("dav-put", "dav-overwrite"):
        name = TARGET[case.path][1]
        _doomed(lambda: requests.put(_dav_url(server, name), data=NEW,
                                     auth=("alice", PASSWORD), timeout=60))
    elif case.path == "copy":
        _doomed(lambda: rest.call("POST", f"file/{site.files['a1.bin']}/copy",
                                  params={"itemId": site.copies_item}))
    elif case.path == "delete":
        _doomed(lambda: rest.call("DELETE", f"file/{site.files['a1.bin']}"))
    elif case.path == "handover":
        # committed at once; the hand-over that follows may kill the server
        # before or after the answer is sent
        with suppress(requests.RequestException):
            rest.call("POST", "file", data=HANDOVER_DATA[case.point], params={
                "parentType": "folder", "parentId": site.folder_id, "name": "new.bin",
                "size": len(HANDOVER_DATA[case.point])})
    return None


def _resolve(case: Case, server: Server, rest: Rest, site: Site,
             upload_id: str | None) -> dict[Key, bytes]:
    """Finish or abandon the interrupted work; returns what Public must hold."""
    done = dict(BASELINE)
    if case.path in ("rest-upload", "rest-replace"):
        assert upload_id is not None
        if case.resolve in ("retry", "retry-deferred"):
            offset = rest.ok("GET", "file/offset", params={"uploadId": upload_id})["offset"]
            assert 0 <= offset <= len(NEW)
            if offset < len(NEW):  # resume where the bytes stopped
                file = rest.ok("POST", "file/chunk", data=NEW[offset:],
                               params={"uploadId": upload_id, "offset": offset})
            else:
                file = rest.ok("POST", "file/completion", params={"uploadId": upload_id})
            assert file["size"] == len(NEW) and file["_modelType"] == "file"
            done[TARGET[case.path]] = NEW
        elif case.resolve == "cancel":
            rest.ok("DELETE", f"file/upload/{upload_id}")
        elif case.resolve == "check":
            # Nobody comes back for it: once it is old enough, check removes it.
            found = run_cli(site.env, "check")
            assert "abandoned-upload" not in found.stdout, found.stdout  # not old yet
            repaired = run_cli(site.env, "check", "--repair", "--abandoned-after", "0")
            assert "abandoned-upload" in repaired.stdout, repaired.stdout
            assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        elif case.resolve == "system-uploads":
            _admin_discard(rest, site, upload_id)
        if not case.resolve.startswith("retry"):
            gone = rest.call("GET", "file/offset", params={"uploadId": upload_id})
            assert gone.status_code == 400, gone.text
    elif case.path in ("dav-put", "dav-overwrite"):
        found = run_cli(site.env, "check")  # its process is gone: abandoned at once
        assert found.returncode == 1, found.stdout
        assert "abandoned-upload" in found.stdout and "its process is gone" in found.stdout
        if case.path == "dav-put":
            temp = MiB if case.point == "upload.chunk.mid_write" else len(NEW)
            assert f"{temp} bytes of temporary data" in found.stdout, found.stdout
        repaired = run_cli(site.env, "check", "--repair")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        assert list(site.temp_dir.iterdir()) == []
        again = requests.put(_dav_url(server, TARGET[case.path][1]), data=NEW,
                             auth=("alice", PASSWORD), timeout=60)
        assert again.status_code in (201, 204), again.text
        done[TARGET[case.path]] = NEW
    elif case.path == "copy":
        copied = rest.ok("POST", f"file/{site.files['a1.bin']}/copy",
                         params={"itemId": site.copies_item})
        assert copied["size"] == len(A)
        done[TARGET["copy"]] = A
    elif case.path == "delete":
        del done[("a1.bin", "a1.bin")]
    elif case.path == "handover":
        # the restarted server's sweep resumes the hand-over by itself; a count
        # left too high (after_record) waits for `check --repair` to finish it
        if case.point != "blob.handover.after_record":
            pending = site.data / "assetstore" / "pending"
            deadline = time.monotonic() + 30
            while [n for n in os.listdir(pending) if not n.startswith(".")]:
                assert time.monotonic() < deadline, os.listdir(pending)
                time.sleep(0.05)
        done[TARGET["handover"]] = HANDOVER_DATA[case.point]
    return done


def _admin_discard(rest: Rest, site: Site, upload_id: str) -> None:
    """GET system/uploads shows the upload and its temp bytes; `joist check`
    counts them as an upload's, not debris; DELETE system/uploads removes it."""
    listed = rest.ok("GET", "system/uploads", params={"parentId": site.folder_id})
    assert [(u["_id"], u["tempBytes"], u["abandoned"]) for u in listed] == \
        [(upload_id, MiB, False)]  # a REST upload may resume until it is old
    assert rest.ok("GET", "system/uploads", params={"minimumAge": 1}) == []
    found = run_cli(site.env, "check")
    assert found.returncode == 0, found.stdout
    assert f"1 upload(s) in progress hold {MiB} bytes" in found.stdout
    removed = rest.ok("DELETE", "system/uploads", params={"uploadId": upload_id})
    assert [u["_id"] for u in removed] == [upload_id]
    # Temp bytes no record owns (Girder's "untracked uploads"), two days old.
    stray = site.temp_dir / ("ab" * 12 + ".part")
    stray.write_bytes(b"7 bytes")
    old = time.time() - 2 * 86400
    os.utime(stray, (old, old))
    listed = rest.ok("GET", "system/uploads")
    assert [(u["uploadId"], u["size"], u["untracked"]) for u in listed] == \
        [("ab" * 12, 7, True)]
    assert rest.ok("DELETE", "system/uploads", params={"minimumAge": 3}) == []
    removed = rest.ok("DELETE", "system/uploads", params={"minimumAge": 1})
    assert [u["uploadId"] for u in removed] == ["ab" * 12] and not stray.exists()
    assert rest.ok("GET", "system/uploads") == []
    bad = rest.call("GET", "system/uploads", params={"minimumAge": -1})
    assert bad.status_code == 400 and "minimumAge" in bad.json()["message"]


def _assert_nothing_partial(case: Case, seen: dict[Key, bytes]) -> None:
    allowed = {key: {data} for key, data in BASELINE.items()}
    target = TARGET.get(case.path)
    if target is not None:
        allowed.setdefault(target, set()).add(
            A if case.path == "copy" else HANDOVER_DATA.get(case.point, NEW))
    for key, data in seen.items():
        assert key in allowed and data in allowed[key], (key, len(data))
    if case.path == "delete":
        assert ("a1.bin", "a1.bin") not in seen  # its record went first
    for key in BASELINE.keys() - seen.keys():
        assert case.path == "delete" and key == ("a1.bin", "a1.bin"), key


@pytest.fixture(params=CASES, ids=str)
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    yield request.param


def test_kill_at_point(case: Case, site: Site) -> None:
    if case.path == "handover" or case.resolve.endswith("-deferred"):
        site.env["JOIST_ASSETSTORE__DEFER_HASH_BYTES"] = DEFER_HASH
    with serve(site.env, (case.point,)) as server:
        rest = Rest(server, auth=("alice", PASSWORD))
        token = rest.token
        upload_id = _crash(case, server, rest, site)
        server.wait_killed_at(case.point)
        rest.close()
    if case.resolve.endswith("-deferred"):  # committed as a pending blob, unhashed
        pending = site.data / "assetstore" / "pending"
        assert len([n for n in os.listdir(pending) if not n.startswith(".")]) == 1
    with serve(site.env, graceful=False) as server:
        rest = Rest(server, token=token)
        try:
            _assert_nothing_partial(case, contents(rest, site))
            expected = _resolve(case, server, rest, site, upload_id)
            repaired = run_cli(site.env, "check", "--repair")
            assert repaired.returncode == 0, repaired.stdout + repaired.stderr
            final = run_cli(site.env, "check")
            assert final.returncode == 0, final.stdout + final.stderr
            assert final.stdout.strip() == "OK: the store and its assetstores are consistent."
            assert sorted(os.listdir(site.temp_dir)) == []
            pending = site.data / "assetstore" / "pending"
            if pending.exists():  # every pending blob handed over
                assert [n for n in os.listdir(pending) if not n.startswith(".")] == []
            assert contents(rest, site) == expected
        finally:
            rest.close()
