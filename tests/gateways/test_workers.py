"""`joist serve --workers 2` as a user runs it: both workers serve the shared
ports, a change made through one worker is seen through the other by the very
next request on every gateway (caches coherent through the store), revocation
applies at once in every worker, a killed worker is restarted while the other
keeps serving, and SIGTERM stops every worker.

Which worker serves a connection is read from ``/proc``: the worker process
holding the server end of the client's TCP connection.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest
import requests

from joist.admin.bootstrap import build_app
from tests.conftest import ENGINE, make_settings
from tests.mongo_stand_in import REAL_URI
from tests.serve_process import JOIST, joist_serve_process
from tests.world import PASSWORD, REPORT, build_world

DEADLINE = 60.0  # for a worker to be restarted (a cold Python start on a busy machine)
ATTEMPTS = 60  # fresh connections tried to reach a given worker

pytestmark = pytest.mark.skipif(
    ENGINE == "mongo" and not REAL_URI,
    reason="the workers share the store: mongomock lives in the test process")


# ------------------------------------------------------------------ /proc
def children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
        return {int(p) for p in f.read().split()}


def alive(pid: int) -> bool:
    """Running (a zombie has exited; who reaps it is not ours to know)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def serving_pid(client: socket.socket, pids: set[int]) -> int | None:
    """The process among ``pids`` holding the server end of ``client``'s connection."""
    local = client.getsockname()[1]
    inode = None
    with open("/proc/net/tcp", encoding="ascii") as f:
        for line in list(f)[1:]:
            fields = line.split()
            if int(fields[2].split(":")[1], 16) == local and fields[3] == "01":
                inode = int(fields[9])  # an ESTABLISHED socket whose peer is our client
                break
    if inode is None:
        return None
    for pid in pids:
        if inode in _socket_inodes(pid):
            return pid
    return None


# ------------------------------------------------------------------ the site
@dataclass
class Site:
    proc: Any
    rest: str
    dav: str
    sftp: tuple[str, int]
    user_ids: dict[str, str]
    team_id: str

    def workers(self) -> set[int]:
        return children(self.proc.pid)

    def session_on(self, pid: int | None = None, avoid: int | None = None
                   ) -> tuple[requests.Session, int]:
        """A keep-alive HTTP session whose connection a given worker (or any
        worker but ``avoid``) serves."""
        for _ in range(ATTEMPTS):
            session = requests.Session()
            assert session.get(self.rest + "/system/version", timeout=10).ok
            conn = _connection_socket(session)
            got = serving_pid(conn, self.workers())
            if got is not None and (pid is None or got == pid) and got != avoid:
                return session, got
            session.close()
        raise AssertionError(f"no connection reached worker {pid} (avoiding {avoid})")

    def sftp_on(self, pid: int, login: str, password: str) -> tuple[paramiko.Transport,
                                                                    paramiko.SFTPClient]:
        for _ in range(ATTEMPTS):
            transport = paramiko.Transport(self.sftp)
            try:
                transport.connect(username=login, password=password)
                if serving_pid(transport.sock, self.workers()) == pid:  # type: ignore[arg-type]
                    client = paramiko.SFTPClient.from_transport(transport)
                    assert client is not None
                    return transport, client
            except BaseException:
                transport.close()
                raise
            transport.close()
        raise AssertionError(f"no SFTP connection reached worker {pid}")


def _connection_socket(session: requests.Session) -> socket.socket:
    adapter = session.get_adapter("http://")
    pool = next(iter(adapter.poolmanager.pools._container.values()))  # type: ignore[attr-defined]
    conn = pool.pool.queue[-1]
    assert conn is not None and conn.sock is not None
    return conn.sock  # type: ignore[no-any-return]


