"""The circuit breaker: a per-deployment state machine with resilience4j semantics.

    CLOSED --(failure rate / slow-call rate over the window, or N failures in a row)--> OPEN
    OPEN --(open_for elapsed, or a healthy probe)--> HALF_OPEN
    HALF_OPEN --(all `half_open_calls` probes succeed)--> CLOSED
    HALF_OPEN --(any probe fails)--> OPEN, for twice as long (up to max_open_for), +-jitter
    FORCED_OPEN (drained by hand) and DISABLED (always admits) are left only by hand.

Admission hands out a `Permit`; the result is recorded against it. A permit from an earlier
state (an *epoch*) does not move the current state: a slow call started while CLOSED cannot
close a breaker that has since opened, and HALF_OPEN never admits more than `half_open_calls`
probes.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum

from ..clock import Clock, SystemClock

__all__ = ["BreakerEvent", "BreakerPolicy", "BreakerState", "CircuitBreaker", "Permit", "Result"]


class BreakerState(StrEnum):
    """Where a breaker is."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


class Result(Enum):
    """How a call admitted by a permit ended, as far as the breaker is concerned."""

    SUCCESS = "success"
    FAILURE = "failure"
    IGNORE = "ignore"  # not the deployment's fault (bad request, lost hedge, cancelled)


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """Thresholds of a breaker. Durations in seconds; rates as fractions (0.5 = 50%)."""

    window: int = 20  # count-based window: the last N calls
    window_seconds: float | None = None  # time-based window instead, when set
    min_calls: int = 5
    failure_rate: float = 0.5
    slow_call_rate: float | None = None  # None: slow calls never open the breaker
    slow_call_duration: float = 60.0
    consecutive_failures: int = 3  # 0 turns this trigger off
    open_for: float = 30.0
    max_open_for: float = 300.0
    jitter: float = 0.2
    half_open_calls: int = 1

    def __post_init__(self) -> None:
        _check(self.window >= 1, "window must be >= 1")
        _check(self.window_seconds is None or self.window_seconds > 0, "window_seconds > 0")
        _check(self.min_calls >= 1, "min_calls must be >= 1")
        _check(0 < self.failure_rate <= 1, "failure_rate must be in (0, 100%]")
        _check(
            self.slow_call_rate is None or 0 < self.slow_call_rate <= 1,
            "slow_call_rate must be in (0, 100%]",
        )
        _check(self.consecutive_failures >= 0, "consecutive_failures must be >= 0")
        _check(self.open_for > 0, "open_for must be > 0")
        _check(self.max_open_for >= self.open_for, "max_open_for must be >= open_for")
        _check(0 <= self.jitter < 1, "jitter must be in [0, 1)")
        _check(self.half_open_calls >= 1, "half_open_calls must be >= 1")

    def open_duration(self, reopens: int) -> float:
        """Open time, before jitter, after `reopens` consecutive re-openings."""
        return min(self.max_open_for, self.open_for * float(2 ** min(reopens, 62)))

    def open_duration_bounds(self, reopens: int) -> tuple[float, float]:
        """Lowest and highest possible open time after `reopens` consecutive re-openings."""
        base = self.open_duration(reopens)
        return base * (1 - self.jitter), base * (1 + self.jitter)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to make one call. `probe` is true for a HALF_OPEN trial call."""

    epoch: int
    probe: bool = False


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    """A state transition, handed to every listener."""

    name: str
    old: BreakerState
    new: BreakerState
    at: float
    reason: str
    open_for: float | None = None


Listener = Callable[[BreakerEvent], None]


class CircuitBreaker:
    """One deployment's breaker. Not thread-safe: it lives on one event loop."""

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.policy = policy or BreakerPolicy()
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._listeners: list[Listener] = []
        self._state = BreakerState.CLOSED
        self._epoch = 0
        self._closed_permit = Permit(0)
        self._window: deque[tuple[float, bool, bool]] = deque()  # (time, failed, slow)
        self._failures = 0
        self._slow = 0
        self._consecutive = 0
        self._streak_from = float("-inf")  # start time of the streak's latest failed call
        self._open_until = 0.0
        self._reopens = 0
        self._probes_issued = 0  # HALF_OPEN permits handed out (ignored ones handed back)
        self._probe_successes = 0
        self.last_open_duration = 0.0

    # -- reading -------------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The current state (an elapsed OPEN reads as OPEN until the next admission)."""
        return self._state

    @property
    def open_until(self) -> float:
        return self._open_until

    @property
    def probes_in_flight(self) -> int:
        """HALF_OPEN probes admitted and not yet recorded."""
        return self._probes_issued - self._probe_successes

    def counts(self) -> tuple[int, int]:
        """(failed, total) calls in the window."""
        self._evict(self._clock.now())
        return self._failures, len(self._window)

    def would_admit(self) -> bool:
        """Whether `acquire` would give a permit now, without taking one."""
        state = self._state
        if state is BreakerState.CLOSED or state is BreakerState.DISABLED:
            return True
        if state is BreakerState.OPEN:
            return self._clock.now() >= self._open_until
        if state is BreakerState.HALF_OPEN:
            return self._probes_issued < self.policy.half_open_calls
        return False

    def on_change(self, listener: Listener) -> None:
        """Call `listener` with a `BreakerEvent` on every transition."""
        self._listeners.append(listener)

    # -- admission and outcomes ------------------------------------------------------------

    def try_acquire(self) -> Permit | None:
        """A permit to call now, or None while the breaker is open."""
        state = self._state
        if state is BreakerState.CLOSED:
            return self._closed_permit
        if state is BreakerState.OPEN:
            if self._clock.now() < self._open_until:
                return None
            self._to_half_open("open_for elapsed")
            state = self._state
        if state is BreakerState.HALF_OPEN:
            if self._probes_issued >= self.policy.half_open_calls:
                return None
            self._probes_issued += 1
            return Permit(self._epoch, probe=True)
        if state is BreakerState.DISABLED:
            return self._closed_permit
        return None  # FORCED_OPEN

    def record(self, permit: Permit, result: Result, *, duration: float = 0.0) -> None:
        """Record how the call admitted by `permit` ended."""
        if permit.epoch != self._epoch:
            return  # admitted under an earlier state: must not move this one
        if permit.probe:
            self._record_probe(result)
        elif self._state is BreakerState.CLOSED and result is not Result.IGNORE:
            self._record_closed(result is Result.FAILURE, duration)

    async def acquire(self) -> Permit | None:
        """`try_acquire` for callers that speak the store's async interface."""
        return self.try_acquire()

    async def release(self, permit: Permit, result: Result, *, duration: float = 0.0) -> None:
        """`record` for callers that speak the store's async interface."""
        self.record(permit, result, duration=duration)

    def _record_probe(self, result: Result) -> None:
        if result is Result.IGNORE:  # the probe proved nothing: let another one go
            self._probes_issued -= 1
        elif result is Result.FAILURE:
            self._reopens += 1
            self._to_open("probe failed")
        elif result is Result.SUCCESS:
            self._probe_successes += 1
            if self._probe_successes >= self.policy.half_open_calls:
                self._reopens = 0
                self._to(BreakerState.CLOSED, "probes succeeded")

    def _record_closed(self, failed: bool, duration: float) -> None:
        now = self._clock.now()
        policy = self.policy
        slow = duration >= policy.slow_call_duration
        self._window.append((now, failed, slow))
        self._failures += failed
        self._slow += slow
        self._evict(now)
        started = now - duration
        if failed:
            self._consecutive += 1
            self._streak_from = max(self._streak_from, started)
        elif started >= self._streak_from:
            # Only a call that started after the streak's latest failure ends the streak: a
            # slow success from before an outage proves nothing about the deployment now.
            self._consecutive = 0
        if policy.consecutive_failures and self._consecutive >= policy.consecutive_failures:
            self._to_open(f"{self._consecutive} consecutive failures")
            return
        total = len(self._window)
        if total < policy.min_calls:
            return
        if self._failures / total >= policy.failure_rate:
            self._to_open(f"failure rate {self._failures}/{total}")
        elif policy.slow_call_rate is not None and self._slow / total >= policy.slow_call_rate:
            self._to_open(f"slow-call rate {self._slow}/{total}")

    def _evict(self, now: float) -> None:
        window = self._window
        policy = self.policy
        if policy.window_seconds is None:
            while len(window) > policy.window:
                self._drop_oldest()
        else:
            horizon = now - policy.window_seconds
            while window and window[0][0] <= horizon:
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, failed, slow = self._window.popleft()
        self._failures -= failed
        self._slow -= slow

    # -- manual control --------------------------------------------------------------------

    def force_open(self) -> None:
        """Drain: admit nothing until `reset`."""
        self._to(BreakerState.FORCED_OPEN, "forced open")

    def disable(self) -> None:
        """Admit everything and record nothing until `reset`."""
        self._to(BreakerState.DISABLED, "disabled")

    def reset(self) -> None:
        """Back to CLOSED with an empty window."""
        self._reopens = 0
        self._to(BreakerState.CLOSED, "reset")

    def probe_succeeded(self) -> None:
        """A health probe passed: an OPEN breaker may try HALF_OPEN before its time is up."""
        if self._state is BreakerState.OPEN:
            self._to_half_open("health probe passed")

    # -- transitions -----------------------------------------------------------------------

    def _to_open(self, reason: str) -> None:
        base = self.policy.open_duration(self._reopens)
        duration = base * (1 + self.policy.jitter * (2 * self._rng.random() - 1))
        self.last_open_duration = duration
        self._open_until = self._clock.now() + duration
        self._to(BreakerState.OPEN, reason, open_for=duration)

    def _to_half_open(self, reason: str) -> None:
        self._to(BreakerState.HALF_OPEN, reason)

    def _to(self, new: BreakerState, reason: str, *, open_for: float | None = None) -> None:
        old = self._state
        self._state = new
        self._epoch += 1
        self._closed_permit = Permit(self._epoch)
        self._probes_issued = 0
        self._probe_successes = 0
        if new is BreakerState.CLOSED:
            self._window.clear()
            self._failures = self._slow = self._consecutive = 0
            self._streak_from = float("-inf")
        event = BreakerEvent(self.name, old, new, self._clock.now(), reason, open_for)
        for listener in self._listeners:
            listener(event)

    def __repr__(self) -> str:
        failed, total = self.counts()
        text = f"<Breaker {self.name} {self._state.name} {failed}/{total} failed"
        if self._state is BreakerState.OPEN:
            text += f", reopens in {max(0.0, self._open_until - self._clock.now()):.1f}s"
        elif self._state is BreakerState.HALF_OPEN:
            text += f", {self._probes_issued}/{self.policy.half_open_calls} probes"
        return text + ">"
