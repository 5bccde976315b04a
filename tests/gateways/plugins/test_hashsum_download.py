"""Issue 16 item 5: the shipped ``hashsum_download`` plugin through requests
and girder-client: ``sha512`` in file records, the key file, listing and
downloading by hash with Girder's access rules; and nothing when disabled."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import girder_client
import pytest

from tests.gateways.http.restsite import PASSWORD, RestSite, running_site
from tests.gateways.http.test_rest_s3 import make_s3
from tests.gateways.plugins.pluginsite import plugin_site
from tests.s3env import shared_moto
from tests.world import A_TXT, HIDDEN, README


def _sha(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestSite]:
    with plugin_site(tmp_path_factory.mktemp("hashsum") / "data", ["hashsum_download"]) as rest:
        # the same bytes as admin's hidden.txt, where bobby may read them
        rest.upload("alice", rest.id("public"), "copy-of-hidden.txt", HIDDEN)
        yield rest


def test_file_records_show_sha512_and_the_key_file(site: RestSite) -> None:
    a_txt = site.find_file("data", "a.txt", "alice")
    assert a_txt["sha512"] == _sha(A_TXT)
    key = site.get(f"file/{a_txt['_id']}/hashsum_file/SHA512", "alice")
    assert key.status_code == 200, key.text
    assert key.text == _sha(A_TXT) + "\n"
    assert key.headers["Content-Type"].startswith("text/plain")
    assert 'filename="a.txt.sha512"' in key.headers["Content-Disposition"]
    assert site.get(f"file/{a_txt['_id']}/hashsum_file/md5", "alice").status_code == 400
    assert site.get(f"file/{a_txt['_id']}/hashsum_file/sha512", "bobby").status_code == 403
    assert site.get(f"file/{a_txt['_id']}/hashsum_file/sha512").status_code in (401, 403)
    assert site.get("file/000000000000000000000000/hashsum_file/sha512",
                    "alice").status_code == 400


def test_download_by_hash_follows_read_access(site: RestSite) -> None:
    private = _sha(A_TXT)
    got = site.get(f"file/hashsum/sha512/{private.upper()}/download", "alice")
    assert got.status_code == 200 and got.content == A_TXT
    assert 'filename="a.txt"' in got.headers["Content-Disposition"]
    ranged = site.get(f"file/hashsum/sha512/{private}/download", "alice",
                      headers={"Range": "bytes=0-4"})
    assert ranged.status_code == 206 and ranged.content == A_TXT[:5]
    part = site.get(f"file/hashsum/sha512/{private}/download", "alice",
                    params={"offset": 6, "endByte": 10})
    assert part.content == A_TXT[6:10]
    # a browser's link: the girderToken cookie is enough (Girder's cookie=True routes)
    cookie = {"girderToken": site.token("alice")}
    assert site.get(f"file/hashsum/sha512/{private}/download",
                    cookies=cookie).content == A_TXT
    assert [f["name"] for f in site.get(f"file/hashsum/sha512/{private}",
                                        cookies=cookie).json()] == ["a.txt"]
    # someone who may not read it cannot tell it exists
    for login in ("bobby", None):
        denied = site.get(f"file/hashsum/sha512/{private}/download", login)
        assert denied.status_code == 404, denied.text
        assert site.get(f"file/hashsum/sha512/{private}", login).json() == []
    assert site.get(f"file/hashsum/sha512/{_sha(b'nothing')}/download").status_code == 404
    assert site.get(f"file/hashsum/md5/{private}/download", "alice").status_code == 400

    # two files with one hash: each caller gets the first one it may read
    hidden = _sha(HIDDEN)
    mine = site.get(f"file/hashsum/sha512/{hidden}", "admin").json()
    assert sorted(f["name"] for f in mine) == ["copy-of-hidden.txt", "hidden.txt"]
    theirs = site.get(f"file/hashsum/sha512/{hidden}", "bobby").json()
    assert [f["name"] for f in theirs] == ["copy-of-hidden.txt"]
    assert theirs[0]["sha512"] == hidden and "assetstoreId" not in theirs[0]
    got = site.get(f"file/hashsum/sha512/{hidden}/download", "bobby")
    assert got.status_code == 200 and got.content == HIDDEN
    assert 'filename="copy-of-hidden.txt"' in got.headers["Content-Disposition"]
    assert 'filename="hidden.txt"' in site.get(
        f"file/hashsum/sha512/{hidden}/download", "admin").headers["Content-Disposition"]


def test_girder_client_downloads_by_hash(site: RestSite, tmp_path: Path) -> None:
    client = girder_client.GirderClient(apiUrl=site.api)
    readme = site.find_file("public", "readme.txt", "alice")
    digest = client.getFile(readme["_id"])["sha512"]  # anonymous: the file is public
    assert digest == _sha(README)
    reply = client.sendRestRequest("GET", f"file/hashsum/sha512/{digest}/download",
                                   jsonResp=False)
    assert reply.content == README
    client.authenticate("alice", PASSWORD)
    a_txt = site.find_file("data", "a.txt", "alice")
    key = client.sendRestRequest("GET", f"file/{a_txt['_id']}/hashsum_file/sha512",
                                 jsonResp=False)
    assert key.text.strip() == _sha(A_TXT)
    assert client.get(f"file/hashsum/sha512/{_sha(A_TXT)}")[0]["_id"] == a_txt["_id"]
    target = tmp_path / "by-hash.txt"
    with open(target, "wb") as out:
        for chunk in client.sendRestRequest(
                "GET", f"file/hashsum/sha512/{_sha(A_TXT)}/download", jsonResp=False,
                stream=True).iter_content(4096):
            out.write(chunk)
    assert target.read_bytes() == A_TXT


def test_disabled_hashsum_download_is_absent(tmp_path: Path) -> None:
    with running_site(tmp_path / "data") as site:
        a_txt = site.find_file("data", "a.txt", "alice")
        assert "sha512" not in a_txt
        for path in (f"file/{a_txt['_id']}/hashsum_file/sha512",
                     f"file/hashsum/sha512/{_sha(A_TXT)}/download",
                     f"file/hashsum/sha512/{_sha(A_TXT)}"):
            reply = site.get(path, "alice")
            assert reply.status_code == 400, (path, reply.status_code)
            assert reply.json()["message"].startswith("No matching route")
        assert "/file/hashsum/{algo}/{hash}/download" not in site.get("describe").json()["paths"]


def test_imported_files_get_their_hash_on_request(site: RestSite) -> None:
    """An imported S3 object has no SHA-512 until ``POST file/:id/hashsum``;
    a re-import with other bytes forgets it."""
    store = make_s3(site, "s3-hashsum")
    s3 = shared_moto().client()
    s3.put_object(Bucket=store["bucket"], Key="ext/data.bin", Body=b"external v1")
    into = site.post("folder", "alice", params={"parentType": "folder", "name": "ext",
                                                "parentId": site.id("public")}).json()
    params = {"importPath": "ext", "destinationType": "folder", "destinationId": into["_id"]}
    assert site.post(f"assetstore/{store['_id']}/import", "admin",
                     params=params).status_code == 200
    item = site.get("item", "alice", params={"folderId": into["_id"]}).json()[0]
    file = site.get(f"item/{item['_id']}/files", "alice").json()[0]
    assert "sha512" not in file
    missing = site.get(f"file/{file['_id']}/hashsum_file/sha512", "alice")
    assert missing.status_code == 400 and "does not have the sha512" in missing.text
    assert site.post(f"file/{file['_id']}/hashsum", "bobby").status_code == 403
    done = site.post(f"file/{file['_id']}/hashsum", "alice")
    assert done.status_code == 200 and done.json() == {"sha512": _sha(b"external v1")}
    assert site.post(f"file/{file['_id']}/hashsum", "alice").json() is None  # nothing missing
    got = site.get(f"file/hashsum/sha512/{_sha(b'external v1')}/download", "bobby",
                   allow_redirects=True)
    assert got.status_code == 200 and got.content == b"external v1"
    s3.put_object(Bucket=store["bucket"], Key="ext/data.bin", Body=b"external, v2")
    assert site.post(f"assetstore/{store['_id']}/import", "admin",
                     params=params).json()["updated"] == 1
    assert "sha512" not in site.get(f"file/{file['_id']}", "alice").json()

    # Girder's auto-compute setting: an import's digest comes in the background
    assert site.put("system/setting", "admin", data={
        "key": "hashsum_download.auto_compute", "value": "maybe"}).status_code == 400
    assert site.put("system/setting", "admin", data={
        "key": "hashsum_download.auto_compute", "value": "true"}).status_code == 200
    s3.put_object(Bucket=store["bucket"], Key="ext/later.bin", Body=b"computed later")
    assert site.post(f"assetstore/{store['_id']}/import", "admin",
                     params=params).json()["files"] == 1
    later = site.get("item", "alice", params={"folderId": into["_id"],
                                              "name": "later.bin"}).json()[0]
    later_file = site.get(f"item/{later['_id']}/files", "alice").json()[0]

    def digest() -> str | None:
        return site.get(f"file/{later_file['_id']}", "alice").json().get("sha512")

    deadline = time.monotonic() + 20
    while digest() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the record, bounded by the deadline
    assert digest() == _sha(b"computed later")
