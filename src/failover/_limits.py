"""The time limits of one call: configured, or learned from its deployment's own streams.

    first content   from the start of a stream to its first content (not its role chunk)
    silence         between two chunks of a stream that has started

Both are `timeouts.first_token` and `timeouts.stall` until the deployment has enough history,
then a multiple of its own p99 (see `failover.resilience.streams.learned_limit`).
`SilenceWatch` holds a started stream to its silence limit.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from ._aio import running_loop
from ._request import Call
from .clock import Clock, TimerHandle
from .resilience.streams import learned_limit
from .state.base import StateStore

__all__ = ["Limits", "SilenceWatch"]


class Limits:
    """Reads each deployment's stream history from the store to set its limits."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def first_content(self, call: Call) -> float | None:
        """Seconds a stream may take to its first content."""
        timeouts = call.plan.timeouts
        seen = self.store.stats(call.slot.name).first_content
        return learned_limit(timeouts.first_token, seen.p99, len(seen), timeouts.learning)

    def silence(self, call: Call) -> float | None:
        """Seconds a started stream may stay silent."""
        timeouts = call.plan.timeouts
        seen = self.store.stats(call.slot.name).silences
        return learned_limit(timeouts.stall, seen.p99, len(seen), timeouts.learning)


class SilenceWatch:
    """How long one source may stay silent, kept by one timer re-armed lazily.

    A read notes when it began; the timer, when it fires, cancels a read that has waited
    past the limit (or the stream's deadline), or else moves to when the current read would
    have. A stream of many chunks costs a timer per silence limit, not one per chunk.
    """

    __slots__ = ("clock", "deadline", "expired", "limit", "since", "task", "timer")

    def __init__(self, clock: Clock, limit: float | None, deadline: float) -> None:
        self.clock = clock
        self.limit = limit
        self.deadline = deadline
        self.since: float | None = None  # when the read in progress began
        self.task: asyncio.Task[Any] | None = None  # the task doing that read
        self.timer: TimerHandle | None = None
        self.expired = False  # the timer cancelled a read

    def until(self, since: float) -> float:
        """When a read that began at `since` has waited too long."""
        return self.deadline if self.limit is None else min(since + self.limit, self.deadline)

    def begin(self) -> float:
        """A read begins (now, returned); TimeoutError if it is already too late."""
        now = self.clock.now()
        until = self.until(now)
        if until <= now:
            raise TimeoutError
        # with its loop given, current_task skips get_running_loop (a getpid() on 3.11)
        self.since, self.task = now, asyncio.current_task(running_loop())
        if self.timer is None and not math.isinf(until):
            self.timer = self.clock.call_at(until, self._fire)
        return now

    def end(self) -> None:
        """The read is over, however it ended."""
        self.since = None

    def renew(self) -> float:
        """A read ended and the next began at once (a pushed stream's reads, all in one
        task's wait): how long the one that ended waited."""
        now = self.clock.now()
        since, self.since = self.since, now
        return 0.0 if since is None else now - since

    def timed_out(self) -> bool:
        """Whether the read was cancelled by this limit alone (not also by someone else)."""
        if not self.expired:
            return False
        self.expired = False
        return self.task is None or self.task.uncancel() == 0

    def stop(self) -> None:
        """The source is done: no more reads, no timer left behind."""
        self.since = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _fire(self) -> None:
        self.timer = None
        since = self.since
        if since is None:  # between reads: the next one arms the timer again
            return
        until = self.until(since)
        if self.clock.now() < until:
            self.timer = self.clock.call_at(until, self._fire)
        elif self.task is not None:
            self.expired = True
            self.task.cancel()
