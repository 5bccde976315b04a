"""Named fault-injection points: a crash on demand at one step of a write path.

Each write path calls ``point(name)`` between the steps whose interruption
must stay harmless. A point does nothing unless armed through the environment
variable ``JOIST_FAULT_POINTS=name[,name...]``, read once per process: an armed
point kills the process at once with SIGKILL (no cleanup, no ``finally``, no
atexit), as a power cut or the OOM killer would. Tests arm points in a server
they start as a subprocess, never in their own process.
"""

from __future__ import annotations

import functools
import os
import signal

__all__ = ["ENV", "POINTS", "armed", "point"]

ENV = "JOIST_FAULT_POINTS"

POINTS: tuple[str, ...] = (
    # Bytes of a chunk (REST) or a stream (WebDAV, FUSE) partly in the temp file.
    "upload.chunk.mid_write",
    # A REST chunk fully in the temp file, the upload record not yet updated.
    "upload.chunk.after_write",
    # A streaming upload appended some bytes and is waiting for more.
    "upload.stream.after_append",
    # A streaming upload's length is recorded; finalize has not started.
    "upload.stream.at_finish",
    # Finalize: bytes complete and synced, the temp file not yet renamed.
    "upload.finalize.before_rename",
    # Finalize: the blob is in place, its reference not yet counted.
    "upload.finalize.after_rename",
    # Finalize: the reference is counted, no file record yet.
    "upload.finalize.after_refcount",
    # Finalize: the file record exists, the upload record not yet deleted.
    "upload.finalize.after_record",
    # Replace: the file record names the new bytes, the old ones not released.
    "upload.replace.after_update",
    # Copy: a reference taken for the copy, its file record not yet written.
    "file.copy.after_reference",
    # Delete: the file record is gone, its reference not yet released.
    "file.delete.after_record",
    # Hand-over of a pending blob: linked to its content address, nothing counted.
    "blob.handover.after_link",
    # Hand-over: the content blob counts a record that still names the pending blob.
    "blob.handover.after_count",
    # Hand-over: the record names the content blob; the pending count not yet lowered.
    "blob.handover.after_record",
)


@functools.cache
def armed() -> frozenset[str]:
    """The points armed for this process (read from the environment once)."""
    names = frozenset(n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip())
    unknown = names - set(POINTS)
    if unknown:  # a typo would silently test nothing
        raise ValueError(f"{ENV} names unknown fault points: {', '.join(sorted(unknown))}")
    return names


def point(name: str) -> None:
    """Kill this process here if ``name`` is armed; otherwise nothing."""
    if name not in armed():
        if name not in POINTS:
            raise ValueError(f"unknown fault point {name!r}")
        return
    os.write(2, f"joist: fault point {name} reached, killing the process\n".encode())
    os.kill(os.getpid(), signal.SIGKILL)
