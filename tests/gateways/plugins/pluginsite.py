"""A REST site (tests/gateways/http/restsite.py) whose server starts with
plugins enabled: the setting is stored first, then the server's App is built
on the same store, so the plugins load as at a real start."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from joist.admin.server import Server
from joist.core.plugins import ENABLED_SETTING
from tests.conftest import site_app
from tests.gateways.http.restsite import RestSite
from tests.s3env import select_test_assetstore
from tests.world import build_world

OVERRIDES = {"server.port": 0, "webdav.enabled": False}


@contextlib.contextmanager
def plugin_site(data_dir: Path, enabled: list[str], **overrides: object) -> Iterator[RestSite]:
    """``overrides``: more settings (``webdav.enabled=True`` serves WebDAV at /dav)."""
    overrides = {**OVERRIDES, **overrides}
    seed = site_app(data_dir, **overrides)  # a previous run that enabled the plugins
    try:
        seed.services.settings.set(ENABLED_SETTING, enabled)
        app = site_app(data_dir, like=seed, **overrides)
        try:
            assert app.services.plugins.loaded == enabled, app.services.plugins.failed
            select_test_assetstore(app)
            server = Server(app)
            server.http.expiration_interval = 0.05
            server.start()
            site = RestSite(app, build_world(app), server)
            try:
                yield site
            finally:
                site.close()
                server.stop()
        finally:
            app.close()
    finally:
        seed.close()
