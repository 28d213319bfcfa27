"""Fault injection around any deployment: each fault type, time windows, runtime switching."""

from __future__ import annotations

import asyncio
import logging
import random
import statistics
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from failover import Route, Router, Timeouts
from failover.chaos import (
    ChaosConfig,
    CutStreamFault,
    Delay,
    ErrorFault,
    FaultInjector,
    HangFault,
    LatencyFault,
    MalformedEventFault,
    NoTerminatorFault,
    RateLimitFault,
    RefusePrefillFault,
    ResetFault,
    StallStreamFault,
    wrap_if_configured,
)
from failover.clock import FakeClock, deadline_scope
from failover.errors import (
    AttemptTimeout,
    AuthFailed,
    BadRequest,
    ConnectionFailed,
    Kind,
    Overloaded,
    ProviderError,
    RateLimited,
    ServerError,
)
from failover.events import StreamBreak
from failover.openai_shapes import completion_from_text
from failover.providers.simulated import SimulatedProvider
from failover.reply import StreamReply
from failover.resilience.streams import Prefill
from failover.types import BaseDeployment, Chunk, Completion

HELLO = {"messages": [{"role": "user", "content": "hi"}]}
EXAMPLE = {
    "faults": [
        {"type": "error", "status": 503, "rate": 0.3},
        {"type": "latency", "dist": "lognormal", "median": "200ms", "sigma": 0.5},
        {"type": "hang", "rate": 0.1, "start": "30s", "end": "60s"},
        {"type": "rate_limit", "retry_after": "2s"},
        {"type": "cut_stream", "after_chunks": 3},
        {"type": "stall_stream", "after_chunks": 2, "duration": "30s"},
        {"type": "malformed_event", "after_chunks": 2, "count": 2},
        {"type": "no_terminator"},
        {"type": "refuse_prefill"},
        {"type": "reset"},
    ]
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def inner(clock: FakeClock) -> SimulatedProvider:
    return SimulatedProvider(
        name="sim/m",
        model="m",
        weight=3.0,
        timeout=9.0,
        options={"reply": "a b c d e"},
        clock=clock,
    )


def inject(inner: Any, clock: FakeClock, *faults: Any, seed: int = 1) -> FaultInjector:
    return FaultInjector(inner, list(faults), clock=clock, rng=random.Random(seed))


async def chunks_of(injector: FaultInjector) -> list[Chunk]:
    return [c async for c in injector.stream(HELLO)]


async def outcome(injector: FaultInjector) -> str:
    try:
        await injector.complete(HELLO)
    except Exception as exc:
        return type(exc).__name__
    return "ok"


# -- config --


def test_config_parses_every_fault_type() -> None:
    """The documented example parses into one fault of each type, durations in seconds."""
    faults = ChaosConfig.model_validate(EXAMPLE).faults
    kinds = [ErrorFault, LatencyFault, HangFault, RateLimitFault, CutStreamFault]
    kinds += [StallStreamFault, MalformedEventFault, NoTerminatorFault, RefusePrefillFault]
    assert [type(f) for f in faults] == [*kinds, ResetFault]
    assert isinstance(faults[1], LatencyFault)
    assert (faults[1].median, faults[2].start, faults[2].end) == (0.2, 30.0, 60.0)


def test_unknown_fault_type_names_the_valid_ones() -> None:
    """A fault of an unknown type fails with the list of types."""
    with pytest.raises(ValidationError, match="a fault needs a type: error, latency, hang"):
        ChaosConfig.model_validate({"faults": [{"type": "meteor"}]})


def test_unknown_fault_field_is_rejected() -> None:
    """A misspelt field of a fault is an error, not silently ignored."""
    with pytest.raises(ValidationError, match=r"faults\.0\.reset\.rat\s+Extra inputs"):
        ChaosConfig.model_validate({"faults": [{"type": "reset", "rat": 0.5}]})


def test_bad_duration_is_explained() -> None:
    """A duration that cannot be read says which forms are accepted."""
    with pytest.raises(ValidationError, match="invalid duration '2 parsecs'"):
        ChaosConfig.model_validate({"faults": [{"type": "rate_limit", "retry_after": "2 parsecs"}]})


def test_fields_of_another_distribution_are_rejected() -> None:
    """A latency field that its dist does not use is an error."""
    with pytest.raises(ValidationError, match="low not used by dist lognormal"):
        LatencyFault.model_validate({"dist": "lognormal", "median": 1, "low": 2})


def test_window_must_end_after_it_starts() -> None:
    """An outage window whose end is not after its start is rejected."""
    with pytest.raises(ValidationError, match="end must be after start"):
        ChaosConfig.model_validate({"faults": [{"type": "hang", "start": "60s", "end": "30s"}]})


def test_rate_above_one_is_rejected() -> None:
    """A fault rate must be a fraction between 0 and 1 (or 0% to 100%)."""
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        ChaosConfig.model_validate({"faults": [{"type": "reset", "rate": "150%"}]})


def test_fault_with_kind_and_no_type_is_an_error_fault() -> None:
    """{kind: server_error, ...} without a type reads as an error fault."""
    fault = ChaosConfig.model_validate({"faults": [{"kind": "server_error", "end": "40s"}]}).faults[
        0
    ]
    assert isinstance(fault, ErrorFault)
    assert fault.end == 40.0


def test_bare_list_is_a_config() -> None:
    """A plain list of faults is accepted where a config is expected."""
    assert len(ChaosConfig.model_validate([{"type": "reset"}]).faults) == 1


# -- error faults --


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ({"status": 500}, ServerError, 500),
        ({"status": 503}, Overloaded, 503),
        ({"status": 529}, Overloaded, 529),
        ({"status": 429}, RateLimited, 429),
        ({"kind": "auth"}, AuthFailed, 401),
        ({}, ServerError, 500),
    ],
)
async def test_error_fault_raises_the_class_of_its_status(
    inner: SimulatedProvider,
    clock: FakeClock,
    fault: dict[str, Any],
    error: type[ProviderError],
    status: int,
) -> None:
    """An error fault raises the failover error its status or kind classifies as."""
    injector = inject(inner, clock, {"type": "error", **fault})
    with pytest.raises(error) as info:
        await injector.complete(HELLO)
    assert (info.value.status, info.value.deployment) == (status, "sim/m")
    assert inner.calls == 0


