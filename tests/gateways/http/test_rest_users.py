"""Contract sections 2.3, 3.1 (user, group, collection) and 4.2, 4.3, 4.7:
accounts, groups and collections, with field exposure per access level."""

from __future__ import annotations

import requests

from tests.gateways.http.restsite import PASSWORD, RestSite

NEW_USER = {"login": "dave", "email": "Dave@Example.org", "firstName": " Dave ",
            "lastName": "Doe", "password": "long enough"}


# ---------------------------------------------------------------- users

def test_user_fields_per_access_level(ro_site: RestSite) -> None:
    alice = ro_site.id("alice")
    public_view = ro_site.get(f"user/{alice}").json()
    assert public_view["login"] == "alice" and public_view["_modelType"] == "user"
    assert {"_id", "login", "firstName", "lastName", "admin", "public", "created"} <= \
        set(public_view)
    for secret in ("email", "salt", "access", "otp", "groups", "status", "size"):
        assert secret not in public_view, secret
    other = ro_site.get(f"user/{alice}", "bobby").json()
    assert other["_accessLevel"] == 0 and "email" not in other
    own = ro_site.get(f"user/{alice}", "alice").json()
    assert own["_accessLevel"] == 2 and own["email"] == "alice@example.org"
    assert own["otp"] is False and own["status"] == "enabled" and "salt" not in own
    by_admin = ro_site.get(f"user/{alice}", "admin").json()
    assert by_admin["_accessLevel"] == 2 and "email" in by_admin


def test_list_users_needs_login_and_searches_text(ro_site: RestSite) -> None:
    assert ro_site.get("user").status_code == 401
    everyone = ro_site.get("user", "bobby").json()
    assert sorted(u["login"] for u in everyone) == ["admin", "alice", "bobby", "carol"]
    found = ro_site.get("user", "bobby", params={"text": "CAR"}).json()
    assert [u["login"] for u in found] == ["carol"]
    page = ro_site.get("user", "bobby", params={"limit": 2, "offset": 1}).json()
    assert [u["_id"] for u in page] == [u["_id"] for u in everyone[1:3]]
    assert ro_site.get("user/details", "bobby").json() == {"nUsers": 4}
    assert ro_site.get(f"user/{ro_site.id('alice')}/details", "alice").json() == \
        {"nFolders": 2}


def test_register_anonymously_gets_a_token(site: RestSite) -> None:
    reply = site.post("user", params=NEW_USER)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["login"] == "dave" and body["firstName"] == "Dave"
    assert body["email"] == "dave@example.org" and body["admin"] is False
    assert len(body["authToken"]["token"]) == 64
    assert reply.headers["Set-Cookie"].startswith("girderToken=")
    token = {"Girder-Token": body["authToken"]["token"]}
    assert site.get("user/me", headers=token).json()["login"] == "dave"
    folders = site.get("folder", headers=token, params={"parentType": "user",
                                                        "parentId": body["_id"]}).json()
    assert {(f["name"], f["public"]) for f in folders} == {("Public", True),
                                                           ("Private", False)}


def test_registration_rules(site: RestSite) -> None:
    for change, field in (({"login": "ab"}, "login"), ({"login": "has@sign"}, "login"),
                          ({"login": "9start"}, "login"), ({"email": "nope"}, "email"),
                          ({"firstName": " "}, "firstName"), ({"password": "short"}, None),
                          ({"login": "alice"}, "login"),
                          ({"email": "ALICE@example.org"}, "email")):
        reply = site.post("user", params={**NEW_USER, **change})
        assert reply.status_code == 400, (change, reply.text)
        if field:
            assert reply.json()["field"] == field, (change, reply.json())
    sneaky = site.post("user", "alice", params={**NEW_USER, "admin": "true"}).json()
    assert sneaky["admin"] is False and "authToken" not in sneaky
    made = site.post("user", "admin", params={**NEW_USER, "login": "erin",
                                              "email": "erin@example.org", "admin": "true"})
    assert made.json()["admin"] is True
    site.app.services.settings.set("core.registration_policy", "closed")
    closed = site.post("user", params={**NEW_USER, "login": "frank",
                                       "email": "frank@example.org"})
    assert closed.status_code == 400
    assert site.post("user", "admin", params={**NEW_USER, "login": "frank",
                                              "email": "frank@example.org"}).status_code == 200


