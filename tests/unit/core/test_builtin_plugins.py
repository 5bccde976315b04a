"""The shipped plugins are installed through the entry-point group like any
other; autojoin's rules are validated; a plugin's exposed fields go with it
when its load fails."""

from __future__ import annotations

import pytest

from joist.admin.bootstrap import App
from joist.core.builtin_plugins.autojoin import validate_rules
from joist.core.plugins import PluginInfo, describe, discover

GROUP = "0123456789abcdef01234567"


def test_shipped_plugins_are_discovered_by_entry_point() -> None:
    found = discover()
    assert {"autojoin", "hashsum_download"} <= set(found)
    assert found["hashsum_download"].dependencies == ()


@pytest.mark.parametrize("bad", [
    {"pattern": "@x.org"}, [[]], [{"pattern": "@x.org", "groupId": GROUP}],
    [{"pattern": "", "groupId": GROUP, "level": 0}],
    [{"pattern": "@x.org", "groupId": "not-an-id", "level": 0}],
    [{"pattern": "@x.org", "groupId": GROUP, "level": 3}],
    [{"pattern": "@x.org", "groupId": GROUP, "level": True}],
])
def test_autojoin_rules_are_validated(bad: object) -> None:
    with pytest.raises(ValueError):
        validate_rules(bad)


def test_autojoin_rules_keep_their_fields() -> None:
    rules = [{"pattern": "@x.org", "groupId": GROUP, "level": 2, "extra": 1}]
    assert validate_rules(rules) == [{"pattern": "@x.org", "groupId": GROUP, "level": 2}]


class Exposing:
    name, description, dependencies = "exposing", "", ()

    def load(self, info: PluginInfo) -> None:
        info.expose_fields("file", ["probe"])
        raise RuntimeError("half loaded")


def test_a_failed_load_takes_its_exposed_fields_back(app: App) -> None:
    plugins = app.services.plugins
    plugins.discover = lambda: {"exposing": describe("exposing", Exposing())}
    app.services.settings.set("core.plugins_enabled", ["exposing"])
    plugins.load_enabled()
    assert "exposing" in plugins.failed
    assert plugins.exposed_fields.get("file") == []
