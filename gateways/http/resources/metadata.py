"""Routes every tree model shares: metadata and access lists."""

from __future__ import annotations

from typing import Any

from joist.core import acl

from ..app import Context
from ..request import RestError
from ..router import OWN_SCOPE, WRITE_SCOPE, Param, RouteCollector
from .common import load, progress_of

ACCESS_MODELS = ("collection", "folder")


METADATA_BODY = Param("metadata", "jsonObject", required=True, location="body",
                      description="A JSON object containing the metadata keys to add",
                      schema={"type": "object"})
FIELDS_BODY = Param("fields", "jsonArray", required=True, location="body",
                    description="A JSON list containing the metadata fields to delete",
                    schema={"type": "array", "items": {"type": "string"}})


def _json_body(ctx: Context, name: str) -> Any:
    """A required JSON body parameter (Girder's message when it is missing)."""
    request = ctx.request
    if not request.content_length and not request.chunked:
        raise RestError(f"JSON parameter {name} must be passed in request body.")
    return request.json_body()


def register(api: RouteCollector, model: str) -> None:
    """Add ``PUT/DELETE <model>/:id/metadata`` and, for ACL models, ``access``."""

    def set_metadata(ctx: Context, id: str, allow_null: bool) -> Any:
        body = _json_body(ctx, "metadata")
        if not isinstance(body, dict):
            raise RestError("Parameter metadata must be a JSON object.")
        doc = load(ctx, model, id, acl.WRITE)
        service = getattr(ctx.services, model + "s")
        return ctx.filter(model, service.set_metadata(ctx.principal, doc, body,
                                                      allow_null=allow_null), ctx.principal)

    def delete_metadata(ctx: Context, id: str) -> Any:
        body = _json_body(ctx, "fields")
        if not isinstance(body, list) or not all(isinstance(k, str) for k in body):
            raise RestError("Parameter fields must be a JSON array of strings.")
        doc = load(ctx, model, id, acl.WRITE)
        service = getattr(ctx.services, model + "s")
        return ctx.filter(model, service.delete_metadata(ctx.principal, doc, body),
                          ctx.principal)

    api.put(":id/metadata", f"Set metadata fields on a {model}.", access="user",
            scope=WRITE_SCOPE, notes="Set metadata fields to null in order to delete them.",
            params=(METADATA_BODY, Param("allowNull", "boolean", default=False, description=(
                'Whether "null" is allowed as a metadata value.'))))(set_metadata)
    api.delete(":id/metadata", f"Delete metadata fields on a {model}.", access="user",
               scope=WRITE_SCOPE, params=(FIELDS_BODY,))(delete_metadata)
    if model not in ACCESS_MODELS:
        return

    def get_access(ctx: Context, id: str) -> Any:
        doc = load(ctx, model, id, acl.ADMIN)
        return ctx.services.access.get(ctx.principal, model, doc)

    def set_access(ctx: Context, id: str, access: Any, public: bool | None,
                   public_flags: Any, recurse: bool, progress: bool) -> Any:
        doc = load(ctx, model, id, acl.ADMIN)
        with progress_of(ctx, progress and recurse, f"Updating access of {model} "
                         f"{doc.get('name') or doc.get('login')}", model, doc) as steps:
            doc = ctx.services.access.set(ctx.principal, model, doc, access, public=public,
                                          public_flags=public_flags, recurse=recurse)
            steps.update(force=True, message="Access updated")
        out = ctx.filter(model, doc, ctx.principal) or {}
        out["access"] = doc["access"]
        return out

    api.get(":id/access", f"Get the access list of a {model}.", access="user",
            scope=OWN_SCOPE)(get_access)
    api.put(":id/access", f"Replace the access list of a {model}.",
            access="user", scope=OWN_SCOPE, params=(
                Param("access", "jsonObject", required=True), Param("public", "boolean"),
                Param("publicFlags", "jsonArray"), Param("recurse", "boolean", default=False),
                Param("progress", "boolean", default=False)))(set_access)
