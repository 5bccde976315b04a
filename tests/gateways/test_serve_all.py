"""`joist serve` as a user runs it: one process (or a supervisor and its
workers) serving REST, WebDAV and SFTP, printing where to connect, and stopping
cleanly on SIGTERM."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import paramiko
import pytest
import requests

from tests.serve_process import JOIST, joist_serve


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_runs_every_gateway(cli_env: dict[str, str], tmp_path: Path,
                                  workers: str) -> None:
    subprocess.run([*JOIST, "user", "create", "alice", "--email", "alice@example.org",
                    "--password-stdin"], input="alice-password\n", env=cli_env, text=True,
                   check=True, capture_output=True, timeout=60)
    with joist_serve(cli_env, "--workers", workers) as banner:
        # --workers 1 is today's single process; more: a supervisor says so once.
        assert ("2 worker processes" in banner) is (workers == "2"), banner
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
