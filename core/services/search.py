"""Name search across models, filtered by what the principal may see.

Access-controlled models are filtered inside the query (one query a page);
items and files take their folder's access, checked once per distinct folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .. import acl
from ..acl import Principal
from ..db.engine import Document
from ..errors import ValidationError
from .tree_access import TreeAccess

PAGE = 500
MODELS = ("collection", "file", "folder", "group", "item", "user")
FIELDS = {"user": ("login", "firstName", "lastName"), "file": ("name",)}


def name_query(model: str, text: str, mode: str = "text") -> dict[str, Any]:
    """Case-insensitive match on the model's name fields; ``prefix`` anchors it."""
    if mode not in ("text", "prefix"):
        raise ValidationError(f"Invalid search mode: {mode}.", field="mode")
    pattern = re.escape(text.strip().lower())
    if mode == "prefix":
        pattern = "^" + pattern
    clauses = [{f: {"$regex": pattern, "$options": "i"}}
               for f in FIELDS.get(model, ("lowerName",))]
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


class SearchService:
    def __init__(self, tree: TreeAccess) -> None:
        self.tree = tree
        self.store = tree.store

    def find(self, principal: Principal, model: str, query: dict[str, Any], *,
             level: int = acl.READ, offset: int = 0, limit: int = 50) -> list[Document]:
        """One page of ``model`` documents matching ``query`` that ``principal``
        holds ``level`` on, in ``_id`` order."""
        if model not in MODELS:
            raise ValidationError(f"Invalid model: {model}.", field="types")
        if model in ("collection", "folder", "user", "group"):
            full = acl.and_filter(query, acl.permission_filter(principal, level))
            return self.store.of(model).find(full, sort=[("_id", 1)], skip=offset,
                                             limit=limit)
        out: list[Document] = []
        skipped = 0
        for doc in self._leaves(principal, model, query, level):
            if skipped < offset:
                skipped += 1
                continue
            out.append(doc)
            if limit and len(out) >= limit:
                break
        return out

    def by_name(self, principal: Principal, model: str, text: str, *, mode: str = "text",
                level: int = acl.READ, offset: int = 0, limit: int = 50) -> list[Document]:
        """``find`` with ``name_query``: the REST search routes."""
        return self.find(principal, model, name_query(model, text, mode), level=level,
                         offset=offset, limit=limit)

    def _leaves(self, principal: Principal, model: str, query: dict[str, Any],
                level: int) -> Iterator[Document]:
        """Items or files whose folder grants ``level``, read a page at a time."""
        allowed: dict[Any, bool] = {}
        last = None
        while True:  # ends: _id only grows, and a short page stops
            page = self.store.of(model).find(
                query if last is None else {"$and": [query, {"_id": {"$gt": last}}]},
                sort=[("_id", 1)], limit=PAGE)
            for doc in page:
                folder_id = self._folder_id(model, doc)
                if folder_id not in allowed:
                    folder = self.store.folders.find_one({"_id": folder_id}) \
                        if folder_id is not None else None
                    allowed[folder_id] = folder is not None and \
                        acl.effective_level(folder, principal) >= level
                if allowed[folder_id]:
                    yield doc
            if len(page) < PAGE:
                return
            last = page[-1]["_id"]

    def _folder_id(self, model: str, doc: Document) -> Any:
        if model == "item":
            return doc.get("folderId")
        item = self.store.items.find_one({"_id": doc.get("itemId")}, projection=["folderId"])
        return None if item is None else item.get("folderId")
