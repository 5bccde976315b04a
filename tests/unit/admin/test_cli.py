"""The `joist` admin CLI, run as a real subprocess against a fresh data dir."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

JOIST = [sys.executable, "-m", "joist.admin.cli"]


def joist(env: dict[str, str], *args: str, stdin: str | None = None,
          ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*JOIST, *args], env=env, input=stdin, text=True,
                          capture_output=True, timeout=60)
    if ok:
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc


def test_user_group_collection_setting_lifecycle(cli_env: dict[str, str]) -> None:
    out = joist(cli_env, "user", "create", "admin", "--email", "admin@example.org",
                "--password-stdin", stdin="sekrit-pass\n").stdout
    assert "Created administrator admin" in out
    out = joist(cli_env, "user", "create", "alice", "--email", "alice@example.org",
                "--password-stdin", stdin="alice-pass\n").stdout
    assert "Created user alice" in out
    users = json.loads(joist(cli_env, "user", "list", "--json").stdout)
    assert {u["login"]: u["admin"] for u in users} == {"admin": True, "alice": False}

    joist(cli_env, "user", "set-admin", "alice")
    users = json.loads(joist(cli_env, "user", "list", "--json").stdout)
    assert all(u["admin"] for u in users)
    joist(cli_env, "user", "passwd", "alice", "--password-stdin", stdin="new-password\n")

    joist(cli_env, "group", "create", "team")
    joist(cli_env, "group", "add-member", "team", "alice", "--level", "write")
    members = json.loads(joist(cli_env, "group", "members", "team", "--json").stdout)
    assert [m["login"] for m in members] == ["alice"]

    joist(cli_env, "collection", "create", "shared", "--owner", "alice")
    joist(cli_env, "collection", "grant", "shared", "--group", "team", "--level", "read")
    colls = json.loads(joist(cli_env, "collection", "list", "--json").stdout)
    assert [c["name"] for c in colls] == ["shared"]

    joist(cli_env, "setting", "set", "joist.hierarchy.item_layout", "girder")
    assert joist(cli_env, "setting", "get", "joist.hierarchy.item_layout").stdout.strip() \
        == '"girder"'
    bad = joist(cli_env, "setting", "set", "joist.hierarchy.item_layout", "sideways", ok=False)
    assert bad.returncode == 1 and "must be one of" in bad.stderr
    # The SMTP password is kept but never printed (set, get or list).
    shown = joist(cli_env, "setting", "set", "core.smtp.password", "cli-Secret-42").stdout
    assert "cli-Secret-42" not in shown and '"********"' in shown
    assert joist(cli_env, "setting", "get", "core.smtp.password").stdout.strip() == '"********"'
    assert "cli-Secret-42" not in joist(cli_env, "setting", "list").stdout
    unknown = joist(cli_env, "setting", "get", "no.such.key", ok=False)
    assert unknown.returncode == 1 and "Invalid setting key" in unknown.stderr

    check = joist(cli_env, "check")
    assert "consistent" in check.stdout


def test_errors_are_one_line_messages(cli_env: dict[str, str]) -> None:
    proc = joist(cli_env, "user", "create", "ab", "--email", "x@example.org",
                 "--password-stdin", stdin="whatever-pass\n", ok=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("joist: error: Login must be at least 4 characters")
    assert "Traceback" not in proc.stderr
    proc = joist(cli_env, "group", "members", "nosuchgroup", ok=False)
    assert proc.returncode == 1 and "No such group" in proc.stderr
    proc = joist(cli_env, "--set", "server.port=abc", "check", ok=False)
    assert proc.returncode == 1 and "server.port must be int" in proc.stderr


def test_password_never_on_command_line_without_terminal(cli_env: dict[str, str]) -> None:
    proc = joist(cli_env, "user", "create", "carol", "--email", "c@example.org",
                 stdin="", ok=False)
    assert proc.returncode == 1 and "--password-stdin" in proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["user", "--help"], ["check", "--help"]])
def test_help(cli_env: dict[str, str], args: list[str]) -> None:
    assert "usage:" in joist(cli_env, *args).stdout


def test_check_reports_and_repairs(cli_env: dict[str, str], tmp_path: Path) -> None:
    joist(cli_env, "user", "create", "admin", "--email", "admin@example.org",
          "--password-stdin", stdin="sekrit-pass\n")
    # Damage the store behind Joist's back: a user's size that does not add up.
    code = ("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]);"
            "c.execute(\"update user set doc=json_set(doc,'$.size',42)\"); c.commit()")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "data" / "joist.db")],
                   check=True, timeout=30)
    found = joist(cli_env, "check", ok=False)
    assert found.returncode == 1 and "root-size" in found.stdout
    fixed = joist(cli_env, "check", "--repair")
    assert "0 problem(s) remain" in fixed.stdout
    assert "consistent" in joist(cli_env, "check").stdout
