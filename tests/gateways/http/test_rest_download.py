"""Contract sections 2.6 (downloads) and 3.2 (zips): exact bytes, ranges,
validators and conditional requests, Content-Disposition, streamed archives."""

from __future__ import annotations

import io
import os
import tracemalloc
import zipfile
from urllib.parse import quote

import pytest

from tests import byteranges
from tests.gateways.http.restsite import RestSite
from tests.world import A_TXT, HIDDEN, LEAF, README, REPORT, X_BIN, Y_BIN


@pytest.fixture(scope="module")
def a_txt(ro_site: RestSite) -> str:
    return ro_site.find_file("data", "a.txt")["_id"]  # type: ignore[no-any-return]


def _get(site: RestSite, file_id: str, **kw: object):  # type: ignore[no-untyped-def]
    return site.get(f"file/{file_id}/download", "alice", **kw)


def test_full_download_headers(ro_site: RestSite, a_txt: str) -> None:
    reply = _get(ro_site, a_txt)
    assert reply.status_code == 200 and reply.content == A_TXT
    h = reply.headers
    assert h["Content-Length"] == str(len(A_TXT))
    assert h["Content-Type"] == "application/octet-stream"  # the file's mimeType
    assert h["Content-Disposition"] == 'attachment; filename="a.txt"'
    assert h["Accept-Ranges"] == "bytes" and "Content-Range" not in h
    assert h["ETag"].startswith('"') and h["Last-Modified"].endswith("GMT")
    inline = _get(ro_site, a_txt, params={"contentDisposition": "inline"})
    assert inline.headers["Content-Disposition"].startswith("inline;")
    assert _get(ro_site, a_txt, params={"contentDisposition": "bogus"}).status_code == 400


def test_head_sends_headers_only(ro_site: RestSite, a_txt: str) -> None:
    reply = ro_site.call("HEAD", f"file/{a_txt}/download", "alice")
    assert reply.status_code == 200 and reply.content == b""
    assert reply.headers["Content-Length"] == str(len(A_TXT))


@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=0-9", 0, 10), ("bytes=100-", 100, len(A_TXT)), ("bytes=-7", len(A_TXT) - 7,
                                                             len(A_TXT)),
    ("bytes=5-5", 5, 6), ("bytes=10-99999", 10, len(A_TXT)), ("bytes=3-4, 4-9", 3, 10),
    ("bytes=0-0", 0, 1), ("bytes=-99999", 0, len(A_TXT)), ("bytes=,5-6,", 5, 7)])
def test_range_requests(ro_site: RestSite, a_txt: str, header: str, start: int,
                        end: int) -> None:
    reply = _get(ro_site, a_txt, headers={"Range": header})
    assert reply.status_code == 206
    assert reply.content == A_TXT[start:end]
    assert reply.headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(A_TXT)}"
    assert reply.headers["Content-Length"] == str(end - start)


def test_several_ranges_are_multipart(ro_site: RestSite, a_txt: str) -> None:
    reply = _get(ro_site, a_txt, headers={"Range": "bytes=8-9, 3-4, -2"})
    assert reply.status_code == 206 and "Content-Range" not in reply.headers
    assert reply.headers["Content-Length"] == str(len(reply.content))
    size = len(A_TXT)
    assert byteranges.parts(reply.headers["Content-Type"], reply.content) == [
        (f"bytes 8-9/{size}", "application/octet-stream", A_TXT[8:10]),
        (f"bytes 3-4/{size}", "application/octet-stream", A_TXT[3:5]),
        (f"bytes {size - 2}-{size - 1}/{size}", "application/octet-stream", A_TXT[-2:])]


@pytest.mark.parametrize("header", ["bytes=9-3", "bytes=abc", "items=0-5", "bytes=x-",
                                    "bytes=5-2", "bytes=0x10-0x20", "bytes=-1-5", "bytes=",
                                    "bytes=1-2,x", "bytes 0-5"])
def test_invalid_ranges_are_ignored(ro_site: RestSite, a_txt: str, header: str) -> None:
    reply = _get(ro_site, a_txt, headers={"Range": header})
    assert reply.status_code == 200 and reply.content == A_TXT
    assert "Content-Range" not in reply.headers


@pytest.mark.parametrize("header", ["bytes=99999-", "bytes=-0", f"bytes={len(A_TXT)}-",
                                    "bytes=-0, 5000-6000"])
def test_unsatisfiable_range_is_416(ro_site: RestSite, a_txt: str, header: str) -> None:
    reply = _get(ro_site, a_txt, headers={"Range": header})
    assert reply.status_code == 416
    assert reply.headers["Content-Range"] == f"bytes */{len(A_TXT)}"


