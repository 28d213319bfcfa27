"""`Tracing`: a request span with a child span per attempt, in the GenAI conventions, collected
by the OpenTelemetry SDK's in-memory exporter; times come from the router's fake clock."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from obs_helpers import HI, two_routes
from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

from failover import AllDeploymentsFailed, FakeClock, HedgePolicy, Kind, Route, Router, Timeouts
from failover.observability.tracing import Tracing, inject_headers
from failover.resilience.streams import Prefill
from failover.testing import ScriptedDeployment, fail, ok
from failover.types import Completion, Request

STREAM = {**HI, "stream": True}
WORDS = ("The ", "quick ", "brown ", "fox.")


Traced = Callable[[Router], Tracing]


@pytest.fixture
def traced(provider: TracerProvider) -> Iterator[Traced]:
    """Trace a router into `provider`; every `Tracing` made is closed after the test."""
    built: list[Tracing] = []

    def trace(router: Router) -> Tracing:
        built.append(Tracing(router, provider))
        return built[-1]

    yield trace
    for tracing in built:
        tracing.close()


def spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return list(exporter.get_finished_spans())


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in spans(exporter) if s.name == name]


def request_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    """The one request span (it carries the request id)."""
    [found] = [s for s in spans(exporter) if "failover.request_id" in (s.attributes or {})]
    return found


def attempt_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    """Attempt spans in the order they started."""
    found = [s for s in spans(exporter) if s.kind is SpanKind.CLIENT]
    return sorted(found, key=lambda s: s.start_time or 0)


def attr(span: ReadableSpan, key: str) -> Any:
    assert span.attributes is not None
    return span.attributes.get(key)


# -- the span tree ----------------------------------------------------------------------------


async def test_a_request_is_a_span_with_a_child_per_attempt(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """Two tries on the primary and the backup's answer: one trace, four spans, the attempts
    children of the request."""
    router = two_routes(clock, primary=[fail(500)])
    traced(router)
    async with clock.autojump():
        await router.complete("smart", HI)
    request = request_span(exporter)
    attempts = attempt_spans(exporter)
    assert len(attempts) == 3
    assert {s.context.trace_id for s in spans(exporter)} == {request.context.trace_id}
    assert all(s.parent is not None and s.parent.span_id == request.context.span_id
               for s in attempts)  # fmt: skip
    assert request.parent is None


async def test_spans_are_named_after_operation_and_model(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """The request span is "chat {route}", each attempt "chat {the deployment's model}"."""
    router = two_routes(clock, primary=[fail(500)])
    traced(router)
    async with clock.autojump():
        await router.complete("smart", HI)
    assert request_span(exporter).name == "chat smart"
    assert [s.name for s in attempt_spans(exporter)] == ["chat primary"] * 2 + ["chat backup"]


async def test_embeddings_are_their_own_operation(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """An embeddings request is named and marked `embeddings`."""
    router = two_routes(clock)
    traced(router)
    await router.embeddings("smart", {"input": "hi"})
    request = request_span(exporter)
    assert request.name == "embeddings smart"
    assert attr(request, "gen_ai.operation.name") == "embeddings"
    assert attr(attempt_spans(exporter)[0], "gen_ai.operation.name") == "embeddings"


async def test_span_times_come_from_the_router_clock(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """An attempt of 250 ms after a 100 ms failure is placed exactly, in wall-clock time."""
    router = two_routes(clock, primary=[fail(500, latency=0.1)], backup=[ok(latency=0.25)])
    traced(router)
    wall_start = clock.wall()
    async with clock.autojump():
        await router.complete("smart", HI)
    request = request_span(exporter)
    first, *_, last = attempt_spans(exporter)
    ns = 1e9
    assert request.start_time == pytest.approx(wall_start * ns, abs=1000)
    assert first.start_time == pytest.approx(wall_start * ns, abs=1000)
    assert (first.end_time or 0) - (first.start_time or 0) == pytest.approx(0.1 * ns, abs=1000)
    assert (last.end_time or 0) - (last.start_time or 0) == pytest.approx(0.25 * ns, abs=1000)
    assert (request.end_time or 0) == pytest.approx(last.end_time, abs=1000)


# -- attributes -------------------------------------------------------------------------------


async def test_the_request_span_says_how_it_ended(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """Route, request id, outcome, calls made, who answered and what it answered."""
    router = two_routes(clock, primary=[fail(500)])
    traced(router)
    async with clock.autojump():
        reply = await router.complete("smart", HI, request_id="req-1")
    request = request_span(exporter)
    assert request.kind is SpanKind.INTERNAL
    assert dict(request.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "smart",
        "gen_ai.provider.name": "backup",
        "gen_ai.response.model": "backup",
        "gen_ai.response.id": reply.body["id"],
        "gen_ai.usage.input_tokens": 0,
        "gen_ai.usage.output_tokens": 0,
        "gen_ai.response.finish_reasons": ("stop",),
        "failover.route": "smart",
        "failover.request_id": "req-1",
        "failover.outcome": "ok",
        "failover.attempts": 3,
        "failover.deployment": "backup",
    }
    assert request.status.status_code is StatusCode.UNSET


async def test_attempt_spans_say_what_each_call_did(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """Deployment, outcome, retry number, backoff, breaker state and the provider's status."""
    router = two_routes(clock, primary=[fail(503)])
    traced(router)
    async with clock.autojump():
        await router.complete("smart", HI)
    first, retry, answer = attempt_spans(exporter)
    assert attr(first, "failover.deployment") == "primary"
    assert attr(first, "failover.outcome") == "overloaded"
    assert attr(first, "http.response.status_code") == 503
    assert [attr(s, "failover.retry") for s in (first, retry, answer)] == [0, 1, 0]
    assert attr(first, "failover.backoff_ms") is None
    assert attr(retry, "failover.backoff_ms") > 0
    assert attr(answer, "failover.breaker.state") == "closed"
    assert attr(answer, "gen_ai.provider.name") == "backup"
    assert attr(answer, "gen_ai.request.model") == "backup"
    assert attr(answer, "failover.hedge") is False


