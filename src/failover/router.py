"""The router: runs one request through a route's plan until a deployment answers.

    plan      candidates of the route in strategy order, then the route's fallback routes
    attempt   skip if breaker open / unhealthy / cooling down; call with a timeout bounded
              by the request's deadline; classify the outcome; record it
    decide    success -> return; retryable -> back off and retry the same deployment while
              the retry budget allows; failover-worthy -> next candidate; the caller's own
              fault -> return the error now; context window / content filter -> their fallbacks
    panic     if health marks ruled out every candidate of every route, try them anyway

Streams follow the commit rule: until the first chunk is in hand, any failure fails over
invisibly; after it, the caller gets `StreamInterrupted`. Hedging (opt-in per route) races
the next candidate when the first has not answered after the hedge delay.
"""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .classify import Classifier
from .clock import Clock, SystemClock, deadline_scope
from .config import Timeouts
from .errors import (
    AllDeploymentsFailed,
    AttemptTimeout,
    BadRequest,
    DeadlineExceeded,
    Kind,
    ProviderError,
    RequestRejected,
    ServerError,
    UnknownRoute,
    error_for,
)
from .events import Event, Hooks
from .reply import Reply, StreamReply, aclose_quietly
from .resilience.breaker import BreakerEvent, BreakerPolicy, Permit, Result
from .resilience.retry import RetryBudget, RetryPolicy, backoff
from .route import Plan, Route, Slot, resolve_strategy, slot_of
from .state.base import BreakerLike, StateStore
from .state.memory import MemoryStore
from .trace import Attempt, Trace
from .types import Chunk, Completion, DeploymentLike, Payload, Request

if TYPE_CHECKING:
    from .config import Config

__all__ = ["Router"]

T = TypeVar("T")
MAX_SINGLE_PLANS = 256  # deployments addressed directly by `provider/model`


class _Skipped(Exception):
    """The breaker refused a permit at the last moment."""


class _NothingAvailable(Exception):
    """Every candidate of a route was skipped."""


class _Opened:
    """A stream whose first chunk has arrived."""

    __slots__ = ("first", "rest")

    def __init__(self, first: Chunk, rest: AsyncIterator[Chunk]) -> None:
        self.first = first
        self.rest = rest


class _Call:
    """Bookkeeping of one attempt in flight: permit, stats, trace entry."""

    __slots__ = ("attempt", "breaker", "permit", "slot", "started")

    def __init__(
        self, slot: Slot, breaker: BreakerLike, permit: Permit | None, attempt: Attempt, t0: float
    ) -> None:
        self.slot = slot
        self.breaker = breaker
        self.permit = permit
        self.attempt = attempt
        self.started = t0


Opener = Callable[[Slot, Request, "Plan", _Call], Awaitable[T]]


