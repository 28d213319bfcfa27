"""Time, injectable: every policy asks a `Clock` instead of calling `time` or `asyncio.sleep`.

`SystemClock` is the default. `FakeClock` is virtual time for tests and for the outage
simulator's ``--fast`` mode: sleeps and timeouts wake when the clock is advanced, either by hand
(`advance`) or automatically whenever every task is waiting on the clock (`autojump`).
`deadline_scope` bounds a block on any clock; `running_loop` is the event loop they run on.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import time
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from ._aio import running_loop

__all__ = [
    "Clock",
    "FakeClock",
    "SystemClock",
    "TimerHandle",
    "deadline_scope",
    "running_loop",
]


class TimerHandle(Protocol):
    """What `Clock.call_at` returns: something that can be cancelled."""

    def cancel(self) -> None: ...


@runtime_checkable
class Clock(Protocol):
    """Monotonic time in seconds, sleeping, and timers on the same time line."""

    def now(self) -> float: ...

    def wall(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle: ...


class SystemClock:
    """The real clock: the event loop's monotonic time and `asyncio.sleep`."""

    __slots__ = ()

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle:
        loop = running_loop()
        # the loop's clock is time.monotonic() too; convert for loops that differ (uvloop)
        return loop.call_at(loop.time() + (when - time.monotonic()), callback)

    def __repr__(self) -> str:
        return "<SystemClock>"


class _FakeTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Virtual time. Nothing moves until `advance` is called or `autojump` runs."""

    def __init__(self, start: float = 1000.0, *, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._timers: list[tuple[float, int, _FakeTimer]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    def call_at(self, when: float, callback: Callable[[], None]) -> _FakeTimer:
        timer = _FakeTimer(when, callback)
        heapq.heappush(self._timers, (when, next(self._seq), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_at(self._now + seconds, wake)
        try:
            await future
        finally:
            timer.cancel()

    def next_deadline(self) -> float | None:
        """When the earliest pending timer fires, or None."""
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def advance_sync(self, seconds: float) -> None:
        """Move time forward and fire due timers, without yielding to the loop."""
        target = self._now + max(0.0, seconds)
        while (when := self.next_deadline()) is not None and when <= target:
            _, _, timer = heapq.heappop(self._timers)
            self._now = max(self._now, when)
            timer.callback()
        self._now = target

    async def advance(self, seconds: float) -> None:
        """Move time forward, firing timers in order and letting woken tasks run."""
        target = self._now + max(0.0, seconds)
        while (when := self.next_deadline()) is not None and when <= target:
            self.advance_sync(when - self._now)
            await _settle()
        self._now = target
        await _settle()

    @contextlib.asynccontextmanager
    async def autojump(self, *, settle_rounds: int = 30) -> AsyncIterator[FakeClock]:
        """While inside, jump to the next timer whenever the loop has nothing else to do."""

        async def jumper() -> None:
            while True:
                await _settle(settle_rounds)
                when = self.next_deadline()
                if when is not None:
                    self.advance_sync(when - self._now)

        task = asyncio.get_running_loop().create_task(jumper())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def __repr__(self) -> str:
        return f"<FakeClock t={self._now:.3f} timers={len(self._timers)}>"


async def _settle(rounds: int = 30) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


def deadline_scope(clock: Clock, when: float | None) -> contextlib.AbstractAsyncContextManager[Any]:
    """Cancel the body at `when` on `clock` and raise TimeoutError, like `asyncio.timeout_at`
    (a deadline already past raises at once, before the body runs).

    A class, not a generator-based context manager, and not `asyncio.timeout` itself: every
    attempt enters one or two, and asyncio's asks for the running loop twice (on Python 3.11
    a getpid() system call each).
    """
    if when is None or when == math.inf:
        return _NO_DEADLINE
    return _Deadline(clock, when)


_NO_DEADLINE: contextlib.AbstractAsyncContextManager[Any] = contextlib.nullcontext()


class _Deadline:
    """`deadline_scope`'s scope: a timer on the clock that cancels the task, the cancellation
    turned into TimeoutError when it was the timer's alone (as `asyncio.Timeout` does)."""

    __slots__ = ("_cancelling", "_clock", "_fired", "_task", "_timer", "_when")

    def __init__(self, clock: Clock, when: float) -> None:
        self._clock = clock
        self._when = when
        self._fired = False

    async def __aenter__(self) -> None:
        task = asyncio.current_task(running_loop())
        assert task is not None, "deadline_scope needs a running task"
        if self._when <= self._clock.now():
            raise TimeoutError
        self._task = task
        self._cancelling = task.cancelling()
        self._timer = self._clock.call_at(self._when, self._expire)

    def _expire(self) -> None:
        self._fired = True
        self._task.cancel()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        expired = self._fired and self._task.uncancel() <= self._cancelling
        # done with the task: a task that ends with the error raised here would hold it in a
        # cycle (its error's traceback holds this frame, which holds this scope)
        del self._task
        if expired and kind is asyncio.CancelledError:
            raise TimeoutError from exc
