"""Issue 12 item 3: token scopes.

The scope table below is the specification: every REST route with the access
level and the token scope Girder's decorators give it (girder/api/v1/*.py,
``access.public/user/admin(scope=...)``; no scope there means a full login,
``core.user_auth``). A route the router serves but the table lacks fails the
test, so a new route cannot ship without a declared, reviewed scope.

Then every route runs under every kind of token through a real server whose
handlers are replaced by a probe, so the choke point is checked for all of them
without side effects; and the real handlers are run for the cases that matter
(the ``PUT user/:id`` escalation, API keys with scopes, girder-client).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import girder_client
import pytest
import requests

from joist.core.acl import Principal
from joist.core.auth import scopes
from joist.core.errors import AuthenticationError
from joist.gateways.http.app import Context, RestApp
from joist.gateways.http.resources import COLLECTORS
from joist.gateways.http.router import Route, RouteTable, table_from
from tests.gateways.http.restsite import RestSite, running_site
from tests.world import A_TXT

R, W, OWN, F = scopes.DATA_READ, scopes.DATA_WRITE, scopes.DATA_OWN, scopes.USER_AUTH
# Deliberate departures from Girder, each stricter or equal in effect:
#  * PUT collection/:id: Girder declares core.data.read (a read token could
#    rename a collection); here it is core.data.write like every other update.
#  * GET resource/search: Girder declares no scope (only a full login finds
#    anything); here it is core.data.read, since it only reads data.
#  * GET assetstore, assetstore/:id, assetstore/:id/files carry
#    core.assetstore.read, the scope Girder defines for them but never attaches.
#  * DELETE folder/:id/contents: Girder declares core.data.write; here it is
#    core.data.own like the other deletions of whole trees (the contract's rule).
#  * Joist-only routes (user/:id/sshkey) are credentials: full login.
TABLE = f"""
GET system/version public {F}
GET system/public_settings public {F}
GET system/endpoints public {F}
GET system/setting admin {scopes.SETTINGS_READ}
GET system/setting/definitions admin {scopes.SETTINGS_READ}
PUT system/setting admin {F}
DELETE system/setting admin {F}
GET system/uploads admin {scopes.PARTIAL_UPLOAD_READ}
GET system/mail admin {scopes.SETTINGS_READ}
DELETE system/mail admin {F}
GET system/ldap_server/status admin {F}
DELETE system/uploads admin {scopes.PARTIAL_UPLOAD_CLEAN}
GET system/access_flag public {F}
GET system/plugins admin {scopes.PLUGINS_READ}
PUT system/plugins admin {F}
GET system/check public {F}
PUT system/check admin {F}
GET system/configuration admin {scopes.SETTINGS_READ}
GET system/plugin_static_files public {F}
GET system/setting/collection_creation_policy/access admin {F}
GET user/authentication public {F}
DELETE user/authentication public {F}
GET user/me public {scopes.USER_INFO_READ}
GET user user {F}
GET user/details user {F}
GET user/:id public {scopes.USER_INFO_READ}
GET user/:id/details public {F}
POST user public {F}
PUT user/:id user {F}
DELETE user/:id user {F}
PUT user/password user {F}
PUT user/password/temporary public {F}
GET user/password/temporary/:id public {F}
PUT user/:id/verification public {F}
POST user/verification public {F}
PUT user/:id/password admin {F}
POST user/:id/otp user {F}
PUT user/:id/otp user {F}
GET user/:id/otp/qr user {F}
DELETE user/:id/otp user {F}
GET user/:id/sshkey user {F}
POST user/:id/sshkey user {F}
DELETE user/:id/sshkey/:keyId user {F}
GET token/current public {F}
GET token/session public {F}
DELETE token/session token {F}
GET token/scopes public {F}
GET api_key user {F}
POST api_key user {F}
PUT api_key/:id user {F}
DELETE api_key/:id user {F}
POST api_key/token public {F}
GET group public {F}
POST group user {F}
GET group/:id public {F}
PUT group/:id user {F}
DELETE group/:id user {F}
GET group/:id/access public {F}
GET group/:id/member public {F}
GET group/:id/invitation public {F}
POST group/:id/invitation user {F}
POST group/:id/member user {F}
DELETE group/:id/member user {F}
POST group/:id/moderator user {F}
DELETE group/:id/moderator user {F}
POST group/:id/admin user {F}
DELETE group/:id/admin user {F}
GET collection public {R}
GET collection/details public {R}
POST collection user {W}
GET collection/:id public {R}
GET collection/:id/details public {R}
PUT collection/:id user {W}
DELETE collection/:id user {OWN}
PUT collection/:id/metadata user {W}
DELETE collection/:id/metadata user {W}
GET collection/:id/access user {OWN}
PUT collection/:id/access user {OWN}
GET collection/:id/download public {R}
GET folder public {R}
GET folder/:id/position public {R}
POST folder user {W}
GET folder/:id public {R}
PUT folder/:id user {W}
DELETE folder/:id user {OWN}
DELETE folder/:id/contents user {OWN}
GET folder/:id/details public {R}
GET folder/:id/rootpath public {R}
POST folder/:id/copy user {W}
PUT folder/:id/metadata user {W}
DELETE folder/:id/metadata user {W}
GET folder/:id/access user {OWN}
PUT folder/:id/access user {OWN}
GET folder/:id/download public {R}
GET notification user {R}
GET notification/stream user {R}
GET item public {R}
GET item/:id/position public {R}
POST item user {W}
GET item/:id public {R}
PUT item/:id user {W}
DELETE item/:id user {W}
GET item/:id/files public {R}
GET item/:id/rootpath public {R}
POST item/:id/copy user {W}
PUT item/:id/metadata user {W}
DELETE item/:id/metadata user {W}
GET item/:id/download public {R}
POST file user {W}
POST file/chunk user {W}
GET file/offset user {W}
POST file/completion user {W}
DELETE file/upload/:id user {W}
GET file/:id public {R}
PUT file/:id user {W}
DELETE file/:id user {W}
PUT file/:id/contents user {W}
POST file/:id/copy user {W}
PUT file/:id/move admin {W}
GET file/:id/download public {R}
GET file/:id/download/:name public {R}
GET resource/lookup public {R}
GET resource/:id/path public {R}
GET resource/:id admin {F}
GET resource/search public {R}
GET resource/download public {R}
POST resource/download public {R}
PUT resource/move user {W}
POST resource/copy user {W}
DELETE resource user {OWN}
PUT resource/:id/timestamp admin {F}
GET assetstore admin {scopes.ASSETSTORES_READ}
GET assetstore/:id admin {scopes.ASSETSTORES_READ}
POST assetstore admin {F}
PUT assetstore/:id admin {F}
DELETE assetstore/:id admin {F}
GET assetstore/:id/files admin {scopes.ASSETSTORES_READ}
POST assetstore/:id/import admin {W}
"""


def _table() -> dict[str, tuple[str, str]]:
    rows: dict[str, tuple[str, str]] = {}
    for line in TABLE.strip().splitlines():
        method, path, access, scope = line.split()
        assert f"{method} {path}" not in rows, line
        rows[f"{method} {path}"] = (access, scope)
    return rows


EXPECTED = _table()


def _key(route: Route) -> str:
    return f"{route.method} {route.path}"


# ---------------------------------------------------------------- the rule (core)

def test_the_rule_of_what_satisfies_what() -> None:
    assert scopes.satisfies(None, R) and scopes.satisfies([F], scopes.SETTINGS_READ)
    assert scopes.satisfies([R, W], [R, W]) and scopes.satisfies([R], R)
    assert not scopes.satisfies([R], W) and not scopes.satisfies([R], [R, W])
    assert not scopes.satisfies([W, OWN], F)  # only a full login satisfies a full login
    assert not scopes.satisfies([], R)
    assert scopes.effective([R, F]) is None and scopes.effective([R]) == {R}
    message = scopes.refusal([W], F)
    assert message == "Invalid token scope. Required: core.user_auth. Allowed: core.data.write."


def test_a_scoped_principal_is_admitted_only_where_its_scopes_reach() -> None:
    admin_doc = {"_id": "a", "login": "root", "admin": True}
    setting = Principal.from_user(admin_doc, scopes=[scopes.SETTINGS_READ])
    assert not setting.is_site_admin
    assert setting.admit(scopes.SETTINGS_READ).is_site_admin
    assert setting.admit(F).is_anonymous and setting.admit(R).is_anonymous
    full = Principal.from_user(admin_doc, scopes=[F])
    assert full.scopes is None and full.admit(R) is full and full.is_site_admin


def test_the_catalog_lists_and_checks_key_scopes() -> None:
    catalog = scopes.ScopeCatalog()
    listing = catalog.listing()
    assert {s["id"] for s in listing["custom"]} == {R, W, OWN, scopes.USER_INFO_READ}
    assert {s["id"] for s in listing["adminCustom"]} == {
        scopes.SETTINGS_READ, scopes.PLUGINS_READ, scopes.ASSETSTORES_READ,
        scopes.PARTIAL_UPLOAD_READ, scopes.PARTIAL_UPLOAD_CLEAN}
    assert catalog.check_key_scopes([W, R, W], owner_admin=False) == [R, W]
    for bad, admin in (([F], True), (["core.nothing"], True),
                       ([scopes.SETTINGS_READ], False)):
        with pytest.raises(ValueError):
            catalog.check_key_scopes(bad, owner_admin=admin)
    # A plugin adds its own scope; a key may then carry it.
    catalog.register(scopes.ScopeInfo("jobs.read", "Read jobs", "See your jobs."))
    assert catalog.check_key_scopes(["jobs.read"], owner_admin=False) == ["jobs.read"]
    assert "jobs.read" in {s["id"] for s in catalog.listing()["custom"]}
    with pytest.raises(ValueError):
        catalog.register(scopes.ScopeInfo(R, "again", "a duplicate"))


# ---------------------------------------------------------------- the declarations

def test_every_route_declares_the_scope_of_the_table() -> None:
    table = table_from(COLLECTORS)
    served = {_key(r): (r.access, r.scope) for r in table.routes}
    assert len(served) == len(table.routes)  # no route declared twice
    missing = sorted(set(served) - set(EXPECTED))
    assert not missing, f"routes without an entry in the scope table: {missing}"
    gone = sorted(set(EXPECTED) - set(served))
    assert not gone, f"table rows for routes that no longer exist: {gone}"
    wrong = {k: (served[k], EXPECTED[k]) for k in served if served[k] != EXPECTED[k]}
    assert not wrong, f"(declared, expected) access and scope: {wrong}"
    catalog = scopes.ScopeCatalog()
    assert all(r.scope == F or r.scope in catalog for r in table.routes)


def test_a_route_without_a_scope_cannot_be_declared() -> None:
    from joist.gateways.http.router import RouteCollector
    with pytest.raises(TypeError, match="declare scope="):
        RouteCollector("thing").get(":id", "No scope.")


# ---------------------------------------------------------------- the choke point

# name -> (login, token scopes; None = no token, [F] = a full login)
TOKENS: dict[str, tuple[str | None, list[str] | None]] = {
    "anonymous": (None, None),
    "alice full login": ("alice", [F]),
    "alice data.read": ("alice", [R]),
    "alice data.write": ("alice", [W]),
    "alice data.own": ("alice", [OWN]),
    "alice user_info.read": ("alice", [scopes.USER_INFO_READ]),
    "alice data.read+write": ("alice", [R, W]),
    "alice no matching scope": ("alice", [scopes.EMAIL_VERIFICATION]),
    "alice setting.read (not an admin)": ("alice", [scopes.SETTINGS_READ]),
    "admin full login": ("admin", [F]),
    "admin data.read": ("admin", [R]),
    "admin data.write": ("admin", [W]),
    "admin setting.read": ("admin", [scopes.SETTINGS_READ]),
    "admin plugins.read": ("admin", [scopes.PLUGINS_READ]),
    "admin assetstore.read": ("admin", [scopes.ASSETSTORES_READ]),
    "admin partial_upload.read": ("admin", [scopes.PARTIAL_UPLOAD_READ]),
    "admin partial_upload.clean": ("admin", [scopes.PARTIAL_UPLOAD_CLEAN]),
    "admin no matching scope": ("admin", [scopes.EMAIL_VERIFICATION]),
}


def _probe(ctx: Context, **_: Any) -> dict[str, Any]:
    """Stands in for every handler: reports whom the route let in."""
    who = ctx.principal
    return {"user": who.login or None, "siteAdmin": who.is_site_admin}


def _rest_app(site: RestSite) -> RestApp:
    for prefix, application in site.server.wsgi.routes:
        if prefix == "/api/v1":
            assert isinstance(application, RestApp)
            return application
    raise AssertionError("no REST gateway")


@pytest.fixture(scope="module")
def probe_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestSite]:
    with running_site(tmp_path_factory.mktemp("scopes") / "data") as site:
        rest = _rest_app(site)
        real = rest.routes
        probes = RouteTable()
        for route in real.routes:  # path parameters are not bound: the probe ignores them
            probes.add(dataclasses.replace(route, handler=_probe, params=()))
        rest.routes = probes
        try:
            yield site
        finally:
            rest.routes = real


def _expected(access: str, scope: str, login: str | None,
              held: list[str] | None) -> tuple[int, str | None]:
    """Girder's outcome: (status, who the handler sees)."""
    admitted = login is not None and held is not None and (F in held or scope in held)
    if access == "token":  # any valid token (Girder's @access.token), whatever its scope
        return (401, None) if held is None else (200, login if admitted else None)
    if access == "public":
        return 200, login if admitted else None
    if not admitted:
        return 401, None
    if access == "admin" and login != "admin":
        return 403, None
    return 200, login


