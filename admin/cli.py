"""``joist``: one console script with Girder-style subcommands.

Global options select the configuration (``--config``, ``--data-dir``,
``--set section.key=value``); each subcommand lives in ``admin/commands``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from joist.core.errors import CoreError
from joist.core.settings import Settings, load_settings

from .commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="joist", description="Joist: data management with REST (Girder-compatible), "
                                  "WebDAV, SFTP and FUSE gateways over one core.")
    parser.add_argument("--config", metavar="FILE",
                        help="config file (default: $JOIST_CONFIG, ~/.joist/joist.toml, "
                             "/etc/joist.toml)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="data directory of the embedded store (default ~/.joist)")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append",
                        default=[], help="override a setting, e.g. --set server.port=9000")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging (repeatable)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def settings_from(args: argparse.Namespace, extra: dict[str, object] | None = None) -> Settings:
    overrides: dict[str, object] = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise CoreError(f"--set needs KEY=VALUE, not {item!r}")
        overrides[key.strip()] = value
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    overrides.update({k: v for k, v in (extra or {}).items() if v is not None})
    return load_settings(args.config, overrides=overrides)


def configure_logging(settings: Settings, verbose: int, *, quiet: bool = False) -> None:
    """``quiet`` (one-shot admin commands): warnings only unless -v is given."""
    level = logging.DEBUG if verbose else getattr(logging, settings.logging.level.upper())
    if quiet and not verbose:
        level = max(level, logging.WARNING)
    handler: logging.Handler = (logging.FileHandler(settings.logging.file)
                                if settings.logging.file else logging.StreamHandler())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if not verbose:
        logging.getLogger("paramiko").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # What a command that starts copies of itself (serve --workers) passes on.
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return int(args.handler(args) or 0)
    except CoreError as exc:
        print(f"joist: error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