async def test_error_rate_fails_about_that_share(
    inner: SimulatedProvider, clock: FakeClock
) -> None:
    """An error fault at rate 0.3 fails roughly 30% of calls and lets the rest through."""
    injector = inject(inner, clock, {"type": "error", "rate": 0.3})
    outcomes = [await outcome(injector) for _ in range(300)]
    assert 60 <= outcomes.count("ServerError") <= 120
    assert inner.calls == outcomes.count("ok")


async def test_zero_rate_never_fires(inner: SimulatedProvider, clock: FakeClock) -> None:
    """A fault at rate 0 is configured but never injected."""
    injector = inject(inner, clock, {"type": "reset", "rate": 0})
    assert {await outcome(injector) for _ in range(50)} == {"ok"}


async def test_seed_makes_failures_reproducible(inner: SimulatedProvider, clock: FakeClock) -> None:
    """Two injectors with the same config seed fail the same calls."""
    config = {"seed": 42, "faults": [{"type": "reset", "rate": 0.5}]}
    runs = []
    for _ in range(2):
        injector = FaultInjector(inner, config, clock=clock)
        runs.append([await outcome(injector) for _ in range(40)])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 2


async def test_reset_raises_connection_failed(inner: SimulatedProvider, clock: FakeClock) -> None:
    """A reset fault fails the call as ConnectionFailed without reaching the deployment."""
    with pytest.raises(ConnectionFailed, match="reset"):
        await inject(inner, clock, ResetFault()).complete(HELLO)
    assert inner.calls == 0


