"""Who may do what over WebDAV: logins (password, TOTP appended, API key,
Girder-Token), anonymous access, throttling, and ACL denials."""

from __future__ import annotations

import time
from collections.abc import Callable

import pyotp
import pytest
import requests

from joist.core.acl import Principal
from tests.gateways.webdav.conftest import DavSite
from tests.gateways.webdav.davclient import Dav
from tests.world import PASSWORD, README, REPORT

DATA = "/user/alice/Private/data"


def test_basic_login_and_wrong_password(site: DavSite, dav: Callable[..., Dav]) -> None:
    assert dav("alice").request("GET", f"{DATA}/a.txt").status_code == 200
    wrong = Dav(site.base, ("alice", "not the password"))
    resp = wrong.request("PROPFIND", "/", headers={"Depth": "0"})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith('Basic realm="Joist"')
    assert "not the password" not in resp.text


def test_malformed_authorization_is_challenged(site: DavSite) -> None:
    for header in ("Basic !!!", "Basic", "Basic " + "bm9jb2xvbg==", "Bearer xyz"):
        resp = requests.request("PROPFIND", site.base + "/", timeout=30,
                                headers={"Authorization": header, "Depth": "0"})
        assert resp.status_code in (400, 401), (header, resp.status_code)


def test_totp_code_appended_to_password(site: DavSite) -> None:
    svc, user = site.app.services, site.world.users["bobby"]
    uri = svc.users.otp_enroll(Principal.from_user(user), user)
    totp = pyotp.parse_uri(uri)
    svc.users.otp_confirm(Principal.from_user(user), user, totp.now())
    # The confirming code's time step is used up; the next step is accepted.
    code = totp.at(time.time() + totp.interval)
    without = Dav(site.base, ("bobby", PASSWORD))
    assert without.propfind("/user/bobby", "0").status_code == 401
    client = Dav(site.base, ("bobby", PASSWORD + code))
    for _ in range(3):  # the same header on every request, as clients send it
        assert client.propfind("/user/bobby", "0").status_code == 207


def test_api_key_as_password(site: DavSite) -> None:
    user = site.world.users["carol"]
    key = site.app.services.auth.api_keys.create(Principal.from_user(user), name="dav")
    client = Dav(site.base, ("carol", key["key"]))
    assert client.request("GET", "/collection/shared/docs/report.txt").content == REPORT


def test_girder_token_header(site: DavSite) -> None:
    token = site.app.services.auth.login_token(site.world.users["carol"])
    client = Dav(site.base, headers={"Girder-Token": token["_id"]})
    assert client.request("GET", "/collection/shared/docs/report.txt").content == REPORT
    bad = Dav(site.base, headers={"Girder-Token": "x" * 64})
    assert bad.propfind("/", "0").status_code == 401


def test_anonymous_is_asked_to_log_in_by_default(dav: Callable[..., Dav]) -> None:
    anon = dav(None)
    for method, path in (("PROPFIND", "/"), ("PROPFIND", "/user/alice/Public/"),
                         ("GET", "/user/alice/Public/readme.txt"),
                         ("GET", "/collection/secret/"), ("GET", "/no/such/path")):
        resp = anon.request(method, path, headers={"Depth": "1"})
        assert resp.status_code == 401, (method, path, resp.status_code)
        assert resp.headers["WWW-Authenticate"].startswith('Basic realm="Joist"')


def test_anonymous_read_setting_serves_public_and_challenges_the_rest(
        site: DavSite, dav: Callable[..., Dav]) -> None:
    site.app.services.settings.set("joist.webdav.anonymous_read", True)
    anon = dav(None)
    assert anon.request("GET", "/user/alice/Public/readme.txt").content == README
    assert anon.propfind("/", "1").status_code == 207
    # Private, secret and missing answer alike: a challenge, nothing leaks.
    answers = []
    for method, path in (("PROPFIND", "/user/alice/Private/"), ("GET", "/collection/secret/"),
                         ("GET", "/collection/secret/vault/hidden.txt"),
                         ("PROPFIND", "/collection/nothing/"), ("GET", "/user/alice/nope.txt")):
        resp = anon.request(method, path, headers={"Depth": "1"})
        assert resp.status_code == 401, (method, path, resp.status_code)
        assert "WWW-Authenticate" in resp.headers
        answers.append(resp.text)
    assert len(set(answers)) == 1
    # The same client, once logged in, gets the private data.
    assert dav("alice").propfind("/user/alice/Private/", "1").status_code == 207


def test_anonymous_reads_public_and_is_challenged_on_writes(
        site: DavSite, dav: Callable[..., Dav]) -> None:
    site.app.services.settings.set("joist.webdav.anonymous_read", True)
    anon = dav(None)
    assert anon.request("GET", "/user/alice/Public/readme.txt").content == README
    for method, path in (("PUT", "/user/alice/Public/new.txt"), ("MKCOL", "/user/alice/x"),
                         ("DELETE", "/user/alice/Public/readme.txt")):
        resp = anon.request(method, path, data=b"x" if method == "PUT" else None)
        assert resp.status_code == 401, method
        assert "WWW-Authenticate" in resp.headers
    assert anon.request("GET", "/user/alice/Public/readme.txt").content == README


