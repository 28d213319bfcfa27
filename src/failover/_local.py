"""Trouble of our own making: when the process, not the provider, is why a call failed.

    loop lag    the event loop ran late (CPU saturation): timers, reads and writes of every
                call were delayed
    pool wait   the call waited for one of our own connections to the provider

`CallInfo` follows each attempt through a context variable, so the transport can note how
long it waited for a connection without the layers in between passing it along. `LoopLag`
samples how late the event loop wakes (its `smoothed` lag is what the gateway's admission
control sheds on); `PoolStats` is how full one of our connection pools is, and `PoolWait` one
request's wait for a connection of it. `local_cause` is the one rule, asked by `Attempts`
before it blames a deployment and by the health checker before it marks one unhealthy: a
call that failed while the process itself was saturated is not the deployment's failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from .kinds import Kind

__all__ = [
    "CURRENT_CALL",
    "LOCAL_KINDS",
    "LOCAL_LAG",
    "POOL_SHARE",
    "POOL_WAIT_BUCKETS",
    "CallInfo",
    "LoopLag",
    "PoolStats",
    "PoolWait",
    "local_cause",
]

LOCAL_LAG = 0.5  # seconds of event-loop lag during a call that make its failure our own
POOL_SHARE = 0.5  # a call that spent more of its time than this waiting for our pool
# what our own saturation can look like from inside a call; a 4xx or a 429 is always theirs
LOCAL_KINDS = frozenset({Kind.TIMEOUT, Kind.CONNECTION, Kind.SERVER_ERROR})
POOL_WAIT_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.25, 1.0, 5.0, 30.0)  # seconds


@dataclass(slots=True)
class CallInfo:
    """What lower layers learn about the attempt in flight in this task."""

    started: float  # the event loop's time() when the attempt began
    pool_wait: float = 0.0  # seconds spent waiting for a connection of our own pool
    queued: bool = False  # still waiting for a connection right now
    headers: Mapping[str, str] | None = None  # the provider's response headers, when seen
    probe: bool = False  # a health probe: sent over the provider's own small probe pool


SMOOTHING = 1 / 3  # weight of a new sample in `smoothed` (as toobusy's dampening)

CURRENT_CALL: ContextVar[CallInfo | None] = ContextVar("failover_call", default=None)


class LoopLag:
    """How late the event loop wakes: sampled every `interval` seconds, kept for `keep`."""

    def __init__(self, *, interval: float = 0.1, keep: float = 120.0) -> None:
        self.interval = interval
        self._samples: deque[tuple[float, float]] = deque(maxlen=max(1, int(keep / interval)))
        self._task: asyncio.Task[None] | None = None
        self.smoothed = 0.0  # an exponential average of the samples: a lag that lasts

    def start(self) -> None:
        """Start sampling on the running loop (again after `stop`); idempotent."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._sample())

    async def stop(self) -> None:
        """Stop sampling."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def note(self, at: float, lag: float) -> None:
        """Record one sample: at loop time `at`, the loop woke `lag` seconds late."""
        self._samples.append((at, lag))
        self.smoothed += SMOOTHING * (lag - self.smoothed)

    def worst_since(self, since: float) -> float:
        """The largest lag seen from loop time `since` until now (0 when none)."""
        worst = 0.0
        for at, lag in reversed(self._samples):
            if at < since:
                break
            worst = max(worst, lag)
        return worst

    def recent(self, seconds: float) -> float:
        """The largest lag among the samples of the last `seconds` (up to the latest one)."""
        if not self._samples:
            return 0.0
        return self.worst_since(self._samples[-1][0] - seconds)

    @property
    def current(self) -> float:
        """The latest sample's lag."""
        return self._samples[-1][1] if self._samples else 0.0

    @property
    def running(self) -> bool:
        """Whether it is sampling (`Router.start()` starts it)."""
        return self._task is not None and not self._task.done()

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            now = loop.time()
            self.note(now, max(0.0, now - expected))


def local_cause(
    kind: Kind,
    info: CallInfo,
    elapsed: float,
    lag: LoopLag | None,
    *,
    max_lag: float = LOCAL_LAG,
) -> str | None:
    """ "pool_wait" or "loop_lag" when the process, not the provider, made a call that ended
    in `kind` after `elapsed` seconds likely to fail; None when the failure is the provider's."""
    if kind not in LOCAL_KINDS:
        return None
    if info.queued or info.pool_wait > POOL_SHARE * max(elapsed, 1e-9):
        return "pool_wait"
    if lag is not None and lag.worst_since(info.started) >= max_lag:
        return "loop_lag"
    return None


@dataclass(slots=True)
class PoolStats:
    """One of our connection pools to a provider: how full it is and how long requests
    waited for a connection. The transport keeps it; metrics and status read it."""

    provider: str
    pool: str = "traffic"  # "traffic", or "probe": health checks' own small pool
    limit: int = 0  # connections at most (0: no limit)
    active: int = 0  # requests holding, opening or waiting for a connection
    waiting: int = 0  # of them, waiting because every connection is taken
    queued: int = 0  # requests that had to wait for a connection
    wait_sum: float = 0.0  # seconds waited, all requests together
    wait_counts: list[int] = field(default_factory=lambda: [0] * (len(POOL_WAIT_BUCKETS) + 1))

    @property
    def in_use(self) -> int:
        """Connections taken (open or being opened)."""
        return max(0, self.active - self.waiting)

    def waited(self, seconds: float) -> None:
        """Note how long one request waited for its connection (0 when one was free)."""
        self.wait_sum += seconds
        self.wait_counts[bisect_left(POOL_WAIT_BUCKETS, seconds)] += 1
        if seconds > 0:
            self.queued += 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view for the status document."""
        return {
            "provider": self.provider,
            "pool": self.pool,
            "limit": self.limit or None,
            "in_use": self.in_use,
            "waiting": self.waiting,
            "queued": self.queued,
            "wait_total_s": round(self.wait_sum, 3),
        }


class PoolWait:
    """One request's wait for a connection of a pool (the transport tells it when the wait
    starts and ends): noted in the pool's stats and in the attempt the request serves."""

    __slots__ = ("call", "since", "stats", "wait")

    def __init__(self, stats: PoolStats, call: CallInfo | None) -> None:
        self.stats = stats
        self.call = call
        self.since: float | None = None  # monotonic time it began waiting, while it waits
        self.wait = 0.0

    def start(self) -> None:
        """Every connection is taken: the request waits for one."""
        if self.since is None:
            self.since = time.monotonic()
            self.stats.waiting += 1
            if self.call is not None:
                self.call.queued = True

    def end(self, *, gone: bool = False) -> None:
        """The wait is over: a connection is free (`gone`: the request left without one)."""
        if self.since is None:
            return
        waited = time.monotonic() - self.since
        self.since = None
        self.stats.waiting -= 1
        self.wait += waited
        if self.call is not None:
            self.call.pool_wait += waited
            self.call.queued = gone  # a call that died waiting failed in our queue

    def close(self) -> None:
        """The request has its response head, or failed or was cancelled before it."""
        self.end(gone=True)
        self.stats.waited(self.wait)
