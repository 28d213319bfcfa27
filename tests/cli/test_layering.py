"""The applications sit on top: no module of the library imports `failover.cli`."""

from __future__ import annotations

import ast
from pathlib import Path

import failover

SRC = Path(failover.__file__).parent


def imported(path: Path) -> set[str]:
    """Every module `path` imports, relative imports resolved to absolute names."""
    module = ".".join(("failover", *path.relative_to(SRC).with_suffix("").parts))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            name = ".".join(part for part in (base, node.module) if part)
            found.update(f"{name}.{alias.name}" for alias in node.names)
            found.add(name)
    return found


def test_the_library_does_not_import_the_applications() -> None:
    """Outside failover/cli/ (and the `python -m failover` entry point) nothing names it."""
    offenders = {
        str(path.relative_to(SRC)): sorted(
            name
            for name in imported(path)
            if name == "failover.cli" or name.startswith("failover.cli.")
        )
        for path in SRC.rglob("*.py")
        if path.relative_to(SRC).parts[0] not in ("cli", "__main__.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}
