"""Fixtures for the state stores: a real redis-server, unique namespaces, stores closed after."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from state_helpers import MakeStore, require_redis_cli, require_redis_server

from failover import FakeClock
from failover.state.redis import RedisStore
from redis_server import ClusterRedis, RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session; tests keep apart by namespace. Missing: a failure."""
    require_redis_server()
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterRedis]:
    """A three-master Redis Cluster for the session (namespaces keep tests apart). Missing
    redis-server or redis-cli: a failure."""
    require_redis_cli()
    with ClusterRedis() as cluster:
        yield cluster


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, free to be killed and restarted. Missing: a failure."""
    require_redis_server()
    with RedisServer() as server:
        yield server


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def make_store(
    redis_server: RedisServer, namespace: str, clock: FakeClock
) -> AsyncIterator[MakeStore]:
    """Build RedisStores (replicas) on the session server and this test's namespace."""
    made: list[RedisStore] = []

    def make(**kwargs: Any) -> RedisStore:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("namespace", namespace)
        # a loaded test machine must not look like an outage (test_redis_outage is about time)
        kwargs.setdefault("local_timeout", 0.5)
        store = RedisStore(kwargs.pop("url", redis_server.url), **kwargs)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()