def test_approval_policy_blocks_login_until_enabled(site: RestSite) -> None:
    site.app.services.settings.set("core.registration_policy", "approve")
    made = site.post("user", params=NEW_USER).json()
    assert "authToken" not in made
    login = requests.get(site.url("user/authentication"), auth=("dave", "long enough"),
                         timeout=10)
    assert login.status_code == 401 and login.json()["extra"] == "accountApproval"
    site.put(f"user/{made['_id']}", "admin", params={
        "firstName": "Dave", "lastName": "Doe", "email": "dave@example.org",
        "status": "enabled"})
    assert requests.get(site.url("user/authentication"), auth=("dave", "long enough"),
                        timeout=10).status_code == 200


def test_update_password_and_delete_user(site: RestSite) -> None:
    bobby = site.id("bobby")
    profile = {"firstName": "Bob", "lastName": "B", "email": "bob@example.org"}
    assert site.put(f"user/{bobby}", "alice", params=profile).status_code == 403
    updated = site.put(f"user/{bobby}", "bobby", params=profile).json()
    assert updated["firstName"] == "Bob" and updated["email"] == "bob@example.org"
    promote = site.put(f"user/{bobby}", "bobby", params={**profile, "admin": "true"})
    assert promote.status_code == 403
    wrong = site.put("user/password", "bobby", params={"old": "nope", "new": "new password"})
    assert wrong.status_code == 401
    assert site.put("user/password", "bobby", params={"old": PASSWORD,
                                                      "new": "new password"}).status_code == 200
    assert requests.get(site.url("user/authentication"), auth=("bobby", "new password"),
                        timeout=10).status_code == 200
    assert site.put(f"user/{bobby}/password", "alice",
                    params={"password": "x" * 8}).status_code == 403
    assert site.delete(f"user/{bobby}", "alice").status_code == 403
    gone = site.delete(f"user/{bobby}", "admin").json()
    assert gone == {"message": "Deleted user bobby."}
    assert site.get(f"user/{bobby}", "admin").status_code == 400
    assert site.check() == []


# ---------------------------------------------------------------- collections

def test_collections_listing_by_access(ro_site: RestSite) -> None:
    names = [c["name"] for c in ro_site.get("collection", "admin").json()]
    assert names == ["secret", "shared"]
    assert [c["name"] for c in ro_site.get("collection", "carol").json()] == ["shared"]
    assert ro_site.get("collection").json() == []
    assert ro_site.get("collection/details", "carol").json() == {"nCollections": 1}
    found = ro_site.get("collection", "admin", params={"text": "SEC"})
    assert [c["name"] for c in found.json()] == ["secret"]
    assert found.headers["Girder-Total-Count"] == "1"
    details = ro_site.get(f"collection/{ro_site.id('shared')}/details", "carol").json()
    assert details == {"nFolders": 1}


def test_collection_create_policy_update_and_delete(site: RestSite) -> None:
    denied = site.post("collection", "alice", params={"name": "mine"})
    assert denied.status_code == 403
    assert denied.json()["message"] == "You are not authorized to create collections."
    site.app.services.settings.set("core.collection_create_policy", {
        "open": True, "users": [site.id("alice")], "groups": []})
    made = site.post("collection", "alice", params={"name": "mine", "description": "d"})
    assert made.status_code == 200 and made.json()["public"] is False
    assert made.json()["_accessLevel"] == 2
    dup = site.post("collection", "admin", params={"name": "mine"})
    assert dup.status_code == 400 and dup.json()["field"] == "name"
    cid = made.json()["_id"]
    renamed = site.put(f"collection/{cid}", "alice", params={"name": "ours"}).json()
    assert renamed["name"] == "ours"
    assert site.put(f"collection/{cid}", "bobby", params={"name": "x"}).status_code == 403
    assert site.delete(f"collection/{cid}", "alice").json()["message"].startswith(
        "Deleted collection ours")
    assert site.get(f"collection/{cid}", "admin").status_code == 400


