"""Plugins: Python packages found through the ``joist.plugins`` entry-point group.

An entry point names a plugin object (a ``Plugin`` subclass, an instance, or a
module) with ``name``, ``description``, ``dependencies`` (names loaded first),
optionally ``version`` and ``url``, and ``load(info)``. ``load`` extends the
application only through the ``PluginInfo`` it receives: event handlers, REST
routes (with their token scope), settings, scopes, collections with indexes
and access flags. Nothing here imports a gateway: routes are kept as
``PluginRoute`` records that the REST gateway turns into its own.

The enabled set is the stored setting ``core.plugins_enabled`` (Girder's key);
it is read once when the application is built, so a change takes effect at the
next start, as in Girder. A plugin that cannot load (not installed, missing or
cyclic dependencies, an exception in ``load``) is reported in ``failed`` and
leaves nothing behind: its handlers, routes, settings, scopes and flags go.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .acl import Principal
from .auth.scopes import SPECIAL, ScopeCatalog, ScopeInfo
from .db.engine import Collection, CollectionSpec
from .errors import AccessDeniedError, CoreError, ValidationError
from .events import EventBus, Handler
from .store import Store
from .stored_settings import SettingDef, SettingsService

log = logging.getLogger("joist.plugins")

ENTRY_POINT_GROUP = "joist.plugins"
ENABLED_SETTING = "core.plugins_enabled"
RESTART_NOTE = "Plugin changes take effect when the server restarts."
METHODS = ("GET", "POST", "PUT", "DELETE")


class Plugin:
    """Convenience base for a plugin's entry point (any object with the same
    attributes will do)."""

    name: str = ""
    description: str = ""
    dependencies: tuple[str, ...] = ()
    version: str = ""
    url: str = ""

    def load(self, info: PluginInfo) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


@dataclass(frozen=True)
class RouteParam:
    """A route parameter, as the REST gateway's own declaration has it."""

    name: str
    kind: str = "string"  # string, integer, number, boolean, json, jsonObject, ...
    required: bool = False
    default: Any = None
    description: str = ""
    enum: tuple[Any, ...] = ()
    location: str = "query"  # query, path, body
    strip: bool = False


@dataclass(frozen=True)
class PluginRoute:
    """A REST route a plugin adds: ``handler(ctx, **params)`` as core routes."""

    plugin: str
    method: str
    resource: str
    path: str  # after the resource, e.g. ":id/hashsum"
    handler: Callable[..., Any]
    summary: str
    scope: str
    access: str = "public"  # public, token, user, admin
    params: tuple[RouteParam, ...] = ()
    description: str = ""  # of the resource, when the plugin adds a new one
    cookie: bool = False  # the girderToken cookie authenticates too (browser downloads)


class RouteError(CoreError):
    """Raised by a plugin's route to answer with this HTTP status (Girder's
    ``RestException(code=...)``), e.g. 404 where core would say 400."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class FileDownload:
    """A route's answer: the bytes of ``file`` (an access-checked record), sent
    as ``file/:id/download`` sends them (ranges, redirects, disposition)."""

    file: dict[str, Any]
    offset: int = 0
    end_byte: int | None = None
    disposition: str = "attachment"


@dataclass(frozen=True)
class TextAttachment:
    """A route's answer: a small text file to download, named ``name``."""

    name: str
    text: str
    mime_type: str = "text/plain"


@dataclass(frozen=True)
class Records:
    """A route's answer: record(s) of ``model``, shown through the gateway's
    field exposure as core's own routes show them."""

    model: str
    value: dict[str, Any] | list[dict[str, Any]]


@dataclass(frozen=True)
class Redirect:
    """A route's answer: send the browser to ``location`` (303). With
    ``token`` (a token document), it is signed in: the gateway sets its
    session cookie, as Girder's OAuth callback does."""

    location: str
    token: dict[str, Any] | None = None


@dataclass(frozen=True)
class AccessFlag:
    key: str
    name: str
    description: str
    admin: bool = False  # only site administrators may grant it


@dataclass
class PluginDescriptor:
    """An installed plugin, discovered but not necessarily loaded."""

    name: str
    description: str
    dependencies: tuple[str, ...]
    version: str
    url: str
    target: Any  # what load() is called on

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "url": self.url,
                "version": self.version, "dependencies": list(self.dependencies)}


