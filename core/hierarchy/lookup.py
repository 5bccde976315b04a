"""Girder's own path lookup (``resource/lookup``, ``resource/{id}/path``).

Unlike the view, it never collapses a one-file item: a file's path always ends
``<item>/<file>``. Any miss or denial along the way is the same not-found.
"""

from __future__ import annotations

from typing import Any

from .. import acl
from ..acl import Principal
from ..errors import AccessDeniedError, NotFoundError
from ..services import Services
from .paths import join_path, split_path

ROOTS = ("user", "collection")


def lookup(services: Services, principal: Principal, path: str) -> tuple[str, dict[str, Any]]:
    """(model, document) at ``path``, READ-checked at every step."""
    names = split_path(path)
    if not isinstance(path, str) or not path.startswith("/") or len(names) < 2 or \
            names[0] not in ROOTS:
        raise NotFoundError(f"Path not found: {path}")
    store, tree = services.tree.store, services.tree
    root = store.users.find_one({"login": names[1]}) if names[0] == "user" \
        else store.collections.find_one({"name": names[1]})
    model, doc = names[0], root
    if doc is None or tree.level(principal, model, doc) < acl.READ:
        raise NotFoundError(f"Path not found: {path}")
    for name in names[2:]:
        child: dict[str, Any] | None = None
        if model in ("user", "collection", "folder"):
            child = store.folders.find_one({"parentId": doc["_id"], "name": name})
            if child is not None:
                if acl.effective_level(child, principal) < acl.READ:
                    raise NotFoundError(f"Path not found: {path}")
                model, doc = "folder", child
                continue
            if model == "folder":
                child = store.items.find_one({"folderId": doc["_id"], "name": name})
                model = "item"
        elif model == "item":
            child = store.files.find_one({"itemId": doc["_id"], "name": name},
                                         sort=[("_id", 1)])
            model = "file"
        if child is None:
            raise NotFoundError(f"Path not found: {path}")
        doc = child
    return model, doc


def resource_path(services: Services, principal: Principal, model: str,
                  doc: dict[str, Any]) -> str:
    """The encoded path of a document; every ancestor must be readable (an
    unreadable one is an access error, as in Girder)."""
    store, tree = services.tree.store, services.tree
    tree.require(principal, model, doc, acl.READ)
    tail: list[str] = []
    if model == "file":
        item = store.get("item", doc["itemId"])
        tail, model, doc = [item["name"], doc["name"]], "folder", \
            store.get("folder", item["folderId"])
    elif model == "item":
        tail, model, doc = [doc["name"]], "folder", store.get("folder", doc["folderId"])
    chain: list[dict[str, Any]]
    if model in ROOTS:
        chain = [{"type": model, "object": doc}]
    elif model == "folder":
        chain = [*tree.ancestors(principal, doc["parentCollection"], doc["parentId"]),
                 {"type": model, "object": doc}]
    else:
        raise AccessDeniedError(f"A {model} has no path.")
    root = chain[0]
    names = [root["type"], root["object"]["login" if root["type"] == "user" else "name"]]
    return join_path(names + [c["object"]["name"] for c in chain[1:]] + tail)
