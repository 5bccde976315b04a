"""Issue 16 item 6: the shipped ``user_quota`` plugin on every gateway: the
REST quota routes (requests), a girder-client upload refused before its bytes,
a WebDAV PUT answered 507 and the quota properties, a real FUSE mount's write
failing with ENOSPC and its ``statfs``; and nothing enforced when disabled."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import girder_client
import pytest
import requests

from tests.conftest import ENGINE
from tests.gateways.fuse.fuse_harness import MountProc, cli_env, fuse_available
from tests.gateways.http.restsite import PASSWORD, RestSite, running_site
from tests.gateways.plugins.pluginsite import plugin_site
from tests.gateways.sftp.sftpfs import CMD, RawSftp, connect

QUOTA_ROOM = 1000  # bytes left under each quota the tests set
PROPFIND_QUOTA = (b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop>'
                  b"<d:quota-available-bytes/><d:quota-used-bytes/></d:prop></d:propfind>")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestSite]:
    with plugin_site(tmp_path_factory.mktemp("quota") / "data", ["user_quota"],
                     **{"webdav.enabled": True}) as rest:
        yield rest


def _quota(site: RestSite, model: str, name: str, login: str = "admin") -> dict[str, Any]:
    reply = site.get(f"{model}/{site.id(name)}/quota", login)
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def _set_quota(site: RestSite, model: str, name: str, policy: dict[str, Any]) -> dict[str, Any]:
    reply = site.put(f"{model}/{site.id(name)}/quota", "admin",
                     data={"policy": json.dumps(policy)})
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def _room(site: RestSite, model: str, name: str, room: int = QUOTA_ROOM) -> int:
    """Set a quota leaving ``room`` bytes; returns the quota."""
    quota = _quota(site, model, name)["used"] + room
    _set_quota(site, model, name, {"fileSizeQuota": quota, "useQuotaDefault": False})
    return int(quota)


def _dav(site: RestSite, method: str, path: str, login: str = "alice",
         **kw: Any) -> requests.Response:
    return requests.request(method, f"{site.server.url}/dav/{path}", auth=(login, PASSWORD),
                            timeout=30, **kw)


def test_quota_routes_policy_fields_defaults_and_access(site: RestSite) -> None:
    got = _quota(site, "user", "alice", "alice")  # the user may read their own
    assert got["used"] > 0  # the world's files
    unset = _quota(site, "user", "admin")  # no test sets one on admin
    assert unset["quota"]["_currentFileSizeQuota"] is None and unset["left"] is None
    assert site.get(f"user/{site.id('alice')}/quota", "bobby").status_code == 403
    assert site.put(f"user/{site.id('alice')}/quota", "alice",
                    data={"policy": json.dumps({"fileSizeQuota": 1})}).status_code == 403
    for bad in ({"fileSizeQuota": -1}, {"fileSizeQuota": "lots"}, {"nope": 1},
                {"useQuotaDefault": "maybe"}, {"preferredAssetstore": "f" * 24}, [1]):
        refused = site.put(f"user/{site.id('alice')}/quota", "admin",
                           data={"policy": json.dumps(bad)})
        assert refused.status_code == 400, (bad, refused.text)
    shown = _set_quota(site, "user", "bobby", {"fileSizeQuota": 5000, "useQuotaDefault": False,
                                               "fallbackAssetstore": "none"})
    assert shown["quota"]["fileSizeQuota"] == 5000
    assert shown["quota"]["fallbackAssetstore"] == "none"
    assert shown["quota"]["_currentFileSizeQuota"] == 5000
    assert shown["left"] == 5000 - shown["used"]
    # the site default applies while useQuotaDefault is on (Girder's default)
    reply = site.put("system/setting", "admin", data={
        "key": "user_quota.default_collection_quota", "value": "123456"})
    assert reply.status_code == 200, reply.text
    try:
        secret = _quota(site, "collection", "secret")
        assert secret["quota"]["_currentFileSizeQuota"] == 123456
        assert secret["left"] == 123456 - secret["used"]
    finally:
        site.put("system/setting", "admin", data={
            "key": "user_quota.default_collection_quota", "value": ""})
    assert _quota(site, "collection", "secret")["quota"]["_currentFileSizeQuota"] is None
    assert site.get(f"collection/{site.id('secret')}/quota", "alice").status_code in (403, 400)


def test_girder_client_upload_refused_before_its_bytes(site: RestSite, tmp_path: Path) -> None:
    _room(site, "user", "bobby")
    gc = girder_client.GirderClient(apiUrl=site.api)
    gc.authenticate("bobby", PASSWORD)
    private = gc.resourceLookup("/user/bobby/Private")["_id"]
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (QUOTA_ROOM + 1))
    with pytest.raises(girder_client.HttpError) as refused:
        gc.uploadFileToFolder(private, str(big))
    assert refused.value.status == 400
    assert "Upload would exceed file storage quota" in refused.value.responseText
    assert list(gc.listItem(private)) == []  # no item, no file
    assert site.app.services.uploads.list() == []  # no upload record, no temp bytes
    fits = tmp_path / "fits.bin"
    fits.write_bytes(b"y" * 600)
    gc.uploadFileToFolder(private, str(fits))
    assert _quota(site, "user", "bobby")["left"] == QUOTA_ROOM - 600
    # replacing counts the difference: 600 -> 1000 needs the 400 left, 1001 one more
    file = next(gc.listFile(next(gc.listItem(private))["_id"]))
    grown = b"z" * QUOTA_ROOM
    assert gc.uploadFileContents(file["_id"], _Bytes(grown), len(grown))["size"] == QUOTA_ROOM
    with pytest.raises(girder_client.HttpError):
        gc.uploadFileContents(file["_id"], _Bytes(grown + b"!"), len(grown) + 1)
    assert _quota(site, "user", "bobby")["left"] == 0
    assert site.check() == []


def test_uploads_side_by_side_are_checked_again_at_finalize(site: RestSite) -> None:
    _room(site, "user", "carol")
    private = site.get("folder", "carol", params={
        "parentType": "user", "parentId": site.id("carol"), "name": "Private"}).json()[0]
    started = []
    for name in ("one.bin", "two.bin"):  # each fits alone, not both
        reply = site.post("file", "carol", params={
            "parentType": "folder", "parentId": private["_id"], "name": name, "size": 600})
        assert reply.status_code == 200, reply.text
        started.append(reply.json()["_id"])
    first = site.post("file/chunk", "carol", params={"uploadId": started[0], "offset": 0},
                      data=b"1" * 600)
    assert first.status_code == 200, first.text
    second = site.post("file/chunk", "carol", params={"uploadId": started[1], "offset": 0},
                       data=b"2" * 600)
    assert second.status_code == 400, second.text
    assert "Upload exceeded file storage quota" in second.json()["message"]
    assert site.app.services.uploads.list() == []  # the refused upload is discarded
    assert _quota(site, "user", "carol")["left"] == QUOTA_ROOM - 600
    assert site.check() == []


class _Bytes:
    """A file-like over bytes (girder-client reads it in chunks)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.pos + size
        out, self.pos = self.data[self.pos:end], min(end, len(self.data))
        return out