class PluginInfo:
    """What a plugin's ``load(info)`` may use. Everything added through it is
    recorded, so a load that fails halfway can be undone."""

    def __init__(self, name: str, plugins: Plugins) -> None:
        self.name = name
        self._plugins = plugins
        self.events: EventBus = plugins.events
        self.services: Any = plugins.services  # core.services.Services
        self.settings: SettingsService = plugins.settings
        self.loaded: tuple[str, ...] = tuple(plugins.loaded)  # dependencies loaded so far
        self._bindings: list[tuple[str, str]] = []
        self._routes: list[PluginRoute] = []
        self._settings: list[str] = []
        self._flags: list[str] = []
        self._scopes: list[ScopeInfo] = []
        self._exposed: list[tuple[str, str]] = []

    def bind(self, event: str, handler: Handler, *, handler_name: str | None = None,
             priority: int = 0) -> None:
        """Bind under the plugin's name (Girder's convention) unless told otherwise."""
        name = handler_name or self.name
        self.events.bind(event, name, handler, priority=priority)
        self._bindings.append((event, name))

    def add_route(self, method: str, route: str, handler: Callable[..., Any], *,
                  summary: str, scope: str, access: str = "public",
                  params: Iterable[RouteParam] = (), description: str = "",
                  cookie: bool = False) -> None:
        """``route`` is ``resource/path`` (``"item/:id/hashsum"``); ``scope`` the
        token scope it needs (``core.user_auth`` for a full login)."""
        method = str(method).upper()
        if method not in METHODS:
            raise ValueError(f"Unknown method {method!r}")
        if not isinstance(scope, str) or not (scope in SPECIAL or scope in self._plugins.scopes):
            # core's or one registered first (register_scope), so API keys can hold it
            raise ValueError(f"{method} {route}: declare a known token scope, not {scope!r}")
        if access not in ("public", "token", "user", "admin"):  # token: any valid token
            raise ValueError(f"{method} {route}: access is public, token, user or admin")
        resource, _, rest = str(route).strip("/").partition("/")
        if not resource:
            raise ValueError("A route needs a resource")
        self._routes.append(PluginRoute(self.name, method, resource, rest, handler, summary,
                                        scope, access, tuple(params), description, cookie))

    def register_setting(self, key: str, default: Any, validate: Callable[[Any], Any],
                         help: str, *, public: bool = False) -> None:
        self.add_setting(SettingDef(key, default, validate, help, public))

    def add_setting(self, definition: SettingDef) -> None:
        """A setting with every option of ``SettingDef`` (secrets, redaction)."""
        self.settings.register(definition)
        self._settings.append(definition.key)

    def register_scope(self, scope_id: str, name: str, description: str, *,
                       admin: bool = False) -> None:
        info = ScopeInfo(scope_id, name, description, admin)
        self._plugins.scopes.register(info)
        self._scopes.append(info)

    def register_access_flag(self, key: str, name: str, description: str, *,
                             admin: bool = False) -> None:
        if key in self._plugins.access_flags:
            raise ValueError(f"The access flag {key} is already defined.")
        self._plugins.access_flags[key] = AccessFlag(key, name, description, admin)
        self._flags.append(key)

    def expose_fields(self, model: str, fields: Iterable[str]) -> None:
        """Show more stored fields of ``model`` to anyone who may read the
        record (Girder's ``exposeFields(level=READ)``)."""
        for key in fields:
            shown = self._plugins.exposed_fields.setdefault(model, [])
            if key not in shown:
                shown.append(key)
                self._exposed.append((model, key))

    def collection(self, spec: CollectionSpec) -> Collection:
        """A collection of the plugin's own, with its declared indexes."""
        from .store import specs
        if spec.name in {s.name for s in specs.ALL_SPECS}:
            raise ValueError(f"The collection {spec.name} belongs to core.")
        return self._plugins.store.engine.collection(spec)

    # ------------------------------------------------------------ by Plugins
    def _commit(self) -> None:
        self._plugins.routes.extend(self._routes)

    def _undo(self) -> None:
        for event, handler_name in self._bindings:
            self.events.unbind(event, handler_name)
        for key in self._settings:
            self.settings.unregister(key)
        for key in self._flags:
            self._plugins.access_flags.pop(key, None)
        for scope in self._scopes:
            self._plugins.scopes.unregister(scope.id)
        for model, key in self._exposed:
            self._plugins.exposed_fields[model].remove(key)


