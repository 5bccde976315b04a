"""Issue 14 part A: the parameters Girder declares do what Girder's do, through
``requests`` against a real server: paging sort, group ``exact`` and
``addAllowed``, public group reads, the ``Girder-OTP`` header, email
verification, token-only ``DELETE token/session``, ``tokenDuration``."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
import requests

from tests.gateways.http.restsite import RestSite
from tests.world import PASSWORD


def _names(reply: requests.Response, key: str = "login") -> list[str]:
    assert reply.status_code == 200, reply.text
    return [doc[key] for doc in reply.json()]


def _bad_sort(reply: requests.Response) -> None:
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert body["type"] == "validation" and body["field"] == "sort"
    assert "Invalid sort field" in body["message"]


# ---------------------------------------------------------------- paging sort

def test_group_members_and_invitations_sort(site: RestSite) -> None:
    team = site.id("team")  # members: admin (creator) and carol
    by_login = {"sort": "login"}
    assert _names(site.get(f"group/{team}/member", "admin", params=by_login)) == \
        ["admin", "carol"]
    assert _names(site.get(f"group/{team}/member", "admin",
                           params={**by_login, "sortdir": -1})) == ["carol", "admin"]
    assert _names(site.get(f"group/{team}/member", "admin",
                           params={"sort": "firstName", "sortdir": -1, "limit": 1})) == \
        ["carol"]
    _bad_sort(site.get(f"group/{team}/member", "admin", params={"sort": "salt"}))
    for login in ("bobby", "alice"):
        invited = site.post(f"group/{team}/invitation", "admin",
                            data={"userId": site.id(login)})  # userId as formData
        assert invited.status_code == 200, invited.text
    # Public as in Girder: anyone who can read the group lists its invitations.
    assert _names(site.get(f"group/{team}/invitation", params=by_login)) == \
        ["alice", "bobby"]
    assert _names(site.get(f"group/{team}/invitation", "carol",
                           params={**by_login, "sortdir": -1})) == ["bobby", "alice"]
    _bad_sort(site.get(f"group/{team}/invitation", "admin", params={"sort": "groupInvites"}))
    bad_dir = site.get(f"group/{team}/invitation", "admin", params={"sortdir": 2})
    assert bad_dir.status_code == 400


def test_assetstore_listings_sort(site: RestSite, tmp_path: Path) -> None:
    made = site.post("assetstore", "admin", data={
        "name": "zeta store", "type": 0, "root": str(tmp_path / "zeta")})
    assert made.status_code == 200, made.text
    names = _names(site.get("assetstore", "admin", params={"sort": "name"}), "name")
    assert names == sorted(names) and "zeta store" in names and len(names) >= 2
    assert _names(site.get("assetstore", "admin", params={"sort": "name", "sortdir": -1}),
                  "name") == names[::-1]
    _bad_sort(site.get("assetstore", "admin", params={"sort": "secret"}))
    current = next(s for s in site.get("assetstore", "admin").json() if s["current"])
    files = f"assetstore/{current['_id']}/files"
    by_name = _names(site.get(files, "admin", params={"sort": "name", "limit": 0}), "name")
    assert len(by_name) >= 5 and by_name == sorted(by_name)
    assert _names(site.get(files, "admin", params={"sort": "name", "sortdir": -1,
                                                   "limit": 0}), "name") == by_name[::-1]
    ids = _names(site.get(files, "admin", params={"limit": 0}), "_id")  # Girder's default
    assert ids == sorted(ids)
    _bad_sort(site.get(files, "admin", params={"sort": "size"}))


def test_other_paged_routes_refuse_unknown_sort_fields(ro_site: RestSite) -> None:
    for path, login in (("user", "admin"), ("collection", "admin"), ("group", "admin"),
                        ("api_key", "admin"),
                        (f"folder?parentType=user&parentId={ro_site.id('alice')}", "alice"),
                        (f"item?folderId={ro_site.id('data')}", "alice")):
        _bad_sort(ro_site.get(path, login, params={"sort": "nosuchfield"}))
    users = _names(ro_site.get("user", "admin", params={"sort": "login", "sortdir": -1}))
    assert users == sorted(users, reverse=True)


# ---------------------------------------------------------------- groups

def test_group_exact_name_match(site: RestSite) -> None:
    for name, public in (("teammates", True), ("hush", False)):
        assert site.post("group", "admin", data={"name": name, "public": public}).ok
    assert set(_names(site.get("group", "admin", params={"text": "team"}), "name")) == \
        {"team", "teammates"}
    exact = {"text": "team", "exact": "true"}
    assert _names(site.get("group", "admin", params=exact), "name") == ["team"]
    assert _names(site.get("group", "admin", params={"text": "TEAM", "exact": True}),
                  "name") == []  # case-sensitive, as Girder
    # A private group stays hidden from those who may not see it.
    assert _names(site.get("group", "admin", params={"text": "hush", "exact": True}),
                  "name") == ["hush"]
    assert _names(site.get("group", "alice", params={"text": "hush", "exact": True}),
                  "name") == []
    assert _names(site.get("group", params={"text": "hush", "exact": True}), "name") == []


def test_group_access_is_public_but_private_groups_stay_hidden(site: RestSite) -> None:
    team = site.id("team")
    reply = site.get(f"group/{team}/access")  # anonymous, public group
    assert reply.status_code == 200 and set(reply.json()) >= {"users", "groups"}
    # As in Girder, whoever reads the group sees its moderators and admins.
    full = site.get(f"group/{team}/access", "admin").json()
    assert full["users"] and reply.json() == full
    hush = site.post("group", "admin", data={"name": "hush", "public": False}).json()
    for login in (None, "alice"):
        hidden = site.get(f"group/{hush['_id']}/access", login)
        assert hidden.status_code in (400, 401, 403) and "hush" not in hidden.text
    assert site.get(f"group/{hush['_id']}/access", "admin").status_code == 200


def _force_add(site: RestSite, login: str, group: str, user: str) -> requests.Response:
    return site.post(f"group/{group}/invitation", login,
                     data={"userId": site.id(user), "force": "true"})


def test_add_allowed_is_stored_and_enforced(site: RestSite) -> None:
    settings = site.app.services.settings
    crew = site.post("group", "alice", data={"name": "crew"}).json()["_id"]  # alice: admin
    assert _force_add(site, "admin", crew, "bobby").ok
    assert site.post(f"group/{crew}/moderator", "alice",
                     data={"userId": site.id("bobby")}).ok
    assert site.get(f"group/{crew}", "alice").json()["addAllowed"] == "default"

    # Only site admins set it, and only to Girder's values.
    assert site.put(f"group/{crew}", "alice", data={"addAllowed": "yesmod"}).status_code == 403
    bad = site.put(f"group/{crew}", "admin", data={"addAllowed": "always"})
    assert bad.status_code == 400 and "yesadmin" in bad.json()["message"]

    settings.set("core.add_to_group_policy", "nomod")  # off unless the group says so
    assert _force_add(site, "alice", crew, "carol").status_code == 403
    assert _force_add(site, "bobby", crew, "carol").status_code == 403
    stored = site.put(f"group/{crew}", "admin", data={"addAllowed": "yesmod"})
    assert stored.status_code == 200 and stored.json()["addAllowed"] == "yesmod"
    assert site.get(f"group/{crew}", "bobby").json()["addAllowed"] == "yesmod"
    assert _force_add(site, "bobby", crew, "carol").ok  # a moderator may now
    members = _names(site.get(f"group/{crew}/member", "alice", params={"sort": "login"}))
    assert members == ["alice", "bobby", "carol"]

    assert site.put(f"group/{crew}", "admin", data={"addAllowed": "yesadmin"}).ok
    assert _force_add(site, "bobby", crew, "admin").status_code == 403  # moderators not
    assert _force_add(site, "alice", crew, "admin").ok  # group admins yes
    settings.set("core.add_to_group_policy", "never")  # the site's word is final
    assert site.delete(f"group/{crew}/member", "alice", data={"userId": site.id("carol")}).ok
    assert _force_add(site, "alice", crew, "carol").status_code == 403
    settings.set("core.add_to_group_policy", "yesadmin")
    assert site.put(f"group/{crew}", "admin", data={"addAllowed": "no"}).ok
    assert _force_add(site, "alice", crew, "carol").status_code == 403  # the group says no
    assert site.put(f"group/{crew}", "admin", data={"addAllowed": "default"}).ok
    assert _force_add(site, "alice", crew, "carol").ok


# ---------------------------------------------------------------- users

def test_girder_otp_header(site: RestSite) -> None:
    bobby = site.id("bobby")
    uri = site.post(f"user/{bobby}/otp", "bobby").json()["totpUri"]
    totp = pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])
    missing = site.put(f"user/{bobby}/otp", "bobby")
    assert missing.status_code == 400 and "Girder-OTP" in missing.json()["message"]
    enabled = site.put(f"user/{bobby}/otp", "bobby", headers={"Girder-OTP": totp.now()})
    assert enabled.status_code == 200, enabled.text
    login = site.url("user/authentication")
    assert requests.get(login, auth=("bobby", PASSWORD), timeout=10).status_code == 401
    wrong = "000000" if totp.now() != "000000" else "111111"
    assert requests.get(login, auth=("bobby", PASSWORD), timeout=10,
                        headers={"Girder-OTP": wrong}).status_code == 401
    # The next step's code (the server accepts one step of clock drift; the
    # enrolment code just used cannot be replayed).
    good = requests.get(login, auth=("bobby", PASSWORD), timeout=10,
                        headers={"Girder-OTP": totp.at(time.time() + totp.interval)})
    assert good.status_code == 200 and good.json()["user"]["login"] == "bobby"


def test_email_verification_by_token(site: RestSite) -> None:
    site.app.services.settings.set("core.email_verification", "required")
    site.app.store.users.update_one({"login": "bobby"}, {"$set": {"emailVerified": False}})
    unknown = site.post("user/verification", data={"login": "nobody"})
    assert unknown.status_code == 401
    for login in ("bobby", "BOBBY@example.org"):  # a login or an email, as Girder
        known = site.post("user/verification", data={"login": login})
        assert known.status_code == 200, known.text
        assert known.json() == {"message": "Sent verification email."}
    bobby = site.app.store.users.find_one({"login": "bobby"})
    auth = site.app.services.auth
    token = auth.email_verification_token(bobby)["_id"]  # what the mail will carry
    path = f"user/{bobby['_id']}/verification"
    assert site.put(path).status_code == 400  # the token is required
    assert site.put(f"user/{site.id('alice')}/verification",
                    data={"token": token}).status_code == 401  # not alice's token
    login_token = auth.login_token(bobby)["_id"]  # a token of another scope
    assert site.put(path, data={"token": login_token}).status_code == 401
    done = site.put(path, data={"token": token})  # public: no login needed
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["user"]["login"] == "bobby" and body["authToken"]["token"]
    assert body["message"] == "Email verification succeeded."
    assert site.app.store.users.find_one({"login": "bobby"})["emailVerified"] is True
    assert site.put(path, data={"token": token}).status_code == 401  # used once


def test_token_only_and_string_typed_parameters(site: RestSite) -> None:
    assert site.delete("token/session").status_code == 401  # no token at all
    anon = requests.get(site.url("token/session"), timeout=10).json()["token"]
    gone = requests.delete(site.url("token/session"), headers={"Girder-Token": anon},
                           timeout=10)
    assert gone.status_code == 200 and gone.json() == {"message": "Session deleted."}
    key = site.post("api_key", "alice", data={"name": "k", "tokenDuration": "1.5"})
    assert key.status_code == 200 and key.json()["tokenDuration"] == 1.5
    bad = site.post("api_key", "alice", data={"name": "k2", "tokenDuration": "soon"})
    assert bad.status_code == 400 and "tokenDuration" in bad.json()["message"]


@pytest.mark.parametrize("where", ["form", "query"])
def test_form_data_parameters_also_come_in_the_query(site: RestSite, where: str) -> None:
    """Girder's formData parameters arrive in a form body or the query string."""
    fields = {"login": f"dora{where}", "email": f"dora{where}@example.org",
              "firstName": "Dora", "lastName": "Explorer", "password": PASSWORD}
    kw = {"data": fields} if where == "form" else {"params": fields}
    made = site.post("user", "admin", **kw)
    assert made.status_code == 200 and made.json()["login"] == f"dora{where}"
