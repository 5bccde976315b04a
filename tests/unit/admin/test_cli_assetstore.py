"""``joist assetstore create|list|set-current|import``, run as a real subprocess
against a fresh data dir and a real S3 endpoint (moto's server mode on
127.0.0.1, since no S3 is reachable here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from joist.admin.bootstrap import build_app
from joist.core.settings import load_settings
from tests.s3env import shared_moto

JOIST = [sys.executable, "-m", "joist.admin.cli"]


def joist(env: dict[str, str], *args: str, stdin: str | None = None,
          ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*JOIST, *args], env=env, input=stdin, text=True,
                          capture_output=True, timeout=60)
    if ok:
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc


def test_assetstore_commands(cli_env: dict[str, str], tmp_path: Path) -> None:
    moto = shared_moto()
    bucket = moto.new_bucket("cli")
    s3 = moto.client()
    for key, body in {"lab/run1/out.txt": b"result 1", "lab/run2/out.txt": b"result 2",
                      "loose/notes.md": b"# notes"}.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    joist(cli_env, "collection", "create", "science")
    s3_args = ["assetstore", "create", "objects", "--type", "s3", "--bucket", bucket,
               "--service", moto.url, "--access-key-id", "testing", "--secret-stdin"]
    wrong = joist(cli_env, *s3_args[:6], "no-such-bucket-cli", *s3_args[7:],
                  stdin="testing\n", ok=False)
    assert wrong.returncode == 1 and "does not exist" in wrong.stderr
    assert "Created assetstore objects" in joist(cli_env, *s3_args, stdin="testing\n").stdout
    joist(cli_env, "assetstore", "create", "disk2", "--type", "filesystem",
          "--root", str(tmp_path / "disk2"))
    stores = {s["name"]: s for s in json.loads(joist(cli_env, "assetstore", "list",
                                                     "--json").stdout)}
    assert set(stores) == {"Default", "objects", "disk2"}
    assert stores["objects"]["type"] == "s3" and stores["objects"]["where"].startswith(
        f"s3://{bucket}")
    assert [n for n, s in stores.items() if s["current"]] == ["Default"]
    assert "testing" not in joist(cli_env, "assetstore", "list").stdout.replace(
        moto.url, "")  # no secret printed
    joist(cli_env, "assetstore", "set-current", "objects")
    assert joist(cli_env, "assetstore", "set-current", "nope", ok=False).returncode == 1
    out = joist(cli_env, "assetstore", "import", "objects", "lab",
                "--dest", "/collection/science").stdout
    assert "2 folders, 2 items, 2 files" in out
    loose = joist(cli_env, "assetstore", "import", "objects", "loose",
                  "--dest", "/collection/science", ok=False)
    assert loose.returncode == 1 and "directly underneath" in loose.stderr
    settings = load_settings(env={}, search=False, overrides={
        "data_dir": cli_env["JOIST_DATA_DIR"], "assetstore.reserve_mb": 0})
    with build_app(settings, env={}) as app:
        doc, _ = app.assetstores.current()
        assert doc["name"] == "objects" and doc["secret"] == "testing"
        from joist.core.acl import SYSTEM
        view = app.hierarchy.view(SYSTEM)
        assert view.open_read("/collection/science/run1/out.txt").read() == b"result 1"