def test_offset_and_end_byte(ro_site: RestSite, a_txt: str) -> None:
    size = len(A_TXT)
    tail = _get(ro_site, a_txt, params={"offset": 1000})
    assert tail.status_code == 206 and tail.content == A_TXT[1000:]
    assert tail.headers["Content-Range"] == f"bytes 1000-{size - 1}/{size}"
    head = _get(ro_site, a_txt, params={"endByte": 11})
    assert head.status_code == 206 and head.content == A_TXT[:11]
    middle = _get(ro_site, a_txt, params={"offset": 5, "endByte": 15})
    assert middle.content == A_TXT[5:15]
    whole = _get(ro_site, a_txt, params={"offset": 0, "endByte": size + 50})
    assert whole.status_code == 200 and whole.content == A_TXT
    ranged = _get(ro_site, a_txt, params={"offset": 5}, headers={"Range": "bytes=1-2"})
    assert ranged.content == A_TXT[1:3]  # Range overrides offset/endByte
    assert _get(ro_site, a_txt, params={"offset": size + 1}).status_code == 416
    assert _get(ro_site, a_txt, params={"offset": 20, "endByte": 10}).status_code == 416
    assert _get(ro_site, a_txt, params={"offset": -1}).status_code == 400
    assert _get(ro_site, a_txt, params={"offset": "x"}).status_code == 400


