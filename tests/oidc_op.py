"""A real OpenID Connect provider for the OAuth tests: panva's ``oidc-provider``
(npm, pinned in tests/oidc_op/package-lock.json, installed by ``make test``),
run by node on 127.0.0.1 with a port the system picks, and always stopped.

``sign_in`` walks its (development) sign-in and consent forms with requests,
as a browser would, and returns the callback URL it sends the browser to.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

OP_DIR = Path(__file__).resolve().parent / "oidc_op"
NODE = shutil.which("node") or "/usr/bin/node"
START_SECONDS = 30.0


@contextlib.contextmanager
def running_op(clients: list[dict[str, Any]], log_dir: Path) -> Iterator[str]:
    """Start the provider with ``clients`` registered; yields its issuer URL."""
    if not (OP_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("the test OpenID provider is not installed: run `make test-deps` "
                    "(npm ci in tests/oidc_op)")
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "oidc-op.log", "wb") as errors:
        proc = subprocess.Popen([NODE, "server.mjs"], cwd=OP_DIR, stdout=subprocess.PIPE,
                                stderr=errors, env={**os.environ,
                                                    "OP_CLIENTS": json.dumps(clients)})
        try:
            assert proc.stdout is not None
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ)
                if not sel.select(timeout=START_SECONDS):
                    pytest.fail("the OpenID provider did not start in time")
            line = proc.stdout.readline().decode()
            if not line:
                pytest.fail("the OpenID provider exited: "
                            + (log_dir / "oidc-op.log").read_text()[-2000:])
            yield json.loads(line)["issuer"]
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()


def _form(html: str, prompt: str) -> tuple[str, dict[str, str]] | None:
    match = re.search(r'<form[^>]*action="([^"]+)"[^>]*>\s*<input type="hidden" '
                      rf'name="prompt" value="{prompt}"', html)
    return (match.group(1), {"prompt": prompt}) if match else None


def sign_in(session: requests.Session, authorize_url: str, login: str,
            callback_prefix: str) -> str:
    """Sign in at the provider as ``login`` and consent; the URL of the
    callback it redirects to (not followed: the test decides what to do)."""
    url, reply = authorize_url, session.get(authorize_url, allow_redirects=False, timeout=10)
    for _ in range(12):  # authorize -> login -> (consent) -> callback: bounded
        if reply.is_redirect:
            url = urljoin(url, reply.headers["Location"])
            if url.startswith(callback_prefix):
                return url
            reply = session.get(url, allow_redirects=False, timeout=10)
            continue
        assert reply.status_code == 200, reply.text[:500]
        login_form, consent = _form(reply.text, "login"), _form(reply.text, "consent")
        if login_form:
            action, data = login_form
            data.update(login=login, password="any password")
        elif consent:
            action, data = consent
        else:
            raise AssertionError(f"unexpected provider page at {url}: {reply.text[:500]}")
        url = urljoin(url, action)
        reply = session.post(url, data=data, allow_redirects=False, timeout=10)
    raise AssertionError("the provider did not send the browser back")


def wait_until(check: Any, what: str, seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