def test_anonymous_access_can_be_disabled(site: DavSite, dav: Callable[..., Dav]) -> None:
    site.app.services.settings.set("joist.webdav.anonymous_read", True)
    site.app.services.settings.set("joist.anonymous_access", False)  # overrides it
    resp = dav(None).request("GET", "/user/alice/Public/readme.txt")
    assert resp.status_code == 401 and "WWW-Authenticate" in resp.headers
    assert dav("bobby").request("GET", "/user/alice/Public/readme.txt").content == README


def test_failed_logins_are_throttled(site: DavSite) -> None:
    site.app.services.settings.set("joist.throttle.max_failures", 2)
    wrong = Dav(site.base, ("bobby", "bad"))
    statuses = [wrong.propfind("/", "0").status_code for _ in range(4)]
    assert statuses[:2] == [401, 401]
    assert statuses[-1] == 429
    resp = Dav(site.base, ("bobby", PASSWORD)).propfind("/", "0")
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0


@pytest.mark.parametrize("method", ["PUT", "DELETE", "MKCOL", "PROPPATCH", "LOCK"])
def test_read_only_grant_refuses_writes(dav: Callable[..., Dav], method: str) -> None:
    carol = dav("carol")  # READ on /collection/shared through the group
    target = "/collection/shared/docs/report.txt" if method != "MKCOL" \
        else "/collection/shared/docs/sub"
    body = {"PUT": b"x", "PROPPATCH": PROPPATCH_BODY, "LOCK": LOCK_BODY}.get(method)
    resp = carol.request(method, target, data=body)
    if method == "PROPPATCH":  # RFC 4918: the status of each property, in a 207
        assert resp.status_code == 207 and "HTTP/1.1 403" in resp.text, resp.text
    else:
        assert resp.status_code == 403, (method, resp.status_code, resp.text)
    assert carol.request("GET", "/collection/shared/docs/report.txt").content == REPORT
    names = carol.responses("/collection/shared/docs/")
    assert sorted(h.rsplit("/", 1)[-1] for h in names if h.endswith(".txt")) == ["report.txt"]


def test_invisible_paths_answer_like_missing_ones(dav: Callable[..., Dav]) -> None:
    bob = dav("bobby")
    for path in ("/collection/secret/vault/hidden.txt", "/collection/secret/nope.txt"):
        statuses = {m: bob.request(m, path, headers={"Depth": "0"}).status_code
                    for m in ("GET", "HEAD", "PROPFIND")}
        assert set(statuses.values()) == {404}, (path, statuses)
    moved = bob.request("MOVE", "/collection/secret/vault/hidden.txt",
                        headers={"Destination": bob.url("/user/bobby/Private/h.txt")})
    assert moved.status_code == 404
    assert dav("admin").request("GET", "/collection/secret/vault/hidden.txt").status_code == 200


def test_move_across_folders_needs_write_on_both(site: DavSite, dav: Callable[..., Dav]) -> None:
    admin = site.world.principal("admin")
    for model in ("collection", "folder"):
        doc = site.world.docs["shared" if model == "collection" else "docs"]
        site.app.services.access.grant(admin, model, doc, "user",
                                       site.world.users["bobby"]["_id"], 0)
    bob = dav("bobby")
    resp = bob.request("COPY", "/collection/shared/docs/report.txt",
                       headers={"Destination": bob.url("/user/bobby/Private/r.txt")})
    assert resp.status_code == 201
    assert bob.request("GET", "/user/bobby/Private/r.txt").content == REPORT
    resp = bob.request("MOVE", "/user/bobby/Private/r.txt",
                       headers={"Destination": bob.url("/collection/shared/docs/r.txt")})
    assert resp.status_code == 403
    assert bob.request("GET", "/user/bobby/Private/r.txt").status_code == 200


PROPPATCH_BODY = (b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" '
                  b'xmlns:j="urn:joist:meta"><D:set><D:prop><j:k>v</j:k></D:prop></D:set>'
                  b'</D:propertyupdate>')
LOCK_BODY = (b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
             b'</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>')


def test_browser_listing_of_a_collection(site: DavSite, dav: Callable[..., Dav]) -> None:
    site.app.services.settings.set("joist.webdav.anonymous_read", True)
    page = dav("alice").request("GET", f"{DATA}/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "a.txt" in page.text and "odd" in page.text
    assert dav("bobby").request("GET", f"{DATA}/").status_code == 404
    anonymous = dav(None).request("GET", "/user/alice/")
    assert "Public" in anonymous.text and "Private" not in anonymous.text
