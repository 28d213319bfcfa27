"""Adaptive concurrency: how many calls a deployment may have in flight, learned from how it
copes (in the spirit of TCP congestion control and Netflix's concurrency-limits).

    slow start   a deployment starts at `initial` calls in flight; while it is busy (at least
                 half its limit in use) each call it answers raises the limit by one, so the
                 limit doubles every round of answers; a stream keeps its slot after its
                 first content, so its answer raises the limit by two (the slot it keeps and
                 one more) and the room for new calls still doubles every round
    avoidance    after its first overload signal, growth slows to one per `limit` answers
    backoff      an overload signal (429, 503/529, a timeout) cuts the limit to `backoff`x
    reset        an opened breaker sets it to `min_limit`: a recovered deployment is eased
                 back in, and a fallback that suddenly takes all the traffic is ramped onto

A call that finds every candidate at its limit waits for a slot (within its deadline) rather
than piling onto one deployment. Pure: no I/O, no clock.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

__all__ = ["AdaptiveLimit", "ConcurrencyPolicy"]


@dataclass(frozen=True, slots=True)
class ConcurrencyPolicy:
    """Bounds and pace of each deployment's adaptive concurrency limit."""

    enabled: bool = True
    initial: int = 32  # calls in flight a deployment starts with
    min_limit: int = 4  # never below; what a deployment restarts at after its breaker opened
    max_limit: int = 10_000  # never above
    backoff: float = 0.7  # the limit is multiplied by this on an overload signal

    def __post_init__(self) -> None:
        if not 1 <= self.min_limit <= self.initial <= self.max_limit:
            raise ValueError("concurrency needs 1 <= min_limit <= initial <= max_limit")
        if not 0 < self.backoff < 1:
            raise ValueError("concurrency backoff must be in (0, 1)")


class AdaptiveLimit:
    """One deployment's concurrency limit and the calls waiting for a slot."""

    __slots__ = ("_growth", "_waiters", "in_flight", "limit", "name", "policy", "slow_start")

    def __init__(self, name: str, policy: ConcurrencyPolicy | None = None) -> None:
        self.name = name
        self.policy = policy or ConcurrencyPolicy()
        self.limit = float(self.policy.initial)
        self.in_flight = 0
        self.slow_start = True
        self._growth = 0.0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """Calls waiting for a slot."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    @property
    def saturated(self) -> bool:
        """Every slot is taken."""
        return self.policy.enabled and self.in_flight >= int(self.limit)

    def try_acquire(self) -> bool:
        """Take a slot if one is free."""
        if self.saturated or (self._waiters and self.policy.enabled):
            return False  # waiters go first
        self.in_flight += 1
        return True

    async def acquire(self) -> None:
        """Wait for a slot (cancel the task to stop waiting)."""
        if self.try_acquire():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.in_flight -= 1  # the slot was ours already: give it back
                self._wake()
            elif waiter in self._waiters:  # a release in the same step may have popped it
                self._waiters.remove(waiter)
            raise

    def take(self) -> None:
        """Take a slot whatever the limit (a call made in panic is counted all the same)."""
        self.in_flight += 1

    def answered(self, *, holding: bool = False) -> None:
        """A call holding a slot was answered: the deployment copes, so a busy one may have
        more. `holding`: a stream's first content; it keeps its slot until the stream ends."""
        if self.in_flight >= self.limit / 2:
            self._grow(2.0 if holding and self.slow_start else 1.0)
            self._wake()  # the room it grew goes to calls waiting now, not at the next release

    def overloaded(self) -> None:
        """A call holding a slot met a 429, a 503/529 or a timeout: less room than we thought."""
        self.slow_start = False
        self.limit = max(float(self.policy.min_limit), self.limit * self.policy.backoff)

    def release(self) -> None:
        """A call that held a slot ended."""
        self.in_flight = max(0, self.in_flight - 1)
        if self._waiters:
            self._wake()

    def reset(self) -> None:
        """The deployment's breaker opened: start over from `min_limit` when it is back."""
        self.limit = float(self.policy.min_limit)
        self.slow_start = True

    def _grow(self, step: float) -> None:
        if not self.slow_start:
            step = 1.0 / max(self.limit, 1.0)
        self.limit = min(float(self.policy.max_limit), self.limit + step)

    def _wake(self) -> None:
        while self._waiters and (not self.policy.enabled or self.in_flight < int(self.limit)):
            self._hand_on()

    def _hand_on(self) -> None:
        """Give a freed slot to the longest waiter still waiting."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)
                return

    def __repr__(self) -> str:
        phase = "slow start" if self.slow_start else "avoidance"
        waiting = f", {len(self._waiters)} waiting" if self._waiters else ""
        return f"<AdaptiveLimit {self.name} {self.in_flight}/{int(self.limit)} {phase}{waiting}>"
