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
    `seconds` when set; running counts of the failed and the slow ones, and the failure streak.

    `total`, `failures`, `slow` and `consecutive` are for reading (plain attributes: the breaker
    reads them on every call); only `record`, `evict` and `clear` change them.
    """

    __slots__ = (
        "_calls",
        "_streak_from",
        "consecutive",
        "failures",
        "seconds",
        "size",
        "slow",
        "total",
    )

    def __init__(self, size: int, seconds: float | None = None) -> None:
        self.size = size
        self.seconds = seconds
        self._calls: deque[tuple[float, bool, bool]] = deque()  # (time, failed, slow)
        self.total = 0  # calls in the window
        self.failures = 0  # failed calls in the window
        self.slow = 0  # slow calls in the window
        self.consecutive = 0  # failures in a row, up to the latest call
        self._streak_from = float("-inf")  # start time of the streak's latest failed call

    def __len__(self) -> int:
        return self.total

    def record(self, now: float, failed: bool, slow: bool, started: float) -> None:
        """Add a call that started at `started` and ended at `now`."""
        calls = self._calls
        if self.seconds is not None:
            calls.append((now, failed, slow))
            self.total += 1
            self.evict(now)
        elif self.total >= self.size:  # full: one call in, the oldest out
            _, gone_failed, gone_slow = calls.popleft()
            calls.append((now, failed, slow))
            self.failures -= gone_failed
            self.slow -= gone_slow
        else:
            calls.append((now, failed, slow))
            self.total += 1
        self.failures += failed
        self.slow += slow
        if failed:
            self.consecutive += 1
            if started > self._streak_from:
                self._streak_from = started
        elif started >= self._streak_from:
            # Only a call that started after the streak's latest failure ends the streak: a
            # slow success from before an outage proves nothing about the deployment now.
            self.consecutive = 0

    def counts(self, now: float) -> tuple[int, int]:
        """(failed, total) calls in the window at `now`."""
        self.evict(now)
        return self.failures, self.total

    def evict(self, now: float) -> None:
        """Drop the calls that fell out of the window by `now`."""
        calls = self._calls
        if self.seconds is None:
            while self.total > self.size:
                self._drop_oldest()
        else:
            horizon = now - self.seconds
            while calls and calls[0][0] <= horizon:
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, failed, slow = self._calls.popleft()
        self.total -= 1
        self.failures -= failed
        self.slow -= slow

    def clear(self) -> None:
        """Forget every call and the streak."""
        self._calls.clear()
        self.total = self.failures = self.slow = self.consecutive = 0
        self._streak_from = float("-inf")

    def __repr__(self) -> str:
        span = f"{self.seconds}s" if self.seconds is not None else f"last {self.size}"
        return f"<SlidingWindow {span}: {self.failures}/{self.total} failed>"
