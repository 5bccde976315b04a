"""Contract sections 1.1, 3.1 and 3.5: every route of the contract exists, and
the API description and page are generated from the route declarations."""

from __future__ import annotations

import re

from openapi_spec_validator import OpenAPIV2SpecValidator

from joist.gateways.http.resources import COLLECTORS
from joist.gateways.http.router import table_from
from tests.gateways.http.restsite import RestSite

# Contract sections 2 and 3.1, route by route (":x" = any wildcard).
CONTRACT_ROUTES = """
GET user | GET user/me | GET user/authentication | DELETE user/authentication | GET user/:id
GET user/:id/details | GET user/details | POST user | PUT user/:id | DELETE user/:id
PUT user/password | PUT user/:id/password | PUT user/password/temporary
GET user/password/temporary/:id | POST user/:id/otp | PUT user/:id/otp | DELETE user/:id/otp
PUT user/:id/verification | POST user/verification
GET collection | POST collection | GET collection/details | GET collection/:id
GET collection/:id/details | PUT collection/:id | DELETE collection/:id
GET collection/:id/access | PUT collection/:id/access | GET collection/:id/download
PUT collection/:id/metadata | DELETE collection/:id/metadata
GET folder | POST folder | GET folder/:id | PUT folder/:id | DELETE folder/:id
DELETE folder/:id/contents | GET folder/:id/details | GET folder/:id/access
PUT folder/:id/access | GET folder/:id/download | GET folder/:id/rootpath
GET folder/:id/position | POST folder/:id/copy | PUT folder/:id/metadata
DELETE folder/:id/metadata
GET item | POST item | GET item/:id | PUT item/:id | DELETE item/:id | GET item/:id/files
GET item/:id/download | GET item/:id/rootpath | GET item/:id/position | POST item/:id/copy
PUT item/:id/metadata | DELETE item/:id/metadata
POST file | POST file/chunk | GET file/offset | POST file/completion | DELETE file/upload/:id
PUT file/:id/contents | GET file/:id | PUT file/:id | DELETE file/:id | POST file/:id/copy
GET file/:id/download | GET file/:id/download/:name
GET resource/search | GET resource/lookup | GET resource/:id | GET resource/:id/path
PUT resource/:id/timestamp | GET resource/download | POST resource/download
PUT resource/move | POST resource/copy | DELETE resource
GET group | POST group | GET group/:id | PUT group/:id | DELETE group/:id
GET group/:id/access | GET group/:id/invitation | POST group/:id/invitation
GET group/:id/member | POST group/:id/member | DELETE group/:id/member
POST group/:id/moderator | DELETE group/:id/moderator | POST group/:id/admin
DELETE group/:id/admin
GET api_key | POST api_key | PUT api_key/:id | DELETE api_key/:id | POST api_key/token
GET token/current | GET token/session | DELETE token/session | GET token/scopes
GET assetstore | POST assetstore | GET assetstore/:id | PUT assetstore/:id
DELETE assetstore/:id | POST assetstore/:id/import | GET assetstore/:id/files
GET system/version | GET system/public_settings | GET system/setting | PUT system/setting
DELETE system/setting | GET system/configuration | GET system/plugins
GET system/plugin_static_files | GET system/access_flag | GET system/uploads
DELETE system/uploads | GET system/check | PUT system/check
GET system/setting/collection_creation_policy/access | PUT file/:id/move
"""


def _normal(path: str) -> str:
    return re.sub(r":\w+", ":x", path)


def test_every_contract_route_is_declared() -> None:
    table = table_from(COLLECTORS)
    declared = {(r.method, _normal(r.path)) for r in table.routes}
    expected = {(m, _normal(p)) for m, p in (
        entry.strip().split(" ", 1) for entry in CONTRACT_ROUTES.replace("\n", "|").split("|")
        if entry.strip())}
    assert len(expected) == 126
    assert sorted(expected - declared) == []


def test_describe_is_valid_swagger_generated_from_the_routes(ro_site: RestSite) -> None:
    reply = ro_site.get("describe")
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "application/json"
    doc = reply.json()
    OpenAPIV2SpecValidator(doc).validate()
    assert doc["swagger"] == "2.0"
    assert doc["info"]["title"] == "Joist REST API"
    assert doc["info"]["version"] == ro_site.get("system/version").json()["release"]
    assert doc["basePath"] == "/api/v1"
    assert doc["host"] == ro_site.server.url.split("://", 1)[1]
    assert set(doc["securityDefinitions"]) == {"Girder-Token", "basicAuth"}
    table = table_from(COLLECTORS)
    assert {t["name"] for t in doc["tags"]} == table.resources()
    operations = [(path, method, op) for path, ops in doc["paths"].items()
                  for method, op in ops.items()]
    assert len(operations) == len(table.routes)
    ids = [op["operationId"] for _, _, op in operations]
    assert len(ids) == len(set(ids))
    files = doc["paths"]["/item/{id}/files"]["get"]
    params = {p["name"]: p for p in files["parameters"]}
    assert params["id"]["in"] == "path" and params["id"]["required"] is True
    assert params["limit"]["type"] == "integer" and params["limit"]["default"] == 50
    listing = {p["name"]: p for p in doc["paths"]["/folder"]["get"]["parameters"]}
    assert listing["parentType"]["enum"] == ["folder", "user", "collection"]
    upload = {p["name"]: p for p in doc["paths"]["/file"]["post"]["parameters"]}
    assert upload["size"]["type"] == "integer" and upload["parentType"]["required"] is True
    assert any(p["in"] == "body" for p in upload.values())


def test_upload_description_names_no_internal_fields(ro_site: RestSite) -> None:
    text = ro_site.get("describe").text
    for internal in ("tempFile", "sha512state", "onCollision", "streaming"):
        assert internal not in text


def test_api_page_and_its_static_assets(ro_site: RestSite) -> None:
    for path in ("", "/"):
        page = ro_site.call("GET", path)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert "swagger-ui-bundle.js" in page.text and "/api/v1/describe" in page.text
    bare = __import__("requests").get(ro_site.server.url + "/api/v1", timeout=10)
    assert bare.status_code == 200 and "swagger" in bare.text
    assets = re.findall(r'(?:src|href)="/api/v1/([^"]+)"', page.text)
    assert len(assets) == 2
    for asset in assets:
        reply = ro_site.get(asset)
        assert reply.status_code == 200 and len(reply.content) > 1000, asset
        kind = "javascript" if asset.endswith(".js") else "css"
        assert kind in reply.headers["Content-Type"]
    for bad in ("static/swagger-ui/../../app.py", "static/swagger-ui/%2e%2e%2fapp.py",
                "static/swagger-ui/nope.js"):
        assert ro_site.get(bad).status_code == 404, bad
