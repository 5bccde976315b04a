"""Contract sections 2.4, 2.5, 2.7, 4 and 6: folders, items, metadata, access
lists, field exposure per level."""

from __future__ import annotations

import pytest

from tests.gateways.http.restsite import RestSite

HIDDEN = {"access", "lowerName", "salt", "sha512", "path", "relpath", "s3Key", "imported",
          "fileCount", "state", "tempFile"}


def _names(docs: list[dict]) -> list[str]:  # type: ignore[type-arg]
    return [d["name"] for d in docs]


# ---------------------------------------------------------------- folders

def test_list_folders_filters_children_by_read(ro_site: RestSite) -> None:
    params = {"parentType": "user", "parentId": ro_site.id("alice")}
    assert _names(ro_site.get("folder", "alice", params=params).json()) == ["Private", "Public"]
    assert _names(ro_site.get("folder", "bobby", params=params).json()) == ["Public"]
    assert _names(ro_site.get("folder", params=params).json()) == ["Public"]
    exact = ro_site.get("folder", "alice", params={**params, "name": "public"}).json()
    assert exact == []  # name is exact and case-sensitive
    assert _names(ro_site.get("folder", "alice", params={**params, "name": "Public"}).json()) \
        == ["Public"]


def test_list_folders_needs_a_readable_parent_or_a_search(ro_site: RestSite) -> None:
    hidden = ro_site.get("folder", "bobby", params={"parentType": "folder",
                                                    "parentId": ro_site.id("private")})
    assert hidden.status_code == 403
    mode = ro_site.get("folder", "alice")
    assert mode.status_code == 400 and mode.json()["message"] == "Invalid search mode."
    found = ro_site.get("folder", "alice", params={"text": "DEEP"}).json()
    assert _names(found) == ["deep"]
    assert ro_site.get("folder", "bobby", params={"text": "deep"}).json() == []


def test_create_folder_rules(site: RestSite) -> None:
    public = site.id("public")
    made = site.post("folder", "alice", params={"parentId": public, "name": "  spaced  ",
                                                "description": "  d  "}).json()
    assert made["name"] == "spaced" and made["description"] == "d"
    assert made["parentCollection"] == "folder" and made["public"] is True  # inherited
    again = site.post("folder", "alice", params={"parentId": public, "name": "spaced"})
    assert again.status_code == 400
    assert again.json() == {"field": "name", "type": "validation",
                            "message": "A folder with that name already exists here."}
    reused = site.post("folder", "alice", params={"parentId": public, "name": "spaced",
                                                  "reuseExisting": "true",
                                                  "metadata": '{"k": 1}'}).json()
    assert reused["_id"] == made["_id"] and reused["meta"] == {"k": 1}
    clash = site.post("folder", "alice", params={"parentId": public, "name": "readme.txt"})
    assert clash.json()["message"] == "An item with that name already exists here."
    assert site.post("folder", "bobby", params={"parentId": public, "name": "x"}) \
        .status_code == 403
    assert site.post("folder", params={"parentId": public, "name": "x"}).status_code == 401
    assert site.post("folder", "alice", params={"parentId": public, "name": "  "}) \
        .status_code == 400
    home = site.post("folder", "alice", params={"parentType": "user", "name": "Home",
                                                "parentId": site.id("alice")}).json()
    assert home["public"] is False and home["parentCollection"] == "user"


def test_folder_update_move_details_rootpath_and_delete(site: RestSite) -> None:
    data, public = site.id("data"), site.id("public")
    details = site.get(f"folder/{data}/details", "alice").json()
    assert details == {"nItems": 2, "nFolders": 2}
    root = site.get(f"folder/{data}/rootpath", "alice").json()
    assert [(r["type"], r["object"].get("name", r["object"].get("login"))) for r in root] \
        == [("user", "alice"), ("folder", "Private")]
    moved = site.put(f"folder/{data}", "alice", params={
        "name": "renamed", "parentType": "folder", "parentId": public}).json()
    assert moved["name"] == "renamed" and moved["parentId"] == public
    into_self = site.put(f"folder/{public}", "alice", params={"parentId": data})
    assert into_self.status_code == 400
    cleared = site.delete(f"folder/{data}/contents", "alice").json()
    assert "renamed" in cleared["message"]
    assert site.get(f"folder/{data}/details", "alice").json() == {"nItems": 0,
                                                                   "nFolders": 0}
    gone = site.delete(f"folder/{data}", "alice").json()
    assert gone["message"].startswith("Deleted folder renamed")
    assert site.get(f"folder/{data}", "alice").status_code == 400
    assert site.check() == []


def test_copy_folder_is_deep_and_shares_bytes(site: RestSite) -> None:
    copy = site.post(f"folder/{site.id('data')}/copy", "alice", params={
        "parentType": "folder", "parentId": site.id("public"), "name": "data copy"})
    assert copy.status_code == 200, copy.text
    new = copy.json()
    assert new["name"] == "data copy" and new["public"] is False  # "original" policy
    details = site.get(f"folder/{new['_id']}/details", "alice").json()
    assert details == {"nItems": 2, "nFolders": 2}
    items = site.get("item", "alice", params={"folderId": new["_id"], "name": "a.txt"}).json()
    file = site.get(f"item/{items[0]['_id']}/files", "alice").json()[0]
    assert site.get(f"file/{file['_id']}/download", "alice").content.startswith(b"alpha")
    assert site.check() == []


