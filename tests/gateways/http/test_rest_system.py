"""Contract sections 2.1, 3.1 (system, assetstore, the mail-less user routes)
and 10.1: version, settings, partial uploads, consistency check, assetstores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from joist.core import acl
from tests.gateways.http.restsite import RestSite
from tests.s3env import local_blobs_only


def test_version_passes_the_clients_gate(ro_site: RestSite) -> None:
    version = ro_site.get("system/version").json()
    release = version["release"]
    assert release.split(".", 2) >= ["2", "3"] and len(release.split(".")[0]) == 1
    assert version["serverStartDate"].endswith("+00:00")


def test_public_settings(ro_site: RestSite) -> None:
    public = ro_site.get("system/public_settings").json()
    assert public["core.brand_name"] == "Joist"
    assert public["core.registration_policy"] == "open"
    assert "core.cookie_lifetime" not in public


def test_settings_are_admin_only_and_validated(site: RestSite) -> None:
    assert site.get("system/setting", params={"key": "core.brand_name"}).status_code == 401
    assert site.get("system/setting", "alice", params={"key": "core.brand_name"}) \
        .status_code == 403
    assert site.get("system/setting", "admin", params={"key": "core.brand_name"}).json() == \
        "Joist"
    assert site.put("system/setting", "admin", params={"key": "core.brand_name",
                                                       "value": "Acme"}).json() is True
    listed = site.get("system/setting", "admin", params={
        "list": '["core.brand_name", "core.cookie_lifetime"]'}).json()
    assert listed == {"core.brand_name": "Acme", "core.cookie_lifetime": 180.0}
    many = site.put("system/setting", "admin", params={"list": json.dumps([
        {"key": "core.cookie_lifetime", "value": 7}, {"key": "core.brand_name",
                                                      "value": None}])})
    assert many.status_code == 200
    assert site.get("system/setting", "admin", params={"key": "core.brand_name"}).json() == \
        "Joist"
    unknown = site.put("system/setting", "admin", params={"key": "core.nope", "value": "1"})
    assert unknown.status_code == 400 and unknown.json()["field"] == "key"
    invalid = site.put("system/setting", "admin", params={"key": "core.cookie_lifetime",
                                                          "value": "-3"})
    assert invalid.status_code == 400
    assert site.delete("system/setting", "admin",
                       params={"key": "core.cookie_lifetime"}).text == "null"
    assert site.get("system/setting", "admin", params={
        "key": "core.cookie_lifetime"}).json() == 180.0


def test_setting_definitions_list_every_setting(site: RestSite) -> None:
    """GET system/setting/definitions (for the web client): what `joist setting
    list` shows, to administrators only, secrets masked."""
    from joist.core.stored_settings import DEFINITIONS, SECRET_MASK

    ro_site = site
    assert ro_site.get("system/setting/definitions", "alice").status_code == 403
    assert site.put("system/setting", "admin", params={
        "key": "core.smtp.password", "value": "hunter2-secret"}).status_code == 200
    listed = ro_site.get("system/setting/definitions", "admin").json()
    assert "hunter2-secret" not in json.dumps(listed)
    smtp = next(d for d in listed if d["key"] == "core.smtp.password")
    assert smtp["value"] == SECRET_MASK and smtp["secret"] is True
    assert site.delete("system/setting", "admin", params={"key": "core.smtp.password"}) \
        .status_code == 200
    assert [d["key"] for d in listed][:len(DEFINITIONS)] == list(DEFINITIONS)
    policy = next(d for d in listed if d["key"] == "core.registration_policy")
    assert policy["choices"] == ["open", "closed", "approve"] and policy["public"] is True
    assert policy["value"] == "open" and policy["fromEnvironment"] is False
    lifetime = next(d for d in listed if d["key"] == "core.cookie_lifetime")
    assert lifetime["default"] == 180.0 and lifetime["choices"] is None and lifetime["help"]


def test_partial_uploads_listing_and_cleanup(site: RestSite) -> None:
    site.app.services.settings.set("core.upload_minimum_chunk_size", 1)
    upload = site.post("file", "alice", params={
        "parentType": "folder", "parentId": site.id("public"), "name": "p", "size": 10,
    }, data=b"12345").json()
    listed = site.get("system/uploads", "admin").json()
    assert [u["_id"] for u in listed] == [upload["_id"]]
    assert not {"state", "tempFile", "streaming"} & set(listed[0])
    assert site.get("system/uploads", "alice").status_code == 403
    dropped = site.delete("system/uploads", "admin", params={"uploadId": upload["_id"]})
    assert [u["_id"] for u in dropped.json()] == [upload["_id"]]
    assert site.get("system/uploads", "admin").json() == []
    assert site.check() == []


def test_check_and_repair(site: RestSite) -> None:
    slow = {"mode": "slow"}
    clean = site.get("system/check", "admin", params=slow).json()
    assert (clean["ok"], clean["problems"]) == (True, [])
    item = site.find_file("data", "a.txt")["itemId"]
    site.app.store.items.update_one({"_id": __import__("bson").ObjectId(item)},
                                    {"$set": {"size": 1}})
    found = site.get("system/check", "admin", params=slow).json()
    assert found["ok"] is False and any("item-size" in p for p in found["problems"])
    fixed = site.put("system/check", "admin").json()
    assert fixed["ok"] is True and fixed["repaired"] >= 1
    assert site.check() == []
    assert site.put("system/check", "alice").status_code == 403


def test_misc_system_routes(ro_site: RestSite) -> None:
    assert ro_site.get("system/access_flag").json() == {}
    assert ro_site.get("system/plugins", "admin").json()["enabled"] == []
    assert ro_site.get("system/plugin_static_files").json() == {"css": [], "js": []}
    host = {"section": "server", "key": "host"}
    config = ro_site.get("system/configuration", "admin", params=host)
    assert (config.status_code, config.json()) == (200, "127.0.0.1")
    engine = ro_site.get("system/configuration", "admin",
                         params={"section": "database", "key": "engine"}).json()
    assert engine in ("sqlite", "mongo")
    # Only the deployment sections a client may see: no store URI, no secrets.
    for section, key in (("database", "uri"), ("nosuch", "host"), ("server", "nosuch")):
        refused = ro_site.get("system/configuration", "admin",
                              params={"section": section, "key": key})
        assert refused.status_code == 400 and refused.json()["type"] == "validation"
    missing = ro_site.get("system/configuration", "admin", params={"section": "server"})
    assert missing.status_code == 400 and "key" in missing.json()["message"]
    assert ro_site.get("system/configuration", "alice", params=host).status_code == 403


def test_system_check_modes(ro_site: RestSite) -> None:
    """GET system/check is public in basic mode (Girder); quick and slow are
    for site admins, and slow carries the consistency check."""
    basic = ro_site.get("system/check")
    assert basic.status_code == 200
    assert set(basic.json()) == {"bootTime", "currentTime", "processStartTime",
                                 "requestBase"}
    assert basic.json()["requestBase"] == ro_site.server.url.split("/api/v1")[0]
    assert ro_site.get("system/check", params={"mode": "quick"}).status_code == 401
    assert ro_site.get("system/check", "alice", params={"mode": "slow"}).status_code == 403
    quick = ro_site.get("system/check", "admin", params={"mode": "quick"}).json()
    assert quick["cpuCount"] >= 1 and "problems" not in quick
    bad = ro_site.get("system/check", params={"mode": "fast"})
    assert bad.status_code == 400 and "basic" in bad.json()["message"]


def test_collection_creation_policy_access(site: RestSite) -> None:
    site.app.services.settings.set("core.collection_create_policy", {
        "open": True, "users": [site.id("alice")], "groups": [site.id("team")]})
    reply = site.get("system/setting/collection_creation_policy/access", "admin").json()
    assert reply["open"] is True
    assert [u["login"] for u in reply["users"]] == ["alice"]
    assert [g["name"] for g in reply["groups"]] == ["team"]


# ---------------------------------------------------------------- assetstores

@local_blobs_only
def test_assetstore_administration(site: RestSite, tmp_path: Path) -> None:
    assert site.get("assetstore").status_code == 401
    assert site.get("assetstore", "alice").status_code == 403
    stores = site.get("assetstore", "admin").json()
    assert len(stores) == 1 and stores[0]["current"] is True and stores[0]["type"] == 0
    assert stores[0]["hasFiles"] is True and stores[0]["capacity"]["total"] > 0
    first = stores[0]["_id"]
    made = site.post("assetstore", "admin", params={
        "name": "second", "type": 0, "root": str(tmp_path / "second")})
    assert made.status_code == 200, made.text
    second = made.json()
    assert second["current"] is False and second["hasFiles"] is False
    assert site.post("assetstore", "admin", params={"name": "s3", "type": 2}).status_code \
        == 400
    assert site.post("assetstore", "admin", params={"name": "second", "type": 0,
                                                    "root": str(tmp_path / "x")}) \
        .status_code == 400
    switched = site.put(f"assetstore/{second['_id']}", "admin",
                        params={"name": "second", "current": "true"})
    assert switched.json()["current"] is True
    doc = site.upload("alice", site.id("public"), "into-second.bin", b"second store")
    files = site.get(f"assetstore/{second['_id']}/files", "admin").json()
    assert [f["_id"] for f in files] == [doc["_id"]]
    assert site.get(f"file/{doc['_id']}/download", "alice").content == b"second store"
    busy = site.delete(f"assetstore/{first}", "admin")
    assert busy.status_code == 400
    site.put(f"assetstore/{first}", "admin", params={"name": stores[0]["name"],
                                                     "current": "true"})
    site.delete(f"file/{doc['_id']}", "alice")
    assert site.delete(f"assetstore/{second['_id']}", "admin").status_code == 200
    assert len(site.get("assetstore", "admin").json()) == 1
    imported = site.post(f"assetstore/{first}/import", "admin", params={
        "importPath": str(tmp_path), "destinationId": site.id("public"),
        "destinationType": "folder"})
    assert imported.status_code == 400 and "not supported" in imported.json()["message"]
    assert site.check() == []


# ---------------------------------------------------------------- mail routes (no SMTP server)

def test_mail_routes_answer_without_waiting_for_smtp(site: RestSite) -> None:
    """Nothing listens where mail would go: the routes still answer Girder's
    messages at once (the outbox retries in the background)."""
    sent = site.put("user/password/temporary", params={"email": "ALICE@example.org"})
    assert sent.status_code == 200 and sent.json() == {"message": "Sent temporary access email."}
    verify = site.post("user/verification", params={"login": "alice@example.org"})
    assert verify.status_code == 200 and verify.json() == {"message": "Sent verification email."}
    unknown = site.put("user/password/temporary", params={"email": "nobody@example.org"})
    assert unknown.status_code == 400
    assert unknown.json()["message"] == "That email is not registered."


@pytest.mark.parametrize("scope", [acl.SCOPE_TEMPORARY, acl.SCOPE_USER_AUTH])
def test_temporary_access_tokens(site: RestSite, scope: str) -> None:
    bobby = site.app.store.users.find_one({"login": "bobby"})
    token = site.app.services.auth.tokens.create(bobby, days=1, scopes=[scope])
    reply = site.get(f"user/password/temporary/{bobby['_id']}",
                     params={"token": token["_id"]})
    if scope == acl.SCOPE_TEMPORARY:
        assert reply.status_code == 200 and reply.json()["user"]["login"] == "bobby"
    else:
        assert reply.status_code == 401
    other = site.get(f"user/password/temporary/{site.id('alice')}",
                     params={"token": token["_id"]})
    assert other.status_code == 401
