"""Contract section 1: routing, parameters, responses, error shapes, paging."""

from __future__ import annotations

import json
import logging

import pytest
from bson import ObjectId

from tests.gateways.http.restsite import RestSite


def _error(reply, status: int, kind: str) -> dict:  # type: ignore[no-untyped-def]
    assert reply.status_code == status, (reply.status_code, reply.text)
    assert reply.headers["Content-Type"] == "application/json"
    body = reply.json()
    assert body["type"] == kind, body
    assert isinstance(body["message"], str) and body["message"]
    assert "trace" not in body and "Traceback" not in reply.text
    return body  # type: ignore[no-any-return]


# ---------------------------------------------------------------- 1.1 routing

def test_unmatched_path_under_a_known_resource_is_400(ro_site: RestSite) -> None:
    body = _error(ro_site.get("item/a/b/c"), 400, "rest")
    assert body["message"] == 'No matching route for "GET item/a/b/c"'


def test_unknown_resource_is_404(ro_site: RestSite) -> None:
    assert ro_site.get("nosuchthing").status_code == 404


def test_literal_segments_beat_wildcards(ro_site: RestSite) -> None:
    reply = ro_site.get("user/me")
    assert reply.status_code == 200 and reply.text == "null"
    me = ro_site.get("user/me", "alice").json()
    assert me["login"] == "alice"
    # "file/offset" is not "file/:id": the missing parameter is named.
    body = _error(ro_site.get("file/offset", "alice"), 400, "rest")
    assert "uploadId" in body["message"]


def test_method_override_header_turns_a_post_into_another_verb(site: RestSite) -> None:
    folder = site.id("public")
    item = site.post("item", "alice", params={"folderId": folder, "name": "x"}).json()
    for header in ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"):
        reply = site.post(f"item/{item['_id']}", "alice", params={"name": header},
                          headers={header: "PUT"})
        assert reply.status_code == 200, reply.text
        assert site.get(f"item/{item['_id']}", "alice").json()["name"] == header


def test_head_falls_back_to_get(ro_site: RestSite) -> None:
    reply = ro_site.call("HEAD", f"folder/{ro_site.id('public')}")
    assert reply.status_code == 200 and reply.content == b""
    assert reply.headers["Content-Type"] == "application/json"


def test_creates_answer_200_not_201(site: RestSite) -> None:
    reply = site.post("folder", "alice", params={"parentId": site.id("public"), "name": "n"})
    assert reply.status_code == 200


# ---------------------------------------------------------------- 1.2 parameters

def test_repeated_parameter_is_400(ro_site: RestSite) -> None:
    reply = ro_site.get(f"item?folderId={ro_site.id('public')}&limit=1&limit=2")
    body = _error(reply, 400, "rest")
    assert body["message"] == 'Parameter "limit" must not be specified multiple times.'


def test_unknown_parameters_are_ignored_and_the_client_id_duplicate_tolerated(
        ro_site: RestSite) -> None:
    item = ro_site.get("item", "alice", params={"folderId": ro_site.id("public")}).json()[0]
    reply = ro_site.get(f"item/{item['_id']}/files", "alice",
                        params={"id": item["_id"], "bogus": "1", "limit": 50, "offset": 0})
    assert reply.status_code == 200
    assert [f["name"] for f in reply.json()] == ["readme.txt"]


@pytest.mark.parametrize(("raw", "expected"), [
    ("True", True), ("true", True), (" on ", True), ("1", True), ("YES", True),
    ("False", False), ("0", False), ("nope", False), ("", False)])
def test_boolean_words(site: RestSite, raw: str, expected: bool) -> None:
    reply = site.post("folder", "alice", params={"parentId": site.id("public"),
                                                "name": f"b{raw!r}", "public": raw})
    assert reply.status_code == 200, reply.text
    assert reply.json()["public"] is expected


def test_bad_integer_is_400(ro_site: RestSite) -> None:
    body = _error(ro_site.get("collection", params={"limit": "ten"}), 400, "rest")
    assert body["message"].startswith("Invalid value for integer parameter limit")


def test_json_parameters_bad_json_and_wrong_kind(site: RestSite) -> None:
    params = {"parentId": site.id("public"), "name": "j"}
    bad = site.post("folder", "alice", params={**params, "metadata": "{oops"})
    assert "JSON" in _error(bad, 400, "rest")["message"]
    wrong = site.post("folder", "alice", params={**params, "metadata": "[1, 2]"})
    assert _error(wrong, 400, "rest")["message"] == \
        "Parameter metadata must be a JSON object."
    ok = site.post("folder", "alice", params={**params, "metadata": '{"a": 1}'})
    assert ok.json()["meta"] == {"a": 1}
    # nothing was created by the refused calls
    names = [f["name"] for f in site.get("folder", "alice", params={
        "parentType": "folder", "parentId": site.id("public")}).json()]
    assert names == ["j"]


