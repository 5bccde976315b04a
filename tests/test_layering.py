"""The one dependency rule: imports point downward only.

core never imports gateways or admin; no gateway imports another; gateways use
core's public surface (hierarchy, errors, auth, services, settings, acl), never
core.db or core.store directly -- not by import, and not by attribute either: no
``.store`` / ``.engine`` / ``.resolver`` reached through a service or a view, no
path cache through the hierarchy, no services or hierarchy behind a view.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GATEWAYS = ("http", "webdav", "sftp", "fuse")
PRIVATE_CORE = ("joist.core.db", "joist.core.store")
# Attribute names that only lead to the store or its query engine.
STORE_ATTRIBUTES = frozenset({"store", "_store", "engine", "_engine", "resolver"})
# What a view is built from: a gateway holding a view uses the view's methods.
BEHIND_A_VIEW = frozenset({"services", "hierarchy", "resolver"})


def _imports(path: Path, module_name: str | None = None) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = (module_name or _module_name(path)).rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
    return found


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = [*parts[:-1], "__init__"]
    return "joist." + ".".join(parts)


def _sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_core_imports_nothing_above_it() -> None:
    for path in _sources("core"):
        for module in _imports(path):
            assert not module.startswith(("joist.gateways", "joist.admin")), (path, module)
            assert not module.startswith(("core.", "gateways.", "admin.")), (path, module)


def test_gateways_use_only_public_core_and_not_each_other() -> None:
    for gateway in GATEWAYS:
        for path in _sources(f"gateways/{gateway}"):
            for module in _imports(path):
                assert not module.startswith(PRIVATE_CORE), (path, module)
                assert not module.startswith("joist.admin"), (path, module)
                for other in GATEWAYS:
                    if other != gateway:
                        assert not module.startswith(f"joist.gateways.{other}"), (path, module)


def _receiver_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _store_reaches(source: str) -> list[str]:
    """Attribute accesses (and ``getattr`` with a constant name) that reach
    past core's public surface into the store, and store queries (a dict with
    a ``$`` operator) built outside core."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Dict) and any(
                isinstance(key, ast.Constant) and str(key.value).startswith("$")
                for key in node.keys):
            found.append(f"{node.lineno}: a query operator in {ast.unparse(node)}")
            continue
        name: str | None = None
        receiver: ast.expr | None = None
        if isinstance(node, ast.Attribute):
            name, receiver = node.attr, node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) >= 2 \
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
            name, receiver = node.args[1].value, node.args[0]
        if name is None or receiver is None:
            continue
        owner = _receiver_name(receiver)
        store = name in STORE_ATTRIBUTES and not (name == "engine" and owner == "database")
        path_cache = name == "cache" and owner == "hierarchy"
        behind_view = name in BEHIND_A_VIEW and owner in ("view", "_view")
        if store or path_cache or behind_view:  # (settings.database.engine is config)
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_gateways_reach_no_store_through_attributes() -> None:
    for gateway in GATEWAYS:
        for path in _sources(f"gateways/{gateway}"):
            found = _store_reaches(path.read_text(encoding="utf-8"))
            assert not found, (str(path.relative_to(ROOT)), found)


def test_attribute_check_sees_violations() -> None:
    probe = (
        "ctx.services.store.get('user', uid)\n"
        "svc.tree.store.items.find({})\n"
        "getattr(ctx.services, 'store')\n"
        "self.view.hierarchy.cache.clear()\n"
        "view.services.settings.get('x')\n"
        "self._view.resolver.forget(a, b)\n"
        "app.services.tree._store\n"
        "x.engine.grouped()\n"
        "q = {'$and': [a, b]}\n"
    )
    lines = {int(hit.split(":")[0]) for hit in _store_reaches(probe)}
    assert lines == set(range(1, 10))  # every line of the probe is caught
    allowed = ("settings.database.engine\nctx.services.folders.listing(p, None)\n"
               "view.for_principal(p)\nself.hierarchy.view(p)\n")
    assert _store_reaches(allowed) == []


def test_layering_check_sees_violations(tmp_path: Path) -> None:
    """The walker itself must catch a relative import climbing into admin."""
    probe = tmp_path / "probe.py"
    probe.write_text("from ..admin import cli\nfrom .db import engine\n")
    found = _imports(probe, "joist.core.probe")
    assert "joist.admin" in found and "joist.core.db" in found
