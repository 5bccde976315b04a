"""Subcommands of ``joist``; each module offers ``register(subparsers)``."""

from __future__ import annotations

from . import (
            assetstore,
            check,
            collection,
            group,
            mount,
            plugin,
            serve,
            setting,
            sftpd,
            user,
            worker,
)

COMMANDS = (serve, user, group, collection, setting, plugin, check, mount, sftpd, assetstore,
            worker)

__all__ = ["COMMANDS"]
