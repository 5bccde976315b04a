"""Issue 16 item 6, the rest: ``user_quota``'s ``preferredAssetstore`` and
``fallbackAssetstore`` decide where a user's or collection's uploads go, on
every write path: girder-client uploads and content replacements (REST),
WebDAV PUTs and writes through a real FUSE mount. The preferred one when
usable; the fallback one when the preferred is unavailable (its directory is
gone) or full; ``current`` means the current assetstore, ``none`` refuses the
upload (503, or 507 when full)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import girder_client
import pytest
import requests
from bson import ObjectId

from joist.core.assetstores.base import Capacity
from tests.conftest import ENGINE
from tests.gateways.fuse.fuse_harness import MountProc, cli_env, fuse_available
from tests.gateways.http.restsite import PASSWORD, RestSite
from tests.gateways.plugins.pluginsite import plugin_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestSite]:
    with plugin_site(tmp_path_factory.mktemp("routes") / "data", ["user_quota"],
                     **{"webdav.enabled": True}) as rest:
        yield rest


@pytest.fixture
def stores(site: RestSite, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Two more filesystem assetstores, removed (with their files) afterwards."""
    registry = site.app.assetstores
    made = {name: registry.create_filesystem(f"{name}-{tmp_path.name}", tmp_path / name)
            for name in ("preferred", "fallback")}
    yield made
    for doc in made.values():
        for file in site.app.store.files.find({"assetstoreId": doc["_id"]}):
            site.app.services.files.delete(site.world.principal("admin"), file)
        registry.delete(doc["_id"])


def _policy(site: RestSite, model: str, name: str, **policy: Any) -> None:
    reply = site.put(f"{model}/{site.id(name)}/quota", "admin",
                     data={"policy": json.dumps(policy)})
    assert reply.status_code == 200, reply.text


def _stored_in(site: RestSite, file_id: Any) -> ObjectId:
    """The assetstore of a file, as a site administrator sees it over REST."""
    reply = site.get(f"file/{file_id}", "admin")
    assert reply.status_code == 200, reply.text
    return ObjectId(reply.json()["assetstoreId"])


def _dav_put(site: RestSite, path: str, data: bytes, login: str = "alice") -> int:
    return requests.put(f"{site.server.url}/dav/{path}", data=data, auth=(login, PASSWORD),
                        timeout=30).status_code


def _dav_file(site: RestSite, name: str) -> ObjectId:
    file = site.app.store.files.find_one({"name": name})
    assert file is not None, name
    return _stored_in(site, file["_id"])


def _send(gc: girder_client.GirderClient, folder: str, name: str, data: bytes) -> Any:
    return gc.uploadFile(folder, io.BytesIO(data), name, len(data), parentType="folder")


def _client(site: RestSite, login: str = "alice") -> girder_client.GirderClient:
    gc = girder_client.GirderClient(apiUrl=site.api)
    gc.authenticate(login, PASSWORD)
    return gc


def test_uploads_go_to_the_preferred_then_the_fallback_assetstore(
        site: RestSite, stores: dict[str, Any]) -> None:
    preferred, fallback = stores["preferred"], stores["fallback"]
    current = site.app.assetstores.current()[0]["_id"]
    _policy(site, "user", "alice", preferredAssetstore=str(preferred["_id"]),
            fallbackAssetstore=str(fallback["_id"]))
    gc = _client(site)
    folder = gc.resourceLookup("/user/alice/Private")["_id"]
    try:
        sent = _send(gc, folder, "pref.bin", b"p" * 300)
        assert _stored_in(site, sent["_id"]) == preferred["_id"]
        replaced = gc.uploadFileContents(sent["_id"], io.BytesIO(b"q" * 40), 40)
        assert _stored_in(site, replaced["_id"]) == preferred["_id"]
        assert _dav_put(site, "user/alice/Private/dav-pref.bin", b"d" * 100) in (201, 204)
        assert _dav_file(site, "dav-pref.bin") == preferred["_id"]
        assert os.listdir(preferred["root"])  # the bytes really are there

        # The preferred assetstore's disk goes away: the fallback takes the uploads.
        moved = preferred["root"] + ".away"
        os.rename(preferred["root"], moved)
        try:
            sent = _send(gc, folder, "fall.bin", b"f" * 300)
            assert _stored_in(site, sent["_id"]) == fallback["_id"]
            assert _dav_put(site, "user/alice/Private/dav-fall.bin", b"e" * 100) in (201, 204)
            assert _dav_file(site, "dav-fall.bin") == fallback["_id"]
            # "current": the current assetstore; "none": refused, nothing left behind
            _policy(site, "user", "alice", fallbackAssetstore="current")
            sent = _send(gc, folder, "cur.bin", b"c" * 30)
            assert _stored_in(site, sent["_id"]) == current
            _policy(site, "user", "alice", fallbackAssetstore="none")
            with pytest.raises(girder_client.HttpError) as refused:
                _send(gc, folder, "none.bin", b"n" * 30)
            assert refused.value.status == 503
            assert "Required assetstore is unavailable" in refused.value.responseText
            assert _dav_put(site, "user/alice/Private/dav-none.bin", b"n") == 503
            assert site.app.store.files.find_one({"name": {"$in": [
                "none.bin", "dav-none.bin"]}}) is None
            assert site.app.services.uploads.list() == []
        finally:
            os.rename(moved, preferred["root"])
        # Back again: the preferred one is used again.
        sent = _send(gc, folder, "back.bin", b"b" * 30)
        assert _stored_in(site, sent["_id"]) == preferred["_id"]
    finally:
        _policy(site, "user", "alice", preferredAssetstore="current",
                fallbackAssetstore="current")


