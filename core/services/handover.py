"""Hand-overs of pending blobs: large filesystem uploads are committed before
their SHA-512 is known (``assetstores.filesystem_pending``); this runs their
hashing and deduplication in the background and moves their file records.

A hand-over is queued when an upload commits a pending blob: as a rerun-safe
job when the ``jobs`` plugin is loaded (its lease recovery reruns one lost with
its process), else on this service's own background thread. A serving process
also sweeps at start (every pending blob with references is queued again),
and ``joist check --repair`` runs what is left, so a
hand-over lost in a crash is only late, never lost. Running one twice, or in
two processes at once, is harmless.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from typing import Any

from bson import ObjectId

from ..assetstores.registry import AssetstoreRegistry
from ..db.engine import Collection, Document
from ..events import Event, EventBus
from ..jobs.runtime import JOBS_LOADED, jobs_runtime

__all__ = ["JOB_TYPE", "BlobHandover"]

log = logging.getLogger("joist.handover")
JOB_TYPE = "assetstore.handover"
SERVE_START = "joist.serve.start"
_QUEUE_MAX = 100_000  # queued hand-overs kept in memory; the rest wait for a sweep
_RETRIES = 20  # rounds while in-flight copies still hold the pending blob


class _Records:
    """The file records of one assetstore (``filesystem_pending.RecordMover``)."""

    def __init__(self, files: Collection, assetstore_id: Any) -> None:
        self.files, self.assetstore_id = files, assetstore_id

    def pointing(self, key: str, limit: int) -> list[Any]:
        return [d["_id"] for d in self.files.find(
            {"pending": key.rsplit("/", 1)[1], "assetstoreId": self.assetstore_id},
            projection=["_id"], limit=limit)]

    def move(self, record_id: Any, key: str, fields: dict[str, Any]) -> bool:
        # Only while it names the pending blob: a replace or delete wins.
        return bool(self.files.update_one(
            {"_id": record_id, "pending": key.rsplit("/", 1)[1]},
            {"$set": fields, "$unset": {"pending": ""}}).matched)


class BlobHandover:
    def __init__(self, files: Collection, assetstores: AssetstoreRegistry,
                 events: EventBus) -> None:
        self.files = files
        self.assetstores = assetstores
        self.events = events
        self._queue: queue.Queue[tuple[Any, str] | None] = queue.Queue(maxsize=_QUEUE_MAX)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards _thread
        self._stopped = threading.Event()
        if (runtime := jobs_runtime(events)) is not None:
            self._register(runtime)
        events.bind(JOBS_LOADED, "blob_handover", lambda event: self._register(event.info))
        events.bind(SERVE_START, "blob_handover", self._sweep_soon)

    # ------------------------------------------------------------ running
    def run(self, assetstore_id: Any, pending: str) -> str | None:
        """Hand the pending blob over now; its digest when done (None while
        references to it remain, or when it is gone)."""
        adapter = self.assetstores.adapter(assetstore_id)
        hand_over = getattr(adapter, "hand_over", None)
        if hand_over is None:
            return None
        oid = ObjectId(assetstore_id) if not isinstance(assetstore_id, ObjectId) \
            else assetstore_id
        digest = hand_over({"pending": pending}, _Records(self.files, oid))
        if not isinstance(digest, str):
            return None
        _prune(adapter)  # the tombstones of earlier hand-overs, once settled
        return digest

    def settle(self, file: Document) -> Document:
        """``file`` with its sha512: a pending blob is handed over now (the
        hashsum plugin asks for a digest that must be right)."""
        if not file.get("pending") or not file.get("assetstoreId"):
            return file
        self.run(file["assetstoreId"], str(file["pending"]))
        return self.files.find_one({"_id": file["_id"]}) or file

    # ------------------------------------------------------------ scheduling
    def schedule(self, assetstore_id: Any, blob: dict[str, Any]) -> None:
        """Queue the hand-over of a newly committed pending blob (nothing for
        any other blob)."""
        pending = blob.get("pending")
        if not pending:
            return
        runtime = jobs_runtime(self.events)
        if runtime is not None:
            try:
                runtime.create_and_schedule(
                    "Hash and deduplicate an upload", JOB_TYPE,
                    kwargs={"assetstoreId": str(assetstore_id), "pending": str(pending)})
                return
            except Exception:  # the blob is served meanwhile; the thread does it
                log.exception("could not queue the hand-over of %s as a job", pending)
        self._enqueue(assetstore_id, str(pending))

    def _enqueue(self, assetstore_id: Any, pending: str) -> None:
        if self._stopped.is_set():
            return
        try:
            self._queue.put_nowait((assetstore_id, pending))
        except queue.Full:
            log.warning("hand-over queue full: %s waits for the next sweep", pending)
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="blob-handover",
                                                daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while not self._stopped.is_set():
            try:
                task = self._queue.get(timeout=5)
            except queue.Empty:
                with self._lock:  # idle: end; the next schedule starts another
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            if task is None:
                return
            self._attempt(*task)

    def _attempt(self, assetstore_id: Any, pending: str) -> None:
        for attempt in range(_RETRIES):
            try:
                if self.run(assetstore_id, pending) is not None:
                    return
            except Exception:
                log.exception("hand-over of %s failed; the next sweep retries", pending)
                return
            # references held by in-flight copies: their records come soon
            if self._stopped.wait(min(0.05 * (attempt + 1), 1.0)):
                return

    def sweep(self) -> int:
        """Queue every pending blob with references in every filesystem
        assetstore; returns how many were queued."""
        queued = 0
        for doc in self.assetstores.list():
            try:
                adapter = self.assetstores.adapter(doc["_id"])
            except Exception:  # an assetstore this process cannot reach
                continue
            listing = getattr(adapter, "pending_blobs", None)
            if listing is None:
                continue
            _prune(adapter)
            for blob in listing():
                self.schedule(doc["_id"], blob)
                queued += 1
        return queued

    def _sweep_soon(self, _event: Event) -> None:
        def sweep() -> None:
            try:
                queued = self.sweep()
            except Exception:
                log.exception("the sweep of pending blobs failed")
                return
            if queued:
                log.info("%d pending blob(s) queued for their hand-over", queued)
        threading.Thread(target=sweep, name="blob-handover-sweep", daemon=True).start()

    def _register(self, runtime: Any) -> None:
        def job(ctx: Any) -> None:
            assetstore_id, pending = ctx.kwargs["assetstoreId"], ctx.kwargs["pending"]
            for attempt in range(_RETRIES):
                if self.run(assetstore_id, pending) is not None:
                    return
                self._stopped.wait(min(0.05 * (attempt + 1), 1.0))
            ctx.log("References to the pending blob remain; the next sweep moves them.")
        # hashing again and moving what is left is harmless: a lost job reruns
        runtime.register_type(JOB_TYPE, job, rerun_safe=True)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the background thread (a hand-over in progress ends first)."""
        self._stopped.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
            thread.join(timeout)


def _prune(adapter: Any) -> None:
    """Drop settled redirects where the assetstore keeps pending blobs."""
    prune = getattr(adapter, "prune_tombstones", None)
    if prune is not None:
        prune()
