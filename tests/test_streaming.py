"""Streams and the commit rule: invisible failover before the first content, and with
recovery turned off a distinguishable error after it (recovery itself: test_stream_recovery)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from failover import (
    BreakerPolicy,
    FakeClock,
    HedgePolicy,
    Kind,
    RetryPolicy,
    Route,
    Router,
    StreamInterrupted,
    Timeouts,
)
from failover.openai_shapes import ChunkMaker
from failover.resilience.streams import Resume, StreamPolicy
from failover.testing import ScriptedDeployment, fail, hang, ok
from failover.types import BaseDeployment, Chunk, Completion, Request

NO_RESUME = StreamPolicy(resume=Resume.OFF)

HI = {"messages": [{"role": "user", "content": "hi"}], "stream": True}


def text_of(chunks: list[dict[str, object]]) -> str:
    out = ""
    for chunk in chunks:
        for choice in chunk["choices"]:  # type: ignore[attr-defined]
            out += choice["delta"].get("content") or ""
    return out


def router(clock: FakeClock, *deps: ScriptedDeployment, **kw: object) -> Router:
    return Router(
        {"chat": Route(list(deps), retry=RetryPolicy(attempts=1), **kw)},  # type: ignore[arg-type]
        clock=clock,
        breaker=BreakerPolicy(consecutive_failures=2),
    )


async def test_failure_before_first_chunk_fails_over(clock: FakeClock) -> None:
    """A stream that fails before its first chunk is replaced by the backup's stream."""
    primary = ScriptedDeployment("primary", fail(503), clock=clock)
    backup = ScriptedDeployment("backup", ok(chunks=("Hel", "lo")), clock=clock)
    reply = await router(clock, primary, backup).open_stream("chat", HI)
    chunks = [c.body async for c in reply]
    assert text_of(chunks) == "Hello"
    assert reply.deployment == "backup"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert [a.kind for a in reply.trace.attempts] == [Kind.OVERLOADED, Kind.OK]


async def test_failure_after_first_chunk_is_stream_interrupted(clock: FakeClock) -> None:
    """Without recovery, a failure after content raises StreamInterrupted and counts against
    the breaker."""
    primary = ScriptedDeployment(
        "primary", fail(500, after_chunks=2, chunks=("a", "b", "c")), clock=clock
    )
    backup = ScriptedDeployment("backup", clock=clock)
    r = router(clock, primary, backup, streams=NO_RESUME)
    reply = await r.open_stream("chat", HI)
    got: list[str] = []
    with pytest.raises(StreamInterrupted) as info:
        async for chunk in reply:
            got.append(chunk.body["choices"][0]["delta"].get("content") or "")
    assert got == ["a", "b"]
    assert info.value.kind is Kind.SERVER_ERROR
    assert backup.calls == 0
    assert r.breaker("primary").counts() == (1, 1)
    assert r.store.stats("primary").success_rate == 0.0


async def test_first_token_timeout_fails_over(clock: FakeClock) -> None:
    """A stream with no first chunk within first_token fails over to the backup."""
    primary = ScriptedDeployment("primary", hang(), clock=clock)
    backup = ScriptedDeployment("backup", ok("b"), clock=clock)
    r = router(clock, primary, backup, timeouts=Timeouts(first_token=1.5, attempt=10, total=30))
    async with clock.autojump():
        start = clock.now()
        reply = await r.open_stream("chat", HI)
        assert clock.now() - start == pytest.approx(1.5)
        assert text_of([c.body async for c in reply]) == "b"
    assert reply.trace.attempts[0].kind is Kind.TIMEOUT


