"""Contract sections 2.8, 3.3, 3.4 and 5: path lookup, resource paths,
search, and selections (move, copy, delete, timestamps)."""

from __future__ import annotations

import json

import pytest
from bson import ObjectId

from tests.gateways.http.restsite import RestSite


@pytest.mark.parametrize(("path", "model", "name"), [
    ("/user/alice", "user", "alice"),
    ("/user/alice/Public", "folder", "Public"),
    ("/user/alice/Public/readme.txt", "item", "readme.txt"),
    ("/user/alice/Public/readme.txt/readme.txt", "file", "readme.txt"),
    ("/user/alice/Private/data/odd\\-name", "folder", "odd/name"),
    ("/collection/shared/docs/report.txt", "item", "report.txt"),
])
def test_lookup_finds_every_kind(ro_site: RestSite, path: str, model: str,
                                 name: str) -> None:
    reply = ro_site.get("resource/lookup", "alice", params={"path": path})
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert doc["_modelType"] == model
    assert doc.get("name", doc.get("login")) == name


@pytest.mark.parametrize("path", ["/user/alice/Nope", "/user/ghost", "/collection/secret",
                                  "/user/alice/Private", "/user", "/collection", "relative",
                                  "/elsewhere/x", "/user/alice/Public/readme.txt/x/y",
                                  "/user/alice/Public/", "/user/alice/"])  # trailing / kept
def test_lookup_misses_and_denials_look_the_same(ro_site: RestSite, path: str) -> None:
    reply = ro_site.get("resource/lookup", "bobby", params={"path": path})
    assert reply.status_code == 400, reply.text
    assert reply.json() == {"message": f"Path not found: {path}", "type": "validation",
                            "field": "path"}
    assert ro_site.get("resource/lookup", "bobby", params={"path": path, "test": "true"}) \
        .text == "null"


def test_resource_path_and_the_clients_type_probe(ro_site: RestSite) -> None:
    file = ro_site.find_file("data", "a.txt")
    cases = {("folder", ro_site.id("data")): "/user/alice/Private/data",
             ("item", file["itemId"]): "/user/alice/Private/data/a.txt",
             ("file", file["_id"]): "/user/alice/Private/data/a.txt/a.txt",
             ("user", ro_site.id("alice")): "/user/alice",
             ("collection", ro_site.id("shared")): "/collection/shared"}
    for (model, doc_id), path in cases.items():
        reply = ro_site.get(f"resource/{doc_id}/path", "alice", params={"type": model})
        assert reply.status_code == 200 and reply.json() == path
        # girder-client probes types in order; a wrong type must be 400
        for other in ("folder", "collection", "user", "item", "file"):
            if other != model:
                wrong = ro_site.get(f"resource/{doc_id}/path", "alice", params={"type": other})
                assert wrong.status_code == 400, (model, other, wrong.text)
    odd = ro_site.get("resource/lookup", "alice", params={
        "path": "/user/alice/Private/data/odd\\-name"}).json()
    assert ro_site.get(f"resource/{odd['_id']}/path", "alice",
                       params={"type": "folder"}).json() == \
        "/user/alice/Private/data/odd\\-name"
    denied = ro_site.get(f"resource/{file['_id']}/path", "bobby", params={"type": "file"})
    assert denied.status_code == 403
    assert ro_site.get(f"resource/{file['_id']}/path", params={"type": "file"}) \
        .status_code == 401
    assert ro_site.get(f"resource/{file['_id']}/path", "alice",
                       params={"type": "nonsense"}).status_code == 400


def test_get_resource_by_id_is_for_admins(ro_site: RestSite) -> None:
    folder = ro_site.id("data")
    doc = ro_site.get(f"resource/{folder}", "admin", params={"type": "folder"}).json()
    assert doc["name"] == "data" and doc["_modelType"] == "folder"
    assert ro_site.get(f"resource/{folder}", "alice", params={"type": "folder"}) \
        .status_code == 403
    assert ro_site.get(f"resource/{folder}", "admin", params={"type": "item"}) \
        .status_code == 400


def _search(site: RestSite, login: str | None, q: str, types: list[str],
            **params: object) -> dict:  # type: ignore[type-arg]
    reply = site.get("resource/search", login, params={"q": q, "types": json.dumps(types),
                                                       **params})
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def test_search_by_type_and_permission(ro_site: RestSite) -> None:
    types = ["item", "folder", "collection", "user", "group", "file", "bogus"]
    mine = _search(ro_site, "alice", "a", types)
    assert set(mine) == {"item", "folder", "collection", "user", "group", "file"}
    assert "a.txt" in [d["name"] for d in mine["item"]]
    bobby = _search(ro_site, "bobby", "a.txt", ["item", "file"])
    assert bobby == {"item": [], "file": []}
    users = _search(ro_site, "bobby", "tester", ["user"])["user"]
    assert len(users) == 4  # last names match too
    assert _search(ro_site, None, "secret", ["collection"]) == {"collection": []}
    assert [c["name"] for c in _search(ro_site, "admin", "SECRET", ["collection"])
            ["collection"]] == ["secret"]
    inside = _search(ro_site, "alice", "eport", ["item"])["item"]
    assert [d["name"] for d in inside] == ["report.txt"]
    assert _search(ro_site, "alice", "eport", ["item"], mode="prefix")["item"] == []
    prefix = _search(ro_site, "alice", "rep", ["item"], mode="prefix")["item"]
    assert [d["name"] for d in prefix] == ["report.txt"]
    limited = _search(ro_site, "admin", "t", ["item"], limit=2)["item"]
    assert len(limited) == 2
    assert ro_site.get("resource/search", "alice", params={
        "q": "a", "types": '["item"]', "mode": "fuzzy"}).status_code == 400
    assert ro_site.get("resource/search", "alice", params={"q": "a", "types": "item"}) \
        .status_code == 400


