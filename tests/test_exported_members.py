"""The public surface is exact: what `failover` exports is what it documents."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import failover


def public_modules() -> list[ModuleType]:
    """Every module of the package whose dotted path has no `_`-prefixed part."""
    found = []
    for info in pkgutil.walk_packages(failover.__path__, prefix="failover."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        found.append(importlib.import_module(info.name))
    return found


def test_all_is_exactly_the_facades_public_names() -> None:
    """`failover.__all__` lists every public name of the facade (modules aside), sorted."""
    members = {
        name
        for name, value in vars(failover).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert failover.__all__ == sorted(members | {"__version__"})


def test_every_public_module_declares_its_all() -> None:
    """Each public module has `__all__`, every name in it exists, and none is private."""
    for module in public_modules():
        names = getattr(module, "__all__", None)
        assert names is not None, f"{module.__name__} has no __all__"
        for name in names:
            assert not name.startswith("_"), f"{module.__name__} exports private {name}"
            assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name}"


def test_public_modules_export_what_they_define() -> None:
    """A class or function defined in a public module and not `_`-prefixed is in its __all__
    (re-exports from elsewhere are the facades' business)."""
    for module in public_modules():
        defined = {
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and (inspect.isclass(value) or inspect.isfunction(value))
            and value.__module__ == module.__name__
        }
        missing = defined - set(getattr(module, "__all__", ()))
        assert not missing, f"{module.__name__} defines but does not export {sorted(missing)}"
