"""Core benchmark: path resolution, ACL-filtered listing and item creation at scale.

Builds a store with N items (default 1,000,000): 10% in one folder, the rest in
a tree of depth 10, owned by one user and readable by a second user only through
a group grant. Then prints, for the SQLite engine:

* resolve a depth-10 path, warm (path cache on) and cold (cache off), per second;
* list a page of 1,000 children of the big folder as the non-admin user (ms);
* create items through the services (per second);

and the same at a small size (default 10,000), to show how cost grows, with the
store's size on disk per item (the SQLite file with its WAL; MongoDB's
``dbStats`` data and index sizes).
Targets (issue 3): warm >= 20,000/s, cold >= 2,000/s, page < 20 ms,
create >= 5,000/s, no figure more than 2x worse at the large size. Issue 18:
``--small 1000000 --items 10000000``, the same 2x bound.

Run by hand:  .venv/bin/python benchmarks/core_bench.py [--items 1000000] [--small 10000]
                  [--engine mongo]   (MongoDB: the server JOIST_TEST_MONGO_URI names;
                                      each run uses a fresh database, dropped after)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bson import ObjectId

from joist.admin.bootstrap import App, build_app
from joist.core.acl import READ, SYSTEM, Principal
from joist.core.clock import utcnow
from joist.core.settings import load_settings

DEPTH = 10
BATCH = 5000


def _settings(data: Path, mongo_uri: str | None = None) -> Any:
    overrides: dict[str, Any] = {
        "data_dir": str(data), "security.bcrypt_rounds": 4, "assetstore.reserve_mb": 0}
    if mongo_uri:
        overrides.update({"database.engine": "mongo", "database.uri": mongo_uri})
    return load_settings(env={}, search=False, overrides=overrides)


def _mongo_uri(base: str) -> str:
    """``base`` with a fresh database name in its path."""
    head, _, query = base.partition("?")
    scheme, _, rest = head.partition("://")
    host = rest.split("/", 1)[0]
    name = f"joist_core_bench_{os.getpid()}_{time.monotonic_ns()}"
    return f"{scheme}://{host}/{name}" + (f"?{query}" if query else "")


def store_bytes(app: App, data: Path, mongo_uri: str | None) -> int:
    """The metadata store's size on disk: SQLite's file, WAL and shared memory,
    or MongoDB's data plus indexes."""
    if mongo_uri:
        import pymongo
        client: Any = pymongo.MongoClient(mongo_uri)
        try:
            stats = client.get_default_database().command("dbStats")
            return int(stats.get("storageSize", 0)) + int(stats.get("indexSize", 0))
        finally:
            client.close()
    app.store.items.find_one({})  # the engine is open; checkpointing is its business
    return sum(f.stat().st_size for f in data.glob("joist.db*"))


def drop_mongo(mongo_uri: str) -> None:
    import pymongo
    client: Any = pymongo.MongoClient(mongo_uri)
    try:
        client.drop_database(client.get_default_database().name)
    finally:
        client.close()


def _item(folder: dict[str, Any], name: str, owner: ObjectId) -> dict[str, Any]:
    now = utcnow()
    return {"name": name, "lowerName": name.lower(), "description": "",
            "folderId": folder["_id"], "baseParentType": folder["baseParentType"],
            "baseParentId": folder["baseParentId"], "creatorId": owner, "created": now,
            "updated": now, "size": 0, "meta": {}, "fileCount": 0}


