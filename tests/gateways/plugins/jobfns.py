"""Job functions the subprocess tests run as Girder-style local jobs
(``JobsRuntime.create_local_job(module=__name__, function=...)``): a server
or worker process imports them by name, so no plugin has to be installed."""

from __future__ import annotations

import os
import time
from pathlib import Path

from joist.core.jobs import JobContext

LIMIT = 60.0  # seconds a waiting job waits at most (bounded even if a test dies)


def until_file(ctx: JobContext) -> None:
    """Run until the file ``kwargs["release"]`` exists (or the job is canceled)."""
    release = Path(ctx.kwargs["release"])
    ctx.log(f"started in process {os.getpid()}")
    end = time.monotonic() + LIMIT
    while not release.exists() and not ctx.canceled and time.monotonic() < end:
        time.sleep(0.05)
    ctx.progress(1, 1, "released")


def quick(ctx: JobContext) -> None:
    ctx.progress(1, 1, f"ran in process {os.getpid()}")
