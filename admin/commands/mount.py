"""``joist mount PATH``: the tree as a local filesystem (the FUSE gateway).

The mount runs as one principal: ``--user LOGIN`` with an API key or token
from ``$JOIST_API_KEY``, ``$JOIST_TOKEN`` or ``--key-file`` (never a secret on
the command line), ``--user anonymous`` for public data, or ``--admin`` for a
site administrator's view (whoever can read the config and the store may ask
for it). Read-only unless ``--rw``. It runs in the foreground until
``joist mount PATH -u``, ``fusermount3 -u PATH`` or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from joist.core.acl import SYSTEM
from joist.core.auth import Grant
from joist.core.errors import AuthenticationError, CoreError, StorageError, ValidationError

from ..bootstrap import App
from .common import admin_principal, app_for, print_table

KEY_ENV = "JOIST_API_KEY"
TOKEN_ENV = "JOIST_TOKEN"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "mount", help="mount the tree as a local filesystem (FUSE)",
        description="Mount the tree at PATH (an empty directory) as one principal. "
                    f"Credentials for --user come from ${KEY_ENV} (an API key), "
                    f"${TOKEN_ENV} (a token) or --key-file.")
    parser.add_argument("path", nargs="?", help="mount point (an empty directory)")
    parser.add_argument("-u", "--unmount", "--umount", action="store_true",
                        help="unmount PATH instead")
    parser.add_argument("-z", "--lazy", action="store_true",
                        help="with -u: detach now, finish when no longer busy")
    parser.add_argument("--list", action="store_true",
                        help="list the live mounts of this store (stale records are removed)")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--user", metavar="LOGIN",
                     help="mount as this user ('anonymous': public data only)")
    who.add_argument("--admin", action="store_true",
                     help="mount with a site administrator's view of everything")
    parser.add_argument("--key-file", metavar="FILE",
                        help="file holding the user's API key or token")
    parser.add_argument("--rw", action="store_true",
                        help="allow writes (files are committed when closed)")
    parser.add_argument("--direct-io", action="store_true",
                        help="bypass the kernel page cache (streaming readers)")
    parser.add_argument("--chunk-cache", choices=("auto", "always", "off"), default="auto",
                        help="on-disk chunk cache: for blobs with no local file (auto), "
                             "for all, or never")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="chunk cache directory (default <data_dir>/fuse-cache)")
    parser.add_argument("--allow-other", action="store_true",
                        help="let other local users use the mount (as the mount's principal)")
    parser.add_argument("--debug-fuse", action="store_true", help="log every FUSE request")
    parser.set_defaults(handler=_mount)


def _mount(args: argparse.Namespace) -> int:
    if args.list:
        return _list(args)
    if not args.path:
        raise ValidationError("Give the mount point: joist mount PATH.")
    path = Path(args.path).absolute()
    if args.unmount:
        return _unmount(args, path)
    if not args.user and not args.admin:
        raise ValidationError("Choose whose view to mount: --user LOGIN or --admin.")
    from joist.core.memory import Reclaimer
    from joist.gateways.fuse import Mount, MountOptions, check_mountpoint

    check_mountpoint(path)  # before touching the store: a clear message, nothing mounted
    with _store(args) as app:
        live = app.services.auth.live(_grant(app, args))
        principal = live.principal()
        options = MountOptions.from_settings(
            app.settings, path, direct_io=args.direct_io,
            chunk_cache=args.chunk_cache, allow_other=args.allow_other,
            debug=args.debug_fuse, cache_dir=Path(args.cache_dir) if args.cache_dir else None)
        view = app.hierarchy.view(principal, read_only=not args.rw)

        def ready(_mount: Mount) -> None:
            mode = "read-write" if args.rw else "read-only"
            print(f"Mounted {path} ({mode}) as {principal.label()}; unmount with "
                  f"`joist mount {path} -u`.", flush=True)

        mount = Mount(view, options, app.services.mounts, on_ready=ready, live=live)
        # Memory comes back after big listings: expired cache entries, freed heap.
        reclaimer = Reclaimer(app.settings.memory.reclaim_interval)
        reclaimer.add(app.hierarchy.sweep)
        reclaimer.add(mount.operations.sweep_caches)
        reclaimer.start()
        try:
            mount.serve()
        finally:
            reclaimer.stop()
    return 0


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[App]:
    """The App, or a clear error when the store cannot be opened (nothing is
    mounted yet at that point)."""
    try:
        manager = app_for(args)
        app = manager.__enter__()
    except CoreError:
        raise
    except Exception as exc:
        raise StorageError(f"The store cannot be opened: {exc}") from None
    try:
        yield app
    finally:
        manager.__exit__(None, None, None)


def _secret(args: argparse.Namespace) -> tuple[str, str | None]:
    """(kind, secret): from --key-file, else the environment."""
    if args.key_file:
        try:
            secret = Path(args.key_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValidationError(f"Cannot read the key file: {exc.strerror}.") from None
        return "file", secret or None
    if os.environ.get(KEY_ENV):
        return "key", os.environ[KEY_ENV].strip()
    if os.environ.get(TOKEN_ENV):
        return "token", os.environ[TOKEN_ENV].strip()
    return "none", None


def _grant(app: App, args: argparse.Namespace) -> Grant:
    """Who the mount runs as; core re-checks it before every operation."""
    auth = app.services.auth
    if args.admin:
        return auth.grants.fixed(SYSTEM)
    login = str(args.user).strip()
    if login.lower() == "anonymous":
        return auth.secret_grant(login, "")
    kind, secret = _secret(args)
    if secret is None:
        raise AuthenticationError(f"No credentials for {login}: set ${KEY_ENV} or "
                                  f"${TOKEN_ENV}, or give --key-file.")
    if kind != "key":
        # A token first: a lookup, so that a file holding one is never
        # counted as a failed password.
        token = auth.tokens.grant(secret)
        user = auth.find_user(login)
        if token is not None and user is not None and user["_id"] == token.principal.user_id:
            return token
        if token is not None or kind == "token":
            raise AuthenticationError(f"The credentials are not valid for {login}.")
    return auth.secret_grant(login, secret)


def _unmount(args: argparse.Namespace, path: Path) -> int:
    from joist.gateways.fuse import unmount

    unmount(path, lazy=args.lazy)
    print(f"Unmounted {path}.")
    try:  # a mount killed outright left its record behind
        with app_for(args) as app:
            app.services.mounts.clean_stale()
    except Exception as exc:  # the mount is gone; the store may be unreachable
        print(f"joist: note: mount records not checked: {exc}", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        mounts = app.services.mounts
        mounts.clean_stale()
        rows = [{"path": m["path"], "host": m["host"], "pid": m["pid"],
                 "principal": m["principal"]["login"],
                 "mode": "ro" if m.get("readOnly") else "rw", "started": m["started"]}
                for m in mounts.records(admin_principal())]
        print_table(rows, ["path", "host", "pid", "principal", "mode", "started"], False)
    return 0
