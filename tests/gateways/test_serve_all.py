"""`joist serve` as a user runs it: one process serving REST, WebDAV and SFTP,
printing where to connect, and stopping cleanly on SIGTERM."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paramiko
import requests

JOIST = [sys.executable, "-m", "joist.admin.cli"]


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    out: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return out


def test_serve_runs_every_gateway(cli_env: dict[str, str], tmp_path: Path) -> None:
    subprocess.run([*JOIST, "user", "create", "alice", "--email", "alice@example.org",
                    "--password-stdin"], input="alice-password\n", env=cli_env, text=True,
                   check=True, capture_output=True, timeout=60)
    proc = subprocess.Popen([*JOIST, "serve", "--port", "0"], env=cli_env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        lines, banner = _lines(proc), ""
        deadline = time.monotonic() + 60
        while "Data directory" not in banner and time.monotonic() < deadline:
            try:
                banner += lines.get(timeout=1)
            except queue.Empty:
                assert proc.poll() is None, banner
        rest = re.search(r"REST API: (http://\S+)/api/v1", banner)
        dav = re.search(r"WebDAV: (http://\S+/dav)", banner)
        sftp = re.search(r"sftp -P (\d+) LOGIN@(\S+)", banner)
        assert rest and dav and sftp, banner
        assert str(tmp_path / "data") in banner

        assert requests.get(rest.group(1) + "/api/v1/system/version",
                            timeout=10).json()["release"].startswith("5.")
        listing = requests.request("PROPFIND", dav.group(1) + "/user/alice/",
                                   headers={"Depth": "1"}, auth=("alice", "alice-password"),
                                   timeout=10)
        assert listing.status_code == 207 and "Private" in listing.text

        transport = paramiko.Transport((sftp.group(2), int(sftp.group(1))))
        try:
            transport.connect(username="alice", password="alice-password")
            client = paramiko.SFTPClient.from_transport(transport)
            assert client is not None
            assert sorted(client.listdir("/user/alice")) == ["Private", "Public"]
        finally:
            transport.close()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
