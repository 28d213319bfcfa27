"""Trouble of our own making: when the process, not the provider, is why a call failed.

    loop lag    the event loop ran late (CPU saturation): timers, reads and writes of every
                call were delayed
    pool wait   the call waited for one of our own connections to the provider

`CallInfo` follows each attempt through a context variable, so the transport can note how
long it waited for a connection without the layers in between passing it along. `LoopLag`
samples how late the event loop wakes. `Attempts` asks both before it blames a deployment:
a call that failed while the process itself was saturated is not the deployment's failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["CURRENT_CALL", "CallInfo", "LoopLag"]


@dataclass(slots=True)
class CallInfo:
    """What lower layers learn about the attempt in flight in this task."""

    started: float  # the event loop's time() when the attempt began
    pool_wait: float = 0.0  # seconds spent waiting for a connection of our own pool
    queued: bool = False  # still waiting for a connection right now
    headers: Mapping[str, str] | None = None  # the provider's response headers, when seen


CURRENT_CALL: ContextVar[CallInfo | None] = ContextVar("failover_call", default=None)


class LoopLag:
    """How late the event loop wakes: sampled every `interval` seconds, kept for `keep`."""

    def __init__(self, *, interval: float = 0.1, keep: float = 120.0) -> None:
        self.interval = interval
        self._samples: deque[tuple[float, float]] = deque(maxlen=max(1, int(keep / interval)))
        self._task: asyncio.Task[None] | None = None

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

    def worst_since(self, since: float) -> float:
        """The largest lag seen from loop time `since` until now (0 when none)."""
        worst = 0.0
        for at, lag in reversed(self._samples):
            if at < since:
                break
            worst = max(worst, lag)
        return worst

    @property
    def current(self) -> float:
        """The latest sample's lag."""
        return self._samples[-1][1] if self._samples else 0.0

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            now = loop.time()
            self.note(now, max(0.0, now - expected))
