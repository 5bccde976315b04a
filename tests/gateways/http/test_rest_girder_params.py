"""Issue 14: every Girder 5 core route takes the parameters Girder declares,
with the same location, required flag, type and access level.

Joist's route table (the declarations dispatch and ``/api/v1/describe`` are
built from) is held against ``girder_routes.GIRDER_ROUTES``, route by route;
a difference fails with a readable diff. Joist may add a parameter only if it
is optional, described, and listed in ``ALLOWED_EXTRAS`` with its reason.
"""

from __future__ import annotations

from joist.gateways.http.describe import KIND
from joist.gateways.http.resources import COLLECTORS
from joist.gateways.http.router import Route, table_from
from tests.gateways.http.girder_routes import GIRDER_PLUGIN_ROUTES, GIRDER_ROUTES, P
from tests.gateways.http.restsite import RestSite

# Joist-only routes (no Girder 5 counterpart): SSH keys for the SFTP gateway;
# PUT system/plugins, Girder 2's (5 enables plugins by installing them; issue 16
# asks for enabling from the API).
JOIST_ONLY_ROUTES = {("GET", "user/:id/sshkey"), ("POST", "user/:id/sshkey"),
                     ("DELETE", "user/:id/sshkey/:keyId"), ("PUT", "system/plugins"),
                     # the web client's Connect panel: where WebDAV and SFTP listen
                     ("GET", "system/endpoints"),
                     # administrators see mail the server gave up on, and clear it
                     ("GET", "system/mail"), ("DELETE", "system/mail"),
                     # the web client: a pending TOTP enrolment's QR code (SVG), and
                     # every setting with its help and choices for the settings page
                     ("GET", "user/:id/otp/qr"), ("GET", "system/setting/definitions"),
                     # Girder 3's notification stream (Girder 5 moved it to a websocket)
                     ("GET", "notification"), ("GET", "notification/stream")}

# (method, path, parameter) -> why Joist takes it. Each must stay optional and described.
ALLOWED_EXTRAS = {
    ("GET", "resource/lookup", "test"):
        "girder-client before 3.2 sends test=true to get null instead of a 400",
    ("GET", "file/:id/download/:name", "endByte"):
        "the same download options as GET file/:id/download, for named links",
    ("GET", "file/:id/download/:name", "contentDisposition"):
        "the same download options as GET file/:id/download, for named links",
    ("GET", "file/:id/download/:name", "extraParameters"):
        "the same download options as GET file/:id/download, for named links",
    ("GET", "folder/:id/download", "contentDisposition"):
        "inline or attachment for the zip, as on the file and item downloads",
    ("GET", "system/setting", "default"):
        "Girder 3's default=none|default (the stored value or the schema default)",
    ("POST", "assetstore", "current"):
        "make the new assetstore current in the same call (else PUT assetstore/:id)",
}

# (method, path, parameter) -> why Joist declares no default where Girder has one.
DEFAULTS_LEFT_OUT = {
    ("PUT", "assetstore/:id", name):
        "an update changes only the S3 fields sent; Girder would reset them to its defaults"
    for name in ("prefix", "service", "region", "serverSideEncryption",
                 "allowS3AcceleratedTransfer")
}



def _joist_routes() -> dict[tuple[str, str], Route]:
    return {(r.method, r.path): r for r in table_from(COLLECTORS).routes}


def _as_girder(route: Route) -> dict[str, P]:
    out = {}
    for param in route.params:
        kind = KIND.get(param.kind, ("string", None))[0]
        required = param.required or param.location == "path"
        out[param.name] = P(param.name, param.location, required, kind,
                            tuple(param.enum) or None, param.default)
    return out


def _choices(g: P, j: P) -> list[str]:
    """Where Girder gives an enum or a default, Joist gives the same (Joist may
    add them where Girder has none: they only document what is checked)."""
    out = []
    if g.enum is not None and set(g.enum) != set(j.enum or ()):
        out.append(f"enum Girder {list(g.enum)}, Joist {list(j.enum or ())}")
    if g.default not in (None, ()) and g.default != j.default:
        out.append(f"default Girder {g.default!r}, Joist {j.default!r}")
    return out


ROUTES = {**GIRDER_ROUTES, **GIRDER_PLUGIN_ROUTES}


