"""``GET system/check``'s status report (Girder's ``getStatus``): what anyone
may know in ``basic`` mode, cheap process facts for admins in ``quick``; the
``slow`` mode adds the consistency check (``check.Checker``) on top."""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from typing import Any

from ..errors import AccessDeniedError, AuthenticationError, ValidationError

MODES = ("basic", "quick", "slow")


def _boot_time() -> float | None:
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            for line in stat:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def status(mode: str, *, anonymous: bool, site_admin: bool,
           started: float) -> dict[str, Any]:
    """The report for ``mode``; modes above ``basic`` are for site admins."""
    if mode not in MODES:
        raise ValidationError(f"Invalid mode: {mode}; use one of {', '.join(MODES)}.",
                              field="mode")
    if mode != "basic" and not site_admin:
        if anonymous:
            raise AuthenticationError("You must be logged in.")
        raise AccessDeniedError("Administrator access required.")
    out: dict[str, Any] = {"bootTime": _boot_time(), "currentTime": time.time(),
                           "processStartTime": started}
    if mode != "basic":
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out.update(cpuCount=os.cpu_count(), processName=os.path.basename(sys.argv[0]),
                   pid=os.getpid(), threads=threading.active_count(),
                   processCpuTimes={"user": usage.ru_utime, "system": usage.ru_stime},
                   processMemory={"maxrss": usage.ru_maxrss * 1024})
    return out
