"""Uploads of the filesystem assetstore after a crash: resuming a finalize that
stopped after its rename, and telling a live upload from an abandoned one.

A finalize names the blob it is about to install in ``temp/<id>.done`` (a
symlink to the blob) before the rename, and the upload service drops that link
once the file record exists (``forget_upload``). A retry of the upload that
finds no temp file but that link completes from the installed blob.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from .base import UploadActivity
from .filesystem import SHA512_RE, _relpath, _upload_id, _upload_size
from .localio import locked, os_errors

if TYPE_CHECKING:
    from .filesystem import FilesystemAssetstore

__all__ = ["FinalizeRecovery"]


class FinalizeRecovery:
    def __init__(self, store: FilesystemAssetstore) -> None:
        self.store = store

    def done_digest(self, upload_id: str) -> str | None:
        """The digest the ``.done`` link of ``upload_id`` names, if any."""
        try:
            target = os.readlink(self.store.done_path(upload_id))
        except OSError:
            return None
        digest = os.path.basename(target)
        return digest if SHA512_RE.match(digest) else None

    def installed(self, upload: Mapping[str, Any]) -> str:
        """The digest of the blob an interrupted finalize installed for
        ``upload``, checked present; ``NotFoundError`` otherwise."""
        upload_id, size = _upload_id(upload), _upload_size(upload)
        digest = self.done_digest(upload_id)
        if digest is None:
            raise NotFoundError(f"Upload {upload_id} has no data here: it was "
                                "finalized, aborted or never begun.")
        try:
            present = os.stat(self.store.blob_path(digest)).st_size == size
        except FileNotFoundError:
            present = False
        if not present:
            raise NotFoundError(f"The bytes of upload {upload_id} were lost after a "
                                "crash; cancel the upload and start again.")
        return digest

    def resume(self, upload: Mapping[str, Any]) -> dict[str, Any]:
        """Finish a finalize that stopped after the rename. Whether its
        reference was counted is unknown, so count it (again): a count too
        high is harmless and ``joist check`` repairs it; one too low would
        let a delete remove bytes still in use."""
        size = _upload_size(upload)
        with os_errors("Resuming a finalize"):
            digest = self.installed(upload)
            with locked(self.store.bucket_lock(digest)):
                digest = self.installed(upload)  # not deleted meanwhile
                self.store._count_new_reference(digest, size)
        return {"size": size, "sha512": digest, "path": _relpath(digest)}

    def activity(self, upload: Mapping[str, Any]) -> UploadActivity:
        """Temp bytes, last write and whether a writer holds the temp file's
        lock now; for a finalize stopped after its rename, the blob it holds."""
        upload_id = _upload_id(upload)
        with os_errors("Inspecting an upload"):
            try:
                fd = os.open(self.store.temp_path(upload_id), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return self._installed_activity(upload_id)
            try:
                st = os.fstat(fd)
                try:  # a writer or finalizer holds it exclusively
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    busy = False
                except BlockingIOError:
                    busy = True
            finally:
                os.close(fd)
        return UploadActivity(temp_bytes=st.st_size, last_write=st.st_mtime, busy=busy)

    def _installed_activity(self, upload_id: str) -> UploadActivity:
        digest = self.done_digest(upload_id)
        if digest is None:
            return UploadActivity(temp_bytes=0)
        try:
            when: float | None = os.lstat(self.store.done_path(upload_id)).st_mtime
        except FileNotFoundError:
            when = None
        try:
            size = os.stat(self.store.blob_path(digest)).st_size
        except FileNotFoundError:
            return UploadActivity(temp_bytes=0, last_write=when)
        return UploadActivity(temp_bytes=0, last_write=when,
                              blob={"size": size, "sha512": digest, "path": _relpath(digest)})
