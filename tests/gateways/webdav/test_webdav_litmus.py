"""litmus (the WebDAV server test suite, Debian package ``litmus``) against a
live server: the suites basic, copymove, props, locks and http, in full.

Every test must pass and none may warn. No warning is tolerated, so none is
explained here; a new one fails this test with litmus's own words.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.gateways.webdav.conftest import DavSite
from tests.world import PASSWORD

SUITES = ("basic", "copymove", "props", "locks", "http")
SUMMARY = re.compile(r"<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed")
EXPECTED_COUNTS = {"basic": 16, "copymove": 13, "props": 30, "locks": 41, "http": 4}

pytestmark = pytest.mark.skipif(shutil.which("litmus") is None,
                                reason="litmus is not installed (make test installs it)")


def run_litmus(url: str, suites: tuple[str, ...], *auth: str) -> str:
    result = subprocess.run(["litmus", url, *auth], capture_output=True, text=True,
                            timeout=240, env={"TESTS": " ".join(suites),
                                              "PATH": "/usr/bin:/bin", "LANG": "C"})
    return (result.stdout + result.stderr).replace("\r", "\n")


def test_litmus_passes_in_full(site: DavSite) -> None:
    output = run_litmus(site.base + "/user/alice/Private/", SUITES, "alice", PASSWORD)
    found = {m.group(1): (int(m.group(2)), int(m.group(3)), int(m.group(4)))
             for m in SUMMARY.finditer(output)}
    assert set(found) == set(SUITES), output[-3000:]
    for suite, (ran, passed, failed) in found.items():
        assert failed == 0 and passed == ran == EXPECTED_COUNTS[suite], (suite, output[-3000:])
    assert sum(p for _r, p, _f in found.values()) == 104
    warnings = [line for line in output.splitlines() if "WARNING" in line]
    assert warnings == [], warnings


def test_litmus_on_the_own_port(tmp_path) -> None:
    """The optional own-port server speaks the same protocol at its root."""
    from tests.gateways.webdav.conftest import start_site
    from tests.world import build_world

    app, server = start_site(tmp_path / "data", **{"webdav.port": 0})
    try:
        build_world(app)
        assert server.dav_url is not None
        output = run_litmus(server.dav_url + "/user/alice/Private/", ("basic",),
                            "alice", PASSWORD)
        found = [m.groups() for m in SUMMARY.finditer(output)]
        assert found == [("basic", "16", "16", "0")], output[-3000:]
    finally:
        server.stop()
        app.close()