def test_webdav_put_gets_507_and_quota_properties_show_what_is_left(site: RestSite) -> None:
    quota = _room(site, "collection", "shared")
    shown = _dav(site, "PROPFIND", "collection/shared/", headers={"Depth": "0"},
                 data=PROPFIND_QUOTA)
    assert shown.status_code == 207, shown.text
    props = ElementTree.fromstring(shown.content)
    assert props.findtext(".//{DAV:}quota-available-bytes") == str(QUOTA_ROOM), shown.text
    assert props.findtext(".//{DAV:}quota-used-bytes") == str(quota - QUOTA_ROOM), shown.text
    over = _dav(site, "PUT", "collection/shared/docs/big.bin", data=b"b" * (QUOTA_ROOM + 1))
    assert over.status_code == 507, over.text
    assert _dav(site, "GET", "collection/shared/docs/big.bin").status_code == 404
    fits = _dav(site, "PUT", "collection/shared/docs/fits.bin", data=b"f" * 700)
    assert fits.status_code in (201, 204), fits.text
    assert _quota(site, "collection", "shared")["left"] == QUOTA_ROOM - 700
    # overwriting counts the difference: 700 -> 1000 fits exactly
    again = _dav(site, "PUT", "collection/shared/docs/fits.bin", data=b"g" * QUOTA_ROOM)
    assert again.status_code in (201, 204), again.text
    chunked = _dav(site, "PUT", "collection/shared/docs/streamed.bin",
                   data=iter([b"s" * 10]))  # no Content-Length: checked as it arrives
    assert chunked.status_code == 507, chunked.text
    assert site.app.services.uploads.list() == []


def test_sftp_statvfs_shows_what_is_left(site: RestSite) -> None:
    _room(site, "collection", "shared", 3 * 4096 + 5)
    assert site.server.sftp is not None
    transport = connect(site.server.sftp.address, "alice", PASSWORD)
    try:
        reply = RawSftp(transport).call("extended", "statvfs@openssh.com", "/collection/shared")
        assert reply.kind == CMD["extended_reply"]
        bsize, frsize, _blocks, bfree, bavail = (reply.u64() for _ in range(5))
        assert frsize == 4096 and bfree == bavail == 3, (bsize, bfree, bavail)
    finally:
        transport.close()


@pytest.mark.skipif(not fuse_available(), reason="FUSE is not available here")
@pytest.mark.skipif(ENGINE == "mongo", reason="the mount process needs the store on disk")
def test_fuse_write_gets_enospc_and_statfs_shows_what_is_left(
        site: RestSite, tmp_path: Path) -> None:
    _room(site, "user", "alice")
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
    try:
        mount.wait_mounted()
        fs = os.statvfs(point / "user/alice/Public")
        assert fs.f_bavail * fs.f_frsize == QUOTA_ROOM // fs.f_frsize * fs.f_frsize
        assert fs.f_blocks * fs.f_frsize <= _quota(site, "user", "alice")["quota"][
            "_currentFileSizeQuota"]
        with pytest.raises(OSError) as full, \
                open(point / "user/alice/Public/big.bin", "wb") as f:
            f.write(b"q" * (QUOTA_ROOM + 1))  # refused at the write or at the close
        assert full.value.errno == errno.ENOSPC, full.value
        assert not (point / "user/alice/Public/big.bin").exists()
        with open(point / "user/alice/Public/small.bin", "wb") as f:
            f.write(b"s" * 300)
        assert _quota(site, "user", "alice")["left"] == QUOTA_ROOM - 300
    finally:
        mount.stop()


def test_disabled_plugin_enforces_nothing(tmp_path: Path) -> None:
    with running_site(tmp_path / "data") as site:
        assert site.get(f"user/{site.id('bobby')}/quota", "admin").status_code in (400, 404)
        # even a quota left on the record by an earlier run is not enforced
        site.app.services.tree.store.users.update_one(
            {"_id": site.world.users["bobby"]["_id"]},
            {"$set": {"quota": {"fileSizeQuota": 10, "useQuotaDefault": False}}})
        folder = site.get("folder", "bobby", params={
            "parentType": "user", "parentId": site.id("bobby"), "name": "Private"}).json()[0]
        made = site.upload("bobby", folder["_id"], "big.bin", b"x" * 5000)
        assert made["size"] == 5000