# ---------------------------------------------------------------- items

def test_list_items_rules(ro_site: RestSite) -> None:
    data = ro_site.id("data")
    assert _names(ro_site.get("item", "alice", params={"folderId": data}).json()) == \
        ["a.txt", "multi"]
    assert ro_site.get("item", "bobby", params={"folderId": data}).status_code == 403
    assert ro_site.get("item", "alice", params={"folderId": "nope"}).status_code == 400
    mode = ro_site.get("item", "alice")
    assert mode.status_code == 400 and mode.json()["message"] == "Invalid search mode."
    assert _names(ro_site.get("item", "alice", params={"text": "MULT"}).json()) == ["multi"]
    assert ro_site.get("item", "bobby", params={"text": "mult"}).json() == []
    assert _names(ro_site.get("item", params={"text": "readme"}).json()) == ["readme.txt"]
    assert ro_site.get("item", "alice", params={"folderId": data, "name": "A.TXT"}).json() \
        == []


def test_create_item_renames_on_collision_unless_reused(site: RestSite) -> None:
    public = site.id("public")
    first = site.post("item", "alice", params={"folderId": public, "name": "readme.txt"})
    assert first.json()["name"] == "readme.txt (1)"
    second = site.post("item", "alice", params={"folderId": public, "name": "readme.txt"})
    assert second.json()["name"] == "readme.txt (2)"
    reused = site.post("item", "alice", params={"folderId": public, "name": "readme.txt",
                                                "reuseExisting": True}).json()
    assert reused["_id"] == site.find_file("public", "readme.txt")["itemId"]
    site.post("folder", "alice", params={"parentId": public, "name": "dir"})
    beside = site.post("item", "alice", params={"folderId": public, "name": "dir"}).json()
    assert beside["name"] == "dir (1)"
    blank = site.post("item", "alice", params={"folderId": public, "name": " "})
    assert blank.status_code == 400
    assert site.post("item", "bobby", params={"folderId": public, "name": "b"}) \
        .status_code == 403


def test_item_update_move_copy_files_and_delete(site: RestSite) -> None:
    multi, public = site.id("multi"), site.id("public")
    files = site.get(f"item/{multi}/files", "alice").json()
    assert _names(files) == ["x.bin", "y.bin"]
    desc = site.get(f"item/{multi}/files", "alice", params={"sortdir": -1}).json()
    assert _names(desc) == ["y.bin", "x.bin"]
    site.post("item", "alice", params={"folderId": public, "name": "multi"})
    moved = site.put(f"item/{multi}", "alice", params={"folderId": public,
                                                       "description": "moved"}).json()
    assert moved["folderId"] == public and moved["name"] == "multi (1)"
    copy = site.post(f"item/{multi}/copy", "alice", params={"folderId": site.id("data"),
                                                            "name": "copied"}).json()
    assert copy["copyOfItem"] == multi and copy["name"] == "copied"
    assert _names(site.get(f"item/{copy['_id']}/files", "alice").json()) == ["x.bin", "y.bin"]
    root = site.get(f"item/{multi}/rootpath", "alice").json()
    assert [r["type"] for r in root] == ["user", "folder"]
    reply = site.delete(f"item/{multi}", "alice")
    assert reply.json() == {"message": "Deleted item multi (1)."}
    assert site.get(f"item/{multi}", "alice").status_code == 400
    assert site.check() == []


# ---------------------------------------------------------------- metadata

@pytest.mark.parametrize("model", ["item", "folder", "collection"])
def test_metadata_set_merge_null_and_delete(site: RestSite, model: str) -> None:
    target = {"item": site.id("multi"), "folder": site.id("data"),
              "collection": site.id("shared")}[model]
    base = f"{model}/{target}/metadata"
    before = site.get(f"{model}/{target}", "alice").json()
    doc = site.put(base, "alice", json={"a": 1, "b": {"deep": [1, 2]}, "c": "x"}).json()
    assert doc["meta"] == {"a": 1, "b": {"deep": [1, 2]}, "c": "x"}
    if "updated" in before:
        assert doc["updated"] >= before["updated"]
    doc = site.put(base, "alice", json={"a": None, "c": "y"}).json()
    assert doc["meta"] == {"b": {"deep": [1, 2]}, "c": "y"}
    doc = site.put(base, "alice", params={"allowNull": "true"}, json={"n": None}).json()
    assert doc["meta"]["n"] is None
    doc = site.delete(base, "alice", json=["n", "c"]).json()
    assert doc["meta"] == {"b": {"deep": [1, 2]}}
    for bad in ({"": 1}, {"a.b": 1}, {"$x": 1}):
        assert site.put(base, "alice", json=bad).status_code == 400
    assert site.put(base, "alice", json=[1]).status_code == 400
    assert site.put(base, "alice").status_code == 400  # the body is required
    assert site.delete(base, "alice", json={"a": 1}).status_code == 400
    assert site.delete(base, "alice", json=[1]).status_code == 400
    assert site.put(base, "bobby", json={"z": 1}).status_code == 403
    assert site.get(f"{model}/{target}", "alice").json()["meta"] == {"b": {"deep": [1, 2]}}


