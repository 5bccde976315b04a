"""Logins over SFTP (password, password + TOTP, API key, SSH keys, anonymous,
throttling) and the server's host key."""

from __future__ import annotations

import io
import os
import socket
import stat
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import paramiko
import pyotp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from joist.core.auth.sshkeys import fingerprint
from joist.core.errors import ThrottledError, ValidationError
from joist.gateways.sftp import SftpServer, load_host_key
from tests import world as w
from tests.gateways.sftp.conftest import SftpSite, start_server, wait_for
from tests.gateways.sftp.sftpfs import connect

PUBLIC = "/user/alice/Public/readme.txt"
PRIVATE = "/user/alice/Private/data"


def _pkey(private_key: object) -> paramiko.PKey:
    """A paramiko key from a ``cryptography`` private key (via OpenSSH's format)."""
    pem = private_key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()).decode()
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(pem))
        except (paramiko.SSHException, ValueError):
            continue
    raise AssertionError("unloadable key")


def _register(site: SftpSite, login: str, key: paramiko.PKey) -> None:
    site.app.services.auth.ssh_keys.add(site.world.users[login],
                                        f"{key.get_name()} {key.get_base64()} test")


def _lists_private(transport: paramiko.Transport) -> list[str]:
    client = paramiko.SFTPClient.from_transport(transport)
    assert client is not None
    return sorted(client.listdir(PRIVATE))


def test_password_login(site: SftpSite) -> None:
    assert "a.txt" in _lists_private(site.transport("alice"))
    assert "a.txt" in _lists_private(site.transport("alice@example.org"))  # by email
    with pytest.raises(paramiko.AuthenticationException):
        site.transport("alice", password="wrong")
    with pytest.raises(paramiko.AuthenticationException):
        site.transport("nobody", password=w.PASSWORD)


def test_password_with_totp_appended(site: SftpSite) -> None:
    svc, alice = site.app.services, site.world.users["alice"]
    principal = site.world.principal("alice")
    uri = svc.users.otp_enroll(principal, alice)
    totp = pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])
    now = time.time()
    svc.users.otp_confirm(principal, alice, totp.at(now))
    with pytest.raises(paramiko.AuthenticationException):
        site.transport("alice")  # the code is required now
    assert "a.txt" in _lists_private(site.transport("alice", password=w.PASSWORD +
                                                    totp.at(now + 30)))
    with pytest.raises(paramiko.AuthenticationException):  # a code works once
        site.transport("alice", password=w.PASSWORD + totp.at(now + 30))


def test_api_key_as_password(site: SftpSite) -> None:
    key = site.app.services.auth.api_keys.create(site.world.principal("alice"), name="sftp")
    assert "a.txt" in _lists_private(site.transport("alice", password=key["key"]))
    with pytest.raises(paramiko.AuthenticationException):  # another user's key
        site.transport("bobby", password=key["key"])


@pytest.mark.parametrize("make", [
    ed25519.Ed25519PrivateKey.generate,
    lambda: ec.generate_private_key(ec.SECP256R1()),
    lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
], ids=["ed25519", "ecdsa", "rsa"])
def test_public_keys(site: SftpSite, make: object) -> None:
    key = _pkey(make())  # type: ignore[operator]
    with pytest.raises(paramiko.AuthenticationException):
        site.transport("alice", key=key)  # not registered yet
    _register(site, "alice", key)
    transport = site.transport("alice", key=key)
    assert "a.txt" in _lists_private(transport)
    with pytest.raises(paramiko.AuthenticationException):
        site.transport("bobby", key=key)  # alice's key does not open bob's account


