"""The API description (Swagger 2.0 at ``/api/v1/describe``) and the interactive
page at ``/api/v1``, both generated from the route declarations."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from .paramdocs import COMMON
from .request import Request
from .response import Raw, dumps
from .router import Route, RouteTable

STATIC = Path(__file__).with_name("static")
# Joist kind -> Swagger (type, format) as Girder's description gives them
# (Girder's "int" is integer/int32, "float" number/float; JSON travels as a string).
KIND = {"integer": ("integer", "int32"), "number": ("number", "float"),
        "boolean": ("boolean", None), "json": ("string", None),
        "jsonObject": ("string", None), "jsonArray": ("string", None),
        "objectId": ("string", None), "string": ("string", None),
        "password": ("string", "password")}
PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{brand} REST API</title>
<link rel="stylesheet" href="{base}/static/swagger-ui/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{base}/static/swagger-ui/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{url: "{base}/describe", dom_id: "#swagger-ui",
  deepLinking: true, docExpansion: "none", persistAuthorization: true}});
</script></body></html>
"""


def _operation(route: Route) -> dict[str, Any]:
    params: list[dict[str, Any]] = []
    for param in route.params:
        kind, fmt = KIND.get(param.kind, ("string", None))
        entry: dict[str, Any] = {"name": param.name, "in": param.location,
                                 "required": param.required or param.location == "path",
                                 "type": kind}
        if param.location == "body":
            entry = {"name": param.name, "in": "body", "required": param.required,
                     "schema": param.schema or {"type": "object"}}
        if fmt and param.location != "body":  # a body's type is its schema
            entry["format"] = fmt
        description = param.description or COMMON.get(param.name)
        if description:
            entry["description"] = description
        if param.default is not None:
            entry["default"] = param.default
        if param.enum:
            entry["enum"] = list(param.enum)
        params.append(entry)
    if route.raw_body:
        params.append({"name": "body", "in": "body", "required": False,
                       "schema": {"type": "string", "format": "binary"},
                       "description": "Raw request body."})
    handler = route.handler.__name__
    suffix = "" if route.method == "GET" else "_" + route.method.lower()
    op_id = "_".join([route.resource, handler, *[t.strip(":") for t in route.tokens]]) + \
        suffix
    operation: dict[str, Any] = {
        "summary": route.summary, "tags": [route.resource], "operationId": op_id,
        "parameters": params, "responses": {"200": {"description": "Success"},
                                            "400": {"description": "Invalid request"}},
    }
    if route.access != "public":
        operation["responses"]["401"] = {"description": "Login required"}
        operation["responses"]["403"] = {"description": "Access denied"}
    notes = [route.notes] if route.notes else []
    if route.access == "admin":
        notes.append("Site administrators only.")
    elif route.access == "token":
        notes.append("Needs a valid token (an anonymous session's will do).")
    if route.scope:
        notes.append(f"Token scope: {route.scope}.")
    if notes:
        operation["description"] = " ".join(notes)
    return operation


def swagger(routes: RouteTable, *, host: str, base_path: str, version: str,
            brand: str, descriptions: dict[str, str]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in sorted(routes.routes, key=lambda r: (r.path, r.method)):
        key = "/" + "/".join([route.resource, *[
            "{" + t[1:] + "}" if t.startswith(":") else t for t in route.tokens]])
        paths.setdefault(key, {})[route.method.lower()] = _operation(route)
    return {
        "swagger": "2.0", "basePath": base_path, "host": host,
        "info": {"title": f"{brand} REST API", "version": version,
                 "description": "Girder-compatible REST API of Joist.",
                 "license": {"name": "Apache 2.0",
                             "url": "https://www.apache.org/licenses/LICENSE-2.0.html"}},
        "tags": [{"name": r, "description": descriptions.get(r, "")}
                 for r in sorted(routes.resources())],
        "paths": paths, "definitions": {},
        "securityDefinitions": {"Girder-Token": {"type": "apiKey", "in": "header",
                                                 "name": "Girder-Token"},
                                "basicAuth": {"type": "basic"}},
        "security": [{"Girder-Token": []}],
    }


def describe_response(request: Request, routes: RouteTable, *, version: str, brand: str,
                      descriptions: dict[str, str]) -> Raw:
    doc = swagger(routes, host=request.host(),
                  base_path=request.environ.get("SCRIPT_NAME", "") or "/",
                  version=version, brand=brand, descriptions=descriptions)
    body = dumps(doc)
    return Raw(200, [("Content-Type", "application/json"),
                     ("Content-Length", str(len(body)))], [body])


def index_page(request: Request, *, brand: str) -> Raw:
    base = request.environ.get("SCRIPT_NAME", "").rstrip("/")
    body = PAGE.format(brand=brand, base=base).encode()
    return Raw(200, [("Content-Type", "text/html; charset=utf-8"),
                     ("Content-Length", str(len(body)))], [body])


def static_file(request: Request, name: str) -> Raw:
    """A vendored Swagger UI asset (no path may leave the static folder)."""
    base = (STATIC / "swagger-ui").resolve()
    target = (base / name).resolve()
    if target.parent != base or not target.is_file():
        body = b'{"message": "Not found.", "type": "rest"}'
        return Raw(404, [("Content-Type", "application/json"),
                         ("Content-Length", str(len(body)))], [body])
    data = target.read_bytes()
    kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return Raw(200, [("Content-Type", kind), ("Content-Length", str(len(data))),
                     ("Cache-Control", "public, max-age=86400")], [data])
