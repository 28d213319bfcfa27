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

The calls a CLOSED breaker judges live in their own object, a `SlidingWindow`. A shared store
(Redis) decides transitions for the whole cluster and hands them to each replica's breaker
through public methods: `adopt` a state, `note_probes` granted elsewhere, `hand_back_probe`,
`forget_window`. Nothing outside this module touches a breaker's internals.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum

from ..clock import Clock, SystemClock
from .window import SlidingWindow

__all__ = [
    "BreakerEvent",
    "BreakerPolicy",
    "BreakerState",
    "CircuitBreaker",
    "Permit",
    "Result",
]


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

    def trip_reason(self, window: SlidingWindow) -> str | None:
        """Why a CLOSED breaker with this `window` must open, or None while it may stay."""
        streak = window.consecutive
        if self.consecutive_failures and streak >= self.consecutive_failures:
            return f"{streak} consecutive failures"
        total = window.total
        if total < self.min_calls:
            return None
        if window.failures / total >= self.failure_rate:
            return f"failure rate {window.failures}/{total}"
        if self.slow_call_rate is not None and window.slow / total >= self.slow_call_rate:
            return f"slow-call rate {window.slow}/{total}"
        return None


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
        self._window = SlidingWindow(self.policy.window, self.policy.window_seconds)
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
        """When an OPEN breaker lets a probe through, on the breaker's clock."""
        return self._open_until

    @property
    def epoch(self) -> int:
        """The number of the current state; permits of an earlier one no longer count."""
        return self._epoch

    @property
    def reopens(self) -> int:
        """Consecutive re-openings from HALF_OPEN: each doubles the next open time."""
        return self._reopens

    @property
    def window(self) -> SlidingWindow:
        """The calls recorded while CLOSED (read it; change it only through the breaker)."""
        return self._window

    @property
    def probes_in_flight(self) -> int:
        """HALF_OPEN probes admitted and not yet recorded."""
        return self._probes_issued - self._probe_successes

    def counts(self) -> tuple[int, int]:
        """(failed, total) calls in the window."""
        return self._window.counts(self._clock.now())

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
            self._to(BreakerState.HALF_OPEN, "open_for elapsed")
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
            self.hand_back_probe()
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
        window = self._window
        window.record(now, failed, slow, now - duration)
        if not (failed or slow) and window.seconds is None and window.total != policy.min_calls:
            # a quick success in a window of the last N calls lowers every rate and lengthens
            # no streak: it can open the breaker only by bringing the window up to min_calls
            return
        reason = policy.trip_reason(window)
        if reason is not None:
            self._to_open(reason)

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
            self._to(BreakerState.HALF_OPEN, "health probe passed")

    # -- driven by a shared store ------------------------------------------------------------

    def adopt(
        self,
        state: BreakerState,
        *,
        open_until: float,
        reopens: int,
        reason: str,
        open_for: float | None = None,
        event: bool = True,
    ) -> None:
        """Take a state decided elsewhere (by the cluster, through a shared store).

        `open_until` is on this breaker's clock. With `event` the adoption is a transition,
        announced to the listeners; without it (the same state under a new shared generation)
        only the epoch is renewed, so that permits taken before no longer count. A different
        `state` is always a transition.
        """
        self._open_until = open_until
        self._reopens = reopens
        if open_for is not None:
            self.last_open_duration = open_for
        if event or state is not self._state:
            self._to(state, reason, open_for=open_for)
        else:
            self._renew_epoch()

    def note_probes(self, issued: int) -> None:
        """`issued` HALF_OPEN probes are out (counted elsewhere, cluster-wide): admit no more
        than `half_open_calls` minus those."""
        self._probes_issued = max(self._probes_issued, issued)

    def hand_back_probe(self) -> None:
        """A probe proved nothing (IGNORE): its slot is free for another one."""
        self._probes_issued = max(0, self._probes_issued - 1)

    def forget_window(self) -> None:
        """Drop the calls recorded so far, keeping the state: another window is the truth."""
        self._window.clear()

    # -- transitions -----------------------------------------------------------------------

    def _to_open(self, reason: str) -> None:
        base = self.policy.open_duration(self._reopens)
        duration = base * (1 + self.policy.jitter * (2 * self._rng.random() - 1))
        self.last_open_duration = duration
        self._open_until = self._clock.now() + duration
        self._to(BreakerState.OPEN, reason, open_for=duration)

    def _to(self, new: BreakerState, reason: str, *, open_for: float | None = None) -> None:
        old = self._state
        self._state = new
        self._renew_epoch()
        if new is BreakerState.CLOSED:
            self._window.clear()
        event = BreakerEvent(self.name, old, new, self._clock.now(), reason, open_for)
        for listener in self._listeners:
            listener(event)

    def _renew_epoch(self) -> None:
        """A new state: permits of the old one stop counting, probes are counted afresh."""
        self._epoch += 1
        self._closed_permit = Permit(self._epoch)
        self._probes_issued = 0
        self._probe_successes = 0

    def __repr__(self) -> str:
        failed, total = self.counts()
        text = f"<Breaker {self.name} {self._state.name} {failed}/{total} failed"
        if self._state is BreakerState.OPEN:
            text += f", reopens in {max(0.0, self._open_until - self._clock.now()):.1f}s"
        elif self._state is BreakerState.HALF_OPEN:
            text += f", {self._probes_issued}/{self.policy.half_open_calls} probes"
        return text + ">"
