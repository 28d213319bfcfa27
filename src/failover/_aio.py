"""Small asyncio helpers shared by the router's modules."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["aclose_quietly", "running_loop", "running_loop_or_none"]


class _Remembered(threading.local):
    loop: asyncio.AbstractEventLoop | None = None


_remembered = _Remembered()


def running_loop() -> asyncio.AbstractEventLoop:
    """`asyncio.get_running_loop()`, remembered per thread while that loop runs.

    On Python 3.11 each of asyncio's own answers costs a getpid() system call (a check against
    a fork), and a gateway request asks several times; Python 3.12 dropped the check for a
    reset at fork, which is what this does too. RuntimeError when no loop is running.

    A loop that says which thread runs it (asyncio's) is checked against this one; one that
    does not (uvloop's) is taken while it runs: a loop that ran in this thread and now runs
    in another, while this thread runs a loop of its own, would be taken for this thread's.
    """
    loop = _remembered.loop
    if loop is not None and _runs_here(loop):
        return loop
    loop = _remembered.loop = asyncio.get_running_loop()
    return loop


def running_loop_or_none() -> asyncio.AbstractEventLoop | None:
    """`running_loop()`, or None outside a running loop (e.g. in another thread)."""
    loop = _remembered.loop
    if loop is not None and _runs_here(loop):
        return loop
    loop = _remembered.loop = asyncio._get_running_loop()
    return loop


def _runs_here(loop: asyncio.AbstractEventLoop) -> bool:
    thread = getattr(loop, "_thread_id", _UNTOLD)
    if thread is _UNTOLD:
        return loop.is_running()
    return bool(thread == threading.get_ident())


_UNTOLD = object()


def _forget() -> None:
    global _remembered
    _remembered = _Remembered()


if hasattr(os, "register_at_fork"):  # a forked child runs loops of its own
    os.register_at_fork(after_in_child=_forget)


async def aclose_quietly(iterator: AsyncIterator[Any]) -> None:
    """Close an async iterator if it can be closed; a broken stream may fail to, harmlessly."""
    aclose = getattr(iterator, "aclose", None)  # plain async iterators have none
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
