"""The silence limit of a started stream, kept by one lazily re-armed timer per stream: it
cuts a stall at the limit counted from the last chunk, and nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from failover import FakeClock, Kind, RetryPolicy, Route, Router, Timeouts
from failover.openai_shapes import ChunkMaker
from failover.reply import StreamReply
from failover.resilience.streams import Resume, StreamPolicy
from failover.types import BaseDeployment, Chunk, Completion, Request

HI = {"messages": [{"role": "user", "content": "hi"}], "stream": True}


class Paced(BaseDeployment):
    """Streams one word after each of `gaps` seconds (the first word at once), then stops."""

    def __init__(self, clock: FakeClock, gaps: Sequence[float], *, finish: bool = True) -> None:
        self.name = self.model = "paced"
        self.clock = clock
        self.gaps = gaps
        self.finish = finish

    async def complete(self, request: Request) -> Completion:
        raise NotImplementedError

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        maker = ChunkMaker(id="chatcmpl-paced", model=self.name, created=0)
        yield maker.chunk({"role": "assistant", "content": "w0"})
        for i, gap in enumerate(self.gaps, 1):
            await self.clock.sleep(gap)
            yield maker.chunk({"content": f" w{i}"})
        if self.finish:
            yield maker.chunk({}, finish_reason="stop")


def router(clock: FakeClock, deployment: BaseDeployment, *, stall: float = 5.0) -> Router:
    return Router(
        {"chat": Route([deployment], retry=RetryPolicy(attempts=1))},
        clock=clock,
        timeouts=Timeouts(stall=stall, learn=None),
        streams=StreamPolicy(resume=Resume.OFF),
    )


async def read_all(reply: StreamReply, *, pause: float = 0.0, clock: FakeClock) -> int:
    """Chunks read, pausing `pause` seconds after each one like a slow caller."""
    count = 0
    async for _ in reply:
        count += 1
        if pause:
            await clock.sleep(pause)
    return count


async def test_a_long_stream_of_chunks_within_the_limit_is_never_cut(clock: FakeClock) -> None:
    """Chunks 4 s apart for a minute stream on under a 5 s silence limit."""
    r = router(clock, Paced(clock, [4.0] * 15))
    async with clock.autojump():
        start = clock.now()
        reply = await r.open_stream("chat", HI)
        assert await read_all(reply, clock=clock) == 17
        assert clock.now() - start == pytest.approx(60.0)
    assert [a.kind for a in reply.trace.attempts] == [Kind.OK]


async def test_a_stall_is_cut_at_the_limit_after_the_last_chunk(clock: FakeClock) -> None:
    """After 43 s of steady chunks a 30 s silence is cut 5 s after the last chunk."""
    r = router(clock, Paced(clock, [3.0] * 11 + [10.0] + [30.0]))
    async with clock.autojump():
        start = clock.now()
        reply = await r.open_stream("chat", HI)
        with pytest.raises(Exception, match="stalled: no chunk for 5s"):
            await read_all(reply, clock=clock)
        assert clock.now() - start == pytest.approx(33.0 + 5.0)
    assert reply.trace.attempts[-1].kind is Kind.TIMEOUT


async def test_the_callers_own_pauses_do_not_count_as_silence(clock: FakeClock) -> None:
    """A caller that takes 8 s over each chunk of a fast stream is not cut at 5 s."""
    r = router(clock, Paced(clock, [0.0] * 5))
    async with clock.autojump():
        reply = await r.open_stream("chat", HI)
        assert await read_all(reply, pause=8.0, clock=clock) == 7
    assert [a.kind for a in reply.trace.attempts] == [Kind.OK]


async def test_a_finished_stream_leaves_no_timer_behind(clock: FakeClock) -> None:
    """Once a stream ended, no silence timer of it is pending on the clock."""
    r = router(clock, Paced(clock, [1.0] * 3))
    async with clock.autojump():
        await read_all(await r.open_stream("chat", HI), clock=clock)
    assert clock.next_deadline() is None


async def test_a_caller_cancelled_mid_read_is_not_a_stall(clock: FakeClock) -> None:
    """Cancelling the reading task during a silence cancels it; nobody is blamed."""
    r = router(clock, Paced(clock, [1.0, 60.0]))
    reply = await r.open_stream("chat", HI)
    task = asyncio.ensure_future(read_all(reply, clock=clock))
    await clock.advance(3.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reply.trace.attempts[-1].kind is not Kind.TIMEOUT
    assert clock.next_deadline() is None