def test_form_body_parameters_merge_with_the_query(site: RestSite) -> None:
    reply = site.post("folder", "alice", params={"parentId": site.id("public")},
                      data={"name": "from form"})
    assert reply.status_code == 200 and reply.json()["name"] == "from form"
    dup = site.post(f"folder?parentId={site.id('public')}&name=a", "alice",
                    data={"name": "b"})
    _error(dup, 400, "rest")


def test_plus_in_the_query_is_a_space(site: RestSite) -> None:
    reply = site.post(f"folder?parentId={site.id('public')}&name=a+b", "alice")
    assert reply.json()["name"] == "a b"


def test_json_body_whatever_the_content_type_and_invalid_json(site: RestSite) -> None:
    item = site.find_file("public", "readme.txt")["itemId"]
    reply = site.put(f"item/{item}/metadata", "alice", data=b'{"k": "v"}',
                     headers={"Content-Type": "text/plain"})
    assert reply.status_code == 200 and reply.json()["meta"] == {"k": "v"}
    bad = site.put(f"item/{item}/metadata", "alice", data=b"{not json",
                   headers={"Content-Type": "application/json"})
    assert _error(bad, 400, "rest")["message"] == "Invalid JSON passed in request body."


# ---------------------------------------------------------------- 1.3 responses

def test_json_responses_sorted_keys_and_request_uid(ro_site: RestSite) -> None:
    reply = ro_site.get(f"folder/{ro_site.id('public')}")
    assert reply.headers["Content-Type"] == "application/json"
    keys = list(json.loads(reply.text).keys())
    assert keys == sorted(keys)
    assert len(reply.headers["Girder-Request-Uid"]) == 36
    error = ro_site.get("folder/nope")
    assert len(error.headers["Girder-Request-Uid"]) == 36


def test_void_handlers_answer_null(site: RestSite) -> None:
    file = site.find_file("public", "readme.txt")
    reply = site.delete(f"file/{file['_id']}", "alice")
    assert reply.status_code == 200 and reply.text == "null"
    assert reply.headers["Content-Type"] == "application/json"


def test_datetimes_are_iso_with_utc_offset(ro_site: RestSite) -> None:
    folder = ro_site.get(f"folder/{ro_site.id('public')}").json()
    assert folder["created"].endswith("+00:00")
    assert folder["created"][:4].isdigit() and "T" in folder["created"]


def test_total_count_header_on_cursor_routes_only(ro_site: RestSite) -> None:
    alice = ro_site.id("alice")
    folders = ro_site.get("folder", "alice", params={"parentType": "user", "parentId": alice,
                                                     "limit": 1})
    assert folders.headers["Girder-Total-Count"] == "2" and len(folders.json()) == 1
    items = ro_site.get("item", "alice", params={"folderId": ro_site.id("data"), "limit": 1})
    assert items.headers["Girder-Total-Count"] == "2"
    collections = ro_site.get("collection", "admin", params={"limit": 1})
    assert collections.headers["Girder-Total-Count"] == "2"
    multi = ro_site.id("multi")
    files = ro_site.get(f"item/{multi}/files", "alice", params={"limit": 1})
    assert files.headers["Girder-Total-Count"] == "2"
    users = ro_site.get("user", "alice")
    assert "Girder-Total-Count" not in users.headers and len(users.json()) == 4


def test_cors_is_off_by_default_and_follows_the_setting(site: RestSite) -> None:
    origin = {"Origin": "http://example.org"}
    assert "Access-Control-Allow-Origin" not in site.get("system/version",
                                                         headers=origin).headers
    site.app.services.settings.set("core.cors.allow_origin", "http://example.org")
    reply = site.get("system/version", headers=origin)
    assert reply.headers["Access-Control-Allow-Origin"] == "http://example.org"
    assert "Girder-Total-Count" in reply.headers["Access-Control-Expose-Headers"]
    pre = site.call("OPTIONS", "item", headers={
        **origin, "Access-Control-Request-Method": "PUT"})
    assert pre.status_code == 200
    assert "PUT" in pre.headers["Access-Control-Allow-Methods"]
    assert "Girder-Token" in pre.headers["Access-Control-Allow-Headers"]


# ---------------------------------------------------------------- 1.4 errors

def test_invalid_object_id_is_400(ro_site: RestSite) -> None:
    body = _error(ro_site.get("item/not-an-id"), 400, "validation")
    assert "not-an-id" in body["message"]


def test_unknown_id_is_400_invalid_model_id(ro_site: RestSite) -> None:
    missing = str(ObjectId())
    for model in ("item", "folder", "collection", "file", "user", "group"):
        body = _error(ro_site.get(f"{model}/{missing}", "admin"), 400, "validation")
        assert body["message"] == f"Invalid {model} id ({missing}).", body


