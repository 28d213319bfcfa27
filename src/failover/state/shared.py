"""A replica's local view of a shared breaker: the mirror the hot path reads.

`SharedBreaker` keeps a local `CircuitBreaker` (the *mirror*) that the hot path reads: CLOSED
admission costs nothing, `state` and `would_admit` never wait. While Redis answers, the mirror
only *follows* the cluster: outcomes go to Redis (batched, in the background), Redis decides the
transitions over the shared window and every replica adopts them through the breaker's public
API (`adopt`, `note_probes`, ...). HALF_OPEN probes are granted by Redis, so the cluster sends
exactly `half_open_calls` of them. While Redis is down the mirror decides alone, exactly like a
`MemoryStore` breaker, and what it decided is pushed back later.

What it needs from the store that shares it is the `Coordinator` protocol below (`RedisStore`
implements it; the shared counts of `counts.py` need part of it), so this module does not
depend on Redis at all.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Protocol, TypeVar

from ..clock import Clock
from ..resilience.breaker import (
    BreakerEvent,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    Permit,
    Result,
)
from .counts import Settler
from .snapshot import SetMode, Snapshot

__all__ = ["Coordinator", "SharedBreaker"]

T = TypeVar("T")


class Coordinator(Settler, Protocol):
    """What shared breakers (and counts) need from the store that shares them."""

    @property
    def local_timeout(self) -> float:
        """The longest a request may wait on the shared store, in seconds."""
        ...

    def ensure_started(self) -> None:
        """Start the background work once an event loop runs."""
        ...

    async def admit(self, breaker: SharedBreaker, deadline: float) -> Snapshot | None:
        """Ask for a permit through an OPEN-and-due or HALF_OPEN breaker; None on trouble."""
        ...

    def queue_outcome(self, breaker: SharedBreaker, gen: int, failed: bool, slow: bool) -> None:
        """Send a CLOSED call's outcome, taken under generation `gen`, without waiting."""
        ...

    def queue_probe(self, breaker: SharedBreaker, gen: int, result: Result) -> None:
        """Send a HALF_OPEN probe's result without waiting."""
        ...

    def queue_set(self, breaker: SharedBreaker, mode: SetMode) -> None:
        """Push the mirror's state, merged as `mode` says, without waiting."""
        ...


