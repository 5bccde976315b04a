"""Contract section 1.5: token sources and precedence, scopes, Basic login with
OTP, API keys, logout and session tokens; secrets never reach the logs."""

from __future__ import annotations

import base64
import io
import logging
import time
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
import requests

from tests.gateways.http.restsite import PASSWORD, RestSite


def _private_file(site: RestSite) -> dict:  # type: ignore[type-arg]
    return site.find_file("data", "a.txt")


# ---------------------------------------------------------------- token sources

def test_query_token_beats_header_and_empty_header_is_anonymous(ro_site: RestSite) -> None:
    alice, bobby = ro_site.token("alice"), ro_site.token("bobby")
    both = ro_site.get("user/me", params={"token": alice}, headers={"Girder-Token": bobby})
    assert both.json()["login"] == "alice"
    assert ro_site.get("user/me", headers={"Girder-Token": bobby}).json()["login"] == "bobby"
    empty = ro_site.get("user/me", headers={"Girder-Token": ""})
    assert empty.status_code == 200 and empty.text == "null"


def test_unknown_token_is_silently_anonymous(ro_site: RestSite) -> None:
    junk = {"Girder-Token": "x" * 64}
    assert ro_site.get(f"folder/{ro_site.id('public')}", headers=junk).status_code == 200
    assert ro_site.get("user", headers=junk).status_code == 401


def test_cookie_only_on_download_routes(ro_site: RestSite) -> None:
    file = _private_file(ro_site)
    cookie = {"girderToken": ro_site.token("alice")}
    assert ro_site.get(f"file/{file['_id']}/download").status_code == 401
    download = ro_site.get(f"file/{file['_id']}/download", cookies=cookie)
    assert download.status_code == 200 and download.content.startswith(b"alpha")
    named = ro_site.get(f"file/{file['_id']}/download/whatever.txt", cookies=cookie)
    assert named.status_code == 200
    item = ro_site.get(f"item/{file['itemId']}/download", cookies=cookie)
    assert item.status_code == 200
    folder = ro_site.get(f"folder/{ro_site.id('data')}/download", cookies=cookie)
    assert folder.status_code == 200
    # not a download route: the cookie is not a credential there
    assert ro_site.get(f"file/{file['_id']}", cookies=cookie).status_code == 401
    assert ro_site.get("user/me", cookies=cookie).text == "null"


# ---------------------------------------------------------------- Basic login

def test_basic_login_answers_user_token_and_cookie(ro_site: RestSite) -> None:
    reply = requests.get(ro_site.url("user/authentication"), auth=("alice", PASSWORD),
                         timeout=10)
    assert reply.status_code == 200
    body = reply.json()
    assert body["message"] == "Login succeeded."
    assert body["user"]["login"] == "alice" and body["user"]["_modelType"] == "user"
    assert body["user"]["email"] == "alice@example.org"  # seen by itself (ADMIN level)
    token = body["authToken"]
    assert len(token["token"]) == 64 and token["scope"] == ["core.user_auth"]
    assert token["expires"].endswith("+00:00")
    cookie = reply.headers["Set-Cookie"]
    assert cookie.startswith(f"girderToken={token['token']};")
    assert "Path=/" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    me = ro_site.get("user/me", headers={"Girder-Token": token["token"]})
    assert me.json()["login"] == "alice"


def test_basic_login_by_email_and_girder_authorization_header(ro_site: RestSite) -> None:
    raw = base64.b64encode(f"ALICE@example.org:{PASSWORD}".encode()).decode()
    reply = ro_site.get("user/authentication", headers={"Girder-Authorization": f"Basic {raw}"})
    assert reply.status_code == 200 and reply.json()["user"]["login"] == "alice"


def test_password_is_split_at_the_first_colon(site: RestSite) -> None:
    site.put(f"user/{site.id('bobby')}/password", "admin", params={"password": "a:b:c:dd"})
    ok = requests.get(site.url("user/authentication"), auth=("bobby", "a:b:c:dd"), timeout=10)
    assert ok.status_code == 200


def test_existing_token_is_returned_without_checking_basic(ro_site: RestSite) -> None:
    token = ro_site.token("carol")
    reply = ro_site.get("user/authentication", headers={"Girder-Token": token})
    assert reply.status_code == 200
    assert reply.json()["authToken"]["token"] == token


@pytest.mark.parametrize(("headers", "message"), [
    ({}, "Use HTTP Basic Authentication"),
    ({"Authorization": "Basic !!!notbase64"}, "Invalid HTTP Authorization header"),
    ({"Authorization": "Basic " + base64.b64encode(b"nocolon").decode()},
     "Invalid HTTP Authorization header"),
    ({"Authorization": "Basic " + base64.b64encode(b"alice:wrong").decode()}, "Login failed."),
    ({"Authorization": "Basic " + base64.b64encode(b"ghost:wrong").decode()}, "Login failed."),
])
def test_login_failures_are_401(site: RestSite, headers: dict[str, str], message: str) -> None:
    reply = site.get("user/authentication", headers=headers)
    assert reply.status_code == 401, reply.text
    assert reply.json() == {"message": message, "type": "access"}
    assert "Set-Cookie" not in reply.headers


