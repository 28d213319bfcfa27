"""The config package is core: it imports nothing above it, and its facade exports every
public name of its modules."""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import failover.config

PACKAGE = Path(failover.config.__file__).parent
# what the config schema may build on: the error tree, classification, the pure policies
ALLOWED = ("failover.errors", "failover.classify", "failover.resilience", "failover.config")


def imported(path: Path) -> set[str]:
    """The failover modules `path` imports, as absolute names."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            parent = ["failover", "config"][: 3 - node.level]
            names.add(".".join([*parent, node.module or ""]).rstrip("."))
        elif isinstance(node, ast.ImportFrom | ast.Import):
            found = [node.module] if isinstance(node, ast.ImportFrom) else []
            names.update(n for n in found if n and n.startswith("failover"))
    return names


def test_config_imports_only_core() -> None:
    """No module of failover.config imports providers, chaos, observability, server or state."""
    for module in PACKAGE.glob("*.py"):
        outside = {n for n in imported(module) if not n.startswith(ALLOWED)}
        assert outside == set(), f"{module.name} imports {outside}"


def test_the_facade_exports_every_public_name() -> None:
    """failover.config.__all__ holds each module's public names, and they are importable."""
    public = set()
    for info in pkgutil.iter_modules([str(PACKAGE)]):
        module = __import__(f"failover.config.{info.name}", fromlist=["__all__"])
        public.update(module.__all__)
    assert public <= set(failover.config.__all__)
    assert all(hasattr(failover.config, name) for name in failover.config.__all__)
