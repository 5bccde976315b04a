"""``joist serve`` as a user runs it, for the tests that need the real process:
started on a free port, its banner read with a deadline, stopped with SIGTERM
(and killed if it does not stop) even when the test fails."""

from __future__ import annotations

import contextlib
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

JOIST = [sys.executable, "-m", "joist.admin.cli"]
START_DEADLINE = 60.0


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    out: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return out


@contextlib.contextmanager
def serve_process(env: dict[str, str], *args: str
                  ) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The process and its banner once printed; killed at the end if still
    running (a test may kill it itself, e.g. with SIGKILL). ``args``: more
    options of ``joist serve``, e.g. ``--workers 2``."""
    proc = subprocess.Popen([*JOIST, "serve", "--port", "0", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        lines, banner = _lines(proc), ""
        deadline = time.monotonic() + START_DEADLINE
        while "Data directory" not in banner and time.monotonic() < deadline:
            try:
                banner += lines.get(timeout=1)
            except queue.Empty:
                assert proc.poll() is None, banner
        assert "Data directory" in banner, banner
        yield proc, banner
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


@contextlib.contextmanager
def joist_serve_process(env: dict[str, str], *args: str
                        ) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``serve_process`` that, on a clean exit of the block, stops the server
    with SIGTERM and requires status 0."""
    with serve_process(env, *args) as (proc, banner):
        yield proc, banner
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


@contextlib.contextmanager
def joist_serve(env: dict[str, str], *args: str) -> Iterator[str]:
    """Yield the banner (where to connect) once printed; on a clean exit of the
    block, SIGTERM must stop the server with status 0."""
    with joist_serve_process(env, *args) as (_proc, banner):
        yield banner