async def test_rate_limit_carries_retry_after(inner: SimulatedProvider, clock: FakeClock) -> None:
    """A rate_limit fault raises RateLimited with status 429 and its Retry-After."""
    with pytest.raises(RateLimited) as info:
        await inject(inner, clock, {"type": "rate_limit", "retry_after": "2s"}).complete(HELLO)
    assert (info.value.status, info.value.retry_after) == (429, 2.0)


# -- latency and hangs --


async def test_fixed_latency_is_added(inner: SimulatedProvider, clock: FakeClock) -> None:
    """A fixed latency fault delays the answer by exactly its value."""
    injector = inject(inner, clock, {"type": "latency", "value": "1.5s"})
    start = clock.now()
    async with clock.autojump():
        assert (await injector.complete(HELLO)).text == "a b c d e"
    assert clock.now() - start == pytest.approx(1.5)


async def test_latency_delays_the_first_stream_chunk(
    inner: SimulatedProvider, clock: FakeClock
) -> None:
    """A latency fault on a stream delays its first chunk."""
    injector = inject(inner, clock, {"type": "latency", "value": 2})
    start = clock.now()
    async with clock.autojump():
        first = await anext(aiter(injector.stream(HELLO)))
    assert first.body["choices"][0]["delta"]["role"] == "assistant"
    assert clock.now() - start == 2.0


def test_uniform_delay_stays_within_bounds() -> None:
    """A uniform delay draws between low and high."""
    delay = Delay.model_validate({"dist": "uniform", "low": "100ms", "high": "300ms"})
    draws = [delay.sample(random.Random(i)) for i in range(200)]
    assert 0.1 <= min(draws) < 0.12 and 0.28 < max(draws) <= 0.3


def test_lognormal_delay_centres_on_its_median() -> None:
    """A lognormal delay's draws have about the configured median."""
    delay = Delay.model_validate({"dist": "lognormal", "median": "200ms", "sigma": 0.5})
    rng = random.Random(3)
    assert statistics.median(delay.sample(rng) for _ in range(2001)) == pytest.approx(0.2, rel=0.1)


def test_lognormal_delay_is_capped_by_max() -> None:
    """A lognormal delay with max never draws above it."""
    delay = Delay.model_validate({"dist": "lognormal", "median": 1, "sigma": 3, "max": 2})
    rng = random.Random(5)
    assert max(delay.sample(rng) for _ in range(500)) == 2.0


async def test_hang_waits_until_cancelled(inner: SimulatedProvider, clock: FakeClock) -> None:
    """A hung call has not answered an hour later and ends only when cancelled."""
    task = asyncio.create_task(inject(inner, clock, HangFault()).complete(HELLO))
    await clock.advance(3600)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert inner.calls == 0


async def test_hang_is_ended_by_the_callers_deadline(
    inner: SimulatedProvider, clock: FakeClock
) -> None:
    """A caller's deadline on the same clock ends a hang at that deadline."""
    injector = inject(inner, clock, HangFault())
    start = clock.now()
    async with clock.autojump():
        with pytest.raises(TimeoutError):
            async with deadline_scope(clock, start + 5):
                await injector.complete(HELLO)
    assert clock.now() - start == 5.0


async def test_unattended_hang_ends_as_a_timeout(
    inner: SimulatedProvider, clock: FakeClock
) -> None:
    """Left alone in virtual time, a hang eventually raises AttemptTimeout instead of answering."""
    async with clock.autojump():
        with pytest.raises(AttemptTimeout):
            await inject(inner, clock, HangFault()).complete(HELLO)


# -- streams --


