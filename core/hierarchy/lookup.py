"""Girder's own path lookup (``resource/lookup``, ``resource/{id}/path``), and
the one way a document's path is written.

Girder never collapses a one-file item: a file's path always ends
``<item>/<file>``. Lookup is otherwise the resolver's walk (same order: folder,
then item, then file; same READ checks), so any miss or denial along the way
is the same not-found.
"""

from __future__ import annotations

from typing import Any

from .. import acl
from ..acl import Principal
from ..errors import AccessDeniedError, NotFoundError
from ..services import Services
from .nodes import ITEM
from .paths import join_path, split_path
from .resolver import ROOT_POSITION, Position, Resolver

ROOTS = ("user", "collection")


def lookup(resolver: Resolver, principal: Principal, path: str) -> tuple[str, dict[str, Any]]:
    """(model, document) at ``path``, READ-checked at every step. As in Girder,
    a trailing ``/`` is not stripped: it names a child with an empty name,
    which nothing has. Every step reads the store, not the path cache: the
    answer is the document as it is now (the gateways' views accept the
    cache's few seconds; a client looking a path up by REST does not)."""
    names = split_path(path) if isinstance(path, str) else []
    if not isinstance(path, str) or not path.startswith("/") or path.endswith("/") or \
            len(names) < 2 or names[0] not in ROOTS:
        raise NotFoundError(f"Path not found: {path}")
    pos = ROOT_POSITION
    try:
        for name in names:
            if pos.kind == ITEM and not pos.is_dir:  # Girder's layout: never a file
                pos = Position(ITEM, pos.doc, pos.folder)
            pos = resolver.child(pos, name, principal, fresh=True)
    except (NotFoundError, NotADirectoryError):
        raise NotFoundError(f"Path not found: {path}") from None
    assert pos.doc is not None
    return str(pos.kind), pos.doc


def path_of(services: Services, resolver: Resolver, principal: Principal, model: str,
            doc: dict[str, Any], *, collapse: bool) -> str:
    """The encoded path of a document; every ancestor must be readable (an
    unreadable one raises the access error of ``TreeAccess.ancestors``).
    ``collapse``: a one-file item's file is the item (the view's natural
    layout); else ``<item>/<file>``, as Girder writes it."""
    store, tree = services.tree.store, services.tree
    tail: list[str] = []
    if model == "file":
        item = store.get("item", doc["itemId"])
        folder = store.get("folder", item["folderId"])
        shown = resolver.item_entry(item, folder) if collapse else None
        tail = [item["name"]] if shown is not None and not shown.is_dir \
            else [item["name"], doc["name"]]
        model, doc = "folder", folder
    elif model == "item":
        tail, model, doc = [doc["name"]], "folder", store.get("folder", doc["folderId"])
    if model not in ("folder", *ROOTS):
        raise AccessDeniedError(f"A {model} has no path.")
    chain = tree.ancestors(principal, model, doc["_id"])
    root = chain[0]
    names = [root["type"], root["object"]["login" if root["type"] == "user" else "name"]]
    return join_path(names + [c["object"]["name"] for c in chain[1:]] + tail)


def resource_path(services: Services, resolver: Resolver, principal: Principal, model: str,
                  doc: dict[str, Any]) -> str:
    """Girder's ``resource/{id}/path``: READ on the document, then its path."""
    services.tree.require(principal, model, doc, acl.READ)
    return path_of(services, resolver, principal, model, doc, collapse=False)