@pytest.mark.parametrize("name", list(TOKENS))
def test_every_route_under_every_token(probe_site: RestSite, name: str) -> None:
    login, held = TOKENS[name]
    headers = {}
    if login is not None:
        assert held is not None
        user = probe_site.world.users[login]
        token = probe_site.app.services.auth.tokens.create(user, days=1, scopes=held)
        headers["Girder-Token"] = token["_id"]
    wrong: list[str] = []
    with requests.Session() as session:
        for route in table_from(COLLECTORS).routes:
            access, scope = EXPECTED[_key(route)]
            path = "/".join(("5f" + "0" * 22) if t.startswith(":") else t
                            for t in (route.resource, *route.tokens))
            reply = session.request(route.method, probe_site.url(path), headers=headers,
                                    timeout=30)
            status, seen = _expected(access, scope, login, held)
            got = reply.json()
            got_seen = got.get("user") if reply.status_code == 200 else None
            if (reply.status_code, got_seen) != (status, seen):
                wrong.append(f"{_key(route)}: {reply.status_code} {got} != {status} {seen}")
            elif status == 200 and access == "admin":
                assert got["siteAdmin"] is True, route
            elif reply.status_code == 401 and login is not None:
                assert "Invalid token scope. Required: " in got["message"], got
    assert not wrong, "\n".join(wrong)


