"""``joist user create|list|passwd|set-admin|delete|ssh-key|api-key``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    add_json_flag,
    admin_principal,
    app_for,
    print_table,
    read_password,
    user_by_login,
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("user", help="manage users")
    users = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = users.add_parser("create", help="create a user (the first one is an admin)")
    create.add_argument("login")
    create.add_argument("--email", required=True)
    create.add_argument("--first-name", default=None, help="default: the login")
    create.add_argument("--last-name", default=None, help="default: the login")
    create.add_argument("--admin", action="store_true", help="make a site administrator")
    create.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input")
    create.set_defaults(handler=_create)

    listing = users.add_parser("list", help="list users")
    add_json_flag(listing)
    listing.set_defaults(handler=_list)

    passwd = users.add_parser("passwd", help="set a user's password")
    passwd.add_argument("login")
    passwd.add_argument("--password-stdin", action="store_true")
    passwd.set_defaults(handler=_passwd)

    admin = users.add_parser("set-admin", help="grant or revoke site administration")
    admin.add_argument("login")
    admin.add_argument("--revoke", action="store_true")
    admin.set_defaults(handler=_set_admin)

    delete = users.add_parser("delete", help="delete a user and everything they own")
    delete.add_argument("login")
    delete.set_defaults(handler=_delete)

    ssh = users.add_parser("ssh-key", help="manage a user's SSH public keys (SFTP)")
    ssh.add_argument("ssh_action", choices=("add", "list", "remove"))
    ssh.add_argument("login")
    ssh.add_argument("key", nargs="?", help="add: public key file; remove: fingerprint or id")
    ssh.set_defaults(handler=_ssh_key)

    api = users.add_parser("api-key", help="create an API key for a user")
    api.add_argument("login")
    api.add_argument("--name", default="joist-cli")
    api.set_defaults(handler=_api_key)


def _create(args: argparse.Namespace) -> int:
    password = read_password(args)
    with app_for(args) as app:
        user = app.services.users.create(
            admin_principal(), login=args.login, email=args.email,
            first_name=args.first_name or args.login, last_name=args.last_name or args.login,
            password=password, admin=args.admin)
        role = "administrator" if user["admin"] else "user"
        print(f"Created {role} {user['login']} ({user['_id']}).")
    return 0


def _list(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        rows = [{"login": u["login"], "email": u["email"],
                 "name": f"{u['firstName']} {u['lastName']}", "admin": u.get("admin", False),
                 "status": u.get("status", "enabled"), "id": str(u["_id"])}
                for u in app.services.users.list(admin_principal(), limit=0,
                                                 sort=[("login", 1)])]
        print_table(rows, ["login", "email", "name", "admin", "status", "id"], args.json)
    return 0


def _passwd(args: argparse.Namespace) -> int:
    password = read_password(args, "New password: ")
    with app_for(args) as app:
        user = user_by_login(app, args.login)
        app.services.users.change_password(admin_principal(), user, password)
        print(f"Password of {user['login']} changed.")
    return 0


def _set_admin(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        user = user_by_login(app, args.login)
        app.services.users.set_admin(admin_principal(), user, not args.revoke)
        print(f"{user['login']} is {'no longer' if args.revoke else 'now'} an administrator.")
    return 0


def _delete(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        user = user_by_login(app, args.login)
        app.services.removal.delete_user(admin_principal(), user)
        print(f"Deleted user {user['login']}.")
    return 0


def _ssh_key(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        user = user_by_login(app, args.login)
        keys = app.services.auth.ssh_keys
        if args.ssh_action == "add":
            if not args.key:
                raise SystemExit("joist: error: give the public key file to add")
            doc = keys.add(user, Path(args.key).read_text(encoding="utf-8"))
            print(f"Added {doc['type']} key {doc['fingerprint']} for {user['login']}.")
        elif args.ssh_action == "remove":
            if not args.key:
                raise SystemExit("joist: error: give the fingerprint or id to remove")
            keys.remove(user["_id"], args.key)
            print("Removed.")
        else:
            for doc in keys.list(user["_id"]):
                print(f"{doc['fingerprint']}  {doc['type']}  {doc['name']}")
    return 0


def _api_key(args: argparse.Namespace) -> int:
    from joist.core.acl import Principal
    with app_for(args) as app:
        user = user_by_login(app, args.login)
        doc = app.services.auth.api_keys.create(Principal.from_user(user), name=args.name)
        print(doc["key"])
    return 0
