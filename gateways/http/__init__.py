"""The REST gateway: a Girder-compatible ``/api/v1`` as a WSGI application."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from joist.core.hierarchy import Hierarchy
from joist.core.plugins import FileDownload, Records, Redirect, RouteError, TextAttachment
from joist.core.services import Services
from joist.core.settings import Settings

from .app import RestApp
from .describe import describe_response, index_page, static_file
from .downloads import content_disposition
from .request import RestError
from .resources import COLLECTORS
from .resources.file import download
from .resources.system import RELEASE
from .resources.user import cookie_header
from .response import Raw
from .router import Param, RouteCollector, RouteTable, table_from

log = logging.getLogger("joist.http")


def plugin_collectors(services: Services, core: RouteTable) -> list[RouteCollector]:
    """The loaded plugins' routes as route declarations; one that a core or
    earlier route already answers is refused (logged), never shadowed."""
    taken = {(r.method, r.path) for r in core.routes}
    collectors: dict[str, RouteCollector] = {}
    for spec in services.plugins.routes:
        path = "/".join((spec.resource, *(t for t in spec.path.split("/") if t)))
        if (spec.method, path) in taken:
            log.error("plugin %s: %s %s is already a route; not added", spec.plugin,
                      spec.method, path)
            continue
        taken.add((spec.method, path))
        collector = collectors.setdefault(
            spec.resource, RouteCollector(spec.resource, spec.description))
        params = tuple(Param(**dataclasses.asdict(p)) for p in spec.params)
        declare = getattr(collector, spec.method.lower())
        declare(spec.path, spec.summary, scope=spec.scope, access=spec.access,
                params=params, cookie=spec.cookie)(_answering(spec.handler))
    return list(collectors.values())


def _answering(handler: Callable[..., Any]) -> Callable[..., Any]:
    """A plugin handler whose core-level answers (a file's bytes, a text file,
    records to show) become this gateway's responses."""
    @functools.wraps(handler)
    def run(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = handler(ctx, *args, **kwargs)
        except RouteError as exc:
            raise RestError(exc.message, exc.status) from None
        if isinstance(result, FileDownload):
            return download(ctx, result.file, result.offset, result.end_byte,
                            result.disposition)
        if isinstance(result, TextAttachment):
            body = result.text.encode("utf-8")
            return Raw(200, [("Content-Type", result.mime_type),
                             ("Content-Length", str(len(body))),
                             ("Content-Disposition", content_disposition(result.name))],
                       [body])
        if isinstance(result, Redirect):
            headers = [("Location", result.location), ("Content-Length", "0"),
                       ("Cache-Control", "no-store")]
            if result.token is not None:
                headers.append(cookie_header(ctx, result.token))
            return Raw(303, headers, [])
        if isinstance(result, Records):
            if isinstance(result.value, list):
                return ctx.filter.many(result.model, result.value, ctx.principal)
            return ctx.filter(result.model, result.value, ctx.principal)
        return result
    return run


def make_rest_app(services: Services, hierarchy: Hierarchy, settings: Settings,
                  endpoints: Callable[[], dict[str, Any]] | None = None) -> RestApp:
    """``endpoints``: where WebDAV and SFTP listen (the running server knows;
    ``GET system/endpoints`` reports it to the web client's Connect panel)."""
    extra = plugin_collectors(services, table_from(COLLECTORS))
    routes = table_from((*COLLECTORS, *extra))
    descriptions = {c.resource: c.description for c in extra}
    descriptions.update({c.resource: c.description for c in COLLECTORS})
    brand = str(services.settings.get("core.brand_name"))
    pages = {
        "index": partial(index_page, brand=brand),
        "describe": partial(describe_response, routes=routes, version=RELEASE, brand=brand,
                            descriptions=descriptions),
    }
    return RestApp(services, hierarchy, settings, routes, pages, static_file,
                   endpoints=endpoints)


__all__ = ["RestApp", "make_rest_app"]
