"""Which process owns a piece of work, and is that process still running?

A streaming upload (WebDAV PUT, FUSE write) lives in the memory of the process
that receives it: when that process is gone nobody can finish it. Its record
names the owner (host, boot, pid and the pid's start time, so a reused pid is
not mistaken for the owner) so that ``joist check`` can tell it is dead at
once instead of waiting for it to age.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Mapping
from typing import Any

__all__ = ["identity", "is_alive"]


@functools.cache
def _pid_namespace() -> int | None:
    """Pids mean something only within one pid namespace (containers)."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


@functools.cache
def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip() or None
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    """The pid's start time in clock ticks since boot (Linux), None if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after it.
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def identity() -> dict[str, Any]:
    """This process, as stored on the work it owns."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot": _boot_id(), "pidns": _pid_namespace(),
            "pid": pid, "start": _start_time(pid)}


def is_alive(owner: Any) -> bool | None:
    """True or False when it can be told from here (same host, boot and pid
    namespace, with /proc); None when it cannot (another machine or
    container, or no /proc)."""
    if not isinstance(owner, Mapping) or owner.get("host") != socket.gethostname():
        return None
    boot, start, pid = owner.get("boot"), owner.get("start"), owner.get("pid")
    if boot is None or start is None or _boot_id() is None or not isinstance(pid, int):
        return None
    if boot != _boot_id():
        return False  # the machine rebooted since: every process of then is gone
    if owner.get("pidns") is None or owner.get("pidns") != _pid_namespace():
        return None
    return _start_time(pid) == start
