"""Small helpers for the replica tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from failover.state.redis import RedisStore
from redis_server import (
    CLI_INSTALL_HINT,
    INSTALL_HINT,
    REDIS_CLI,
    REDIS_SERVER,
    SentinelRedis,
    redis_available,
)

__all__ = ["MakeStore", "eventually", "promoted", "require_redis_cli", "require_redis_server"]

MakeStore = Callable[..., RedisStore]  # the `make_store` fixture: RedisStore(**overrides)


async def eventually(predicate: Callable[[], bool], *, within: float = 2.0) -> float:
    """Wait (real time) until `predicate()` holds; return how long it took in seconds."""
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > within:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.0005)
    return time.perf_counter() - started


async def promoted(redis: SentinelRedis, old: tuple[str, int], *, within: float) -> float:
    """Wait until the sentinels name another master than `old`; when (perf_counter) they did."""
    until = time.perf_counter() + within
    while (await asyncio.to_thread(redis.master)) in (old, None):
        if time.perf_counter() > until:
            raise AssertionError(f"no failover within {within}s:\n{redis.logs()[-3000:]}")
        await asyncio.sleep(0.02)
    return time.perf_counter()


def require_redis_server(binary: str = REDIS_SERVER) -> None:
    """Fail (never skip) the test at hand when `binary` is not installed."""
    if not redis_available(binary):
        pytest.fail(
            f"redis-server is required for the Redis tests and is missing at {binary}: "
            f"{INSTALL_HINT}. They never skip.",
            pytrace=False,
        )


def require_redis_cli(binary: str = REDIS_CLI) -> None:
    """Fail (never skip) the test at hand when `redis-cli` (which builds clusters) is missing."""
    require_redis_server()
    if not redis_available(binary):
        pytest.fail(
            f"redis-cli is required for the Redis Cluster tests and is missing at {binary}: "
            f"{CLI_INSTALL_HINT}. They never skip.",
            pytrace=False,
        )
