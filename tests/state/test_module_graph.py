"""The state stores' modules: imports form a DAG, and nothing private crosses a module."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import failover.state

STATE = Path(failover.state.__file__).parent
MODULES = {path.stem: ast.parse(path.read_text()) for path in STATE.glob("*.py")}
NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make"}


def siblings(tree: ast.Module) -> set[str]:
    """The state/ modules a module imports, TYPE_CHECKING imports included."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("failover.state."):
            found.add(node.module.split(".")[2])  # type: ignore[union-attr]
    return found & MODULES.keys()


def graph() -> dict[str, set[str]]:
    return {name: siblings(tree) for name, tree in MODULES.items() if name != "__init__"}


def test_state_modules_import_each_other_without_cycles() -> None:
    """A topological order of state/ exists: no two modules import each other, even for types."""
    order = list(graphlib.TopologicalSorter(graph()).static_order())
    assert order.index("shared") < order.index("wire") < order.index("redis")


def test_shared_breakers_do_not_depend_on_redis() -> None:
    """shared.py, outbox.py and wire.py never import the Redis store (they use Coordinator)."""
    edges = graph()
    assert all("redis" not in edges[name] for name in ("shared", "outbox", "wire", "snapshot"))


def test_no_private_name_is_imported_across_modules() -> None:
    """No state/ module imports a `_private` name from another module."""
    private = [
        f"{name}: {alias.name}"
        for name, tree in MODULES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module != "__future__"
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []


def test_no_private_attribute_of_another_object_is_touched() -> None:
    """state/ reads and writes only its own objects' private attributes (`self._x`)."""
    touched = [
        f"{name}:{node.lineno}: {ast.unparse(node)}"
        for name, tree in MODULES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and node.attr not in NAMEDTUPLE_API
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    ]
    assert touched == []
