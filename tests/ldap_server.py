"""A real OpenLDAP ``slapd`` for the tests (Debian packages ``slapd``, ``ldap-utils``).

``running_slapd`` writes a minimal ``slapd.conf`` (mdb backend, our own
database directory) in a temporary directory, starts ``slapd -d 0`` as a child
on 127.0.0.1 and a free port, waits for it with a deadline, and kills it on the
way out even when the test failed. The system's slapd service is not used.
Entries are loaded and removed with the ``ldapadd``/``ldapdelete`` clients.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

BASE_DN = "dc=joist,dc=test"
PEOPLE_DN = f"ou=people,{BASE_DN}"
ROOT_DN = f"cn=admin,{BASE_DN}"
ROOT_PASSWORD = "directory-admin-secret"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
START_DEADLINE = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Slapd:
    uri: str
    proc: subprocess.Popen[bytes]
    ca_file: Path  # the server's self-signed certificate
    ldaps_uri: str = ""  # the same directory over implicit TLS

    def _client(self, tool: str, ldif: str = "", *args: str) -> None:
        result = subprocess.run(
            [tool, "-x", "-H", self.uri, "-D", ROOT_DN, "-w", ROOT_PASSWORD, *args],
            input=ldif.encode(), capture_output=True, timeout=20, check=False)
        assert result.returncode == 0, result.stderr.decode(errors="replace")

    def add(self, ldif: str) -> None:
        self._client("ldapadd", ldif)

    def modify(self, ldif: str) -> None:
        self._client("ldapmodify", ldif)

    def delete(self, dn: str) -> None:
        self._client("ldapdelete", "", dn)

    def add_person(self, uid: str, password: str, *, given: str, surname: str,
                   mail: str) -> str:
        dn = f"uid={uid},{PEOPLE_DN}"
        self.add(f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {given} {surname}\n"
                 f"givenName: {given}\nsn: {surname}\nmail: {mail}\n"
                 f"userPassword: {password}\n")
        return dn


def _certificate(root: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (StartTLS and ldaps:// tests)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = root / "cert.pem", root / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _config(root: Path, port: int) -> Path:
    conf = root / "slapd.conf"
    (root / "db").mkdir()
    cert, key = _certificate(root)
    includes = "".join(f"include /etc/ldap/schema/{name}.schema\n" for name in SCHEMAS)
    conf.write_text(
        f"{includes}"
        f"modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
        f"pidfile {root / 'slapd.pid'}\nargsfile {root / 'slapd.args'}\n"
        f"TLSCertificateFile {cert}\nTLSCertificateKeyFile {key}\n"
        # Users bind to check their own password; nobody reads userPassword.
        "access to attrs=userPassword by self write by anonymous auth by * none\n"
        "access to * by * read\n"
        f"database mdb\nmaxsize 16777216\nsuffix \"{BASE_DN}\"\n"
        f"rootdn \"{ROOT_DN}\"\nrootpw {ROOT_PASSWORD}\ndirectory {root / 'db'}\n")
    return conf


def _ready(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


@contextlib.contextmanager
def running_slapd(root: Path) -> Iterator[Slapd]:
    if shutil.which("slapd") is None and not Path("/usr/sbin/slapd").exists():
        pytest.skip("slapd is not installed (Debian package slapd)")
    port, tls_port = free_port(), free_port()
    conf = _config(root, port)
    uri, ldaps = f"ldap://127.0.0.1:{port}", f"ldaps://127.0.0.1:{tls_port}"
    proc = subprocess.Popen([shutil.which("slapd") or "/usr/sbin/slapd", "-d", "0",
                             "-h", f"{uri}/ {ldaps}/", "-f", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + START_DEADLINE
        while not (_ready(port) and _ready(tls_port)):
            if proc.poll() is not None:
                raise RuntimeError("slapd exited: " + proc.stderr.read().decode()[-2000:]
                                   if proc.stderr else "slapd exited")
            if time.monotonic() > deadline:
                raise RuntimeError("slapd did not start in time")
            time.sleep(0.05)
        server = Slapd(uri, proc, root / "cert.pem", ldaps)
        server.add(f"dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\n"
                   f"dc: joist\no: Joist tests\n\n"
                   f"dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n")
        yield server
    finally:
        proc.kill()
        proc.wait(timeout=20)
        if proc.stderr:
            proc.stderr.close()


class BadDirectory:
    """A listener that accepts and then says nothing, or answers garbage."""

    def __init__(self, garbage: bytes | None) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.garbage = garbage
        self.conns: list[socket.socket] = []
        self.stop = threading.Event()
        self.sock.settimeout(0.05)  # so that the loop sees ``stop`` (close wakes no accept)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.conns.append(conn)
            if self.garbage is not None:
                try:
                    conn.settimeout(5)
                    conn.recv(4096)
                    conn.sendall(self.garbage)
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.sock.close()
        for conn in self.conns:
            conn.close()