async def test_cut_stream_fails_after_n_chunks(inner: SimulatedProvider, clock: FakeClock) -> None:
    """A cut_stream fault lets exactly after_chunks chunks through, then ConnectionFailed."""
    received: list[Chunk] = []
    with pytest.raises(ConnectionFailed, match="after 3 chunks"):
        async for chunk in inject(inner, clock, CutStreamFault(after_chunks=3)).stream(HELLO):
            received.append(chunk)
    assert len(received) == 3


async def test_cut_stream_spares_complete(inner: SimulatedProvider, clock: FakeClock) -> None:
    """A cut_stream fault only affects streams."""
    assert await outcome(inject(inner, clock, CutStreamFault(after_chunks=0))) == "ok"


async def test_short_stream_ends_before_the_cut(inner: SimulatedProvider, clock: FakeClock) -> None:
    """A stream with no more chunks than after_chunks finishes normally."""
    chunks = await chunks_of(inject(inner, clock, CutStreamFault(after_chunks=50)))
    assert chunks[-1].body["choices"][0]["finish_reason"] == "stop"


async def test_error_fault_fails_a_stream_before_its_first_chunk(
    inner: SimulatedProvider, clock: FakeClock
) -> None:
    """Faults other than cuts fail a stream before anything is yielded."""
    with pytest.raises(Overloaded):
        await chunks_of(inject(inner, clock, ErrorFault(status=529)))
    assert inner.stream_calls == 0


async def test_breaking_out_closes_the_inner_stream(clock: FakeClock) -> None:
    """Leaving a wrapped stream early closes the inner stream."""
    closed = []

    class Source(BaseDeployment):
        name = model = "src"

        async def complete(self, request: dict[str, Any]) -> Completion:
            return completion_from_text("x", model="m")

        async def stream(self, request: dict[str, Any]) -> AsyncIterator[Chunk]:
            try:
                for i in range(10):
                    yield Chunk({"n": i})
            finally:
                closed.append(True)

    stream = inject(Source(), clock).stream(HELLO)
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    assert closed == [True]


# -- faults inside a stream --


def readable(chunks: list[Chunk]) -> list[Chunk]:
    """The chunks whose body parses."""
    out = []
    for chunk in chunks:
        try:
            chunk.body  # noqa: B018 -- parsing is the point
        except ValueError:
            continue
        out.append(chunk)
    return out


def finish_of(chunk: Chunk) -> str | None:
    choices = chunk.body["choices"]
    return choices[0]["finish_reason"] if choices else None


async def test_stall_stream_goes_silent_then_drops(
    inner: SimulatedProvider, clock: FakeClock
) -> None:
    """A stall_stream fault passes after_chunks chunks, sends nothing for its duration on the
    injector's clock, then drops the connection."""
    injector = inject(inner, clock, StallStreamFault(after_chunks=3, duration=20))
    received: list[Chunk] = []
    start = clock.now()
    async with clock.autojump():
        with pytest.raises(ConnectionFailed, match="silent for 20s after 3 chunks"):
            async for chunk in injector.stream(HELLO):
                received.append(chunk)
    assert len(received) == 3 and clock.now() - start == 20
    assert injector.injected == {"stall_stream": 1}


async def test_a_stall_ends_when_the_reader_gives_up(
    inner: SimulatedProvider, clock: FakeClock
) -> None:
    """A reader's silence limit on the same clock ends a long stall at that limit."""
    stream = aiter(
        inject(inner, clock, StallStreamFault(after_chunks=1, duration=3600)).stream(HELLO)
    )
    await anext(stream)
    start = clock.now()
    async with clock.autojump():
        with pytest.raises(TimeoutError):
            async with deadline_scope(clock, start + 5):
                await anext(stream)
    assert clock.now() - start == 5


