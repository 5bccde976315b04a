"""Subcommands of ``joist``; each module offers ``register(subparsers)``."""

from __future__ import annotations

from . import assetstore, check, collection, group, mount, plugin, serve, setting, sftpd, user

COMMANDS = (serve, user, group, collection, setting, plugin, check, mount, sftpd, assetstore)

__all__ = ["COMMANDS"]
