"""Counts every replica keeps together: the shared retry budget and the shared rpm / tpm.

`SharedBudget` and `SharedQuota` act locally at once and settle with Redis in the background:
what Redis answers (the cluster's balance, the cluster's calls this minute) becomes the local
view, and what was done since still counts on top of it. What they need from the store is the
`Settler` protocol below (`RedisStore` implements it), so this module does not depend on Redis.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from ..clock import Clock
from ..quota import Quota, QuotaPolicy
from ..resilience.retry import RetryBudget

__all__ = ["Settler", "SharedBudget", "SharedQuota"]

_MINUTE = 60.0  # rpm / tpm count per minute: Redis keeps one bucket per wall-clock minute
_FRESH = 1.0  # a cluster count older than this (seconds) is read again with the next flush


class Settler(Protocol):
    """What shared counts need from the store that shares them."""

    @property
    def degraded(self) -> bool:
        """True while the shared store is unreachable: decide from local state alone."""
        ...

    def queue_budget(self, budget: SharedBudget) -> None:
        """Send a budget's deposits and spends without waiting."""
        ...

    def queue_quota(self, quota: SharedQuota) -> None:
        """Send a quota's calls (or just read the cluster's count) without waiting."""
        ...


class SharedBudget(RetryBudget):
    """A retry budget whose tokens are the cluster's: local spending, shared balance.

    Deposits and spends act locally at once and are sent to Redis in the background; the reply
    (the shared bucket after every replica's deltas) becomes the local balance. Replicas may
    overspend by what they spend within one flush interval.
    """

    __slots__ = ("_deposits", "_spends", "_store")

    def __init__(self, name: str, *, store: Settler, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self._store = store
        self._deposits = 0.0
        self._spends = 0.0

    def deposit(self) -> None:
        """Earn tokens locally at once; the deposit is sent to the shared bucket."""
        super().deposit()
        self._deposits += self.ratio
        self._store.queue_budget(self)

    def spend(self) -> bool:
        """Spend a token locally if there is one; the spend is sent to the shared bucket."""
        if not super().spend():
            return False
        self._spends += 1.0
        self._store.queue_budget(self)
        return True

    def take_delta(self) -> tuple[float, float]:
        """(deposits, spends) since the last call, to send."""
        delta = (self._deposits, self._spends)
        self._deposits = self._spends = 0.0
        return delta

    def adopt(self, shared_tokens: float) -> None:
        """The shared balance arrived; deltas made since the send still apply on top of it."""
        self._tokens = min(self.burst, shared_tokens + self._deposits) - self._spends
        self._last = self._clock.now()


class SharedQuota(Quota):
    """A deployment's `rpm` / `tpm` counted by every replica: local counting, shared minute.

    A call counts here at once and is sent to Redis in the background, where the cluster's calls
    are kept per wall-clock minute; the reply (this minute's and the last one's, this replica's
    calls included) becomes the local figure, which slides on with this replica's clock: the
    calls of the last 60 s are estimated as the previous minute's, weighted by the part of it
    still inside them, plus the current one's. Calls not yet answered for count on top. A figure
    over a second old is read again with the next flush (asked for when the quota is consulted,
    and with any flush while it is in use). The provider's rate-limit headers need no sharing:
    they are its count of every replica's calls already.

    Replicas may together exceed the limit by the calls that cross: what the others sent since
    this replica last heard. While the store is degraded each replica counts its own calls
    alone, exactly as `Quota` does, so together they may send the limit once each.
    """

    __slots__ = (
        "_bucket", "_clock", "_current", "_heard", "_previous", "_sending", "_store", "_unsent",
        "_used",
    )  # fmt: skip

    def __init__(self, name: str, policy: QuotaPolicy, *, store: Settler, clock: Clock) -> None:
        super().__init__(name, policy)
        self._store = store
        self._clock = clock
        self._bucket = -2  # the wall-clock minute of the figure (none heard yet: counts nothing)
        self._previous = (0.0, 0.0)  # the cluster's (requests, tokens) in the minute before
        self._current = (0.0, 0.0)  # ... and in that minute
        self._heard = -math.inf  # when the figure came, on the clock
        self._used = -math.inf  # when the quota was last consulted or sent through
        self._unsent = (0, 0)  # (requests, tokens) counted here, not yet sent
        self._sending = (0, 0)  # ... sent, the reply not yet in

    def counted(self, now: float) -> tuple[float, float]:
        """(requests, tokens) of the last minute: the cluster's, or this replica's own while the
        store is degraded."""
        store = self._store
        if store.degraded:
            return super().counted(now)
        self._used = now
        if now - self._heard > _FRESH:
            store.queue_quota(self)
        requests, tokens = self._slide(self._clock.wall())
        return (
            requests + self._unsent[0] + self._sending[0],
            tokens + self._unsent[1] + self._sending[1],
        )

    def sent(self, now: float, tokens: int) -> None:
        """A call went out: counted here at once (and in the local minute, the count to fall
        back on), sent to the cluster's count with the next flush."""
        super().sent(now, tokens)
        self._unsent = (self._unsent[0] + 1, self._unsent[1] + tokens)
        self._used = now
        self._store.queue_quota(self)

    def due(self, now: float) -> bool:
        """Whether the figure is over a second old while the quota is in use (consulted within
        the last minute): worth reading again with a flush that goes anyway."""
        return now - self._heard > _FRESH and now - self._used < _MINUTE

    def take_delta(self) -> tuple[int, int]:
        """(requests, tokens) counted since the last call, to send. Calls held back longer than
        a minute (Redis was away) no longer count: at most this replica's last minute is sent."""
        local = super().counted(self._clock.now())
        delta = (min(self._unsent[0], int(local[0])), min(self._unsent[1], int(local[1])))
        self._unsent = (0, 0)
        self._sending = (self._sending[0] + delta[0], self._sending[1] + delta[1])
        return delta

    def give_back(self) -> None:
        """The send failed: what it carried waits for the next one."""
        sending, unsent = self._sending, self._unsent
        self._unsent = (unsent[0] + sending[0], unsent[1] + sending[1])
        self._sending = (0, 0)

    def adopt(
        self, minute: int, previous: tuple[float, float], current: tuple[float, float]
    ) -> None:
        """The cluster's count arrived: `current` in wall-clock `minute`, `previous` in the one
        before, what was sent included."""
        self._bucket, self._previous, self._current = minute, previous, current
        self._sending = (0, 0)
        self._heard = self._clock.now()

    def _slide(self, wall: float) -> tuple[float, float]:
        """The figure's estimate of the 60 s before `wall`."""
        minute, into = divmod(wall, _MINUTE)
        still = 1.0 - into / _MINUTE  # the part of the minute before still inside the last 60 s
        previous, current = self._previous, self._current
        if minute <= self._bucket:
            return previous[0] * still + current[0], previous[1] * still + current[1]
        if minute == self._bucket + 1:
            return current[0] * still, current[1] * still
        return 0.0, 0.0

    def __repr__(self) -> str:
        requests, _ = self._slide(self._clock.wall())
        return f"<SharedQuota {self.name} cluster calls this minute ~{requests:.0f}>"