async def test_the_earliest_break_of_a_stream_wins(
    inner: SimulatedProvider, clock: FakeClock
) -> None:
    """With a stall due after 4 chunks and a cut after 2, the stream is cut after 2 at once."""
    injector = inject(
        inner, clock, StallStreamFault(after_chunks=4), CutStreamFault(after_chunks=2)
    )
    start = clock.now()
    with pytest.raises(ConnectionFailed, match="cut after 2 chunks"):
        await chunks_of(injector)
    assert clock.now() == start and injector.injected == {"cut_stream": 1}


async def test_malformed_events_are_slipped_into_a_whole_stream(
    inner: SimulatedProvider, clock: FakeClock
) -> None:
    """A malformed_event fault puts `count` unreadable chunks after after_chunks chunks; every
    real chunk still arrives, up to the finish reason."""
    plain = await chunks_of(inject(inner, clock))
    injector = inject(inner, clock, MalformedEventFault(after_chunks=2, count=2))
    chunks = await chunks_of(injector)
    assert len(chunks) == len(plain) + 2
    for bad in chunks[2:4]:
        with pytest.raises(ValueError):
            bad.body  # noqa: B018 -- parsing is the point
    assert [c.body["choices"] for c in readable(chunks)] == [c.body["choices"] for c in plain]
    assert injector.injected == {"malformed_event": 2}


async def test_no_terminator_ends_the_stream_at_its_finish_reason(
    inner: SimulatedProvider, clock: FakeClock
) -> None:
    """With no_terminator nothing follows the chunk carrying the finish reason: the usage
    chunk the caller asked for never comes."""
    request = {**HELLO, "stream_options": {"include_usage": True}}
    whole = [c async for c in inner.stream(request)]
    assert whole[-1].body["usage"] and finish_of(whole[-2]) == "stop"
    injector = inject(inner, clock, NoTerminatorFault())
    chunks = [c async for c in injector.stream(request)]
    assert len(chunks) == len(whole) - 1 and finish_of(chunks[-1]) == "stop"
    assert injector.injected == {"no_terminator": 1}


async def test_stream_faults_spare_whole_completions(
    inner: SimulatedProvider, clock: FakeClock
) -> None:
    """Faults inside a stream leave complete() calls and probes alone."""
    injector = inject(
        inner, clock, StallStreamFault(after_chunks=0), MalformedEventFault(), NoTerminatorFault()
    )
    assert await outcome(injector) == "ok"
    await injector.probe()
    assert injector.injected == {}


PREFILLED = {
    "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "a b"},
    ]
}


async def test_refuse_prefill_refuses_a_trailing_assistant_message(
    inner: SimulatedProvider, clock: FakeClock
) -> None:
    """refuse_prefill answers a request ending with an assistant message with a 400, as a
    provider without prefill does, before the deployment is called."""
    injector = inject(inner, clock, RefusePrefillFault())
    with pytest.raises(BadRequest) as info:
        await injector.complete(PREFILLED)
    assert info.value.status == 400 and "prefill" in info.value.message
    with pytest.raises(BadRequest):
        await anext(aiter(injector.stream(PREFILLED)))
    assert (inner.calls, inner.stream_calls) == (0, 0)
    assert injector.injected == {"refuse_prefill": 2}


async def test_refuse_prefill_lets_other_requests_through(
    inner: SimulatedProvider, clock: FakeClock
) -> None:
    """A request ending with a user message, a probe and embeddings are not refused."""
    injector = inject(inner, clock, RefusePrefillFault())
    assert await outcome(injector) == "ok"
    assert finish_of((await chunks_of(injector))[-1]) == "stop"
    await injector.probe()
    await injector.embeddings({"input": "x"})
    assert injector.injected == {}


