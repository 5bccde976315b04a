"""The real girder-client library (5.0.x) against our server: every call it
makes (contract section 2), with bytes and trees compared to the originals."""

from __future__ import annotations

import filecmp
import hashlib
import io
import os
from pathlib import Path

import girder_client
import pytest

from tests.gateways.http.restsite import PASSWORD, RestSite
from tests.world import A_TXT, README, X_BIN, Y_BIN


def _client(site: RestSite, login: str | None = "alice") -> girder_client.GirderClient:
    client = girder_client.GirderClient(apiUrl=site.api)
    if login:
        user = client.authenticate(login, PASSWORD)
        assert user["login"] == login
    return client


def test_session_version_and_description(ro_site: RestSite) -> None:
    client = _client(ro_site, None)
    assert client.getServerVersion()[0] == "5"
    assert "/item/{id}/files" in client.getServerAPIDescription()["paths"]
    with pytest.raises(girder_client.AuthenticationError):
        client.authenticate("alice", "wrong")
    with pytest.raises(girder_client.HttpError) as caught:
        client.getFolder(ro_site.id("private"))
    assert caught.value.status == 401
    client.authenticate("bobby", PASSWORD)
    with pytest.raises(girder_client.HttpError) as denied:
        client.getFolder(ro_site.id("private"))
    assert denied.value.status == 403


def test_api_key_login(site: RestSite) -> None:
    key = site.post("api_key", "alice", params={"name": "k"}).json()["key"]
    client = girder_client.GirderClient(apiUrl=site.api)
    user = client.authenticate(apiKey=key)
    assert user["_id"] == site.id("alice")
    assert client.get("user/me")["login"] == "alice"


def test_listing_and_lookup(ro_site: RestSite) -> None:
    client = _client(ro_site)
    alice = ro_site.id("alice")
    assert [f["name"] for f in client.listFolder(alice, "user")] == ["Private", "Public"]
    assert [f["name"] for f in client.listFolder(alice, "user", name="Public")] == ["Public"]
    data = ro_site.id("data")
    assert [i["name"] for i in client.listItem(data)] == ["a.txt", "multi"]
    assert [i["name"] for i in client.listItem(data, name="multi")] == ["multi"]
    assert [f["name"] for f in client.listFile(ro_site.id("multi"))] == ["x.bin", "y.bin"]
    assert [c["name"] for c in client.listCollection()] == ["shared"]
    assert len(list(client.listUser())) == 4
    assert client.getUser(alice)["login"] == "alice"
    assert client.getCollection(ro_site.id("shared"))["name"] == "shared"
    found = client.resourceLookup("/user/alice/Private/data")
    assert found["_id"] == data and found["_modelType"] == "folder"
    with pytest.raises(girder_client.HttpError) as missing:
        client.resourceLookup("/user/alice/Private/nothing")
    assert missing.value.status == 400


def test_paging_through_more_than_a_page(site: RestSite) -> None:
    client = _client(site)
    folder = client.createFolder(site.id("public"), "many")
    for n in range(120):
        client.createItem(folder["_id"], f"item {n:03d}")
    names = [i["name"] for i in client.listItem(folder["_id"])]
    assert names == [f"item {n:03d}" for n in range(120)]


def test_create_reuse_and_metadata(site: RestSite) -> None:
    client = _client(site)
    public = site.id("public")
    folder = client.createFolder(public, "made", description="d", metadata={"a": 1})
    again = client.createFolder(public, "made", reuseExisting=True, metadata={"b": 2})
    assert again["_id"] == folder["_id"] and again["meta"] == {"a": 1, "b": 2}
    with pytest.raises(girder_client.HttpError):
        client.createFolder(public, "made")
    item = client.createItem(folder["_id"], "thing", metadata={"k": "v"})
    assert client.createItem(folder["_id"], "thing")["name"] == "thing (1)"
    assert client.loadOrCreateItem("thing", folder["_id"])["_id"] == item["_id"]
    updated = client.addMetadataToItem(item["_id"], {"k": None, "n": [1, 2]})
    assert updated["meta"] == {"n": [1, 2]}
    assert client.addMetadataToFolder(folder["_id"], {"f": True})["meta"]["f"] is True
    assert client.addMetadataToCollection(site.id("shared"), {"c": "x"})["meta"] == \
        {"c": "x"}
    assert client.getItem(item["_id"])["meta"] == {"n": [1, 2]}
    with pytest.raises(girder_client.HttpError) as denied:
        client.setResourceTimestamp(item["_id"], "item", created="2020-01-01T00:00:00Z")
    assert denied.value.status == 403  # administrators only
    stamped = _client(site, "admin").setResourceTimestamp(
        item["_id"], "item", created="2020-01-01T00:00:00Z")
    assert stamped["created"] == "2020-01-01T00:00:00+00:00"


