"""The house rules that import contracts cannot see: no private name crosses a module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import failover

SOURCE = Path(failover.__file__).parent


def test_no_private_name_is_imported_from_another_module() -> None:
    """No module of the package imports a `_private` name from another module."""
    crossing = [
        f"{path.relative_to(SOURCE)}: from {node.module} import {alias.name}"
        for path in sorted(SOURCE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module != "__future__"
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert crossing == []


def test_every_module_has_a_layer() -> None:
    """Each top-level module and package of failover is placed in the import contract's
    layers, so a new module cannot slip past the rule that arrows point down."""
    import tomllib

    config = tomllib.loads((SOURCE.parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    (layers,) = [
        c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"
    ]
    placed = {name.strip().split(".")[0] for layer in layers for name in re.split(r"[|:]", layer)}
    modules = {
        path.stem if path.is_file() else path.name
        for path in SOURCE.iterdir()
        if (path.suffix == ".py" or (path / "__init__.py").exists()) and path.stem != "__init__"
    }
    assert modules - placed == set()


def test_the_gateway_and_the_applications_import_no_private_module() -> None:
    """server/, simulate/ and cli/ reach the core through its public modules only, never a
    private one (`failover._x`)."""
    private = [
        f"{path.relative_to(SOURCE)}: {name}"
        for package in ("server", "simulate", "cli")
        for path in sorted((SOURCE / package).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom)
        and (name := _resolved(path, node)).split(".")[1:2] != []
        and name.split(".")[1].startswith("_")
    ]
    assert private == []


def _resolved(path: Path, node: ast.ImportFrom) -> str:
    """The absolute dotted name of the module an import statement in `path` imports from."""
    if not node.level:
        return node.module or ""
    package = ["failover", *path.relative_to(SOURCE).parent.parts]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])