def test_conditional_requests(ro_site: RestSite, a_txt: str) -> None:
    first = _get(ro_site, a_txt)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert _get(ro_site, a_txt, headers={"If-None-Match": etag}).status_code == 304
    assert _get(ro_site, a_txt, headers={"If-None-Match": f'"other", {etag}'}) \
        .status_code == 304
    assert _get(ro_site, a_txt, headers={"If-None-Match": '"other"'}).status_code == 200
    not_modified = _get(ro_site, a_txt, headers={"If-Modified-Since": modified})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert _get(ro_site, a_txt, headers={
        "If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 200
    fresh = _get(ro_site, a_txt, headers={"Range": "bytes=0-3", "If-Range": etag})
    assert fresh.status_code == 206 and fresh.content == A_TXT[:4]
    stale = _get(ro_site, a_txt, headers={"Range": "bytes=0-3", "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.content == A_TXT


def test_etag_changes_with_the_contents(site: RestSite) -> None:
    file = site.find_file("data", "a.txt")
    before = site.get(f"file/{file['_id']}/download", "alice").headers["ETag"]
    upload = site.put(f"file/{file['_id']}/contents", "alice", params={"size": 3}).json()
    site.post("file/chunk", "alice", params={"uploadId": upload["_id"], "offset": 0},
              data=b"new")
    after = site.get(f"file/{file['_id']}/download", "alice", headers={
        "If-None-Match": before})
    assert after.status_code == 200 and after.content == b"new"
    assert after.headers["ETag"] != before


@pytest.mark.parametrize("name", ["résumé.txt", "данные.txt", 'quote"d.txt', "日本.bin"])
def test_content_disposition_of_any_name(site: RestSite, name: str) -> None:
    doc = site.upload("alice", site.id("public"), name, b"x")
    reply = site.get(f"file/{doc['_id']}/download", "alice")
    value = reply.headers["Content-Disposition"]
    assert value.startswith('attachment; filename="')
    try:
        name.encode("latin-1")
    except UnicodeEncodeError:
        assert value.endswith(f"; filename*=UTF-8''{quote(name, safe='')}")
    else:
        assert "filename*" not in value
    assert reply.content == b"x"


def test_download_access(ro_site: RestSite, a_txt: str) -> None:
    assert ro_site.get(f"file/{a_txt}/download").status_code == 401
    assert ro_site.get(f"file/{a_txt}/download", "bobby").status_code == 403
    readme = ro_site.find_file("public", "readme.txt")
    assert ro_site.get(f"file/{readme['_id']}/download").content == README


def test_empty_file_download(site: RestSite) -> None:
    doc = site.upload("alice", site.id("public"), "empty", b"")
    reply = site.get(f"file/{doc['_id']}/download", "alice")
    assert reply.status_code == 200 and reply.content == b""
    assert reply.headers["Content-Length"] == "0"


# ---------------------------------------------------------------- zips

def _zip(reply) -> zipfile.ZipFile:  # type: ignore[no-untyped-def]
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(reply.content))
    assert archive.testzip() is None
    for info in archive.infolist():
        assert info.compress_type == zipfile.ZIP_STORED
        assert info.flag_bits & 0x08  # streamed: data descriptors
        assert (info.external_attr >> 16) & 0o777 == 0o644
    return archive


def test_item_download_one_file_or_a_zip(ro_site: RestSite) -> None:
    a_item = ro_site.find_file("data", "a.txt")["itemId"]
    single = ro_site.get(f"item/{a_item}/download", "alice")
    assert single.content == A_TXT
    assert single.headers["Content-Disposition"] == 'attachment; filename="a.txt"'
    partial = ro_site.get(f"item/{a_item}/download", "alice", params={"offset": 10})
    assert partial.status_code == 206 and partial.content == A_TXT[10:]
    zipped = _zip(ro_site.get(f"item/{a_item}/download", "alice", params={"format": "zip"}))
    assert zipped.namelist() == ["a.txt/a.txt"]
    multi = ro_site.get(f"item/{ro_site.id('multi')}/download", "alice")
    assert multi.headers["Content-Disposition"] == 'attachment; filename="multi.zip"'
    archive = _zip(multi)
    assert archive.namelist() == ["multi/x.bin", "multi/y.bin"]
    assert archive.read("multi/x.bin") == X_BIN and archive.read("multi/y.bin") == Y_BIN
    bad = ro_site.get(f"item/{a_item}/download", "alice", params={"format": "tar"})
    assert bad.status_code == 400


def test_folder_download_is_a_zip_of_the_readable_tree(ro_site: RestSite) -> None:
    reply = ro_site.get(f"folder/{ro_site.id('private')}/download", "alice")
    assert reply.headers["Content-Disposition"] == 'attachment; filename="Private.zip"'
    archive = _zip(reply)
    assert sorted(archive.namelist()) == sorted([
        "Private/data/a.txt", "Private/data/multi/x.bin", "Private/data/multi/y.bin",
        "Private/data/deep/d1/d2/d3/leaf.txt"])
    assert archive.read("Private/data/a.txt") == A_TXT
    assert archive.read("Private/data/deep/d1/d2/d3/leaf.txt") == LEAF
    assert ro_site.get(f"folder/{ro_site.id('private')}/download", "bobby").status_code == 403


def test_folder_download_mime_filter(site: RestSite) -> None:
    data = site.id("data")
    site.post("file", "alice", data=b"note", params={
        "parentType": "folder", "parentId": data, "name": "note.txt", "size": 4,
        "mimeType": "text/plain"})
    text_only = _zip(site.get(f"folder/{data}/download", "alice",
                              params={"mimeFilter": '["text/plain"]'}))
    assert text_only.namelist() == ["data/note.txt"]
    bad = site.get(f"folder/{data}/download", "alice", params={"mimeFilter": "text"})
    assert bad.status_code == 400


def test_collection_download(ro_site: RestSite) -> None:
    archive = _zip(ro_site.get(f"collection/{ro_site.id('shared')}/download", "carol"))
    assert archive.namelist() == ["shared/docs/report.txt"]
    assert archive.read("shared/docs/report.txt") == REPORT
    assert ro_site.get(f"collection/{ro_site.id('secret')}/download", "carol") \
        .status_code == 403


def test_resource_download_selection(ro_site: RestSite) -> None:
    import json
    resources = {"item": [ro_site.id("multi")], "folder": [ro_site.id("docs")],
                 "collection": [ro_site.id("secret")], "user": [ro_site.id("bobby")]}
    reply = ro_site.get("resource/download", "admin", params={
        "resources": json.dumps(resources)})
    assert reply.headers["Content-Disposition"] == 'attachment; filename="Resources.zip"'
    archive = _zip(reply)
    assert sorted(archive.namelist()) == sorted([
        "multi/x.bin", "multi/y.bin", "docs/report.txt", "secret/vault/hidden.txt"])
    assert archive.read("secret/vault/hidden.txt") == HIDDEN
    post = ro_site.post("resource/download", "admin", data={
        "resources": json.dumps({"item": [ro_site.id("multi")]})})
    assert sorted(_zip(post).namelist()) == ["multi/x.bin", "multi/y.bin"]
    denied = ro_site.get("resource/download", "bobby", params={
        "resources": json.dumps({"collection": [ro_site.id("secret")]})})
    assert denied.status_code == 400
    assert denied.json()["message"] == f"Resource collection {ro_site.id('secret')} not found."
    cookie = ro_site.get("resource/download", params={
        "resources": json.dumps({"folder": [ro_site.id("docs")]})},
        cookies={"girderToken": ro_site.token("carol")})
    assert cookie.status_code == 200


def test_zip_with_metadata_files(site: RestSite) -> None:
    import json
    multi, data = site.id("multi"), site.id("data")
    site.put(f"item/{multi}/metadata", "alice", json={"k": "v"})
    site.put(f"folder/{data}/metadata", "alice", json={"f": 1})
    a_item = site.find_file("data", "a.txt")["itemId"]
    site.put(f"item/{a_item}/metadata", "alice", json={"a": True})
    reply = site.get("resource/download", "alice", params={
        "resources": json.dumps({"folder": [data]}), "includeMetadata": "true"})
    archive = _zip(reply)
    names = set(archive.namelist())
    assert {"data/girder-folder-metadata.json", "data/multi/girder-item-metadata.json",
            "data/a.txt/a.txt", "data/a.txt/girder-item-metadata.json"} <= names
    assert json.loads(archive.read("data/multi/girder-item-metadata.json")) == {"k": "v"}


def test_zip_downloads_are_streamed(site: RestSite) -> None:
    big = os.urandom(1 << 20) * 20
    site.upload("alice", site.id("data"), "big.bin", big)
    tracemalloc.start()
    try:
        with site.get(f"folder/{site.id('data')}/download", "alice", stream=True) as reply:
            total = sum(len(block) for block in reply.iter_content(1 << 16))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > len(big)
    assert peak < 8 << 20, peak
