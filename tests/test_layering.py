"""The one dependency rule: imports point downward only.

core never imports gateways or admin; no gateway imports another; gateways use
core's public surface (hierarchy, errors, auth, services, settings, acl), never
core.db or core.store directly.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GATEWAYS = ("http", "webdav", "sftp", "fuse")
PRIVATE_CORE = ("joist.core.db", "joist.core.store")


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


def test_layering_check_sees_violations(tmp_path: Path) -> None:
    """The walker itself must catch a relative import climbing into admin."""
    probe = tmp_path / "probe.py"
    probe.write_text("from ..admin import cli\nfrom .db import engine\n")
    found = _imports(probe, "joist.core.probe")
    assert "joist.admin" in found and "joist.core.db" in found
