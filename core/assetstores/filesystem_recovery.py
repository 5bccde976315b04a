"""Uploads of the filesystem assetstore after a crash: resuming a finalize that
stopped after its rename, and telling a live upload from an abandoned one.

Before the rename, a finalize writes the blob key it installs (a digest, or
``pending/<uuid>`` for a large upload hashed later) into
``temp/<id>.done`` and holds that file's ``flock`` until the upload service has
written the file record and calls ``forget_upload``. A retry that finds no
temp file but a ``.done`` file nobody holds completes from the installed blob;
one that finds it held answers that the upload is being finalized. The kernel
drops the lock of a process that dies, so "held" means "alive".
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, NotFoundError
from .base import UploadActivity
from .filesystem import SHA512_RE, _upload_id, _upload_size
from .filesystem_pending import PENDING_KEY_RE
from .localio import locked, os_errors, pwrite_all

if TYPE_CHECKING:
    from .filesystem import FilesystemAssetstore

__all__ = ["FinalizeRecovery"]


class FinalizeRecovery:
    """The ``.done`` files of one assetstore, and those this process holds."""

    def __init__(self, store: FilesystemAssetstore) -> None:
        self.store = store
        self._held: dict[str, int] = {}  # upload id -> locked descriptor
        self._lock = threading.Lock()  # guards _held

    # -- the finalizer's side -------------------------------------------------
    def mark(self, upload_id: str, digest: str) -> None:
        """Record (and hold) the blob ``upload_id`` is about to become."""
        fd = os.open(self.store.done_path(upload_id),
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, self.store.perms)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            pwrite_all(fd, digest.encode("ascii"), 0)
        except BaseException:
            os.close(fd)
            raise
        self._hold(upload_id, fd)

    def release(self, upload_id: str) -> None:
        """Drop the ``.done`` file, then its lock (the file record exists, or
        the upload is aborted)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.store.done_path(upload_id))
        with self._lock:
            fd = self._held.pop(upload_id, None)
        if fd is not None:
            os.close(fd)

    def unhold(self, upload_id: str) -> None:
        """Let go of the lock but keep the ``.done`` file: the finalize failed
        after the rename, and a retry may resume it."""
        with self._lock:
            fd = self._held.pop(upload_id, None)
        if fd is not None:
            os.close(fd)

    def _hold(self, upload_id: str, fd: int) -> None:
        with self._lock:
            previous = self._held.pop(upload_id, None)
            self._held[upload_id] = fd
        if previous is not None:
            os.close(previous)

    # -- a retry's side -------------------------------------------------------
    def installed(self, upload: Mapping[str, Any]) -> str:
        """The digest of the blob a finalize installed for ``upload``,
        checked present; ``NotFoundError`` otherwise."""
        upload_id = _upload_id(upload)
        try:
            fd = os.open(self.store.done_path(upload_id), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise _no_data(upload_id) from None
        try:
            return self._present(upload, _read_digest(fd, upload_id))
        finally:
            os.close(fd)

    def resume(self, upload: Mapping[str, Any]) -> dict[str, Any]:
        """Finish a finalize that stopped after its rename. Whether its
        reference was counted is unknown, so count it (again): a count too
        high is harmless and ``joist check`` repairs it; one too low would
        let a delete remove bytes still in use."""
        upload_id, size = _upload_id(upload), _upload_size(upload)
        with os_errors("Resuming a finalize"):
            try:
                fd = os.open(self.store.done_path(upload_id), os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                raise _no_data(upload_id) from None
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise ConflictError("This upload is being finalized by another "
                                        "request.") from None
                if os.fstat(fd).st_nlink == 0:
                    raise NotFoundError("The upload was finalized or aborted meanwhile.")
                digest = _read_digest(fd, upload_id)
                with locked(self.store.key_lock(digest)):
                    self._present(upload, digest)  # and not deleted meanwhile
                    self.store._count_new_reference(digest, size)
            except BaseException:
                os.close(fd)
                raise
        self._hold(upload_id, fd)
        return {"size": size, **self.store.blob_fields(digest)}

    def _present(self, upload: Mapping[str, Any], digest: str) -> str:
        try:
            present = os.stat(self.store.key_path(digest)).st_size == _upload_size(upload)
        except FileNotFoundError:
            present = False
        if not present:
            raise NotFoundError(f"The bytes of upload {_upload_id(upload)} were lost after "
                                "a crash; cancel the upload and start again.")
        return digest

    # -- joist check, system/uploads -------------------------------------------
    def activity(self, upload: Mapping[str, Any]) -> UploadActivity:
        """Temp bytes, last write, and whether a process holds the upload's
        temp or ``.done`` file now; after a rename, the blob it holds."""
        upload_id = _upload_id(upload)
        with os_errors("Inspecting an upload"):
            for path in (self.store.temp_path(upload_id), self.store.done_path(upload_id)):
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue
                try:
                    return self._activity(upload, fd, temp=path.endswith(".part"))
                finally:
                    os.close(fd)
        return UploadActivity(temp_bytes=0)

    def _activity(self, upload: Mapping[str, Any], fd: int, *, temp: bool) -> UploadActivity:
        st = os.fstat(fd)
        try:  # a writer or finalizer holds it exclusively
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            busy = False
        except BlockingIOError:
            busy = True
        if temp:
            return UploadActivity(temp_bytes=st.st_size, last_write=st.st_mtime, busy=busy)
        blob = None
        with contextlib.suppress(NotFoundError):
            digest = self._present(upload, _read_digest(fd, _upload_id(upload)))
            blob = {"size": _upload_size(upload), **self.store.blob_fields(digest)}
        return UploadActivity(temp_bytes=0, last_write=st.st_mtime, busy=busy, blob=blob)


def _read_digest(fd: int, upload_id: str) -> str:
    digest = os.pread(fd, 256, 0).decode("ascii", "replace").strip()
    if not (SHA512_RE.match(digest) or PENDING_KEY_RE.match(digest)):
        raise _no_data(upload_id)
    return digest


def _no_data(upload_id: str) -> NotFoundError:
    return NotFoundError(f"Upload {upload_id} has no data here: it was finalized, "
                         "aborted or never begun.")
