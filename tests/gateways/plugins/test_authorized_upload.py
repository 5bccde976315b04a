"""Issue 16 item 7: the shipped ``authorized_upload`` plugin through requests
and girder-client: a WRITE user makes a single-use link, someone without an
account uploads one file through it with the REST protocol, and the token then
(or when expired, or when its creator loses WRITE) stops working."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import girder_client
import pytest
import requests

from joist.core import acl
from joist.core.acl import SYSTEM
from tests.gateways.http.restsite import RestSite, running_site
from tests.gateways.plugins.pluginsite import plugin_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestSite]:
    with plugin_site(tmp_path_factory.mktemp("authup") / "data",
                     ["authorized_upload"]) as rest:
        yield rest


def _authorize(site: RestSite, folder: str, **params: object) -> str:
    """The token of a new authorized upload link into world folder ``folder``."""
    reply = site.post("authorized_upload", "alice",
                      params={"folderId": site.id(folder), **params})
    assert reply.status_code == 200, reply.text
    url = reply.json()["url"]
    fragment = urlsplit(url).fragment
    route, folder_id, token = fragment.split("/")
    assert (route, folder_id) == ("authorized_upload", site.id(folder))
    assert url.startswith(site.server.url)
    return token


def _client(site: RestSite, token: str) -> girder_client.GirderClient:
    client = girder_client.GirderClient(apiUrl=site.api)
    client.setToken(token)
    return client


def _names(site: RestSite, folder: str) -> list[str]:
    items = site.get("item", "alice", params={"folderId": site.id(folder), "limit": 0})
    return sorted(i["name"] for i in items.json())


def test_create_needs_write_on_the_folder(site: RestSite) -> None:
    assert site.post("authorized_upload", "carol",  # READ on docs through her group
                     params={"folderId": site.id("docs")}).status_code == 403
    assert site.post("authorized_upload",
                     params={"folderId": site.id("data")}).status_code == 401
    assert site.post("authorized_upload", "alice", params={
        "folderId": site.id("data"), "duration": 0}).status_code == 400
    assert site.post("authorized_upload", "alice",
                     params={"folderId": "nope"}).status_code == 400
    token = _authorize(site, "data", duration=2)
    doc = site.app.services.auth.tokens.lookup(token)
    assert doc is not None
    lifetime = doc["expires"] - doc["created"]
    assert dt.timedelta(days=1.9) < lifetime < dt.timedelta(days=2.1)


def test_one_anonymous_upload_then_the_token_is_dead(site: RestSite) -> None:
    token = _authorize(site, "data")
    data = b"field notes\n" * 100
    client = _client(site, token)
    made = client.uploadFile(site.id("data"), io.BytesIO(data), "notes.txt", len(data),
                             parentType="folder")
    assert made["_modelType"] == "file" and made["size"] == len(data)
    assert "notes.txt" in _names(site, "data")
    got = site.get(f"file/{made['_id']}/download", "alice")
    assert got.content == data
    item = site.get(f"item/{made['itemId']}", "alice").json()
    assert item["creatorId"] == site.id("alice")  # made on the creator's authority
    # the link is used: a second upload, and the token itself, are refused
    second = site.post("file", params={"parentType": "folder", "parentId": site.id("data"),
                                       "name": "again.txt", "size": 3},
                       headers={"Girder-Token": token}, data=b"abc")
    assert second.status_code == 401
    assert site.app.services.auth.tokens.lookup(token) is None
    assert "again.txt" not in _names(site, "data")


def test_a_second_upload_with_the_same_token_is_refused(site: RestSite) -> None:
    token = _authorize(site, "data")
    headers = {"Girder-Token": token}
    start = site.post("file", params={"parentType": "folder", "parentId": site.id("data"),
                                      "name": "slow.bin", "size": 6}, headers=headers)
    assert start.status_code == 200, start.text
    upload_id = start.json()["_id"]
    other = site.post("file", params={"parentType": "folder", "parentId": site.id("data"),
                                      "name": "sneaky.bin", "size": 1}, headers=headers)
    assert other.status_code == 401
    # the started upload goes on: where to resume, then its one chunk
    assert site.get("file/offset", params={"uploadId": upload_id},
                    headers=headers).json() == {"offset": 0}
    done = site.post("file/chunk", params={"uploadId": upload_id, "offset": 0},
                     headers=headers, data=b"abcdef")
    assert done.status_code == 200 and done.json()["_modelType"] == "file"
    assert site.get("file/offset", params={"uploadId": upload_id},
                    headers=headers).status_code == 401
    assert "slow.bin" in _names(site, "data") and "sneaky.bin" not in _names(site, "data")


def test_a_refused_first_attempt_keeps_the_link_and_other_folders_are_refused(
        site: RestSite) -> None:
    token = _authorize(site, "data")
    headers = {"Girder-Token": token}
    elsewhere = site.post("file", params={"parentType": "folder", "parentId": site.id("public"),
                                          "name": "x.txt", "size": 1},
                          headers=headers, data=b"x")
    assert elsewhere.status_code == 401  # another folder alice may write: still refused
    link = site.post("file", params={"parentType": "folder", "parentId": site.id("data"),
                                     "name": "l", "linkUrl": "http://127.0.0.1/"},
                     headers=headers)
    assert link.status_code == 401
    bad = site.post("file", params={"parentType": "folder", "parentId": site.id("data"),
                                    "name": "", "size": 1}, headers=headers, data=b"x")
    assert bad.status_code == 400
    unnamed = site.post("file", params={"parentType": "folder", "parentId": site.id("data"),
                                        "size": "many"}, headers=headers)
    assert unnamed.status_code == 400
    ok = site.post("file", params={"parentType": "folder", "parentId": site.id("data"),
                                   "name": "after-a-mistake.txt", "size": 1},
                   headers=headers, data=b"x")
    assert ok.status_code == 200 and ok.json()["_modelType"] == "file"


def test_expired_token_is_refused(site: RestSite) -> None:
    token = _authorize(site, "data", duration=1)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    site.app.services.auth.tokens.update(token, {"$set": {"expires": past}})
    reply = site.post("file", params={"parentType": "folder", "parentId": site.id("data"),
                                      "name": "late.txt", "size": 1},
                      headers={"Girder-Token": token}, data=b"x")
    assert reply.status_code == 401
    assert "late.txt" not in _names(site, "data")


def test_the_token_stops_when_its_creator_loses_write(site: RestSite) -> None:
    svc = site.app.services
    admin_docs = site.id("docs")  # alice is ADMIN there (from the collection "shared")
    reply = site.post("authorized_upload", "alice", params={"folderId": admin_docs})
    assert reply.status_code == 200, reply.text
    token = urlsplit(reply.json()["url"]).fragment.split("/")[2]
    headers = {"Girder-Token": token}
    start = site.post("file", params={"parentType": "folder", "parentId": admin_docs,
                                      "name": "half.bin", "size": 4}, headers=headers)
    assert start.status_code == 200, start.text
    docs = svc.folders.get(SYSTEM, admin_docs)
    alice_id = site.world.users["alice"]["_id"]
    svc.access.grant(SYSTEM, "folder", docs, "user", alice_id, acl.READ)
    try:
        chunk = site.post("file/chunk", params={"uploadId": start.json()["_id"], "offset": 0},
                          headers=headers, data=b"abcd")
        assert chunk.status_code == 401
    finally:
        svc.access.grant(SYSTEM, "folder", svc.folders.get(SYSTEM, admin_docs), "user",
                         alice_id, acl.ADMIN)


def test_the_token_reads_and_lists_nothing(site: RestSite) -> None:
    token = _authorize(site, "data")
    headers = {"Girder-Token": token}
    for path, params in (("folder/" + site.id("data"), {}),
                         ("item", {"folderId": site.id("data")}),
                         ("folder", {"parentType": "folder", "parentId": site.id("private")}),
                         ("user/me", {}),
                         ("file/" + site.find_file("data", "a.txt")["_id"] + "/download", {})):
        reply = site.get(path, params=params, headers=headers)
        assert reply.status_code in (200, 401), (path, reply.status_code)
        if reply.status_code == 200:  # user/me answers null for anonymous
            assert reply.json() is None, path
    assert site.post("authorized_upload", params={"folderId": site.id("data")},
                     headers=headers).status_code == 401


def test_plugin_disabled_means_no_routes(tmp_path: Path) -> None:
    with running_site(tmp_path / "data") as plain:
        token = plain.token("alice")
        reply = requests.post(plain.url("authorized_upload"), timeout=10,
                              params={"folderId": plain.id("data")},
                              headers={"Girder-Token": token})
        assert reply.status_code == 404
