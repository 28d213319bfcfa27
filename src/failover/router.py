"""The router: runs one request through a route's plan until a deployment answers.

Each level adds one concern and is named after it, the way httpx's client reads
`send -> _send_handling_auth -> _send_handling_redirects -> _send_single_request`:

    complete / open_stream / embeddings     begin: plan, trace, deadline (`RequestState`)
    _send                                   tell request listeners how it failed; when
                                            nothing was called because health ruled every
                                            candidate out, try them anyway (panic)
    _send_handling_fallbacks                the route, then its fallback routes (or the
                                            context-window / content-filter fallbacks)
    _send_handling_cooldowns                the route's candidates in strategy order (hedged:
                                            a race); rate-limited ones are waited out last
    _send_handling_retries                  a deployment that failed, called again with
                                            backoff while its kind and the retry budget allow
    Attempts.send                           one attempt: permit, timeout, outcome recorded

The first call of each candidate is made by `_send_handling_cooldowns` itself: every level is
a coroutine that each resumption of the request passes through, so an answer that comes at
once pays for no level it does not use.

What each failure kind does (retry, fail over, fall back, return to the caller) is read from
the table in `failover.kinds`. A stream commits to its deployment at its first content;
until then any failure fails over invisibly, and after it a `StreamSession` (`_stream.py`)
finishes a broken answer on another deployment, or ends it with `StreamInterrupted`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ._attempt import Attempts, NothingAvailable, Skipped
from ._decisions import fallback_routes, should_panic, tries_allowed
from ._hedge import HedgeRace
from ._limits import Limits
from ._local import LoopLag, PoolStats
from ._native import Dialect, NativeComplete, NativeSource
from ._operations import COMPLETE, EMBED, Opened, OpenStream
from ._plans import Plans
from ._request import Operation, RequestState
from ._stream import StreamSession
from .classify import Classifier
from .clock import Clock, SystemClock
from .config import Timeouts
from .controls import DEFAULT, Controls, Priority
from .errors import (
    AllDeploymentsFailed,
    DeadlineExceeded,
    ProviderError,
    RequestFailed,
    RequestRejected,
)
from .events import Event, Hooks
from .kinds import Kind, Retry
from .reply import EmbeddingsReply, Reply, StreamReply
from .resilience.breaker import BreakerEvent, BreakerPolicy, BreakerState
from .resilience.concurrency import AdaptiveLimit, ConcurrencyPolicy
from .resilience.panic import Panic
from .resilience.retry import RetryPolicy, backoff
from .resilience.streams import Resume, StreamPolicy
from .route import Plan, Route, Slot
from .state.base import BreakerLike, StateStore
from .state.memory import MemoryStore
from .trace import Skip, Trace
from .types import BaseDeployment, Chunk, Request

if TYPE_CHECKING:
    from .config import Config

__all__ = ["Router"]

T = TypeVar("T")


class Router:
    """Routes requests across deployments with retries, failover, fallbacks and breakers."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        *,
        retry: RetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        timeouts: Timeouts | None = None,
        streams: StreamPolicy | None = None,
        concurrency: ConcurrencyPolicy | None = None,
        store: StateStore | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        classifier: Classifier | None = None,
        resolver: Callable[[str], BaseDeployment | None] | None = None,
        config: Config | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
        pools: Callable[[], Iterable[PoolStats]] | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.store: StateStore = store or MemoryStore(clock=self.clock, rng=self.rng)
        self.classifier = classifier or Classifier()
        self.hooks = Hooks()
        self.retry = retry or RetryPolicy()
        self.breaker_policy = breaker or BreakerPolicy()
        self.timeouts = timeouts or Timeouts()
        self.streams = streams or StreamPolicy()
        self.config = config
        self._on_close = on_close
        self._pools = pools  # the transport's connection pools, for metrics and status
        self._plans = Plans(
            routes,
            retry=self.retry,
            breaker=self.breaker_policy,
            timeouts=self.timeouts,
            streams=self.streams,
            store=self.store,
            rng=self.rng,
            resolver=resolver,
        )
        self.lag = LoopLag()
        self._attempts = Attempts(
            self.store, self.clock, self.classifier, self.hooks,
            concurrency=concurrency, lag=self.lag,
        )  # fmt: skip
        self._limits = Limits(self.store)
        self._open_stream = OpenStream(self.clock, self._limits.first_content)
        self._no_prefill: set[str] = set()  # deployments that refused an assistant prefill
        self.store.subscribe(self._on_breaker)

    # -- the registry ----------------------------------------------------------------------

    @property
    def routes(self) -> dict[str, Route]:
        """The configured routes, by name."""
        return dict(self._plans.routes)

    def route_names(self) -> list[str]:
        """The names clients may ask for: every route (and deployments asked for by name)."""
        return self._plans.names()

    def plan(self, name: str) -> Plan:
        """The compiled plan of a route, or of a single deployment addressed by its name."""
        return self._plans.get(name)

    def deployments(self) -> dict[str, BaseDeployment]:
        """Every deployment of every route, by name."""
        return self._plans.deployments()

    def breaker(self, deployment: str) -> BreakerLike:
        """The breaker of a deployment (with the first route's policy that names it)."""
        return self._plans.breaker(deployment)

    def concurrency(self, deployment: str) -> AdaptiveLimit:
        """The adaptive concurrency limit of a deployment, in this process."""
        return self._attempts.limit(deployment)

    def pools(self) -> list[PoolStats]:
        """This process's connection pools to providers (none unless the router was built
        with the transport's `pools`, as `from_config` does)."""
        return list(self._pools()) if self._pools is not None else []

    # -- requests --------------------------------------------------------------------------

    async def complete(
        self,
        model: str,
        request: Request,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        dialect: Dialect | None = None,
        headers: Mapping[str, str] | None = None,
        **controls: Any,
    ) -> Reply:
        """Send a chat completion through route `model`; the first answer wins.

        `timeout` bounds the whole request; `fallbacks=False` keeps it on the route's own
        deployments; `priority` (`failover.Priority`) ranks it when the gateway sheds load.
        With a `dialect` the request and the answer are in that client API (e.g. Anthropic's
        Messages): passed through as they are to deployments that speak it, with `headers`,
        and translated for the others.
        """
        operation = COMPLETE if dialect is None else NativeComplete(dialect, headers or {})
        state = self._begin(model, request, operation, request_id, _controls(timeout, controls))
        completion, slot = await self._send(state)
        self.hooks.finished(state.trace, Kind.OK)
        return Reply(completion, state.trace, state.plan.name, slot.name)

    async def open_stream(
        self,
        model: str,
        request: Request,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        dialect: Dialect | None = None,
        headers: Mapping[str, str] | None = None,
        **controls: Any,
    ) -> StreamReply:
        """Start a stream: fail over until one deployment sends its first content.

        Takes `complete`'s controls and dialect, and `resume` (`Resume`, or "continue" /
        "restart" / "off") to choose how a broken stream is finished. In a dialect, chunks from
        deployments that speak it are `NativeChunk`s carrying the provider's own events.
        """
        opener = self._open_stream
        if dialect is not None:
            opener = opener.using(NativeSource(dialect, headers or {}))
        state = self._begin(model, request, opener, request_id, _controls(timeout, controls))
        opened, _ = await self._send(state)
        return self._stream_reply(state, opened)

    async def stream(
        self,
        model: str,
        request: Request,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        **controls: Any,
    ) -> AsyncIterator[Chunk]:
        """Iterate a stream's chunks (see `open_stream` for the trace and deployment)."""
        reply = await self.open_stream(
            model, request, request_id=request_id, timeout=timeout, **controls
        )
        async for chunk in reply:
            yield chunk

    async def embeddings(
        self,
        model: str,
        request: Request,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        **controls: Any,
    ) -> EmbeddingsReply:
        """Create embeddings through route `model` (with `complete`'s controls)."""
        state = self._begin(model, request, EMBED, request_id, _controls(timeout, controls))
        payload, slot = await self._send(state)
        self.hooks.finished(state.trace, Kind.OK)
        return EmbeddingsReply(payload, state.trace, state.plan.name, slot.name)

    async def ask(self, model: str, prompt: str, **params: Any) -> str:
        """Send one user message and return the answer's text."""
        request = {"messages": [{"role": "user", "content": prompt}], **params}
        return (await self.complete(model, request)).text

    async def start(self) -> None:
        """Start what runs beside the requests: the event-loop lag sampler that tells the
        process's own saturation from a provider's failure, and the store's connections.
        A gateway calls this at start-up; without it a router works, and blames failures
        on deployments without asking whether the process itself was saturated."""
        self.lag.start()
        await self.store.start()

    async def aclose(self) -> None:
        """Close deployments, transport and store."""
        await self.lag.stop()
        for deployment in self.deployments().values():
            await deployment.aclose()
        if self._on_close is not None:
            await self._on_close()
        await self.store.close()

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the levels of one request ----------------------------------------------------------

    def _begin(
        self,
        model: str,
        request: Request,
        operation: Operation[T],
        request_id: str | None,
        controls: Controls,
    ) -> RequestState[T]:
        plan = self._plans.get(model)
        now = self.clock.now()
        trace = Trace(
            plan.name, request_id or uuid.uuid4().hex, started=now, operation=operation.name
        )
        if controls is not DEFAULT:
            trace.controls = controls.to_dict()
        total = controls.timeout if controls.timeout is not None else plan.timeouts.total
        deadline = now + total if total is not None else math.inf
        if self.hooks.start:
            self.hooks.started(trace)
        return RequestState(plan, request, trace, deadline, operation, controls)

    async def _send(self, state: RequestState[T]) -> tuple[T, Slot]:
        try:
            try:
                return await self._send_handling_fallbacks(state)
            except NothingAvailable:
                if not should_panic(state):
                    raise self._exhausted(state) from None
            plan = state.plan
            self._emit("panic", f"every candidate of {plan.name} is unavailable: trying anyway",
                       route=plan.name)  # fmt: skip
            return await self._send_in_panic(state)
        except BaseException as exc:
            self._finished(state.trace, exc)
            raise
        finally:
            # the failures are told, or carried by the error raised: kept, the last one's
            # traceback would hold the frames that hold this state, a cycle
            state.last = None

    async def _send_handling_fallbacks(self, state: RequestState[T]) -> tuple[T, Slot]:
        """The route asked for, then the routes it falls back to, each once."""
        queue, visited = [state.plan], {state.plan.name}
        while queue:
            plan = queue.pop(0)
            if plan is not state.plan:
                self._emit("fallback", f"falling back to {plan.name}", route=plan.name)
            try:
                return await self._send_handling_cooldowns(state, plan)
            except NothingAvailable:
                targets = plan.fallbacks
            except ProviderError as err:
                state.last = err
                found = fallback_routes(plan, err)
                if found is None:  # no other deployment would do better
                    raise RequestRejected(err.message, trace=state.trace, last=err) from err
                if found is not plan.fallbacks:
                    queue = []  # context window / content filter: only their own fallbacks
                targets = found
            if not state.controls.fallbacks:
                continue  # the request asked to stay on its own route
            for name in targets:
                if name not in visited:
                    visited.add(name)
                    queue.append(self._plans.get(name))
        if state.last is None:
            raise NothingAvailable
        raise self._exhausted(state)

    async def _send_handling_cooldowns(self, state: RequestState[T], plan: Plan) -> tuple[T, Slot]:
        """The route's candidates in order; if only rate-limited ones are left, the first to
        come out of its cool-down is tried again (when that is soon enough)."""
        plan.budget.deposit()
        slots = plan.ordered(self.store.stats)
        if plan.hedge is not None:
            return await HedgeRace(self._attempts, state, plan, slots).run()
        attempts = self._attempts
        failed: ProviderError | None = None
        limited: list[Slot] = []
        saturated: list[Slot] = []
        spent: list[Slot] = []  # near their rate limits: tried only when nothing else answers
        try:
            for slot in slots:
                skip = attempts.check(state, plan, slot)
                if skip is not None:
                    if skip is Skip.SATURATED:
                        saturated.append(slot)
                    elif skip is Skip.QUOTA:
                        spent.append(slot)
                    continue
                try:
                    try:
                        answer = await attempts.send(state, plan, slot)
                    except ProviderError as err:
                        answer = await self._send_handling_retries(state, plan, slot, err)
                    return answer, slot
                except Skipped:
                    continue
                except ProviderError as err:
                    failed = state.last = err
                    if not err.kind.policy.tries_next:  # no other candidate will help
                        raise
                    if err.kind.policy.cool_down:
                        limited.append(slot)
            if saturated:  # a busy candidate beats a failure: wait for its next free slot
                slot = saturated[0]
                return await attempts.send(state, plan, slot, wait_for_slot=True), slot
            if spent and failed is None:  # every candidate is near its limit: try one anyway
                slot = spent[0]
                try:
                    return await attempts.send(state, plan, slot), slot
                except ProviderError as err:
                    return await self._send_handling_retries(state, plan, slot, err), slot
            if failed is None:
                raise NothingAvailable
            if limited and (soonest := self._after_cooldown(state, plan, limited)) is not None:
                slot, wait = soonest  # every candidate failed: wait out the shortest Retry-After
                await self.clock.sleep(wait)
                return await attempts.send(state, plan, slot, waited=wait), slot
            raise failed
        finally:
            failed = None  # its traceback holds this frame: kept here, the two make a cycle

    def _after_cooldown(
        self, state: RequestState[T], plan: Plan, limited: list[Slot]
    ) -> tuple[Slot, float] | None:
        """The rate-limited candidate whose cool-down ends first, and the wait for it; None
        when that wait is longer than the route allows or than the request has left."""
        slot = min(limited, key=lambda s: self.store.cooldown_until(s.name))
        wait = max(0.0, self.store.cooldown_until(slot.name) - self.clock.now())
        if wait > plan.retry.retry_after_max or self.clock.now() + wait >= state.deadline:
            return None
        return slot, wait

    async def _send_handling_retries(
        self, state: RequestState[T], plan: Plan, slot: Slot, err: ProviderError
    ) -> T:
        """A deployment whose first call failed with `err`, called again after backoff while
        its failures allow; the last failure is raised when they do not."""
        tries = 1
        try:
            while True:
                delay = self._retry_delay(state, plan, err, tries)
                if delay is None:
                    raise err
                await self.clock.sleep(delay)
                try:
                    return await self._attempts.send(state, plan, slot, waited=delay)
                except ProviderError as again:
                    err = again
                    tries += 1
        finally:
            del err  # its traceback holds this frame: kept here, the two make a cycle

    def _retry_delay(
        self, state: RequestState[T], plan: Plan, err: ProviderError, tries: int
    ) -> float | None:
        """Seconds to back off before the next try, or None to move on: the kind allows no
        more tries, the retry budget is spent, or the deadline would pass."""
        if tries >= tries_allowed(plan, err):
            return None
        if not plan.budget.spend():
            if self.hooks.budget:
                self.hooks.exhausted(plan.name, "retry")
            return None
        delay = backoff(plan.retry, tries - 1, self.rng)
        return delay if self.clock.now() + delay < state.deadline else None

    async def _send_in_panic(self, state: RequestState[T]) -> tuple[T, Slot]:
        """Try every candidate of the route asked for, whatever health says. With panic
        HEALTH open breakers still hold (they come from real calls failing and fail fast);
        with panic ALL they are called too."""
        plan = state.plan
        force = plan.panic is Panic.ALL
        for slot in plan.ordered(self.store.stats):
            if not force and not self.store.breaker(slot.name, plan.breaker).would_admit():
                continue
            try:
                return await self._attempts.send(state, plan, slot, force=force), slot
            except Skipped:
                continue
            except ProviderError as err:
                state.last = err
                if not err.kind.policy.tries_next:  # no other candidate of this route will help
                    raise RequestRejected(err.message, trace=state.trace, last=err) from err
        raise self._exhausted(state)

    def _exhausted(self, state: RequestState[Any]) -> RequestFailed:
        name, trace = state.plan.name, state.trace
        if self.clock.now() >= state.deadline:
            return DeadlineExceeded(
                f"deadline exceeded for {name!r}: {trace.summary()}", trace=trace, last=state.last
            )
        return AllDeploymentsFailed(
            f"all deployments failed for {name!r}: {trace.summary()}", trace=trace, last=state.last
        )

    # -- streams ---------------------------------------------------------------------------

    def _stream_reply(self, state: RequestState[Opened], opened: Opened) -> StreamReply:
        """The committed stream, relayed and recovered by a `StreamSession`."""
        cap = state.plan.timeouts.stream
        started = state.trace.started if state.trace.started is not None else self.clock.now()
        policy = opened.call.plan.streams
        if state.controls.resume is not None:
            policy = dataclasses.replace(policy, resume=state.controls.resume)
        session = StreamSession(
            attempts=self._attempts,
            state=state,
            opened=opened,
            policy=policy,
            opener=state.operation,
            candidates=functools.partial(self._recovery_candidates, state),
            no_prefill=self._no_prefill,
            silence=self._limits.silence,
            deadline=math.inf if cap is None else started + cap,
            on_end=functools.partial(self._stream_ended, state.trace),
        )
        return StreamReply(session, trace=state.trace, route=state.plan.name)

    def _recovery_candidates(
        self, state: RequestState[Opened], broken: Slot, cause: ProviderError
    ) -> Iterator[tuple[Plan, Slot]]:
        """Who may finish a broken stream: the route's candidates in strategy order, then its
        fallback routes'; the deployment that broke last, and only if its kind of failure
        may be retried (a silent one is not: a second wait would only double the caller's)."""
        again: tuple[Plan, Slot] | None = None
        plans = self._walk(state.plan) if state.controls.fallbacks else iter([state.plan])
        for plan in plans:
            for slot in plan.ordered(self.store.stats):
                if slot.name != broken.name:
                    yield plan, slot
                elif again is None:
                    again = (plan, slot)
        if again is not None and cause.kind.policy.retry is not Retry.NO:
            yield again

    def _walk(self, plan: Plan) -> Iterator[Plan]:
        """A route, then the routes it falls back to, breadth first, each once."""
        queue, seen = [plan], {plan.name}
        while queue:
            current = queue.pop(0)
            yield current
            for name in current.fallbacks:
                if name not in seen:
                    seen.add(name)
                    queue.append(self._plans.get(name))

    def _stream_ended(self, trace: Trace, exc: BaseException | None, ok: bool) -> None:
        self._finished(trace, exc, ok=ok)

    # -- events ----------------------------------------------------------------------------

    def _on_breaker(self, event: BreakerEvent) -> None:
        if event.new is BreakerState.OPEN:
            self._attempts.limit(event.name).reset()  # eased back in once it recovers
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
        elif isinstance(exc, ProviderError | RequestFailed):
            kind = exc.kind
        elif isinstance(exc, asyncio.CancelledError) or exc is None:
            kind = Kind.CANCELLED
        else:
            kind = Kind.SERVER_ERROR
        self.hooks.finished(trace, kind)

    def __repr__(self) -> str:
        return f"<Router routes={self.route_names()} store={self.store!r}>"


def _controls(timeout: float | None, given: dict[str, Any]) -> Controls:
    """A request's `Controls` from `Router` keyword arguments (names checked, values parsed)."""
    if not given and timeout is None:
        return DEFAULT
    unknown = set(given) - {"fallbacks", "resume", "priority"}
    if unknown:
        raise TypeError(f"unknown request controls: {', '.join(sorted(unknown))}")
    resume = given.get("resume")
    return Controls(
        timeout=timeout,
        fallbacks=bool(given.get("fallbacks", True)),
        resume=Resume(resume) if resume is not None else None,
        priority=Priority(given.get("priority", Priority.NORMAL)),
    )
