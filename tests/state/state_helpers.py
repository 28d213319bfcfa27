"""Small helpers for the replica tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from failover.state.redis import RedisStore

__all__ = ["MakeStore", "eventually"]

MakeStore = Callable[..., RedisStore]  # the `make_store` fixture: RedisStore(**overrides)


async def eventually(predicate: Callable[[], bool], *, within: float = 2.0) -> float:
    """Wait (real time) until `predicate()` holds; return how long it took in seconds."""
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > within:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.0005)
    return time.perf_counter() - started
