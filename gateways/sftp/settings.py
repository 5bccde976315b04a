"""Tuning of the SFTP gateway: flow control, protocol limits, algorithms.

The deployment settings (``[sftp]``: enabled, host, port, host key) live in
``joist.core.settings``; here are the engineering constants, each with its
reason, kept in one dataclass so tests and benchmarks can vary them. The
numbers follow OpenSSH (``channels.h``, ``sftp-common.h``), so clients size
their pipelines against us exactly as they do against ``sftp-server``.
"""

from __future__ import annotations

from dataclasses import dataclass

import paramiko

WINDOW_SIZE = 64 * 32 * 1024
"""Channel window we grant: OpenSSH's ``CHAN_SES_WINDOW_DEFAULT`` (2 MiB)."""
MAX_PACKET_SIZE = 32 * 1024
"""Largest channel packet we accept: OpenSSH's ``CHAN_SES_PACKET_DEFAULT``."""
MAX_MESSAGE = 256 * 1024
"""Largest SFTP request accepted (``SFTP_MAX_MSG_LENGTH``); a longer length
prefix is a broken or hostile client and ends the session."""
MAX_READ = MAX_MESSAGE - 1024
"""Largest READ answered in one DATA reply (``SFTP_MAX_READ_LENGTH``);
advertised through ``limits@openssh.com``, so OpenSSH's client reads this much
per request by default, as it does from ``sftp-server``."""

# Preference order, fastest first; only what the installed paramiko knows is
# offered (chacha20-poly1305 is listed for the day paramiko supports it). An
# OpenSSH client picks the first of *its* list that we offer, so the order
# matters for clients that defer to the server; CTR stays for those without GCM.
CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
           "chacha20-poly1305@openssh.com", "aes128-ctr", "aes256-ctr", "aes192-ctr")
# Encrypt-then-MAC first; plain SHA-2 HMACs for older clients. No SHA-1, no MD5.
MACS = ("hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com",
        "hmac-sha2-256", "hmac-sha2-512")


@dataclass(frozen=True)
class SftpTuning:
    """Per-server knobs; the defaults are what ``joist serve``/``sftpd`` run."""

    max_connections: int = 256
    """Connections served at once; further ones are closed on accept."""
    max_handles: int = 512
    """Open handles per session (advertised in ``limits@openssh.com``)."""
    login_grace: float = 120.0
    """Seconds a connection may take to log in (OpenSSH ``LoginGraceTime``)."""
    stall_timeout: float = 300.0
    """Seconds a reply may wait for the client to open its window before the
    session is given up, so a stalled or vanished client frees its thread."""
    keepalive: int = 60
    """Seconds between keepalive probes on an idle transport (0: none)."""
    read_ahead: int = WINDOW_SIZE
    """Most bytes fetched from the assetstore at once for the READs a client
    has pipelined on one handle: a window's worth, as more cannot be sent
    before the client acknowledges some."""
    send_batch: int = 1 << 20
    """Replies are sent in runs of about this many bytes, so channel packets go
    out full instead of one short packet per reply."""
    names_per_reply: int = 100
    """Entries per READDIR reply (as ``sftp-server``): a folder of any size is
    listed page by page, never built in memory."""
    housekeeping: float = 1.0
    """Seconds between sweeps for expired logins and finished connections."""


def apply_algorithms(options: paramiko.SecurityOptions) -> None:
    """Offer ``CIPHERS`` and ``MACS``, in that order, as far as this paramiko
    (and its ``cryptography``) supports them; never an empty offer."""
    ciphers = tuple(c for c in CIPHERS if c in options.ciphers)
    macs = tuple(m for m in MACS if m in options.digests)
    if ciphers:
        options.ciphers = ciphers
    if macs:
        options.digests = macs


__all__ = ["CIPHERS", "MACS", "MAX_MESSAGE", "MAX_PACKET_SIZE", "MAX_READ", "WINDOW_SIZE",
           "SftpTuning", "apply_algorithms"]
