"""Small helpers for the replica tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from failover.state.redis import RedisStore
from redis_server import INSTALL_HINT, REDIS_SERVER, redis_available

__all__ = ["MakeStore", "eventually", "require_redis_server"]

MakeStore = Callable[..., RedisStore]  # the `make_store` fixture: RedisStore(**overrides)


async def eventually(predicate: Callable[[], bool], *, within: float = 2.0) -> float:
    """Wait (real time) until `predicate()` holds; return how long it took in seconds."""
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > within:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.0005)
    return time.perf_counter() - started


def require_redis_server(binary: str = REDIS_SERVER) -> None:
    """Fail (never skip) the test at hand when `binary` is not installed."""
    if not redis_available(binary):
        pytest.fail(
            f"redis-server is required for the Redis tests and is missing at {binary}: "
            f"{INSTALL_HINT}. They never skip.",
            pytrace=False,
        )