class Router:
    """Routes requests across deployments with retries, failover, fallbacks and breakers."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        *,
        retry: RetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        timeouts: Timeouts | None = None,
        store: StateStore | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        classifier: Classifier | None = None,
        resolver: Callable[[str], DeploymentLike | None] | None = None,
        config: Config | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.store: StateStore = store or MemoryStore(clock=self.clock, rng=self.rng)
        self.classifier = classifier or Classifier()
        self.hooks = Hooks()
        self.retry = retry or RetryPolicy()
        self.breaker_policy = breaker or BreakerPolicy()
        self.timeouts = timeouts or Timeouts()
        self._resolver = resolver
        self.config = config
        self._on_close = on_close
        self._routes = dict(routes)
        self._plans = {name: self._compile(name, route) for name, route in routes.items()}
        self._check_fallbacks()
        self.store.subscribe(self._on_breaker)

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def from_config(
        cls, config: Config | str | Path, *, clock: Clock | None = None, **kwargs: Any
    ) -> Router:
        """Build a router (adapters, policies, store) from a config file or `Config`."""
        from .factory import router_from_config

        return router_from_config(config, clock=clock, **kwargs)

    def _compile(self, name: str, route: Route) -> Plan:
        retry = route.retry or self.retry
        hedge = route.hedge
        return Plan(
            name=name,
            slots=[slot_of(d) for d in route.deployments],
            strategy=resolve_strategy(route.strategy, self.rng),
            fallbacks=route.fallbacks,
            context_window_fallbacks=route.context_window_fallbacks,
            content_filter_fallbacks=route.content_filter_fallbacks,
            hedge=hedge,
            retry=retry,
            breaker=route.breaker or self.breaker_policy,
            timeouts=route.timeouts or self.timeouts,
            panic=_panic_mode(route.panic),
            budget=self._budget(f"retry:{name}", retry.budget, retry),
            hedge_budget=self._budget(f"hedge:{name}", hedge.budget, None) if hedge else None,
        )

    def _budget(self, key: str, ratio: float, retry: RetryPolicy | None) -> RetryBudget:
        if retry is None:  # hedges: no time-based floor, the ratio alone decides
            return self.store.budget(key, ratio=ratio, min_per_second=0.0, burst=10.0)
        return self.store.budget(
            key, ratio=ratio, min_per_second=retry.budget_min_per_second, burst=retry.budget_burst
        )

    def _check_fallbacks(self) -> None:
        for plan in self._plans.values():
            for target in (
                *plan.fallbacks,
                *plan.context_window_fallbacks,
                *plan.content_filter_fallbacks,
            ):
                if target not in self._plans:
                    raise ValueError(f"route {plan.name!r} falls back to unknown route {target!r}")

    # -- public API -----------------------------------------------------------------------

    @property
    def routes(self) -> dict[str, Route]:
        return dict(self._routes)

    def route_names(self) -> list[str]:
        return list(self._plans)

    def plan(self, name: str) -> Plan:
        """The compiled plan of a route, or of a single deployment addressed by its name."""
        found = self._plans.get(name)
        if found is not None:
            return found
        deployment = self.deployments().get(name) or self._resolve(name)
        plan = self._compile(name, Route([deployment], panic=True))
        self._plans[name] = plan
        return plan

    def deployments(self) -> dict[str, DeploymentLike]:
        """Every deployment of every route, by name."""
        out: dict[str, DeploymentLike] = {}
        for plan in self._plans.values():
            for slot in plan.slots:
                out.setdefault(slot.name, slot.deployment)
        return out

    def _resolve(self, name: str) -> DeploymentLike:
        """A deployment outside the routes, by name (`provider/model`), from the resolver."""
        if self._resolver is None:
            raise UnknownRoute(name, self.route_names())
        if len(self._plans) - len(self._routes) >= MAX_SINGLE_PLANS:
            # clients choose these names: without a bound they could grow memory at will
            raise UnknownRoute(
                name,
                self.route_names(),
                reason=f"too many distinct deployments asked for by name; add {name!r} "
                "to a route in the config",
            )
        found = self._resolver(name)
        if found is None:
            raise UnknownRoute(name, self.route_names())
        return found

    def breaker(self, deployment: str) -> BreakerLike:
        """The breaker of a deployment (with the first route's policy that names it)."""
        for plan in self._plans.values():
            for slot in plan.slots:
                if slot.name == deployment:
                    return self.store.breaker(slot.name, plan.breaker)
        raise UnknownRoute(deployment, list(self.deployments()))

    async def complete(
        self,
        model: str,
        request: Request,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> Reply:
        """Send a chat completion through route `model`; the first answer wins."""
        plan, trace, deadline = self._begin(model, request_id, timeout)
        completion, slot = await self._run(plan, request, trace, deadline, self._open_call)
        self.hooks.finished(trace, Kind.OK)
        return Reply(completion, trace, plan.name, slot.name)

    async def open_stream(
        self,
        model: str,
        request: Request,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> StreamReply:
        """Start a stream: fail over until one deployment sends its first chunk."""
        plan, trace, deadline = self._begin(model, request_id, timeout)
        (opened, call), slot = await self._run(plan, request, trace, deadline, self._open_stream)

        async def finish(err: ProviderError | None, ok: bool) -> None:
            await self._settle(plan, call, err, success=ok)
            self._finished(trace, err, ok=ok)

        return StreamReply(
            first=opened.first,
            rest=opened.rest,
            finish=finish,
            trace=trace,
            route=plan.name,
            deployment=slot.name,
            clock=self.clock,
            idle_timeout=plan.timeouts.first_token or plan.timeouts.attempt,
            deadline=deadline,
            classify=self._classify,
        )

    async def stream(
        self, model: str, request: Request, *, request_id: str | None = None
    ) -> AsyncIterator[Chunk]:
        """Iterate a stream's chunks (see `open_stream` for the trace and deployment)."""
        reply = await self.open_stream(model, request, request_id=request_id)
        async for chunk in reply:
            yield chunk

    async def embeddings(
        self,
        model: str,
        request: Request,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> tuple[Payload, Trace, str]:
        """Create embeddings through route `model`: (OpenAI-format body, trace, deployment)."""
        plan, trace, deadline = self._begin(model, request_id, timeout)
        payload, slot = await self._run(plan, request, trace, deadline, self._open_embed)
        self.hooks.finished(trace, Kind.OK)
        return payload, trace, slot.name

    async def ask(self, model: str, prompt: str, **params: Any) -> str:
        """Send one user message and return the answer's text."""
        request = {"messages": [{"role": "user", "content": prompt}], **params}
        return (await self.complete(model, request)).text

    async def aclose(self) -> None:
        """Close adapters, transport and store."""
        for deployment in self.deployments().values():
            closer = getattr(deployment, "aclose", None)
            if closer is not None:
                await closer()
        if self._on_close is not None:
            await self._on_close()
        await self.store.close()

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the request loop ------------------------------------------------------------------

    def _begin(
        self, model: str, request_id: str | None, timeout: float | None
    ) -> tuple[Plan, Trace, float]:
        plan = self.plan(model)
        now = self.clock.now()
        trace = Trace(plan.name, request_id or uuid.uuid4().hex, started=now)
        total = timeout if timeout is not None else plan.timeouts.total
        return plan, trace, now + total if total is not None else math.inf

    async def _run(
        self, plan: Plan, request: Request, trace: Trace, deadline: float, opener: Opener[T]
    ) -> tuple[T, Slot]:
        """`_execute`, telling request listeners when it fails."""
        try:
            return await self._execute(plan, request, trace, deadline, opener)
        except BaseException as exc:
            self._finished(trace, exc)
            raise

    async def _execute(
        self, plan: Plan, request: Request, trace: Trace, deadline: float, opener: Opener[T]
    ) -> tuple[T, Slot]:
        queue, visited = [plan], {plan.name}
        last: ProviderError | None = None
        while queue:
            current = queue.pop(0)
            if current is not plan:
                self._emit("fallback", f"falling back to {current.name}", route=current.name)
            try:
                return await self._run_route(current, request, trace, deadline, opener)
            except _NothingAvailable:
                pass
            except ProviderError as err:
                last = err
                targets = self._fallback_targets(current, err, trace)
                if targets is not current.fallbacks:
                    queue = []  # context window / content filter: only their own fallbacks
                for name in targets:
                    if name not in visited:
                        visited.add(name)
                        queue.append(self._plans[name])
                continue
            for name in current.fallbacks:
                if name not in visited:
                    visited.add(name)
                    queue.append(self._plans[name])
        if self._should_panic(plan, trace):
            return await self._panic(plan, request, trace, deadline, opener)
        raise self._exhausted(plan, trace, deadline, last)

    def _fallback_targets(self, plan: Plan, err: ProviderError, trace: Trace) -> list[str]:
        kind = err.kind
        if kind is Kind.CONTEXT_WINDOW and plan.context_window_fallbacks:
            return plan.context_window_fallbacks
        if kind is Kind.CONTENT_FILTER and plan.content_filter_fallbacks:
            return plan.content_filter_fallbacks
        if not kind.policy.failover:
            raise RequestRejected(err.message, trace=trace, last=err) from err
        return plan.fallbacks

    @staticmethod
    def _should_panic(plan: Plan, trace: Trace) -> bool:
        """Nothing was called because every candidate was ruled out: by health marks or
        cool-downs (panic "health"), or by anything including open breakers (panic "all")."""
        if plan.panic == "off" or trace.calls or not trace.attempts:
            return False
        return plan.panic == "all" or any(a.skipped != "open" for a in trace.attempts)

    async def _panic(
        self, plan: Plan, request: Request, trace: Trace, deadline: float, opener: Opener[T]
    ) -> tuple[T, Slot]:
        """Every candidate was ruled out: a bad health signal must not become an outage, so
        try the candidates anyway. With panic "health" open breakers still hold (they come
        from real calls failing, and fail fast); with panic "all" they are called too."""
        self._emit(
            "panic",
            f"every candidate of {plan.name} is unavailable: trying anyway",
            route=plan.name,
        )
        last: ProviderError | None = None
        force = plan.panic == "all"
        for slot in plan.ordered(self.store.stats):
            if not force and not self.store.breaker(slot.name, plan.breaker).would_admit():
                continue
            try:
                return await self._attempt(
                    plan, slot, request, trace, deadline, opener, force=force
                ), slot
            except _Skipped:
                continue
            except ProviderError as err:
                last = err
                if not err.kind.policy.failover:  # no other candidate of this route will help
                    raise RequestRejected(err.message, trace=trace, last=err) from err
        raise self._exhausted(plan, trace, deadline, last)

    def _exhausted(
        self, plan: Plan, trace: Trace, deadline: float, last: ProviderError | None
    ) -> Exception:
        if self.clock.now() >= deadline:
            return DeadlineExceeded(
                f"deadline exceeded for {plan.name!r}: {trace.summary()}", trace=trace, last=last
            )
        return AllDeploymentsFailed(
            f"all deployments failed for {plan.name!r}: {trace.summary()}", trace=trace, last=last
        )

    async def _run_route(
        self, plan: Plan, request: Request, trace: Trace, deadline: float, opener: Opener[T]
    ) -> tuple[T, Slot]:
        plan.budget.deposit()
        slots = plan.ordered(self.store.stats)
        if plan.hedge is not None:
            return await self._run_hedged(plan, slots, request, trace, deadline, opener)
        last: ProviderError | None = None
        limited: list[Slot] = []
        for slot in slots:
            if not self._available(plan, slot, trace):
                continue
            try:
                return await self._with_retries(plan, slot, request, trace, deadline, opener), slot
            except _Skipped:
                continue
            except ProviderError as err:
                last = err
                if not err.kind.policy.failover:  # no other candidate of this route will help
                    raise
                if err.kind is Kind.RATE_LIMITED:
                    limited.append(slot)
        if limited:
            return await self._after_cooldown(plan, limited, request, trace, deadline, opener, last)
        if last is None:
            raise _NothingAvailable
        raise last

    async def _with_retries(
        self,
        plan: Plan,
        slot: Slot,
        request: Request,
        trace: Trace,
        deadline: float,
        opener: Opener[T],
    ) -> T:
        tries, waited = 0, 0.0
        while True:
            try:
                return await self._attempt(
                    plan, slot, request, trace, deadline, opener, waited=waited
                )
            except ProviderError as err:
                tries += 1
                delay = self._retry_delay(plan, err, tries, deadline)
                if delay is None:
                    raise
                await self.clock.sleep(delay)
                waited = delay

    def _retry_delay(
        self, plan: Plan, err: ProviderError, tries: int, deadline: float
    ) -> float | None:
        policy = err.kind.policy
        if not policy.retry_same or err.kind is Kind.RATE_LIMITED:
            return None  # rate limits fail over at once; see _after_cooldown
        limit = min(plan.retry.attempts, 2) if policy.retry_once else plan.retry.attempts
        if tries >= limit:
            return None
        if not plan.budget.spend():
            if self.hooks.budget:
                self.hooks.exhausted(plan.name, "retry")
            return None
        delay = backoff(plan.retry, tries - 1, self.rng)
        return delay if self.clock.now() + delay < deadline else None

    async def _after_cooldown(
        self,
        plan: Plan,
        limited: list[Slot],
        request: Request,
        trace: Trace,
        deadline: float,
        opener: Opener[T],
        last: ProviderError | None,
    ) -> tuple[T, Slot]:
        """Every other candidate failed too: wait out the shortest Retry-After, if short enough."""
        slot = min(limited, key=lambda s: self.store.cooldown_until(s.name))
        wait = max(0.0, self.store.cooldown_until(slot.name) - self.clock.now())
        if wait > plan.retry.retry_after_max or self.clock.now() + wait >= deadline:
            assert last is not None
            raise last
        await self.clock.sleep(wait)
        return await self._attempt(plan, slot, request, trace, deadline, opener, waited=wait), slot

    def _available(self, plan: Plan, slot: Slot, trace: Trace) -> bool:
        reason = None
        if self.store.cooldown_until(slot.name) > self.clock.now():
            reason = "cooling_down"
        elif not self.store.is_healthy(slot.name):
            reason = "unhealthy"
        elif not self.store.breaker(slot.name, plan.breaker).would_admit():
            reason = "open"
        if reason is None:
            return True
        trace.attempts.append(Attempt(plan.name, slot.name, skipped=reason))
        return False

    # -- one attempt -----------------------------------------------------------------------

    async def _attempt(
        self,
        plan: Plan,
        slot: Slot,
        request: Request,
        trace: Trace,
        deadline: float,
        opener: Opener[T],
        *,
        waited: float = 0.0,
        hedge: bool = False,
        force: bool = False,
    ) -> T:
        breaker = self.store.breaker(slot.name, plan.breaker)
        permit = await breaker.acquire()
        if permit is None and not force:
            trace.attempts.append(Attempt(plan.name, slot.name, skipped="open"))
            raise _Skipped
        now = self.clock.now()
        if now >= deadline:
            if permit is not None:
                await breaker.release(permit, Result.IGNORE)
            raise DeadlineExceeded(
                f"deadline exceeded for {plan.name!r}: {trace.summary()}",
                trace=trace,
                last=trace_last_error(trace),
            )
        attempt = Attempt(plan.name, slot.name, waited=waited, hedge=hedge)
        trace.attempts.append(attempt)
        call = _Call(slot, breaker, permit, attempt, now)
        stats = self.store.stats(slot.name)
        stats.started()
        limit = slot.timeout or plan.timeouts.attempt
        until = min(now + limit, deadline) if limit is not None else deadline
        try:
            async with deadline_scope(self.clock, None if math.isinf(until) else until):
                return await opener(slot, request, plan, call)
        except TimeoutError as exc:
            err: ProviderError = AttemptTimeout(
                f"no answer within {until - now:.3g}s", deployment=slot.name
            )
            await self._settle(plan, call, err)
            raise err from exc
        except ProviderError as exc:
            await self._settle(plan, call, exc)
            raise
        except asyncio.CancelledError:
            attempt.cancelled = True
            attempt.kind = Kind.CANCELLED
            await self._settle(plan, call, None, success=False)
            raise
        except Exception as exc:
            err = self._classify(exc)
            await self._settle(plan, call, err)
            raise err from exc

    async def _open_call(self, slot: Slot, request: Request, plan: Plan, call: _Call) -> Completion:
        completion = await slot.deployment.complete(request)
        await self._settle(plan, call, None, success=True)
        return completion

    async def _open_embed(self, slot: Slot, request: Request, plan: Plan, call: _Call) -> Payload:
        embed = getattr(slot.deployment, "embeddings", None)
        if embed is None:
            raise BadRequest(f"deployment {slot.name!r} does not serve embeddings")
        payload: Payload = await embed(request)
        await self._settle(plan, call, None, success=True)
        return payload

    async def _open_stream(
        self, slot: Slot, request: Request, plan: Plan, call: _Call
    ) -> tuple[_Opened, _Call]:
        rest = slot.deployment.stream(request).__aiter__()
        first_by = plan.timeouts.first_token
        try:
            until = None if first_by is None else self.clock.now() + first_by
            async with deadline_scope(self.clock, until):
                first = await anext(rest)
        except StopAsyncIteration:
            raise ServerError("stream ended before its first chunk", deployment=slot.name) from None
        except BaseException:
            await aclose_quietly(rest)
            raise
        call.attempt.ttft = self.clock.now() - call.started
        return _Opened(first, rest), call

    def _classify(self, exc: BaseException) -> ProviderError:
        return self.classifier.classify(exc, now_wall=self.clock.wall())

    async def _settle(
        self, plan: Plan, call: _Call, err: ProviderError | None, *, success: bool = False
    ) -> None:
        """Record how a call ended: trace, stats, breaker, cool-down, hooks."""
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
            result = Result.FAILURE if err.kind.policy.breaker_failure else Result.IGNORE
            if err.kind is Kind.RATE_LIMITED:
                self._cool_down(plan, call.slot, err)
        elif success:
            stats.observe(True, elapsed, attempt.ttft)
            result = Result.SUCCESS
        else:
            result = Result.IGNORE
        if call.permit is not None:
            await call.breaker.release(call.permit, result, duration=elapsed)
        if self.hooks.attempt:
            self.hooks.attempted(attempt)

    def _cool_down(self, plan: Plan, slot: Slot, err: ProviderError) -> None:
        wait = err.retry_after if err.retry_after is not None else plan.retry.cooldown
        self.store.cool_down(slot.name, self.clock.now() + wait)

    # -- hedging ---------------------------------------------------------------------------

    async def _run_hedged(
        self,
        plan: Plan,
        slots: list[Slot],
        request: Request,
        trace: Trace,
        deadline: float,
        opener: Opener[T],
    ) -> tuple[T, Slot]:
        from .race import HedgeRace

        race = HedgeRace(self, plan, slots, request, trace, deadline, opener)
        return await race.run()

    # -- events ----------------------------------------------------------------------------

    def _on_breaker(self, event: BreakerEvent) -> None:
        if self.hooks.event:
            text = f"breaker {event.old.value} -> {event.new.value}: {event.reason}"
            data: dict[str, Any] = {"old": event.old.value, "new": event.new.value}
            if event.open_for is not None:
                data["open_for"] = round(event.open_for, 3)
            self.hooks.emit(
                Event("breaker", self.clock.wall(), text, deployment=event.name, data=data)
            )

    def _emit(self, type_: str, message: str, **fields: Any) -> None:
        if self.hooks.event:
            self.hooks.emit(Event(type_, self.clock.wall(), message, **fields))

    def _finished(self, trace: Trace, exc: BaseException | None, *, ok: bool = False) -> None:
        if not self.hooks.request:
            return
        if ok:
            kind = Kind.OK
        elif isinstance(exc, ProviderError):
            kind = exc.kind
        elif isinstance(exc, asyncio.CancelledError) or exc is None:
            kind = Kind.CANCELLED
        else:
            kind = getattr(exc, "kind", Kind.SERVER_ERROR)
        self.hooks.finished(trace, kind)

    def __repr__(self) -> str:
        return f"<Router routes={self.route_names()} store={self.store!r}>"


def trace_last_error(trace: Trace) -> ProviderError | None:
    """The last failed attempt of a trace, as an error (for DeadlineExceeded)."""
    for attempt in reversed(trace.attempts):
        if attempt.skipped is None and attempt.kind is not Kind.OK and not attempt.cancelled:
            return error_for(
                attempt.kind, attempt.message, status=attempt.status, deployment=attempt.deployment
            )
    return None


def _panic_mode(panic: bool | str) -> str:
    """True -> "health", False -> "off"; "health", "all" and "off" as they are."""
    if panic is True:
        return "health"
    if panic is False:
        return "off"
    if panic not in ("health", "all", "off"):
        raise ValueError(f"panic must be true, false, 'health', 'all' or 'off', not {panic!r}")
    return panic