def test_core_refuses_account_changes_from_scoped_principals(probe_site: RestSite) -> None:
    """Whatever a gateway declares, core makes account and credential changes
    only for a full login."""
    services = probe_site.app.services
    alice = probe_site.app.store.get("user", probe_site.world.users["alice"]["_id"])
    scoped = Principal.from_user(alice, scopes=[R, W, OWN, scopes.USER_INFO_READ])
    for change in (
            lambda: services.users.update(scoped, alice, email="mallory@example.org"),
            lambda: services.users.change_password(scoped, alice, "x" * 12, old="y"),
            lambda: services.users.otp_enroll(scoped, alice),
            lambda: services.removal.delete_user(scoped, alice),
            lambda: services.auth.api_keys.create(scoped, name="escalate")):
        with pytest.raises(AuthenticationError, match="Invalid token scope"):
            change()
    assert probe_site.app.store.get("user", alice["_id"])["email"] == "alice@example.org"
    assert services.auth.api_keys.list(Principal.from_user(alice)) == []


# ---------------------------------------------------------------- real handlers

@pytest.fixture
def site(tmp_path: Path) -> Iterator[RestSite]:
    with running_site(tmp_path / "data") as rest:
        yield rest


def _key_token(site: RestSite, login: str, scope: list[str] | None) -> dict[str, Any]:
    import json
    key = site.post("api_key", login, params={"name": "k", "scope": json.dumps(scope)})
    assert key.status_code == 200, key.text
    reply = site.post("api_key/token", params={"key": key.json()["key"]})
    assert reply.status_code == 200, reply.text
    token: dict[str, Any] = reply.json()["authToken"]
    assert token["scope"] == sorted(scope or [F])
    return token