def test_upload_paths_and_downloads(site: RestSite, tmp_path: Path) -> None:
    client = _client(site)
    public = site.id("public")
    small = os.urandom(100_000)
    one_shot = client.uploadStreamToFolder(public, io.BytesIO(small), "small.bin", len(small))
    assert one_shot["_modelType"] == "file" and one_shot["size"] == len(small)
    empty = client.uploadStreamToFolder(public, io.BytesIO(b""), "empty.bin", 0)
    assert empty["size"] == 0
    # the chunked path, with chunks above the server's 5 MiB minimum
    client.MAX_CHUNK_SIZE = 6 << 20
    big = os.urandom(13 << 20)
    chunked = client.uploadStreamToFolder(public, io.BytesIO(big), "big.bin", len(big))
    assert chunked["size"] == len(big)
    local = tmp_path / "big.bin"
    client.downloadFile(chunked["_id"], str(local))
    assert hashlib.sha256(local.read_bytes()).digest() == hashlib.sha256(big).digest()
    source = tmp_path / "source.txt"
    source.write_bytes(b"first version")
    item = client.createItem(public, "doc")
    first = client.uploadFileToItem(item["_id"], str(source))
    assert first["name"] == "source.txt"
    assert client.uploadFileToItem(item["_id"], str(source)) is None  # same name and size
    source.write_bytes(b"second, longer version")
    replaced = client.uploadFileToItem(item["_id"], str(source))
    assert replaced["_id"] == first["_id"] and replaced["size"] == len(b"second, longer version")
    assert client.isFileCurrent(item["_id"], "source.txt", str(source))[1] is True
    contents = client.uploadFileContents(first["_id"], io.BytesIO(b"third"), 5)
    assert contents["size"] == 5
    assert b"".join(client.downloadFileAsIterator(first["_id"])) == b"third"
    assert site.check() == []


def test_download_item_folder_and_resource(ro_site: RestSite, tmp_path: Path) -> None:
    client = _client(ro_site)
    a_item = ro_site.find_file("data", "a.txt")["itemId"]
    client.downloadItem(a_item, str(tmp_path))
    assert (tmp_path / "a.txt").read_bytes() == A_TXT  # one file named like the item
    client.downloadItem(ro_site.id("multi"), str(tmp_path))
    assert (tmp_path / "multi" / "x.bin").read_bytes() == X_BIN
    assert (tmp_path / "multi" / "y.bin").read_bytes() == Y_BIN
    tree = tmp_path / "tree"
    client.downloadFolderRecursive("/user/alice/Private", str(tree))
    assert (tree / "data" / "a.txt").read_bytes() == A_TXT
    assert (tree / "data" / "deep" / "d1" / "d2" / "d3" / "leaf.txt").read_bytes() == b"leaf\n"
    assert (tree / "data" / "odd_name").is_dir()  # "/" in a name is sanitised locally
    user_tree = tmp_path / "user"
    client.downloadResource(ro_site.id("alice"), str(user_tree), "user")
    assert (user_tree / "Public" / "readme.txt").read_bytes() == README
    assert filecmp.dircmp(user_tree / "Private", tree).diff_files == []


def test_access_lists_and_inheritance(site: RestSite) -> None:
    client = _client(site)
    private = site.id("private")
    access = client.getFolderAccess(private)
    access["users"].append({"id": site.id("bobby"), "level": 1, "login": "bobby"})
    client.setFolderAccess(private, access, public=False)
    client.inheritAccessControlRecursive(private)
    deep = client.resourceLookup("/user/alice/Private/data/deep/d1/d2/d3")
    inherited = client.getFolderAccess(deep["_id"])
    assert {u["login"]: u["level"] for u in inherited["users"]} == {"alice": 2, "bobby": 1}
    bobby = _client(site, "bobby")
    assert bobby.getFolder(deep["_id"])["name"] == "d3"
    client.inheritAccessControlRecursive(private, public=True)
    anonymous = _client(site, None)
    assert anonymous.getFolder(deep["_id"])["public"] is True
