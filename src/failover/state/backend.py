"""Which Redis a `RedisStore` talks to: one server, the master Sentinel names, or a Cluster.

The redis-py client is built from the parsed `state` URL (`failover.config.RedisTarget`),
and failing over is redis-py's own work, not ours:

- **Sentinel**: `Sentinel.master_for` gives a client whose every *new* connection first asks
  the sentinels where the master is. When the master dies, the store's calls fail, it goes
  degraded and its supervisor reconnects with backoff; each attempt asks the sentinels
  again, so the first one after the promotion reaches the new master (subscription
  included: it takes a connection from the same pool). A master demoted while we still
  talk to it answers writes with READONLY; redis-py closes that connection and raises a
  `ConnectionError`, which the store counts as Redis trouble like any other.
- **Cluster**: `RedisCluster` routes each call to the node that owns its key's slot and
  re-reads the slot map after a connection error. A script call must touch keys of one slot:
  `hash_tags` tells `Wire` to wrap deployment names in `{...}`. The store's channel is a
  plain one: a PUBLISH (also from a script) reaches every node of a cluster, so a
  subscription on any node hears every replica.

Every call has its own deadline in the store, so redis-py retries nothing (`Retry(..., 0)`)
and reads without a socket timeout of its own (which would wrap each read in `wait_for`).
Nothing connects before the first call: a store can be built before a fork.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, RedisError
from redis.maint_notifications import MaintNotificationsConfig

from ..config.state import RedisMode, RedisTarget

__all__ = ["Backend", "Client"]

Client = Redis | RedisCluster


class Backend:
    """A redis-py client for one `state` URL, and what its mode changes for the store."""

    def __init__(
        self,
        client: Client,
        *,
        mode: RedisMode,
        where: str = "",
        owned: bool = True,
        sentinel: Sentinel | None = None,
    ) -> None:
        self.client = client
        self.mode = mode
        self.where = where  # the URL without credentials, for the status page
        self._owned = owned
        self._sentinel = sentinel
        # where a Sentinel client's connections go (redis-py's SentinelConnectionPool)
        self._pool: Any = None
        if sentinel is not None and isinstance(client, Redis):
            self._pool = client.connection_pool

    @classmethod
    def build(cls, target: RedisTarget, *, connect_timeout: float, client_name: str) -> Backend:
        """A client for `target`; connections are made on first use."""
        common: dict[str, Any] = {
            "decode_responses": True,
            "socket_connect_timeout": connect_timeout,
            "socket_timeout": None,  # every call has its own deadline
            "retry": Retry(NoBackoff(), 0),  # we fall back to local state instead of retrying
            "client_name": client_name,
            "username": target.username,
            "password": target.password,
            **target.options,
        }
        if target.tls:
            common["ssl"] = True
        where = target.describe()
        if target.mode == "sentinel":
            watchers = _sentinel_kwargs(target, connect_timeout)
            sentinel = Sentinel(target.hosts, sentinel_kwargs=watchers)  # type: ignore[no-untyped-call]
            assert target.service is not None  # parse_redis_url requires it
            master = sentinel.master_for(target.service, db=target.db, **common)
            return cls(master, mode="sentinel", where=where, sentinel=sentinel)
        # no maintenance notifications: one round trip less per connection
        common["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
        if target.mode == "cluster":
            nodes = [ClusterNode(host, port) for host, port in target.hosts]
            return cls(RedisCluster(startup_nodes=nodes, **common), mode="cluster", where=where)
        host, port = target.hosts[0] if target.hosts else ("localhost", 6379)
        server = Redis(host=host, port=port, db=target.db, unix_socket_path=target.socket, **common)
        return cls(server, mode="server", where=where)

    @classmethod
    def wrap(cls, client: Client) -> Backend:
        """A client made by the caller, who closes it."""
        mode: RedisMode = "cluster" if isinstance(client, RedisCluster) else "server"
        return cls(client, mode=mode, owned=False)

    @property
    def hash_tags(self) -> bool:
        """Whether keys must carry hash tags (a cluster: a script's keys share one slot)."""
        return self.mode == "cluster"

    async def incarnation(self) -> str:
        """Which Redis process(es) answer: changes when Redis restarts or fails over."""
        if isinstance(self.client, RedisCluster):
            found = await self.client.info("server", target_nodes=RedisCluster.PRIMARIES)
            infos = [found] if "run_id" in found else list(found.values())
            return ",".join(sorted(str(info.get("run_id", "")) for info in infos))
        info = await self.client.info("server")
        return str(info.get("run_id", ""))

    async def check_master(self, *, timeout: float) -> None:
        """Through Sentinel: a ConnectionError if the sentinels now name another master than
        the one our connections go to (idle connections to the old one are dropped).

        A master that dies breaks our connections at once, but one replaced while it runs
        (`SENTINEL FAILOVER`, a partition that heals) keeps them, and keeps accepting writes,
        until the sentinels turn it into a replica, which can take them many seconds: asked
        periodically, this catches that.
        """
        if self._pool is None:
            return
        before = self._pool.master_address
        try:
            async with asyncio.timeout(timeout):
                named = await self._pool.get_master_address()
        except (RedisError, OSError, TimeoutError):
            return  # the sentinels cannot tell: keep the master we have while it answers
        if before is not None and tuple(named) != tuple(before):
            raise ConnectionError(f"the sentinels moved the master to {named[0]}:{named[1]}")

    async def aclose(self) -> None:
        """Close the connections this backend made (not a client the caller gave)."""
        if self._owned:
            await self.client.aclose()
        if self._sentinel is not None:
            await self._sentinel.aclose()

    def __repr__(self) -> str:
        return f"<Backend {self.mode} {self.where or type(self.client).__name__}>"


def _sentinel_kwargs(target: RedisTarget, connect_timeout: float) -> dict[str, Any]:
    """How to reach the sentinels: their own credentials, TLS as for Redis, and a timeout so
    that a hung sentinel is passed over for the next one."""
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": connect_timeout / 2,
        "socket_timeout": connect_timeout / 2,
        "retry": Retry(NoBackoff(), 0),
        "username": target.sentinel_username,
        "password": target.sentinel_password,
    }
    if target.tls:
        kwargs.update(ssl=True, **target.tls_options)
    return kwargs