def _differences(key: tuple[str, str], route: Route,
                 table: dict[tuple[str, str], tuple[str, tuple[P, ...]]] = ROUTES) -> list[str]:
    access, declared = table[key]
    girder = {p.name: p for p in declared}
    joist = _as_girder(route)
    described = {p.name: p.description for p in route.params}
    out = []
    if route.access != access:
        out.append(f"access: Girder {access}, Joist {route.access}")
    for name in sorted(set(girder) | set(joist)):
        g, j = girder.get(name), joist.get(name)
        if g is None and j is not None:
            reason = ALLOWED_EXTRAS.get((*key, name))
            if reason and not j.required and described[name]:
                continue
            out.append(f"{name}: Joist-only {tuple(j)[1:4]} (not an allowed, optional, "
                       f"described extra)")
        elif j is None:
            out.append(f"{name}: missing, Girder declares {tuple(g)[1:4]}")
        else:
            if g[1:4] != j[1:4]:
                out.append(f"{name}: Girder {tuple(g)[1:4]}, Joist {tuple(j)[1:4]}")
            out += [f"{name}: {d}" for d in _choices(g, j)
                    if not (d.startswith("default") and (*key, name) in DEFAULTS_LEFT_OUT
                            and j.default is None and not j.required)]
    return out


def test_the_girder_table_has_its_126_routes() -> None:
    assert len(GIRDER_ROUTES) == 126
    assert all(access in ("public", "token", "user", "admin")
               for access, _ in GIRDER_ROUTES.values())


def test_every_route_declares_what_girder_declares() -> None:
    joist = _joist_routes()
    report = []
    missing = sorted(set(ROUTES) - set(joist))
    report += [f"{m} {p}: no such route in Joist" for m, p in missing]
    extra = sorted(set(joist) - set(ROUTES) - JOIST_ONLY_ROUTES)
    report += [f"{m} {p}: Joist-only route not listed in JOIST_ONLY_ROUTES" for m, p in extra]
    for key in sorted(set(ROUTES) & set(joist)):
        report += [f"{key[0]} {key[1]}: {d}" for d in _differences(key, joist[key])]
    assert not report, "Route declarations differ from Girder's:\n  " + "\n  ".join(report)


def test_the_tolerances_are_still_needed() -> None:
    """An allowed extra must still exist and a left-out default must still
    differ (so the lists cannot rot)."""
    joist = _joist_routes()
    for method, path, name in ALLOWED_EXTRAS:
        assert name in {p.name for p in joist[(method, path)].params}, (method, path, name)
    for method, path, name in DEFAULTS_LEFT_OUT:
        girder = {p.name: p for p in GIRDER_ROUTES[(method, path)][1]}
        ours = _as_girder(joist[(method, path)])
        assert girder[name].default not in (None, ()) and ours[name].default is None, \
            (method, path, name)


def test_describe_shows_each_parameter_as_girder_does(ro_site: RestSite) -> None:
    doc = ro_site.get("describe").json()
    op = doc["paths"]["/group"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["exact"] == {"name": "exact", "in": "query", "required": False,
                               "type": "boolean", "default": False,
                               "description": params["exact"]["description"]}
    assert params["exact"]["description"]
    assert params["sortdir"]["enum"] == [1, -1] and params["sortdir"]["default"] == 1
    assert params["limit"]["type"] == "integer" and params["limit"]["format"] == "int32"
    assert params["sort"]["default"] == "name"
    otp = {p["name"]: p for p in doc["paths"]["/user/{id}/otp"]["put"]["parameters"]}
    assert otp["Girder-OTP"]["in"] == "header" and otp["Girder-OTP"]["required"] is True
    check = {p["name"]: p for p in doc["paths"]["/system/check"]["get"]["parameters"]}
    assert check["mode"]["enum"] == ["basic", "quick", "slow"]
    assert check["mode"]["default"] == "basic"
    password = {p["name"]: p for p in doc["paths"]["/user"]["post"]["parameters"]}["password"]
    assert (password["in"], password["format"]) == ("formData", "password")
    add = {p["name"]: p for p in doc["paths"]["/group/{id}"]["put"]["parameters"]}
    assert add["addAllowed"]["enum"] == ["default", "no", "yesmod", "yesadmin"]
    # Every parameter of every route is described, as Girder describes them.
    undescribed = [(path, method, p["name"]) for path, ops in doc["paths"].items()
                   for method, o in ops.items() for p in o["parameters"]
                   if not p.get("description")]
    assert undescribed == []
