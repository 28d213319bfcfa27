"""The house rules that import contracts cannot see: no private name crosses a module."""

from __future__ import annotations

import ast
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