@dataclass
class Plugins:
    """The plugins of one application: what is installed, enabled, loaded."""

    events: EventBus
    settings: SettingsService
    scopes: ScopeCatalog
    store: Store
    services: Any = None  # core.services.Services, set once it is built
    discover: Callable[[], dict[str, PluginDescriptor]] | None = None
    installed: dict[str, PluginDescriptor] = field(default_factory=dict)
    loaded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    routes: list[PluginRoute] = field(default_factory=list)
    access_flags: dict[str, AccessFlag] = field(default_factory=dict)
    exposed_fields: dict[str, list[str]] = field(default_factory=dict)  # model -> READ fields

    def refresh(self) -> dict[str, PluginDescriptor]:
        self.installed = (self.discover or discover)()
        return self.installed

    def enabled(self) -> list[str]:
        return list(self.settings.get(ENABLED_SETTING) or [])

    # ------------------------------------------------------------ loading
    def load_enabled(self) -> None:
        """Load the enabled plugins, each after its dependencies. Called once,
        when the application is built."""
        enabled = self.enabled()
        if not enabled:
            return  # nothing to load: skip scanning the installed distributions
        self.refresh()
        for name in enabled:
            self._load(name, ())

    def _load(self, name: str, chain: tuple[str, ...]) -> bool:
        if name in self.loaded:
            return True
        if name in self.failed:
            return False
        if name in chain:
            cycle = " -> ".join((*chain[chain.index(name):], name))
            self._fail(chain[-1], f"Dependency cycle: {cycle}.")
            return False
        descriptor = self.installed.get(name)
        if descriptor is None:
            if chain:
                self._fail(chain[-1], f"Required plugin {name} is not installed.")
            else:
                self._fail(name, f"Plugin {name} is not installed.")
            return False
        for dependency in descriptor.dependencies:
            if not self._load(dependency, (*chain, name)):
                if name not in self.failed:
                    self._fail(name, f"Required plugin {dependency} did not load.")
                return False
        if name in self.failed:  # a cycle through it was found below
            return False
        info = PluginInfo(name, self)
        try:
            descriptor.target.load(info)
        except Exception as exc:
            info._undo()
            log.error("plugin %s failed to load", name, exc_info=exc)
            self._fail(name, f"{type(exc).__name__}: {exc}")
            return False
        info._commit()
        self.loaded.append(name)
        log.info("loaded plugin %s", name)
        return True

    def _fail(self, name: str, message: str) -> None:
        log.error("plugin %s not loaded: %s", name, message)
        self.failed.setdefault(name, message)

    # ------------------------------------------------------------ admin
    def listing(self) -> dict[str, Any]:
        """``GET system/plugins`` (Girder's shape; ``failed`` only when some did)."""
        self.refresh()
        out: dict[str, Any] = {
            "all": {n: d.as_dict() for n, d in sorted(self.installed.items())},
            "enabled": self.enabled(), "loaded": list(self.loaded)}
        if self.failed:
            out["failed"] = dict(self.failed)
        return out

    def set_enabled(self, principal: Principal, names: Any) -> list[str]:
        """Store the enabled set after checking every name is installed and its
        dependencies resolve. Takes effect at the next start."""
        if not principal.is_site_admin:
            raise AccessDeniedError("Administrator access required.")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValidationError("plugins must be a JSON array of plugin names.",
                                  field="plugins")
        self.refresh()
        current = self.enabled()
        for name in names:
            if name not in current:  # one enabled before and since removed may stay
                self._check_resolvable(name, ())
        return list(self.settings.set(ENABLED_SETTING, names))

    def _check_resolvable(self, name: str, chain: tuple[str, ...]) -> None:
        if name in chain:
            cycle = " -> ".join((*chain[chain.index(name):], name))
            raise ValidationError(f"Dependency cycle: {cycle}.", field="plugins")
        if name not in self.installed:
            needed = f" (needed by {chain[-1]})" if chain else ""
            raise ValidationError(f"Required plugin {name} is not installed{needed}.",
                                  field="plugins")
        for dependency in self.installed[name].dependencies:
            self._check_resolvable(dependency, (*chain, name))

    def flags(self) -> dict[str, dict[str, Any]]:
        """``GET system/access_flag``: Girder's shape."""
        return {k: {"name": f.name, "description": f.description, "admin": f.admin}
                for k, f in self.access_flags.items()}


def discover() -> dict[str, PluginDescriptor]:
    """Installed plugins by name. One that cannot be imported is logged and
    left out (it shows in ``failed`` if enabled: not installed)."""
    found: dict[str, PluginDescriptor] = {}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in found:
            log.warning("plugin %s is installed twice; using %s", entry.name,
                        found[entry.name].target)
            continue
        try:
            target = entry.load()
            if inspect.isclass(target):
                target = target()
            found[entry.name] = describe(entry.name, target)
        except Exception:
            log.exception("plugin %s could not be imported", entry.name)
    return found


def describe(name: str, target: Any) -> PluginDescriptor:
    if not callable(getattr(target, "load", None)):
        raise TypeError(f"plugin {name} has no load(info)")
    declared = getattr(target, "name", "") or name
    if declared != name:
        raise ValueError(f"plugin entry point {name} declares the name {declared}")
    dependencies = getattr(target, "dependencies", ()) or ()
    if isinstance(dependencies, str) or not all(isinstance(d, str) for d in dependencies):
        raise TypeError(f"plugin {name}: dependencies must be a list of names")
    return PluginDescriptor(name, str(getattr(target, "description", "") or ""),
                            tuple(dependencies), str(getattr(target, "version", "") or ""),
                            str(getattr(target, "url", "") or ""), target)


__all__ = ["ENABLED_SETTING", "ENTRY_POINT_GROUP", "RESTART_NOTE", "AccessFlag", "FileDownload",
           "Plugin", "PluginDescriptor", "PluginInfo", "PluginRoute", "Plugins", "Records",
           "Redirect", "RouteError", "RouteParam", "TextAttachment", "discover"]