# ---------------------------------------------------------------- groups

def test_groups_membership_roles_and_fields(site: RestSite) -> None:
    team = site.id("team")
    group = site.get(f"group/{team}", "carol").json()
    assert group["name"] == "team" and group["_modelType"] == "group"
    assert {"addAllowed", "_addToGroupPolicy", "_accessLevel"} <= set(group)
    assert "access" not in group and "lowerName" not in group
    assert [g["name"] for g in site.get("group", "carol").json()] == ["team"]
    assert [u["login"] for u in site.get(f"group/{team}/member", "carol").json()] == \
        ["admin", "carol"]
    created = site.post("group", "alice", params={"name": "Band", "public": "true"}).json()
    gid = created["_id"]
    assert site.post("group", "bobby", params={"name": "band"}).status_code == 400
    invited = site.post(f"group/{gid}/invitation", "alice", params={"userId": site.id("bobby")})
    assert invited.status_code == 200
    pending = site.get(f"group/{gid}/invitation", "alice").json()
    assert [u["login"] for u in pending] == ["bobby"]
    assert site.post(f"group/{gid}/member", "bobby").status_code == 200
    assert "bobby" in [u["login"] for u in site.get(f"group/{gid}/member", "alice").json()]
    assert site.post(f"group/{gid}/moderator", "alice",
                     params={"userId": site.id("bobby")}).status_code == 200
    access = site.get(f"group/{gid}/access", "alice").json()
    assert {u["login"]: u["level"] for u in access["users"]}["bobby"] == 1
    assert site.put(f"group/{gid}", "bobby", params={"description": "mod"}).status_code == 200
    assert site.delete(f"group/{gid}", "bobby").status_code == 403
    assert site.delete(f"group/{gid}/moderator", "alice",
                       params={"userId": site.id("bobby")}).status_code == 200
    left = site.delete(f"group/{gid}/member", "bobby")
    assert left.status_code == 200
    assert "bobby" not in [u["login"] for u in site.get(f"group/{gid}/member",
                                                        "alice").json()]
    assert site.delete(f"group/{gid}", "alice").json()["message"] == "Deleted the group Band."


def test_inviting_a_user_who_asked_to_join_accepts_them(site: RestSite) -> None:
    """Girder's inviteUser: a request to join, then an invitation, is membership."""
    gid = site.post("group", "alice", params={"name": "Askers", "public": "true"}).json()["_id"]
    assert site.post(f"group/{gid}/member", "carol").status_code == 200  # a request
    assert site.get(f"group/{gid}", "alice").json()["requests"] == [site.id("carol")]
    assert "carol" not in [u["login"] for u in site.get(f"group/{gid}/member", "alice").json()]
    assert site.post(f"group/{gid}/invitation", "alice", params={
        "userId": site.id("carol"), "level": 1}).status_code == 200
    assert "carol" in [u["login"] for u in site.get(f"group/{gid}/member", "alice").json()]
    assert site.get(f"group/{gid}", "alice").json()["requests"] == []
    assert site.get(f"group/{gid}/invitation", "alice").json() == []
    access = site.get(f"group/{gid}/access", "alice").json()
    assert {u["login"]: u["level"] for u in access["users"]}["carol"] == 1
    assert site.delete(f"group/{gid}", "alice").status_code == 200


def test_group_search_by_text(ro_site: RestSite) -> None:
    assert [g["name"] for g in ro_site.get("group", "admin", params={"text": "TE"}).json()] \
        == ["team"]
    assert ro_site.get("group", "admin", params={"text": "zzz"}).json() == []