def test_move_copy_and_delete_selections(site: RestSite) -> None:
    public, data, multi = site.id("public"), site.id("data"), site.id("multi")
    deep = site.get("folder", "alice", params={"parentType": "folder", "parentId": data,
                                               "name": "deep"}).json()[0]["_id"]
    moved = site.put("resource/move", "alice", params={
        "resources": json.dumps({"item": [multi], "folder": [deep]}),
        "parentType": "folder", "parentId": public})
    assert moved.status_code == 200 and moved.text == "null"
    assert site.get(f"item/{multi}", "alice").json()["folderId"] == public
    assert site.get(f"folder/{deep}", "alice").json()["parentId"] == public
    under_self = site.put("resource/move", "alice", params={
        "resources": json.dumps({"folder": [public]}), "parentType": "folder",
        "parentId": deep})
    assert under_self.status_code == 400
    bad_parent = site.put("resource/move", "alice", params={
        "resources": json.dumps({"item": [multi]}), "parentType": "user",
        "parentId": site.id("alice")})
    assert bad_parent.status_code == 400 and bad_parent.json()["message"] == \
        "Invalid parentType."
    denied = site.put("resource/move", "bobby", params={
        "resources": json.dumps({"item": [multi]}), "parentType": "folder",
        "parentId": site.id("public")})
    assert denied.status_code == 400  # unreadable selections are "not found"
    copied = site.post("resource/copy", "alice", params={
        "resources": json.dumps({"item": [multi], "folder": [deep]}),
        "parentType": "folder", "parentId": data})
    assert copied.status_code == 200
    names = [i["name"] for i in site.get("item", "alice", params={"folderId": data}).json()]
    assert "multi" in names
    copy = site.get("item", "alice", params={"folderId": data, "name": "multi"}).json()[0]
    assert copy["copyOfItem"] == multi
    gone = site.delete("resource", "alice", params={
        "resources": json.dumps({"item": [multi], "folder": [deep]})})
    assert gone.status_code == 200
    assert site.get(f"item/{multi}", "alice").status_code == 400
    assert site.get(f"folder/{deep}", "alice").status_code == 400
    bad = site.delete("resource", "alice", params={"resources": json.dumps({"bogus": []})})
    assert bad.status_code == 400
    missing = site.delete("resource", "alice", params={
        "resources": json.dumps({"item": [str(ObjectId())]})})
    assert missing.status_code == 400
    assert site.check() == []


def test_delete_selection_needs_admin_access(site: RestSite) -> None:
    import json as _json
    data = site.id("data")
    site.put(f"folder/{data}/access", "alice", params={"access": _json.dumps({"users": [
        {"id": site.id("alice"), "level": 2}, {"id": site.id("bobby"), "level": 1}]})})
    reply = site.delete("resource", "bobby", params={
        "resources": _json.dumps({"folder": [data]})})
    assert reply.status_code == 400
    assert site.get(f"folder/{data}", "alice").status_code == 200


def test_timestamps_are_admin_only(site: RestSite) -> None:
    multi = site.id("multi")
    params = {"type": "item", "created": "2020-01-02T03:04:05+01:00",
              "updated": "2021-06-07T08:09:10"}
    assert site.put(f"resource/{multi}/timestamp", "alice", params=params).status_code == 403
    doc = site.put(f"resource/{multi}/timestamp", "admin", params=params).json()
    assert doc["created"] == "2020-01-02T02:04:05+00:00"
    assert doc["updated"] == "2021-06-07T08:09:10+00:00"
    assert site.get(f"item/{multi}", "alice").json()["created"] == doc["created"]
    bad = site.put(f"resource/{multi}/timestamp", "admin", params={"type": "item",
                                                                   "created": "yesterday"})
    assert bad.status_code == 400


def test_lookup_answers_the_document_as_it_is_now(site: RestSite) -> None:
    """The path cache may hold a document for a few seconds; a REST lookup
    never answers from it (a new description, a rename: seen at once)."""
    before = site.get("resource/lookup", "alice", params={"path": "/user/alice/Private/data"})
    assert before.status_code == 200
    data = before.json()["_id"]
    assert site.put(f"folder/{data}", "alice", params={"description": "fresh"}).ok
    after = site.get("resource/lookup", "alice", params={"path": "/user/alice/Private/data"})
    assert after.json()["description"] == "fresh"
    assert site.put(f"folder/{data}", "alice", params={"name": "renamed"}).ok
    old = site.get("resource/lookup", "alice", params={"path": "/user/alice/Private/data"})
    assert old.status_code == 400
    new = site.get("resource/lookup", "alice", params={"path": "/user/alice/Private/renamed"})
    assert new.status_code == 200 and new.json()["_id"] == data