def test_the_injector_keeps_the_inner_deployments_prefill(
    inner: SimulatedProvider, clock: FakeClock
) -> None:
    """A wrapped deployment continues answers as the one inside does, so a recovery can
    continue on it."""
    inner.update(prefill="continue_final_message")
    assert inject(inner, clock).prefill is Prefill.CONTINUE_FINAL_MESSAGE


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"type": "stall_stream", "duration": 0}, "duration"),
        ({"type": "stall_stream", "duration": "soon"}, "invalid duration 'soon'"),
        ({"type": "malformed_event", "count": 0}, "count"),
        ({"type": "cut_stream", "after_chunks": -1}, "after_chunks"),
        ({"type": "no_terminator", "after_chunks": 2}, "Extra inputs"),
        ({"type": "refuse_prefill", "duration": "1s"}, "Extra inputs"),
    ],
)
def test_bad_stream_faults_are_rejected(fault: dict[str, Any], message: str) -> None:
    """Stream faults check their fields: a positive duration, at least one malformed event,
    no field of another type."""
    with pytest.raises(ValidationError, match=message):
        ChaosConfig.model_validate({"faults": [fault]})


def test_the_new_fault_types_are_named_when_the_type_is_unknown() -> None:
    """The list of valid types in the error includes the stream faults."""
    with pytest.raises(ValidationError, match="stall_stream, malformed_event, no_terminator"):
        ChaosConfig.model_validate({"faults": [{"type": "stall"}]})


# -- stream faults against the router: what they are for --

REPLY = "one two three four five six seven eight"
STREAM = {"messages": [{"role": "user", "content": "count"}], "stream": True}


def drill(
    clock: FakeClock, primary: list[Any], backup: list[Any] | None = None
) -> tuple[Router, FaultInjector, FaultInjector]:
    """A router over two simulated deployments answering REPLY, each under its faults."""

    def deployment(name: str, faults: list[Any]) -> FaultInjector:
        sim = SimulatedProvider(name=name, model="m", options={"reply": REPLY}, clock=clock)
        return FaultInjector(sim, faults, clock=clock, rng=random.Random(1))

    a, b = deployment("a", primary), deployment("b", backup or [])
    timeouts = Timeouts(stall=2.0, learn=None)
    return Router({"chat": Route([a, b])}, clock=clock, timeouts=timeouts), a, b


async def streamed(reply: StreamReply) -> str:
    """The text of a stream reply."""
    out = ""
    async for chunk in reply:
        for choice in chunk.body["choices"]:
            out += choice["delta"].get("content") or ""
    return out


async def test_a_cut_stream_is_continued_on_the_backup(clock: FakeClock) -> None:
    """Cut mid-answer, the stream is continued on the backup: the caller gets it whole."""
    router, _, backup = drill(clock, [CutStreamFault(after_chunks=4)])
    breaks: list[StreamBreak] = []
    router.hooks.stream.append(breaks.append)
    reply = await router.open_stream("chat", STREAM)
    assert await streamed(reply) == REPLY
    assert reply.recoveries == 1 and (reply.first_deployment, reply.deployment) == ("a", "b")
    assert [(e.deployment, e.outcome, e.by) for e in breaks] == [("a", "continued", "b")]
    assert backup.inner.last_request["messages"][-1]["content"] == "one two three"  # type: ignore[attr-defined,index]


async def test_a_stalled_stream_is_given_up_at_the_silence_limit(clock: FakeClock) -> None:
    """A stream silent for a minute is given up after the 2 s silence limit and finished on
    the backup: the caller waits the limit, not the stall."""
    router, _, _ = drill(clock, [StallStreamFault(after_chunks=3, duration=60)])
    start = clock.now()
    async with clock.autojump():
        reply = await router.open_stream("chat", STREAM)
        assert await streamed(reply) == REPLY
    assert reply.recoveries == 1 and 2 <= clock.now() - start < 3


async def test_a_refused_prefill_is_restarted_and_matched(clock: FakeClock) -> None:
    """The backup refuses the prefill: the answer is regenerated there, held back until it
    caught up, and finished; the next break goes straight to the restart."""
    router, _, backup = drill(clock, [CutStreamFault(after_chunks=4)], [RefusePrefillFault()])
    breaks: list[StreamBreak] = []
    router.hooks.stream.append(breaks.append)
    for _ in range(2):
        reply = await router.open_stream("chat", STREAM)
        assert await streamed(reply) == REPLY
    assert [e.outcome for e in breaks] == ["restarted", "restarted"]
    assert backup.injected == {"refuse_prefill": 1}