async def test_stalled_stream_is_interrupted_not_hung(clock: FakeClock) -> None:
    """A stream that stops sending mid-way ends with StreamInterrupted after the stall limit."""
    primary = ScriptedDeployment("primary", ok(chunks=("a", "b"), chunk_gap=100.0), clock=clock)
    limits = Timeouts(first_token=5, stall=2, attempt=10, total=300, learn=None)
    r = router(clock, primary, timeouts=limits)
    async with clock.autojump():
        reply = await r.open_stream("chat", HI)
        start = clock.now()
        with pytest.raises(StreamInterrupted) as info:
            async for _ in reply:
                pass
    assert clock.now() - start == pytest.approx(2.0)
    assert info.value.kind is Kind.TIMEOUT


async def test_successful_stream_records_ttft_and_success(clock: FakeClock) -> None:
    """A finished stream counts as a success with its time to first token."""
    primary = ScriptedDeployment("primary", ok(chunks=("x", "y"), latency=0.3), clock=clock)
    r = router(clock, primary)
    async with clock.autojump():
        reply = await r.open_stream("chat", HI)
        [c async for c in reply]
    assert reply.trace.attempts[0].ttft == pytest.approx(0.3)
    assert r.store.stats("primary").success_rate == 1.0
    assert r.store.stats("primary").in_flight == 0


async def test_closing_early_is_not_a_failure(clock: FakeClock) -> None:
    """A caller that stops reading closes the upstream stream without blaming the deployment."""
    primary = ScriptedDeployment("primary", ok(chunks=("a", "b", "c")), clock=clock)
    r = router(clock, primary)
    reply = await r.open_stream("chat", HI)
    async for _ in reply:
        break
    await reply.aclose()
    assert r.breaker("primary").counts() == (0, 0)
    assert r.store.stats("primary").in_flight == 0


async def test_stream_helper_yields_chunks(clock: FakeClock) -> None:
    """Router.stream is a plain async iterator of chunks."""
    primary = ScriptedDeployment("primary", ok(chunks=("1", "2")), clock=clock)
    chunks = [c.body async for c in router(clock, primary).stream("chat", HI)]
    assert text_of(chunks) == "12"


async def test_hedged_stream_races_first_chunk(clock: FakeClock) -> None:
    """A hedged stream takes whichever deployment sends its first chunk first."""
    primary = ScriptedDeployment("primary", ok("slow", latency=3.0), clock=clock)
    backup = ScriptedDeployment("backup", ok("fast", latency=0.01), clock=clock)
    r = Router({"chat": Route([primary, backup], hedge=HedgePolicy(delay=0.1))}, clock=clock)
    async with clock.autojump():
        reply = await r.open_stream("chat", HI)
        assert text_of([c.body async for c in reply]) == "fast"
    assert primary.cancelled == 1


class TwoAnswers(BaseDeployment):
    """Streams two choices, as OpenAI does for n=2: choice 0 finishes before choice 1."""

    name = model = "two"

    async def complete(self, request: Request) -> Completion:
        raise NotImplementedError

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        maker = ChunkMaker(id="chatcmpl-two", model="two", created=0)
        yield maker.chunk({"role": "assistant", "content": "Short."}, index=0)
        yield maker.chunk({"role": "assistant", "content": "A longer"}, index=1)
        yield maker.chunk({}, finish_reason="stop", index=0)
        yield maker.chunk({"content": " second answer."}, index=1)
        yield maker.chunk({}, finish_reason="stop", index=1)


async def test_every_choice_of_an_n_2_stream_is_relayed_to_its_end(clock: FakeClock) -> None:
    """With n=2, the first choice's finish does not end the stream: both reach the caller."""
    reply = await Router({"chat": Route([TwoAnswers()])}, clock=clock).open_stream(
        "chat", {**HI, "n": 2}
    )
    texts = {0: "", 1: ""}
    finished: set[int] = set()
    async for chunk in reply:
        for choice in chunk.body["choices"]:
            texts[choice["index"]] += choice["delta"].get("content") or ""
            if choice.get("finish_reason"):
                finished.add(choice["index"])
    assert texts == {0: "Short.", 1: "A longer second answer."}
    assert finished == {0, 1}
