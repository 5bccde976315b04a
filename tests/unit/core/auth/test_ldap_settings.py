"""``ldap.servers`` / ``ldap.settings``: Girder's keys and defaults, validation, and
the bind password kept out of what is shown."""

from __future__ import annotations

import pytest

from joist.admin.bootstrap import App
from joist.core.errors import ValidationError

SERVER = {"uri": "ldap.example.org/", "bindName": "cn=reader,dc=example,dc=org",
          "password": "bind-secret", "baseDn": "ou=people,dc=example,dc=org"}


def test_defaults_and_girder_normalisation(app: App) -> None:
    settings = app.services.settings
    assert settings.get("ldap.servers") == []
    assert settings.get("ldap.settings") == {"timeout": 4, "fallback": True, "recheck": 10}
    shown = settings.set("ldap.servers", [SERVER])
    stored = settings.get("ldap.servers")[0]
    assert stored["uri"] == "ldap://ldap.example.org"  # scheme added, as Girder does
    assert (stored["searchField"], stored["queryFilter"], stored["loginAttribute"]) == \
        ("uid", "", "uid")
    assert stored["password"] == "bind-secret" and stored["tlsVerify"] is True
    assert "password" not in shown[0] and shown[0]["hasPassword"] is True
    assert settings.set("ldap.settings", {"timeout": 2.5}) == {
        "timeout": 2.5, "fallback": True, "recheck": 10}


def test_password_is_never_shown_and_kept_on_write_back(app: App) -> None:
    settings = app.services.settings
    settings.set("ldap.servers", [SERVER])
    shown = settings.shown("ldap.servers")
    assert "bind-secret" not in repr(shown) and "bind-secret" not in repr(settings.all())
    settings.set("ldap.servers", shown)  # what a client read, sent back
    assert settings.get("ldap.servers")[0]["password"] == "bind-secret"
    settings.set("ldap.servers", [{**SERVER, "password": "new-secret"}])
    assert settings.get("ldap.servers")[0]["password"] == "new-secret"
    settings.set("ldap.servers", [{**SERVER, "uri": "ldap://other", "password": None}])
    assert settings.get("ldap.servers")[0]["password"] == ""  # another server: no secret


@pytest.mark.parametrize("key, value", [
    ("ldap.servers", {"uri": "ldap://x"}),
    ("ldap.servers", [{"uri": "ldap://x", "baseDn": "b"}]),
    ("ldap.servers", [{**SERVER, "uri": "https://x"}]),
    ("ldap.servers", [{**SERVER, "searchField": "uid=*"}]),
    ("ldap.servers", [{**SERVER, "queryFilter": "(objectClass=person"}]),
    ("ldap.servers", [{**SERVER, "startTls": "yes"}]),
    ("ldap.servers", [{**SERVER, "colour": "blue"}]),
    ("ldap.servers", [SERVER] * 21),
    ("ldap.settings", {"timeout": 0}),
    ("ldap.settings", {"timeout": True}),
    ("ldap.settings", {"fallback": "no"}),
    ("ldap.settings", {"recheck": 0}),
    ("ldap.settings", "not json"),
])
def test_bad_values_are_refused(app: App, key: str, value: object) -> None:
    with pytest.raises(ValidationError):
        app.services.settings.set(key, value)