def test_a_full_preferred_assetstore_and_a_collection_policy(
        site: RestSite, stores: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    preferred, fallback = stores["preferred"], stores["fallback"]
    adapter = site.app.assetstores.adapter(preferred["_id"])  # the server's own
    monkeypatch.setattr(adapter, "capacity", lambda: Capacity(total=1 << 30, free=500,
                                                              used=(1 << 30) - 500))
    _policy(site, "collection", "shared", preferredAssetstore=str(preferred["_id"]),
            fallbackAssetstore=str(fallback["_id"]))
    gc = _client(site)  # alice administers the collection "shared"
    docs = gc.resourceLookup("/collection/shared/docs")["_id"]
    try:
        small = _send(gc, docs, "small.bin", b"s" * 400)
        assert _stored_in(site, small["_id"]) == preferred["_id"]
        big = _send(gc, docs, "big.bin", b"b" * 600)  # does not fit
        assert _stored_in(site, big["_id"]) == fallback["_id"]
        assert _dav_put(site, "collection/shared/docs/streamed.bin", b"w" * 10) in (201, 204)
        assert _dav_file(site, "streamed.bin") == preferred["_id"]  # some room is left
        _policy(site, "collection", "shared", fallbackAssetstore="none")
        with pytest.raises(girder_client.HttpError) as refused:
            _send(gc, docs, "refused.bin", b"x" * 600)
        assert refused.value.status == 507  # the REST gateway words every 5xx itself
        monkeypatch.setattr(adapter, "capacity", lambda: Capacity(total=1 << 30, free=0,
                                                                  used=1 << 30))
        assert _dav_put(site, "collection/shared/docs/nowhere.bin", b"w") == 507
        assert site.app.services.uploads.list() == []
        # alice's own uploads follow her policy (none here), not the collection's
        private = gc.resourceLookup("/user/alice/Private")["_id"]
        mine = _send(gc, private, "mine.bin", b"m" * 10)
        assert _stored_in(site, mine["_id"]) == site.app.assetstores.current()[0]["_id"]
    finally:
        _policy(site, "collection", "shared", preferredAssetstore="current",
                fallbackAssetstore="current")


@pytest.mark.skipif(not fuse_available(), reason="FUSE is not available here")
@pytest.mark.skipif(ENGINE == "mongo", reason="the mount process needs the store on disk")
def test_fuse_writes_follow_the_policy(site: RestSite, stores: dict[str, Any],
                                       tmp_path: Path) -> None:
    preferred, fallback = stores["preferred"], stores["fallback"]
    _policy(site, "user", "alice", preferredAssetstore=str(preferred["_id"]),
            fallbackAssetstore=str(fallback["_id"]))
    token = str(site.app.services.auth.login_token(site.world.users["alice"])["_id"])
    point = tmp_path / "mnt"
    point.mkdir()
    log_path = tmp_path / "mount.log"
    env = cli_env(site.app.settings.data_path, tmp_path / "home", JOIST_TOKEN=token,
                  JOIST_SFTP__ENABLED="false")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "joist.admin.cli", "mount", str(point),
                                 "--user", "alice", "--rw"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    mount = MountProc(point, proc, log_path)
    moved = preferred["root"] + ".away"
    try:
        mount.wait_mounted()
        (point / "user/alice/Public/fuse-pref.bin").write_bytes(b"p" * 200)
        assert _dav_file(site, "fuse-pref.bin") == preferred["_id"]
        os.rename(preferred["root"], moved)
        (point / "user/alice/Public/fuse-fall.bin").write_bytes(b"f" * 200)
        assert _dav_file(site, "fuse-fall.bin") == fallback["_id"]
    finally:
        mount.stop()
        if os.path.exists(moved):
            os.rename(moved, preferred["root"])
        _policy(site, "user", "alice", preferredAssetstore="current",
                fallbackAssetstore="current")