class SharedBreaker:
    """One deployment's breaker, shared by every replica through a `Coordinator` (Redis)."""

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy,
        store: Coordinator,
        *,
        clock: Clock,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self._store = store
        self._clock = clock
        self._local = CircuitBreaker(name, policy, clock=clock, rng=rng)
        self._gen = 0  # the shared generation the mirror follows
        self._known = False  # whether we have heard from Redis about this breaker yet
        self._counts = (0, 0)
        self._admitting = asyncio.Lock()
        self.policy_args = _policy_args(policy)

    # -- reading (local, never waits) -------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The mirror's state: the cluster's, or this replica's own while Redis is away."""
        return self._local.state

    @property
    def open_until(self) -> float:
        """When an OPEN breaker lets a probe through, on this replica's clock."""
        return self._local.open_until

    @property
    def gen(self) -> int:
        """The shared generation the mirror follows (0: none heard of yet)."""
        return self._gen

    @property
    def last_open_duration(self) -> float:
        """How long the latest OPEN was set to last, jitter included."""
        return self._local.last_open_duration

    @property
    def reopens(self) -> int:
        """Consecutive re-openings, as the mirror knows them."""
        return self._local.reopens

    def would_admit(self) -> bool:
        """Whether `acquire` may give a permit now, judged locally."""
        return self._local.would_admit()

    def on_change(self, listener: Callable[[BreakerEvent], None]) -> None:
        """Call `listener` on every transition of the mirror, decided here or adopted."""
        self._local.on_change(listener)

    def counts(self) -> tuple[int, int]:
        """(failed, total) calls in the window: the cluster's, or this replica's while alone."""
        return self._local.counts() if self._store.degraded else self._counts

    # -- admission and outcomes -----------------------------------------------------------------

    async def acquire(self) -> Permit | None:
        """A permit: free while CLOSED (after the first); one atomic Redis call to become a
        HALF_OPEN probe."""
        store = self._store
        store.ensure_started()
        local = self._local
        state = local.state
        if self._known and (state is BreakerState.CLOSED or state is BreakerState.DISABLED):
            return local.try_acquire()
        # unknown yet (a new replica, a reloaded config): ask once, so that a deployment the
        # cluster holds OPEN gets no call from us either
        if not local.would_admit():
            return None  # OPEN and not yet due, FORCED_OPEN, or every probe is out
        if store.degraded:
            return self._alone(local.try_acquire)
        # one admission at a time per replica: the others wait for its answer, which may
        # say that every probe is out, instead of piling up connections to Redis
        loop = asyncio.get_running_loop()
        deadline = loop.time() + store.local_timeout
        try:
            async with asyncio.timeout_at(deadline):
                await self._admitting.acquire()
        except TimeoutError:
            return self._without_redis()
        try:
            if deadline - loop.time() < store.local_timeout / 2:
                return self._without_redis()  # too little time left to ask Redis fairly
            return await self._admit(deadline)
        finally:
            self._admitting.release()

    def _without_redis(self) -> Permit | None:
        """No time to ask Redis: a breaker not heard of yet admits (a call beats a refusal);
        a probe is refused (the cluster may have granted them all already)."""
        local = self._local
        if local.state is BreakerState.CLOSED or local.state is BreakerState.DISABLED:
            return local.try_acquire()
        return None

    async def _admit(self, deadline: float) -> Permit | None:
        local, store = self._local, self._store
        state = local.state
        if self._known and (state is BreakerState.CLOSED or state is BreakerState.DISABLED):
            return local.try_acquire()  # learnt while we waited for our turn
        if not local.would_admit():
            return None
        if store.degraded:
            return self._alone(local.try_acquire)
        snap = await store.admit(self, deadline)
        if snap is None:  # Redis failed just now: decide alone (the resync will tell us)
            self._known = True
            return self._alone(local.try_acquire)
        self.apply(snap)
        if snap.gen != self._gen:
            return None  # a newer state arrived while we waited
        if snap.state is BreakerState.HALF_OPEN:
            local.note_probes(snap.probes)  # the cluster's count: refuse locally once all are out
        if snap.grant == 1:
            return Permit(local.epoch, probe=True)
        return local.try_acquire() if snap.grant == 2 else None

    async def release(self, permit: Permit, result: Result, *, duration: float = 0.0) -> None:
        """Record how a call ended: queued for Redis (no waiting), or locally while alone."""
        local = self._local
        if permit.epoch != local.epoch:
            return  # admitted under an earlier state
        store = self._store
        if store.degraded:
            self._alone(lambda: local.record(permit, result, duration=duration))
        elif permit.probe:
            if result is Result.IGNORE:
                local.hand_back_probe()
            store.queue_probe(self, self._gen, result)
        elif local.state is BreakerState.CLOSED and result is not Result.IGNORE:
            slow = duration >= self.policy.slow_call_duration
            store.queue_outcome(self, self._gen, result is Result.FAILURE, slow)

    def record_alone(self, gen: int, result: Result, *, probe: bool, slow: bool = False) -> None:
        """Redis failed before this outcome reached it: let the mirror judge it."""
        if gen != self._gen:
            return
        duration = self.policy.slow_call_duration if slow else 0.0
        permit = Permit(self._local.epoch, probe=probe)
        self._alone(lambda: self._local.record(permit, result, duration=duration))

    def _alone(self, action: Callable[[], T]) -> T:
        """Run a local decision; a transition it causes is pushed to Redis when it returns."""
        before = self._local.epoch
        outcome = action()
        if self._local.epoch != before:
            self._store.queue_set(self, SetMode.MERGE)
        return outcome

    # -- manual control: local at once, then the cluster -------------------------------------

    def force_open(self) -> None:
        """Drain, here at once and then on every replica."""
        self._local.force_open()
        self._store.queue_set(self, SetMode.FORCE)

    def disable(self) -> None:
        """Admit everything, here at once and then on every replica."""
        self._local.disable()
        self._store.queue_set(self, SetMode.FORCE)

    def reset(self) -> None:
        """Back to CLOSED, here at once and then on every replica."""
        self._local.reset()
        self._store.queue_set(self, SetMode.FORCE)

    def probe_succeeded(self) -> None:
        """A health probe passed: HALF_OPEN early, here and (if still OPEN) in the cluster."""
        if self._local.state is BreakerState.OPEN:
            self._local.probe_succeeded()
            self._store.queue_set(self, SetMode.EARLY)

    # -- following the cluster ------------------------------------------------------------------

    def apply(self, snap: Snapshot) -> None:
        """Adopt a shared state newer than ours (an older one is a reply overtaken by events)."""
        self._known = True
        if snap.gen <= self._gen:
            if snap.gen == self._gen:
                self._counts = (snap.fails, snap.calls)
            return
        self._gen = snap.gen
        self._counts = (snap.fails, snap.calls)
        local = self._local
        until = self._clock.now() + (snap.until - self._clock.wall())
        # OPEN again with another end: a HALF_OPEN -> OPEN cycle we did not hear of
        moved = snap.state is not local.state or (
            snap.state is BreakerState.OPEN and abs(until - local.open_until) > 1e-3
        )
        local.adopt(
            snap.state,
            open_until=until,
            reopens=snap.reopens,
            reason=snap.reason or "shared state",
            open_for=snap.open_for,
            event=moved,
        )

    def forget_window(self) -> None:
        """Redis is back: drop the calls counted alone, the shared window is the truth."""
        self._local.forget_window()

    def rebase(self) -> None:
        """Redis restarted: its next generation of this breaker is news, whatever its number."""
        self._gen = 0

    def shared_until(self) -> float:
        """The mirror's open_until as wall time, for pushing it to Redis."""
        return self._local.open_until - self._clock.now() + self._clock.wall()

    def __repr__(self) -> str:
        failed, total = self.counts()
        text = f"<SharedBreaker {self.name} {self.state.name} {failed}/{total} failed"
        text += f" gen={self._gen}"
        if self.state is BreakerState.OPEN:
            text += f", reopens in {max(0.0, self.open_until - self._clock.now()):.1f}s"
        return text + ">"


def _policy_args(policy: BreakerPolicy) -> tuple[str, ...]:
    return (
        str(policy.window),
        repr(policy.window_seconds or 0.0),
        str(policy.min_calls),
        repr(policy.failure_rate),
        repr(policy.slow_call_rate or 0.0),
        str(policy.consecutive_failures),
        repr(policy.open_for),
        repr(policy.max_open_for),
        repr(policy.jitter),
        str(policy.half_open_calls),
    )