def test_disabled_account_and_disabled_password_login(site: RestSite) -> None:
    site.put(f"user/{site.id('bobby')}", "admin", params={
        "firstName": "Bobby", "lastName": "Tester", "email": "bobby@example.org",
        "status": "disabled"})
    reply = requests.get(site.url("user/authentication"), auth=("bobby", PASSWORD), timeout=10)
    assert reply.status_code == 401 and reply.json()["extra"] == "disabled"
    site.app.services.settings.set("core.enable_password_login", False)
    reply = requests.get(site.url("user/authentication"), auth=("alice", PASSWORD), timeout=10)
    assert reply.status_code == 400


def test_repeated_failures_are_throttled(site: RestSite) -> None:
    for _ in range(5):
        assert requests.get(site.url("user/authentication"), auth=("carol", "bad"),
                            timeout=10).status_code == 401
    reply = requests.get(site.url("user/authentication"), auth=("carol", PASSWORD), timeout=10)
    assert reply.status_code == 429 and reply.json()["type"] == "access"
    assert reply.json()["extra"]["retryAfter"] > 0


def test_otp_enrolment_and_login_with_the_girder_otp_header(site: RestSite) -> None:
    carol = site.id("carol")
    uri = site.post(f"user/{carol}/otp", "carol").json()["totpUri"]
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    totp = pyotp.TOTP(secret)
    now = time.time()
    missing = site.put(f"user/{carol}/otp", "carol")
    assert missing.status_code == 400
    assert site.put(f"user/{carol}/otp", "carol",
                    headers={"Girder-OTP": totp.at(now)}).status_code == 200
    assert site.get(f"user/{carol}", "carol").json()["otp"] is True
    auth = ("carol", PASSWORD)
    url = site.url("user/authentication")
    assert requests.get(url, auth=auth, timeout=10).status_code == 401
    wrong = requests.get(url, auth=auth, headers={"Girder-OTP": "000000"}, timeout=10)
    assert wrong.status_code == 401
    # the code just used is refused as a replay; the next step's code passes
    assert requests.get(url, auth=auth, headers={"Girder-OTP": totp.at(now)},
                        timeout=10).status_code == 401
    ok = requests.get(url, auth=auth, headers={"Girder-OTP": totp.at(now + 30)}, timeout=10)
    assert ok.status_code == 200, ok.text
    # a code sent for a user without OTP is refused too
    bobby = requests.get(url, auth=("bobby", PASSWORD), headers={"Girder-OTP": "123456"},
                         timeout=10)
    assert bobby.status_code == 401
    assert site.delete(f"user/{carol}/otp", "carol").status_code == 200
    assert requests.get(url, auth=auth, timeout=10).status_code == 200


def test_otp_qr_code_of_the_pending_enrolment(site: RestSite) -> None:
    """GET user/:id/otp/qr: the pending otpauth URI as an SVG QR code (segno),
    for the web client; never another user's, never once enrolment is done."""
    import segno

    bobby = site.id("bobby")
    assert site.get(f"user/{bobby}/otp/qr", "bobby").status_code == 400  # nothing pending
    uri = site.post(f"user/{bobby}/otp", "bobby").json()["totpUri"]
    reply = site.get(f"user/{bobby}/otp/qr", "bobby")
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "image/svg+xml"
    assert reply.headers["Cache-Control"] == "no-store"
    # Encodes exactly that URI (the same secret): the very SVG segno makes of it.
    expected = io.BytesIO()
    segno.make(uri, error="m").save(expected, kind="svg", scale=5, border=4, xmldecl=False,
                                    light="#fff", title="Scan with your authenticator app")
    assert reply.content.startswith(b"<svg") and reply.content == expected.getvalue()
    again = site.get(f"user/{bobby}/otp/qr", "bobby").content
    assert again == reply.content  # shown again without a new secret
    assert site.get(f"user/{bobby}/otp/qr", "alice").status_code == 403
    assert site.get(f"user/{bobby}/otp/qr").status_code == 401
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    assert site.put(f"user/{bobby}/otp", "bobby",
                    headers={"Girder-OTP": pyotp.TOTP(secret).now()}).status_code == 200
    done = site.get(f"user/{bobby}/otp/qr", "bobby")
    assert done.status_code == 400 and "already" in done.json()["message"]
    assert site.delete(f"user/{bobby}/otp", "bobby").status_code == 200


# ---------------------------------------------------------------- logout, sessions

def test_logout_deletes_the_token_and_clears_the_cookie(site: RestSite) -> None:
    token = site.token("alice")
    reply = site.delete("user/authentication", "alice")
    assert reply.json() == {"message": "Logged out."}
    assert "Max-Age=0" in reply.headers["Set-Cookie"]
    assert site.get("user/me", headers={"Girder-Token": token}).text == "null"


