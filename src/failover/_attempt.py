"""Single attempts at one deployment, and the one place their outcomes are recorded.

    available   skip a candidate that is cooling down, unhealthy or behind an open breaker
    send        take the breaker's permit, call with a timeout bounded by the deadline,
                classify any failure, record the outcome
    record      trace entry, passive stats, breaker, rate-limit cool-down, hooks: for whole
                answers when they return, for streams when they end

The router decides what happens next (retry, fail over, fall back); the hedge race runs
several of these at once. Neither touches a breaker or a stat directly.
"""

from __future__ import annotations

import asyncio
import math
from typing import TypeVar

from ._request import Call, RequestState
from .classify import Classifier
from .clock import Clock, deadline_scope
from .errors import AttemptTimeout, DeadlineExceeded, ProviderError, last_error
from .events import Hooks
from .kinds import Kind
from .resilience.breaker import Result
from .route import Plan, Slot
from .state.base import StateStore
from .trace import Attempt, Skip, Trace

__all__ = ["Attempts", "NothingAvailable", "Skipped"]

T = TypeVar("T")


class Skipped(Exception):
    """The breaker refused a permit at the last moment: the candidate was passed over."""


class NothingAvailable(Exception):
    """Every candidate of a route was passed over without a call."""


class Attempts:
    """Makes single attempts and records how each ended."""

    def __init__(self, store: StateStore, clock: Clock, classifier: Classifier, hooks: Hooks):
        self.store = store
        self.clock = clock
        self.classifier = classifier
        self.hooks = hooks

    # -- before a call -----------------------------------------------------------------------

    def available(self, plan: Plan, slot: Slot, trace: Trace) -> bool:
        """Whether `slot` may be called now; a skip is written to the trace."""
        reason = self.unavailable(plan, slot)
        if reason is None:
            return True
        trace.attempts.append(Attempt(plan.name, slot.name, skipped=reason))
        return False

    def unavailable(self, plan: Plan, slot: Slot) -> Skip | None:
        """Why `slot` may not be called now, or None."""
        store = self.store
        if store.cooldown_until(slot.name) > self.clock.now():
            return Skip.COOLING_DOWN
        if not store.is_healthy(slot.name):
            return Skip.UNHEALTHY
        if not store.breaker(slot.name, plan.breaker).would_admit():
            return Skip.OPEN
        return None

    # -- one call ----------------------------------------------------------------------------

    async def send(
        self,
        state: RequestState[T],
        plan: Plan,
        slot: Slot,
        *,
        waited: float = 0.0,
        hedge: bool = False,
        force: bool = False,
        recovery: str | None = None,
        delivered: int | None = None,
    ) -> T:
        """Call `slot` once. `force` calls it even when its breaker refuses (panic "all");
        `recovery` and `delivered` mark a call that finishes a broken stream."""
        call = await self._admit(state, plan, slot, waited=waited, hedge=hedge, force=force)
        call.attempt.recovery, call.attempt.delivered = recovery, delivered
        now = call.started
        limit = slot.timeout or plan.timeouts.attempt
        until = min(now + limit, state.deadline) if limit is not None else state.deadline
        try:
            async with deadline_scope(self.clock, None if math.isinf(until) else until):
                answer = await state.operation.send(call, state.request)
        except TimeoutError as exc:
            err: ProviderError = AttemptTimeout(
                f"no answer within {until - now:.3g}s", deployment=slot.name
            )
            await self.record(call, err)
            raise err from exc
        except ProviderError as exc:
            await self.record(call, exc)
            raise
        except asyncio.CancelledError:
            call.attempt.cancelled = True
            call.attempt.kind = Kind.CANCELLED
            await self.record(call, None, success=False)
            raise
        except Exception as exc:
            err = self.classify(exc)
            await self.record(call, err)
            raise err from exc
        if state.operation.ends_on_return:
            await self.record(call, None, success=True)
        return answer

    async def _admit(
        self,
        state: RequestState[T],
        plan: Plan,
        slot: Slot,
        *,
        waited: float,
        hedge: bool,
        force: bool,
    ) -> Call:
        """The breaker's permit and a trace entry, or `Skipped` / `DeadlineExceeded`."""
        trace = state.trace
        breaker = self.store.breaker(slot.name, plan.breaker)
        permit = await breaker.acquire()
        if permit is None and not force:
            trace.attempts.append(Attempt(plan.name, slot.name, skipped=Skip.OPEN))
            raise Skipped
        now = self.clock.now()
        if now >= state.deadline:
            if permit is not None:
                await breaker.release(permit, Result.IGNORE)
            raise DeadlineExceeded(
                f"deadline exceeded for {plan.name!r}: {trace.summary()}",
                trace=trace,
                last=last_error(trace),
            )
        attempt = Attempt(plan.name, slot.name, waited=waited, hedge=hedge, started=now)
        trace.attempts.append(attempt)
        self.store.stats(slot.name).started()
        return Call(plan, slot, breaker, permit, attempt, now)

    def classify(self, exc: BaseException) -> ProviderError:
        """The `ProviderError` an unexpected exception stands for."""
        return self.classifier.classify(exc, now_wall=self.clock.wall())

    # -- after a call ------------------------------------------------------------------------

    async def record(self, call: Call, err: ProviderError | None, *, success: bool = False) -> None:
        """Record how a call ended: trace, stats, breaker, cool-down, hooks.

        `err` is the failure; without one, `success` says whether the deployment answered
        (false: the call ended without a verdict, e.g. the caller left or lost a hedge race).
        """
        elapsed = self.clock.now() - call.started
        attempt = call.attempt
        attempt.latency = elapsed
        stats = self.store.stats(call.slot.name)
        stats.finished()
        if err is not None:
            err.deployment = err.deployment or call.slot.name
            attempt.kind, attempt.status, attempt.message = err.kind, err.status, err.message
            stats.last_error = f"{err.kind.value}: {err.message}"[:300]
            stats.observe(False, elapsed)
            policy = err.kind.policy
            result = Result.FAILURE if policy.breaker_failure else Result.IGNORE
            if policy.cool_down:
                self._cool_down(call, err)
        elif success:
            stats.observe(True, elapsed, attempt.ttft)
            result = Result.SUCCESS
        else:
            result = Result.IGNORE
        if call.permit is not None:
            await call.breaker.release(call.permit, result, duration=elapsed)
        if self.hooks.attempt:
            self.hooks.attempted(attempt)

    def _cool_down(self, call: Call, err: ProviderError) -> None:
        wait = err.retry_after if err.retry_after is not None else call.plan.retry.cooldown
        self.store.cool_down(call.slot.name, self.clock.now() + wait)