def test_rsa_needs_sha2_signatures(site: SftpSite) -> None:
    key = _pkey(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    _register(site, "alice", key)
    transport = paramiko.Transport(site.address, disabled_algorithms={
        "pubkeys": ["rsa-sha2-512", "rsa-sha2-256"]})
    site.transports.append(transport)
    transport.start_client(timeout=30)
    with pytest.raises(paramiko.SSHException):  # ssh-rsa (SHA-1) is refused
        transport.auth_publickey("alice", key)
    assert not transport.is_authenticated()


def test_anonymous(site: SftpSite) -> None:
    anon = paramiko.SFTPClient.from_transport(site.transport(None))
    assert anon is not None
    with anon.open(PUBLIC) as f:
        assert f.read() == w.README
    with pytest.raises(FileNotFoundError):
        anon.listdir(PRIVATE)
    # Any password works for the anonymous login, as in Girder.
    with paramiko.SFTPClient.from_transport(site.transport("Anonymous", password="x")) as c:
        assert c.listdir("/") == ["collection", "user"]
    site.app.services.settings.set("joist.anonymous_access", False)
    with pytest.raises(paramiko.AuthenticationException):
        site.transport(None)
    with pytest.raises(paramiko.AuthenticationException):
        site.transport("anonymous", password="x")


def test_failed_logins_are_throttled(site: SftpSite) -> None:
    site.app.services.settings.set("joist.throttle.max_failures", 3)
    for _ in range(3):
        with pytest.raises(paramiko.AuthenticationException):
            site.transport("carol", password="wrong")
    with pytest.raises(paramiko.AuthenticationException):
        site.transport("carol")  # the right password, refused while throttled
    with pytest.raises(ThrottledError):  # core counted the failures, per login...
        site.app.services.auth.throttle.check(["login:carol"])
    # ...and per client address, where the bar is much higher: others from
    # 127.0.0.1 still log in, until the address's own threshold.
    with site.client("alice") as other:
        assert "Public" in other.listdir("/user/alice")
    site.app.services.auth.throttle.check(["addr:127.0.0.1"])
    site.app.services.settings.set("joist.throttle.max_failures_per_address", 3)
    with pytest.raises(ThrottledError):
        site.app.services.auth.throttle.check(["addr:127.0.0.1"])


def test_other_channel_requests_are_refused(site: SftpSite) -> None:
    transport = site.transport("alice")
    channel = transport.open_session()
    with pytest.raises(paramiko.SSHException):
        channel.exec_command("ls /")
    channel = transport.open_session()
    with pytest.raises(paramiko.SSHException):
        channel.invoke_subsystem("netconf")


def test_login_grace(site: SftpSite) -> None:
    server = start_server(site.app, tuning=site.server.tuning.__class__(
        login_grace=0.3, housekeeping=0.05))
    try:
        with socket.create_connection(server.address, timeout=10) as sock:
            assert sock.recv(100).startswith(b"SSH-2.0-")
            # Never log in: the server hangs up once the grace time is over.
            sock.settimeout(10)
            deadline = time.monotonic() + 10
            data = b"x"
            while data and time.monotonic() < deadline:
                data = sock.recv(4096)
            assert data == b""
        assert wait_for(lambda: server.stats()["connections"] == 0)
    finally:
        server.stop()


# ------------------------------------------------------------------ host key
def test_generated_host_key_is_private_and_kept(site: SftpSite) -> None:
    path = site.app.settings.sftp_host_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert site.server.host_key.get_name() == "ssh-ed25519"
    assert path.with_name(path.name + ".pub").read_text().startswith("ssh-ed25519 ")
    transport = site.transport("alice")
    assert transport.get_remote_server_key().get_fingerprint() == \
        site.server.host_key.get_fingerprint()
    again = start_server(site.app)  # a second start reuses the same key
    try:
        assert again.host_key_fingerprint == site.server.host_key_fingerprint
    finally:
        again.stop()


def test_given_host_key_file(site: SftpSite, tmp_path: Path) -> None:
    key_file = tmp_path / "rsa_host_key"
    paramiko.RSAKey.generate(2048).write_private_key_file(str(key_file))
    server = SftpServer(site.app.hierarchy, site.app.services.auth, host="127.0.0.1",
                        port=0, host_key_path=key_file, create_host_key=False)
    server.start()
    try:
        transport = connect(server.address, "alice", w.PASSWORD)
        try:
            assert transport.get_remote_server_key().get_name() == "ssh-rsa"
        finally:
            transport.close()
    finally:
        server.stop()


def test_bad_host_key_files(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not found"):
        load_host_key(tmp_path / "missing")
    encrypted = tmp_path / "encrypted"
    paramiko.RSAKey.generate(2048).write_private_key_file(str(encrypted), password="pw")
    with pytest.raises(ValidationError, match="encrypted"):
        load_host_key(encrypted)
    garbage = tmp_path / "garbage"
    garbage.write_bytes(os.urandom(64))
    with pytest.raises(ValidationError):
        load_host_key(garbage)


def test_removing_the_ssh_key_revokes_open_sessions(site: SftpSite) -> None:
    key = _pkey(ed25519.Ed25519PrivateKey.generate())
    _register(site, "alice", key)
    client = paramiko.SFTPClient.from_transport(site.transport("alice", key=key))
    assert client is not None
    assert "data" in client.listdir("/user/alice/Private")
    site.app.services.auth.ssh_keys.remove(site.world.users["alice"]["_id"],
                                           fingerprint(key.asbytes()))
    with pytest.raises(PermissionError):  # the next request of the open session
        client.listdir("/user/alice/Private")
    with pytest.raises(paramiko.AuthenticationException):
        site.transport("alice", key=key)
