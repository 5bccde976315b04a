"""The REST gateway: a Girder-compatible ``/api/v1`` as a WSGI application."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from joist.core.hierarchy import Hierarchy
from joist.core.services import Services
from joist.core.settings import Settings

from .app import RestApp
from .describe import describe_response, index_page, static_file
from .resources import COLLECTORS
from .resources.system import RELEASE
from .router import table_from


def make_rest_app(services: Services, hierarchy: Hierarchy, settings: Settings,
                  endpoints: Callable[[], dict[str, Any]] | None = None) -> RestApp:
    """``endpoints``: where WebDAV and SFTP listen (the running server knows;
    ``GET system/endpoints`` reports it to the web client's Connect panel)."""
    routes = table_from(COLLECTORS)
    descriptions = {c.resource: c.description for c in COLLECTORS}
    brand = str(services.settings.get("core.brand_name"))
    pages = {
        "index": partial(index_page, brand=brand),
        "describe": partial(describe_response, routes=routes, version=RELEASE, brand=brand,
                            descriptions=descriptions),
    }
    return RestApp(services, hierarchy, settings, routes, pages, static_file,
                   endpoints=endpoints)


__all__ = ["RestApp", "make_rest_app"]
