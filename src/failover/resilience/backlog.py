"""The backlog a shedding process keeps outside itself: the clients it told to come back that
are not due yet, and how long the process needs to take them all in.

A client shed with `Retry-After: w` is one more request the process has promised to look at
again in `w` seconds. While thousands of them wait, the process cannot serve them sooner than
its admission rate allows: telling the next one to come back in a second only brings it back
to a process that is still full, to be shed (and cost the process) once more. The drain time,
waiting clients / requests admitted a second, is the wait the next shed client needs at least.

Counted in buckets of BUCKET seconds by when each client is due, in a ring that covers the
longest wait: O(1) a shed, amortised; no allocation after construction. Pure: the caller gives
the time.
"""

from __future__ import annotations

import math

__all__ = ["BUCKET", "Backlog"]

BUCKET = 0.1  # seconds: clients due within the same tenth of a second are counted together


class Backlog:
    """Shed clients not yet due, by when they are due (at most `horizon` seconds ahead)."""

    __slots__ = ("_counts", "_expired", "horizon", "waiting")

    def __init__(self, horizon: float) -> None:
        if not horizon > 0:
            raise ValueError("horizon must be more than 0")
        self.horizon = horizon
        # one bucket more than the horizon spans: a client due `horizon` from now never lands
        # in the bucket being expired
        self._counts = [0] * (math.ceil(horizon / BUCKET) + 2)
        self._expired: int | None = None  # the last bucket whose clients are due
        self.waiting = 0

    def add(self, now: float, wait: float) -> None:
        """A client told at `now` to come back in `wait` seconds (at most the horizon)."""
        self.expire(now)
        counts = self._counts
        current = int(now / BUCKET)
        # never the bucket just expired (it would wait a whole turn of the ring), nor beyond it
        due = min(max(int((now + wait) / BUCKET), current + 1), current + len(counts) - 1)
        counts[due % len(counts)] += 1
        self.waiting += 1

    def expire(self, now: float) -> None:
        """Forget the clients due by `now` (they are back, or not coming)."""
        current = int(now / BUCKET)
        last, self._expired = self._expired, current
        if last is None:
            return
        counts = self._counts
        # after a spell longer than the ring, each slot once: all are due
        for bucket in range(max(last + 1, current + 1 - len(counts)), current + 1):
            slot = bucket % len(counts)
            self.waiting -= counts[slot]
            counts[slot] = 0

    def pending(self, now: float) -> int:
        """Clients told to come back that are not due by `now`."""
        self.expire(now)
        return self.waiting

    def drain(self, now: float, rate: float) -> float:
        """Seconds until the process, admitting `rate` requests a second, has taken in every
        client waiting now and one more (0 when the rate is not known)."""
        return (self.pending(now) + 1) / rate if rate > 0 else 0.0

    def __repr__(self) -> str:
        return f"<Backlog waiting={self.waiting}>"