async def test_quirky_streams_need_no_recovery(clock: FakeClock) -> None:
    """Malformed events and a missing terminator are tolerated: the answer arrives whole
    from the primary, nothing broke and nothing is blamed."""
    quirks = [MalformedEventFault(after_chunks=3), NoTerminatorFault()]
    router, primary, _ = drill(clock, quirks)
    breaks: list[StreamBreak] = []
    router.hooks.stream.append(breaks.append)
    request = {**STREAM, "stream_options": {"include_usage": True}}
    reply = await router.open_stream("chat", request)
    assert await streamed(reply) == REPLY
    assert reply.recoveries == 0 and breaks == []
    assert [a.kind for a in reply.trace.attempts] == [Kind.OK]
    assert primary.injected == {"malformed_event": 1, "no_terminator": 1}


# -- time windows and runtime switching --


async def test_outage_window_is_active_only_between_start_and_end(
    inner: SimulatedProvider, clock: FakeClock
) -> None:
    """A fault with start 10s and end 40s fails calls only in that window."""
    injector = inject(inner, clock, {"kind": "server_error", "start": "10s", "end": "40s"})
    seen = []
    for at in (0, 9.9, 10, 39.9, 40, 100):
        await clock.advance(at - (clock.now() - 1000.0))
        seen.append(await outcome(injector))
    assert seen == ["ok", "ok", "ServerError", "ServerError", "ok", "ok"]


async def test_set_faults_restarts_the_windows(inner: SimulatedProvider, clock: FakeClock) -> None:
    """Windows of faults set at runtime count from the moment they were set."""
    injector = inject(inner, clock)
    await clock.advance(500)
    injector.set_faults([{"type": "reset", "end": "30s"}])
    assert await outcome(injector) == "ConnectionFailed"
    await clock.advance(30)
    assert await outcome(injector) == "ok"


async def test_clear_stops_injection(inner: SimulatedProvider, clock: FakeClock) -> None:
    """clear() removes every fault."""
    injector = inject(inner, clock, ResetFault())
    injector.clear()
    assert (injector.enabled, await outcome(injector)) == (False, "ok")


async def test_disabling_pauses_and_enabling_resumes(
    inner: SimulatedProvider, clock: FakeClock
) -> None:
    """enabled=False keeps the faults but injects nothing until enabled again."""
    injector = inject(inner, clock, ResetFault())
    injector.enabled = False
    assert await outcome(injector) == "ok"
    injector.enabled = True
    assert await outcome(injector) == "ConnectionFailed"


async def test_disabled_config_injects_nothing(inner: SimulatedProvider, clock: FakeClock) -> None:
    """A config with enabled false wraps the deployment without injecting."""
    injector = FaultInjector(inner, {"enabled": False, "faults": [{"type": "reset"}]}, clock=clock)
    assert (injector.enabled, await outcome(injector)) == (False, "ok")


async def test_describe_round_trips_through_the_config(
    inner: SimulatedProvider, clock: FakeClock
) -> None:
    """describe() is JSON-able and its faults parse back into the same faults."""
    injector = FaultInjector(inner, EXAMPLE, clock=clock)
    described = orjson.loads(orjson.dumps(injector.describe()))
    again = ChaosConfig.model_validate({"faults": described["faults"]})
    assert tuple(again.faults) == injector.faults


async def test_describe_reports_active_faults_and_counts(
    inner: SimulatedProvider, clock: FakeClock
) -> None:
    """describe() says which faults are active now and how often each fired."""
    injector = inject(inner, clock, ResetFault(), ErrorFault(start=60))
    await outcome(injector)
    described = injector.describe()
    assert described["active"] == [True, False]
    assert described["injected"] == {"reset": 1}