def test_a_data_token_cannot_touch_its_own_account(site: RestSite) -> None:
    alice = site.id("alice")
    for scope in ([W], [OWN], [R, W, OWN, scopes.USER_INFO_READ]):
        hdr = {"Girder-Token": _key_token(site, "alice", scope)["token"]}
        steal = site.put(f"user/{alice}", headers=hdr, params={
            "firstName": "A", "lastName": "B", "email": "mallory@example.org"})
        assert steal.status_code == 401, steal.text
        assert steal.json()["message"].startswith(
            "You must be logged in. Invalid token scope. Required: core.user_auth. Allowed: ")
        for method, path, params in (
                ("DELETE", f"user/{alice}", {}),
                ("POST", f"user/{alice}/sshkey", {"key": "ssh-ed25519 AAAA x"}),
                ("PUT", "user/password", {"old": "x", "new": "y" * 12}),
                ("POST", "api_key", {"name": "escalate"}),
                ("POST", f"user/{alice}/otp", {})):
            reply = site.call(method, path, headers=hdr, params=params)
            assert reply.status_code == 401, (scope, method, path, reply.text)
    me = site.get(f"user/{alice}", "admin").json()
    assert me["email"] == "alice@example.org" and me["firstName"] == "Alice"
    assert len(site.get("api_key", "alice").json()) == 3  # only the three made above
    # A full login may still change the account.
    changed = site.put(f"user/{alice}", "alice", params={
        "firstName": "Alice", "lastName": "Tester", "email": "alice2@example.org"})
    assert changed.status_code == 200 and changed.json()["email"] == "alice2@example.org"


