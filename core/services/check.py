"""``joist check``: is the metadata store consistent with itself and the bytes?

Store checks: records whose parent is gone, sizes and file counts that do not
add up. Assetstore checks (by each adapter): blobs nobody references, blobs
that are missing or the wrong size, reference counts that are off, temp data of
uploads that no longer exist. Upload records: abandoned uploads (see
``abandoned``), whose records and temp bytes ``repair`` removes; the stored
bytes of a live upload's interrupted finalize count as that upload's
reference. ``repair`` fixes what can be fixed safely.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..acl import SYSTEM
from ..assetstores.base import ProblemKind, blob_key
from ..db.engine import Collection, Document
from . import Services
from .abandoned import AbandonedUploads, UploadStatus
from .sizes import DELETING

PAGE = 2000
Progress = Callable[[float | None, float | None, str | None], None]


@dataclass
class Finding:
    kind: str
    detail: str
    ref: Any = None
    fix: dict[str, Any] = field(default_factory=dict)
    problem: Any = None  # an assetstore Problem, repaired by its adapter
    assetstore_id: Any = None
    upload: UploadStatus | None = None  # an abandoned upload

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def _scan(coll: Collection, projection: list[str]) -> Iterator[Document]:
    last = None
    while True:  # ends: _id only grows, and a short page stops
        query: dict[str, Any] = {} if last is None else {"_id": {"$gt": last}}
        page = coll.find(query, sort=[("_id", 1)], limit=PAGE, projection=projection)
        yield from page
        if len(page) < PAGE:
            return
        last = page[-1]["_id"]


class Checker:
    """``max_idle``: seconds after which an unfinished upload is abandoned
    (None: the setting ``joist.uploads.abandoned_after``)."""

    def __init__(self, services: Services, *, max_idle: float | None = None) -> None:
        self.svc = services
        self.store = services.tree.store
        self.sweeper = AbandonedUploads.of(services)
        self.max_idle = max_idle
        self.in_progress: list[UploadStatus] = []  # live uploads seen by the last check

    def check(self, *, deep: bool = False, settled_before: float | None = None,
              progress: Progress | None = None) -> list[Finding]:
        """``progress(done, total, message)``: called after each step (the
        store, the uploads, then each assetstore)."""
        report = progress or (lambda done, total, message: None)
        stores = self.svc.assetstores.list()
        total = 2 + len(stores)
        findings: list[Finding] = []
        findings += self._tree()
        report(1, total, "store checked")
        findings += self._uploads(settled_before)
        report(2, total, "uploads checked")
        for number, doc in enumerate(stores, start=3):
            findings += self._assetstore(doc, deep=deep, settled_before=settled_before)
            report(number, total, f"assetstore {doc['name']} checked")
        return findings

    # ------------------------------------------------------------ uploads
    def _uploads(self, settled_before: float | None) -> list[Finding]:
        out: list[Finding] = []
        self.in_progress = []
        for upload in self.store.uploads.find({}, sort=[("_id", 1)]):
            status = self.sweeper.status(upload, max_idle=self.max_idle,
                                         settled_before=settled_before)
            if status.abandoned:
                out.append(Finding("abandoned-upload", status.describe(), upload["_id"],
                                   upload=status))
            else:
                self.in_progress.append(status)
        return out

    # ------------------------------------------------------------ tree
    def _tree(self) -> list[Finding]:
        out: list[Finding] = []
        s = self.store
        roots = {("user", d["_id"]) for d in _scan(s.users, ["_id"])}
        roots |= {("collection", d["_id"]) for d in _scan(s.collections, ["_id"])}
        folders: dict[Any, Document] = {
            d["_id"]: d for d in _scan(s.folders, ["parentId", "parentCollection", "size",
                                                   "baseParentType", "baseParentId"])}
        counts = {d["_id"]: d.get("items") for d in _scan(s.folder_counts, ["items"])}
        for fid, folder in folders.items():
            parent = (folder["parentCollection"], folder["parentId"])
            if parent not in roots and not (parent[0] == "folder" and parent[1] in folders):
                out.append(Finding("orphan-folder", f"folder {fid} has no parent", fid))
        file_sums: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
        items: dict[Any, Document] = {}
        for item in _scan(s.items, ["folderId", "size", "fileCount", DELETING]):
            items[item["_id"]] = item
            if item["folderId"] not in folders:
                out.append(Finding("orphan-item", f"item {item['_id']} has no folder",
                                   item["_id"]))
        for file in _scan(s.files, ["itemId", "size"]):
            if file.get("itemId") not in items:
                if file.get("itemId") is not None:  # attached files have no item
                    out.append(Finding("orphan-file", f"file {file['_id']} has no item",
                                       file["_id"]))
                continue
            sums = file_sums[file["itemId"]]
            sums[0] += int(file.get("size") or 0)
            sums[1] += 1
        folder_sums: dict[Any, int] = defaultdict(int)
        folder_items: dict[Any, int] = defaultdict(int)
        for iid, item in items.items():
            size, count = file_sums.get(iid, (0, 0))
            folder_items[item["folderId"]] += 1
            if item.get(DELETING):  # its size has left its folder already
                out.append(Finding("interrupted-delete", f"item {iid} was being deleted",
                                   iid))
                continue
            folder_sums[item["folderId"]] += size
            if int(item.get("size") or 0) != size:
                out.append(Finding("item-size", f"item {iid} says {item.get('size')} bytes, "
                                   f"its files hold {size}", iid,
                                   {"model": "item", "set": {"size": size}}))
            if item.get("fileCount") != count:
                out.append(Finding("item-file-count", f"item {iid} says "
                                   f"{item.get('fileCount')} files, holds {count}", iid,
                                   {"model": "item", "set": {"fileCount": count}}))
        root_sums: dict[tuple[str, Any], int] = defaultdict(int)
        for fid, folder in folders.items():
            size = folder_sums.get(fid, 0)
            root_sums[(folder["baseParentType"], folder["baseParentId"])] += size
            if int(folder.get("size") or 0) != size:
                out.append(Finding("folder-size", f"folder {fid} says {folder.get('size')} "
                                   f"bytes, its items hold {size}", fid,
                                   {"model": "folder", "set": {"size": size}}))
            n_items = folder_items.get(fid, 0)
            if counts.get(fid) != n_items:
                out.append(Finding("folder-item-count", f"folder {fid} counts "
                                   f"{counts.get(fid)} items, holds {n_items}", fid,
                                   {"model": "folder_count", "set": {"items": n_items}}))
        for fid in counts.keys() - folders.keys():
            out.append(Finding("orphan-folder-count", f"item count of folder {fid}, which "
                               "is gone", fid, {"model": "folder_count", "delete": True}))
        for model, coll in (("user", s.users), ("collection", s.collections)):
            for doc in _scan(coll, ["size"]):
                size = root_sums.get((model, doc["_id"]), 0)
                if int(doc.get("size") or 0) != size:
                    out.append(Finding("root-size", f"{model} {doc['_id']} says "
                                       f"{doc.get('size')} bytes, holds {size}", doc["_id"],
                                       {"model": model, "set": {"size": size}}))
        return out

    # ------------------------------------------------------------ bytes
    def live_references(self, assetstore_id: Any,
                        settled_before: float | None = None) -> dict[str, int]:
        """File records per blob, plus the references held by live uploads."""
        refs: dict[str, int] = defaultdict(int, self.sweeper.held_blobs(
            assetstore_id, max_idle=self.max_idle, settled_before=settled_before))
        for file in self.store.files.find({"assetstoreId": assetstore_id},
                                          projection=["sha512", "pending", "imported"]):
            key = blob_key(file)
            if key and not file.get("imported"):
                refs[key] += 1
        return dict(refs)

    def _assetstore(self, doc: Document, *, deep: bool,
                    settled_before: float | None) -> list[Finding]:
        adapter = self.svc.assetstores.adapter(doc["_id"])
        live = {str(u["_id"]) for u in self.store.uploads.find(
            {"assetstoreId": doc["_id"]}, projection=["_id"])}
        problems = adapter.check(live, self.live_references(doc["_id"], settled_before),
                                 settled_before=settled_before, deep=deep)
        return [Finding(str(problem.kind), f"assetstore {doc['name']}: {problem.detail}",
                        problem=problem, assetstore_id=doc["_id"]) for problem in problems]

    # ------------------------------------------------------------ repair
    def repair(self, findings: list[Finding],
               settled_before: float | None = None) -> list[Finding]:
        """Fix what can be fixed; returns the findings left as they were."""
        left: list[Finding] = []
        by_store: dict[Any, list[Finding]] = defaultdict(list)
        for f in findings:  # uploads first: their bytes are judged next
            if f.upload is not None and not self.sweeper.remove(
                    f.upload.upload, max_idle=self.max_idle, settled_before=settled_before):
                left.append(f)
        for f in findings:
            if f.upload is not None:
                continue
            if f.problem is not None:
                by_store[f.assetstore_id].append(f)
            elif f.fix and f.fix["model"] == "folder_count":  # not a Girder model
                if f.fix.get("delete"):
                    self.store.folder_counts.delete_one({"_id": f.ref})
                else:
                    self.store.folder_counts.update_one({"_id": f.ref}, {"$set": f.fix["set"]},
                                                        upsert=True)
            elif f.fix:
                self.store.of(f.fix["model"]).update_one({"_id": f.ref}, {"$set": f.fix["set"]})
            elif f.kind == "orphan-file":
                doc = self.store.files.find_one({"_id": f.ref})
                if doc is not None:
                    self.svc.files.delete(SYSTEM, doc, check_access=False)
            elif f.kind in ("orphan-item", "interrupted-delete"):
                doc = self.store.items.find_one({"_id": f.ref})
                if doc is not None:
                    self.svc.removal.delete_item(SYSTEM, doc, check_access=False)
            elif f.kind == "orphan-folder":
                doc = self.store.folders.find_one({"_id": f.ref})
                if doc is not None:
                    self.svc.removal.delete_folder(SYSTEM, doc, check_access=False)
            else:
                left.append(f)
        for assetstore_id, group in by_store.items():
            adapter = self.svc.assetstores.adapter(assetstore_id)
            unfixed = adapter.repair([f.problem for f in group],
                                     live_references=self.live_references(
                                         assetstore_id, settled_before),
                                     settled_before=settled_before)
            for f in group:
                ref = str(f.problem.ref)
                if f.problem.kind != ProblemKind.UNKNOWN_FILE and ref.startswith("pending/") \
                        and self._hand_over(assetstore_id, ref) and \
                        f.problem.kind in (ProblemKind.PENDING_HANDOVER,
                                           ProblemKind.REFCOUNT_MISMATCH):
                    continue  # counts set right and the blob handed over now
                if f.problem in unfixed:
                    left.append(f)
            # a hand-over interrupted half way shows on the content blob's
            # count (repaired above); finish the hand-overs it left
            for blob in getattr(adapter, "pending_blobs", list)():
                self.svc.files.handover.run(assetstore_id, blob["pending"])
            if hasattr(adapter, "prune_tombstones"):
                adapter.prune_tombstones()
        return left

    def _hand_over(self, assetstore_id: Any, key: str) -> bool:
        """Finish the hand-over of the pending blob ``key``: True when done."""
        return self.svc.files.handover.run(assetstore_id, key.rsplit("/", 1)[1]) is not None
