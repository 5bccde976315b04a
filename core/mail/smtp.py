"""Deliver one message to the configured SMTP server (smtplib)."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

from ..stored_settings import SettingsService


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    encryption: str  # none | starttls | ssl
    username: str
    password: str
    timeout: float
    ca_file: str

    @classmethod
    def from_settings(cls, settings: SettingsService) -> SmtpConfig:
        return cls(host=str(settings.get("core.smtp_host")),
                   port=int(settings.get("core.smtp.port")),
                   encryption=str(settings.get("core.smtp.encryption")),
                   username=str(settings.get("core.smtp.username")),
                   password=str(settings.get("core.smtp.password")),
                   timeout=float(settings.get("joist.smtp.timeout")),
                   ca_file=str(settings.get("joist.smtp.ca_file")))

    def __repr__(self) -> str:  # never the password, should this reach a log
        return (f"SmtpConfig(host={self.host!r}, port={self.port}, "
                f"encryption={self.encryption!r}, username={self.username!r})")

    def tls_context(self) -> ssl.SSLContext:
        # Unlike Girder (smtplib's unverified default), the certificate and
        # the host name are checked: credentials go over this connection.
        return ssl.create_default_context(cafile=self.ca_file or None)


def send(config: SmtpConfig, message: EmailMessage, recipients: list[str]) -> None:
    """One delivery attempt; any failure raises (``OSError`` or an
    ``smtplib.SMTPException``), the caller retries."""
    client: smtplib.SMTP
    if config.encryption == "ssl":
        client = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout,
                                  context=config.tls_context())
    else:
        client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    with client:
        if config.encryption == "starttls":
            client.starttls(context=config.tls_context())
        if config.username:
            client.login(config.username, config.password)
        refused = client.send_message(message, to_addrs=recipients)
    if refused:
        raise smtplib.SMTPRecipientsRefused(refused)