def test_api_key_scopes_limit_the_tokens_they_mint(site: RestSite) -> None:
    data, private = site.id("data"), site.id("private")
    item = site.get("item", "alice", params={"folderId": data, "name": "a.txt"}).json()[0]

    read = {"Girder-Token": _key_token(site, "alice", [R])["token"]}
    assert site.get(f"item/{item['_id']}", headers=read).status_code == 200
    assert site.get(f"item/{item['_id']}/download", headers=read).content == A_TXT
    assert site.put(f"item/{item['_id']}", headers=read,
                    params={"name": "b.txt"}).status_code == 401
    assert site.get("user/me", headers=read).text == "null"  # user info is another scope

    write = {"Girder-Token": _key_token(site, "alice", [W])["token"]}
    made = site.post("folder", headers=write, params={"parentId": private, "name": "new"})
    assert made.status_code == 200, made.text
    assert site.put(f"item/{item['_id']}", headers=write,
                    params={"name": "b.txt"}).json()["name"] == "b.txt"
    no_read = site.get(f"item/{item['_id']}", headers=write)  # acts as anonymous there
    assert no_read.status_code == 401
    assert no_read.json()["message"].endswith(
        "Invalid token scope. Required: core.data.read. Allowed: core.data.write.")
    assert site.put(f"folder/{made.json()['_id']}/access", headers=write,
                    params={"access": '{"users": [], "groups": []}'}).status_code == 401
    assert site.delete(f"folder/{made.json()['_id']}", headers=write).status_code == 401

    own = {"Girder-Token": _key_token(site, "alice", [OWN])["token"]}
    mine = f'{{"users": [{{"id": "{site.id("alice")}", "level": 2}}], "groups": []}}'
    acl_set = site.put(f"folder/{made.json()['_id']}/access", headers=own,
                       params={"access": mine, "public": "true"})
    assert acl_set.status_code == 200, acl_set.text
    assert site.delete(f"folder/{made.json()['_id']}", headers=own).status_code == 200

    info = {"Girder-Token": _key_token(site, "alice", [scopes.USER_INFO_READ])["token"]}
    assert site.get("user/me", headers=info).json()["email"] == "alice@example.org"
    assert site.get(f"folder/{private}", headers=info).status_code == 401


