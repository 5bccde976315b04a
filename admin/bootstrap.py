"""The composition root: build one ``App`` from settings, and nothing global.

Everything a command or gateway needs (engine, store, assetstores, services,
hierarchy) is built here and passed explicitly.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from joist.core.assetstores.base import AssetstoreAdapter
from joist.core.assetstores.registry import GRIDFS, AssetstoreRegistry
from joist.core.db.engine import Document, Engine
from joist.core.hierarchy import Hierarchy
from joist.core.memory import limit_arenas
from joist.core.services import Services
from joist.core.settings import Settings
from joist.core.store import Store

log = logging.getLogger("joist")

DEFAULT_ASSETSTORE = "Default"


def open_engine(settings: Settings, *, mongo_client: Any = None) -> Engine:
    """The metadata engine the settings name. ``mongo_client`` replaces the
    connection ``database.uri`` would open (tests pass a mongomock client)."""
    if settings.database.engine == "mongo":
        from joist.core.db.mongo import MongoEngine  # optional scale-out engine
        return MongoEngine(settings.database.uri, client=mongo_client)
    from joist.core.db.sqlite import SQLiteEngine
    path = settings.sqlite_path
    path.parent.mkdir(parents=True, exist_ok=True)
    db = settings.database
    return SQLiteEngine(path, synchronous=db.synchronous, connections=db.sqlite_connections,
                        cache_mib=db.sqlite_cache_mib, mmap_mib=db.sqlite_mmap_mib)


@dataclass
class App:
    settings: Settings
    engine: Engine
    store: Store
    assetstores: AssetstoreRegistry
    services: Services
    hierarchy: Hierarchy

    def close(self) -> None:
        try:
            # the mail outbox sends what is due, then stops; queued events run
            self.services.close()
        finally:
            self.engine.close()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _gridfs(doc: Document, engine: Engine) -> AssetstoreAdapter:
    from joist.core.assetstores.gridfs import GridFSAssetstore
    return GridFSAssetstore.from_document(doc, engine)


def build_app(settings: Settings, *, env: dict[str, str] | None = None,
              mongo_client: Any = None) -> App:
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    limit_arenas(settings.memory.malloc_arenas)  # before the app's threads allocate
    engine = open_engine(settings, mongo_client=mongo_client)
    try:
        store = Store(engine)
        registry = AssetstoreRegistry(store.assetstores, engine,
                                      reserve_bytes=settings.assetstore.reserve_mb << 20,
                                      defer_hash_bytes=settings.assetstore.defer_hash_bytes,
                                      files=store.files,
                                      generation=lambda: store.generations.value("assetstore"))
        registry.register_type(GRIDFS, _gridfs)
        if store.assetstores.find_one({}, projection=["_id"]) is None:
            # The embedded default: a filesystem assetstore under the data directory.
            root = settings.assetstore_root
            registry.create_filesystem(DEFAULT_ASSETSTORE, root, current=True)
            log.info("created the default filesystem assetstore at %s", root)
        services = Services.build(store, registry, bcrypt_rounds=settings.security.bcrypt_rounds,
                                  env=env if env is not None else dict(os.environ),
                                  # an administrator's mail template overrides
                                  mail_templates=data / "mail_templates")
        # Every command and server of this app sees the enabled plugins' handlers
        # (a user made by `joist user create` fires the same events as REST).
        services.plugins.load_enabled()
        return App(settings=settings, engine=engine, store=store, assetstores=registry,
                   services=services, hierarchy=Hierarchy(services))
    except BaseException:
        engine.close()
        raise