def build(app: App, n_items: int) -> dict[str, Any]:
    svc = app.services
    admin = svc.users.create(SYSTEM, login="admin", email="admin@example.org",
                             first_name="A", last_name="D", password="password")
    owner = svc.users.create(SYSTEM, login="owner", email="owner@example.org",
                             first_name="O", last_name="W", password="password")
    reader = svc.users.create(SYSTEM, login="reader", email="reader@example.org",
                              first_name="R", last_name="D", password="password")
    team = svc.groups.create(Principal.from_user(admin), "team")
    svc.groups.add_member(SYSTEM, team, reader, force=True)
    me = Principal.from_user(owner)
    coll = svc.collections.create(SYSTEM, "bench")
    svc.access.grant(SYSTEM, "collection", coll, "user", owner["_id"], 2)
    svc.access.grant(SYSTEM, "collection", coll, "group", team["_id"], READ)
    big = svc.folders.create(me, "collection", coll["_id"], "big")
    n_big = n_items // 10
    _bulk(app, big, n_big, owner["_id"], "file")
    # The rest in a tree of depth 10: a chain of folders, fanning out at each level.
    rest, chain, parent_type, parent = n_items - n_big, [], "collection", coll
    for level in range(DEPTH):
        parent = svc.folders.create(me, parent_type, parent["_id"], f"level{level}")
        parent_type = "folder"
        chain.append(parent)
    per_level = rest // DEPTH
    for level, folder in enumerate(chain):
        siblings = max(1, per_level // 5000)
        for s in range(siblings):
            target = folder if s == 0 else svc.folders.create(
                me, "folder", folder["_id"], f"side{s}")
            _bulk(app, target, per_level // siblings, owner["_id"], f"l{level}s{s}-")
    leaf_path = "/collection/bench/" + "/".join(f"level{i}" for i in range(DEPTH)) + \
        "/l9s0-00000000"
    return {"reader": Principal.from_user(app.store.get("user", reader["_id"])),
            "owner": me, "big": big, "leaf": leaf_path, "chain": chain, "n_big": n_big}


def _bulk(app: App, folder: dict[str, Any], count: int, owner: ObjectId, prefix: str) -> None:
    for start in range(0, count, BATCH):
        docs = [_item(folder, f"{prefix}{i:08d}", owner)
                for i in range(start, min(count, start + BATCH))]
        app.store.items.insert_many(docs)
    app.services.tree.sizes.count_items(folder["_id"], count)  # as ItemService.create does


CPU_US: dict[str, float] = {}  # label -> CPU microseconds per call of the last _rate


def _rate(fn: Any, seconds: float = 2.0, label: str = "") -> float:
    """Calls per second of wall time; also records CPU time per call, which a
    busy machine disturbs much less than wall time."""
    count, start, cpu = 0, time.perf_counter(), time.process_time()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        fn()
        count += 1
    if label:
        CPU_US[label] = (time.process_time() - cpu) / count * 1e6
    return count / (time.perf_counter() - start)


def measure(app: App, world: dict[str, Any]) -> dict[str, float]:
    svc, hier = app.services, app.hierarchy
    reader_view = hier.view(world["reader"])
    assert reader_view.stat(world["leaf"]).size == 0
    figures: dict[str, float] = {}
    svc.settings.set("joist.hierarchy.cache_ttl", 60.0)  # set() refreshes this process
    figures["resolve warm /s"] = _rate(lambda: reader_view.stat(world["leaf"]),
                                       label="resolve warm")
    svc.settings.set("joist.hierarchy.cache_ttl", 0.0)
    hier.cache.clear()
    figures["resolve cold /s"] = _rate(lambda: reader_view.stat(world["leaf"]),
                                       label="resolve cold")
    big_path = "/collection/bench/big"
    n_big = world["n_big"]
    for label, offset in (("first", 0), ("middle", max(0, (n_big - 1000) // 2))):
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            nodes = list(reader_view.listdir(big_path, offset=offset, limit=1000))
            samples.append((time.perf_counter() - start) * 1000)
            assert len(nodes) == min(1000, n_big - offset)
        figures[f"list page 1000 ms ({label})"] = statistics.median(samples)
    start = time.perf_counter()
    _items, _folder = svc.items.list(world["reader"], world["big"]["_id"],
                                     skip=n_big // 2, limit=50)
    figures["item page 50 (middle) ms"] = (time.perf_counter() - start) * 1000
    target = world["chain"][-1]
    counter = iter(range(10**9))
    samples, cpu = [], []
    for _ in range(3):
        samples.append(_rate(lambda: svc.items.create(world["owner"], target,
                                                      f"new-{next(counter)}"), 1.5, "create"))
        cpu.append(CPU_US["create"])
    figures["create items /s"] = statistics.median(samples)
    figures["create CPU us / item"] = statistics.median(cpu)
    figures["resolve warm CPU us"] = CPU_US["resolve warm"]
    figures["resolve cold CPU us"] = CPU_US["resolve cold"]
    return figures


def run(n_items: int, mongo_base: str | None) -> dict[str, float]:
    mongo_uri = _mongo_uri(mongo_base) if mongo_base else None
    with tempfile.TemporaryDirectory(prefix="joist-bench-") as tmp:
        app = build_app(_settings(Path(tmp), mongo_uri), env={})
        try:
            start = time.perf_counter()
            world = build(app, n_items)
            print(f"  built {n_items:,} items in {time.perf_counter() - start:.1f} s",
                  flush=True)
            size = store_bytes(app, Path(tmp), mongo_uri)
            print(f"  store on disk: {size / 2**20:,.1f} MiB, {size / n_items:,.0f} bytes "
                  "per item", flush=True)
            figures = measure(app, world)
            figures["store bytes / item"] = size / n_items
            return figures
        finally:
            app.close()
            if mongo_uri:
                drop_mongo(mongo_uri)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--engine", choices=("sqlite", "mongo"), default="sqlite")
    args = parser.parse_args()
    mongo_base = None
    if args.engine == "mongo":
        mongo_base = os.environ.get("JOIST_TEST_MONGO_URI")
        if not mongo_base:
            sys.exit("--engine mongo needs JOIST_TEST_MONGO_URI (a MongoDB server to use)")
    print(f"small store ({args.small:,} items, {args.engine})", flush=True)
    small = run(args.small, mongo_base)
    print(f"large store ({args.items:,} items, {args.engine})", flush=True)
    large = run(args.items, mongo_base)
    print(f"\n{'figure':34} {'small':>12} {'large':>12} {'large/small':>12}")
    for key in small:
        ratio = large[key] / small[key] if small[key] else float("nan")
        print(f"{key:34} {small[key]:12.1f} {large[key]:12.1f} {ratio:12.2f}")


if __name__ == "__main__":
    main()
