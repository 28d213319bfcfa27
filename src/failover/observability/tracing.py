"""OpenTelemetry traces of one router: a span per request and a child span per attempt.

    tracing = Tracing(router, tracer_provider)   # subscribes to router.hooks
    ...                                          # requests become traces
    tracing.close()                              # unsubscribes

Spans follow the OpenTelemetry GenAI semantic conventions (`gen_ai.operation.name`,
`gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.response.*`, `gen_ai.usage.*`,
`error.type`; names like "chat smart"), plus `failover.*` attributes for what the router did:
route, deployment, outcome kind, retry number, hedge, stream recovery, breaker state, skips.

How it hooks in: the request span starts in `hooks.start`, in the request's own task, and is
attached as the current OpenTelemetry context, so whatever the request calls sees it (the
transport's header hook sends it upstream as `traceparent`). Attempt spans are made when each
attempt ends (`hooks.attempt`), with their start and end read from the router's clock. The
request span ends in `hooks.request` and is detached when that runs in the task that attached
it (a stream read by another task leaves it current in the opening task, where a later request
becomes its sibling, never its child). Nothing is subscribed until a `Tracing` is built:
without one the router pays one empty-list check per hook.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from contextvars import Token
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate as otel_propagate
from opentelemetry import trace as otel_trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.util.types import AttributeValue

from ..events import StreamBreak
from ..kinds import Kind
from ..trace import Attempt, Trace
from ..transport import add_header_hook, remove_header_hook
from .genai import Place, attempt_attributes, describe, failed, place_of, response_attributes

if TYPE_CHECKING:
    from ..router import Router

__all__ = ["Tracing", "inject_headers", "propagate_fields"]

_REQUEST_KEY = otel_context.create_key("failover-request")
_MAX_PLACES = 512  # deployments whose provider is remembered (names asked for are bounded too)


def inject_headers(headers: dict[str, str]) -> None:
    """The transport's header hook: the current trace context as `traceparent`/`tracestate`."""
    otel_propagate.inject(headers)


@dataclass(slots=True, eq=False)
class _Request:
    """One request's span, the context it was started in, and how to detach it again."""

    trace: Trace
    span: Span
    parent: Context
    task: asyncio.Task[Any] | None
    token: Token[Context] | None = None


