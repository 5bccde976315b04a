"""Metadata-store micro-benchmark: the hot queries of a big folder.

Loads ``--docs`` small documents (``parentId, name, lowerName, size, created``),
``--big`` of them in one folder, then times the operations the gateways lean
on and prints a table. Not a test: numbers depend on the machine.

    .venv/bin/python benchmarks/engine_bench.py --docs 1000000
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bson import ObjectId

from joist.core.db.engine import Collection, CollectionSpec, Index
from joist.core.db.sqlite import SQLiteEngine

ITEMS = CollectionSpec("item", indexes=(
    Index((("parentId", 1), ("lowerName", 1), ("_id", 1))),
    Index((("parentId", 1), ("name", 1)), unique=True),
))


def load(coll: Collection, docs: int, big: int, big_parent: ObjectId) -> float:
    """Bulk-load; returns documents per second."""
    parents = [ObjectId() for _ in range(max(1, (docs - big) // 100))]
    now = datetime.now(UTC)
    start = time.perf_counter()
    batch: list[dict[str, Any]] = []
    for i in range(docs):
        parent = big_parent if i < big else parents[i % len(parents)]
        name = f"File {i:08d}.dat"
        batch.append({"parentId": parent, "name": name, "lowerName": name.lower(),
                      "size": i * 7 % 100_000, "created": now})
        if len(batch) == 10_000:
            coll.insert_many(batch)
            batch = []
    if batch:
        coll.insert_many(batch)
    return docs / (time.perf_counter() - start)


def timed(fn: Callable[[int], Any], n: int) -> list[float]:
    """Seconds per call, for ``n`` calls."""
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t)
    return out


def row(name: str, samples: list[float], unit: str, scale: float) -> str:
    samples = sorted(samples)
    p = [samples[int(q * (len(samples) - 1))] * scale for q in (0.5, 0.99)]
    mean = statistics.fmean(samples) * scale
    return f"{name:<52} {mean:>10.1f} {p[0]:>10.1f} {p[1]:>10.1f}  {unit}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--big", type=int, default=100_000, help="documents in the big folder")
    ap.add_argument("--skip", type=int, default=50_000)
    ap.add_argument("--page", type=int, default=1000)
    ap.add_argument("--lookups", type=int, default=20_000)
    ap.add_argument("--inserts", type=int, default=20_000)
    ap.add_argument("--dir", type=Path, default=None, help="where to put the database")
    args = ap.parse_args()
    big = min(args.big, args.docs)
    skip = min(args.skip, max(0, big - args.page))

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp, \
            SQLiteEngine(Path(tmp) / "bench.sqlite") as engine:
        coll = engine.collection(ITEMS)
        parent = ObjectId()
        rate = load(coll, args.docs, big, parent)
        with engine.connection() as conn:
            conn.execute("ANALYZE")
        names = [f"File {i:08d}.dat" for i in random.sample(range(big), min(big, 1000))]
        sort = [("lowerName", 1), ("_id", 1)]
        print(f"\n{args.docs:,} documents, {big:,} in one folder; bulk load "
              f"{rate:,.0f} docs/s\n")
        print(f"{'operation':<52} {'mean':>10} {'p50':>10} {'p99':>10}")
        lookups = timed(lambda i: coll.find_one({"parentId": parent,
                                                 "name": names[i % len(names)]}),
                        args.lookups)
        print(row("find_one({parentId, name})", lookups, "µs", 1e6))
        print(row("find_one({_id})", timed(
            lambda i: coll.find_one({"_id": ObjectId()}), args.lookups // 4), "µs", 1e6))
        for label, kw in ((f"find(parent, sort, limit={args.page})",
                           {"limit": args.page}),
                          (f"find(parent, sort, skip={skip:,}, limit={args.page})",
                           {"skip": skip, "limit": args.page})):
            print(row(label, timed(lambda i, kw=kw: coll.find({"parentId": parent},
                                                              sort=sort, **kw), 20),
                      "ms", 1e3))
        marker = coll.find({"parentId": parent}, sort=sort, skip=skip, limit=1)[0]
        keyset = {"parentId": parent, "lowerName": {"$gt": marker["lowerName"]}}
        print(row(f"keyset page at {skip:,}: lowerName > last, limit={args.page}",
                  timed(lambda i: coll.find(keyset, sort=sort, limit=args.page), 20),
                  "ms", 1e3))
        print(row("count({parentId}) of the big folder",
                  timed(lambda i: coll.count({"parentId": parent}), 10), "ms", 1e3))
        print(row("full scan: find_one({lowerName: {$regex: '^zzz'}})",
                  timed(lambda i: coll.find_one({"lowerName": {"$regex": "^zzz"}}), 3),
                  "ms", 1e3))
        extra = ObjectId()
        inserts = timed(lambda i: coll.insert_one({
            "parentId": extra, "name": f"n{i}", "lowerName": f"n{i}", "size": i,
            "created": datetime.now(UTC)}), args.inserts)
        print(row("insert_one", inserts, "µs", 1e6)
              + f"   ({len(inserts) / sum(inserts):,.0f}/s)")
        incs = timed(lambda i: coll.find_one_and_update({"parentId": extra, "name": "n0"},
                                                        {"$inc": {"size": 1}}), 5000)
        print(row("find_one_and_update($inc)", incs, "µs", 1e6)
              + f"   ({len(incs) / sum(incs):,.0f}/s)")
        print("\nplans:")
        print("  children page:", coll.explain({"parentId": parent}, sort=sort, skip=skip,
                                               limit=args.page))
        print("  child by name:", coll.explain({"parentId": parent, "name": "x"}))


if __name__ == "__main__":
    main()