# -- probes, embeddings and the wrapped interface --


async def test_faults_fail_probes_too(inner: SimulatedProvider, clock: FakeClock) -> None:
    """An outage fails health probes, as a real one would."""
    with pytest.raises(Overloaded):
        await inject(inner, clock, ErrorFault(status=503)).probe()


async def test_probe_false_keeps_probes_passing(inner: SimulatedProvider, clock: FakeClock) -> None:
    """A fault with probe false leaves health probes alone."""
    await inject(inner, clock, ErrorFault(status=503, probe=False)).probe()
    assert inner.probe_calls == 1


async def test_embeddings_get_faults(inner: SimulatedProvider, clock: FakeClock) -> None:
    """Embeddings calls are subject to the same faults."""
    with pytest.raises(ConnectionFailed):
        await inject(inner, clock, ResetFault()).embeddings({"input": "x"})


async def test_exposes_the_inner_deployment(inner: SimulatedProvider, clock: FakeClock) -> None:
    """The injector is a deployment with the inner's name, model, weight and timeout."""
    injector = inject(inner, clock)
    assert isinstance(injector, BaseDeployment)
    assert (injector.name, injector.model, injector.weight, injector.timeout) == (
        "sim/m",
        "m",
        3.0,
        9.0,
    )
    await injector.aclose()
    assert inner.closed


async def test_wraps_a_bare_deployment(clock: FakeClock) -> None:
    """A deployment implementing only complete/stream keeps the base's no-op probe and has no
    embeddings."""

    class Bare(BaseDeployment):
        name = model = "bare"

        async def complete(self, request: dict[str, Any]) -> Completion:
            return completion_from_text("x", model="m")

        def stream(self, request: dict[str, Any]) -> AsyncIterator[Chunk]:
            raise NotImplementedError

    injector = inject(Bare(), clock)
    await injector.probe()
    assert (injector.model, await outcome(injector)) == ("bare", "ok")
    with pytest.raises(BadRequest):
        await injector.embeddings({"input": "x"})


# -- logging and the factory helper --


async def test_warns_loudly_once(
    inner: SimulatedProvider, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Enabled chaos logs one WARNING on failover.chaos, not one per call."""
    with caplog.at_level(logging.WARNING, logger="failover.chaos"):
        injector = inject(inner, clock, ErrorFault(status=503, rate=0.5))
        for _ in range(5):
            await outcome(injector)
    assert [(r.name, r.levelno) for r in caplog.records] == [("failover.chaos", logging.WARNING)]
    assert "CHAOS ENABLED on sim/m" in caplog.text and "error 503 50%" in caplog.text


async def test_no_warning_without_faults(
    inner: SimulatedProvider, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An injector with nothing to inject stays quiet."""
    with caplog.at_level(logging.WARNING, logger="failover.chaos"):
        inject(inner, clock)
    assert caplog.records == []


def test_wrap_without_chaos_returns_the_adapter(inner: SimulatedProvider) -> None:
    """No chaos config leaves the adapter unwrapped."""
    assert wrap_if_configured(inner, None) is inner


def test_wrap_with_chaos_returns_an_injector(inner: SimulatedProvider, clock: FakeClock) -> None:
    """A chaos config wraps the adapter in a FaultInjector holding its faults."""
    wrapped = wrap_if_configured(inner, ChaosConfig.model_validate(EXAMPLE), clock=clock)
    assert isinstance(wrapped, FaultInjector)
    assert len(wrapped.faults) == 10 and wrapped.inner is inner


def test_wrap_always_wraps_without_faults(inner: SimulatedProvider) -> None:
    """always=True wraps a faultless injector so faults can be set later."""
    wrapped = wrap_if_configured(inner, None, always=True)
    assert isinstance(wrapped, FaultInjector) and not wrapped.enabled
