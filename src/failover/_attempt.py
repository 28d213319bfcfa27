"""Single attempts at one deployment, and the one place their outcomes are recorded.

    available   skip a candidate that is cooling down, unhealthy, behind an open breaker or
                at its concurrency limit
    send        take a concurrency slot and the breaker's permit, call with a timeout
                bounded by the deadline, classify any failure, record the outcome
    record      trace entry, passive stats, breaker, rate-limit cool-down, concurrency limit,
                hooks: for whole answers when they return, for streams when they end. A
                failure while the process itself was saturated (event-loop lag, waiting for
                one of our own connections) is labelled local and blamed on nobody

The router decides what happens next (retry, fail over, fall back); the hedge race runs
several of these at once. Neither touches a breaker or a stat directly.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, TypeVar

from ._aio import running_loop
from ._local import CURRENT_CALL, LOCAL_LAG, CallInfo, LoopLag, local_cause
from ._request import Call, RequestState
from .classify import Classifier
from .clock import Clock, deadline_scope
from .errors import AttemptTimeout, DeadlineExceeded, ProviderError, last_error
from .events import Hooks
from .kinds import Kind
from .quota import Quota
from .resilience.breaker import CircuitBreaker, Permit, Result
from .resilience.concurrency import AdaptiveLimit, ConcurrencyPolicy
from .route import Plan, Slot
from .state.base import BreakerLike, StateStore
from .stats import DeploymentStats
from .trace import Attempt, Skip
from .types import Payload

__all__ = ["LOCAL_LAG", "Attempts", "NothingAvailable", "Skipped"]

T = TypeVar("T")
_OVERLOAD = frozenset({Kind.RATE_LIMITED, Kind.OVERLOADED, Kind.TIMEOUT})


class Skipped(Exception):
    """The breaker refused a permit at the last moment: the candidate was passed over."""


class NothingAvailable(Exception):
    """Every candidate of a route was passed over without a call."""


class Attempts:
    """Makes single attempts and records how each ended."""

    def __init__(
        self,
        store: StateStore,
        clock: Clock,
        classifier: Classifier,
        hooks: Hooks,
        *,
        concurrency: ConcurrencyPolicy | None = None,
        lag: LoopLag | None = None,
        local_lag: float = LOCAL_LAG,
    ) -> None:
        self.store = store
        self.clock = clock
        self.classifier = classifier
        self.hooks = hooks
        self.concurrency = concurrency or ConcurrencyPolicy()
        self.lag = lag
        self.local_lag = local_lag  # loop lag during a call that makes its failure ours
        self._limits: dict[str, AdaptiveLimit] = {}

    def limit(self, deployment: str) -> AdaptiveLimit:
        """The adaptive concurrency limit of a deployment (this process's own)."""
        found = self._limits.get(deployment)
        if found is None:
            found = self._limits[deployment] = AdaptiveLimit(deployment, self.concurrency)
        return found

    def quota(self, slot: Slot) -> Quota:
        """What a deployment has left of its rate limits: kept by the store, so replicas sharing
        one count their rpm / tpm together."""
        return self.store.quota(slot.name, slot.quota)

    def limits(self) -> dict[str, AdaptiveLimit]:
        """Every deployment's concurrency limit made so far."""
        return dict(self._limits)

    # -- before a call -----------------------------------------------------------------------

    def available(self, state: RequestState[Any], plan: Plan, slot: Slot) -> bool:
        """Whether `slot` may be called now for `state`; a skip is written to its trace."""
        return self.check(state, plan, slot) is None

    def check(self, state: RequestState[Any], plan: Plan, slot: Slot) -> Skip | None:
        """Why `slot` may not be called now for `state` (written to its trace), or None."""
        reason = self.unavailable(state, plan, slot)
        if reason is not None:
            state.trace.attempts.append(Attempt(plan.name, slot.name, skipped=reason))
        return reason

    def unavailable(self, state: RequestState[Any], plan: Plan, slot: Slot) -> Skip | None:
        """Why `slot` may not be called now for `state`, or None."""
        store, name = self.store, slot.name
        now = self.clock.now()
        if store.cooldown_until(name) > now:
            return Skip.COOLING_DOWN
        if not store.is_healthy(name):
            return Skip.UNHEALTHY
        if not store.breaker(name, plan.breaker).would_admit():
            return Skip.OPEN
        if self.limit(name).saturated:
            return Skip.SATURATED
        if store.quota(name, slot.quota).refuses(now, state.tokens):
            return Skip.QUOTA
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
        wait_for_slot: bool = False,
    ) -> T:
        """Call `slot` once. `force` calls it even when its breaker refuses (panic "all");
        `wait_for_slot` waits (within the deadline) when it is at its concurrency limit;
        `recovery` and `delivered` mark a call that finishes a broken stream."""
        limit = self.limit(slot.name)
        if force:
            limit.take()
        elif wait_for_slot:
            await self._wait_for_slot(state, plan, limit)
        elif not limit.try_acquire():
            state.trace.attempts.append(Attempt(plan.name, slot.name, skipped=Skip.SATURATED))
            raise Skipped
        try:
            breaker = self.store.breaker(slot.name, plan.breaker)
            # an in-process breaker answers at once: no coroutine to make and await for it
            if type(breaker) is CircuitBreaker:
                permit = breaker.try_acquire()
            else:
                permit = await breaker.acquire()
            call = self._admit(state, plan, slot, breaker, permit, limit, waited, hedge, force)
            if call is None:  # out of time
                if permit is not None:
                    await breaker.release(permit, Result.IGNORE)
                raise self._out_of_time(state, plan)
        except BaseException:
            limit.release()
            raise
        if recovery is not None or delivered is not None:
            call.attempt.recovery, call.attempt.delivered = recovery, delivered
        now = call.started
        timeout = slot.timeout or plan.timeouts.attempt
        until = min(now + timeout, state.deadline) if timeout is not None else state.deadline
        # only a tokens-per-minute limit counts what a call may use: estimate it only then
        quota = call.quota
        quota.sent(now, state.tokens() if quota.policy.tpm is not None else 0)
        token = CURRENT_CALL.set(call.info)
        try:
            async with deadline_scope(self.clock, None if math.isinf(until) else until):
                answer = await state.operation.send(call, state.request)
        except TimeoutError as exc:
            late = f"no answer within {until - now:.3g}s"
            raise await self._recorded(call, AttemptTimeout(late, deployment=slot.name)) from exc
        except ProviderError as exc:
            await self.record(call, exc)
            raise
        except asyncio.CancelledError:
            await self.record_cancelled(call)
            raise
        except Exception as exc:
            raise await self._recorded(call, self.classify(exc)) from exc
        finally:
            CURRENT_CALL.reset(token)
        if state.operation.ends_on_return:
            if isinstance(answer, Payload):  # a completion or embeddings, read only if asked
                call.attempt.answer = answer
            result = self._settle(call, None, success=True)
            if result is not None:
                await self._release(call, result)
        else:
            limit.answered(holding=True)  # a stream's first content
        return answer

    async def _wait_for_slot(
        self, state: RequestState[T], plan: Plan, limit: AdaptiveLimit
    ) -> None:
        """A concurrency slot of a deployment at its limit, waited for within the deadline."""
        deadline = None if math.isinf(state.deadline) else state.deadline
        try:
            async with deadline_scope(self.clock, deadline):
                await limit.acquire()
        except TimeoutError:
            raise self._out_of_time(state, plan) from None

    def _admit(
        self,
        state: RequestState[T],
        plan: Plan,
        slot: Slot,
        breaker: BreakerLike,
        permit: Permit | None,
        limit: AdaptiveLimit,
        waited: float,
        hedge: bool,
        force: bool,
    ) -> Call | None:
        """The call, with its trace entry, once the breaker answered; `Skipped` when it
        refused, None when the deadline has passed."""
        trace = state.trace
        if permit is None and not force:
            trace.attempts.append(Attempt(plan.name, slot.name, skipped=Skip.OPEN))
            raise Skipped
        now = self.clock.now()
        if now >= state.deadline:
            return None
        attempt = Attempt(plan.name, slot.name, waited=waited, hedge=hedge, started=now)
        trace.attempts.append(attempt)
        self.store.stats(slot.name).started()
        info = CallInfo(started=running_loop().time())
        quota = self.store.quota(slot.name, slot.quota)
        return Call(plan, slot, breaker, permit, attempt, now, info, limit, quota)

    @staticmethod
    def _out_of_time(state: RequestState[T], plan: Plan) -> DeadlineExceeded:
        trace = state.trace
        return DeadlineExceeded(
            f"deadline exceeded for {plan.name!r}: {trace.summary()}",
            trace=trace,
            last=last_error(trace),
        )

    def classify(self, exc: BaseException) -> ProviderError:
        """The `ProviderError` an unexpected exception stands for."""
        return self.classifier.classify(exc, now_wall=self.clock.wall())

    # -- after a call ------------------------------------------------------------------------

    async def record(self, call: Call, err: ProviderError | None, *, success: bool = False) -> None:
        """Record how a call ended: trace, stats, breaker, cool-down, hooks.

        `err` is the failure; without one, `success` says whether the deployment answered
        (false: the call ended without a verdict, e.g. the caller left or lost a hedge race).
        """
        result = self._settle(call, err, success=success)
        if result is not None:
            await self._release(call, result)

    async def _recorded(self, call: Call, err: ProviderError) -> ProviderError:
        """`err`, recorded as how `call` ended: to be raised by the caller, so that no frame
        of the raise keeps it in a variable (a cycle through its traceback)."""
        await self.record(call, err)
        return err

    async def record_cancelled(self, call: Call) -> None:
        """Record a call whose answer nobody wants any more (the caller left, another attempt
        won): no verdict on its deployment."""
        call.attempt.cancelled = True
        call.attempt.kind = Kind.CANCELLED
        await self.record(call, None, success=False)

    def _settle(self, call: Call, err: ProviderError | None, *, success: bool) -> Result | None:
        """`record` up to the breaker: done, hooks told and None when the breaker is this
        process's own (it records at once); else the result the store's breaker is to get."""
        now = self.clock.now()
        elapsed = now - call.started
        attempt = call.attempt
        attempt.latency = elapsed
        stats = self.store.stats(call.slot.name)
        stats.finished()
        limit = call.limit
        headers = call.info.headers
        if headers is None:
            call.quota.ended()
        else:
            call.quota.observe(headers, now, self.clock.wall())
        if err is not None:
            err.deployment = err.deployment or call.slot.name
            attempt.kind, attempt.status, attempt.message = err.kind, err.status, err.message
            attempt.local = self._local_cause(call, err)
            result = self._failed(call, err, stats, elapsed, limit)
        elif success:
            stats.observe(True, elapsed, attempt.ttft)
            if attempt.ttft is None:  # a stream grew the limit at its first content
                limit.answered()
            result = Result.SUCCESS
        else:
            result = Result.IGNORE
        limit.release()
        permit, breaker = call.permit, call.breaker
        if permit is not None:
            if type(breaker) is not CircuitBreaker:
                return result  # a shared breaker: released through the store, awaited
            breaker.record(permit, result, duration=elapsed)
        if self.hooks.attempt:
            self.hooks.attempted(attempt)
        return None

    async def _release(self, call: Call, result: Result) -> None:
        """The rest of `record` for a breaker kept by the store: release, then hooks."""
        assert call.permit is not None
        await call.breaker.release(call.permit, result, duration=call.attempt.latency)
        if self.hooks.attempt:
            self.hooks.attempted(call.attempt)

    def _failed(
        self,
        call: Call,
        err: ProviderError,
        stats: DeploymentStats,
        elapsed: float,
        limit: AdaptiveLimit,
    ) -> Result:
        """Record a failure; what the breaker makes of it."""
        if call.attempt.local is not None:
            return Result.IGNORE  # our own saturation: not the deployment's failure
        stats.last_error = f"{err.kind.value}: {err.message}"[:300]
        stats.observe(False, elapsed)
        policy = err.kind.policy
        if policy.cool_down:
            self._cool_down(call, err)
        if err.kind in _OVERLOAD:
            limit.overloaded()
        return Result.FAILURE if policy.breaker_failure else Result.IGNORE

    def _local_cause(self, call: Call, err: ProviderError) -> str | None:
        """ "loop_lag" or "pool_wait" when the process, not the deployment, made `err` likely."""
        latency = call.attempt.latency
        return local_cause(err.kind, call.info, latency, self.lag, max_lag=self.local_lag)

    def _cool_down(self, call: Call, err: ProviderError) -> None:
        wait = err.retry_after if err.retry_after is not None else call.plan.retry.cooldown
        self.store.cool_down(call.slot.name, self.clock.now() + wait)
