"""The server's host key: loaded from a file, or generated once (ed25519).

A generated key is written to a private temporary file and linked into place,
so two processes starting at once never clobber each other's key and no
reader ever sees half a key. A ``.pub`` file is written beside it, for
clients to pin.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from joist.core.errors import ValidationError

log = logging.getLogger("joist.sftp")


def load_host_key(path: str | os.PathLike[str], *, create: bool = False) -> paramiko.PKey:
    """The private key in ``path`` (OpenSSH or PEM; ed25519, ECDSA or RSA).
    ``create``: generate an ed25519 key there first if the file is missing."""
    path = Path(path).expanduser()
    if create and not path.exists():
        generate_host_key(path)
    try:
        return paramiko.PKey.from_path(path)
    except (paramiko.PasswordRequiredException, TypeError) as exc:
        # paramiko says "password required" for OpenSSH-format keys and lets
        # cryptography's TypeError through for encrypted PEM ones.
        if isinstance(exc, TypeError) and "encrypted" not in str(exc):
            raise ValidationError(f"Cannot read host key {path}: {exc}") from None
        raise ValidationError(f"Host key {path} is encrypted; encrypted host keys are "
                              "not supported.") from None
    except FileNotFoundError:
        raise ValidationError(f"Host key file not found: {path}") from None
    except (OSError, ValueError, paramiko.SSHException) as exc:
        raise ValidationError(f"Cannot read host key {path}: {exc}") from None


def generate_host_key(path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(private)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temp, path)  # fails if another process got there first
        except FileExistsError:
            return
        pub = path.with_name(path.name + ".pub")
        pub.write_bytes(public + b" joist-sftp-host-key\n")
        log.info("generated the SFTP host key %s", path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's ``SHA256:...`` form, for banners and logs."""
    return str(key.fingerprint)


__all__ = ["fingerprint", "generate_host_key", "load_host_key"]
