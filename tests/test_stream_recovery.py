"""Streams that survive: a break after content is finished on another deployment, harmless
quirks are tolerated, and a stream that cannot be finished ends in an error naming its cause."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failover import (
    BreakerPolicy,
    FakeClock,
    Kind,
    RetryPolicy,
    Route,
    Router,
    StreamInterrupted,
    Timeouts,
)
from failover.errors import BadRequest
from failover.events import StreamBreak
from failover.reply import Heartbeat, StreamReply
from failover.resilience.streams import Prefill, Resume, StreamPolicy
from failover.testing import ScriptedDeployment, Step, fail, hang, ok

HI = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
WORDS = ("The ", "quick ", "brown ", "fox ", "jumps ", "over ", "the ", "lazy ", "dog.")
ANSWER = "".join(WORDS)


def cut_after(n: int, *, kind: Kind = Kind.CONNECTION, **quirks: Any) -> Step:
    """The whole answer, broken after `n` pieces."""
    return fail(kind, after_chunks=n, chunks=WORDS, **quirks)


def router(clock: FakeClock, *deps: ScriptedDeployment, **kw: Any) -> Router:
    timeouts = kw.pop("timeouts", Timeouts(learn=None))
    return Router(
        {"chat": Route(list(deps), retry=RetryPolicy(attempts=1), **kw)},
        clock=clock,
        timeouts=timeouts,
        breaker=BreakerPolicy(consecutive_failures=5),
    )


async def text_of(reply: StreamReply) -> str:
    out = ""
    async for chunk in reply:
        for choice in chunk.body["choices"]:
            out += choice["delta"].get("content") or ""
    return out


async def test_a_cut_stream_is_continued_on_a_deployment_that_prefills(clock: FakeClock) -> None:
    """A connection dropped after 4 words is finished by the backup from the delivered text."""
    primary = ScriptedDeployment("primary", cut_after(4), clock=clock)
    backup = ScriptedDeployment("backup", ok(chunks=WORDS), clock=clock, prefill=Prefill.ASSISTANT)
    r = router(clock, primary, backup)
    reply = await r.open_stream("chat", HI)
    assert await text_of(reply) == ANSWER
    assert reply.recoveries == 1 and reply.deployment == "backup"
    prefill = backup.requests[0]["messages"][-1]
    assert prefill == {"role": "assistant", "content": "The quick brown fox"}
    broken, resumed = reply.trace.attempts
    assert (broken.kind, broken.delivered) == (Kind.CONNECTION, len("The quick brown fox "))
    assert (resumed.recovery, resumed.kind) == ("continue", Kind.OK)


async def test_a_restart_is_held_back_until_it_caught_up(clock: FakeClock) -> None:
    """A backup without prefill regenerates; only what the caller lacks is sent."""
    primary = ScriptedDeployment("primary", cut_after(3), clock=clock)
    backup = ScriptedDeployment(
        "backup", ok(chunks=("The quick", " brown fox jumps", " over the lazy dog.")), clock=clock
    )
    reply = await router(clock, primary, backup).open_stream("chat", HI)
    pieces = [c.body["choices"][0]["delta"].get("content") async for c in reply]
    assert "".join(p or "" for p in pieces) == ANSWER
    assert "fox jumps" in pieces  # the chunk it caught up in was split
    assert backup.requests[0]["messages"] == HI["messages"]
    assert reply.trace.attempts[1].recovery == "restart"


@pytest.mark.parametrize(
    ("prefill", "outcome"), [(Prefill.ASSISTANT, "continued"), (Prefill.NONE, "restarted")]
)
async def test_each_recovered_break_is_told_to_the_stream_hook(
    clock: FakeClock, prefill: Prefill, outcome: str
) -> None:
    """`hooks.stream` hears of the break, how it was recovered and on which deployment."""
    primary = ScriptedDeployment("primary", cut_after(3), clock=clock)
    backup = ScriptedDeployment("backup", ok(chunks=WORDS), clock=clock, prefill=prefill)
    r = router(clock, primary, backup)
    told: list[StreamBreak] = []
    r.hooks.stream.append(told.append)
    assert await text_of(await r.open_stream("chat", HI)) == ANSWER
    (event,) = told
    assert (event.deployment, event.outcome, event.by) == ("primary", outcome, "backup")
    assert (event.kind, event.delivered) == (Kind.CONNECTION, len("The quick brown "))


async def test_a_restart_that_diverges_ends_in_an_error_naming_the_first_cause(
    clock: FakeClock,
) -> None:
    """A regenerated answer that says something else is dropped; the caller gets the cut."""
    primary = ScriptedDeployment("primary", cut_after(3, kind=Kind.OVERLOADED), clock=clock)
    backup = ScriptedDeployment("backup", ok("A completely different answer."), clock=clock)
    r = router(clock, primary, backup)
    reply = await r.open_stream("chat", HI)
    with pytest.raises(StreamInterrupted) as caught:
        await text_of(reply)
    assert caught.value.kind is Kind.OVERLOADED
    assert "primary" in str(caught.value) and "chars" in str(caught.value)
    assert r.breaker("backup").counts() == (0, 0)  # diverging is nobody's failure


async def test_a_refused_prefill_is_learned_and_not_blamed(clock: FakeClock) -> None:
    """A candidate that refuses the prefill is remembered, not failed, and restarts instead."""
    primary = ScriptedDeployment("primary", cut_after(2), cut_after(2), clock=clock)
    backup = ScriptedDeployment(
        "backup",
        fail(400),
        ok(chunks=WORDS),
        ok(chunks=WORDS),
        clock=clock,
        prefill=Prefill.ASSISTANT,
    )
    r = router(clock, primary, backup)
    assert await text_of(await r.open_stream("chat", HI)) == ANSWER
    second = await r.open_stream("chat", HI)
    assert await text_of(second) == ANSWER
    assert [a.recovery for a in second.trace.attempts[1:]] == ["restart"]  # no prefill tried
    assert r.breaker("backup").counts() == (0, 2)
    assert len(backup.requests) == 3


async def test_the_first_stream_tried_prefill_then_restarted(clock: FakeClock) -> None:
    """The refusal happens once: continue (400), then restart on the same candidate."""
    primary = ScriptedDeployment("primary", cut_after(2), clock=clock)
    backup = ScriptedDeployment(
        "backup", fail(400), ok(chunks=WORDS), clock=clock, prefill=Prefill.ASSISTANT
    )
    reply = await router(clock, primary, backup).open_stream("chat", HI)
    assert await text_of(reply) == ANSWER
    kinds = [(a.deployment, a.recovery, a.kind) for a in reply.trace.attempts]
    assert kinds == [
        ("primary", None, Kind.CONNECTION),
        ("backup", "continue", Kind.BAD_REQUEST),
        ("backup", "restart", Kind.OK),
    ]


async def test_a_stall_is_recovered_after_the_stall_limit(clock: FakeClock) -> None:
    """Silent for 30 s after 3 words: the backup finishes the answer after `stall`."""
    primary = ScriptedDeployment("primary", ok(chunks=WORDS, chunk_gap=0.1), clock=clock)
    primary.script(Step(chunks=WORDS, text=ANSWER, chunk_gap=30.0))
    backup = ScriptedDeployment("backup", ok(chunks=WORDS), clock=clock, prefill=Prefill.ASSISTANT)
    r = router(clock, primary, backup, timeouts=Timeouts(stall=5, learn=None))
    async with clock.autojump():
        start = clock.now()
        assert await text_of(await r.open_stream("chat", HI)) == ANSWER
        assert clock.now() - start == pytest.approx(5.0)


async def test_a_finish_without_terminator_is_whole(clock: FakeClock) -> None:
    """A stream whose connection breaks after its finish reason is a complete answer."""
    primary = ScriptedDeployment("primary", ok(chunks=WORDS), clock=clock)

    async def broken_after_finish(request: dict[str, Any]) -> Any:
        async for chunk in ScriptedDeployment.stream(primary, request):
            yield chunk
        raise BadRequest("the connection broke after the end")

    primary.stream = broken_after_finish  # type: ignore[method-assign, assignment]
    backup = ScriptedDeployment("backup", clock=clock)
    reply = await router(clock, primary, backup).open_stream("chat", HI)
    assert await text_of(reply) == ANSWER
    assert reply.recoveries == 0 and backup.calls == 0


async def test_a_stream_ending_without_a_finish_reason_is_a_cut(clock: FakeClock) -> None:
    """No finish reason at the end is never a success: it is recovered as a cut."""
    primary = ScriptedDeployment("primary", ok(chunks=WORDS[:5], finish=False), clock=clock)
    backup = ScriptedDeployment("backup", ok(chunks=WORDS), clock=clock, prefill=Prefill.ASSISTANT)
    reply = await router(clock, primary, backup).open_stream("chat", HI)
    assert await text_of(reply) == ANSWER
    assert reply.trace.attempts[0].kind is Kind.CONNECTION


async def test_malformed_chunks_are_skipped_and_counted(clock: FakeClock) -> None:
    """One malformed chunk in an otherwise complete stream costs nothing."""
    primary = ScriptedDeployment("primary", ok(chunks=WORDS, malformed_after=4), clock=clock)
    reply = await router(clock, primary).open_stream("chat", HI)
    assert await text_of(reply) == ANSWER
    assert reply.recoveries == 0


async def test_too_many_malformed_chunks_break_the_stream(clock: FakeClock) -> None:
    """Past `max_malformed`, malformed chunks are a broken stream, recovered elsewhere."""
    primary = ScriptedDeployment("primary", ok(chunks=WORDS, malformed_after=4), clock=clock)
    backup = ScriptedDeployment("backup", ok(chunks=WORDS), clock=clock, prefill=Prefill.ASSISTANT)
    r = router(clock, primary, backup, streams=StreamPolicy(max_malformed=0))
    reply = await r.open_stream("chat", HI)
    assert await text_of(reply) == ANSWER
    assert "malformed" in reply.trace.attempts[0].message


async def test_lifecycle_frames_are_held_until_content(clock: FakeClock) -> None:
    """A failure after the role chunk but before content fails over invisibly."""
    primary = ScriptedDeployment("primary", fail(503, after_chunks=0, role_chunk=True), clock=clock)
    backup = ScriptedDeployment("backup", ok(chunks=WORDS), clock=clock)
    reply = await router(clock, primary, backup).open_stream("chat", HI)
    assert await text_of(reply) == ANSWER
    assert reply.recoveries == 0
    assert [a.kind for a in reply.trace.attempts] == [Kind.OVERLOADED, Kind.OK]


@pytest.mark.parametrize(
    "policy", [StreamPolicy(resume=Resume.OFF), StreamPolicy(max_recoveries=0)]
)
async def test_without_recovery_the_break_is_an_error(
    clock: FakeClock, policy: StreamPolicy
) -> None:
    """Recovery off (or spent): the caller gets StreamInterrupted, never a normal end."""
    primary = ScriptedDeployment("primary", cut_after(2), clock=clock)
    backup = ScriptedDeployment("backup", ok(chunks=WORDS), clock=clock, prefill=Prefill.ASSISTANT)
    with pytest.raises(StreamInterrupted):
        await text_of(await router(clock, primary, backup, streams=policy).open_stream("chat", HI))
    assert backup.calls == 0


async def test_recovery_spends_the_retry_budget(clock: FakeClock) -> None:
    """With the retry budget empty, a break is not recovered."""
    primary = ScriptedDeployment("primary", cut_after(2), clock=clock)
    backup = ScriptedDeployment("backup", ok(chunks=WORDS), clock=clock, prefill=Prefill.ASSISTANT)
    r = router(clock, primary, backup)
    budget = r.plan("chat").budget
    while budget.spend():
        pass
    with pytest.raises(StreamInterrupted):
        await text_of(await r.open_stream("chat", HI))


async def test_heartbeats_keep_the_caller_company_while_recovering(clock: FakeClock) -> None:
    """A recovery that takes 12 s yields heartbeats every `heartbeat` seconds."""
    primary = ScriptedDeployment("primary", cut_after(2), clock=clock)
    backup = ScriptedDeployment(
        "backup", ok(chunks=WORDS, latency=12.0), clock=clock, prefill=Prefill.ASSISTANT
    )
    r = router(clock, primary, backup, streams=StreamPolicy(heartbeat=5.0))
    async with clock.autojump():
        reply = await r.open_stream("chat", HI)
        items = [item async for item in reply.events()]
    assert sum(isinstance(i, Heartbeat) for i in items) == 2


async def test_a_silent_deployment_is_not_tried_again(clock: FakeClock) -> None:
    """A stall is not retried on the same deployment: a second silence only doubles the wait."""
    primary = ScriptedDeployment(
        "primary", Step(chunks=WORDS, text=ANSWER, chunk_gap=60.0), clock=clock
    )
    r = router(clock, primary, timeouts=Timeouts(stall=2, learn=None))
    async with clock.autojump():
        with pytest.raises(StreamInterrupted) as caught:
            await text_of(await r.open_stream("chat", HI))
    assert caught.value.kind is Kind.TIMEOUT
    assert primary.calls == 1


async def test_a_cut_may_be_retried_on_the_same_deployment(clock: FakeClock) -> None:
    """A lone deployment whose connection dropped finishes its own answer on a new stream."""
    primary = ScriptedDeployment(
        "primary", cut_after(3), ok(chunks=WORDS), clock=clock, prefill=Prefill.ASSISTANT
    )
    reply = await router(clock, primary).open_stream("chat", HI)
    assert await text_of(reply) == ANSWER
    assert [a.deployment for a in reply.trace.attempts] == ["primary", "primary"]


async def test_a_long_healthy_stream_outlives_total(clock: FakeClock) -> None:
    """`total` bounds the time to an answer; a stream running longer is bounded by `stream`."""
    slow = tuple(f"w{i} " for i in range(40))
    primary = ScriptedDeployment("primary", ok(chunks=slow, chunk_gap=1.0), clock=clock)
    r = router(clock, primary, timeouts=Timeouts(total=10, learn=None))
    async with clock.autojump():
        assert await text_of(await r.open_stream("chat", HI)) == "".join(slow)


async def test_learned_first_content_limit_fails_a_silent_provider_over_fast(
    clock: FakeClock,
) -> None:
    """After 20 streams answering in 1 s, a provider silent for 60 s is left after ~5 s."""
    primary = ScriptedDeployment("primary", ok(chunks=WORDS, latency=1.0), clock=clock)
    backup = ScriptedDeployment("backup", ok(chunks=WORDS), clock=clock)
    r = router(clock, primary, backup, timeouts=Timeouts())
    async with clock.autojump():
        for _ in range(20):
            await text_of(await r.open_stream("chat", HI))
        primary.script(hang())
        start = clock.now()
        reply = await r.open_stream("chat", HI)
        waited = clock.now() - start
    assert reply.deployment == "backup"
    assert waited == pytest.approx(5.0)  # 4 x 1 s, raised to the 5 s floor


async def test_a_slow_first_token_model_is_not_cut_once_learned(clock: FakeClock) -> None:
    """A reasoning model whose first content takes 40 s keeps a learned limit above it."""
    primary = ScriptedDeployment("primary", ok(chunks=WORDS, latency=40.0), clock=clock)
    r = router(clock, primary, timeouts=Timeouts(first_token=60, attempt=60))
    async with clock.autojump():
        for _ in range(25):
            assert await text_of(await r.open_stream("chat", HI)) == ANSWER


async def test_tool_calls_are_never_spliced_by_prefill(clock: FakeClock) -> None:
    """A partly streamed tool call is restarted and matched, never continued."""
    from failover.openai_shapes import ChunkMaker
    from failover.types import BaseDeployment, Completion

    args = '{"city": "Paris", "unit": "c"}'

    class Tools(BaseDeployment):
        def __init__(self, name: str, cut: int | None) -> None:
            self.name = self.model = name
            self.cut = cut
            self.prefill = Prefill.ASSISTANT
            self.requests: list[dict[str, Any]] = []

        async def complete(self, request: dict[str, Any]) -> Completion:
            raise NotImplementedError

        async def stream(self, request: dict[str, Any]) -> Any:
            self.requests.append(request)
            maker = ChunkMaker(model=self.name)
            call = {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "weather", "arguments": ""},
            }
            yield maker.chunk({"role": "assistant", "content": None, "tool_calls": [call]})
            for i in range(0, len(args), 5):
                if self.cut is not None and i >= self.cut:
                    from failover.errors import ConnectionFailed

                    raise ConnectionFailed("cut")
                piece = {"index": 0, "function": {"arguments": args[i : i + 5]}}
                yield maker.chunk({"tool_calls": [piece]})
            yield maker.chunk({}, finish_reason="tool_calls")

    primary, backup = Tools("primary", cut=15), Tools("backup", cut=None)
    r = Router({"chat": Route([primary, backup])}, clock=clock)
    reply = await r.open_stream("chat", HI)
    got = ""
    async for chunk in reply:
        for call in chunk.body["choices"][0]["delta"].get("tool_calls") or ():
            got += call["function"].get("arguments") or ""
    assert got == args
    assert backup.requests[0]["messages"] == HI["messages"]  # restarted, not prefilled
    assert reply.trace.attempts[-1].recovery == "restart"


@settings(max_examples=60, deadline=None)
@given(
    cut=st.integers(min_value=1, max_value=len(WORDS) - 1),
    mode=st.sampled_from(["prefill", "restart", "diverge"]),
)
async def test_any_cut_gives_the_whole_answer_or_a_clean_error(cut: int, mode: str) -> None:
    """For any cut point, the caller's text is the whole answer or a clean error — never a
    shorter text that ended normally."""
    clock = FakeClock()
    primary = ScriptedDeployment("primary", cut_after(cut), clock=clock)
    if mode == "diverge":
        backup = ScriptedDeployment("backup", ok("Something else entirely."), clock=clock)
    else:
        prefill = Prefill.ASSISTANT if mode == "prefill" else Prefill.NONE
        backup = ScriptedDeployment("backup", ok(chunks=WORDS), clock=clock, prefill=prefill)
    reply = await router(clock, primary, backup).open_stream("chat", HI)
    got = ""
    try:
        got = await text_of(reply)
    except StreamInterrupted:
        assert mode == "diverge"
        return
    assert got == ANSWER