def test_access_errors_are_401_anonymous_and_403_authenticated(ro_site: RestSite) -> None:
    secret = ro_site.id("secret")
    anonymous = _error(ro_site.get(f"collection/{secret}"), 401, "access")
    assert "Read access denied" in anonymous["message"]
    _error(ro_site.get(f"collection/{secret}", "alice"), 403, "access")
    private = ro_site.id("private")
    _error(ro_site.get(f"folder/{private}"), 401, "access")
    _error(ro_site.get(f"folder/{private}", "bobby"), 403, "access")
    assert ro_site.get(f"folder/{private}", "alice").status_code == 200


def test_unexpected_failure_is_500_internal_with_uid_and_no_trace(
        site: RestSite, caplog: pytest.LogCaptureFixture) -> None:
    # A corrupt record (an item without a folder) makes the handler fail.
    broken = {"name": "broken", "lowerName": "broken", "size": 0}
    site.app.store.items.insert_one(broken)
    with caplog.at_level(logging.ERROR, logger="joist.http"):
        reply = site.get(f"item/{broken['_id']}", "alice")
    body = _error(reply, 500, "internal")
    assert body["uid"] == reply.headers["Girder-Request-Uid"]
    assert "folderId" not in reply.text  # the exception's text stays on the server
    assert body["uid"] in caplog.text


# ---------------------------------------------------------------- 1.6 paging

def _make_items(site: RestSite, count: int) -> str:
    folder = site.post("folder", "alice", params={"parentId": site.id("public"),
                                                  "name": "many"}).json()["_id"]
    for n in range(count):
        site.post("item", "alice", params={"folderId": folder, "name": f"i{n:02d}"})
    return folder  # type: ignore[no-any-return]


def test_limit_offset_and_exact_pages(site: RestSite) -> None:
    folder = _make_items(site, 7)
    everything = site.get("item", "alice", params={"folderId": folder, "limit": 0}).json()
    assert [i["name"] for i in everything] == [f"i{n:02d}" for n in range(7)]
    seen: list[str] = []
    offset = 0
    for _ in range(10):  # the client's own paging loop
        page = site.get("item", "alice", params={"folderId": folder, "limit": 3,
                                                 "offset": offset}).json()
        seen += [i["_id"] for i in page]
        if len(page) < 3:
            break
        offset += len(page)
    assert seen == [i["_id"] for i in everything]
    default = site.get("item", "alice", params={"folderId": folder}).json()
    assert len(default) == 7


def test_ties_in_the_sort_field_page_without_overlap(site: RestSite) -> None:
    folder = _make_items(site, 6)  # all items have size 0
    pages = [site.get("item", "alice", params={
        "folderId": folder, "sort": "size", "limit": 2, "offset": off}).json()
        for off in (0, 2, 4)]
    ids = [i["_id"] for page in pages for i in page]
    assert len(ids) == 6 and len(set(ids)) == 6
    desc = site.get("item", "alice", params={"folderId": folder, "sortdir": -1,
                                             "limit": 0}).json()
    assert [i["name"] for i in desc] == [f"i{n:02d}" for n in reversed(range(6))]


def test_bad_sortdir_and_negative_paging_are_400(ro_site: RestSite) -> None:
    params = {"folderId": ro_site.id("public")}
    _error(ro_site.get("item", params={**params, "sortdir": 2}), 400, "rest")
    _error(ro_site.get("item", params={**params, "limit": -1}), 400, "rest")
    _error(ro_site.get("item", params={**params, "offset": -5}), 400, "rest")


@pytest.mark.parametrize(("offset", "limit", "returned"), [
    (0, 50, 2), (1, 50, 1), (1, 1, 1), (5, 1, 0), (2, 50, 0), (0, 0, 2), (1, 0, 1)])
def test_total_count_is_exact_on_every_page(ro_site: RestSite, offset: int, limit: int,
                                            returned: int) -> None:
    reply = ro_site.get("item", "alice", params={"folderId": ro_site.id("data"),
                                                 "offset": offset, "limit": limit})
    assert len(reply.json()) == returned
    assert reply.headers["Girder-Total-Count"] == "2"


def test_item_total_count_comes_from_core_or_a_count(site: RestSite) -> None:
    """The folder's kept item count answers Girder-Total-Count; a folder
    without one (a store from before, a crash) is counted instead."""
    data = site.id("data")

    def total() -> str:
        reply = site.get("item", "alice", params={"folderId": data, "limit": 1})
        assert reply.status_code == 200 and len(reply.json()) == 1
        return str(reply.headers["Girder-Total-Count"])

    assert total() == "2"
    site.app.store.folder_counts.update_one({"_id": ObjectId(data)}, {"$set": {"items": 7}})
    assert total() == "7"  # proof the kept count is what answers
    site.app.store.folder_counts.delete_one({"_id": ObjectId(data)})
    assert total() == "2"