def test_token_session_current_and_scopes(site: RestSite) -> None:
    anonymous = site.get("token/session").json()
    assert len(anonymous["token"]) == 64
    current = site.get("token/current", headers={"Girder-Token": anonymous["token"]}).json()
    assert current["scope"] == ["core.anonymous_session"] and "userId" not in current
    mine = site.get("token/current", "alice").json()
    assert mine["_id"] == site.token("alice")
    same = site.get("token/session", "alice").json()
    assert same["token"] == site.token("alice")
    scopes = site.get("token/scopes").json()
    assert {s["id"] for s in scopes["custom"]} >= {"core.data.read", "core.data.write"}
    assert site.delete("token/session", "alice").status_code == 200
    assert site.get("user/me", "alice").text == "null"


# ---------------------------------------------------------------- API keys, scopes

def _key(site: RestSite, login: str, **params: object) -> dict:  # type: ignore[type-arg]
    reply = site.post("api_key", login, params=params)
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def test_api_key_token_full_scope(site: RestSite) -> None:
    key = _key(site, "alice", name="laptop")
    assert len(key["key"]) == 40 and key["scope"] is None and key["_modelType"] == "api_key"
    reply = site.post("api_key/token", params={"key": key["key"]})
    assert reply.status_code == 200 and "Set-Cookie" not in reply.headers
    body = reply.json()
    assert body["user"] == {"_id": site.id("alice")}
    token = body["authToken"]["token"]
    created = site.post("folder", headers={"Girder-Token": token},
                        params={"parentId": site.id("public"), "name": "via key"})
    assert created.status_code == 200
    listed = site.get("api_key", "alice").json()
    assert listed[0]["lastUse"] is not None


def test_api_key_token_lifetime_is_capped(site: RestSite) -> None:
    key = _key(site, "alice", tokenDuration=1)
    token = site.post("api_key/token", params={"key": key["key"], "duration": 30}).json()
    current = site.get("token/current", headers={"Girder-Token": token["authToken"]["token"]})
    doc = current.json()
    from datetime import datetime
    life = datetime.fromisoformat(doc["expires"]) - datetime.fromisoformat(doc["created"])
    assert 0.99 < life.total_seconds() / 86400 < 1.01


def test_invalid_inactive_and_disabled_api_keys_are_400(site: RestSite) -> None:
    assert site.post("api_key/token", params={"key": "n" * 40}).json()["message"] == \
        "Invalid API key."
    key = _key(site, "alice", active="false")
    assert site.post("api_key/token", params={"key": key["key"]}).status_code == 400
    live = _key(site, "alice")
    site.app.services.settings.set("core.api_keys", False)
    assert site.post("api_key/token", params={"key": live["key"]}).status_code == 400


def test_scoped_token_acts_only_within_its_scopes(site: RestSite) -> None:
    key = _key(site, "alice", scope='["core.data.read"]')
    token = site.post("api_key/token", params={"key": key["key"]}).json()["authToken"]
    assert token["scope"] == ["core.data.read"]
    headers = {"Girder-Token": token["token"]}
    assert site.get(f"folder/{site.id('private')}", headers=headers).status_code == 200
    write = site.post("folder", headers=headers,
                      params={"parentId": site.id("public"), "name": "nope"})
    assert write.status_code == 401  # outside its scope the token is anonymous
    assert site.get("user/me", headers=headers).text == "null"
    assert site.get("user", headers=headers).status_code == 401
    own = site.delete(f"folder/{site.id('data')}", headers=headers)
    assert own.status_code == 401
    assert site.get(f"folder/{site.id('data')}", "alice").status_code == 200


def test_api_key_management(site: RestSite) -> None:
    key = _key(site, "alice", name="one")
    changed = site.put(f"api_key/{key['_id']}", "alice", params={"name": "two",
                                                                "active": "false"})
    assert changed.json()["name"] == "two" and changed.json()["active"] is False
    assert site.get("api_key", "bobby").json() == []
    others = site.get("api_key", "bobby", params={"userId": site.id("alice")})
    assert others.status_code == 403
    assert len(site.get("api_key", "admin", params={"userId": site.id("alice")}).json()) == 1
    bad_scope = site.post("api_key", "alice", params={"scope": '["core.nothing"]'})
    assert bad_scope.status_code == 400
    assert site.delete(f"api_key/{key['_id']}", "alice").status_code == 200
    assert site.get("api_key", "alice").json() == []


# ---------------------------------------------------------------- secrets and logs

def test_secrets_never_reach_the_logs(site: RestSite, caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cret-" + "q" * 20
    with caplog.at_level(logging.DEBUG):
        requests.get(site.url("user/authentication"), auth=("alice", secret), timeout=10)
        token = site.token("alice")
        site.get("user/me", params={"token": token})
        key = _key(site, "alice")
        site.post("api_key/token", params={"key": key["key"]})
    # the server's records only (the client's urllib3 logs its own URLs)
    server = [r for r in caplog.records if not r.name.startswith("urllib3")]
    assert server  # something was logged (a failed login at least)
    text = "\n".join(r.getMessage() for r in server)
    for value in (secret, token, key["key"], PASSWORD):
        assert value not in text
