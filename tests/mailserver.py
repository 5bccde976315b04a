"""A real SMTP server (aiosmtpd) on 127.0.0.1, port 0, for the mail tests: it
keeps what arrives, optionally with STARTTLS or implicit TLS and SMTP AUTH,
and a self-signed certificate made here with ``cryptography``."""

from __future__ import annotations

import datetime as _dt
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and localhost) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "joist test smtp")])
    now = _dt.datetime.now(_dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=5))
            .not_valid_after(now + _dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@dataclass
class Inbox:
    """What the server received: parsed messages, and the logins it accepted."""
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.cond:
            self.messages.append(message)  # type: ignore[arg-type]
            self.cond.notify_all()
        return "250 OK"

    def wait(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """The first ``count`` messages, once they are there (else AssertionError)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.messages)} of {count} message(s) arrived"
                self.cond.wait(left)
            return list(self.messages[:count])

    def to(self, address: str, timeout: float = 10.0) -> EmailMessage:
        """The first message to ``address`` (waiting for it)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for message in self.messages:
                    if address in str(message["To"]):
                        return message
                left = deadline - time.monotonic()
                assert left > 0, f"no message to {address}: " + \
                    repr([str(m["To"]) for m in self.messages])
                self.cond.wait(left)


class _LoopbackController(Controller):
    """aiosmtpd's controller on 127.0.0.1: a fresh port (``port=0``), or a given one."""

    def _create_server(self) -> Any:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        return self.loop.create_server(self._factory_invoker, sock=sock,
                                       ssl=self.ssl_context)


class SmtpServer:
    """Start with ``start()``, stop with ``stop()`` (idempotent); ``port`` stays
    the same across a restart so the server can go down and come back."""

    def __init__(self, inbox: Inbox, *, mode: str = "none", cert: tuple[Path, Path] | None = None,
                 credentials: tuple[str, str] | None = None) -> None:
        self.inbox = inbox
        self.mode = mode
        self.cert = cert
        self.credentials = credentials
        self.port = 0
        self._controller: _LoopbackController | None = None

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      data: Any) -> AuthResult:
        if not isinstance(data, LoginPassword) or self.credentials is None:
            return AuthResult(success=False)
        login, password = data.login.decode(), data.password.decode()
        ok = (login, password) == self.credentials
        if ok:
            self.inbox.logins.append((login, password))
        return AuthResult(success=ok)

    def start(self) -> SmtpServer:
        kwargs: dict[str, Any] = {}
        if self.mode != "none":
            assert self.cert is not None
            tls = server_tls(*self.cert)
            if self.mode == "ssl":
                kwargs["ssl_context"] = tls
            else:
                kwargs.update(tls_context=tls, require_starttls=True)
        if self.credentials is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=self.mode != "ssl",
                          auth_required=True)
        controller = _LoopbackController(self.inbox, hostname="127.0.0.1", port=self.port,
                                         ready_timeout=10, **kwargs)
        controller.start()
        self.port = controller.port
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


class StalledServer:
    """Accepts connections (the kernel's backlog) and never says a word."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
