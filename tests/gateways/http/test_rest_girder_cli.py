"""The real ``girder-client`` command line (run from the venv) against our
server: upload a local tree, download it back, localsync twice, list."""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateways.http.restsite import PASSWORD, RestSite

CLI = Path(sys.executable).with_name("girder-client")


def _cli(site: RestSite, *args: str, login: str | None = "alice",
         api_key: str | None = None, home: Path | None = None) -> str:
    auth = ["--api-key", api_key] if api_key else \
        ["--username", login, "--password", PASSWORD] if login else []
    env = {**os.environ, "GIRDER_API_KEY": ""}
    if home is not None:
        env["HOME"] = str(home)
    done = subprocess.run([str(CLI), "--api-url", site.api.rstrip("/"), *auth, *args],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout


def _tree(root: Path) -> Path:
    """A local tree with an empty file, binary files, a non-ASCII name and a
    leaf folder (files only)."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "leafy").mkdir()
    (root / "a.txt").write_bytes(b"hello\n")
    (root / "empty.dat").write_bytes(b"")
    (root / "bin.dat").write_bytes(os.urandom(200_000))
    (root / "sub" / "b.txt").write_bytes(b"bee\n" * 1000)
    (root / "sub" / "deeper" / "c.bin").write_bytes(os.urandom(70_000))
    (root / "sub" / "deeper" / "ünïcode name.txt").write_bytes("ünïcode\n".encode())
    (root / "leafy" / "l1.txt").write_bytes(b"one")
    (root / "leafy" / "l2.txt").write_bytes(b"two")
    return root


def _same_tree(left: Path, right: Path) -> None:
    """Same names and the same bytes, recursively."""
    compare = filecmp.dircmp(left, right, ignore=[".girder_metadata"])
    assert compare.left_only == [] and compare.right_only == [], (left, compare.left_only,
                                                                   compare.right_only)
    _, mismatch, errors = filecmp.cmpfiles(left, right, compare.common_files, shallow=False)
    assert mismatch == [] and errors == [], (left, mismatch, errors)
    for sub in compare.common_dirs:
        _same_tree(left / sub, right / sub)


def _names(site: RestSite, folder_id: str, kind: str = "item") -> list[str]:
    if kind == "item":
        return [i["name"] for i in site.get("item", "admin", params={
            "folderId": folder_id, "limit": 0}).json()]
    return [f["name"] for f in site.get("folder", "admin", params={
        "parentType": "folder", "parentId": folder_id, "limit": 0}).json()]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return _tree(tmp_path / "tree")


def test_upload_a_tree_and_download_it_back(site: RestSite, tree: Path,
                                            tmp_path: Path) -> None:
    _cli(site, "upload", "/user/alice/Public", str(tree))
    uploaded = site.get("resource/lookup", "alice",
                        params={"path": "/user/alice/Public/tree"}).json()
    assert sorted(_names(site, uploaded["_id"])) == ["a.txt", "bin.dat", "empty.dat"]
    assert sorted(_names(site, uploaded["_id"], "folder")) == ["leafy", "sub"]
    out = tmp_path / "out"
    _cli(site, "download", uploaded["_id"], str(out))
    _same_tree(tree, out)
    # by path too, with an explicit parent type
    again = tmp_path / "again"
    _cli(site, "download", "--parent-type", "folder", uploaded["_id"], str(again))
    _same_tree(tree, again)
    assert site.check() == []


def test_upload_twice_with_and_without_reuse(site: RestSite, tree: Path) -> None:
    public = site.id("public")
    _cli(site, "upload", "--parent-type", "folder", public, str(tree))
    folder = site.get("folder", "alice", params={"parentType": "folder", "parentId": public,
                                                 "name": "tree"}).json()[0]["_id"]
    before = sorted(_names(site, folder))
    _cli(site, "upload", "--reuse", public, str(tree))
    assert sorted(_names(site, folder)) == before  # nothing duplicated
    assert len(site.get("folder", "alice", params={"parentType": "folder",
                                                   "parentId": public}).json()) == 1
    _cli(site, "upload", public, str(tree))
    names = _names(site, folder)
    assert "a.txt (1)" in names and "bin.dat (1)" in names  # Girder's renamed duplicates
    assert sorted(_names(site, folder, "folder")) == ["leafy", "sub"]  # folders reused
    assert site.check() == []


def test_leaf_folders_as_items(site: RestSite, tree: Path) -> None:
    _cli(site, "upload", "--leaf-folders-as-items", site.id("public"), str(tree))
    root = site.get("resource/lookup", "alice",
                    params={"path": "/user/alice/Public/tree"}).json()["_id"]
    assert sorted(_names(site, root)) == ["a.txt", "bin.dat", "empty.dat", "leafy"]
    leafy = site.get("item", "alice", params={"folderId": root, "name": "leafy"}).json()[0]
    files = site.get(f"item/{leafy['_id']}/files", "alice").json()
    assert [f["name"] for f in files] == ["l1.txt", "l2.txt"]
    sub = site.get("resource/lookup", "alice",
                   params={"path": "/user/alice/Public/tree/sub"}).json()["_id"]
    assert sorted(_names(site, sub)) == ["b.txt", "deeper"]
    deeper = site.get("item", "alice", params={"folderId": sub, "name": "deeper"}).json()[0]
    data = site.get(f"item/{deeper['_id']}/download", "alice", params={"format": "zip"})
    assert data.status_code == 200


def test_download_collection_item_and_file(ro_site: RestSite, tmp_path: Path) -> None:
    out = tmp_path / "coll"
    _cli(ro_site, "download", "--parent-type", "collection", ro_site.id("shared"), str(out))
    report = ro_site.find_file("docs", "report.txt")
    assert (out / "docs" / "report.txt").read_bytes() == \
        ro_site.get(f"file/{report['_id']}/download", "alice").content
    item_out = tmp_path / "item"
    _cli(ro_site, "download", "--parent-type", "item", ro_site.id("multi"), str(item_out))
    assert sorted(os.listdir(item_out / "multi")) == ["x.bin", "y.bin"]
    file_out = tmp_path / "single.txt"
    _cli(ro_site, "download", "--parent-type", "file", report["_id"], str(file_out))
    assert file_out.read_bytes().startswith(b"quarterly report")
    auto = tmp_path / "auto"
    _cli(ro_site, "download", ro_site.id("data"), str(auto))  # type probed by the client
    assert (auto / "a.txt").is_file() and (auto / "multi" / "x.bin").is_file()


def test_localsync_twice_skips_unchanged_items(site: RestSite, tmp_path: Path) -> None:
    local = tmp_path / "mirror"
    data = site.id("data")
    _cli(site, "localsync", data, str(local))
    assert (local / "a.txt").read_bytes().startswith(b"alpha")
    recorded = json.loads((local / ".girder_metadata").read_text())
    assert len(recorded) == 3  # a.txt, multi, leaf.txt
    # tamper with an unchanged item's local copy, change another item on the server
    (local / "multi" / "x.bin").write_bytes(b"local edit")
    a_file = site.find_file("data", "a.txt")
    upload = site.put(f"file/{a_file['_id']}/contents", "alice", params={"size": 4}).json()
    site.post("file/chunk", "alice", params={"uploadId": upload["_id"], "offset": 0},
              data=b"new!")
    site.post("item", "alice", params={"folderId": data, "name": "added.txt"})
    _cli(site, "localsync", data, str(local))
    assert (local / "a.txt").read_bytes() == b"new!"  # changed on the server: fetched
    assert (local / "multi" / "x.bin").read_bytes() == b"local edit"  # unchanged: skipped
    assert len(json.loads((local / ".girder_metadata").read_text())) == 4


def test_list_and_api_key(site: RestSite) -> None:
    key = site.post("api_key", "alice", params={"name": "cli"}).json()["key"]
    listing = _cli(site, "list", site.id("data"), api_key=key)
    for name in ("a.txt", "multi", "deep", "odd/name"):
        assert name in listing, listing
    denied = subprocess.run(
        [str(CLI), "--api-url", site.api.rstrip("/"), "--username", "bobby", "--password",
         PASSWORD, "list", site.id("data")], capture_output=True, text=True, timeout=60,
        check=False)
    assert denied.returncode != 0
