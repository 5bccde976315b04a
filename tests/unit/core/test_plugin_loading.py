"""Issue 16 item 2: loading plugins (order, dependencies, failures) in core.

Plugins here are plain objects handed to a real App's ``Plugins`` through its
``discover`` hook; the entry-point discovery itself, with a package installed
on a path, is tested end to end in ``tests/gateways/test_third_party_plugin.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from joist.admin.bootstrap import App
from joist.core.acl import SYSTEM, Principal
from joist.core.db.engine import CollectionSpec
from joist.core.errors import AccessDeniedError, ValidationError
from joist.core.plugins import PluginInfo, Plugins, describe


class Fake:
    def __init__(self, name: str, deps: tuple[str, ...] = (), *,
                 body: Callable[[PluginInfo], Any] | None = None,
                 order: list[str] | None = None) -> None:
        self.name, self.dependencies, self.description = name, deps, f"the {name} plugin"
        self._body, self._order = body, order

    def load(self, info: PluginInfo) -> None:
        if self._order is not None:
            self._order.append(self.name)
        if self._body is not None:
            self._body(info)


def _with(app: App, *fakes: Fake, enabled: list[str]) -> Plugins:
    plugins = app.services.plugins
    plugins.discover = lambda: {f.name: describe(f.name, f) for f in fakes}
    app.services.settings.set("core.plugins_enabled", enabled)
    plugins.load_enabled()
    return plugins


def test_dependencies_load_first_and_once(app: App) -> None:
    order: list[str] = []
    plugins = _with(app, Fake("c", ("a", "b"), order=order), Fake("b", ("a",), order=order),
                    Fake("a", order=order), Fake("idle", order=order), enabled=["c", "b"])
    assert order == ["a", "b", "c"]
    assert plugins.loaded == ["a", "b", "c"] and plugins.failed == {}
    listing = plugins.listing()
    assert listing["enabled"] == ["c", "b"] and listing["loaded"] == ["a", "b", "c"]
    assert listing["all"]["c"] == {"name": "c", "description": "the c plugin", "url": "",
                                   "version": "", "dependencies": ["a", "b"]}
    assert "failed" not in listing


def test_missing_and_cyclic_dependencies_fail_clearly(app: App) -> None:
    order: list[str] = []
    plugins = _with(app, Fake("needy", ("absent",), order=order),
                    Fake("x", ("y",), order=order), Fake("y", ("x",), order=order),
                    Fake("fine", order=order), enabled=["needy", "x", "fine", "ghost"])
    assert order == ["fine"] and plugins.loaded == ["fine"]
    assert plugins.failed["needy"] == "Required plugin absent is not installed."
    assert "Dependency cycle: x -> y -> x." in plugins.failed.values()
    assert plugins.failed["x"].startswith(("Dependency cycle", "Required plugin y"))
    assert plugins.failed["ghost"] == "Plugin ghost is not installed."
    assert plugins.listing()["failed"] == plugins.failed


def test_a_failing_load_leaves_nothing_behind(app: App) -> None:
    def half(info: PluginInfo) -> None:
        info.bind("model.item.save", lambda e: None)
        info.register_setting("half.level", 1, int, "A level.")
        info.register_scope("half.read", "Read half", "Half's data.")
        info.register_access_flag("half_flag", "Half", "A flag.")
        info.add_route("GET", "half/thing", lambda ctx: {}, summary="x", scope="half.read")
        raise RuntimeError("broken halfway")

    plugins = _with(app, Fake("half", body=half), enabled=["half"])
    assert plugins.failed == {"half": "RuntimeError: broken halfway"}
    assert plugins.loaded == [] and plugins.routes == [] and plugins.flags() == {}
    assert not app.services.events.has_handlers("model.item.save")
    assert "half.read" not in app.services.scopes
    with pytest.raises(ValidationError):
        app.services.settings.get("half.level")


def test_what_a_plugin_adds(app: App) -> None:
    def full(info: PluginInfo) -> None:
        info.bind("model.collection.save.after", lambda e: seen.append(e.info["name"]))
        info.register_setting("full.greeting", "hi", str, "A greeting.", public=True)
        info.register_access_flag("full_flag", "Full", "Lets one do more.", admin=True)
        coll = info.collection(CollectionSpec("full_note"))
        coll.insert_one({"note": 1})
        info.add_route("GET", "full/note", lambda ctx: {}, summary="Notes.",
                       scope="core.data.read")

    seen: list[str] = []
    plugins = _with(app, Fake("full", body=full), enabled=["full"])
    assert plugins.loaded == ["full"]
    app.services.collections.create(SYSTEM, "watched")
    assert seen == ["watched"]
    assert app.services.settings.get("full.greeting") == "hi"
    assert app.services.settings.public()["full.greeting"] == "hi"
    assert plugins.flags() == {"full_flag": {"name": "Full", "description": "Lets one do more.",
                                             "admin": True}}
    assert [(r.method, r.resource, r.path) for r in plugins.routes] == [
        ("GET", "full", "note")]


def test_a_plugin_may_not_take_core_names(app: App) -> None:
    for body in (lambda i: i.collection(CollectionSpec("item")),
                 lambda i: i.register_setting("core.brand_name", "", str, ""),
                 lambda i: i.register_scope("core.data.read", "", ""),
                 lambda i: i.add_route("GET", "x/y", lambda ctx: {}, summary="", scope=""),
                 lambda i: i.add_route("GET", "x/y", lambda ctx: {}, summary="",
                                       scope="unknown.scope")):
        plugins = _with(app, Fake("greedy", body=body), enabled=["greedy"])
        assert "greedy" in plugins.failed and plugins.loaded == []
        plugins.failed.clear()


def test_enabling_checks_names_and_needs_an_admin(app: App) -> None:
    plugins = _with(app, Fake("a"), Fake("b", ("a",)), Fake("loop", ("loop",)), enabled=[])
    assert plugins.set_enabled(SYSTEM, ["b"]) == ["b"]
    assert app.services.settings.get("core.plugins_enabled") == ["b"]
    with pytest.raises(ValidationError, match="Required plugin nope is not installed"):
        plugins.set_enabled(SYSTEM, ["b", "nope"])
    with pytest.raises(ValidationError, match="Dependency cycle: loop -> loop"):
        plugins.set_enabled(SYSTEM, ["loop"])
    with pytest.raises(ValidationError):
        plugins.set_enabled(SYSTEM, "b")
    with pytest.raises(AccessDeniedError):
        plugins.set_enabled(Principal.anonymous(), [])
    assert app.services.settings.get("core.plugins_enabled") == ["b"]
