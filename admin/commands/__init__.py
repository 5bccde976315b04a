"""Subcommands of ``joist``; each module offers ``register(subparsers)``."""

from __future__ import annotations

from . import check, collection, group, serve, setting, user

COMMANDS = (serve, user, group, collection, setting, check)

__all__ = ["COMMANDS"]
