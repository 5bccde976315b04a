"""Mounting and unmounting: checks of the mount point, the FUSE loop, the
mount record in the store, and what happens on the way out.

``Mount(view, options, mounts).serve()`` blocks until the filesystem is unmounted
(``fusermount3 -u``, ``joist mount PATH -u``, SIGTERM/SIGINT/SIGHUP). While
it runs, the mount is recorded in the store with a heartbeat; the record goes
when the loop ends. ``auto_unmount`` leaves no dead mount behind even when
the process is killed outright.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from joist.core.auth import LiveGrant
from joist.core.errors import CoreError, StorageError, ValidationError
from joist.core.hierarchy import HierarchyView
from joist.core.services.mounts import HEARTBEAT_SECONDS, MountService

from . import libfuse
from .operations import JoistOperations
from .settings import MountOptions

log = logging.getLogger("joist.fuse")


def check_mountpoint(path: Path) -> None:
    """A mount point must be an existing, empty directory nothing is mounted on."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ValidationError(f"The mount point {path} does not exist.") from None
    except OSError as exc:
        if exc.errno == errno.ENOTCONN:
            raise ValidationError(f"A dead mount is left at {path}: remove it with "
                                  f"`joist mount {path} -u`.") from None
        raise ValidationError(f"Cannot use {path} as a mount point: {exc.strerror}.") from None
    if not os.path.isdir(path) or not (info.st_mode & 0o040000):
        raise ValidationError(f"The mount point {path} is not a directory.")
    if os.path.ismount(path):
        raise ValidationError(f"Something is already mounted at {path}.")
    with os.scandir(path) as entries:
        if next(entries, None) is not None:
            raise ValidationError(f"The mount point {path} is not empty.")


def unmount(path: Path, *, lazy: bool = False) -> None:
    """Unmount with fusermount3 (else fusermount, else umount)."""
    commands = [["fusermount3", "-u"], ["fusermount", "-u"], ["umount"]]
    errors = []
    for command in commands:
        if shutil.which(command[0]) is None:
            continue
        if lazy:
            command = [*command, "-l" if command[0] == "umount" else "-z"]
        done = subprocess.run([*command, os.fspath(path)], capture_output=True, text=True,
                              timeout=60, check=False)
        if done.returncode == 0:
            return
        errors.append(done.stderr.strip() or f"{command[0]} failed")
    raise ValidationError(f"Could not unmount {path}: " + ("; ".join(errors) or
                                                         "no unmount tool found"))


class Mount:
    """One mount of one view. ``live`` (core's grant holder) is asked before
    every operation: once the credentials behind the view are revoked (API key
    deleted, account disabled...) every operation answers EACCES, and a change
    of rights or groups gives the next operation a view to match.
    ``still_valid`` (by default ``live.valid``) is asked at every heartbeat:
    when it turns false the filesystem unmounts itself."""

    def __init__(self, view: HierarchyView, options: MountOptions, mounts: MountService, *,
                 on_ready: Callable[[Mount], None] | None = None,
                 still_valid: Callable[[], bool] | None = None,
                 live: LiveGrant | None = None) -> None:
        self.view = view
        files = libfuse.raise_file_limit()
        # Leave most descriptors to open files and the store: a quarter at most idle.
        self.options = options = dataclasses.replace(
            options, idle_readers=max(16, min(options.idle_readers, files // 4)))
        self.operations = JoistOperations(view, options, live=live)
        if still_valid is None and live is not None:
            still_valid = live.valid
        self.operations.on_mounted = self._mounted
        self._on_ready = on_ready
        self._still_valid = still_valid
        self._mounts = mounts  # core's mount records, handed over by admin/
        self._record: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._ready_done = threading.Event()
        self._mounted_once = threading.Event()
        self._lock = threading.Lock()  # guards _record, against the stop that may race the mount
        self.failure: BaseException | None = None

    def fuse_options(self) -> dict[str, Any]:
        opts = self.options
        out: dict[str, Any] = {
            "fsname": "joist", "subtype": "joist", "auto_unmount": True,
            "entry_timeout": opts.entry_timeout, "attr_timeout": opts.attr_timeout,
            "negative_timeout": opts.entry_timeout,
        }
        if self.view.read_only:
            out["ro"] = True
        if opts.allow_other:
            out["allow_other"] = True
        if opts.debug:
            out["debug"] = True
        return out

    def serve(self) -> None:
        check_mountpoint(self.options.mountpoint)
        self._mounts.clean_stale()
        try:
            libfuse.run(self.operations, self.options.mountpoint, self.fuse_options())
        except RuntimeError as exc:
            # fuse_main returns 8 when its loop ended on a signal (SIGTERM...):
            # after a mount, that is the normal way out.
            if not (self._mounted_once.is_set() and str(exc) == "8"):
                raise StorageError(f"Mounting {self.options.mountpoint} failed (see the "
                                   f"log above): libfuse error {exc}.") from None
        finally:
            self._stop.set()
            if self._mounted_once.is_set():
                self._ready_done.wait(timeout=30)
            self._forget()
        if self.failure is not None:
            raise self.failure

    # ------------------------------------------------------------ while mounted
    def _mounted(self) -> None:
        self._mounted_once.set()
        try:
            opts = self.options
            # Served once the kernel has the INIT reply, which would reset the
            # readahead window to its 128 KiB default if set before.
            os.stat(opts.mountpoint)
            libfuse.set_read_ahead(opts.mountpoint, opts.read_ahead_kb)
            with self._lock:
                if self._stop.is_set():
                    return
                self._record = self._mounts.register(
                    opts.mountpoint, self.view.principal, read_only=self.view.read_only,
                    extra={"directIo": opts.direct_io})
            if self._on_ready is not None:
                self._on_ready(self)
        except Exception as exc:
            self.failure = exc if isinstance(exc, CoreError) else \
                StorageError(f"The mount could not be recorded: {exc}")
            log.error("unmounting: %s", self.failure)
            self._unmount_self()
            return
        finally:
            self._ready_done.set()
        threading.Thread(target=self._heartbeat, name="fuse-heartbeat", daemon=True).start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            if not self.beat():
                return

    def beat(self) -> bool:
        """One heartbeat: refresh the record, check the credentials. False
        when the mount is ending (the credentials no longer hold)."""
        try:
            record = self._record
            alive = record is not None and self._mounts.heartbeat(record["_id"])
            if record is not None and not alive:  # cleaned by mistake: back in
                self._record = self._mounts.register(
                    self.options.mountpoint, self.view.principal,
                    read_only=self.view.read_only)
            if self._still_valid is not None and not self._still_valid():
                log.warning("the mount's credentials are no longer valid: unmounting")
                self._unmount_self()
                return False
        except Exception:
            log.exception("mount heartbeat failed")
        return True

    def _unmount_self(self) -> None:
        try:
            unmount(self.options.mountpoint, lazy=True)
        except CoreError as exc:
            log.error("%s", exc)

    def _forget(self) -> None:
        with self._lock:
            record, self._record = self._record, None
        if record is not None:
            try:
                self._mounts.unregister(record["_id"])
            except Exception:
                log.exception("could not remove the mount record")


__all__ = ["Mount", "check_mountpoint", "unmount"]