# ---------------------------------------------------------------- access lists

def test_get_and_put_folder_access(site: RestSite) -> None:
    data = site.id("data")
    assert site.get(f"folder/{data}/access", "bobby").status_code == 403
    access = site.get(f"folder/{data}/access", "alice").json()
    assert access["groups"] == []
    assert [(u["login"], u["level"], u["name"]) for u in access["users"]] == \
        [("alice", 2, "Alice Tester")]
    # re-send the GET output with extra keys (as inheritAccessControlRecursive does)
    access["users"].append({"id": site.id("bobby"), "level": 0, "login": "bobby",
                            "name": "whatever", "flags": []})
    access["groups"].append({"id": site.id("team"), "level": 1, "name": "team"})
    reply = site.put(f"folder/{data}/access", "alice", params={
        "access": __import__("json").dumps(access), "public": "false"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["_modelType"] == "folder" and body["public"] is False
    assert {u["id"]: u["level"] for u in body["access"]["users"]} == {
        site.id("alice"): 2, site.id("bobby"): 0}
    assert set(body["access"]["users"][0]) == {"id", "level", "flags"}
    assert site.get(f"folder/{data}", "bobby").status_code == 200
    assert site.get(f"folder/{data}", "carol").status_code == 200  # via group team
    assert site.post("folder", "carol", params={"parentId": data, "name": "c"}) \
        .status_code == 200  # team has WRITE


@pytest.mark.parametrize(("access", "message"), [
    ('{"users": [{"level": 0}]}', "Invalid access list"),
    ('{"users": [{"id": "%s", "level": 5}]}', "Invalid access level"),
    ('{"users": "nope"}', "Invalid access list"),
    ("[]", "Parameter access must be a JSON object."),
])
def test_bad_access_lists_are_400_and_change_nothing(site: RestSite, access: str,
                                                     message: str) -> None:
    data = site.id("data")
    before = site.get(f"folder/{data}/access", "alice").json()
    text = access % site.id("bobby") if "%s" in access else access
    reply = site.put(f"folder/{data}/access", "alice", params={"access": text})
    assert reply.status_code == 400 and reply.json()["message"] == message
    assert site.get(f"folder/{data}/access", "alice").json() == before


def test_recursive_access_and_collection_access(site: RestSite) -> None:
    shared = site.id("shared")
    acl = {"users": [{"id": site.id("alice"), "level": 2}, {"id": site.id("admin"),
                                                            "level": 2}],
           "groups": []}
    import json
    reply = site.put(f"collection/{shared}/access", "alice", params={
        "access": json.dumps(acl), "public": "true", "recurse": "true"})
    assert reply.status_code == 200, reply.text
    docs = site.get(f"folder/{site.id('docs')}/access", "alice").json()
    assert {u["login"] for u in docs["users"]} == {"alice", "admin"}
    assert site.get(f"folder/{site.id('docs')}").json()["public"] is True
    assert site.get(f"collection/{shared}/access", "carol").status_code == 403


def test_deleted_users_are_pruned_from_access_lists(site: RestSite) -> None:
    public = site.id("public")
    import json
    site.put(f"folder/{public}/access", "alice", params={"access": json.dumps(
        {"users": [{"id": site.id("alice"), "level": 2}, {"id": site.id("bobby"),
                                                          "level": 1}]})})
    assert site.delete(f"user/{site.id('bobby')}", "admin").status_code == 200
    users = site.get(f"folder/{public}/access", "alice").json()["users"]
    assert [u["login"] for u in users] == ["alice"]


# ---------------------------------------------------------------- field exposure

def test_tree_documents_expose_only_whitelisted_fields(ro_site: RestSite) -> None:
    folder = ro_site.get(f"folder/{ro_site.id('data')}", "alice").json()
    assert {"_id", "_modelType", "name", "size", "created", "parentId", "parentCollection",
            "public", "baseParentType", "baseParentId", "creatorId", "meta",
            "_accessLevel"} <= set(folder)
    item = ro_site.get(f"item/{ro_site.id('multi')}", "alice").json()
    assert {"_id", "_modelType", "name", "size", "created", "folderId", "meta"} <= set(item)
    assert "_accessLevel" not in item
    file = ro_site.get(f"item/{ro_site.id('multi')}/files", "alice").json()[0]
    assert {"_id", "_modelType", "name", "size", "itemId", "mimeType", "exts"} <= set(file)
    assert "assetstoreId" not in file
    admin_file = ro_site.get(f"file/{file['_id']}", "admin").json()
    assert "assetstoreId" in admin_file
    collection = ro_site.get(f"collection/{ro_site.id('shared')}", "carol").json()
    assert collection["_accessLevel"] == 0 and "creatorId" not in collection
    for doc in (folder, item, file, admin_file, collection):
        assert not HIDDEN & set(doc), HIDDEN & set(doc)
