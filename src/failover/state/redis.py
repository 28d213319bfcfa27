"""Shared state for gateway replicas: breakers, probes, cool-downs, health, budgets and the
rpm / tpm count of quotas in Redis.

    replica A                         Redis                              replica B
    acquire (CLOSED): local, free
    release -> outbox --batched--> EVALSHA record (shared window)
                                      trips OPEN, PUBLISH -----------> mirror adopts OPEN
    acquire (OPEN due / HALF_OPEN) --> EVALSHA admit: at most
                                      `half_open_calls` probes, cluster-wide
    cool_down / set_healthy --------> SET + PUBLISH ------------------> local cache updated

The hot path reads only local mirrors (`is_healthy`, `cooldown_until`, `would_admit`, CLOSED
admission); outcomes travel to Redis in the background, one pipelined round trip per flush for
all of them. A request waits on Redis only to become a HALF_OPEN probe (or on the replica's
first call through a breaker, to learn its state), and never longer than `local_timeout`.
When Redis is slow or gone the store is `degraded`: every replica decides alone from its local
state (counted in `redis_errors`), and a supervisor reconnects, re-subscribes, pushes what was
decided meanwhile and re-reads the shared state.

Latency EWMAs, percentiles and in-flight counts (`stats`) stay local: they describe what this
replica sees, which is what its strategies and hedging need. So do the provider's rate-limit
headers a quota reads: they are the provider's count of every replica's calls already.

The Redis may be one server, a master found through Sentinel or a Cluster (`backend.py`
builds the client and holds what differs); the store above is the same for all three, and
a failover of that Redis is an outage like any other: degraded, reconnect, resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from redis.exceptions import NoScriptError, RedisError

from ..clock import Clock, SystemClock
from ..config.state import parse_redis_url
from ..quota import Quota, QuotaPolicy
from ..resilience.breaker import BreakerEvent, BreakerPolicy, BreakerState, Result
from ..stats import DeploymentStats
from ._lua import SCRIPT, SHA
from .backend import Backend, Client
from .base import StateStore
from .counts import SharedBudget, SharedQuota
from .outbox import Outbox
from .shared import SharedBreaker
from .snapshot import SetMode, Snapshot
from .wire import Command, Wire, parse_quota

__all__ = ["RedisStore"]

log = logging.getLogger("failover.state")

_TROUBLE = (RedisError, OSError, TimeoutError)
_POLL = 0.05  # how often the subscriber looks up from the channel
_RECONNECT = (0.05, 1.0)  # first and longest wait between reconnection attempts
_MAX_PENDING = 10_000  # outcomes queued per breaker before the oldest are dropped
_MAX_ERROR = 300  # characters of the last error kept for the status page and the log
_CODES = {(False, False): "00", (True, False): "10", (False, True): "01", (True, True): "11"}


class RedisStore(StateStore):
    """State shared by every replica that uses the same Redis and `namespace`.

    `url` is a `state` URL: one server (`redis://`, `rediss://`, `unix://`), a master found
    through Sentinel (`redis+sentinel://`) or a Cluster (`redis+cluster://`); see
    `failover.config.state`. Its `namespace=` applies unless `namespace` is given.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        namespace: str | None = None,
        local_timeout: float = 0.05,
        sync_timeout: float = 0.5,
        flush_interval: float = 0.005,
        refresh_interval: float = 5.0,
        ttl: float = 3600.0,
        probe_timeout: float = 120.0,
        client: Client | None = None,
    ) -> None:
        target = parse_redis_url(url)  # a ValueError says what is wrong with it
        self.clock = clock or SystemClock()
        self.namespace = namespace = namespace or target.namespace or "failover"
        self.local_timeout = local_timeout
        self.sync_timeout = sync_timeout
        self.flush_interval = flush_interval
        self.refresh_interval = refresh_interval
        self.ttl = ttl
        self.probe_timeout = probe_timeout
        self.replica_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.redis_errors = 0  # failed Redis calls since start
        self.last_error: str | None = None
        self._rng = rng or random.Random()
        self._backend = (
            Backend.wrap(client)
            if client is not None
            else Backend.build(
                target, connect_timeout=sync_timeout, client_name=f"failover:{self.replica_id}"
            )
        )
        self._redis: Client = self._backend.client
        self._wire = Wire(
            namespace,
            clock=self.clock,
            rng=self._rng,
            ttl=ttl,
            probe_timeout=probe_timeout,
            hash_tags=self._backend.hash_tags,
        )
        self._channel = self._wire.channel
        self._breakers: dict[str, SharedBreaker] = {}
        self._budgets: dict[str, SharedBudget] = {}
        self._quotas: dict[str, Quota] = {}
        self._stats: dict[str, DeploymentStats] = {}
        self._cooldowns: dict[str, float] = {}
        self._unhealthy: set[str] = set()
        self._health_keys: set[str] = set()
        self._listeners: list[Callable[[BreakerEvent], None]] = []
        self._outbox = Outbox()
        self._pending = asyncio.Event()
        self._urgent = False
        self._lock = asyncio.Lock()
        self._synced = asyncio.Event()  # set after the first attempt to sync, good or bad
        self._degraded = False
        self._closed = False
        self._run_id: str | None = None  # which Redis process our generations come from
        self._tasks: list[asyncio.Task[None]] = []

    # -- the StateStore interface (sync methods read local state) -------------------------------

    def breaker(self, key: str, policy: BreakerPolicy) -> SharedBreaker:
        found = self._breakers.get(key)
        if found is None:
            found = SharedBreaker(key, policy, self, clock=self.clock, rng=self._rng)
            found.on_change(self._emit)
            self._breakers[key] = found
            self._outbox.reads.add(found)  # learn its shared state at the next flush
            self._wake(urgent=True)
        return found

    def breakers(self) -> dict[str, SharedBreaker]:
        return dict(self._breakers)

    def budget(
        self, key: str, *, ratio: float, min_per_second: float, burst: float
    ) -> SharedBudget:
        found = self._budgets.get(key)
        if found is None:
            found = SharedBudget(
                key,
                ratio=ratio,
                min_per_second=min_per_second,
                burst=burst,
                clock=self.clock,
                store=self,
            )
            self._budgets[key] = found
        return found

    def quota(self, key: str, policy: QuotaPolicy) -> Quota:
        found = self._quotas.get(key)
        if found is None:
            if policy.rpm is None and policy.tpm is None:
                # headers alone: the provider's own count of every replica's calls
                found = Quota(key, policy)
            else:
                found = SharedQuota(key, policy, store=self, clock=self.clock)
                self._outbox.quotas.add(found)  # learn the cluster's count at the next flush
                self._wake(urgent=True)
            self._quotas[key] = found
        return found

    def stats(self, key: str) -> DeploymentStats:
        found = self._stats.get(key)
        if found is None:
            found = self._stats[key] = DeploymentStats(key)
        return found

    def cooldown_until(self, key: str) -> float:
        return self._cooldowns.get(key, 0.0)

    def cool_down(self, key: str, until: float) -> None:
        if until <= self._cooldowns.get(key, 0.0):
            return
        self._cooldowns[key] = until
        wall = self._to_wall(until)
        self._outbox.cooldowns[key] = max(wall, self._outbox.cooldowns.get(key, 0.0))
        self._wake(urgent=True)

    def is_healthy(self, key: str) -> bool:
        return key not in self._unhealthy

    def set_healthy(self, key: str, healthy: bool) -> None:
        self._set_health(key, healthy)
        self._health_keys.add(key)
        self._outbox.health[key] = healthy
        self._wake(urgent=True)

    def subscribe(self, listener: Callable[[BreakerEvent], None]) -> None:
        self._listeners.append(listener)

    async def try_lease(self, key: str, ttl: float) -> bool:
        """True if this replica holds `key` for `ttl` seconds (SET NX PX; renewed by its holder).

        Lets one replica run a periodic job (a health probe) per interval. While Redis is down
        every replica gets the lease: doing the job twice beats nobody doing it.
        """
        self.ensure_started()
        if self._degraded:
            return True
        command = self._wire.lease(key, self.replica_id, ttl)
        try:
            async with asyncio.timeout(self.local_timeout):
                held = await self._eval(command.keys, command.argv)
        except _TROUBLE as exc:
            self._failed(exc)
            return True
        return bool(int(held))

    # -- status -------------------------------------------------------------------------------

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and this replica decides from local state alone."""
        return self._degraded

    def describe(self) -> dict[str, Any]:
        """Which Redis (and how found), which namespace, this replica's id, and whether Redis
        answers."""
        return {
            "backend": "redis",
            "mode": self._backend.mode,  # server, sentinel or cluster
            "redis": self._backend.where or None,  # the URL without credentials
            "namespace": self.namespace,
            "replica": self.replica_id,
            "degraded": self._degraded,
            "redis_errors": self.redis_errors,
            "last_error": self.last_error,
        }

    async def start(self) -> None:
        """Connect, subscribe and read the shared state now (else it happens on first use).

        Waits at most about twice `sync_timeout`; if Redis is down the store starts degraded
        (and keeps trying in the background).
        """
        self.ensure_started()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.sync_timeout * 2 + 0.1):
                await self._synced.wait()

    def ensure_started(self) -> None:
        """Start the background tasks once an event loop runs (cheap when already running)."""
        if self._tasks or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._tasks = [
            loop.create_task(self._supervise(), name="failover-redis-subscriber"),
            loop.create_task(self._flush_loop(), name="failover-redis-flusher"),
        ]

    async def flush(self) -> None:
        """Send every queued update now and apply the replies (nothing to do while degraded)."""
        self.ensure_started()
        if self._degraded:
            return
        async with self._lock:
            self._refresh_quotas()
            box = self._outbox.take()
            if box:
                with contextlib.suppress(_Unreachable):
                    await self._send(box)

    async def close(self) -> None:
        """Flush what is queued, stop the background tasks and close the connections."""
        if self._closed:
            return
        self._closed = True
        tasks, self._tasks = self._tasks, []
        if tasks:
            await _stop(tasks[0])  # the subscriber, with its connection
            if not self._degraded:
                with contextlib.suppress(Exception):
                    await self.flush()
            await _stop(tasks[1])
        await self._backend.aclose()

    # -- request-path Redis calls (bounded by local_timeout) -----------------------------------

    async def admit(self, breaker: SharedBreaker, deadline: float) -> Snapshot | None:
        """Ask Redis for a permit while the breaker is OPEN-and-due or HALF_OPEN; give up (and
        fall back to local state) at `deadline`, on the event loop's clock."""
        command = self._wire.breaker("admit", breaker)
        try:
            async with asyncio.timeout_at(deadline):
                raw = await self._eval(command.keys, command.argv)
        except _TROUBLE as exc:
            self._failed(exc)
            return None
        return Snapshot.parse(raw)

    async def _eval(self, keys: Sequence[str], args: Sequence[str]) -> Any:
        try:
            return await self._redis.evalsha(SHA, len(keys), *keys, *args)
        except NoScriptError:  # Redis restarted: load the script and go again
            await self._redis.script_load(SCRIPT)
            return await self._redis.evalsha(SHA, len(keys), *keys, *args)

    # -- queueing updates (called by breakers and budgets; never waits) ------------------------

    def queue_outcome(self, breaker: SharedBreaker, gen: int, failed: bool, slow: bool) -> None:
        """Send a CLOSED call's outcome with the next flush (a failure makes it urgent)."""
        pending = self._outbox.outcomes.setdefault(breaker, [])
        if len(pending) >= _MAX_PENDING:
            del pending[0]
        pending.append((gen, _CODES[failed, slow]))
        self._wake(urgent=failed)

    def queue_probe(self, breaker: SharedBreaker, gen: int, result: Result) -> None:
        """Send a probe's result at once."""
        self._outbox.probes.setdefault(breaker, []).append((gen, result))
        self._wake(urgent=True)

    def queue_set(self, breaker: SharedBreaker, mode: SetMode) -> None:
        """Push the mirror's state: `FORCE` (by hand), `MERGE` (decided alone), `EARLY`."""
        self._outbox.add_set(breaker, mode)
        self._wake(urgent=True)

    def queue_budget(self, budget: SharedBudget) -> None:
        """Send the budget's deposits and spends with the next (unhurried) flush."""
        self._outbox.budgets.add(budget)
        self._wake(urgent=False)

    def queue_quota(self, quota: SharedQuota) -> None:
        """Send the quota's calls (or read the cluster's count) with the next unhurried flush."""
        self._outbox.quotas.add(quota)
        self._wake(urgent=False)

    def _refresh_quotas(self) -> None:
        """Quotas in use whose cluster count is over a second old go with this flush too."""
        now = self.clock.now()
        for quota in self._quotas.values():
            if isinstance(quota, SharedQuota) and quota.due(now):
                self._outbox.quotas.add(quota)

    def _wake(self, *, urgent: bool) -> None:
        if self._degraded:
            return  # kept in the outbox until the resync
        self._urgent = self._urgent or urgent
        self._pending.set()
        if not self._tasks:
            self.ensure_started()

    # -- background: flushing -----------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while not self._closed:
            await self._pending.wait()
            if not self._urgent:
                await asyncio.sleep(self.flush_interval)  # let more updates join the batch
            self._pending.clear()
            self._urgent = False
            try:
                await self.flush()
            except Exception:  # a bug must not stop the flusher
                log.exception("flushing state to redis failed")

    async def _send(self, box: Outbox, *, reads: bool = False) -> None:
        """One pipelined round trip for everything in `box`; on trouble, fall back to local."""
        known = frozenset(self._health_keys | self._breakers.keys()) if reads else frozenset()
        commands = self._wire.commands(box, health_reads=known)
        try:
            async with asyncio.timeout(self.sync_timeout):
                results = await self._pipeline(commands)
        except _TROUBLE as exc:
            self._failed(exc, unsent=box)
            raise _Unreachable from exc
        self._apply(commands, results)

    async def _pipeline(self, commands: list[Command]) -> list[Any]:
        for attempt in (1, 2):
            async with self._redis.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command.args())
                try:
                    return list(await pipe.execute())
                except NoScriptError:
                    if attempt == 2:
                        raise
            await self._redis.script_load(SCRIPT)
        raise AssertionError("unreachable")

    def _apply(self, commands: list[Command], results: list[Any]) -> None:
        for command, result in zip(commands, results, strict=True):
            target, kind = command.target, command.kind
            if isinstance(target, SharedBreaker):
                snap = Snapshot.parse(result)
                target.apply(snap)
                if not snap.exists and target.state is not BreakerState.CLOSED:
                    # Redis forgot it (a restart): tell it again
                    self.queue_set(target, SetMode.MERGE)
            elif isinstance(target, SharedBudget):
                target.adopt(float(result))
            elif isinstance(target, SharedQuota):
                target.adopt(*parse_quota(result))
            elif kind == "cooldown":
                self._merge_cooldown(str(target), float(result))
            elif kind == "health?":
                self._set_health(str(target), result is None)

    # -- background: subscriber and supervisor ------------------------------------------------

    async def _supervise(self) -> None:
        """Subscribe, sync, follow the channel; on trouble reconnect with backoff and resync."""
        delay = _RECONNECT[0]
        while not self._closed:
            pubsub = self._redis.pubsub()
            try:
                async with asyncio.timeout(self.sync_timeout):
                    # loaded first: a cluster client re-reads its slot map on this call, so
                    # the subscription goes to a node that is there (after a failover, the
                    # new master has not got the script either)
                    await self._redis.script_load(SCRIPT)
                    await self._check_incarnation()
                    await pubsub.subscribe(self._channel)
                await self._sync()
                self._recovered()
                delay = _RECONNECT[0]
                await self._listen(pubsub)
            except _Unreachable:
                pass  # counted where it happened
            except _TROUBLE as exc:
                self._failed(exc)
            finally:
                self._synced.set()
                with contextlib.suppress(*_TROUBLE):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RECONNECT[1])

    async def _listen(self, pubsub: Any) -> None:
        loop = asyncio.get_running_loop()
        refresh_at = loop.time() + self.refresh_interval
        while not self._degraded and not self._closed:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_POLL)
            if message is not None and message.get("type") == "message":
                self._on_message(message["data"])
            if loop.time() >= refresh_at:
                # through Sentinel: is the master we talk to still the one they name?
                await self._backend.check_master(timeout=self.sync_timeout)
                await self._sync()  # a safety net for lost messages
                refresh_at = loop.time() + self.refresh_interval

    async def _sync(self) -> None:
        """Push what waited (after an outage) and re-read everything this replica knows."""
        async with self._lock:
            box = self._outbox.take()  # pushes go first: what waited, then what is new
            box.reads.update(self._breakers.values())
            box.quotas.update(q for q in self._quotas.values() if isinstance(q, SharedQuota))
            for key in self._cooldowns.keys() | self._breakers.keys():
                wall = self._to_wall(self._cooldowns.get(key, 0.0))
                box.cooldowns[key] = max(wall, box.cooldowns.get(key, 0.0))
            await self._send(box, reads=True)
        self._synced.set()

    async def _check_incarnation(self) -> None:
        """A restarted (or failed-over) Redis numbers generations afresh: forget ours."""
        run_id = await self._backend.incarnation()
        if self._run_id is not None and run_id != self._run_id:
            log.warning(
                "redis restarted or failed over (run_id %s): re-reading the shared state",
                run_id[:8],
            )
            for breaker in self._breakers.values():
                breaker.rebase()
        self._run_id = run_id

    def _on_message(self, data: str) -> None:
        try:
            message = orjson.loads(data)
            kind, key = message["t"], message["k"]
            if kind == "b":
                breaker = self._breakers.get(key)
                if breaker is not None:
                    breaker.apply(Snapshot.parse(message))
            elif kind == "c":
                self._merge_cooldown(key, float(message["u"]))
            elif kind == "h":
                self._set_health(key, message["v"] == "1")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("ignoring a malformed message on %s: %.200r", self._channel, data)

    # -- degraded mode ----------------------------------------------------------------------------

    def _failed(self, exc: BaseException, *, unsent: Outbox | None = None) -> None:
        """Count a failed Redis call; the first one switches this replica to local state."""
        self.redis_errors += 1
        # redis-py's messages can be long (one that no sentinel answered lists every one)
        self.last_error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
        if unsent is not None:
            self._outbox.restore(unsent)
        if not self._degraded:
            self._degraded = True
            log.warning("redis unreachable (%s): deciding from local state", self.last_error)
        # outcomes that did not reach Redis are judged here, as MemoryStore would
        for breaker, outcomes in self._outbox.take_outcomes().items():
            for gen, code in outcomes:
                result = Result.FAILURE if code[0] == "1" else Result.SUCCESS
                breaker.record_alone(gen, result, probe=False, slow=code[1] == "1")
        for breaker, probes in self._outbox.take_probes().items():
            for gen, result in probes:
                if result is not Result.IGNORE:
                    breaker.record_alone(gen, result, probe=True)

    def _recovered(self) -> None:
        if not self._degraded:
            return
        self._degraded = False
        log.warning("redis is back: state shared again (%d errors so far)", self.redis_errors)
        for breaker in self._breakers.values():
            breaker.forget_window()
        if self._outbox:
            self._wake(urgent=True)

    # -- local caches -------------------------------------------------------------------------

    def _set_health(self, key: str, healthy: bool) -> None:
        if healthy:
            self._unhealthy.discard(key)
        else:
            self._unhealthy.add(key)

    def _merge_cooldown(self, key: str, wall_until: float) -> None:
        until = self.clock.now() + (wall_until - self.clock.wall())
        if until > self._cooldowns.get(key, 0.0) + 1e-3:
            self._cooldowns[key] = until

    def _to_wall(self, until: float) -> float:
        return until - self.clock.now() + self.clock.wall() if until else 0.0

    def _emit(self, event: BreakerEvent) -> None:
        for listener in self._listeners:
            listener(event)

    def __repr__(self) -> str:
        mode = "degraded" if self._degraded else "shared"
        return (
            f"<RedisStore {self.namespace} {mode} breakers={len(self._breakers)} "
            f"unhealthy={len(self._unhealthy)} redis_errors={self.redis_errors}>"
        )


class _Unreachable(Exception):
    """A sync failed; the failure is already counted."""


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait until it ends, cancelling again should a cancellation get lost
    (Python 3.11's `asyncio.wait_for`, used inside client libraries, can swallow one)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s failed", task.get_name(), exc_info=task.exception())
