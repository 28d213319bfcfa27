"""The sliding window of a circuit breaker: the calls it judges while CLOSED.

Count-based (the last `size` calls) or time-based (the calls of the last `seconds`), as in
resilience4j; it keeps running counts of failed and slow calls, so reading a rate is O(1), and
the current failure streak with the rule that decides what ends it.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SlidingWindow"]


class SlidingWindow:
    """The calls a CLOSED breaker judges: the last `size` of them, or those of the last
    `seconds` when set; running counts of the failed and the slow ones, and the failure streak."""

    __slots__ = ("_calls", "_consecutive", "_failures", "_slow", "_streak_from", "seconds", "size")

    def __init__(self, size: int, seconds: float | None = None) -> None:
        self.size = size
        self.seconds = seconds
        self._calls: deque[tuple[float, bool, bool]] = deque()  # (time, failed, slow)
        self._failures = 0
        self._slow = 0
        self._consecutive = 0
        self._streak_from = float("-inf")  # start time of the streak's latest failed call

    @property
    def failures(self) -> int:
        """Failed calls in the window."""
        return self._failures

    @property
    def slow(self) -> int:
        """Slow calls in the window."""
        return self._slow

    @property
    def consecutive(self) -> int:
        """Failures in a row, up to the latest call."""
        return self._consecutive

    def __len__(self) -> int:
        return len(self._calls)

    def record(self, now: float, *, failed: bool, slow: bool, started: float) -> None:
        """Add a call that ended at `now` after starting at `started`."""
        self._calls.append((now, failed, slow))
        self._failures += failed
        self._slow += slow
        self.evict(now)
        if failed:
            self._consecutive += 1
            self._streak_from = max(self._streak_from, started)
        elif started >= self._streak_from:
            # Only a call that started after the streak's latest failure ends the streak: a
            # slow success from before an outage proves nothing about the deployment now.
            self._consecutive = 0

    def counts(self, now: float) -> tuple[int, int]:
        """(failed, total) calls in the window at `now`."""
        self.evict(now)
        return self._failures, len(self._calls)

    def evict(self, now: float) -> None:
        """Drop the calls that fell out of the window by `now`."""
        calls = self._calls
        if self.seconds is None:
            while len(calls) > self.size:
                self._drop_oldest()
        else:
            horizon = now - self.seconds
            while calls and calls[0][0] <= horizon:
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, failed, slow = self._calls.popleft()
        self._failures -= failed
        self._slow -= slow

    def clear(self) -> None:
        """Forget every call and the streak."""
        self._calls.clear()
        self._failures = self._slow = self._consecutive = 0
        self._streak_from = float("-inf")

    def __repr__(self) -> str:
        span = f"{self.seconds}s" if self.seconds is not None else f"last {self.size}"
        return f"<SlidingWindow {span}: {self._failures}/{len(self._calls)} failed>"