def test_admin_scopes_are_for_admins_and_reach_only_their_routes(site: RestSite) -> None:
    refused = site.post("api_key", "alice", params={"scope": f'["{scopes.SETTINGS_READ}"]'})
    assert refused.status_code == 400
    hdr = {"Girder-Token": _key_token(site, "admin", [scopes.SETTINGS_READ])["token"]}
    brand = site.get("system/setting", headers=hdr, params={"key": "core.brand_name"})
    assert brand.status_code == 200 and isinstance(brand.json(), str)
    assert site.put("system/setting", headers=hdr, params={
        "key": "core.brand_name", "value": "Pwned"}).status_code == 401
    assert site.get("assetstore", headers=hdr).status_code == 401
    assert site.get("system/setting", "admin", params={"key": "core.brand_name"}).json() == \
        brand.json()
    uploads = {"Girder-Token": _key_token(site, "admin", [scopes.PARTIAL_UPLOAD_READ])["token"]}
    assert site.get("system/uploads", headers=uploads).status_code == 200
    assert site.delete("system/uploads", headers=uploads).status_code == 401
    # A user who lost admin keeps a key with an admin scope, but not the routes.
    lost = site.app.services.auth.tokens.create(site.world.users["alice"], days=1,
                                                scopes=[scopes.SETTINGS_READ])
    denied = site.get("system/setting", headers={"Girder-Token": lost["_id"]},
                      params={"key": "core.brand_name"})
    assert denied.status_code == 403 and denied.json()["message"] == \
        "Administrator access required."
    listed = site.get("token/scopes").json()
    assert {s["id"] for s in listed["adminCustom"]} >= {scopes.SETTINGS_READ}
    assert all(s["name"] and s["description"] for s in listed["custom"])


def test_girder_client_with_a_scoped_api_key(site: RestSite) -> None:
    key = site.post("api_key", "alice", params={"scope": f'["{R}"]'}).json()["key"]
    client = girder_client.GirderClient(apiUrl=site.api)
    assert client.authenticate(apiKey=key) == {"_id": site.id("alice")}
    files = list(client.listFile(site.id("multi")))
    assert [f["name"] for f in files] == ["x.bin", "y.bin"]
    with pytest.raises(girder_client.HttpError) as caught:
        client.createFolder(site.id("private"), "nope")
    assert caught.value.status == 401
    with pytest.raises(girder_client.HttpError) as account:
        client.put(f"user/{site.id('alice')}", parameters={
            "firstName": "A", "lastName": "B", "email": "mallory@example.org"})
    assert account.value.status == 401
