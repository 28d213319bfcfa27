"""The relay sends chunks that follow one another at once in one write, and every other
chunk the moment it arrives."""

from __future__ import annotations

import asyncio
from typing import Any

from failover import FakeClock, Route, Router, Timeouts
from failover.server.http import Headers
from failover.server.streaming import OpenAIEncoder, relay
from failover.testing import ScriptedDeployment, ok

HI = {"messages": [{"role": "user", "content": "hi"}], "stream": True}


class Recorder:
    """The parts of a gateway `Call` a relay uses; it records each write."""

    request_id = "req-test"

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.ended = False

    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()  # the client never hangs up
        raise AssertionError

    hangup = None  # a server that tells a hang-up through `receive()` alone

    def direct_body(self) -> None:
        return None  # nor offers direct writes

    async def start_stream(self, headers: Headers) -> None:
        return None

    async def write(self, data: bytes) -> None:
        self.writes.append(data)

    async def end(self, data: bytes = b"") -> None:
        self.writes.append(data)
        self.ended = True


async def relayed(clock: FakeClock, **step: Any) -> list[bytes]:
    deployment = ScriptedDeployment("d", ok(**step), clock=clock)
    router = Router({"chat": Route([deployment])}, clock=clock, timeouts=Timeouts(learn=None))
    call = Recorder()
    async with clock.autojump():
        reply = await router.open_stream("chat", HI)
        await relay(call, reply, OpenAIEncoder(), [])  # type: ignore[arg-type]
    assert call.ended
    return call.writes


async def test_the_role_and_first_content_leave_in_one_write(clock: FakeClock) -> None:
    """A role-only chunk held back until content arrived goes out with that content."""
    first, *_ = await relayed(clock, chunks=("Hello", " world"), chunk_gap=1.0, role_chunk=True)
    assert first.count(b"data: ") == 2
    assert b'"role":"assistant"' in first and b'"content":"Hello"' in first


async def test_the_last_chunk_leaves_with_the_terminator(clock: FakeClock) -> None:
    """The finish reason and `[DONE]` end the stream in one write."""
    *_, last = await relayed(clock, chunks=("Hello", " world"), chunk_gap=1.0)
    assert last.endswith(b"data: [DONE]\n\n")
    assert b'"finish_reason":"stop"' in last and last.count(b"data: ") == 2


async def test_chunks_apart_in_time_each_leave_at_once(clock: FakeClock) -> None:
    """Content arriving a second apart is written chunk by chunk, never held back."""
    writes = await relayed(clock, chunks=("a", " b", " c", " d"), chunk_gap=1.0)
    assert [w.count(b"data: ") for w in writes] == [1, 1, 1, 1, 2]
