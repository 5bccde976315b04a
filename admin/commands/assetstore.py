"""``joist assetstore create|list|set-current|import``: where bytes are stored."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from joist.core.assetstores.registry import FILESYSTEM, S3, TYPE_NAMES
from joist.core.db.engine import Document
from joist.core.errors import NotFoundError, ValidationError
from joist.core.services.imports import ImportOptions

from ..bootstrap import App
from .common import add_json_flag, admin_principal, app_for, print_table


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("assetstore", help="manage assetstores (where bytes are stored)")
    stores = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = stores.add_parser("create", help="add a filesystem or S3 assetstore")
    create.add_argument("name")
    create.add_argument("--type", choices=("filesystem", "s3"), required=True)
    create.add_argument("--current", action="store_true", help="new uploads go there")
    fs = create.add_argument_group("filesystem")
    fs.add_argument("--root", help="directory holding the blobs")
    fs.add_argument("--perms", default="600", help="octal file mode of blobs (default 600)")
    s3 = create.add_argument_group("s3")
    s3.add_argument("--bucket")
    s3.add_argument("--prefix", default="", help="key prefix inside the bucket")
    s3.add_argument("--service", default="",
                    help="endpoint, [http[s]://]host[:port] (default: AWS)")
    s3.add_argument("--region", default="us-east-1")
    s3.add_argument("--access-key-id", default="")
    s3.add_argument("--secret-stdin", action="store_true",
                    help="read the secret access key from the first line of stdin")
    s3.add_argument("--infer-credentials", action="store_true",
                    help="use boto3's default credential chain (environment, profile, role)")
    s3.add_argument("--read-only", action="store_true", help="import only, never write")
    s3.add_argument("--server-side-encryption", action="store_true")
    create.set_defaults(handler=_create)
    listing = stores.add_parser("list", help="list assetstores")
    add_json_flag(listing)
    listing.set_defaults(handler=_list)
    current = stores.add_parser("set-current", help="send new uploads to this assetstore")
    current.add_argument("assetstore", metavar="NAME_OR_ID")
    current.set_defaults(handler=_set_current)
    imp = stores.add_parser("import", help="register existing data (an S3 key prefix) as "
                                           "folders and items, without copying it")
    imp.add_argument("assetstore", metavar="NAME_OR_ID")
    imp.add_argument("path", help="key prefix to import ('' for the whole bucket)")
    where = imp.add_mutually_exclusive_group(required=True)
    where.add_argument("--dest", metavar="PATH",
                       help="destination, e.g. /collection/data or /user/alice/Public")
    where.add_argument("--dest-id", metavar="ID", help="destination id (with --dest-type)")
    imp.add_argument("--dest-type", choices=("folder", "collection", "user"),
                     default="folder")
    imp.add_argument("--leaf-folders-as-items", action="store_true",
                     help="a directory holding only files becomes one item")
    imp.add_argument("--include", metavar="REGEX", help="import matching file names only")
    imp.add_argument("--exclude", metavar="REGEX", help="skip matching file names")
    imp.set_defaults(handler=_import)


def find_assetstore(app: App, name_or_id: str) -> Document:
    for doc in app.assetstores.list():
        if doc["name"] == name_or_id or str(doc["_id"]) == name_or_id:
            return doc
    raise NotFoundError(f"No such assetstore: {name_or_id}")


def _create(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        if args.type == "filesystem":
            if not args.root:
                raise ValidationError("--root is required for a filesystem assetstore.")
            try:
                perms = int(args.perms, 8)
            except ValueError:
                raise ValidationError("--perms must be an octal mode such as 600.") from None
            doc = app.assetstores.create_filesystem(args.name, args.root, perms=perms,
                                                    current=args.current)
        else:
            secret = sys.stdin.readline().rstrip("\r\n") if args.secret_stdin else ""
            doc = app.assetstores.create_s3(args.name, {
                "bucket": args.bucket, "prefix": args.prefix, "service": args.service,
                "region": args.region, "accessKeyId": args.access_key_id, "secret": secret,
                "inferCredentials": args.infer_credentials, "readOnly": args.read_only,
                "serverSideEncryption": args.server_side_encryption}, current=args.current)
        print(f"Created assetstore {doc['name']} ({doc['_id']}).")
    return 0


def _where(doc: Document) -> str:
    if doc.get("type") == S3:
        prefix = f"/{doc['prefix']}" if doc.get("prefix") else ""
        return f"s3://{doc.get('bucket')}{prefix}" + (f" at {doc['service']}"
                                                       if doc.get("service") else "")
    if doc.get("type") == FILESYSTEM:
        return str(doc.get("root", ""))
    return ""


def _list(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        rows: list[dict[str, Any]] = [
            {"name": d["name"], "type": TYPE_NAMES.get(int(d.get("type", 0)), d.get("type")),
             "current": bool(d.get("current")), "where": _where(d), "id": str(d["_id"])}
            for d in app.assetstores.list()]
        print_table(rows, ["name", "type", "current", "where", "id"], args.json)
    return 0


def _set_current(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        doc = find_assetstore(app, args.assetstore)
        app.assetstores.set_current(doc["_id"])
        print(f"New uploads go to assetstore {doc['name']} ({doc['_id']}).")
    return 0


def _import(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        doc = find_assetstore(app, args.assetstore)
        if args.dest:
            node = app.hierarchy.view(admin_principal()).stat(args.dest)
            if node.kind not in ("folder", "collection", "user") or node.ref is None:
                raise ValidationError(f"{args.dest} is not a folder, collection or user.")
            dest_type, dest_id = node.kind, node.ref
        else:
            dest_type, dest_id = args.dest_type, args.dest_id
        options = ImportOptions.build(leaf_folders_as_items=args.leaf_folders_as_items,
                                      include=args.include, exclude=args.exclude)
        summary = app.services.imports.import_data(admin_principal(), doc["_id"], args.path,
                                                   dest_type, dest_id, options)
        counts = summary.as_dict()
        print("Imported: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0