async def test_a_failed_attempt_has_error_status_and_type(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """A failed call's span is ERROR with `error.type`, its message redacted."""
    router = two_routes(clock, primary=[fail(500, message="bad key sk-abcdefghijklmnopqrstuv")])
    traced(router)
    async with clock.autojump():
        await router.complete("smart", HI)
    failed = attempt_spans(exporter)[0]
    assert failed.status.status_code is StatusCode.ERROR
    assert attr(failed, "error.type") == "server_error"
    assert failed.status.description is not None
    assert failed.status.description.startswith("server_error: bad key")
    assert "abcdefghijklmnop" not in failed.status.description
    assert attempt_spans(exporter)[-1].status.status_code is StatusCode.UNSET


async def test_a_failed_request_has_error_status(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """When nothing answered, the request span is ERROR with the last failure's kind."""
    failing = ScriptedDeployment("primary", fail(401), clock=clock)
    router = Router({"smart": Route([failing])}, clock=clock)
    traced(router)
    with pytest.raises(AllDeploymentsFailed):
        await router.complete("smart", HI)
    request = request_span(exporter)
    assert request.status.status_code is StatusCode.ERROR
    assert (attr(request, "error.type"), attr(request, "failover.outcome")) == ("auth", "auth")
    assert attr(request, "failover.deployment") is None


async def test_skipped_candidates_are_events_on_the_request(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """A candidate passed over (breaker open) is an event with its reason, and listed."""
    router = two_routes(clock)
    router.breaker("primary").force_open()
    traced(router)
    await router.complete("smart", HI)
    request = request_span(exporter)
    [event] = request.events
    assert event.name == "failover.skipped"
    assert dict(event.attributes or {}) == {
        "failover.route": "smart",
        "failover.deployment": "primary",
        "failover.skip_reason": "open",
    }
    assert attr(request, "failover.skipped") == ("primary:open",)
    assert event.timestamp == attempt_spans(exporter)[0].start_time


async def test_a_fallback_route_is_named(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """An answer from a fallback route names it, and its attempt carries its route."""
    router = two_routes(clock, primary=[fail(401)], backup=[fail(401)])
    traced(router)
    await router.complete("smart", HI)
    assert attr(request_span(exporter), "failover.fallback_route") == "fast"
    assert attr(attempt_spans(exporter)[-1], "failover.route") == "fast"


async def test_a_hedge_and_its_cancelled_rival_are_marked(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """The hedge that won is marked; the slow call it beat is `cancelled`, not an error."""
    primary = ScriptedDeployment("primary", ok("slow", latency=2.0), clock=clock)
    backup = ScriptedDeployment("backup", ok("fast", latency=0.01), clock=clock)
    router = Router({"chat": Route([primary, backup], hedge=HedgePolicy(delay=0.05))}, clock=clock)
    traced(router)
    async with clock.autojump():
        await router.complete("chat", HI)
    slow, hedge = attempt_spans(exporter)
    assert (attr(slow, "failover.outcome"), attr(slow, "failover.hedge")) == ("cancelled", False)
    assert slow.status.status_code is StatusCode.UNSET
    assert attr(slow, "error.type") is None
    assert (attr(hedge, "failover.outcome"), attr(hedge, "failover.hedge")) == ("ok", True)
    request = request_span(exporter).context.span_id
    assert [s.parent.span_id if s.parent else None for s in (slow, hedge)] == [request] * 2


async def test_a_recovered_stream_shows_the_break_and_the_recovery(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """The broken stream is an error span with the chars delivered, the recovery an attempt
    with its mode, and the break an event on the request, which ends ok."""
    primary = ScriptedDeployment(
        "primary", fail(Kind.CONNECTION, after_chunks=2, chunks=WORDS), clock=clock
    )
    backup = ScriptedDeployment("backup", ok(chunks=WORDS), clock=clock, prefill=Prefill.ASSISTANT)
    router = Router({"chat": Route([primary, backup])}, clock=clock, timeouts=Timeouts(learn=None))
    traced(router)
    reply = await router.open_stream("chat", STREAM)
    async for _ in reply:
        pass
    broken, recovery = attempt_spans(exporter)
    assert broken.status.status_code is StatusCode.ERROR
    assert (attr(broken, "error.type"), attr(broken, "failover.delivered_chars")) == (
        "connection",
        len("The quick "),
    )
    assert attr(recovery, "failover.recovery.mode") == "continue"
    assert attr(recovery, "failover.delivered_chars") == len("The quick ")
    request = request_span(exporter)
    assert attr(request, "failover.outcome") == "ok"
    [event] = request.events
    assert event.name == "failover.stream_break"
    assert dict(event.attributes or {}) == {
        "failover.deployment": "primary",
        "error.type": "connection",
        "failover.delivered_chars": len("The quick "),
        "failover.recovery.outcome": "continued",
        "failover.recovery.by": "backup",
    }


async def test_a_stream_reports_its_model_and_finish_reason(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """A stream's answer is read from what it delivered: model, id and finish reason."""
    router = two_routes(clock)
    traced(router)
    async for _ in router.stream("smart", STREAM):
        pass
    [attempt] = attempt_spans(exporter)
    assert attr(attempt, "gen_ai.response.model") == "primary"
    assert attr(attempt, "gen_ai.response.finish_reasons") == ("stop",)
    assert attr(attempt, "failover.ttft_ms") == 0.0
    assert attr(request_span(exporter), "gen_ai.response.id") == "chatcmpl-scripted"


# -- context ----------------------------------------------------------------------------------


async def test_the_request_continues_the_current_span(
    clock: FakeClock, provider: TracerProvider, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """Called inside the caller's own span, the request span is its child."""
    router = two_routes(clock)
    traced(router)
    with provider.get_tracer("app").start_as_current_span("handler") as outer:
        await router.complete("smart", HI)
    request = request_span(exporter)
    assert request.parent is not None
    assert request.parent.span_id == outer.get_span_context().span_id
    assert request.context.trace_id == outer.get_span_context().trace_id


async def test_a_client_traceparent_is_continued(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """A W3C traceparent and tracestate from a client make the request span's parent."""
    router = two_routes(clock)
    tracing = traced(router)
    headers = [
        (b"content-type", b"application/json"),
        (b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        (b"tracestate", b"vendor=abc"),
    ]
    token = tracing.continue_from(headers)
    assert token is not None
    try:
        await router.complete("smart", HI)
    finally:
        tracing.detach(token)
    request = request_span(exporter)
    assert request.parent is not None and request.parent.is_remote
    assert f"{request.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert f"{request.parent.span_id:016x}" == "b7ad6b7169203331"
    assert request.context.trace_state.get("vendor") == "abc"


async def test_without_traceparent_nothing_is_attached(clock: FakeClock, traced: Traced) -> None:
    """Headers without trace context give no token: there is nothing to continue."""
    tracing = traced(two_routes(clock))
    assert tracing.continue_from([(b"x-request-id", b"r1")]) is None


async def test_calls_made_by_the_request_see_its_span(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """A deployment's outgoing headers carry the request span as traceparent."""
    sent: list[dict[str, str]] = []

    class Recording(ScriptedDeployment):
        async def complete(self, request: Request) -> Completion:
            headers: dict[str, str] = {}
            inject_headers(headers)
            sent.append(headers)
            return await super().complete(request)

    router = Router({"chat": Route([Recording("d", clock=clock)])}, clock=clock)
    traced(router)
    await router.complete("chat", HI)
    request = request_span(exporter).context
    [headers] = sent
    _, trace_id, parent, flags = headers["traceparent"].split("-")
    assert (trace_id, parent) == (f"{request.trace_id:032x}", f"{request.span_id:016x}")
    assert int(flags, 16) & 1  # sampled


async def test_the_context_is_restored_after_the_request(clock: FakeClock, traced: Traced) -> None:
    """Once the request has ended its span is no longer current in the caller's task."""
    router = two_routes(clock)
    traced(router)
    before = otel_context.get_current()
    await router.complete("smart", HI)
    async for _ in router.stream("smart", STREAM):
        pass
    assert otel_context.get_current() == before
    assert not otel_trace.get_current_span().get_span_context().is_valid


async def test_requests_in_one_task_do_not_nest(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """A request made while a stream is still open is its sibling, not its child."""
    router = two_routes(clock)
    traced(router)
    stream = await router.open_stream("smart", STREAM)
    await router.complete("smart", HI)
    async for _ in stream:
        pass
    first, second = [s for s in spans(exporter) if s.name == "chat smart"]
    assert first.parent is None and second.parent is None


async def test_a_stream_ended_in_another_task_still_ends_its_span(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """A stream opened in one task and read in a task without its context: its attempt and
    request spans end all the same."""
    router = two_routes(clock)
    traced(router)
    stream = await router.open_stream("smart", STREAM)

    async def read() -> None:
        async for _ in stream:
            pass

    await asyncio.get_running_loop().create_task(read(), context=contextvars.Context())
    assert [s.name for s in spans(exporter)] == ["chat primary", "chat smart"]


# -- on and off -------------------------------------------------------------------------------


async def test_sampled_out_requests_make_no_spans(clock: FakeClock, exporter: Any) -> None:
    """A request the sampler drops costs no attempt spans, and still answers."""
    provider = TracerProvider(sampler=ALWAYS_OFF, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    router = two_routes(clock, primary=[fail(500)])
    tracing = Tracing(router, provider)
    try:
        async with clock.autojump():
            assert (await router.complete("smart", HI)).deployment == "backup"
    finally:
        tracing.close()
    assert spans(exporter) == []


async def test_close_unsubscribes(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """After `close` the router's hooks are as before, and requests make no spans."""
    router = two_routes(clock)
    before = {name: list(getattr(router.hooks, name)) for name in router.hooks.__slots__}
    traced(router).close()
    assert {name: list(getattr(router.hooks, name)) for name in router.hooks.__slots__} == before
    await router.complete("smart", HI)
    assert spans(exporter) == []


async def test_close_ends_the_spans_still_open(
    clock: FakeClock, traced: Traced, exporter: InMemorySpanExporter
) -> None:
    """A request still running when tracing closes has its span ended (and exported)."""
    router = two_routes(clock)
    tracing = traced(router)
    stream = await router.open_stream("smart", STREAM)
    tracing.close()
    assert [s.name for s in spans(exporter)] == ["chat smart"]
    await stream.aclose()