def _login(site: Site, session: requests.Session, login: str,
           password: str = PASSWORD) -> str:
    reply = session.get(site.rest + "/user/authentication", auth=(login, password), timeout=10)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["authToken"]["token"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("workers")
    data = base / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOIST_")}
    env.update(JOIST_DATA_DIR=str(data), JOIST_SECURITY__BCRYPT_ROUNDS="4",
               JOIST_ASSETSTORE__RESERVE_MB="0", JOIST_SFTP__PORT="0",
               HOME=str(base / "home"))
    overrides: dict[str, object] = {}
    if ENGINE == "mongo":
        from tests.mongo_stand_in import fresh_db_name, real_uri
        uri = real_uri(fresh_db_name())
        overrides = {"database.engine": "mongo", "database.uri": uri}
        env.update(JOIST_DATABASE__ENGINE="mongo", JOIST_DATABASE__URI=uri)
    with build_app(make_settings(data, **overrides), env={}) as app:
        world = build_world(app)
        ids = {login: str(doc["_id"]) for login, doc in world.users.items()}
        team = str(world.docs["team"]["_id"])
    with joist_serve_process(env, "--workers", "2") as (proc, banner):
        rest = re.search(r"REST API: (http://\S+/api/v1)", banner)
        dav = re.search(r"WebDAV: (http://\S+/dav)", banner)
        sftp = re.search(r"sftp -P (\d+) LOGIN@(\S+)", banner)
        assert rest and dav and sftp, banner
        assert "2 worker processes" in banner
        made = Site(proc, rest.group(1), dav.group(1), (sftp.group(2), int(sftp.group(1))),
                    ids, team)
        yield made
        last_workers = made.workers()
    # joist_serve_process sent SIGTERM and saw status 0: no worker may outlive it.
    assert last_workers
    assert not any(alive(pid) for pid in last_workers)


# ------------------------------------------------------------------ tests
def test_both_workers_serve(site: Site) -> None:
    workers = site.workers()
    assert len(workers) == 2
    seen: set[int] = set()
    for _ in range(ATTEMPTS):
        _, pid = site.session_on()
        seen.add(pid)
        if seen == workers:
            break
    assert seen == workers


def test_a_change_through_one_worker_is_seen_through_the_other(site: Site) -> None:
    one, pid_one = site.session_on()
    other, pid_other = site.session_on(avoid=pid_one)
    alice = ("alice", PASSWORD)
    path = "/user/alice/Private/data"
    # The other worker caches what it resolves first: the path, the settings.
    assert other.request("PROPFIND", f"{site.dav}{path}/", headers={"Depth": "1"},
                         auth=alice, timeout=10).status_code == 207
    transport, sftp = site.sftp_on(pid_other, *alice)
    try:
        assert "a.txt" in sftp.listdir(path)
        # A write through the first worker ...
        assert one.put(f"{site.dav}{path}/new.txt", data=b"made elsewhere", auth=alice,
                       timeout=10).status_code == 201
        assert one.request("MOVE", f"{site.dav}{path}/a.txt", auth=alice, timeout=10,
                           headers={"Destination": f"{site.dav}{path}/b.txt"}
                           ).status_code == 201
        # ... is seen by the very next request through the other, on every gateway.
        listing = other.request("PROPFIND", f"{site.dav}{path}/", headers={"Depth": "1"},
                                auth=alice, timeout=10).text
        assert "new.txt" in listing and "b.txt" in listing and "a.txt" not in listing
        assert other.get(f"{site.dav}{path}/a.txt", auth=alice, timeout=10).status_code == 404
        assert other.get(f"{site.dav}{path}/new.txt", auth=alice,
                         timeout=10).content == b"made elsewhere"
        token = _login(site, other, "alice")
        found = other.get(site.rest + "/resource/lookup", params={"path": f"{path}/b.txt"},
                          headers={"Girder-Token": token}, timeout=10)
        assert found.status_code == 200 and found.json()["name"] == "b.txt"
        assert {"new.txt", "b.txt"} <= set(sftp.listdir(path))
        assert "a.txt" not in sftp.listdir(path)
        with sftp.open(f"{path}/new.txt") as handle:
            assert handle.read() == b"made elsewhere"
        # A setting changed through one worker applies in the other at once.
        readme = "/user/alice/Public/readme.txt"
        assert not stat.S_ISDIR(sftp.stat(readme).st_mode or 0)
        admin = {"Girder-Token": _login(site, one, "admin")}
        for layout, is_dir in (("girder", True), ("natural", False)):
            assert one.put(site.rest + "/system/setting", headers=admin, timeout=10, params={
                "key": "joist.hierarchy.item_layout", "value": layout}).status_code == 200
            assert stat.S_ISDIR(sftp.stat(readme).st_mode or 0) is is_dir
    finally:
        transport.close()


def _refused(operation: Callable[[], Any]) -> bool:
    try:
        operation()
    except (OSError, EOFError, paramiko.SSHException):
        return True  # refused, or the session was ended
    return False


def test_revocation_in_one_worker_applies_at_once_in_the_other(site: Site) -> None:
    one, pid_one = site.session_on()
    other, pid_other = site.session_on(avoid=pid_one)
    admin = {"Girder-Token": _login(site, one, "admin")}
    carol = ("carol", PASSWORD)
    shared = "/collection/shared/docs/report.txt"

    # Group membership removed: carol's WebDAV login and SFTP session on the
    # other worker lose the shared file at once (cached grant and path).
    assert other.get(site.dav + shared, auth=carol, timeout=10).content == REPORT
    transport, sftp = site.sftp_on(pid_other, *carol)
    try:
        assert sftp.stat(shared).st_size == len(REPORT)
        assert one.delete(f"{site.rest}/group/{site.team_id}/member", headers=admin,
                          params={"userId": site.user_ids["carol"]},
                          timeout=10).status_code == 200
        assert other.get(site.dav + shared, auth=carol, timeout=10).status_code == 404
        with pytest.raises(FileNotFoundError):
            sftp.stat(shared)

        # Password changed through one worker: the other refuses the old
        # password and ends the open SFTP session at its next operation.
        carol_token = _login(site, other, "carol")
        assert one.put(f"{site.rest}/user/{site.user_ids['carol']}/password", headers=admin,
                       data={"password": "carol's new password"}, timeout=10).ok
        assert other.get(site.dav + "/user/carol/", auth=carol,
                         timeout=10).status_code == 401
        assert _refused(lambda: sftp.listdir("/user/carol"))
    finally:
        transport.close()

    # Token deleted through one worker: refused by the other at once.
    me = {"Girder-Token": carol_token}  # a token outlives a password change (Girder)
    assert other.get(site.rest + "/user/me", headers=me, timeout=10).json()["login"] == "carol"
    assert one.delete(site.rest + "/token/session", headers=me, timeout=10).ok
    assert other.get(site.rest + "/user/me", headers=me, timeout=10).json() is None

    # API keys deactivated and deleted through one worker.
    bob_token = {"Girder-Token": _login(site, one, "bobby")}
    for end in ("deactivate", "delete"):
        key = one.post(site.rest + "/api_key", headers=bob_token, data={"name": end},
                       timeout=10).json()
        bob_key = ("bobby", key["key"])
        assert other.request("PROPFIND", site.dav + "/user/bobby/", auth=bob_key,
                             headers={"Depth": "0"}, timeout=10).status_code == 207
        if end == "delete":
            assert one.delete(f"{site.rest}/api_key/{key['_id']}", headers=bob_token,
                              timeout=10).ok
        else:
            assert one.put(f"{site.rest}/api_key/{key['_id']}", headers=bob_token,
                           data={"active": "false"}, timeout=10).ok
        assert other.request("PROPFIND", site.dav + "/user/bobby/", auth=bob_key,
                             headers={"Depth": "0"}, timeout=10).status_code == 401

    # Admin rights removed through one worker: gone in the other's cached login.
    bobby = ("bobby", PASSWORD)
    profile = {"firstName": "Bobby", "lastName": "Tester", "email": "bobby@example.org"}
    secret = "/collection/secret/vault/hidden.txt"
    assert one.put(f"{site.rest}/user/{site.user_ids['bobby']}", headers=admin, timeout=10,
                   data={**profile, "admin": "true"}).ok
    assert other.get(site.dav + secret, auth=bobby, timeout=10).status_code == 200
    assert one.put(f"{site.rest}/user/{site.user_ids['bobby']}", headers=admin, timeout=10,
                   data={**profile, "admin": "false"}).ok
    assert other.get(site.dav + secret, auth=bobby, timeout=10).status_code == 404
    alice = ("alice", PASSWORD)
    assert other.request("PROPFIND", site.dav + "/user/alice/", auth=alice,
                         headers={"Depth": "0"}, timeout=10).status_code == 207
    assert one.put(f"{site.rest}/user/{site.user_ids['alice']}", headers=admin, timeout=10,
                   data={"firstName": "Alice", "lastName": "Tester",
                         "email": "alice@example.org", "status": "disabled"}).ok
    assert other.request("PROPFIND", site.dav + "/user/alice/", auth=alice,
                         headers={"Depth": "0"}, timeout=10).status_code == 401


def test_a_killed_worker_is_restarted_while_the_other_serves(site: Site) -> None:
    before = site.workers()
    victim = min(before)
    survivor = (before - {victim}).pop()
    keep, _ = site.session_on(survivor)
    os.kill(victim, signal.SIGKILL)
    for _ in range(20):  # the survivor serves meanwhile, on fresh connections too
        assert keep.get(site.rest + "/system/version", timeout=10).ok
        assert requests.get(site.rest + "/system/version", timeout=10).ok
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        now = site.workers()
        if len(now) == 2 and victim not in now:
            break
        time.sleep(0.1)
    now = site.workers()
    assert len(now) == 2 and survivor in now and victim not in now
    replacement = (now - {survivor}).pop()
    for _ in range(ATTEMPTS):  # the replacement serves once it has started
        try:
            site.session_on(replacement)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
    else:
        raise AssertionError("the replacement worker never served")


def test_workers_do_not_outlive_a_killed_supervisor(cli_env: dict[str, str]) -> None:
    proc = subprocess.Popen([*JOIST, "serve", "--port", "0", "--workers", "2"], env=cli_env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        banner = ""
        for line in proc.stdout:  # ends: the banner is printed, or the process exits
            banner += line
            if "Data directory" in line:
                break
        assert "2 worker processes" in banner, banner
        workers = children(proc.pid)
        assert len(workers) == 2
        proc.kill()  # no chance to stop them: the kernel tells them (PR_SET_PDEATHSIG)
        proc.wait(timeout=30)
        deadline = time.monotonic() + DEADLINE
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in workers)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_a_taken_port_is_a_clear_error(cli_env: dict[str, str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run([*JOIST, "serve", "--port", str(port), "--workers", "2"],
                              env=cli_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} (http)" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
