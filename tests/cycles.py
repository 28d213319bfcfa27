"""What only the cycle collector would free: the objects a block of code left in reference
cycles, and which of them are failover's own.

    with cyclic_garbage() as garbage:
        ...                                  # e.g. one request through the gateway
    assert not ours(garbage)

Automatic collection is off inside the block, so nothing it leaves is collected before the
end; there one `gc.collect()` with `gc.DEBUG_SAVEALL` hands over everything unreachable that
the block made. What existed before it is frozen out of that collection (`gc.freeze()`): a
gateway of an earlier test torn down meanwhile on another thread is not the block's doing.
The collector's state is restored afterwards, whatever happened; not for use inside another
`gc.freeze()`.
"""

from __future__ import annotations

import contextlib
import gc
import types
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import failover

__all__ = ["cyclic_garbage", "ours"]

PACKAGE = Path(failover.__file__).resolve().parent


@contextlib.contextmanager
def cyclic_garbage() -> Iterator[list[object]]:
    """The objects the block made and left unreachable in cycles (filled as the block ends)."""
    found: list[object] = []
    enabled, flags = gc.isenabled(), gc.get_debug()
    gc.disable()
    gc.collect()
    gc.freeze()
    saved = gc.garbage[:]
    gc.garbage.clear()
    gc.set_debug(flags | gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(flags)
        gc.garbage[:] = saved
        gc.unfreeze()
        if enabled:
            gc.enable()


def ours(garbage: list[object]) -> Counter[str]:
    """failover's own objects among `garbage` by type: instances of its classes, and the
    frames, functions, methods and coroutines of its code."""
    return Counter(_name(obj) for obj in garbage if _is_ours(obj))


def _is_ours(obj: object) -> bool:
    if type(obj).__module__.split(".")[0] == "failover":
        return True
    code = _code(obj)
    return code is not None and Path(code.co_filename).resolve().is_relative_to(PACKAGE)


def _code(obj: object) -> types.CodeType | None:
    if isinstance(obj, types.FrameType):
        return obj.f_code
    if isinstance(obj, types.CoroutineType):
        return obj.cr_code
    if isinstance(obj, types.AsyncGeneratorType):
        return obj.ag_code
    if isinstance(obj, types.GeneratorType):
        return obj.gi_code
    if isinstance(obj, types.FunctionType):
        return obj.__code__
    if isinstance(obj, types.MethodType):
        return _code(obj.__func__)
    return None


def _name(obj: object) -> str:
    code = _code(obj)
    where = f" {code.co_qualname}" if code is not None else ""
    return f"{type(obj).__module__}.{type(obj).__qualname__}{where}"
