"""Issue 16 item 8: the shipped ``autojoin`` plugin, through REST (requests)
and the ``joist`` CLI, enabled and disabled."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from joist.admin.bootstrap import build_app
from tests.conftest import make_settings
from tests.gateways.http.restsite import RestSite, running_site
from tests.gateways.plugins.pluginsite import plugin_site
from tests.ldap_server import PEOPLE_DN, ROOT_DN, ROOT_PASSWORD, running_slapd

JOIST = [sys.executable, "-m", "joist.admin.cli"]


def _register(site: RestSite, login: str, email: str, admin: str | None = None) -> Any:
    reply = site.post("user", admin, params={
        "login": login, "email": email, "firstName": login.title(), "lastName": "New",
        "password": "new-user-pw-1"})
    assert reply.status_code == 200, reply.text
    return reply.json()


def _members(site: RestSite, group_id: str) -> set[str]:
    reply = site.get(f"group/{group_id}/member", "admin")
    assert reply.status_code == 200, reply.text
    return {u["login"] for u in reply.json()}


def _level(site: RestSite, group_id: str, user_id: str) -> int | None:
    """The member's role in the group's access list (None: plain member)."""
    reply = site.get(f"group/{group_id}/access", "admin")
    assert reply.status_code == 200, reply.text
    return next((u["level"] for u in reply.json()["users"] if u["id"] == user_id), None)


def test_rules_apply_to_registration_and_admin_create(tmp_path: Path) -> None:
    with plugin_site(tmp_path / "data", ["autojoin"]) as site:
        team = site.id("team")
        made = site.post("group", "admin", params={"name": "staff"})
        assert made.status_code == 200, made.text
        staff = made.json()["_id"]
        for bad in ([{"pattern": "@x.org", "groupId": team}],
                    [{"pattern": "@x.org", "groupId": "nope", "level": 0}],
                    [{"pattern": "@x.org", "groupId": team, "level": 7}], {"pattern": "x"}):
            refused = site.put("system/setting", "admin",
                               data={"key": "autojoin", "value": json.dumps(bad)})
            assert refused.status_code == 400, (bad, refused.text)
        rules = [{"pattern": "@Example.com", "groupId": team, "level": 1},
                 {"pattern": "@example.com", "groupId": staff, "level": 0},
                 {"pattern": "@other.org", "groupId": staff, "level": 2}]
        stored = site.put("system/setting", "admin",
                          data={"key": "autojoin", "value": json.dumps(rules)})
        assert stored.status_code == 200, stored.text
        assert site.get("system/setting", "admin", params={"key": "autojoin"}).json() == rules

        before = {team: _members(site, team), staff: _members(site, staff)}
        dana = _register(site, "dana", "dana@EXAMPLE.com")  # anonymous registration
        erin = _register(site, "erin", "erin@other.org", admin="admin")  # admin create
        _register(site, "finn", "finn@elsewhere.net")
        assert _members(site, team) - before[team] == {"dana"}
        assert _members(site, staff) - before[staff] == {"dana", "erin"}
        assert _level(site, team, dana["_id"]) == 1  # moderator
        assert _level(site, staff, dana["_id"]) is None  # plain member
        assert _level(site, staff, erin["_id"]) == 2  # administrator


def test_disabled_autojoin_does_nothing(tmp_path: Path) -> None:
    with running_site(tmp_path / "data") as site:
        team = site.id("team")
        rules = [{"pattern": "@example.com", "groupId": team, "level": 0}]
        refused = site.put("system/setting", "admin",
                           data={"key": "autojoin", "value": json.dumps(rules)})
        assert refused.status_code == 400  # no such setting without the plugin
        before = _members(site, team)
        _register(site, "dana", "dana@example.com")
        assert _members(site, team) == before


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([*JOIST, *args], env=env, input=stdin, text=True,
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_cli_user_create_applies_the_rules(cli_env: dict[str, str], tmp_path: Path) -> None:
    _cli(cli_env, "user", "create", "admin", "--email", "admin@example.com",
         "--password-stdin", stdin="admin-pw-123\n")  # before: the plugin is disabled
    _cli(cli_env, "group", "create", "eng")
    assert "take effect when the server restarts" in _cli(cli_env, "plugin", "enable",
                                                          "autojoin")
    app = build_app(make_settings(tmp_path / "data"), env={})
    try:
        group = app.services.groups.by_name("eng")
        assert group is not None
    finally:
        app.close()
    _cli(cli_env, "setting", "set", "autojoin",
         json.dumps([{"pattern": "@example.com", "groupId": str(group["_id"]), "level": 0}]))
    for login, email in (("gail", "gail@example.com"), ("hank", "hank@example.net")):
        _cli(cli_env, "user", "create", login, "--email", email, "--password-stdin",
             stdin="user-pw-1234\n")
    members = _cli(cli_env, "group", "members", "eng").split()
    assert "gail" in members and "hank" not in members and "admin" not in members


def test_first_ldap_login_applies_the_rules(tmp_path: Path) -> None:
    (tmp_path / "slapd").mkdir()
    with running_slapd(tmp_path / "slapd") as slapd, \
            plugin_site(tmp_path / "data", ["autojoin"]) as site:
        team = site.id("team")
        settings = site.app.services.settings
        settings.set("ldap.servers", [{"uri": slapd.uri, "bindName": ROOT_DN,
                                       "password": ROOT_PASSWORD, "baseDn": PEOPLE_DN,
                                       "searchField": "uid"}])
        settings.set("ldap.settings", {"timeout": 5.0, "fallback": True})
        settings.set("autojoin", [{"pattern": "@dir.test", "groupId": team, "level": 0}])
        slapd.add_person("joiner", "directory-pw-1", given="Jo", surname="Iner",
                         mail="joiner@dir.test")
        before = _members(site, team)
        reply = requests.get(site.url("user/authentication"), auth=("joiner", "directory-pw-1"),
                             timeout=30)
        assert reply.status_code == 200, reply.text
        assert _members(site, team) - before == {"joiner"}