class Tracing:
    """Turns one router's requests into OpenTelemetry traces. Build it to subscribe."""

    def __init__(
        self,
        router: Router,
        tracer_provider: TracerProvider | None = None,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        propagate: bool = True,
    ) -> None:
        """`tracer_provider`: default the global one. `kind`: of request spans (a gateway's are
        SERVER). `propagate`: send the trace context upstream in every provider call."""
        self.router = router
        self.clock = router.clock
        self.kind = kind
        self.propagate = propagate
        provider = tracer_provider or otel_trace.get_tracer_provider()
        self.tracer = provider.get_tracer("failover", _version())
        self._open: dict[int, _Request] = {}  # by id() of the request's trace
        self._places: dict[str, Place] = {}
        # the incoming headers worth reading: the propagator's (traceparent, tracestate, ...)
        self._fields = frozenset(name.encode("latin-1") for name in propagate_fields())
        self._attached = False
        self.attach()

    # -- subscribing ----------------------------------------------------------------------

    def attach(self) -> Tracing:
        """Subscribe to the router's hooks (and the transport's headers); idempotent."""
        if not self._attached:
            hooks = self.router.hooks
            hooks.start.append(self._started)
            hooks.attempt.append(self._attempted)
            hooks.request.append(self._finished)
            hooks.stream.append(self._broke)
            if self.propagate:
                add_header_hook(inject_headers)
            self._attached = True
        return self

    def close(self) -> None:
        """Unsubscribe, and end the spans of requests still open (so they are exported)."""
        if self._attached:
            hooks = self.router.hooks
            hooks.start.remove(self._started)
            hooks.attempt.remove(self._attempted)
            hooks.request.remove(self._finished)
            hooks.stream.remove(self._broke)
            if self.propagate:
                remove_header_hook(inject_headers)
            self._attached = False
        for request in list(self._open.values()):
            request.span.end(end_time=self._ns(self.clock.now()))
        self._open.clear()

    # -- incoming context -----------------------------------------------------------------

    def continue_from(self, headers: Iterable[tuple[bytes, bytes]]) -> Token[Context] | None:
        """Make a client's trace context (ASGI headers: `traceparent`, `tracestate`, ...) the
        current one, so the request span continues it; None when it sent none. Give the
        token back to `detach` when the request is done."""
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in headers
            if name in self._fields
        }
        if not carrier:
            return None
        return otel_context.attach(otel_propagate.extract(carrier))

    def detach(self, token: Token[Context]) -> None:
        """Undo `continue_from`."""
        otel_context.detach(token)

    # -- listeners ------------------------------------------------------------------------

    def _started(self, trace: Trace) -> None:
        parent = otel_context.get_current()
        outer = otel_context.get_value(_REQUEST_KEY, parent)
        if isinstance(outer, _Request):  # requests never nest: a sibling of the one still open
            parent = outer.parent
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": trace.operation,
            "gen_ai.request.model": trace.route,
            "failover.route": trace.route,
            "failover.request_id": trace.request_id,
        }
        started = trace.started if trace.started is not None else self.clock.now()
        span = self.tracer.start_span(
            f"{trace.operation} {trace.route}",
            context=parent,
            kind=self.kind,
            attributes=attributes,
            start_time=self._ns(started),
        )
        request = _Request(trace, span, parent, _task())
        ctx = otel_trace.set_span_in_context(span, parent)
        request.token = otel_context.attach(otel_context.set_value(_REQUEST_KEY, request, ctx))
        self._open[id(trace)] = request

    def _attempted(self, attempt: Attempt) -> None:
        request = self._request_of(attempt)
        if request is None or not request.span.is_recording():
            return
        place = self._place(attempt.deployment)
        started = attempt.started if attempt.started is not None else self.clock.now()
        span = self.tracer.start_span(
            f"{request.trace.operation} {place.model}",
            context=otel_trace.set_span_in_context(request.span, request.parent),
            kind=SpanKind.CLIENT,
            attributes=self._attempt_attributes(request.trace, attempt, place),
            start_time=self._ns(started),
        )
        if failed(attempt):
            span.set_status(Status(StatusCode.ERROR, describe(attempt)))
        span.end(end_time=self._ns(started + attempt.latency))

    def _finished(self, trace: Trace, kind: Kind) -> None:
        request = self._open.pop(id(trace), None)
        if request is None:
            return
        span = request.span
        ended = self._ns(self.clock.now())
        if span.is_recording():
            span.set_attributes(self._outcome_attributes(trace, kind))
            for name, attributes, at in self._skips(trace, ended):
                span.add_event(name, attributes, timestamp=at)
            if kind is not Kind.OK and kind is not Kind.CANCELLED:
                last = trace.calls[-1] if trace.calls else None
                span.set_status(Status(StatusCode.ERROR, describe(last) if last else kind.value))
        span.end(end_time=ended)
        # only the task that attached the span can detach it, and only while it is on top
        current = otel_context.get_value(_REQUEST_KEY)
        if request.token is not None and request.task is _task() and current is request:
            otel_context.detach(request.token)

    def _broke(self, event: StreamBreak) -> None:
        request = otel_context.get_value(_REQUEST_KEY)
        if not isinstance(request, _Request) or not request.span.is_recording():
            return
        attributes: dict[str, AttributeValue] = {
            "failover.deployment": event.deployment,
            "error.type": event.kind.value,
            "failover.delivered_chars": event.delivered,
            "failover.recovery.outcome": event.outcome,
        }
        if event.by is not None:
            attributes["failover.recovery.by"] = event.by
        request.span.add_event("failover.stream_break", attributes)

    # -- attributes -----------------------------------------------------------------------

    def _attempt_attributes(
        self, trace: Trace, attempt: Attempt, place: Place
    ) -> dict[str, AttributeValue]:
        out = attempt_attributes(trace, attempt, place)
        policy = self.router.plan(attempt.route).breaker
        breaker = self.router.store.breaker(attempt.deployment, policy)
        out["failover.breaker.state"] = breaker.state.value
        return out

    def _outcome_attributes(self, trace: Trace, kind: Kind) -> dict[str, AttributeValue]:
        calls = trace.calls
        winner = trace.winner
        out: dict[str, AttributeValue] = {"failover.outcome": kind.value}
        out["failover.attempts"] = len(calls)
        skipped = [f"{a.deployment}:{a.skipped}" for a in trace.attempts if a.skipped]
        if skipped:
            out["failover.skipped"] = skipped
        last = winner or (calls[-1] if calls else None)
        if last is not None:
            out["gen_ai.provider.name"] = self._place(last.deployment).provider
        if winner is not None:
            out["failover.deployment"] = winner.deployment
            if winner.route != trace.route:
                out["failover.fallback_route"] = winner.route
            out.update(response_attributes(winner.answer))
        elif kind is not Kind.CANCELLED:
            out["error.type"] = kind.value
        return out

    def _skips(self, trace: Trace, ended: int) -> list[tuple[str, dict[str, AttributeValue], int]]:
        """An event per candidate passed over, timed at the call made right after it."""
        events: list[tuple[str, dict[str, AttributeValue], int]] = []
        at = ended
        for attempt in reversed(trace.attempts):
            if attempt.skipped is None:
                if attempt.started is not None:
                    at = self._ns(attempt.started)
                continue
            attributes: dict[str, AttributeValue] = {
                "failover.route": attempt.route,
                "failover.deployment": attempt.deployment,
                "failover.skip_reason": attempt.skipped.value,
            }
            events.append(("failover.skipped", attributes, at))
        events.reverse()
        return events

    def _place(self, deployment: str) -> Place:
        found = self._places.get(deployment)
        if found is None:
            router = self.router
            found = place_of(deployment, router.deployments().get(deployment), router.config)
            if len(self._places) < _MAX_PLACES:
                self._places[deployment] = found
        return found

    # -- helpers --------------------------------------------------------------------------

    def _request_of(self, attempt: Attempt) -> _Request | None:
        """The open request an attempt belongs to: the current one, almost always."""
        current = otel_context.get_value(_REQUEST_KEY)
        if isinstance(current, _Request) and _holds(current.trace, attempt):
            return current
        for request in self._open.values():  # an attempt ended outside its request's task
            if _holds(request.trace, attempt):
                return request
        return None

    def _ns(self, when: float) -> int:
        """Wall-clock nanoseconds of a time on the router's clock."""
        return int((self.clock.wall() - (self.clock.now() - when)) * 1e9)

    def __repr__(self) -> str:
        state = "attached" if self._attached else "closed"
        return f"<Tracing {state} open={len(self._open)}>"


def propagate_fields() -> set[str]:
    """The header names the global propagator reads (`traceparent`, `tracestate`, ...)."""
    return set(otel_propagate.get_global_textmap().fields)


def _holds(trace: Trace, attempt: Attempt) -> bool:
    return any(a is attempt for a in reversed(trace.attempts))


def _task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop
        return None


def _version() -> str:
    try:
        return metadata.version("failover")
    except metadata.PackageNotFoundError:
        return "0"
